// Running out of stack is a RangeError the handler can catch, and it goes on afterwards.
function depth(n) { return n === 0 ? 0 : 1 + depth(n - 1); }
function forever(n) { return forever(n + 1) + 1; }
const o = { get self() { return this.self; } };
exports.handler = async (event) => {
  const caught = [];
  try { forever(0); } catch (e) { caught.push(e instanceof RangeError, e.message); }
  try { o.self; } catch (e) { caught.push(e.constructor.name); }
  event.datasetRecords.recursion = { newValue: depth(2000) + ':' + caught.join(','), op: 'replace' };
  return event;
};
