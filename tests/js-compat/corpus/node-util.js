// util, path, querystring and events, as small handlers use them.
const util = require('util');
const path = require('path');
const qs = require('querystring');
const { EventEmitter } = require('events');
exports.handler = async (event) => {
  const parts = [];
  parts.push(util.format('%s=%d', 'n', 42));
  parts.push(path.join('/a/b', '../c', 'd.txt'), path.extname('x.tar.gz'), path.basename('/p/q.js', '.js'));
  parts.push(qs.stringify({ a: 1, b: 'x y' }), JSON.stringify(qs.parse('a=1&b=x%20y&a=2')));
  const e = new EventEmitter();
  e.on('hit', (v) => parts.push('hit:' + v));
  e.emit('hit', 1);
  const wait = util.promisify((ms, cb) => setTimeout(() => cb(null, ms), ms));
  parts.push('waited:' + (await wait(3)));
  event.datasetRecords.util = { newValue: parts.join('|'), op: 'replace' };
  return event;
};
