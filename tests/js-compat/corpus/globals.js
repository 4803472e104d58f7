// Globals ordinary handlers use.
exports.handler = async (event) => {
  const names = ['Buffer', 'TextEncoder', 'TextDecoder', 'atob', 'btoa', 'URL', 'URLSearchParams',
    'structuredClone', 'global', 'globalThis', 'queueMicrotask', 'setImmediate', 'crypto'];
  const have = names.map((n) => n + ':' + typeof globalThis[n]);
  have.push('randomUUID:' + typeof (globalThis.crypto && crypto.randomUUID));
  have.push('getRandomValues:' + typeof (globalThis.crypto && crypto.getRandomValues));
  event.datasetRecords.globals = { newValue: have.join(' '), op: 'replace' };
  return event;
};
