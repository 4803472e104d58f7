// Byte lengths and base64 of values.
exports.handler = async (event) => {
  const enc = new TextEncoder();
  for (const [key, r] of Object.entries(event.datasetRecords)) {
    if (typeof r.newValue !== 'string') continue;
    const bytes = enc.encode(r.newValue);
    const back = new TextDecoder().decode(bytes);
    r.newValue = bytes.length + ':' + (back === r.newValue) + ':' + btoa(unescape(encodeURIComponent(r.newValue)));
  }
  return event;
};
