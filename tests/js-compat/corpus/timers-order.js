// Timers fire in due-time order, not creation order.
exports.handler = (event, context, callback) => {
  const order = [];
  setTimeout(() => order.push('slow-50'), 50);
  setTimeout(() => order.push('fast-10'), 10);
  setTimeout(() => order.push('zero'), 0);
  setImmediate(() => order.push('immediate'));
  setTimeout(() => {
    event.datasetRecords.order = { newValue: order.join(','), op: 'replace' };
    callback(null, event);
  }, 100);
};
