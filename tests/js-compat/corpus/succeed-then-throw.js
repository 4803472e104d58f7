// The first to settle wins: a throw after context.succeed is ignored.
exports.handler = (event, context) => {
  context.succeed(event);
  throw new Error('too late');
};
