// Count the syncs of a dataset in a record of its own.
exports.handler = async (event) => {
  const records = event.datasetRecords;
  const old = records.syncs ? Number(records.syncs.oldValue || 0) : 0;
  records.syncs = { ...(records.syncs || {}), newValue: String(old + 1), op: 'replace' };
  console.log('sync number %i of %s', old + 1, event.identityId);
  return event;
};
