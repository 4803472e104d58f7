// JSON.stringify where the engine takes its own paths (strings quoted in runs, objects read
// from their shapes): escapes at every offset, keys that are array indexes, getters that
// change the object mid-way, toJSON, replacers, symbols, proxies. Every output goes into the
// result, so it is compared exactly with Node.js's.
exports.handler = (event, context, callback) => {
  const out = [];
  const show = (label, f) => {
    try {
      out.push(label + ' ' + f());
    } catch (e) {
      out.push(label + ' threw ' + e.constructor.name);
    }
  };
  const s = JSON.stringify;

  // Escapes before, at and after an eight-character boundary, in Latin-1 and wide strings.
  const specials = ['"', '\\', '\n', '\u0001', '\u001f', '\u007f', '\u00e9', '\u2028', '\ud800', '\udc00', '\ud83d\ude00', '\t\b\f\r'];
  for (const c of specials) {
    for (const at of [0, 6, 7, 8, 9, 15, 16, 17]) {
      show('esc', () => s('abcdefghijklmnopqrstuvwxyz'.slice(0, at) + c + 'tail-after-it'));
    }
  }
  show('wide', () => s('日本語のテキスト、とても長い文字列です' + '\ud800' + '終'));
  show('pair-at-end', () => s('x'.repeat(7) + '\ud83d'));
  show('keys', () => s({ 'a"b': 1, '\n': 2, '\u00e9': 3, '日本': 4, '\ud800': 5, '': 6 }));

  // Array-index keys come first, ascending; others in insertion order.
  show('order', () => s({ b: 1, 2: 2, a: 3, 1: 4, 4294967294: 5, 4294967295: 6, '01': 7, '1.5': 8, '-1': 9, 0: 10 }));

  // A getter that deletes a later key and adds one: the keys were taken before.
  show('getter', () => s({ a: 1, get b() { delete this.c; this.d = 4; return 2; }, c: 3, e: 5 }));
  show('getter-first', () => s({ get a() { this.z = 1; delete this.b; return 0; }, b: 1, c: 'x' }));
  // An object value whose toJSON changes its parent.
  const parent = { p: 'one', q: 'two' };
  parent.child = { toJSON() { delete parent.tail; parent.extra = 'late'; return 'child'; } };
  parent.tail = 'gone';
  parent.after = 'kept';
  show('tojson-mutates', () => s(parent));
  show('tojson-key', () => s({ k: { toJSON(key) { return 'key=' + key; } }, arr: [{ toJSON(key) { return 'index=' + key; } }] }));

  // Symbols, undefined, functions, non-enumerable and inherited properties.
  const sym = Symbol('s');
  const o = { a: undefined, b: () => 1, [sym]: 'symbol key', c: sym, d: null, e: 'kept' };
  Object.defineProperty(o, 'hidden', { value: 'no', enumerable: false });
  Object.defineProperty(o, 'shown', { get() { return 'getter'; }, enumerable: true });
  show('skips', () => s(o));
  show('inherited', () => s(Object.create({ inherited: 1 }, { own: { value: 2, enumerable: true } })));
  show('null-proto', () => { const n = Object.create(null); n.x = 'y'; return s(n); });
  class Point { constructor() { this.x = 1; this.y = 'two'; } get norm() { return 3; } }
  show('class', () => s(new Point()));

  // Deleted properties leave holes in a shape; many properties make a large one.
  const holes = { a: 1, b: 2, c: 3, d: 4 };
  delete holes.b;
  holes.e = 5;
  delete holes.a;
  show('holes', () => s(holes));
  const big = {};
  for (let i = 0; i < 300; i++) big['k' + i] = i % 3 ? 'v' + i : i;
  for (let i = 0; i < 300; i += 7) delete big['k' + i];
  show('big', () => s(big));

  // Replacers, property lists and indents.
  show('replacer', () => s({ a: 1, b: 'two', c: { d: 3 } }, (k, v) => (typeof v === 'number' ? v * 10 : v)));
  show('replacer-drops', () => s({ a: 1, b: 'x', c: 'y' }, (k, v) => (k === 'b' ? undefined : v)));
  show('list', () => s({ a: 1, b: 2, c: { a: 3, b: 4 } }, ['b', 'c']));
  show('indent', () => s({ a: [1, { b: 'c' }], d: {}, e: [] }, null, 2));
  show('indent-tab', () => s({ a: { b: 'c' } }, null, '\t'));
  show('indent-cap', () => s({ a: 1 }, null, 20));
  show('indent-str', () => s({ a: { b: 1 } }, null, '-->-->-->-->-->'));

  // Values of every kind.
  show('values', () => s({ n: 1.5, neg0: -0, nan: NaN, inf: -Infinity, t: true, f: false, big: 2 ** 53, small: 1e-7 }));
  show('boxed', () => s({ s: new String('boxed'), n: new Number(3), b: new Boolean(false) }));
  show('date', () => s({ when: new Date(Date.UTC(2024, 1, 29, 12, 30)) }));
  show('array', () => s([1, 'a', undefined, () => 1, Symbol('x'), null, [2, [3]], { x: [] }]));
  show('sparse', () => s([, 1, , 2]));
  show('proxy', () => s(new Proxy({ a: 1, b: 'c' }, { get: (t, k) => (k === 'a' ? 'trapped' : t[k]) })));
  show('args', () => s((function () { return arguments; })(1, 'two')));
  show('frozen', () => s(Object.freeze({ a: 'frozen', b: [1] })));
  show('proto-key', () => s(JSON.parse('{"__proto__": "own", "x": 1}')));
  show('top-string', () => s('top "level" \u0000'));
  show('top-values', () => [s(undefined), s(null), s(() => 1), s(Symbol('t')), s(true)].join('|'));

  // Errors.
  show('bigint', () => s({ a: 1n }));
  const loop = { a: 'x' };
  loop.self = loop;
  show('circular', () => s(loop));
  show('getter-throws', () => s({ a: 'ok', get b() { throw new RangeError('no'); } }));

  // Random objects of random strings (a fixed seed), each with and without an indent: a
  // hash of every output.
  let seed = 12345;
  const rand = (n) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  const alphabet = ['a', 'z', ' ', '"', '\\', '\n', '\u0000', '\u001f', '\u007f', '\u00ff', '\u0100', '\u2028', '\ud800', '\udfff', '\ud83d\ude00', '7'];
  const text = () => Array.from({ length: rand(24) }, () => alphabet[rand(alphabet.length)]).join('');
  const value = (depth) => {
    switch (rand(depth > 2 ? 4 : 6)) {
      case 0: return text();
      case 1: return rand(1000) - 500;
      case 2: return rand(2) ? null : undefined;
      case 3: return rand(2) === 1;
      case 4: return Array.from({ length: rand(5) }, () => value(depth + 1));
      default: {
        const obj = {};
        for (let i = rand(8); i > 0; i--) obj[rand(4) ? text() : String(rand(50))] = value(depth + 1);
        return obj;
      }
    }
  };
  let hash = 2166136261;
  let total = 0;
  for (let i = 0; i < 300; i++) {
    const v = value(0);
    for (const json of [s(v), s(v, null, i % 5)]) {
      if (json === undefined) continue;
      total += json.length;
      for (let j = 0; j < json.length; j++) hash = Math.imul(hash ^ json.charCodeAt(j), 16777619) >>> 0;
    }
  }
  out.push('random ' + total + ' ' + hash);

  event.datasetRecords.stringify = { newValue: out.join('\n'), op: 'replace' };
  callback(null, event);
};
