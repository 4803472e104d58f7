// What JSON.stringify makes of a result: toJSON, String objects, undefined members.
exports.handler = async (event) => {
  const records = event.datasetRecords;
  records.wrapped = { newValue: new String('boxed'), op: 'replace', extra: undefined };
  records.custom = { toJSON() { return { newValue: 'from toJSON', op: 'replace' }; } };
  records.skipped = undefined;
  records.fn = { newValue: 'kept', op: 'replace', helper() {} };
  return event;
};
