// The first of callback/done/succeed/fail counts; fail() with no error is Lambda's "handled".
exports.handler = (event, context, callback) => {
  const n = Object.keys(event.datasetRecords).length;
  if (n === 0) return context.fail();
  if (n > 100) { callback(null, event); return context.fail(new Error('ignored: callback came first')); }
  if (n > 3) { callback(new Error('an error is posted at once')); return; }
  context.succeed(event);
  callback(new Error('ignored'));
};
