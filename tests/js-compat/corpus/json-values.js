// Values holding JSON: a bad one rejects the update with JSON.parse's message.
exports.handler = (event, context, callback) => {
  for (const [key, r] of Object.entries(event.datasetRecords)) {
    if (r.op === 'remove' || r.newValue == null) continue;
    try {
      JSON.parse(r.newValue);
    } catch (e) {
      return callback(e);
    }
  }
  callback(null, event);
};
