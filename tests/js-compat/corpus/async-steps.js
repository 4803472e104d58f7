// An async handler awaiting a chain of steps, as handlers written for SDK calls do.
const step = (v) => new Promise((resolve) => setTimeout(() => resolve(v), 1));
exports.handler = async (event) => {
  let total = 0;
  for (const r of Object.values(event.datasetRecords)) {
    total += (await step(r.newValue ? r.newValue.length : 0));
  }
  event.datasetRecords.total = { newValue: String(total), op: 'replace' };
  return event;
};
