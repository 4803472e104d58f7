// A handler that never answers: Lambda posts null, which is not an event.
exports.handler = (event, context, callback) => {
  console.log('forgot the callback');
};
