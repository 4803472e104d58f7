// Refuse an update whose e-mail is not an address; lower-case the good ones.
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
exports.handler = (event, context, callback) => {
  const r = event.datasetRecords.email;
  if (r && r.op === 'replace') {
    if (!EMAIL.test(r.newValue)) return callback(new Error('Invalid email: ' + r.newValue));
    r.newValue = r.newValue.toLowerCase();
  }
  callback(null, event);
};
