// Buffer in the ways handlers use it: encodings, joins, comparisons, JSON.
exports.handler = async (event) => {
  const out = [];
  for (const [key, r] of Object.entries(event.datasetRecords).slice(0, 20)) {
    if (typeof r.newValue !== 'string') continue;
    const b = Buffer.from(r.newValue);
    out.push([b.toString('hex'), b.toString('base64url'), Buffer.from(b.toString('latin1'), 'latin1').equals(b),
      Buffer.from(r.newValue, 'utf16le').length, b.slice(1, 4).toString('hex'), Buffer.byteLength(key)].join('/'));
  }
  const joined = Buffer.concat([Buffer.from('ab'), Buffer.alloc(2, 'z'), Buffer.from([0xe2, 0x82])]);
  console.log(joined, JSON.stringify(Buffer.from('hi')));
  out.push(joined.toString(), Buffer.compare(Buffer.from('a'), Buffer.from('b')), Buffer.isBuffer(joined), Buffer.from('=a=GVsbG8', 'base64').toString());
  event.datasetRecords.buffers = { newValue: out.join('|'), op: 'replace' };
  return event;
};
