// Node's order: synchronous code, nextTick, promise jobs, timers, immediates.
exports.handler = (event, context, callback) => {
  const order = [];
  setTimeout(() => order.push('timeout'), 0);
  setImmediate(() => order.push('immediate'));
  Promise.resolve().then(() => order.push('promise'));
  process.nextTick(() => order.push('tick'));
  queueMicrotask(() => order.push('microtask'));
  order.push('sync');
  setTimeout(() => {
    event.datasetRecords.order = { newValue: order.join(','), op: 'replace' };
    callback(null, event);
  }, 5);
};
