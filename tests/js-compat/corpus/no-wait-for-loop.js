// callbackWaitsForEmptyEventLoop = false: the result goes at once, later timers do not count.
exports.handler = (event, context, callback) => {
  context.callbackWaitsForEmptyEventLoop = false;
  setTimeout(() => { throw new Error('after the response'); }, 1);
  callback(null, event);
};
