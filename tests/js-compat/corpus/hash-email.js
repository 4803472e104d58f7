// Store a hash of the e-mail address next to it (a common privacy trigger).
const crypto = require('crypto');
exports.handler = async (event) => {
  const records = event.datasetRecords;
  for (const [key, r] of Object.entries(records)) {
    if (typeof r.newValue === 'string' && r.op === 'replace') {
      records[key + ':sha256'] = { newValue: crypto.createHash('sha256').update(r.newValue).digest('hex'), op: 'replace' };
    }
  }
  const mac = crypto.createHmac('sha1', 'secret').update('x').digest('base64');
  records.mac = { newValue: mac + ':' + crypto.createHash('md5').update('').digest('hex'), op: 'replace' };
  return event;
};
