// Copies of records, changed without touching the originals.
exports.handler = async (event) => {
  const before = structuredClone(event.datasetRecords);
  for (const r of Object.values(event.datasetRecords)) if (r.op === 'replace' && r.newValue != null) r.newValue += '!';
  event.datasetRecords.before = { newValue: String(Object.keys(before).length), op: 'replace' };
  return event;
};
