// What console.log prints of objects, arrays and odd values.
exports.handler = async (event) => {
  const sample = Object.entries(event.datasetRecords).slice(0, 3);
  console.log(sample);
  console.log('%s|%d|%i|%j', 'text', 42.5, '0x1A', { a: [1, 2] });
  console.log({ nested: { deeper: { deepest: { gone: 1 } } }, list: [1, 2, 3], str: 'q\'uote' });
  console.log([undefined, null, -0, 1n, Symbol('s')]);
  console.error(new Error('shown with its stack').message);
  console.warn(new Map([['k', 1]]), new Set(['v']));
  return event;
};
