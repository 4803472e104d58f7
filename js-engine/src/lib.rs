//! The JavaScript engine of synctrig-wasm: QuickJS (through rquickjs) as a `js-trigger`
//! component. `synctrig-wasm` pre-initialises it per script with Wizer at deploy: it calls
//! `init-script` (create the runtime and context, install the Node/Lambda prelude, run the
//! script's top level as a CommonJS module, collect garbage) and snapshots the instance.
//! The snapshot is an ordinary `sync-trigger` component whose `handle` calls the script's
//! handler on JavaScript objects.
//!
//! Nothing here may hold a WASI resource across the snapshot: the prelude logs through the
//! `log` import, never stdout, and randomness is drawn per invocation.

use rquickjs::context::EvalOptions;
use rquickjs::{
    Atom, CatchResultExt, CaughtError, Context, Ctx, Function, Object, Persistent, Runtime, TypedArray, Value,
};
use std::cell::RefCell;

#[allow(clippy::too_many_arguments)]
mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "js-trigger",
    });
}

use bindings::synctrig::trigger::log::{Level, log};
use bindings::synctrig::trigger::types::{DatasetRecord, Op};
use bindings::{Guest, SyncEvent, TriggerError};

/// The prelude: the Node/Lambda surface (console, timers, require, the CommonJS loader and
/// the invocation protocol). It evaluates to a function of (global, native).
const PRELUDE: &str = include_str!("prelude.js");

/// QuickJS's own heap limit, below the sandbox's 64 MiB linear memory, so that a script
/// that allocates too much gets a JavaScript "out of memory" error rather than a trap.
const HEAP_LIMIT: usize = 48 << 20;
/// QuickJS's stack limit, within the engine's 1 MiB C stack (in linear memory; 128 KiB
/// left for what runs below the last check): deep recursion is a catchable `RangeError`
/// after about 3,200 plain frames. QuickJS-ng keeps no limit on WASI as published;
/// `patches/` restores it. The sandbox's 4 MiB wasm stack is well above what this allows
/// JavaScript frames to use natively.
const STACK_LIMIT: usize = 896 << 10;
/// Headroom above the heap in use at the snapshot before the collector runs: a one-shot
/// instance then rarely collects at all.
const GC_HEADROOM: usize = 16 << 20;

struct Engine {
    runtime: Runtime,
    context: Context,
    /// The API's functions the event loop calls, looked up once.
    calls: Calls,
}

struct Calls {
    invoke: Persistent<Function<'static>>,
    run_ticks: Persistent<Function<'static>>,
    after_jobs: Persistent<Function<'static>>,
    step: Persistent<Function<'static>>,
    uncaught: Persistent<Function<'static>>,
    finish: Persistent<Function<'static>>,
}

impl Calls {
    fn new<'js>(ctx: &Ctx<'js>, api: &Object<'js>) -> rquickjs::Result<Calls> {
        let get = |name: &str| -> rquickjs::Result<Persistent<Function<'static>>> {
            Ok(Persistent::save(ctx, api.get::<_, Function>(name)?))
        };
        Ok(Calls {
            invoke: get("invoke")?,
            run_ticks: get("runTicks")?,
            after_jobs: get("afterJobs")?,
            step: get("step")?,
            uncaught: get("uncaught")?,
            finish: get("finish")?,
        })
    }
}

/// One of the API's functions in this context.
fn call<'js>(f: &Persistent<Function<'static>>, ctx: &Ctx<'js>) -> Function<'js> {
    f.clone().restore(ctx).expect("the engine's API function")
}

thread_local! {
    static ENGINE: RefCell<Option<Engine>> = const { RefCell::new(None) };
    /// The prelude's `track(promise, reason, handled)`, for the rejection tracker.
    static TRACK: RefCell<Option<Persistent<Function<'static>>>> = const { RefCell::new(None) };
}

/// Settings baked into the snapshot at deploy (`init-script`'s JSON `settings`).
fn settings_object<'js>(ctx: &Ctx<'js>, settings: &str) -> Result<Object<'js>, String> {
    let json: Value = ctx.json_parse(settings).map_err(|e| format!("bad settings: {e}"))?;
    json.into_object().ok_or_else(|| "settings must be a JSON object".to_owned())
}

/// What precedes the script on its first line: the CommonJS wrapper.
const WRAPPER_HEAD: &str = "(function (exports, require, module, __filename, __dirname) {";

/// A message or stack as the author should read it: columns on line 1 of `index.js` without
/// the wrapper's head, and no frames of the engine's own prelude.
fn script_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.lines().enumerate() {
        if line.contains("eval_script") {
            continue;
        }
        if i > 0 {
            out.push('\n');
        }
        let mut rest = line;
        while let Some(at) = rest.find("index.js:1:") {
            let (head, tail) = rest.split_at(at + "index.js:1:".len());
            out.push_str(head);
            let digits = tail.find(|c: char| !c.is_ascii_digit()).unwrap_or(tail.len());
            match tail[..digits].parse::<usize>() {
                Ok(col) => out.push_str(&col.saturating_sub(WRAPPER_HEAD.len()).max(1).to_string()),
                Err(_) => out.push_str(&tail[..digits]),
            }
            rest = &tail[digits..];
        }
        out.push_str(rest);
    }
    out
}

fn caught(e: CaughtError<'_>) -> String {
    script_text(&match e {
        CaughtError::Exception(ex) => {
            let head = match ex.message() {
                Some(m) => format!("{}: {m}", ex.get::<_, String>("name").unwrap_or_else(|_| "Error".into())),
                None => "Error".to_owned(),
            };
            match ex.stack() {
                Some(stack) if !stack.trim().is_empty() => format!("{head}\n{}", stack.trim_end()),
                _ => head,
            }
        }
        CaughtError::Value(v) => format!("Uncaught {}", value_text(&v)),
        CaughtError::Error(e) => e.to_string(),
    })
}

/// Fails the invocation: the message (its first line) is the error the client gets, the
/// whole of it (the stack) goes to the invocation's log.
fn fail(message: &str) -> ! {
    let message = script_text(message);
    log(Level::Error, &message);
    let first = message.lines().next().unwrap_or("").trim().to_owned();
    // The host reads a guest's panic from its stderr; "index.js" is where it happened.
    std::panic::set_hook(Box::new(|_| {}));
    eprintln!("thread '<unnamed>' panicked at index.js:\n{first}");
    std::process::abort()
}

fn value_text(v: &Value<'_>) -> String {
    v.ctx()
        .json_stringify(v.clone())
        .ok()
        .flatten()
        .and_then(|s| s.to_string().ok())
        .unwrap_or_else(|| format!("{:?}", v.type_of()))
}

struct Component;

impl Guest for Component {
    fn init_script(source: String, handler: String, settings: String) -> Result<(), String> {
        let export = handler
            .strip_prefix("index.")
            .filter(|e| !e.is_empty() && !e.contains('.'))
            .ok_or_else(|| format!("handler {handler:?} must be index.<export>, e.g. index.handler"))?
            .to_owned();
        let runtime = Runtime::new().map_err(|e| e.to_string())?;
        runtime.set_memory_limit(HEAP_LIMIT);
        runtime.set_max_stack_size(STACK_LIMIT);
        let context = Context::full(&runtime).map_err(|e| e.to_string())?;
        // Node's unhandledRejection: the prelude keeps the promises nothing handled.
        runtime.set_host_promise_rejection_tracker(Some(Box::new(|ctx, promise, reason, handled| {
            TRACK.with(|t| {
                if let Some(track) = t.borrow().as_ref()
                    && let Ok(track) = track.clone().restore(&ctx)
                {
                    let _ = track.call::<_, ()>((promise, reason, handled));
                }
            });
        })));
        let loaded = (|| -> Result<Persistent<Object<'static>>, String> {
            let api = context.with(|ctx| -> Result<Persistent<Object<'static>>, String> {
                let native = Object::new(ctx.clone()).map_err(|e| e.to_string())?;
                let log_fn = Function::new(ctx.clone(), |level: i32, message: rquickjs::String<'_>| {
                    let level = match level {
                        0 => Level::Debug,
                        2 => Level::Warn,
                        3 => Level::Error,
                        _ => Level::Info,
                    };
                    // A log line never fails an update: QuickJS hands over half a surrogate
                    // pair as its 3-byte (WTF-8) form, which becomes U+FFFD.
                    if let Ok(text) = message.to_cstring() {
                        log(level, &well_formed(text.as_ref()));
                    }
                })
                .map_err(|e| e.to_string())?;
                native.set("log", log_fn).map_err(|e| e.to_string())?;
                let seed = Function::new(ctx.clone(), || -> Vec<u32> {
                    (0..4).map(|_| wasip2::random::random::get_random_u64() as u32).collect()
                })
                .map_err(|e| e.to_string())?;
                native.set("seed", seed).map_err(|e| e.to_string())?;
                native
                    .set("requestId", Function::new(ctx.clone(), request_id).map_err(|e| e.to_string())?)
                    .map_err(|e| e.to_string())?;
                let hash = Function::new(ctx.clone(), |alg: String, data: TypedArray<'_, u8>| {
                    digest(&alg, None, &bytes(&data))
                });
                native.set("hash", hash.map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
                let hmac =
                    Function::new(ctx.clone(), |alg: String, key: TypedArray<'_, u8>, data: TypedArray<'_, u8>| {
                        digest(&alg, Some(&bytes(&key)), &bytes(&data))
                    });
                native.set("hmac", hmac.map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
                let prelude: Function = ctx.eval(PRELUDE).catch(&ctx).map_err(caught)?;
                let api: Object = prelude.call((ctx.globals(), native)).catch(&ctx).map_err(caught)?;
                let track: Function = api.get("track").map_err(|e| e.to_string())?;
                TRACK.with(|t| *t.borrow_mut() = Some(Persistent::save(&ctx, track)));
                // The script, as a CommonJS module body: line 1 of the file is line 1 here.
                let mut options = EvalOptions::default();
                options.filename = Some("index.js".into());
                options.strict = false;
                let wrapper = format!("{WRAPPER_HEAD}{source}\n}})");
                let wrapper: Function = ctx.eval_with_options(wrapper, options).catch(&ctx).map_err(caught)?;
                let load: Function = api.get("load").map_err(|e| e.to_string())?;
                let settings = settings_object(&ctx, &settings)?;
                load.call::<_, ()>((wrapper, export, settings)).catch(&ctx).map_err(caught)?;
                Ok(Persistent::save(&ctx, api))
            })?;
            // Run what the top level scheduled (promise jobs), then collect, so the snapshot
            // holds only what the script keeps.
            drain(&runtime).map_err(|e| format!("the script's top level failed: {e}"))?;
            context.with(|ctx| -> Result<(), String> {
                let after: Function = api
                    .clone()
                    .restore(&ctx)
                    .map_err(|e| e.to_string())?
                    .get("afterInit")
                    .map_err(|e| e.to_string())?;
                match after.call::<_, Option<String>>(()).catch(&ctx).map_err(caught)? {
                    Some(reason) => Err(format!("the script's top level failed: {reason}")),
                    None => Ok(()),
                }
            })?;
            Ok(api)
        })();
        // A failed load drops the runtime: nothing of it may outlive it (QuickJS asserts so).
        let api = match loaded {
            Ok(api) => api,
            Err(e) => {
                TRACK.with(|t| drop(t.borrow_mut().take()));
                return Err(e);
            }
        };
        let calls = context.with(|ctx| Calls::new(&ctx, &api.clone().restore(&ctx)?)).map_err(|e| e.to_string())?;
        runtime.run_gc();
        runtime.set_gc_threshold(runtime.memory_usage().malloc_size as usize + GC_HEADROOM);
        ENGINE.with(|engine| *engine.borrow_mut() = Some(Engine { runtime, context, calls }));
        Ok(())
    }

    fn handle(event: SyncEvent) -> Result<SyncEvent, TriggerError> {
        ENGINE.with(|engine| {
            let engine = engine.borrow();
            let engine = engine.as_ref().expect("the JavaScript trigger was not initialised (deploy runs init-script)");
            invoke(engine, event)
        })
    }
}

/// Runs pending jobs until there are none; a job's uncaught error is returned.
fn drain(runtime: &Runtime) -> Result<(), String> {
    loop {
        match runtime.execute_pending_job() {
            Ok(true) => {}
            Ok(false) => return Ok(()),
            Err(job) => {
                let message = job.0.with(|ctx| {
                    let ex = ctx.catch();
                    match ex.as_exception() {
                        Some(e) => format!("{}\n{}", e.message().unwrap_or_default(), e.stack().unwrap_or_default()),
                        None => format!("Uncaught {}", value_text(&ex)),
                    }
                });
                return Err(message);
            }
        }
    }
}

fn invoke(engine: &Engine, event: SyncEvent) -> Result<SyncEvent, TriggerError> {
    engine.context.with(|ctx| {
        let js_event = to_js(&ctx, &event).unwrap_or_else(|_| fail("out of memory building the event object"));
        // Nothing this instance made is freed before it ends: it serves one invocation and
        // is then thrown away whole, so freeing the event (thousands of objects and strings
        // in QuickJS, as many strings in Rust) would be work for nothing.
        std::mem::forget(js_event.clone());
        std::mem::forget(event);
        call(&engine.calls.invoke, &ctx).call::<_, ()>((js_event,)).catch(&ctx).unwrap_or_else(|e| fail(&caught(e)));
    });
    // Node's event loop on the virtual clock: nextTick callbacks and promise jobs after
    // each macrotask, then the next one, until the result is posted or nothing is left.
    loop {
        run_jobs(engine);
        let posted = engine.context.with(|ctx| {
            call(&engine.calls.after_jobs, &ctx).call::<_, bool>(()).catch(&ctx).unwrap_or_else(|e| fail(&caught(e)))
        });
        if posted {
            break;
        }
        let step = engine.context.with(|ctx| match call(&engine.calls.step, &ctx).call::<_, i32>(()).catch(&ctx) {
            Ok(n) => n,
            Err(e) => {
                uncaught(&ctx, engine, &caught(e));
                1
            }
        });
        match step {
            0 => break,
            1 => {}
            // The next timer is due at or after the deadline: the invocation ends as the
            // deadline ends it (the host answers a wait that long with the timeout).
            _ => {
                wasip2::clocks::monotonic_clock::subscribe_duration(u64::MAX).block();
                fail("the trigger's next timer is due after its deadline");
            }
        }
    }
    engine.context.with(|ctx| {
        let state: Object = call(&engine.calls.finish, &ctx).call(()).catch(&ctx).unwrap_or_else(|e| fail(&caught(e)));
        if let Ok(Some(failure)) = state.get::<_, Option<String>>("failure") {
            fail(&failure);
        }
        if let Ok(Some(error)) = state.get::<_, Option<String>>("error") {
            return Err(TriggerError::Reject(error));
        }
        let json: String = state.get("json").unwrap_or_else(|_| "null".to_owned());
        // The posted JSON is read in Rust: parsing it back into JavaScript objects and
        // reading those cost about as much again as the stringify. JSON that serde refuses
        // (a lone surrogate's escape) takes the engine's own parser, as before.
        let event = match posted::read(&json) {
            Some(event) => Ok(event),
            None => match serde_json::from_str::<serde_json::Value>(&json) {
                Ok(value) => from_json(&value),
                Err(_) => {
                    let result = ctx.json_parse(json).catch(&ctx).unwrap_or_else(|e| fail(&caught(e)));
                    let names = Names::new(&ctx).expect("atoms");
                    from_js(&names, &result)
                }
            },
        };
        Ok(event.unwrap_or_else(|e| fail(&format!("the handler's result is not a Sync Trigger event: {e}"))))
    })
}

/// Runs nextTick callbacks, then promise jobs, until neither is left (Node's
/// processTicksAndRejections); an error escaping one is the invocation's failure.
fn run_jobs(engine: &Engine) {
    loop {
        let ticked =
            engine.context.with(|ctx| match call(&engine.calls.run_ticks, &ctx).call::<_, bool>(()).catch(&ctx) {
                Ok(ran) => ran,
                Err(e) => {
                    uncaught(&ctx, engine, &caught(e));
                    false
                }
            });
        let mut jobs = false;
        loop {
            match engine.runtime.execute_pending_job() {
                Ok(true) => jobs = true,
                Ok(false) => break,
                Err(job) => {
                    let text = job.0.with(|ctx| {
                        let ex = ctx.catch();
                        match ex.as_exception() {
                            Some(e) => {
                                format!("{}\n{}", e.message().unwrap_or_default(), e.stack().unwrap_or_default())
                            }
                            None => format!("Uncaught {}", value_text(&ex)),
                        }
                    });
                    engine.context.with(|ctx| uncaught(&ctx, engine, &text));
                    jobs = true;
                }
            }
        }
        if !ticked && !jobs {
            return;
        }
    }
}

/// An error escaped a callback: the invocation fails with it unless it already posted.
fn uncaught(ctx: &Ctx<'_>, engine: &Engine, text: &str) {
    call(&engine.calls.uncaught, ctx)
        .call::<_, ()>((script_text(text),))
        .catch(ctx)
        .unwrap_or_else(|e| fail(&caught(e)));
}

/// WTF-8 (QuickJS's bytes for a string holding half a surrogate pair) as UTF-8: each lone
/// surrogate becomes one U+FFFD, as Node.js writes it.
fn well_formed(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    if let Ok(text) = std::str::from_utf8(bytes) {
        return text.into();
    }
    let mut out = std::string::String::with_capacity(bytes.len());
    let mut rest = bytes;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(text) => {
                out.push_str(text);
                break;
            }
            Err(e) => {
                let (valid, bad) = rest.split_at(e.valid_up_to());
                out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                out.push('\u{FFFD}');
                // A surrogate is ED A0..BF 80..BF; anything else skips what UTF-8 refused.
                let skip = match bad {
                    [0xED, 0xA0..=0xBF, 0x80..=0xBF, ..] => 3,
                    _ => e.error_len().unwrap_or(bad.len()),
                };
                rest = &bad[skip..];
            }
        }
    }
    out.into()
}

/// A copy of a typed array's bytes.
fn bytes(array: &TypedArray<'_, u8>) -> Vec<u8> {
    // SAFETY: the slice is copied at once; no JavaScript runs meanwhile, so nothing can
    // detach or resize the buffer under it.
    unsafe { array.as_bytes() }.unwrap_or_default().to_vec()
}

/// A digest (or, with a key, an HMAC) for `require('crypto')`; the prelude names only
/// the algorithms here.
fn digest(alg: &str, key: Option<&[u8]>, data: &[u8]) -> Vec<u8> {
    use hmac::{KeyInit, Mac};
    fn run<D: hmac::digest::Digest + hmac::digest::block_api::BlockSizeUser + Clone>(
        key: Option<&[u8]>,
        data: &[u8],
    ) -> Vec<u8>
    where
        hmac::SimpleHmac<D>: KeyInit + Mac,
    {
        match key {
            None => D::digest(data).to_vec(),
            Some(key) => {
                let mut mac = <hmac::SimpleHmac<D> as KeyInit>::new_from_slice(key).expect("HMAC takes any key size");
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
        }
    }
    match alg {
        "md5" => run::<md5::Md5>(key, data),
        "sha1" => run::<sha1::Sha1>(key, data),
        "sha224" => run::<sha2::Sha224>(key, data),
        "sha384" => run::<sha2::Sha384>(key, data),
        "sha512" => run::<sha2::Sha512>(key, data),
        _ => run::<sha2::Sha256>(key, data),
    }
}

/// A fresh request id (`awsRequestId`), in the UUID form Lambda uses.
fn request_id() -> String {
    let (a, b) = (wasip2::random::random::get_random_u64(), wasip2::random::random::get_random_u64());
    let h = format!("{a:016x}{b:016x}");
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

/// Property names every record has, made into atoms once per invocation rather than once
/// per property.
struct Names<'js> {
    old_value: Atom<'js>,
    new_value: Atom<'js>,
    op: Atom<'js>,
}

impl<'js> Names<'js> {
    fn new(ctx: &Ctx<'js>) -> rquickjs::Result<Self> {
        Ok(Names {
            old_value: Atom::from_str(ctx.clone(), "oldValue")?,
            new_value: Atom::from_str(ctx.clone(), "newValue")?,
            op: Atom::from_str(ctx.clone(), "op")?,
        })
    }
}

/// The event as Node's Lambda runtime hands it over (what `JSON.parse` makes of it):
/// `datasetRecords` keyed by record key, each property defined as a data property.
///
/// Made through QuickJS's C API: rquickjs's safe wrappers cost about a third more here (a
/// context reference taken and dropped per value, properties set through the prototype
/// chain's setters), for thousands of values per invocation.
fn to_js<'js>(ctx: &Ctx<'js>, event: &SyncEvent) -> rquickjs::Result<Object<'js>> {
    use rquickjs::qjs;
    let c = ctx.as_raw().as_ptr();
    let flags = qjs::JS_PROP_C_W_E as i32;
    // SAFETY: every value made here is owned by exactly one reference: each is either
    // handed to JS_DefinePropertyValue (which takes it, even when it fails) or wrapped in a
    // Value that frees it; atoms made here are freed after use.
    unsafe {
        let text = |s: &str| qjs::JS_NewStringLen(c, s.as_ptr().cast(), s.len() as _);
        let optional = |s: &Option<String>| s.as_deref().map_or(qjs::JS_NULL, text);
        let define = |obj: qjs::JSValue, atom: qjs::JSAtom, value: qjs::JSValue| -> rquickjs::Result<()> {
            if qjs::JS_IsException(value) || qjs::JS_DefinePropertyValue(c, obj, atom, value, flags) < 0 {
                return Err(rquickjs::Error::Exception);
            }
            Ok(())
        };
        let js = Value::from_raw(ctx.clone(), qjs::JS_NewObject(c));
        let js = js.into_object().ok_or(rquickjs::Error::Exception)?;
        js.set("version", event.version)?;
        js.set("eventType", event.event_type.as_str())?;
        js.set("region", event.region.as_str())?;
        js.set("identityPoolId", event.identity_pool_id.as_str())?;
        js.set("identityId", event.identity_id.as_str())?;
        js.set("datasetName", event.dataset_name.as_str())?;
        let records = Value::from_raw(ctx.clone(), qjs::JS_NewObject(c));
        let records = records.into_object().ok_or(rquickjs::Error::Exception)?;
        let atom = |name: &str| qjs::JS_NewAtomLen(c, name.as_ptr().cast(), name.len() as _);
        let (old_value, new_value, op) = (atom("oldValue"), atom("newValue"), atom("op"));
        if [old_value, new_value, op].contains(&qjs::JS_ATOM_NULL) {
            return Err(rquickjs::Error::Exception);
        }
        let replace = Value::from_raw(ctx.clone(), text("replace"));
        let remove = Value::from_raw(ctx.clone(), text("remove"));
        for r in &event.records {
            let record = qjs::JS_NewObject(c);
            if qjs::JS_IsException(record) {
                return Err(rquickjs::Error::Exception);
            }
            let key = qjs::JS_NewAtomLen(c, r.key.as_ptr().cast(), r.key.len() as _);
            let filled = (|| {
                define(record, old_value, optional(&r.old_value))?;
                define(record, new_value, optional(&r.new_value))?;
                let op_value = if r.op == Op::Remove { &remove } else { &replace };
                define(record, op, qjs::JS_DupValue(c, op_value.as_raw()))?;
                if key == qjs::JS_ATOM_NULL {
                    return Err(rquickjs::Error::Exception);
                }
                define(records.as_raw(), key, qjs::JS_DupValue(c, record))
            })();
            qjs::JS_FreeValue(c, record);
            if key != qjs::JS_ATOM_NULL {
                qjs::JS_FreeAtom(c, key);
            }
            filled?;
        }
        for atom in [old_value, new_value, op] {
            qjs::JS_FreeAtom(c, atom);
        }
        js.set("datasetRecords", records)?;
        Ok(js)
    }
}

fn string_field(obj: &Object<'_>, name: &str) -> Result<String, String> {
    let v: Value = obj.get(name).map_err(|e| e.to_string())?;
    v.as_string().and_then(|s| s.to_string().ok()).ok_or_else(|| format!("{name} is {}, not a string", value_text(&v)))
}

/// The handler's result back as an event: read-only fields as returned (the host checks
/// them against the input), records in the object's order, `op` defaulting to `replace`.
fn from_js<'js>(names: &Names<'js>, result: &Value<'js>) -> Result<SyncEvent, String> {
    let obj = result.as_object().ok_or_else(|| format!("it is {}", value_text(result)))?;
    let version: Value = obj.get("version").map_err(|e| e.to_string())?;
    let version = version
        .as_int()
        .and_then(|v| u32::try_from(v).ok())
        .or_else(|| {
            version.as_float().filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= f64::from(u32::MAX)).map(|f| f as u32)
        })
        .ok_or_else(|| format!("version is {}, not a number", value_text(&version)))?;
    let records_value: Value = obj.get("datasetRecords").map_err(|e| e.to_string())?;
    let records = records_value
        .as_object()
        .ok_or_else(|| format!("datasetRecords is {}, not an object", value_text(&records_value)))?;
    let mut out = Vec::new();
    for entry in records.props::<String, Value>() {
        let (key, value) = entry.map_err(|e| e.to_string())?;
        let record = value
            .as_object()
            .ok_or_else(|| format!("datasetRecords[{key:?}] is {}, not an object", value_text(&value)))?;
        let text = |name: &Atom<'js>, field: &str| -> Result<Option<String>, String> {
            let v: Value = record.get(name.clone()).map_err(|e| e.to_string())?;
            if v.is_null() || v.is_undefined() {
                Ok(None)
            } else {
                v.as_string().and_then(|s| s.to_string().ok()).map(Some).ok_or_else(|| {
                    format!("datasetRecords[{key:?}].{field} is {}, not a string or null", value_text(&v))
                })
            }
        };
        let op = match text(&names.op, "op")?.as_deref() {
            None | Some("replace") => Op::Replace,
            Some("remove") => Op::Remove,
            Some(other) => {
                return Err(format!("datasetRecords[{key:?}].op is {other:?}, not \"replace\" or \"remove\""));
            }
        };
        let (old_value, new_value) = (text(&names.old_value, "oldValue")?, text(&names.new_value, "newValue")?);
        out.push(DatasetRecord { key, old_value, new_value, op });
    }
    Ok(SyncEvent {
        version,
        event_type: string_field(obj, "eventType")?,
        region: string_field(obj, "region")?,
        identity_pool_id: string_field(obj, "identityPoolId")?,
        identity_id: string_field(obj, "identityId")?,
        dataset_name: string_field(obj, "datasetName")?,
        records: out,
    })
}

/// [`from_js`] on the posted JSON: the same checks and the same messages.
fn from_json(result: &serde_json::Value) -> Result<SyncEvent, String> {
    use serde_json::Value as J;
    let obj = result.as_object().ok_or_else(|| format!("it is {result}"))?;
    let field = |name: &str| obj.get(name);
    let version = field("version")
        .and_then(J::as_number)
        .and_then(whole_u32)
        .ok_or_else(|| format!("version is {}, not a number", json_text(field("version"))))?;
    let records = field("datasetRecords")
        .and_then(J::as_object)
        .ok_or_else(|| format!("datasetRecords is {}, not an object", json_text(field("datasetRecords"))))?;
    let mut out = Vec::with_capacity(records.len());
    for (key, value) in records {
        let record = value
            .as_object()
            .ok_or_else(|| format!("datasetRecords[{key:?}] is {}, not an object", json_text(Some(value))))?;
        let text = |field: &str| -> Result<Option<String>, String> {
            match record.get(field) {
                None | Some(J::Null) => Ok(None),
                Some(J::String(s)) => Ok(Some(s.clone())),
                Some(v) => Err(format!("datasetRecords[{key:?}].{field} is {v}, not a string or null")),
            }
        };
        let op = match text("op")?.as_deref() {
            None | Some("replace") => Op::Replace,
            Some("remove") => Op::Remove,
            Some(other) => {
                return Err(format!("datasetRecords[{key:?}].op is {other:?}, not \"replace\" or \"remove\""));
            }
        };
        let (old_value, new_value) = (text("oldValue")?, text("newValue")?);
        out.push(DatasetRecord { key: key.clone(), old_value, new_value, op });
    }
    let string = |name: &str| -> Result<String, String> {
        match field(name) {
            Some(J::String(s)) => Ok(s.clone()),
            v => Err(format!("{name} is {}, not a string", json_text(v))),
        }
    };
    Ok(SyncEvent {
        version,
        event_type: string("eventType")?,
        region: string("region")?,
        identity_pool_id: string("identityPoolId")?,
        identity_id: string("identityId")?,
        dataset_name: string("datasetName")?,
        records: out,
    })
}

/// A JSON number that is a whole number in `u32`'s range (`version`), as [`from_js`] reads it.
fn whole_u32(n: &serde_json::Number) -> Option<u32> {
    n.as_u64()
        .and_then(|v| u32::try_from(v).ok())
        .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= f64::from(u32::MAX)).map(|f| f as u32))
}

/// The posted JSON read straight into an event when it is one: no tree of values is built
/// and no string is copied twice. Anything else (a field of the wrong type, a missing one)
/// is `None`, and [`from_json`] reads the JSON again to say what is wrong, as before.
mod posted {
    use super::{DatasetRecord, Op, SyncEvent};
    use serde::Deserializer;
    use serde::de::{DeserializeSeed, Error, IgnoredAny, MapAccess, Visitor};
    use std::fmt;

    pub(super) fn read(json: &str) -> Option<SyncEvent> {
        let mut de = serde_json::Deserializer::from_str(json);
        let event = de.deserialize_map(EventVisitor).ok()?;
        de.end().ok()?;
        Some(event)
    }

    fn refused<E: Error>() -> E {
        E::custom("not a Sync Trigger event")
    }

    struct EventVisitor;

    impl<'de> Visitor<'de> for EventVisitor {
        type Value = SyncEvent;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an event")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SyncEvent, A::Error> {
            let mut version = None;
            let mut records = None;
            let [mut event_type, mut region, mut pool, mut identity, mut dataset] = [None, None, None, None, None];
            const NAMES: &[&str] =
                &["version", "datasetRecords", "eventType", "region", "identityPoolId", "identityId", "datasetName"];
            while let Some(name) = map.next_key_seed(Name(NAMES))? {
                match name {
                    Some(0) => version = Some(map.next_value::<serde_json::Number>()?),
                    Some(1) => records = Some(map.next_value_seed(RecordsSeed)?),
                    Some(2) => event_type = Some(map.next_value::<String>()?),
                    Some(3) => region = Some(map.next_value::<String>()?),
                    Some(4) => pool = Some(map.next_value::<String>()?),
                    Some(5) => identity = Some(map.next_value::<String>()?),
                    Some(6) => dataset = Some(map.next_value::<String>()?),
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            let version = version.as_ref().and_then(super::whole_u32).ok_or_else(refused)?;
            Ok(SyncEvent {
                version,
                event_type: event_type.ok_or_else(refused)?,
                region: region.ok_or_else(refused)?,
                identity_pool_id: pool.ok_or_else(refused)?,
                identity_id: identity.ok_or_else(refused)?,
                dataset_name: dataset.ok_or_else(refused)?,
                records: records.ok_or_else(refused)?,
            })
        }
    }

    /// `datasetRecords`: records in the object's order.
    struct RecordsSeed;

    impl<'de> DeserializeSeed<'de> for RecordsSeed {
        type Value = Vec<DatasetRecord>;

        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_map(self)
        }
    }

    impl<'de> Visitor<'de> for RecordsSeed {
        type Value = Vec<DatasetRecord>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("records")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::with_capacity(map.size_hint().unwrap_or(0));
            while let Some(key) = map.next_key::<String>()? {
                out.push(map.next_value_seed(RecordSeed(key))?);
            }
            Ok(out)
        }
    }

    struct RecordSeed(String);

    impl<'de> DeserializeSeed<'de> for RecordSeed {
        type Value = DatasetRecord;

        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_map(self)
        }
    }

    impl<'de> Visitor<'de> for RecordSeed {
        type Value = DatasetRecord;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a record")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let (mut old_value, mut new_value, mut op) = (None, None, Op::Replace);
            while let Some(name) = map.next_key_seed(Name(&["oldValue", "newValue", "op"]))? {
                match name {
                    Some(0) => old_value = map.next_value::<Option<String>>()?,
                    Some(1) => new_value = map.next_value::<Option<String>>()?,
                    Some(2) => op = map.next_value_seed(OpSeed)?,
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok(DatasetRecord { key: self.0, old_value, new_value, op })
        }
    }

    /// A member's name as its index in a list of the names wanted (`None`: another name),
    /// read without copying it.
    struct Name(&'static [&'static str]);

    impl<'de> DeserializeSeed<'de> for Name {
        type Value = Option<usize>;

        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_str(self)
        }
    }

    impl<'de> Visitor<'de> for Name {
        type Value = Option<usize>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a name")
        }

        fn visit_str<E: Error>(self, name: &str) -> Result<Self::Value, E> {
            Ok(self.0.iter().position(|n| *n == name))
        }
    }

    /// `op`: absent or null is `replace`.
    struct OpSeed;

    impl<'de> DeserializeSeed<'de> for OpSeed {
        type Value = Op;

        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for OpSeed {
        type Value = Op;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an op")
        }

        fn visit_unit<E: Error>(self) -> Result<Op, E> {
            Ok(Op::Replace)
        }

        fn visit_str<E: Error>(self, op: &str) -> Result<Op, E> {
            match op {
                "replace" => Ok(Op::Replace),
                "remove" => Ok(Op::Remove),
                _ => Err(refused()),
            }
        }
    }
}

/// A JSON value as [`value_text`] shows it; a missing field (an `undefined` member, which
/// JSON.stringify drops) as [`value_text`] shows `undefined`.
fn json_text(v: Option<&serde_json::Value>) -> String {
    v.map_or_else(|| "Undefined".to_owned(), ToString::to_string)
}

bindings::export!(Component with_types_in bindings);
