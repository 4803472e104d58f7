// A game's trigger stamps when the player last synced (a Date, as many handlers do).
exports.handler = (event, context, callback) => {
  event.datasetRecords.lastSync = { newValue: new Date(), op: 'replace' };
  callback(null, event);
};
