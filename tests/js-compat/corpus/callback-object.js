// An error that is not an Error: Lambda's message is its toString().
exports.handler = (event, context, callback) => {
  if (Object.keys(event.datasetRecords).length > 3) return callback({ code: 'TooMany' });
  if (Object.keys(event.datasetRecords).length === 0) return callback('nothing to sync');
  callback(null, event);
};
