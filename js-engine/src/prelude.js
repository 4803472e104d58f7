// The Node.js / AWS Lambda surface a Sync Trigger script sees, installed once per script
// at deploy (then snapshotted). `native` is provided by the engine: log(level, message),
// seed() (four random u32s), requestId().
(function (global, native) {
  "use strict";

  // --- util.inspect and util.format, as Node prints values -------------------------
  // Strings are quoted inside objects and for %o/%O (`quote`), bare at the top of a log line.
  function inspect(value, depth, seen, quote) {
    if (depth === undefined) depth = 2;
    seen = seen || [];
    switch (typeof value) {
      case "string": return seen.length || quote ? "'" + value.replace(/\\/g, "\\\\").replace(/'/g, "\\'").replace(/\n/g, "\\n") + "'" : value;
      case "number": return Object.is(value, -0) ? "-0" : String(value);
      case "bigint": return String(value) + "n";
      case "boolean": case "undefined": return String(value);
      case "symbol": return value.toString();
      case "function": return value.name ? "[Function: " + value.name + "]" : "[Function (anonymous)]";
    }
    if (value === null) return "null";
    if (seen.indexOf(value) !== -1) return "[Circular *1]";
    if (value instanceof Error) return value.stack ? String(value.name) + ": " + value.message + "\n" + ownFrames(value.stack) : String(value);
    if (value instanceof Date) return isNaN(value) ? "Invalid Date" : value.toISOString();
    if (value instanceof RegExp) return String(value);
    const nested = seen.concat([value]);
    const item = (v) => inspect(v, depth - 1, nested);
    if (Array.isArray(value)) {
      if (depth < 0) return "[Array]";
      if (value.length === 0) return "[]";
      const items = value.slice(0, 100).map(item);
      if (value.length > 100) items.push("... " + (value.length - 100) + " more items");
      return wrap("[", items, "]");
    }
    if (value instanceof Map) {
      if (depth < 0) return "[Map]";
      return "Map(" + value.size + ") " + wrap("{", Array.from(value, ([k, v]) => item(k) + " => " + item(v)), "}");
    }
    if (value instanceof Set) {
      if (depth < 0) return "[Set]";
      return "Set(" + value.size + ") " + wrap("{", Array.from(value, item), "}");
    }
    const keys = Object.keys(value);
    const proto = Object.getPrototypeOf(value);
    const name = proto === null ? "[Object: null prototype] " : proto !== Object.prototype && proto.constructor && proto.constructor.name ? proto.constructor.name + " " : "";
    if (depth < 0) return name ? "[" + name.trim() + "]" : "[Object]";
    if (keys.length === 0) return name + "{}";
    const key = (k) => /^[A-Za-z_$][\w$]*$/.test(k) ? k : "'" + k.replace(/'/g, "\\'") + "'";
    return name + wrap("{", keys.map((k) => key(k) + ": " + item(value[k])), "}");
  }

  // A stack without the frames of this prelude.
  function ownFrames(stack) {
    return stack.split("\n").filter((line) => line && line.indexOf("eval_script") === -1).join("\n");
  }

  function wrap(open, items, close) {
    const oneLine = open + " " + items.join(", ") + " " + close;
    if (oneLine.length <= 80 && items.every((i) => i.indexOf("\n") === -1)) return oneLine;
    return open + "\n" + items.map((i) => "  " + i.replace(/\n/g, "\n  ")).join(",\n") + "\n" + close;
  }

  function stringifySafe(value) {
    try { return JSON.stringify(value); } catch (e) { return "[Circular]"; }
  }

  function format(first, ...rest) {
    if (typeof first !== "string") return [first, ...rest].map((v) => inspect(v)).join(" ");
    // As Node: a lone string is printed as it is (no directive is read in it).
    if (rest.length === 0) return first;
    let out = "";
    let i = 0;
    let from = 0;
    for (let at = first.indexOf("%"); at !== -1 && at + 1 < first.length; at = first.indexOf("%", from)) {
      const spec = first[at + 1];
      let text;
      if (spec === "%") text = "%";
      else if ("sdifjoOc".indexOf(spec) === -1 || i >= rest.length) { out += first.slice(from, at + 1); from = at + 1; continue; }
      else {
        const arg = rest[i++];
        switch (spec) {
          case "s": text = typeof arg === "string" ? arg : typeof arg === "object" && arg !== null ? inspect(arg, 1) : String(arg); break;
          case "d": text = typeof arg === "object" ? "NaN" : String(Number(arg)); break;
          case "i": text = typeof arg === "object" ? "NaN" : String(parseInt(arg, 10)); break;
          case "f": text = String(parseFloat(arg)); break;
          case "j": text = stringifySafe(arg); break;
          case "o": text = inspect(arg, 4, [], true); break;
          case "O": text = inspect(arg, 2, [], true); break;
          case "c": text = ""; break;
        }
      }
      out += first.slice(from, at) + text;
      from = at + 2;
    }
    out += first.slice(from);
    for (; i < rest.length; i++) out += " " + (typeof rest[i] === "string" ? rest[i] : inspect(rest[i]));
    return out;
  }

  // --- console -----------------------------------------------------------------------
  const DEBUG = 0, INFO = 1, WARN = 2, ERROR = 3;
  // A log line never fails an update: half a surrogate pair becomes U+FFFD, as Node
  // writes it.
  const LONE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
  const wellFormed = (text) => text.replace(LONE, "\uFFFD");
  const logger = (level) => function (...args) { native.log(level, wellFormed(format(...args))); };
  const console = {
    log: logger(INFO), info: logger(INFO), warn: logger(WARN), error: logger(ERROR),
    debug: logger(DEBUG), trace: logger(DEBUG),
    dir: (value) => native.log(INFO, wellFormed(inspect(value))),
  };
  Object.defineProperty(global, "console", { value: console, writable: true, configurable: true });

  // --- randomness: reseeded from the host's CSPRNG in every invocation that uses it ------
  // (a snapshot would otherwise freeze the generator: every call would see one value)
  let a = 0, b = 0, c = 0, d = 0;
  let seeded = false;
  function sfc32() {
    if (!seeded) {
      const seed = native.seed();
      a = seed[0]; b = seed[1]; c = seed[2]; d = seed[3];
      seeded = true;
      for (let n = 0; n < 12; n++) sfc32();
    }
    let t = (a + b) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    d = (d + 1) | 0;
    t = (t + d) | 0;
    c = (c + t) | 0;
    return t >>> 0;
  }
  Math.random = function random() { return sfc32() / 4294967296; };
  function randomBytes(n) {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = sfc32() & 0xff;
    return out;
  }
  function randomUUID() {
    const b = randomBytes(16);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => (x < 16 ? "0" : "") + x.toString(16)).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }
  const webCrypto = {
    randomUUID,
    getRandomValues(array) {
      if (!ArrayBuffer.isView(array)) throw new TypeError("The data argument must be an integer-type TypedArray");
      const bytes = new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
      if (bytes.length > 65536) throw new RangeError("The ArrayBufferView's byte length (" + bytes.length + ") exceeds the number of bytes of entropy available via this API (65536)");
      bytes.set(randomBytes(bytes.length));
      return array;
    },
  };
  Object.defineProperty(global, "crypto", { value: webCrypto, writable: true, configurable: true, enumerable: false });

  // --- the clock: the invocation's wall-clock second, advanced only by timers ----------
  // The trigger's time is virtual: Date.now() is the frozen start of the invocation plus
  // the due time of the timer that is running, so timers fire in Node's order without
  // waiting, and the same invocation replays the same way.
  const RealDate = Date;
  let clockBase = RealDate.now();
  let elapsed = 0;
  function VirtualDate(...args) {
    if (!new.target) return new RealDate(clockBase + elapsed).toString();
    return args.length === 0 ? new RealDate(clockBase + elapsed) : new RealDate(...args);
  }
  VirtualDate.prototype = RealDate.prototype;
  VirtualDate.now = function now() { return clockBase + elapsed; };
  VirtualDate.UTC = RealDate.UTC;
  VirtualDate.parse = RealDate.parse;
  Object.defineProperty(RealDate.prototype, "constructor", { value: VirtualDate, writable: true, configurable: true });
  Object.defineProperty(global, "Date", { value: VirtualDate, writable: true, configurable: true });
  global.performance = { now: () => elapsed, timeOrigin: clockBase };

  // --- the event loop: Node's phases on the virtual clock -----------------------------
  // The host drives it: after the handler returns it runs nextTick callbacks and promise
  // jobs (`ticks` then the engine's job queue) until both are empty, then `step` runs the
  // next macrotask (an immediate of the check phase, or the earliest due timer), and so
  // on until the result is posted or nothing is left. The handler is called as Lambda
  // calls it, from an I/O callback: immediates run before the first timers.
  let timerSeq = 0;
  const timers = new Map();
  let immediates = [];
  let checkBatch = null;
  let ticks = [];
  class Timeout {
    constructor(id) { this._id = id; }
    ref() { return this; }
    unref() { return this; }
    hasRef() { return true; }
    refresh() { const t = timers.get(this._id); if (t) { t.due = elapsed + t.delay; t.seq = ++timerSeq; } return this; }
    close() { timers.delete(this._id); return this; }
    [Symbol.toPrimitive]() { return this._id; }
  }
  class Immediate {
    constructor(entry) { this._entry = entry; }
    ref() { return this; }
    unref() { return this; }
    hasRef() { return true; }
  }
  function callbackOf(fn) {
    if (typeof fn !== "function") {
      const e = new TypeError('The "callback" argument must be of type function. Received ' + (fn === null ? "null" : typeof fn === "object" ? "an instance of " + ((fn.constructor && fn.constructor.name) || "Object") : "type " + typeof fn + " (" + String(fn) + ")"));
      e.code = "ERR_INVALID_ARG_TYPE";
      throw e;
    }
    return fn;
  }
  function schedule(fn, ms, args, repeat) {
    callbackOf(fn);
    let delay = Number(ms);
    if (!(delay >= 1 && delay <= 2147483647)) delay = 1;
    const id = ++timerSeq;
    timers.set(id, { id, due: elapsed + delay, seq: id, delay, fn, args, repeat });
    return new Timeout(id);
  }
  const clear = (t) => { if (t !== null && t !== undefined) timers.delete(typeof t === "object" ? t._id : Number(t)); };
  global.setTimeout = (fn, ms, ...args) => schedule(fn, ms, args, false);
  global.setInterval = (fn, ms, ...args) => schedule(fn, ms, args, true);
  global.clearTimeout = global.clearInterval = clear;
  global.setImmediate = (fn, ...args) => {
    const entry = { fn: callbackOf(fn), args, cleared: false };
    immediates.push(entry);
    return new Immediate(entry);
  };
  global.clearImmediate = (i) => { if (i && i._entry) i._entry.cleared = true; };
  function nextTick(fn, ...args) { ticks.push([callbackOf(fn), args]); }

  // Runs the queued nextTick callbacks (and those they queue); false when there were none.
  function runTicks() {
    if (ticks.length === 0) return false;
    while (ticks.length) {
      const [fn, args] = ticks.shift();
      fn(...args);
    }
    return true;
  }

  // Runs one macrotask: 1 when one ran, 0 when nothing is left, 2 when the next is a
  // timer due at or after the deadline.
  function step() {
    for (;;) {
      if (checkBatch === null) checkBatch = immediates.splice(0);
      while (checkBatch.length) {
        const entry = checkBatch.shift();
        if (entry.cleared) continue;
        entry.fn(...entry.args);
        return 1;
      }
      // The timers phase: the earliest due timer, if it is due now.
      let next = null;
      for (const t of timers.values()) {
        if (next === null || t.due < next.due || (t.due === next.due && t.seq < next.seq)) next = t;
      }
      if (next !== null && next.due <= elapsed) {
        if (next.repeat) { next.due = elapsed + next.delay; next.seq = ++timerSeq; } else timers.delete(next.id);
        next.fn(...next.args);
        return 1;
      }
      if (immediates.length) { checkBatch = null; continue; }
      if (next === null) return 0;
      if (next.due >= config.deadlineMs) return 2;
      elapsed = next.due;
      checkBatch = [];
    }
  }

  // Promises rejected with no handler by the time the jobs ran (the host's tracker).
  const unhandled = new Map();
  function track(promise, reason, handled) {
    if (handled) unhandled.delete(promise);
    else unhandled.set(promise, reason);
  }

  global.queueMicrotask = (fn) => { callbackOf(fn); Promise.resolve().then(() => fn()); };
  Object.defineProperty(global, "global", { value: global, writable: true, configurable: true, enumerable: false });
  const env = {};
  global.process = {
    env,
    argv: ["/var/lang/bin/node", "/var/runtime/index.mjs"],
    platform: "linux",
    arch: "x64",
    version: "v20.0.0",
    versions: { node: "20.0.0" },
    pid: 1,
    title: "node",
    nextTick,
    cwd: () => "/var/task",
    hrtime: Object.assign((prev) => {
      const ns = elapsed * 1e6;
      const t = [Math.floor(ns / 1e9), ns % 1e9];
      return prev ? [t[0] - prev[0], t[1] - prev[1]] : t;
    }, { bigint: () => BigInt(elapsed) * 1000000n }),
    memoryUsage: () => ({ rss: 0, heapTotal: 0, heapUsed: 0, external: 0, arrayBuffers: 0 }),
    uptime: () => elapsed / 1000,
    emitWarning: (w) => console.warn(String(w)),
    on() { return this; },
    once() { return this; },
    off() { return this; },
    removeListener() { return this; },
    exit() { throw new Error("process.exit is not available in a Sync Trigger"); },
  };

  // --- structuredClone and text encoding -------------------------------------------------
  function structuredClone(value, seen) {
    if (value === null || typeof value !== "object") {
      if (typeof value === "function" || typeof value === "symbol") {
        const e = new Error((typeof value === "function" ? String(value) : value.toString()) + " could not be cloned.");
        e.name = "DataCloneError";
        throw e;
      }
      return value;
    }
    seen = seen || new Map();
    if (seen.has(value)) return seen.get(value);
    let out;
    if (value instanceof RealDate) out = new RealDate(value.getTime());
    else if (value instanceof RegExp) out = new RegExp(value.source, value.flags);
    else if (ArrayBuffer.isView(value)) out = new value.constructor(value);
    else if (value instanceof Map) { out = new Map(); seen.set(value, out); value.forEach((v, k) => out.set(structuredClone(k, seen), structuredClone(v, seen))); return out; }
    else if (value instanceof Set) { out = new Set(); seen.set(value, out); value.forEach((v) => out.add(structuredClone(v, seen))); return out; }
    else if (Array.isArray(value)) { out = []; seen.set(value, out); value.forEach((v, i) => { out[i] = structuredClone(v, seen); }); return out; }
    else if (value instanceof Error) { out = new value.constructor(value.message); }
    else { out = {}; seen.set(value, out); for (const k of Object.keys(value)) out[k] = structuredClone(value[k], seen); return out; }
    seen.set(value, out);
    return out;
  }
  global.structuredClone = (value) => structuredClone(value);

  class TextEncoder {
    get encoding() { return "utf-8"; }
    encode(input) {
      const text = wellFormed(input === undefined ? "" : String(input));
      const out = [];
      for (const ch of text) {
        const cp = ch.codePointAt(0);
        if (cp < 0x80) out.push(cp);
        else if (cp < 0x800) out.push(0xc0 | (cp >> 6), 0x80 | (cp & 63));
        else if (cp < 0x10000) out.push(0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63));
        else out.push(0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 63), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63));
      }
      return new Uint8Array(out);
    }
  }
  class TextDecoder {
    constructor(label) {
      const l = label === undefined ? "utf-8" : String(label).trim().toLowerCase();
      if (l !== "utf-8" && l !== "utf8" && l !== "unicode-1-1-utf-8") throw new RangeError('The "' + label + '" encoding is not supported');
    }
    get encoding() { return "utf-8"; }
    decode(input) {
      if (input === undefined) return "";
      const b = input instanceof ArrayBuffer ? new Uint8Array(input) : new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
      let out = "";
      let i = b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf ? 3 : 0;
      while (i < b.length) {
        const x = b[i];
        let cp = 0xfffd, n = 1;
        if (x < 0x80) cp = x;
        else if (x >= 0xc2 && x < 0xe0 && (b[i + 1] & 0xc0) === 0x80) { cp = ((x & 31) << 6) | (b[i + 1] & 63); n = 2; }
        else if (x >= 0xe0 && x < 0xf0 && (b[i + 1] & 0xc0) === 0x80 && (b[i + 2] & 0xc0) === 0x80) {
          const v = ((x & 15) << 12) | ((b[i + 1] & 63) << 6) | (b[i + 2] & 63);
          if (v >= 0x800 && (v < 0xd800 || v > 0xdfff)) { cp = v; n = 3; }
        } else if (x >= 0xf0 && x < 0xf5 && (b[i + 1] & 0xc0) === 0x80 && (b[i + 2] & 0xc0) === 0x80 && (b[i + 3] & 0xc0) === 0x80) {
          const v = ((x & 7) << 18) | ((b[i + 1] & 63) << 12) | ((b[i + 2] & 63) << 6) | (b[i + 3] & 63);
          if (v >= 0x10000 && v <= 0x10ffff) { cp = v; n = 4; }
        }
        out += String.fromCodePoint(cp);
        i += n;
      }
      return out;
    }
  }
  global.TextEncoder = TextEncoder;
  global.TextDecoder = TextDecoder;

  // --- require: Node's built-ins that make sense without I/O ---------------------------
  const builtins = {
    util: () => ({
      format, inspect: (v, opts) => inspect(v, opts && opts.depth !== undefined ? opts.depth : 2),
      promisify: (fn) => (...args) => new Promise((resolve, reject) => fn(...args, (err, value) => (err ? reject(err) : resolve(value)))),
      isDeepStrictEqual: (x, y) => stringifySafe(x) === stringifySafe(y),
      types: { isDate: (v) => v instanceof RealDate, isRegExp: (v) => v instanceof RegExp, isPromise: (v) => v instanceof Promise, isNativeError: (v) => v instanceof Error, isMap: (v) => v instanceof Map, isSet: (v) => v instanceof Set },
      TextEncoder, TextDecoder,
    }),
    path: () => {
      const normalize = (p) => {
        const abs = p.startsWith("/");
        const out = [];
        for (const part of p.split("/")) {
          if (part === "" || part === ".") continue;
          if (part === "..") { if (out.length && out[out.length - 1] !== "..") out.pop(); else if (!abs) out.push(".."); }
          else out.push(part);
        }
        const joined = (abs ? "/" : "") + out.join("/");
        return joined || (abs ? "/" : ".") ;
      };
      const basename = (p, ext) => { const b = p.replace(/\/+$/, "").split("/").pop(); return ext && b.endsWith(ext) && b !== ext ? b.slice(0, -ext.length) : b; };
      const extname = (p) => { const b = basename(p); const i = b.lastIndexOf("."); return i <= 0 ? "" : b.slice(i); };
      const dirname = (p) => { const i = p.replace(/\/+$/, "").lastIndexOf("/"); return i < 0 ? "." : i === 0 ? "/" : p.slice(0, i); };
      const join = (...parts) => normalize(parts.filter((x) => x !== "").join("/") || ".");
      const resolve = (...parts) => { let r = ""; for (const p of parts) r = p.startsWith("/") ? p : r + "/" + p; return normalize(r.startsWith("/") ? r : "/var/task/" + r); };
      const path = { sep: "/", delimiter: ":", normalize, basename, extname, dirname, join, resolve, isAbsolute: (p) => p.startsWith("/") };
      path.posix = path;
      return path;
    },
    querystring: () => {
      const escape = (s) => encodeURIComponent(s);
      const unescape = (s) => { try { return decodeURIComponent(s); } catch (_) { return s; } };
      const value = (v) => typeof v === "string" ? v : typeof v === "number" && isFinite(v) ? String(v) : typeof v === "bigint" || typeof v === "boolean" ? String(v) : "";
      return {
        escape, unescape,
        stringify(obj, sep = "&", eq = "=") {
          if (obj === null || typeof obj !== "object") return "";
          return Object.keys(obj).map((k) => Array.isArray(obj[k]) ? obj[k].map((v) => escape(k) + eq + escape(value(v))).join(sep) : escape(k) + eq + escape(value(obj[k]))).filter((x) => x).join(sep);
        },
        parse(text, sep = "&", eq = "=") {
          const out = Object.create(null);
          if (typeof text !== "string" || text === "") return out;
          for (const pair of text.split(sep)) {
            if (!pair) continue;
            const at = pair.indexOf(eq);
            const k = unescape((at < 0 ? pair : pair.slice(0, at)).replace(/\+/g, " "));
            const v = at < 0 ? "" : unescape(pair.slice(at + eq.length).replace(/\+/g, " "));
            if (k in out) out[k] = [].concat(out[k], v); else out[k] = v;
          }
          return out;
        },
      };
    },
    events: () => {
      class EventEmitter {
        constructor() { this._events = {}; }
        on(name, fn) { (this._events[name] = this._events[name] || []).push(fn); return this; }
        addListener(name, fn) { return this.on(name, fn); }
        once(name, fn) { const w = (...a) => { this.off(name, w); fn.apply(this, a); }; w.listener = fn; return this.on(name, w); }
        off(name, fn) { const l = this._events[name]; if (l) this._events[name] = l.filter((x) => x !== fn && x.listener !== fn); return this; }
        removeListener(name, fn) { return this.off(name, fn); }
        removeAllListeners(name) { if (name === undefined) this._events = {}; else delete this._events[name]; return this; }
        emit(name, ...args) {
          const l = this._events[name];
          if (!l || l.length === 0) { if (name === "error") throw args[0] instanceof Error ? args[0] : new Error("Unhandled error. (" + inspect(args[0]) + ")"); return false; }
          for (const fn of l.slice()) fn.apply(this, args);
          return true;
        }
        listenerCount(name) { return (this._events[name] || []).length; }
        listeners(name) { return (this._events[name] || []).map((f) => f.listener || f); }
        eventNames() { return Object.keys(this._events).filter((k) => this._events[k].length); }
        setMaxListeners() { return this; }
      }
      EventEmitter.EventEmitter = EventEmitter;
      EventEmitter.default = EventEmitter;
      return EventEmitter;
    },
    assert: () => {
      const fail = (message, fallback) => { const e = new Error(message === undefined ? fallback : message); e.name = "AssertionError"; e.code = "ERR_ASSERTION"; throw e; };
      const assert = (v, m) => { if (!v) fail(m, "The expression evaluated to a falsy value"); };
      assert.ok = assert;
      assert.equal = (x, y, m) => { if (x != y) fail(m, inspect(x) + " == " + inspect(y)); };
      assert.notEqual = (x, y, m) => { if (x == y) fail(m, inspect(x) + " != " + inspect(y)); };
      assert.strictEqual = (x, y, m) => { if (!Object.is(x, y)) fail(m, "Expected values to be strictly equal:\n\n" + inspect(x) + " !== " + inspect(y) + "\n"); };
      assert.notStrictEqual = (x, y, m) => { if (Object.is(x, y)) fail(m, 'Expected "actual" to be strictly unequal to: ' + inspect(y)); };
      assert.deepStrictEqual = (x, y, m) => { if (stringifySafe(x) !== stringifySafe(y)) fail(m, "Expected values to be strictly deep-equal"); };
      assert.deepEqual = assert.deepStrictEqual;
      assert.fail = (m) => fail(m, "Failed");
      assert.throws = (fn, _e, m) => { try { fn(); } catch (_) { return; } fail(typeof _e === "string" ? _e : m, "Missing expected exception."); };
      assert.strict = assert;
      return assert;
    },
  };
  const modules = {};
  // Node modules that need I/O or the network, and packages that were never bundled.
  function require(name) {
    const id = typeof name === "string" && name.startsWith("node:") ? name.slice(5) : name;
    if (Object.prototype.hasOwnProperty.call(builtins, id)) return modules[id] || (modules[id] = builtins[id]());
    const e = new Error("Cannot find module '" + name + "': a Sync Trigger runs without I/O, network or node_modules; bundle the packages it needs into index.js (built-in modules here: " + Object.keys(builtins).join(", ") + ")");
    e.code = "MODULE_NOT_FOUND";
    throw e;
  }
  global.require = require;

  // --- loading the script as a CommonJS module -----------------------------------------
  let handler = null;
  let config = {};

  function load(wrapper, exportName, settings) {
    config = settings;
    setEnvironment("us-east-1");
    const module = { exports: {}, id: ".", filename: "/var/task/index.js", loaded: false, children: [], paths: [] };
    wrapper.call(module.exports, module.exports, require, module, "/var/task/index.js", "/var/task");
    module.loaded = true;
    const fn = module.exports[exportName];
    if (typeof fn !== "function") {
      throw new TypeError("index." + exportName + " is " + (fn === undefined ? "undefined" : "not a function") + ": export it with exports." + exportName + " = function (event, context, callback) { ... }");
    }
    handler = fn;
  }

  // Lambda's environment, from the function and the event's region.
  function setEnvironment(region) {
    Object.assign(env, {
      AWS_REGION: region,
      AWS_DEFAULT_REGION: region,
      AWS_LAMBDA_FUNCTION_NAME: config.functionName,
      AWS_LAMBDA_FUNCTION_VERSION: config.functionVersion,
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: config.memoryLimitInMB,
      AWS_LAMBDA_LOG_GROUP_NAME: "/aws/lambda/" + config.functionName,
      AWS_LAMBDA_LOG_STREAM_NAME: "synctrig-wasm",
      AWS_EXECUTION_ENV: "AWS_Lambda_nodejs20.x",
      LAMBDA_TASK_ROOT: "/var/task",
      LAMBDA_RUNTIME_DIR: "/var/runtime",
      LANG: "en_US.UTF-8",
      TZ: ":UTC",
      NODE_PATH: "/opt/nodejs/node20/node_modules:/opt/nodejs/node_modules:/var/runtime/node_modules:/var/runtime:/var/task",
      PATH: "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin",
    });
  }

  // --- one invocation ------------------------------------------------------------------
  // Lambda's errorMessage for what a handler failed with.
  function message(err) {
    try {
      if (err instanceof Error) return String(err.message);
      return err.toString();
    } catch (_) {
      return "callback called with Error argument, but there was a problem while retrieving one or more of its message, name, and stack";
    }
  }

  function describe(e) {
    return e instanceof Error ? e.name + ": " + e.message + (e.stack ? "\n" + ownFrames(e.stack) : "") : "Uncaught " + inspect(e, 1);
  }

  let state = null;

  // The result as Lambda posts it: JSON.stringify(result ?? null), at the moment it is posted.
  function post(result) {
    if (state.posted) return;
    state.posted = true;
    try {
      state.json = JSON.stringify(result === undefined ? null : result);
      if (state.json === undefined) state.json = "null";
    } catch (e) {
      state.failure = "the handler's result cannot be serialised as JSON (" + describe(e) + ")";
    }
  }
  function postError(err) {
    if (state.posted) return;
    state.posted = true;
    state.error = message(err);
  }
  function postFailure(text) {
    if (state.posted) return;
    state.posted = true;
    state.failure = text;
  }

  function invoke(event) {
    state = { posted: false, finished: false, json: null, error: null, failure: null, pending: null, waits: true };
    const s = state;
    seeded = false;
    clockBase = RealDate.now();
    elapsed = 0;
    timers.clear();
    immediates = [];
    checkBatch = null;
    ticks = [];
    unhandled.clear();
    setEnvironment(event.region);
    // As Lambda's runtime: the first of callback/done/succeed/fail (or the returned
    // Promise) counts; an error is posted at once, a result from `callback` when the event
    // loop is empty (unless callbackWaitsForEmptyEventLoop is false).
    const once = (fn) => (...args) => { if (s.finished) return; s.finished = true; fn(...args); };
    const done = (err, result) => { if (err !== undefined && err !== null) postError(err); else post(result); };
    const context = {
      callbackWaitsForEmptyEventLoop: true,
      functionVersion: config.functionVersion,
      functionName: config.functionName,
      memoryLimitInMB: config.memoryLimitInMB,
      logGroupName: "/aws/lambda/" + config.functionName,
      logStreamName: "synctrig-wasm",
      clientContext: undefined,
      identity: undefined,
      invokedFunctionArn: config.invokedFunctionArn,
      awsRequestId: native.requestId(),
      getRemainingTimeInMillis: () => Math.max(0, config.deadlineMs - elapsed),
      done: once(done),
      succeed: once((result) => done(null, result)),
      fail: once((err) => done(err === undefined || err === null ? "handled" : err)),
    };
    Object.defineProperty(context, "callbackWaitsForEmptyEventLoop", {
      get: () => s.waits, set: (v) => { s.waits = v; }, enumerable: true, configurable: true,
    });
    const callback = once((err, result) => {
      if ((err !== undefined && err !== null) || !s.waits) done(err, result);
      else s.pending = [null, result];
    });
    let returned;
    try {
      returned = handler(event, context, callback);
    } catch (e) {
      postFailure("the handler threw " + describe(e));
      return;
    }
    if (returned !== null && typeof returned === "object" && typeof returned.then === "function") {
      returned.then(context.succeed, context.fail);
    }
  }

  // After the jobs ran: an unhandled rejection fails an invocation not yet posted.
  function afterJobs() {
    if (unhandled.size && !state.posted) {
      const reason = unhandled.values().next().value;
      postFailure("a promise was rejected and nothing handled it: " + describe(reason));
    }
    unhandled.clear();
    return state.posted;
  }

  // An error escaped a timer, an immediate or a nextTick callback.
  function uncaught(text) {
    postFailure("an error escaped a callback of the handler: " + text);
  }

  // The event loop is empty: the callback's result is posted now (or null: nothing settled).
  function finish() {
    if (!state.posted) {
      if (state.pending) {
        const [err, result] = state.pending;
        if (err !== undefined && err !== null) postError(err); else post(result);
      } else {
        postFailure("the handler finished without calling its callback, context.done/succeed/fail, or settling the Promise it returned");
      }
    }
    return state;
  }

  // Top-level code left a rejected promise unhandled: the deploy fails, as Lambda's init would.
  function afterInit() {
    const reason = unhandled.size ? "a promise was rejected and nothing handled it: " + describe(unhandled.values().next().value) : null;
    unhandled.clear();
    return reason;
  }

  return { load, invoke, inspect, format, runTicks, step, track, afterJobs, afterInit, uncaught, finish };

})
