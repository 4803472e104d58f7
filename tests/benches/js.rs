//! JavaScript triggers against the Rust sample and against Node.js, in one run: invocation
//! latency and fuel at 10 and 1,024 records (Node.js's warm time for the same handler
//! beside them); `synctrig-wasm run --trigger x.js` as a whole process with a warm cache
//! (against `node` and `run` of the Rust sample); deploy (pre-initialise and compile), load
//! from the artifact cache, and resident memory per live instance.
//!
//! `cargo build --release -p synctrig-wasm && cargo bench -p synctrig-tests --bench js`

use std::hint::black_box;
use std::time::{Duration, Instant};
use synctrig_runtime::merge;
use synctrig_runtime::pipeline::stored_from_event;
use synctrig_runtime::sandbox::Compiler;
use synctrig_runtime::sandbox::js::ScriptSettings;
use synctrig_runtime::{Limits, Runtime, RuntimeConfig, SyncEvent, Trigger};
use synctrig_tests::{bench_event as event, guest, synctrig_bin, workspace_root};

fn settings() -> ScriptSettings {
    ScriptSettings {
        function_name: "sample".into(),
        function_version: "1".into(),
        invoked_function_arn: "arn:aws:lambda:us-east-1:000000000000:function:sample:1".into(),
        memory_limit_in_mb: "64".into(),
        deadline_ms: 5000,
        environment: Default::default(),
    }
}

fn runtime(keep_resident: usize, cache: &std::path::Path) -> Runtime {
    Runtime::new(RuntimeConfig {
        limits: Limits::default(),
        compiler: Compiler::Worker(synctrig_bin()),
        cache_dir: Some(cache.to_owned()),
        keep_resident_bytes: keep_resident,
        ..RuntimeConfig::default()
    })
    .expect("runtime")
}

fn sample_script() -> String {
    std::fs::read_to_string(workspace_root().join("examples/js/sample-trigger.js")).unwrap()
}

/// One invocation as `serve` does it: invoke, merge.
fn invoke(rt: &Runtime, trigger: &Trigger, input: &SyncEvent) -> u64 {
    let stored = stored_from_event(input);
    let invocation = rt.invoke(trigger, input);
    let fuel = invocation.stats.fuel_consumed;
    let response = invocation.result.expect("trigger");
    black_box(merge::merge(&stored, input, &response).expect("merge"));
    fuel
}

/// (p50, p99) in µs over `n` invocations after a warm-up, and the fuel of one.
fn measure(rt: &Runtime, trigger: &Trigger, input: &SyncEvent, n: usize) -> (f64, f64, u64) {
    let fuel = invoke(rt, trigger, input);
    for _ in 0..n / 10 {
        invoke(rt, trigger, input);
    }
    let mut samples: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            invoke(rt, trigger, input);
            t.elapsed()
        })
        .collect();
    samples.sort();
    let p = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)].as_secs_f64() * 1e6;
    (p(0.5), p(0.99), fuel)
}

fn resident_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    statm.split_whitespace().nth(1).unwrap().parse::<usize>().unwrap() * 4096
}

/// Node.js's warm time for the same handler and event: (p50, p99) in µs, or `None` without
/// `node` on the PATH.
fn node_warm(script: &std::path::Path, input: &SyncEvent, n: usize) -> Option<(f64, f64)> {
    let dir = tempfile::tempdir().unwrap();
    let event = dir.path().join("event.json");
    std::fs::write(&event, input.to_json()).unwrap();
    let harness = workspace_root().join("tests/benches/node-sample.cjs");
    let out = std::process::Command::new("node")
        .args([harness.as_os_str(), script.as_os_str(), event.as_os_str(), n.to_string().as_ref()])
        .stdout(std::process::Stdio::null())
        .output()
        .ok()?;
    let json: serde_json::Value = serde_json::from_slice(&out.stderr).ok()?;
    Some((json["p50_us"].as_f64()?, json["p99_us"].as_f64()?))
}

/// The p50 wall time in ms of `program args…` as a whole process, over `n` runs after one.
fn process_p50<S: AsRef<std::ffi::OsStr> + std::fmt::Debug>(program: &std::path::Path, args: &[S], n: usize) -> f64 {
    let run = || {
        let t = Instant::now();
        let status = std::process::Command::new(program)
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "{} {args:?}", program.display());
        t.elapsed().as_secs_f64() * 1e3
    };
    run();
    let mut times: Vec<f64> = (0..n).map(|_| run()).collect();
    times.sort_by(|a, b| a.total_cmp(b));
    times[n / 2]
}

fn main() {
    let cache = tempfile::tempdir().unwrap();
    let rust_bytes = std::fs::read(guest("sample_trigger")).unwrap();
    let source = sample_script();
    let sample_path = workspace_root().join("examples/js/sample-trigger.js");

    // Invocations, at the default resident memory (2 MiB), with Node.js's warm time for the
    // same handler beside them.
    println!("| trigger | records | p50 | p99 | fuel / call |");
    println!("| --- | --- | --- | --- | --- |");
    let rt = runtime(2 << 20, cache.path());
    let rust = rt.load(&rust_bytes).unwrap();
    let js = rt.load(&rt.prepare_script(&source, "handler", &settings()).unwrap().component).unwrap();
    for (records, n) in [(10usize, 5_000usize), (1024, 200)] {
        let input = event(records);
        for (name, trigger) in [("Rust sample", &rust), ("JS sample", &js)] {
            let (p50, p99, fuel) = measure(&rt, trigger, &input, n);
            println!("| {name} | {records} | {p50:.1} µs | {p99:.1} µs | {fuel} |");
        }
        match node_warm(&sample_path, &input, n) {
            Some((p50, p99)) => {
                println!("| JS sample in Node.js (warm, in process) | {records} | {p50:.1} µs | {p99:.1} µs | — |")
            }
            None => println!("| JS sample in Node.js | {records} | (no node on the PATH) | | |"),
        }
    }

    // `synctrig-wasm run` as a whole process, its cache warm, against `node` running the same
    // handler once and `run` of the Rust sample.
    let run_cache = tempfile::tempdir().unwrap();
    let event_file = run_cache.path().join("event.json");
    std::fs::write(&event_file, event(10).to_json()).unwrap();
    let bin = synctrig_bin();
    let run_args = |trigger: &std::path::Path| -> Vec<std::ffi::OsString> {
        ["run", "--trigger"]
            .iter()
            .map(Into::into)
            .chain([trigger.as_os_str().to_owned(), "--event".into(), event_file.as_os_str().to_owned()])
            .chain(["--cache-dir".into(), run_cache.path().as_os_str().to_owned()])
            .collect()
    };
    let (js_args, rust_args) = (run_args(&sample_path), run_args(&guest("sample_trigger")));
    let js_run = process_p50(&bin, &js_args, 10);
    let rust_run = process_p50(&bin, &rust_args, 10);
    let harness = workspace_root().join("tests/benches/node-sample.cjs");
    let node_args = [harness.as_os_str(), sample_path.as_os_str(), event_file.as_os_str(), "1".as_ref()];
    let node_run = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok()
        .then(|| process_p50(std::path::Path::new("node"), &node_args, 10));
    println!(
        "whole process, p50 of 10 warm runs: `run --trigger sample-trigger.js` {js_run:.0} ms, \
         `run` of the Rust sample {rust_run:.0} ms, node (start, require, one call) {}",
        node_run.map_or("(no node)".to_owned(), |ms| format!("{ms:.0} ms"))
    );

    // Deploy: pre-initialise the script (Wizer) and compile the snapshot in the worker. The
    // first deploy after an upgrade also compiles the instrumented engine (then cached).
    let fresh = tempfile::tempdir().unwrap();
    let rt = runtime(2 << 20, fresh.path());
    for label in ["first deploy after an upgrade (engine not yet compiled)", "deploy"] {
        let script = format!("{source}\n// {label}\n");
        let t = Instant::now();
        let prepared = rt.prepare_script(&script, "handler", &settings()).unwrap();
        let prepare = t.elapsed();
        let trigger = rt.load(&prepared.component).unwrap();
        println!(
            "{label}: {:.0} ms (pre-initialise {:.0} ms, compile {:.0} ms), component {} KB",
            t.elapsed().as_secs_f64() * 1e3,
            prepare.as_secs_f64() * 1e3,
            (t.elapsed() - prepare).as_secs_f64() * 1e3,
            prepared.component.len() >> 10
        );
        black_box(trigger);
    }
    let prepared = rt.prepare_script(&source, "handler", &settings()).unwrap();
    let js = rt.load(&prepared.component).unwrap();
    let digest = js.digest().to_owned();
    let mut loads: Vec<f64> = (0..50)
        .map(|_| {
            let t = Instant::now();
            black_box(rt.load_cached(&digest).unwrap().unwrap());
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    loads.sort_by(|a, b| a.total_cmp(b));
    println!("load from the artifact cache: p50 {:.2} ms", loads[loads.len() / 2]);

    // Resident memory per live instance: the pages 32 instances touch, each in a slot of
    // its own, once each has run (a slot keeps them while warm).
    let input = event(10);
    invoke(&rt, &js, &input);
    let before = resident_bytes();
    let live: Vec<_> = (0..32).map(|_| rt.prepare(&js).ok().unwrap()).collect();
    let instantiated = resident_bytes();
    assert!(live.into_iter().all(|p| p.call(&input).result.is_ok()));
    let ran = resident_bytes();
    println!(
        "resident memory per live JS instance: {} KiB instantiated, {} KiB once run",
        (instantiated.saturating_sub(before) / 32) >> 10,
        (ran.saturating_sub(before) / 32) >> 10
    );
}
