// Values base64-encoded with Buffer, as many Node handlers do.
exports.handler = async (event) => {
  for (const r of Object.values(event.datasetRecords)) {
    if (typeof r.newValue === 'string') {
      const b = Buffer.from(r.newValue, 'utf8');
      r.newValue = b.toString('base64') + ':' + b.length + ':' + Buffer.from(b.toString('hex'), 'hex').toString();
    }
  }
  return event;
};
