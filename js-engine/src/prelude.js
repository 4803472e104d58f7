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
  const logger = (level) => function (...args) { native.log(level, format(...args)); };
  const console = {
    log: logger(INFO), info: logger(INFO), warn: logger(WARN), error: logger(ERROR),
    debug: logger(DEBUG), trace: logger(DEBUG),
    dir: (value) => native.log(INFO, inspect(value)),
  };
  Object.defineProperty(global, "console", { value: console, writable: true, configurable: true });

  // --- Math.random: reseeded from the host's CSPRNG in every invocation that uses it -----
  // (a snapshot would otherwise freeze the generator: every call would see one value)
  let a = 0, b = 0, c = 0, d = 0;
  let seeded = false;
  function sfc32() {
    let t = (a + b) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    d = (d + 1) | 0;
    t = (t + d) | 0;
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  }
  Math.random = function random() {
    if (!seeded) {
      const seed = native.seed();
      a = seed[0]; b = seed[1]; c = seed[2]; d = seed[3];
      seeded = true;
      for (let n = 0; n < 12; n++) sfc32();
    }
    return sfc32();
  };

  // --- timers and process: every timer is due at once (the trigger's clock is frozen) --
  let timers = 0;
  const later = (fn, args) => { const id = ++timers; Promise.resolve().then(() => fn(...args)); return id; };
  global.setTimeout = (fn, ms, ...args) => later(fn, args);
  global.setImmediate = (fn, ...args) => later(fn, args);
  global.clearTimeout = global.clearImmediate = () => {};
  global.setInterval = () => { throw new Error("setInterval is not available in a Sync Trigger"); };
  global.clearInterval = () => {};
  global.queueMicrotask = global.queueMicrotask || ((fn) => { Promise.resolve().then(fn); });
  global.process = {
    env: {},
    argv: [],
    platform: "linux",
    version: "v20.0.0",
    versions: {},
    nextTick: (fn, ...args) => { Promise.resolve().then(() => fn(...args)); },
  };

  function require(name) {
    throw new Error("Cannot find module '" + name + "': Sync Triggers run without Node modules or network access; bundle what you need into one file");
  }
  global.require = require;

  // --- loading the script as a CommonJS module -----------------------------------------
  let handler = null;
  let config = {};

  function load(wrapper, exportName, settings) {
    const module = { exports: {}, id: ".", filename: "/var/task/index.js", loaded: false };
    wrapper.call(module.exports, module.exports, require, module, "/var/task/index.js", "/var/task");
    module.loaded = true;
    const fn = module.exports[exportName];
    if (typeof fn !== "function") {
      throw new TypeError("index." + exportName + " is " + (fn === undefined ? "undefined" : "not a function") + ": export it with exports." + exportName + " = function (event, context, callback) { ... }");
    }
    handler = fn;
    config = settings;
    contextProto = makeContextProto();
  }

  // --- one invocation ------------------------------------------------------------------
  function message(err) {
    if (err instanceof Error) return err.message || err.name;
    if (typeof err === "string") return err;
    return stringifySafe(err) || String(err);
  }

  // What every invocation's context shares: fields fixed at deploy, a request id minted
  // when first read.
  let contextProto = null;
  function makeContextProto() {
    return {
      functionName: config.functionName,
      functionVersion: config.functionVersion,
      invokedFunctionArn: config.invokedFunctionArn,
      memoryLimitInMB: config.memoryLimitInMB,
      get awsRequestId() {
        const id = native.requestId();
        Object.defineProperty(this, "awsRequestId", { value: id, enumerable: true });
        return id;
      },
      logGroupName: "/aws/lambda/" + config.functionName,
      logStreamName: "synctrig-wasm",
      callbackWaitsForEmptyEventLoop: true,
      getRemainingTimeInMillis() { return config.deadlineMs; },
    };
  }

  function invoke(event) {
    const state = { settled: false, error: null, result: undefined, thrown: null };
    const settle = (err, result) => {
      if (state.settled) return;
      state.settled = true;
      state.error = err === undefined || err === null ? null : message(err);
      state.result = result;
    };
    const context = Object.create(contextProto);
    context.done = (err, result) => settle(err, result);
    context.succeed = (result) => settle(null, result);
    context.fail = (err) => settle(err === undefined || err === null ? new Error("context.fail was called") : err);
    seeded = false;
    let returned;
    try {
      returned = handler(event, context, (err, result) => settle(err, result));
    } catch (e) {
      state.thrown = e instanceof Error ? e.name + ": " + e.message + (e.stack ? "\n" + ownFrames(e.stack) : "") : inspect(e, 1);
      return state;
    }
    if (returned !== null && typeof returned === "object" && typeof returned.then === "function") {
      returned.then(
        (result) => settle(null, result),
        (err) => settle(err === undefined || err === null ? new Error("the handler's Promise was rejected with " + err) : err),
      );
    }
    return state;
  }

  return { load, invoke, inspect, format };
})
