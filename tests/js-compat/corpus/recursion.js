// Deep recursion works; running out of stack is a catchable RangeError.
function depth(n) { return n === 0 ? 0 : 1 + depth(n - 1); }
function forever(n) { return forever(n + 1) + 1; }
exports.handler = async (event) => {
  let caught;
  try { forever(0); } catch (e) { caught = e.constructor.name; }
  event.datasetRecords.recursion = { newValue: depth(5000) + ':' + caught, op: 'replace' };
  return event;
};
