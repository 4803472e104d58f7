//! JavaScript Sync Triggers through the real engine: the Node/Lambda surface, every
//! outcome, the sandbox's limits, and the JavaScript examples against their Rust twins.

use std::time::Duration;
use synctrig_runtime::event::{EventRecord, Op};
use synctrig_runtime::pipeline::{Outcome, run_trigger, stored_from_event};
use synctrig_runtime::sandbox::js::ScriptSettings;
use synctrig_runtime::{Error, Limits, Runtime, RuntimeConfig, SyncEvent, Trigger};
use synctrig_tests::{guest, runtime_config, seed_event, workspace_root};

fn settings() -> ScriptSettings {
    ScriptSettings {
        function_name: "test-fn".into(),
        function_version: "7".into(),
        invoked_function_arn: "arn:aws:lambda:us-east-1:000000000000:function:test-fn:7".into(),
        memory_limit_in_mb: "64".into(),
        deadline_ms: 5000,
        environment: Default::default(),
    }
}

/// A runtime as the binary builds it, sharing one artifact cache so that the engine is
/// compiled once for the whole test process.
fn rt(limits: Limits) -> Runtime {
    let cache = workspace_root().join("target").join("test-artifacts");
    Runtime::new(RuntimeConfig { cache_dir: Some(cache), ..runtime_config(limits) }).unwrap()
}

fn limits() -> Limits {
    Limits { deadline: Duration::from_secs(60), ..Limits::default() }
}

fn prepare(rt: &Runtime, source: &str, export: &str) -> Result<Trigger, Error> {
    let prepared = rt.prepare_script(source, export, &settings())?;
    rt.load(&prepared.component)
}

fn script(source: &str) -> (Runtime, Trigger) {
    let rt = rt(limits());
    let trigger = prepare(&rt, source, "handler").unwrap_or_else(|e| panic!("{e}\n{source}"));
    (rt, trigger)
}

fn run(rt: &Runtime, trigger: &Trigger, event: &SyncEvent) -> Outcome {
    run_trigger(rt, trigger, &stored_from_event(event), event)
}

fn value(event: &SyncEvent, key: &str) -> Option<String> {
    let r = event.record(key)?;
    if r.op == Op::Remove { None } else { r.new_value.clone() }
}

fn js_example(name: &str) -> String {
    std::fs::read_to_string(workspace_root().join("examples/js").join(name)).unwrap()
}

#[test]
fn the_seeds_sample_gives_the_seeds_result() {
    let (rt, trigger) = script(&js_example("sample-trigger.js"));
    let outcome = run(&rt, &trigger, &seed_event());
    let out = outcome.result.unwrap().response;
    assert_eq!(value(&out, "SampleKey1").as_deref(), Some("ModifyValue1"));
    assert_eq!(out.record("SampleKey2").unwrap().op, Op::Remove);
    assert_eq!(value(&out, "SampleKey3").as_deref(), Some("ModifyValue3"));
    // Its console.log(JSON.stringify(event, null, 2)) is the invocation's log.
    assert!(
        outcome.log.starts_with("[info] {\n  \"version\": 2,\n  \"eventType\": \"SyncTrigger\""),
        "{}",
        outcome.log
    );
    assert!(outcome.stats.fuel_consumed < 1_000_000, "fuel {}", outcome.stats.fuel_consumed);
    // And the Rust sample agrees.
    let rust = rt.load_file(&guest("sample_trigger")).unwrap();
    let rust_writes = run(&rt, &rust, &seed_event()).result.unwrap().writes;
    assert_eq!(run(&rt, &trigger, &seed_event()).result.unwrap().writes, rust_writes);
}

/// An event with `stored` records and `changed` ones (key, old, new).
fn event(stored: &[(&str, &str)], changed: &[(&str, Option<&str>, Option<&str>)]) -> SyncEvent {
    let mut e = seed_event();
    e.dataset_records = stored
        .iter()
        .map(|(k, v)| EventRecord {
            key: k.to_string(),
            old_value: Some(v.to_string()),
            new_value: Some(v.to_string()),
            op: Op::Replace,
        })
        .chain(changed.iter().map(|(k, old, new)| EventRecord {
            key: k.to_string(),
            old_value: old.map(str::to_owned),
            new_value: new.map(str::to_owned),
            op: if new.is_some() { Op::Replace } else { Op::Remove },
        }))
        .collect();
    e
}

/// The JavaScript example and its Rust twin decide the same on each event: the same writes,
/// or the same rejection.
fn twins(js: &str, rust: &str, events: &[SyncEvent]) {
    let (rt, js) = script(&js_example(js));
    let rust = rt.load_file(&guest(rust)).unwrap();
    for e in events {
        let a = run(&rt, &js, e).result.map(|a| a.writes);
        let b = run(&rt, &rust, e).result.map(|a| a.writes);
        assert_eq!(a, b, "on {}", e.to_json());
    }
}

#[test]
fn award_on_level_matches_its_rust_twin() {
    twins(
        "award-on-level.js",
        "award_on_level",
        &[
            event(&[("award:level-1", "Reached level 1")], &[("level", Some("1"), Some("3"))]),
            event(&[], &[("level", None, Some("1"))]),
            event(&[], &[("level", Some("5"), Some("2"))]),
            event(&[], &[("level", Some("5"), Some("five"))]),
            event(&[("level", "4")], &[]),
            event(&[("awards", "9")], &[("level", Some("2"), Some(" 4 "))]),
        ],
    );
}

#[test]
fn validate_input_matches_its_rust_twin() {
    twins(
        "validate-input.js",
        "validate_input",
        &[
            event(
                &[("server:plan", "free")],
                &[
                    ("email", None, Some("  Ada@Example.COM ")),
                    ("nickname", Some("ada"), Some("  Countess ")),
                    ("age", None, Some("036")),
                ],
            ),
            event(&[], &[("email", None, Some("nope"))]),
            event(&[], &[("nickname", None, Some("   "))]),
            event(&[], &[("age", None, Some("200"))]),
            event(&[], &[("age", None, Some("x"))]),
            event(&[("server:plan", "free")], &[("server:plan", Some("free"), Some("premium"))]),
            event(&[], &[("nickname", Some("old"), None)]),
        ],
    );
}

fn outcome(source: &str) -> Outcome {
    let (rt, trigger) = script(source);
    run(&rt, &trigger, &seed_event())
}

fn rejected(source: &str) -> String {
    match outcome(source).result {
        Err(Error::Rejected { reason }) => reason,
        other => panic!("not a rejection: {other:?}\n{source}"),
    }
}

fn panicked(source: &str) -> (String, String) {
    let outcome = outcome(source);
    match outcome.result {
        Err(Error::Panic { message }) => (message, outcome.log),
        other => panic!("not a failed invocation: {other:?}\n{source}"),
    }
}

fn answer_the_event(sources: &[&str]) {
    for source in sources {
        let out = outcome(source).result.unwrap_or_else(|e| panic!("{source}: {e}"));
        assert_eq!(out.response.dataset_records, seed_event().dataset_records, "{source}");
    }
}

// The ways to answer, in three tests so that the test threads share them (each script is
// pre-initialised and compiled on its own).
#[test]
fn every_callback_answer_is_understood() {
    answer_the_event(&[
        "exports.handler = function (e, c) { c.done(null, e); };",
        "module.exports.handler = function (e, c) { c.succeed(e); };",
        "exports.handler = function (e, c, cb) { cb(null, e); };",
    ]);
}

#[test]
fn every_promise_answer_is_understood() {
    answer_the_event(&[
        "exports.handler = function (e) { return Promise.resolve(e); };",
        "exports.handler = async (e) => e;",
        "exports.handler = async (e) => { await new Promise((r) => setTimeout(r, 10)); return e; };",
    ]);
}

#[test]
fn every_deferred_answer_is_understood() {
    answer_the_event(&[
        "exports.handler = (e, c, cb) => { setImmediate(() => cb(null, e)); };",
        "exports.handler = (e, c, cb) => { process.nextTick(() => c.done(null, e)); };",
        // The first to settle wins.
        "exports.handler = (e, c, cb) => { cb(null, e); cb(new Error('late')); c.fail('later'); };",
    ]);
    // A handler name other than `handler`.
    let rt = rt(limits());
    let trigger = prepare(&rt, "exports.main = (e, c) => c.done(null, e);", "main").unwrap();
    assert!(run(&rt, &trigger, &seed_event()).result.is_ok());
}

#[test]
fn errors_reject_the_update_with_their_message() {
    for (source, reason) in [
        ("exports.handler = (e, c) => c.done(new Error('score must be a number'));", "score must be a number"),
        ("exports.handler = (e, c) => c.fail('no way');", "no way"),
        ("exports.handler = (e, c, cb) => cb(new TypeError('bad type'));", "bad type"),
        ("exports.handler = async () => { throw new Error('async no'); };", "async no"),
        ("exports.handler = () => Promise.reject(new RangeError('out of range'));", "out of range"),
        // Lambda's errorMessage of what is not an Error: its toString().
        ("exports.handler = (e, c, cb) => cb({ code: 42 });", "[object Object]"),
        ("exports.handler = (e, c) => c.fail();", "handled"),
    ] {
        assert_eq!(rejected(source), reason, "{source}");
    }
}

#[test]
fn throws_silence_and_malformed_results_fail_the_invocation() {
    let (message, log) = panicked("exports.handler = function (e) {\n  null.field;\n};");
    assert!(message.starts_with("the handler threw TypeError: cannot read property 'field' of null"), "{message}");
    assert!(log.contains("at handler (index.js:2") || log.contains("(index.js:2"), "the stack is logged: {log}");
    let (message, _) = panicked("exports.handler = function (e, c) { };");
    assert!(message.contains("finished without calling its callback"), "{message}");
    let (message, _) = panicked("exports.handler = async () => 42;");
    assert!(message.contains("not a Sync Trigger event: it is 42"), "{message}");
    let (message, _) =
        panicked("exports.handler = async (e) => { e.datasetRecords.SampleKey1.newValue = 7; return e; };");
    assert!(message.contains("datasetRecords[\"SampleKey1\"].newValue is 7, not a string or null"), "{message}");
    let (message, _) =
        panicked("exports.handler = async (e) => { e.datasetRecords.SampleKey1.op = 'upsert'; return e; };");
    assert!(message.contains("op is \"upsert\""), "{message}");
    assert_eq!(Error::Panic { message }.api_name(), "InvalidLambdaFunctionOutputException");
    // A read-only field changed in JavaScript is caught by the host, as for any trigger.
    let err =
        outcome("exports.handler = async (e) => { e.identityId = 'someone-else'; return e; };").result.unwrap_err();
    assert!(matches!(err, Error::InvalidOutput(ref m) if m.contains("identityId")), "{err:?}");
    // Records added without an op are replaced; a null value removes.
    let out = outcome("exports.handler = async (e) => { e.datasetRecords.x = { newValue: 'y' }; e.datasetRecords.SampleKey1.newValue = null; return e; };")
        .result
        .unwrap()
        .response;
    assert_eq!(value(&out, "x").as_deref(), Some("y"));
    assert_eq!(value(&out, "SampleKey1"), None);
}

#[test]
fn deploy_refuses_scripts_that_cannot_load_with_the_engines_message() {
    let rt = rt(limits());
    for (source, expected) in [
        ("var x = ;\n", "SyntaxError: unexpected token in expression: ';'\n    at index.js:1:9"),
        ("\n\nexports.handler = function ( {", "SyntaxError"),
        ("throw new Error('not today');", "Error: not today"),
        ("exports.other = () => 1;", "index.handler is undefined"),
        ("exports.handler = 5;", "index.handler is not a function"),
        (
            "const fs = require('fs');",
            "Cannot find module 'fs': a Sync Trigger runs without I/O, network or node_modules",
        ),
        ("Promise.reject(new Error('at top level'));", ""),
    ] {
        match prepare(&rt, source, "handler") {
            Err(Error::InvalidComponent(m)) => assert!(m.contains(expected), "{source:?}: {m}"),
            Ok(_) if expected.is_empty() => {}
            other => panic!("{source:?}: {:?}", other.map(|_| ())),
        }
    }
    let Err(Error::InvalidComponent(m)) = prepare(&rt, "// ok\n\nvar broken = ;\n", "handler") else { panic!() };
    assert!(m.contains("index.js:3:14"), "the line is named: {m}");
}

#[test]
fn the_lambda_context_and_console() {
    let outcome = outcome(
        r#"exports.handler = function (event, context, callback) {
  console.log('%s v%s %s %d ms', context.functionName, context.functionVersion, context.invokedFunctionArn, context.getRemainingTimeInMillis());
  console.info('%d %i %f %j %o %s%%', '42', '3.9', '2.5', { a: [1, 'b'] }, 'str', 'pct');
  console.warn({ nested: { deeper: { deepest: { gone: 1 } } }, list: [1, 2], fn: function named() {} });
  console.error(new Error('shown with its stack'));
  console.debug(typeof context.awsRequestId, context.awsRequestId.length, context.memoryLimitInMB);
  try { require('aws-sdk'); } catch (e) { console.log(e.message); }
  callback(null, event);
};"#,
    );
    assert!(outcome.result.is_ok());
    let log = outcome.log;
    assert!(
        log.contains("[info] test-fn v7 arn:aws:lambda:us-east-1:000000000000:function:test-fn:7 5000 ms\n"),
        "{log}"
    );
    assert!(log.contains("[info] 42 3 2.5 {\"a\":[1,\"b\"]} 'str' pct%\n"), "{log}");
    // Over 80 columns, so one entry a line, as Node prints it.
    assert!(
        log.contains(
            "[warn] {\n  nested: { deeper: { deepest: [Object] } },\n  list: [ 1, 2 ],\n  fn: [Function: named]\n}\n"
        ),
        "{log}"
    );
    assert!(log.contains("[error] Error: shown with its stack\n    at <anonymous> (index.js:5:"), "{log}");
    assert!(!log.contains("eval_script"), "no frames of the engine's prelude: {log}");
    assert!(log.contains("[debug] string 36 64\n"), "{log}");
    assert!(
        log.contains("[info] Cannot find module 'aws-sdk': a Sync Trigger runs without I/O, network or node_modules"),
        "{log}"
    );
}

#[test]
fn randomness_and_request_ids_differ_and_nothing_leaks_between_invocations() {
    let (rt, trigger) = script(
        r#"let calls = 0;
exports.handler = async (event, context) => {
  calls += 1;
  const seen = globalThis.leftOver;
  globalThis.leftOver = 'from an earlier invocation';
  event.datasetRecords.random = { newValue: String(Math.random()) };
  event.datasetRecords.calls = { newValue: String(calls) };
  event.datasetRecords.seen = { newValue: String(seen) };
  event.datasetRecords.request = { newValue: context.awsRequestId };
  event.datasetRecords.now = { newValue: String(Date.now() > 1700000000000) };
  return event;
};"#,
    );
    let outs: Vec<SyncEvent> = (0..3).map(|_| run(&rt, &trigger, &seed_event()).result.unwrap().response).collect();
    let randoms: std::collections::HashSet<_> = outs.iter().map(|o| value(o, "random")).collect();
    assert_eq!(randoms.len(), 3, "Math.random differs between invocations: {randoms:?}");
    let requests: std::collections::HashSet<_> = outs.iter().map(|o| value(o, "request")).collect();
    assert_eq!(requests.len(), 3);
    for o in &outs {
        assert_eq!(value(o, "calls").as_deref(), Some("1"), "each invocation starts from the snapshot");
        assert_eq!(value(o, "seen").as_deref(), Some("undefined"), "a global of one call is absent in the next");
        assert_eq!(value(o, "now").as_deref(), Some("true"), "Date reads the invocation's (frozen) time");
    }
}

#[test]
fn runaway_scripts_meet_the_sandboxs_limits() {
    // An infinite loop: out of fuel with the defaults (a script's budget, not a
    // component's) ...
    let spin = outcome("exports.handler = () => { for (;;) {} };");
    assert_eq!(spin.result.unwrap_err(), Error::OutOfFuel { budget: synctrig_runtime::sandbox::DEFAULT_SCRIPT_FUEL });
    assert_eq!(spin.stats.fuel_consumed, synctrig_runtime::sandbox::DEFAULT_SCRIPT_FUEL);
    // ... and past the deadline without fuel.
    let rt = rt(Limits { deadline: Duration::from_millis(300), fuel: None, ..Limits::default() });
    let trigger = prepare(&rt, "exports.handler = () => { for (;;) {} };", "handler").unwrap();
    assert_eq!(
        run(&rt, &trigger, &seed_event()).result.unwrap_err(),
        Error::Timeout { deadline: Duration::from_millis(300) }
    );
    // A memory bomb: QuickJS's own heap limit answers first, as a JavaScript error.
    let (message, _) =
        panicked("exports.handler = () => { const a = []; for (;;) a.push(new Array(1 << 18).fill(a.length)); };");
    assert!(message.contains("out of memory"), "{message}");
    // Deep recursion: a RangeError, or the wasm stack, but never the host.
    let err = outcome("function f(n) { return f(n + 1) + 1; }\nexports.handler = () => f(0);").result.unwrap_err();
    assert!(
        matches!(&err, Error::Panic { message } if message.contains("RangeError"))
            || matches!(err, Error::StackOverflow { .. }),
        "{err:?}"
    );
    // A huge log is cut at the cap with a marker.
    let outcome = outcome(
        "exports.handler = async (e) => { for (let i = 0; i < 20000; i++) console.log('line', i); return e; };",
    );
    assert!(outcome.result.is_ok());
    assert!(outcome.log.len() < 70 << 10 && outcome.log.contains("[synctrig: log truncated"), "{}", outcome.log.len());
    // And the host is fine: the seed's sample still runs.
    let (rt, trigger) = script(&js_example("sample-trigger.js"));
    assert!(run(&rt, &trigger, &seed_event()).result.is_ok());
}

#[test]
fn handlers_name_a_module_and_an_export() {
    use synctrig_runtime::sandbox::js::parse_handler;
    assert_eq!(parse_handler("index.handler").unwrap(), ("index", "handler"));
    assert!(parse_handler("src/app.main").is_err());
    assert!(parse_handler("handler").is_err());
}

/// Running out of stack is a RangeError the handler catches, on a thread with less stack
/// than the wasm stack limit too (the call then runs on a stack mapped for it), and on one
/// made as the invoker makes its workers.
#[test]
fn deep_recursion_is_a_catchable_range_error() {
    let source = "let max = 0;\n\
        function forever(n) { if (n > max) max = n; return forever(n + 1) + 1; }\n\
        function depth(n) { return n === 0 ? 0 : 1 + depth(n - 1); }\n\
        exports.handler = async (event) => {\n\
          let caught;\n\
          try { forever(0); } catch (e) { caught = e.constructor.name + ': ' + e.message; }\n\
          event.datasetRecords.r = { newValue: caught + ' after ' + max + ', then ' + depth(2000), op: 'replace' };\n\
          return event;\n\
        };";
    let (rt, trigger) = script(source);
    let check = |outcome: Outcome| {
        let out = outcome.result.unwrap_or_else(|e| panic!("{e}\n{}", outcome.log)).response;
        let text = value(&out, "r").unwrap();
        let (head, tail) = text.split_once(" after ").unwrap();
        assert_eq!(head, "RangeError: Maximum call stack size exceeded");
        let (frames, depth) = tail.split_once(", then ").unwrap();
        assert!(frames.parse::<u32>().unwrap() > 2500, "{text}");
        assert_eq!(depth, "2000");
    };
    let small = std::thread::Builder::new().stack_size(256 << 10);
    let (rt, trigger) = small
        .spawn(move || {
            check(run(&rt, &trigger, &seed_event()));
            (rt, trigger)
        })
        .unwrap()
        .join()
        .unwrap();
    let worker =
        std::thread::Builder::new().stack_size(synctrig_runtime::sandbox::thread_stack_bytes(&rt.config().limits));
    worker.spawn(move || check(run(&rt, &trigger, &seed_event()))).unwrap().join().unwrap();
}

/// A recorded invocation replays bit for bit: given the entropy it reported, the same input
/// gives the same `Math.random`, `crypto` bytes, `Date.now()` and log; other entropy does not.
#[test]
fn an_invocation_replays_exactly_with_its_entropy() {
    let (rt, trigger) = script(
        "exports.handler = async (event) => {
           const bytes = require('crypto').randomBytes(8).toString('hex');
           const line = `${Math.random()} ${Math.random()} ${bytes} ${Date.now()} ${new Date().toISOString()}`;
           console.log(line);
           event.datasetRecords.draw = { newValue: line, op: 'replace' };
           return event;
         };",
    );
    let input = seed_event();
    let first = rt.invoke(&trigger, &input);
    let drawn = value(first.result.as_ref().unwrap(), "draw").unwrap();
    let again = rt.invoke_with(&trigger, &input, first.entropy);
    assert_eq!(value(again.result.as_ref().unwrap(), "draw").as_deref(), Some(drawn.as_str()));
    assert_eq!((again.log.as_str(), again.entropy), (first.log.as_str(), first.entropy));
    assert_eq!(again.result.unwrap().to_json_pretty(), first.result.unwrap().to_json_pretty(), "the whole answer");
    // The clock is the entropy's: a recorded one, however old.
    let old = synctrig_runtime::Entropy { clock_secs: 1_000_000_000, ..again.entropy };
    let then = rt.invoke_with(&trigger, &input, old);
    let then = value(then.result.as_ref().unwrap(), "draw").unwrap();
    assert!(then.ends_with(" 1000000000000 2001-09-09T01:46:40.000Z"), "{then}");
    assert_eq!(then.split(' ').take(3).collect::<Vec<_>>(), drawn.split(' ').take(3).collect::<Vec<_>>());
    // Fresh entropy draws something else.
    let other = rt.invoke(&trigger, &input);
    assert_ne!(other.entropy, first.entropy);
    assert_ne!(value(other.result.as_ref().unwrap(), "draw").unwrap().split(' ').next(), drawn.split(' ').next());
}
