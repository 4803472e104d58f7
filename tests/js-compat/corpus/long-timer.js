// A timer due after the deadline: the invocation times out, as on Lambda.
exports.handler = (event, context, callback) => {
  setTimeout(() => callback(null, event), 6000);
};
