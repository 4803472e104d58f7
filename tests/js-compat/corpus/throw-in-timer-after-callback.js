// callback waits for the event loop: a timer that throws before it empties fails the invocation.
exports.handler = (event, context, callback) => {
  callback(null, event);
  setTimeout(() => { throw new Error('boom in a timer'); }, 1);
};
