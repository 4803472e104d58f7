// A lookup raced against a timeout: the faster one wins.
const sleep = (ms, value) => new Promise((resolve) => setTimeout(() => resolve(value), ms));
const timeout = (ms) => new Promise((_, reject) => setTimeout(() => reject(new Error('timed out')), ms));
exports.handler = async (event) => {
  const a = await Promise.race([sleep(30, 'lookup'), timeout(10)]).catch((e) => e.message);
  const b = await Promise.race([sleep(5, 'lookup'), timeout(10)]).catch((e) => e.message);
  const c = await Promise.any([sleep(40, 'slow'), sleep(20, 'fast'), Promise.reject(new Error('no'))]);
  event.datasetRecords.race = { newValue: [a, b, c].join(','), op: 'replace' };
  return event;
};
