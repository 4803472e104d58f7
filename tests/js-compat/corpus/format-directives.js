// console.log's directives on odd values.
class Money { constructor(n) { this.n = n; } toString() { return this.n.toFixed(2) + ' EUR'; } }
exports.handler = async (event) => {
  const n = Object.keys(event.datasetRecords).length;
  console.log('%i|%i|%d|%d|%d|%s|%s|%s', '0x1A', '-0', -0, 10n, [5], -0, 7n, new Money(n));
  console.log('%s|%s|%s|%f|%j', { a: { b: { c: 1 } } }, [1, [2, [3]]], null, '3.5abc', 'str');
  console.log('%o', { k: 'it\'s', list: [1, 2] }, 'extra', 42);
  console.log('%c styled %% done', 'color: red', n);
  console.log(new Error('as a value').message, [undefined, , 3].length, { 'key with space': 1, 'x-y': "both ' and \"" });
  return event;
};
