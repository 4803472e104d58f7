// A rejected promise refuses the update with its message.
exports.handler = async (event) => {
  if ('banned' in event.datasetRecords) throw new Error('the key banned may not be synced');
  await null;
  return event;
};
