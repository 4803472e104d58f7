// The messages of errors handlers pass on: JSON.parse, URIs, dates, BigInt.
exports.handler = (event, context, callback) => {
  const out = [];
  const tries = [
    () => JSON.parse('{"a":1,}'), () => JSON.parse('[1 2]'), () => JSON.parse(''), () => JSON.parse('{"a":'),
    () => JSON.parse('tru'), () => JSON.parse('"abc'), () => JSON.parse('01'), () => JSON.parse('{"a":1} x'),
    () => JSON.parse('this is a long string of text that is invalid'), () => JSON.parse(undefined),
    () => JSON.parse('{"key": "value", "other": bad, "more": 1}'), () => JSON.parse('"\\x"'), () => JSON.parse('-'),
    () => decodeURIComponent('%'), () => new Date('nope').toISOString(), () => BigInt('12x'), () => BigInt(1.5),
  ];
  for (const t of tries) {
    try { t(); out.push('ok'); } catch (e) { out.push(e.name + ': ' + e.message); }
  }
  const r = event.datasetRecords.json;
  if (r && r.newValue) {
    try { JSON.parse(r.newValue); } catch (e) { return callback(e); }
  }
  event.datasetRecords.errors = { newValue: out.join('\n'), op: 'replace' };
  callback(null, event);
};
