// Numbers as text.
exports.handler = async (event) => {
  const n = Object.keys(event.datasetRecords).length * 1234.5;
  event.datasetRecords.formatted = { newValue: [n.toFixed(2), n.toString(16), (0.1 + 0.2).toString(), n.toExponential(3), (1e21).toString()].join(' '), op: 'replace' };
  return event;
};
