// A result that cannot be serialised: Lambda fails the invocation.
exports.handler = async (event) => {
  event.self = event;
  return event;
};
