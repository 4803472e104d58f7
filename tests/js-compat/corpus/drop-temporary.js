// Keys under tmp: are never stored; the rest is trimmed.
exports.handler = async (event) => {
  const records = event.datasetRecords;
  for (const key of Object.keys(records)) {
    if (key.startsWith('tmp:')) delete records[key];
    else if (typeof records[key].newValue === 'string') records[key].newValue = records[key].newValue.trim();
  }
  return event;
};
