//! Trigger invocation benchmarks: the sandboxed sample trigger against the same logic as
//! a native function and against a plain `serde_json::Value` edit of the event (the floor
//! any JSON-in, JSON-out trigger host pays), per dataset size; the parts of one invocation; throughput on 1
//! and 2 threads; cold load with and without the artifact cache; fuel on and off.
//!
//! `cargo build --release -p synctrig-wasm && cargo bench -p synctrig-tests --bench invoke`
//! (the cold-load group compiles through the release binary's compile worker). Before
//! criterion's groups it prints p50/p99 latencies measured over many single invocations.
//! `INVOKE_PROFILE_SECS=10` runs only the sandboxed 10-record invocation in a loop, to profile.

use criterion::{BatchSize, Criterion, Throughput};
use std::hint::black_box;
use std::time::{Duration, Instant};
use synctrig_runtime::event::{EventRecord, Op};
use synctrig_runtime::merge::{self, Dataset};
use synctrig_runtime::pipeline::stored_from_event;
use synctrig_runtime::sandbox::Compiler;
use synctrig_runtime::{Limits, Runtime, RuntimeConfig, SyncEvent, Trigger};
use synctrig_tests::{bench_event as event, guest};

/// The allocator `synctrig-wasm` runs with, so that the figures are the binary's (the plain
/// floor gets it too).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn runtime(fuel: Option<u64>) -> Runtime {
    let limits = Limits { fuel, ..Limits::default() };
    Runtime::new(RuntimeConfig { limits, ..RuntimeConfig::default() }).expect("runtime")
}

/// JSON in, merged writes and JSON out, through the sandbox.
fn sandboxed(rt: &Runtime, trigger: &Trigger, json: &[u8]) -> (usize, String) {
    let input = SyncEvent::from_json(json).expect("event");
    let stored = stored_from_event(&input);
    let response = rt.invoke(trigger, &input).result.expect("trigger");
    let writes = merge::merge(&stored, &input, &response).expect("merge");
    (writes.len(), response.to_json())
}

fn to_guest(e: &SyncEvent) -> synctrig_guest::SyncEvent {
    let mut b = synctrig_guest::SyncEvent::builder(&e.identity_pool_id, &e.identity_id, &e.dataset_name);
    for r in &e.dataset_records {
        let old = r.old_value.as_deref();
        b = match (r.op, r.new_value.as_deref()) {
            (Op::Remove, _) | (_, None) => b.removed(&r.key, old.unwrap_or_default()),
            (Op::Replace, Some(new)) if old == Some(new) => b.stored(&r.key, new),
            (Op::Replace, Some(new)) => b.changed(&r.key, old, new),
        };
    }
    b.build()
}

fn from_guest(input: &SyncEvent, e: &synctrig_guest::SyncEvent) -> SyncEvent {
    SyncEvent {
        dataset_records: e
            .records()
            .map(|(k, r)| EventRecord {
                key: k.to_owned(),
                old_value: r.old_value().map(str::to_owned),
                new_value: r.new_value.clone(),
                op: match r.op {
                    synctrig_guest::Op::Replace => Op::Replace,
                    synctrig_guest::Op::Remove => Op::Remove,
                },
            })
            .collect(),
        ..input.clone()
    }
}

/// The same pipeline with the trigger's logic as a plain native function: the floor.
fn native(json: &[u8]) -> (usize, String) {
    let input = SyncEvent::from_json(json).expect("event");
    let stored: Dataset = stored_from_event(&input);
    let out = sample_trigger::handle(to_guest(&input)).expect("trigger");
    let response = from_guest(&input, &out);
    let writes = merge::merge(&stored, &input, &response).expect("merge");
    // The SDK keeps native log lines for tests to read; drop them as the host would.
    drop(synctrig_guest::log::take_test_logs());
    (writes.len(), response.to_json())
}

/// The plain floor: parse the event into a `serde_json::Value`, make the sample's edits,
/// serialise. No validation, no merge, no sandbox. (`tests/extism-compare` has the same.)
fn plain_serde_json(json: &[u8]) -> Vec<u8> {
    use serde_json::{Value, json};
    let mut event: Value = serde_json::from_slice(json).expect("event");
    let records = event["datasetRecords"].as_object_mut().expect("records");
    if let Some(r) = records.get_mut("SampleKey1") {
        r["newValue"] = json!("ModifyValue1");
        r["op"] = json!("replace");
    }
    if let Some(r) = records.get_mut("SampleKey2") {
        r["newValue"] = Value::Null;
        r["op"] = json!("remove");
    }
    records.entry("SampleKey3").or_insert_with(|| json!({"newValue": "ModifyValue3", "op": "replace"}));
    serde_json::to_vec(&event).expect("json")
}

fn percentiles(label: &str, mut f: impl FnMut()) {
    for _ in 0..2_000 {
        f();
    }
    let mut samples: Vec<Duration> = (0..20_000)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    samples.sort();
    let p = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)].as_secs_f64() * 1e6;
    println!("latency {label}: p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs", p(0.50), p(0.99), p(1.0));
}

fn main() {
    let rt = runtime(Some(synctrig_runtime::sandbox::DEFAULT_FUEL));
    let trigger = rt.load_file(&guest("sample_trigger")).expect("sample trigger");
    let json10 = event(10).to_json().into_bytes();
    assert_eq!(sandboxed(&rt, &trigger, &json10), native(&json10), "sandboxed and native agree");
    // INVOKE_PROFILE_SECS=n: only the sandboxed 10-record invocation, back to back for n
    // seconds, for `perf record` (criterion's analysis would fill the profile).
    if let Some(secs) = std::env::var("INVOKE_PROFILE_SECS").ok().and_then(|s| s.parse().ok()) {
        let once = rt.invoke(&trigger, &SyncEvent::from_json(&json10).expect("event"));
        println!("one invocation: {:?}", once.stats);
        let (start, mut n) = (Instant::now(), 0u64);
        while start.elapsed() < Duration::from_secs(secs) {
            for _ in 0..1000 {
                black_box(sandboxed(&rt, &trigger, &json10));
            }
            n += 1000;
        }
        println!("sandboxed, 10 records: {:.2} µs each over {n}", start.elapsed().as_secs_f64() * 1e6 / n as f64);
        return;
    }
    percentiles("sandboxed, 10 records", || {
        black_box(sandboxed(&rt, &trigger, &json10));
    });
    percentiles("native, 10 records", || {
        black_box(native(&json10));
    });
    percentiles("plain serde_json, 10 records", || {
        black_box(plain_serde_json(&json10));
    });

    let mut c = Criterion::default()
        .configure_from_args()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));

    let mut g = c.benchmark_group("invoke");
    for n in [1usize, 10, 100, 1024] {
        let json = event(n).to_json().into_bytes();
        g.bench_function(format!("sandboxed/{n}"), |b| b.iter(|| black_box(sandboxed(&rt, &trigger, &json))));
        g.bench_function(format!("native/{n}"), |b| b.iter(|| black_box(native(&json))));
        g.bench_function(format!("plain-serde-json/{n}"), |b| b.iter(|| black_box(plain_serde_json(&json))));
    }
    g.finish();

    // The serve path without HTTP and SQLite: a client patches two records of a stored
    // dataset; build the event, invoke, merge (what `serve` does per UpdateRecords).
    let mut g = c.benchmark_group("serve-path");
    for n in [10usize, 1024] {
        let stored = stored_from_event(&event(n));
        let meta = merge::EventMeta {
            region: "us-east-1".into(),
            identity_pool_id: "us-east-1:00000000-0000-0000-0000-000000000001".into(),
            identity_id: "us-east-1:00000000-0000-0000-0000-000000000002".into(),
            dataset_name: "bench".into(),
        };
        let patches = [
            merge::Patch { key: "SampleKey1".into(), op: Op::Replace, value: Some("new1".into()) },
            merge::Patch { key: "key0009".into(), op: Op::Replace, value: Some("new9".into()) },
        ];
        g.bench_function(format!("sandboxed/{n}"), |b| {
            b.iter(|| {
                let input = merge::build_event(&meta, &stored, &patches);
                black_box(synctrig_runtime::pipeline::run_trigger(&rt, &trigger, &stored, &input).result.is_ok())
            })
        });
    }
    g.finish();

    for n in [10usize, 1024] {
        let mut g = c.benchmark_group(format!("parts-{n}"));
        let json = event(n).to_json().into_bytes();
        let input = SyncEvent::from_json(&json).unwrap();
        let stored = stored_from_event(&input);
        let response = rt.invoke(&trigger, &input).result.unwrap();
        g.bench_function("codec", |b| b.iter(|| black_box(SyncEvent::from_json(black_box(&json)).unwrap().to_json())));
        g.bench_function("decode", |b| b.iter(|| black_box(SyncEvent::from_json(black_box(&json)).unwrap())));
        g.bench_function("encode", |b| b.iter(|| black_box(response.to_json())));
        g.bench_function("stored", |b| b.iter(|| black_box(stored_from_event(&input))));
        g.bench_function("instantiate", |b| b.iter(|| black_box(rt.prepare(&trigger).ok())));
        g.bench_function("call", |b| {
            b.iter_batched(
                || rt.prepare(&trigger).ok().unwrap(),
                |p| black_box(p.call(&input)),
                BatchSize::PerIteration,
            )
        });
        g.bench_function("merge", |b| b.iter(|| black_box(merge::merge(&stored, &input, &response).unwrap())));
        g.finish();
    }

    let mut g = c.benchmark_group("fuel-10");
    let input = SyncEvent::from_json(&json10).unwrap();
    let unfueled = runtime(None);
    let trigger_nf = unfueled.load_file(&guest("sample_trigger")).unwrap();
    g.bench_function("fuel-on", |b| b.iter(|| black_box(rt.invoke(&trigger, &input).result.is_ok())));
    g.bench_function("fuel-off", |b| b.iter(|| black_box(unfueled.invoke(&trigger_nf, &input).result.is_ok())));
    g.finish();

    let mut g = c.benchmark_group("throughput-10");
    g.throughput(Throughput::Elements(1));
    for threads in [1u64, 2] {
        g.bench_function(format!("{threads}-threads"), |b| {
            b.iter_custom(|iters| {
                let per_thread = iters.div_ceil(threads);
                let start = Instant::now();
                std::thread::scope(|s| {
                    for _ in 0..threads {
                        s.spawn(|| {
                            for _ in 0..per_thread {
                                black_box(sandboxed(&rt, &trigger, &json10));
                            }
                        });
                    }
                });
                // Report time per invocation as if `iters` ran: elements/s is throughput.
                start.elapsed().mul_f64(iters as f64 / (per_thread * threads) as f64)
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("cold-load");
    g.sample_size(10);
    let bytes = std::fs::read(guest("sample_trigger")).unwrap();
    // Compiling in this process (the baseline: how every load compiled before the worker) ...
    g.bench_function("compile-in-process", |b| b.iter(|| black_box(rt.load(&bytes).is_ok())));
    // ... and through the compile worker, as `serve`, `run` and `deploy` do.
    let worker = Compiler::Worker(synctrig_tests::synctrig_bin());
    let in_worker = Runtime::new(RuntimeConfig { compiler: worker.clone(), ..RuntimeConfig::default() }).unwrap();
    g.bench_function("compile-in-worker", |b| b.iter(|| black_box(in_worker.load(&bytes).is_ok())));
    let cache = tempfile::tempdir().unwrap();
    let cached = Runtime::new(RuntimeConfig {
        cache_dir: Some(cache.path().to_owned()),
        compiler: worker,
        ..RuntimeConfig::default()
    })
    .unwrap();
    let digest = cached.load(&bytes).unwrap().digest().to_owned();
    // As `serve` loads a function it knows the digest of, and as `run` loads a file.
    g.bench_function("from-artifact-cache", |b| b.iter(|| black_box(cached.load_cached(&digest).is_ok())));
    g.bench_function("from-artifact-cache-hashing-the-component", |b| {
        b.iter(|| black_box(cached.load(&bytes).is_ok()))
    });
    g.finish();

    c.final_summary();
}
