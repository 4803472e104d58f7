// Bytes decoded in pieces, split inside a character.
const { StringDecoder } = require('string_decoder');
exports.handler = async (event) => {
  const d = new StringDecoder('utf8');
  const bytes = Buffer.from(Object.values(event.datasetRecords).map((r) => r.newValue || '').join('|') + '€😀');
  let text = '';
  for (let i = 0; i < bytes.length; i += 5) text += d.write(bytes.subarray(i, i + 5));
  text += d.end();
  event.datasetRecords.decoded = { newValue: String(text.length) + ':' + text.slice(-6), op: 'replace' };
  return event;
};
