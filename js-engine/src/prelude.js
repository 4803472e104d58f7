// The Node.js / AWS Lambda surface a Sync Trigger script sees, installed once per script
// at deploy (then snapshotted). `native` is provided by the engine: log(level, message),
// seed() (four random u32s), requestId().
(function (global, native) {
  "use strict";

  // --- util.inspect and util.format, as Node prints values -------------------------
  // Strings are quoted inside objects and for %o/%O (`quote`), bare at the top of a log line.
  // Strings in Node's quotes: single, or double when the text holds a single quote, or
  // backticks when it holds both.
  function quoteString(text) {
    const q = text.indexOf("'") === -1 ? "'" : text.indexOf('"') === -1 ? '"' : text.indexOf("`") === -1 && text.indexOf("${") === -1 ? "`" : "'";
    const escaped = text.replace(/[\\\x00-\x1f\x7f]/g, (ch) => {
      const named = { "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r", "\b": "\\b", "\f": "\\f", "\v": "\\v" }[ch];
      return named || "\\x" + ch.charCodeAt(0).toString(16).toUpperCase().padStart(2, "0");
    });
    return q + (q === "'" ? escaped.replace(/'/g, "\\'") : escaped) + q;
  }

  // util.inspect's layout (compact 3, breakLength 80): `ctx` carries the indentation and
  // the depth of the last object formatted, as Node's does.
  function inspect(value, depth, seen, quote, ctx) {
    if (depth === undefined) depth = 2;
    seen = seen || [];
    ctx = ctx || { indent: 0, currentDepth: 0, level: 0 };
    switch (typeof value) {
      case "string": return seen.length || quote ? quoteString(value) : value;
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
    if (typeof Buffer === "function" && value instanceof Buffer) {
      const shown = Array.from(value.subarray(0, 50), (x) => (x < 16 ? "0" : "") + x.toString(16)).join(" ");
      return "<Buffer" + (shown ? " " + shown : "") + (value.length > 50 ? " ... " + (value.length - 50) + " more bytes" : "") + ">";
    }
    const level = ctx.level;
    const nested = seen.concat([value]);
    const item = (v) => {
      ctx.indent += 2;
      ctx.level = level + 1;
      const text = inspect(v, depth - 1, nested, true, ctx);
      ctx.indent -= 2;
      ctx.level = level;
      return text;
    };
    const layout = (open, items, close) => {
      const out = wrap(open, items, close, ctx, level);
      return out;
    };
    if (Array.isArray(value)) {
      if (depth < 0) return "[Array]";
      ctx.currentDepth = level;
      if (value.length === 0) return ctx.hidden ? "[ [length]: 0 ]" : "[]";
      const items = value.slice(0, 100).map(item);
      if (value.length > 100) items.push("... " + (value.length - 100) + " more items");
      // %o shows what Node's showHidden shows of an array.
      if (ctx.hidden) items.push("[length]: " + value.length);
      return layout("[", items, "]");
    }
    if (value instanceof Map) {
      if (depth < 0) return "[Map]";
      ctx.currentDepth = level;
      if (value.size === 0) return "Map(0) {}";
      return layout("Map(" + value.size + ") {", Array.from(value, ([k, v]) => item(k) + " => " + item(v)), "}");
    }
    if (value instanceof Set) {
      if (depth < 0) return "[Set]";
      ctx.currentDepth = level;
      if (value.size === 0) return "Set(0) {}";
      return layout("Set(" + value.size + ") {", Array.from(value, item), "}");
    }
    const keys = Object.keys(value);
    const proto = Object.getPrototypeOf(value);
    const name = proto === null ? "[Object: null prototype] " : proto !== Object.prototype && proto.constructor && proto.constructor.name ? proto.constructor.name + " " : "";
    if (depth < 0) return name ? "[" + name.trim() + "]" : "[Object]";
    ctx.currentDepth = level;
    if (keys.length === 0) return name + "{}";
    const key = (k) => /^[A-Za-z_$][\w$]*$/.test(k) ? k : quoteString(k);
    return layout(name + "{", keys.map((k) => key(k) + ": " + item(value[k])), "}");
  }

  // A stack without the frames of this prelude.
  function ownFrames(stack) {
    return stack.split("\n").filter((line) => line && line.indexOf("eval_script") === -1).join("\n");
  }

  // Node's reduceToSingleString: entries on one line when the object holds no more than
  // three levels below it and the line fits in 80 columns with Node's allowance.
  function wrap(open, items, close, ctx, level) {
    if (ctx && ctx.currentDepth - level < 3) {
      let total = items.length * 2 + ctx.indent + open.length + 10;
      if (total <= 80 && items.every((i) => i.indexOf("\n") === -1)) {
        for (const i of items) total += i.length;
        if (total <= 80) return open + " " + items.join(", ") + " " + close;
      }
    }
    const pad = "\n" + " ".repeat(ctx ? ctx.indent : 0);
    return open + pad + "  " + items.join("," + pad + "  ") + pad + close;
  }

  function stringifySafe(value) {
    try { return JSON.stringify(value); } catch (e) { return "[Circular]"; }
  }

  const numberText = (n) => (Object.is(n, -0) ? "-0" : String(n));
  // %s as Node: numbers and BigInts as numbers, an object with a toString of its own
  // through it, other objects inspected shallowly.
  function formatS(arg) {
    if (typeof arg === "string") return arg;
    if (typeof arg === "bigint") return arg + "n";
    if (typeof arg === "number") return numberText(arg);
    if (typeof arg === "object" && arg !== null) {
      if (!(arg instanceof Error)) {
        for (let p = arg; p !== null && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
          if (Object.prototype.hasOwnProperty.call(p, "toString") && p !== Array.prototype && p !== Date.prototype && p !== RegExp.prototype) return String(arg);
        }
      }
      return inspect(arg, 0, [], true);
    }
    return String(arg);
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
          case "s": text = formatS(arg); break;
          case "d": text = typeof arg === "bigint" ? arg + "n" : typeof arg === "symbol" ? "NaN" : numberText(Number(arg)); break;
          case "i": text = typeof arg === "bigint" ? arg + "n" : typeof arg === "symbol" ? "NaN" : numberText(parseInt(arg)); break;
          case "f": text = typeof arg === "symbol" ? "NaN" : numberText(parseFloat(arg)); break;
          case "j": text = stringifySafe(arg); break;
          case "o": text = inspect(arg, 4, [], true, { indent: 0, currentDepth: 0, level: 0, hidden: true }); break;
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
  // Half a surrogate pair in text becomes U+FFFD, as Node writes it (TextEncoder); a log
  // line gets the same in the engine (native.log), where it costs no regular expression.
  const LONE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
  const wellFormed = (text) => text.replace(LONE, "\uFFFD");
  const logger = (level) => function (...args) { native.log(level, format(...args)); };
  const console = {
    log: logger(INFO), info: logger(INFO), warn: logger(WARN), error: logger(ERROR),
    debug: logger(DEBUG), trace: logger(DEBUG),
    dir: (value) => native.log(INFO, inspect(value)),
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
      // WHATWG's UTF-8 decoder: one U+FFFD for each maximal invalid subpart.
      let out = "";
      let need = 0, seen = 0, cp = 0, lower = 0x80, upper = 0xbf;
      for (let i = b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf ? 3 : 0; i < b.length; i++) {
        const x = b[i];
        if (need === 0) {
          if (x <= 0x7f) out += String.fromCharCode(x);
          else if (x >= 0xc2 && x <= 0xdf) { need = 1; cp = x & 0x1f; }
          else if (x >= 0xe0 && x <= 0xef) { if (x === 0xe0) lower = 0xa0; if (x === 0xed) upper = 0x9f; need = 2; cp = x & 0xf; }
          else if (x >= 0xf0 && x <= 0xf4) { if (x === 0xf0) lower = 0x90; if (x === 0xf4) upper = 0x8f; need = 3; cp = x & 7; }
          else out += "\uFFFD";
          continue;
        }
        if (x < lower || x > upper) {
          need = seen = cp = 0; lower = 0x80; upper = 0xbf;
          out += "\uFFFD";
          i--;
          continue;
        }
        lower = 0x80; upper = 0xbf;
        cp = (cp << 6) | (x & 0x3f);
        if (++seen === need) { out += String.fromCodePoint(cp); need = seen = cp = 0; }
      }
      if (need) out += "\uFFFD";
      return out;
    }
  }
  global.TextEncoder = TextEncoder;
  global.TextDecoder = TextDecoder;

  // --- V8's wording for the errors handlers pass on as rejection reasons ---------------
  // QuickJS words them differently; a reason built from e.message reaches the client.
  const nativeParse = JSON.parse;
  function jsonError(source) {
    const text = String(source);
    const n = text.length;
    let i = 0;
    const fail = (message) => { throw new SyntaxError(message); };
    const at = (message) => fail(message + " in JSON at position " + i);
    const unexpected = () => {
      if (i >= n) fail("Unexpected end of JSON input");
      if (typeof source !== "string") fail('"' + text + '" is not valid JSON');
      const ch = String.fromCodePoint(text.codePointAt(i));
      let shown;
      if (n < 21) shown = '"' + text + '"';
      else {
        const from = Math.max(0, i - 10), to = Math.min(n, i + 10);
        shown = (from > 0 ? '..."' : '"') + text.slice(from, to) + (to < n ? '"...' : '"');
      }
      fail("Unexpected token '" + ch + "', " + shown + " is not valid JSON");
    };
    const ws = () => { while (i < n && " \t\n\r".includes(text[i])) i++; };
    const digit = () => i < n && text[i] >= "0" && text[i] <= "9";
    const digits = () => { while (digit()) i++; };
    function literal(word) {
      for (const c of word) {
        if (i >= n || text[i] !== c) unexpected();
        i++;
      }
    }
    function string() {
      i++;
      for (;;) {
        if (i >= n) at("Unterminated string");
        const c = text[i];
        if (c === '"') { i++; return; }
        if (c < " ") at("Bad control character in string literal");
        if (c === "\\") {
          i++;
          if (i >= n) fail("Unexpected end of JSON input");
          if (text[i] === "u") {
            for (let k = 0; k < 4; k++) { i++; if (!/[0-9a-fA-F]/.test(text[i] || "")) at("Bad Unicode escape"); }
          } else if (!'"\\/bfnrt'.includes(text[i])) at("Bad escaped character");
        }
        i++;
      }
    }
    function number() {
      if (text[i] === "-") { i++; if (!digit()) at("No number after minus sign"); }
      if (text[i] === "0") { i++; if (digit()) at("Unexpected number"); } else digits();
      if (text[i] === ".") { i++; if (!digit()) at("Unterminated fractional number"); digits(); }
      if (text[i] === "e" || text[i] === "E") {
        i++;
        if (text[i] === "+" || text[i] === "-") i++;
        if (!digit()) at("Exponent part is missing a number");
        digits();
      }
    }
    function value() {
      ws();
      if (i >= n) unexpected();
      const c = text[i];
      if (c === "{") {
        i++; ws();
        if (text[i] === "}") { i++; return; }
        for (let first = true; ; first = false) {
          ws();
          if (text[i] !== '"') at(first ? "Expected property name or '}'" : "Expected double-quoted property name");
          string(); ws();
          if (text[i] !== ":") at("Expected ':' after property name");
          i++;
          value(); ws();
          if (text[i] === ",") { i++; continue; }
          if (text[i] === "}") { i++; return; }
          at("Expected ',' or '}' after property value");
        }
      }
      if (c === "[") {
        i++; ws();
        if (text[i] === "]") { i++; return; }
        for (;;) {
          value(); ws();
          if (text[i] === ",") { i++; continue; }
          if (text[i] === "]") { i++; return; }
          at("Expected ',' or ']' after array element");
        }
      }
      if (c === '"') return string();
      if (c === "-" || (c >= "0" && c <= "9")) return number();
      if (c === "t") return literal("true");
      if (c === "f") return literal("false");
      if (c === "n") return literal("null");
      unexpected();
    }
    try {
      value(); ws();
      if (i < n) fail("Unexpected non-whitespace character after JSON at position " + i);
    } catch (e) {
      return e;
    }
    return null;
  }
  Object.defineProperty(JSON, "parse", {
    value: { parse(text, reviver) {
      try {
        return nativeParse(text, reviver);
      } catch (e) {
        if (e instanceof SyntaxError) throw jsonError(text) || e;
        throw e;
      }
    } }.parse,
    writable: true, configurable: true,
  });
  for (const name of ["decodeURI", "decodeURIComponent", "encodeURI", "encodeURIComponent"]) {
    const original = global[name];
    Object.defineProperty(global, name, {
      value: { [name](text) {
        try { return original(text); } catch (e) { if (e instanceof URIError) throw new URIError("URI malformed"); throw e; }
      } }[name],
      writable: true, configurable: true,
    });
  }
  const toISOString = RealDate.prototype.toISOString;
  Object.defineProperty(RealDate.prototype, "toISOString", {
    value: { toISOString() {
      if (this instanceof RealDate && isNaN(this.getTime())) throw new RangeError("Invalid time value");
      return toISOString.call(this);
    } }.toISOString,
    writable: true, configurable: true,
  });
  const nativeBigInt = BigInt;
  function BigIntOf(value) {
    if (new.target) throw new TypeError("BigInt is not a constructor");
    try {
      return nativeBigInt(value);
    } catch (e) {
      if (typeof value === "number" && !Number.isInteger(value)) throw new RangeError("The number " + value + " cannot be converted to a BigInt because it is not an integer");
      if (typeof value === "string" && e instanceof SyntaxError) throw new SyntaxError("Cannot convert " + value + " to a BigInt");
      throw e;
    }
  }
  Object.setPrototypeOf(BigIntOf, Function.prototype);
  BigIntOf.prototype = nativeBigInt.prototype;
  BigIntOf.asIntN = nativeBigInt.asIntN;
  BigIntOf.asUintN = nativeBigInt.asUintN;
  Object.defineProperty(nativeBigInt.prototype, "constructor", { value: BigIntOf, writable: true, configurable: true });
  Object.defineProperty(BigIntOf, "name", { value: "BigInt" });
  Object.defineProperty(global, "BigInt", { value: BigIntOf, writable: true, configurable: true });

  // --- Buffer: Node's bytes, as a Uint8Array -------------------------------------------
  const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  function utf8Bytes(text) { return new TextEncoder().encode(text); }
  function bytesOf(text, encoding) {
    switch (normalEncoding(encoding)) {
      case "utf8": return utf8Bytes(text);
      case "hex": {
        const out = [];
        for (let k = 0; k + 1 < text.length; k += 2) {
          const v = parseInt(text.slice(k, k + 2), 16);
          if (!/^[0-9a-fA-F]{2}$/.test(text.slice(k, k + 2))) break;
          out.push(v);
        }
        return Uint8Array.from(out);
      }
      case "base64": case "base64url": {
        const out = [];
        let acc = 0, bits = 0;
        for (const ch of text) {
          if (ch === "=") break;
          let v = B64.indexOf(ch === "-" ? "+" : ch === "_" ? "/" : ch);
          if (v < 0) continue;
          acc = (acc << 6) | v; bits += 6;
          if (bits >= 8) { bits -= 8; out.push((acc >> bits) & 255); }
        }
        return Uint8Array.from(out);
      }
      case "latin1": case "ascii": return Uint8Array.from(text, (c) => c.charCodeAt(0) & 255);
      case "utf16le": {
        const out = new Uint8Array(text.length * 2);
        for (let k = 0; k < text.length; k++) { const c = text.charCodeAt(k); out[2 * k] = c & 255; out[2 * k + 1] = c >> 8; }
        return out;
      }
    }
  }
  function textOf(bytes, encoding) {
    switch (normalEncoding(encoding)) {
      case "utf8": return new TextDecoder().decode(bytes);
      case "hex": return Array.from(bytes, (x) => (x < 16 ? "0" : "") + x.toString(16)).join("");
      case "base64": case "base64url": {
        const url = normalEncoding(encoding) === "base64url";
        let out = "";
        for (let k = 0; k < bytes.length; k += 3) {
          const n = (bytes[k] << 16) | ((bytes[k + 1] || 0) << 8) | (bytes[k + 2] || 0);
          out += B64[(n >> 18) & 63] + B64[(n >> 12) & 63] + (k + 1 < bytes.length ? B64[(n >> 6) & 63] : url ? "" : "=") + (k + 2 < bytes.length ? B64[n & 63] : url ? "" : "=");
        }
        return url ? out.replace(/\+/g, "-").replace(/\//g, "_") : out;
      }
      case "latin1": return Array.from(bytes, (x) => String.fromCharCode(x)).join("");
      case "ascii": return Array.from(bytes, (x) => String.fromCharCode(x & 127)).join("");
      case "utf16le": {
        let out = "";
        for (let k = 0; k + 1 < bytes.length; k += 2) out += String.fromCharCode(bytes[k] | (bytes[k + 1] << 8));
        return out;
      }
    }
  }
  function normalEncoding(encoding) {
    const e = encoding === undefined || encoding === null ? "utf8" : String(encoding).toLowerCase();
    switch (e) {
      case "utf8": case "utf-8": return "utf8";
      case "hex": return "hex";
      case "base64": return "base64";
      case "base64url": return "base64url";
      case "latin1": case "binary": return "latin1";
      case "ascii": return "ascii";
      case "utf16le": case "utf-16le": case "ucs2": case "ucs-2": return "utf16le";
    }
    const err = new TypeError("Unknown encoding: " + encoding);
    err.code = "ERR_UNKNOWN_ENCODING";
    throw err;
  }
  class Buffer extends Uint8Array {
    static from(value, encodingOrOffset, length) {
      if (typeof value === "string") return Buffer.fromBytes(bytesOf(value, encodingOrOffset));
      if (value instanceof ArrayBuffer) {
        const offset = encodingOrOffset === undefined ? 0 : Number(encodingOrOffset);
        return new Buffer(value, offset, length === undefined ? value.byteLength - offset : Number(length));
      }
      if (ArrayBuffer.isView(value) || Array.isArray(value) || (value && typeof value.length === "number" && typeof value !== "function")) {
        const out = new Buffer(value.length);
        for (let k = 0; k < value.length; k++) out[k] = Number(value[k]) & 255;
        return out;
      }
      if (value && value.type === "Buffer" && Array.isArray(value.data)) return Buffer.from(value.data);
      const err = new TypeError("The first argument must be of type string or an instance of Buffer, ArrayBuffer, or Array or an Array-like Object. Received " + (value === null ? "null" : value === undefined ? "undefined" : "type " + typeof value + " (" + String(value) + ")"));
      err.code = "ERR_INVALID_ARG_TYPE";
      throw err;
    }
    static fromBytes(bytes) { const out = new Buffer(bytes.length); out.set(bytes); return out; }
    static alloc(size, fill, encoding) {
      const out = new Buffer(size);
      if (fill !== undefined) out.fill(typeof fill === "string" ? bytesOf(fill, encoding)[0] || 0 : fill);
      return out;
    }
    static allocUnsafe(size) { return new Buffer(size); }
    static isBuffer(value) { return value instanceof Buffer; }
    static isEncoding(encoding) { try { normalEncoding(encoding); return typeof encoding === "string"; } catch (_) { return false; } }
    static byteLength(value, encoding) { return typeof value === "string" ? bytesOf(value, encoding).length : value.byteLength; }
    static concat(list, total) {
      const size = total === undefined ? list.reduce((s, b) => s + b.length, 0) : total;
      const out = Buffer.alloc(size);
      let at = 0;
      for (const b of list) { if (at >= size) break; out.set(b.subarray(0, size - at), at); at += b.length; }
      return out;
    }
    static compare(a, b) { return a.compare(b); }
    toString(encoding, start, end) { return textOf(this.subarray(start || 0, end === undefined ? this.length : end), encoding); }
    toJSON() { return { type: "Buffer", data: Array.from(this) }; }
    equals(other) { return this.compare(other) === 0; }
    compare(other) {
      const n = Math.min(this.length, other.length);
      for (let k = 0; k < n; k++) if (this[k] !== other[k]) return this[k] < other[k] ? -1 : 1;
      return this.length === other.length ? 0 : this.length < other.length ? -1 : 1;
    }
    slice(start, end) { return this.subarray(start, end); }
    write(text, offset, length, encoding) {
      if (typeof offset === "string") { encoding = offset; offset = 0; }
      const bytes = bytesOf(text, encoding).subarray(0, length === undefined ? undefined : length);
      const room = Math.min(bytes.length, this.length - (offset || 0));
      this.set(bytes.subarray(0, room), offset || 0);
      return room;
    }
    readUInt8(o = 0) { return this[o]; }
    readUInt16BE(o = 0) { return (this[o] << 8) | this[o + 1]; }
    readUInt32BE(o = 0) { return ((this[o] << 24) >>> 0) + ((this[o + 1] << 16) | (this[o + 2] << 8) | this[o + 3]); }
    writeUInt8(v, o = 0) { this[o] = v; return o + 1; }
    writeUInt32BE(v, o = 0) { this[o] = v >>> 24; this[o + 1] = v >>> 16; this[o + 2] = v >>> 8; this[o + 3] = v; return o + 4; }
  }
  Buffer.poolSize = 8192;
  global.Buffer = Buffer;

  // --- URL and URLSearchParams: the WHATWG API for the URLs handlers meet -----------------
  const formEncode = (s) => encodeURIComponent(s).replace(/%20/g, "+").replace(/[!'()~]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase());
  const formDecode = (s) => { try { return decodeURIComponent(s.replace(/\+/g, " ")); } catch (_) { return s; } };
  class URLSearchParams {
    constructor(init) {
      this._list = [];
      this._url = null;
      if (init === undefined || init === null) return;
      if (typeof init === "object") {
        const entries = typeof init[Symbol.iterator] === "function" ? Array.from(init) : Object.entries(init);
        for (const pair of entries) this._list.push([String(pair[0]), String(pair[1])]);
        return;
      }
      this._parse(String(init));
    }
    _parse(text) {
      this._list = [];
      for (const part of text.replace(/^\?/, "").split("&")) {
        if (!part) continue;
        const at = part.indexOf("=");
        this._list.push(at < 0 ? [formDecode(part), ""] : [formDecode(part.slice(0, at)), formDecode(part.slice(at + 1))]);
      }
    }
    _changed() { if (this._url) { const s = this.toString(); this._url._search = s ? "?" + s : ""; } }
    get size() { return this._list.length; }
    append(k, v) { this._list.push([String(k), String(v)]); this._changed(); }
    delete(k) { this._list = this._list.filter((p) => p[0] !== String(k)); this._changed(); }
    get(k) { const p = this._list.find((x) => x[0] === String(k)); return p ? p[1] : null; }
    getAll(k) { return this._list.filter((x) => x[0] === String(k)).map((x) => x[1]); }
    has(k) { return this._list.some((x) => x[0] === String(k)); }
    set(k, v) {
      const key = String(k);
      const at = this._list.findIndex((x) => x[0] === key);
      if (at < 0) this._list.push([key, String(v)]);
      else { this._list[at][1] = String(v); this._list = this._list.filter((x, n) => n <= at || x[0] !== key); }
      this._changed();
    }
    sort() { this._list.sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0)); this._changed(); }
    forEach(fn, self) { for (const [k, v] of this._list) fn.call(self, v, k, this); }
    keys() { return this._list.map((x) => x[0])[Symbol.iterator](); }
    values() { return this._list.map((x) => x[1])[Symbol.iterator](); }
    entries() { return this._list.map((x) => [x[0], x[1]])[Symbol.iterator](); }
    [Symbol.iterator]() { return this.entries(); }
    toString() { return this._list.map(([k, v]) => formEncode(k) + "=" + formEncode(v)).join("&"); }
  }
  const SPECIAL = { "http:": "80", "https:": "443", "ws:": "80", "wss:": "443", "ftp:": "21", "file:": "" };
  const invalidURL = (input) => { const e = new TypeError("Invalid URL"); e.code = "ERR_INVALID_URL"; e.input = input; return e; };
  const pathEncode = (s) => s.replace(/[\u0000-\u0020"<>`{}\u007f-\uffff]/gu, (c) => encodeURIComponent(c));
  const queryEncode = (s) => s.replace(/[\u0000-\u0020"#<>'\u007f-\uffff]/gu, (c) => encodeURIComponent(c));
  const fragmentEncode = (s) => s.replace(/[\u0000-\u0020"<>`\u007f-\uffff]/gu, (c) => encodeURIComponent(c));
  function dotSegments(path) {
    const out = [];
    const parts = path.split("/");
    parts.forEach((p, k) => {
      const last = k === parts.length - 1;
      if (p === "." || p.toLowerCase() === "%2e") { if (last) out.push(""); }
      else if (p === ".." || /^(\.|%2e)(\.|%2e)$/i.test(p)) { if (out.length > 1) out.pop(); if (last) out.push(""); }
      else out.push(p);
    });
    return out.join("/");
  }
  class URL {
    constructor(input, base) {
      const text = String(input).replace(/^[\u0000-\u0020]+|[\u0000-\u0020]+$/g, "").replace(/[\t\n\r]/g, "");
      const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):(.*)$/s.exec(text);
      if (m) this._parseAbsolute(m[1].toLowerCase() + ":", m[2], input);
      else {
        if (base === undefined) throw invalidURL(String(input));
        const b = base instanceof URL ? base : new URL(base);
        this._resolve(text, b, input);
      }
      const params = new URLSearchParams(this._search);
      params._url = this;
      this._params = params;
    }
    _parseAbsolute(protocol, rest, input) {
      this._protocol = protocol;
      this._username = ""; this._password = ""; this._hostname = ""; this._port = "";
      const special = Object.prototype.hasOwnProperty.call(SPECIAL, protocol);
      if (special) rest = rest.replace(/\\/g, "/");
      let hashAt = rest.indexOf("#");
      this._hash = hashAt < 0 ? "" : (hashAt === rest.length - 1 ? "" : "#" + fragmentEncode(rest.slice(hashAt + 1)));
      if (hashAt >= 0) rest = rest.slice(0, hashAt);
      const queryAt = rest.indexOf("?");
      this._search = queryAt < 0 || queryAt === rest.length - 1 ? "" : "?" + queryEncode(rest.slice(queryAt + 1));
      if (queryAt >= 0) rest = rest.slice(0, queryAt);
      if (special || rest.startsWith("//")) {
        rest = rest.replace(/^\/*/, special ? "" : "").replace(/^\/\//, "");
        const slash = rest.indexOf("/");
        let authority = slash < 0 ? rest : rest.slice(0, slash);
        let path = slash < 0 ? "" : rest.slice(slash);
        const atSign = authority.lastIndexOf("@");
        if (atSign >= 0) {
          const cred = authority.slice(0, atSign);
          authority = authority.slice(atSign + 1);
          const colon = cred.indexOf(":");
          this._username = pathEncode(colon < 0 ? cred : cred.slice(0, colon));
          this._password = colon < 0 ? "" : pathEncode(cred.slice(colon + 1));
        }
        const portMatch = /^(.*?)(?::(\d*))?$/.exec(authority);
        let host = portMatch[1];
        const port = portMatch[2] || "";
        if (special && protocol !== "file:" && host === "") throw invalidURL(String(input));
        if (/[\u0000\t\n\r #%/:<>?@[\\\]^|]/.test(host.replace(/^\[.*\]$/, ""))) throw invalidURL(String(input));
        if (/[^\u0000-\u007f]/.test(host)) throw invalidURL(String(input));
        this._hostname = special ? host.toLowerCase() : host;
        if (port !== "" && Number(port) > 65535) throw invalidURL(String(input));
        this._port = port === "" || (special && String(Number(port)) === SPECIAL[protocol]) ? "" : String(Number(port));
        this._pathname = special ? dotSegments(pathEncode(path === "" ? "/" : path)) : pathEncode(path);
        this._opaque = false;
      } else {
        this._pathname = pathEncode(rest);
        this._opaque = !rest.startsWith("/");
      }
    }
    _resolve(text, b, input) {
      if (b._opaque) throw invalidURL(String(input));
      if (text.startsWith("//") || (Object.prototype.hasOwnProperty.call(SPECIAL, b._protocol) && text.startsWith("\\\\"))) return this._parseAbsolute(b._protocol, text, input);
      Object.assign(this, { _protocol: b._protocol, _username: b._username, _password: b._password, _hostname: b._hostname, _port: b._port, _opaque: false });
      let rest = text;
      const hashAt = rest.indexOf("#");
      this._hash = hashAt < 0 || hashAt === rest.length - 1 ? "" : "#" + fragmentEncode(rest.slice(hashAt + 1));
      if (hashAt >= 0) rest = rest.slice(0, hashAt);
      const queryAt = rest.indexOf("?");
      const search = queryAt < 0 ? null : queryAt === rest.length - 1 ? "" : "?" + queryEncode(rest.slice(queryAt + 1));
      if (queryAt >= 0) rest = rest.slice(0, queryAt);
      if (rest === "") { this._pathname = b._pathname; this._search = search === null ? b._search : search; return; }
      this._search = search === null ? "" : search;
      const path = rest.startsWith("/") ? rest : b._pathname.slice(0, b._pathname.lastIndexOf("/") + 1) + rest;
      this._pathname = dotSegments(pathEncode(path));
    }
    get protocol() { return this._protocol; }
    get username() { return this._username; }
    get password() { return this._password; }
    get hostname() { return this._hostname; }
    get port() { return this._port; }
    get host() { return this._hostname + (this._port ? ":" + this._port : ""); }
    get origin() { return Object.prototype.hasOwnProperty.call(SPECIAL, this._protocol) && this._protocol !== "file:" ? this._protocol + "//" + this.host : "null"; }
    get pathname() { return this._pathname; }
    set pathname(v) { this._pathname = dotSegments(pathEncode((String(v).startsWith("/") ? "" : "/") + String(v))); }
    get search() { return this._search; }
    set search(v) { const s = String(v).replace(/^\?/, ""); this._search = s ? "?" + queryEncode(s) : ""; this._params._parse(s); }
    get searchParams() { return this._params; }
    get hash() { return this._hash; }
    set hash(v) { const s = String(v).replace(/^#/, ""); this._hash = s ? "#" + fragmentEncode(s) : ""; }
    get href() {
      const authority = this._opaque || (this._hostname === "" && !Object.prototype.hasOwnProperty.call(SPECIAL, this._protocol) && !this._username) ? "" : "//" + (this._username ? this._username + (this._password ? ":" + this._password : "") + "@" : "") + this.host;
      return this._protocol + authority + this._pathname + this._search + this._hash;
    }
    toString() { return this.href; }
    toJSON() { return this.href; }
    static canParse(input, base) { try { new URL(input, base); return true; } catch (_) { return false; } }
  }
  global.URL = URL;
  global.URLSearchParams = URLSearchParams;

  // --- require: Node's built-ins that make sense without I/O ---------------------------
  const builtins = {
    buffer: () => ({ Buffer, constants: { MAX_LENGTH: 2 ** 32 }, kMaxLength: 2 ** 32 }),
    url: () => ({
      URL, URLSearchParams,
      parse(text) {
        const u = new URL(text);
        return { protocol: u.protocol, slashes: true, auth: u.username ? u.username + (u.password ? ":" + u.password : "") : null, host: u.host, port: u.port || null, hostname: u.hostname, hash: u.hash || null, search: u.search || null, query: u.search ? u.search.slice(1) : null, pathname: u.pathname, path: u.pathname + u.search, href: u.href };
      },
      format: (u) => (u instanceof URL ? u.href : String(u.href || "")),
    }),
    string_decoder: () => {
      class StringDecoder {
        constructor(encoding) { this.encoding = normalEncoding(encoding); this._rest = new Uint8Array(0); }
        write(bytes) {
          if (typeof bytes === "string") return bytes;
          let all = Buffer.concat([this._rest, bytes]);
          let cut = all.length;
          if (this.encoding === "utf8") {
            // Keep an incomplete sequence at the end for the next write.
            for (let k = 1; k <= Math.min(3, all.length); k++) {
              const x = all[all.length - k];
              if ((x & 0xc0) === 0x80) continue;
              const need = x >= 0xf0 ? 4 : x >= 0xe0 ? 3 : x >= 0xc0 ? 2 : 1;
              if (need > k) cut = all.length - k;
              break;
            }
          }
          this._rest = all.subarray(cut);
          return all.subarray(0, cut).toString(this.encoding);
        }
        end(bytes) { const out = (bytes ? this.write(bytes) : "") + (this._rest.length ? Buffer.from(this._rest).toString(this.encoding) : ""); this._rest = new Uint8Array(0); return out; }
      }
      return { StringDecoder };
    },
    crypto: () => {
      const HASHES = ["md5", "sha1", "sha224", "sha256", "sha384", "sha512"];
      const algorithm = (name, hmac) => {
        const a = String(name).toLowerCase().replace(/^rsa-/, "").replace(/^sha-/, "sha");
        if (HASHES.includes(a)) return a;
        const e = hmac ? new TypeError("Invalid digest: " + name) : new Error("error:0308010C:digital envelope routines::unsupported");
        e.code = hmac ? "ERR_CRYPTO_INVALID_DIGEST" : "ERR_OSSL_EVP_UNSUPPORTED";
        throw e;
      };
      const bytes = (data, encoding) => {
        if (typeof data === "string") return bytesOf(data, encoding);
        if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
        if (data instanceof ArrayBuffer) return new Uint8Array(data);
        const e = new TypeError('The "data" argument must be of type string or an instance of Buffer, TypedArray, or DataView. Received ' + (data === null ? "null" : typeof data));
        e.code = "ERR_INVALID_ARG_TYPE";
        throw e;
      };
      class Hash {
        constructor(alg, key) { this._alg = alg; this._key = key; this._parts = []; this._done = false; }
        update(data, encoding) {
          if (this._done) { const e = new Error("Digest already called"); e.code = "ERR_CRYPTO_HASH_FINALIZED"; throw e; }
          this._parts.push(Uint8Array.from(bytes(data, encoding)));
          return this;
        }
        digest(encoding) {
          if (this._done) { const e = new Error("Digest already called"); e.code = "ERR_CRYPTO_HASH_FINALIZED"; throw e; }
          this._done = true;
          const data = Buffer.concat(this._parts);
          const out = Buffer.from(this._key === undefined ? native.hash(this._alg, data) : native.hmac(this._alg, this._key, data));
          return encoding === undefined || encoding === "buffer" ? out : out.toString(encoding);
        }
        copy() { const h = new Hash(this._alg, this._key); h._parts = this._parts.slice(); return h; }
      }
      return {
        createHash: (name) => new Hash(algorithm(name, false)),
        createHmac: (name, key) => new Hash(algorithm(name, true), Uint8Array.from(bytes(key))),
        getHashes: () => HASHES.slice(),
        randomUUID,
        randomBytes: (n, cb) => { const b = Buffer.from(randomBytes(n)); if (cb) { nextTick(cb, null, b); return undefined; } return b; },
        randomInt: (min, max) => { if (max === undefined) { max = min; min = 0; } return min + Math.floor(Math.random() * (max - min)); },
        getRandomValues: webCrypto.getRandomValues,
        webcrypto: webCrypto,
        timingSafeEqual: (x, y) => {
          if (x.byteLength !== y.byteLength) { const e = new RangeError("Input buffers must have the same byte length"); e.code = "ERR_CRYPTO_TIMING_SAFE_EQUAL_LENGTH"; throw e; }
          let d = 0;
          for (let k = 0; k < x.byteLength; k++) d |= x[k] ^ y[k];
          return d === 0;
        },
      };
    },
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
    // The version's own variables (the host refused reserved names); TZ, LANG, PATH may be
    // replaced, as on Lambda.
    Object.assign(env, settings.environment || {});
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
    // Set at load (the top level sees it); only the region comes with the event.
    if (env.AWS_REGION !== event.region) { env.AWS_REGION = event.region; env.AWS_DEFAULT_REGION = event.region; }
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
