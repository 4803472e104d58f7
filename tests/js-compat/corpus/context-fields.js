// context's fields are its own: a JSON copy and a spread keep them.
exports.handler = async (event, context) => {
  const copy = { ...context };
  const keys = Object.keys(JSON.parse(JSON.stringify(context))).filter((k) => k !== 'awsRequestId' && k !== 'logStreamName').sort();
  event.datasetRecords.context = { newValue: copy.functionName + ':' + copy.functionVersion + ':' + keys.join(','), op: 'replace' };
  return event;
};
