// Rebuild the records in key order, with a summary record.
exports.handler = async (event) => {
  const records = event.datasetRecords;
  const sorted = {};
  for (const key of Object.keys(records).sort()) sorted[key] = records[key];
  sorted.summary = { newValue: JSON.stringify({ count: Object.keys(records).length, first: Object.keys(records).sort()[0] || null }), op: 'replace' };
  event.datasetRecords = sorted;
  return event;
};
