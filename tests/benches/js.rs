//! JavaScript triggers against the Rust sample, in one run: invocation latency and fuel at
//! 10 and 1,024 records, with a pooled instance's resident memory at 512 KiB and at 2 MiB;
//! deploy (pre-initialise and compile), load from the artifact cache, and resident memory per
//! live instance.
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

fn main() {
    let cache = tempfile::tempdir().unwrap();
    let rust_bytes = std::fs::read(guest("sample_trigger")).unwrap();
    let source = sample_script();

    println!("| keep resident | trigger | records | p50 | p99 | fuel / call |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for keep in [512 << 10, 1 << 20, 2 << 20, 4 << 20] {
        let rt = runtime(keep, cache.path());
        let rust = rt.load(&rust_bytes).unwrap();
        let js = rt.load(&rt.prepare_script(&source, "handler", &settings()).unwrap().component).unwrap();
        for (records, n) in [(10usize, 5_000usize), (1024, 200)] {
            let input = event(records);
            for (name, trigger) in [("Rust sample", &rust), ("JS sample", &js)] {
                let (p50, p99, fuel) = measure(&rt, trigger, &input, n);
                println!("| {} KiB | {name} | {records} | {p50:.1} µs | {p99:.1} µs | {fuel} |", keep >> 10);
            }
        }
    }

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
