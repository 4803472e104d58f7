//! The Extism side of BENCHMARKS.md's comparison: the seed's sample trigger as an
//! Extism plugin (`../plugin`), invoked on the same events as the project's `invoke`
//! bench, with a fresh instance per call and with one instance reused, beside a plain
//! native `serde_json::Value` parse–edit–serialise of the same event.
//!
//! cargo build --release --target wasm32-unknown-unknown -p sample-plugin
//! cargo run --release -p extism-compare

use extism::{CompiledPlugin, Manifest, Plugin, PluginBuilder, Wasm};
use serde_json::{Value, json};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// The event of `synctrig_tests::bench_event(n)`, as JSON: the same keys, values and order.
fn event(n: usize) -> Vec<u8> {
    let mut records = serde_json::Map::new();
    for i in 0..n {
        let key = match i {
            0 => "SampleKey1".to_owned(),
            1 => "SampleKey2".to_owned(),
            _ => format!("key{i:04}"),
        };
        let old = format!("value-{i}-{}", "x".repeat(40));
        let new = if i % 2 == 0 { format!("changed-{i}") } else { old.clone() };
        records.insert(key, json!({"oldValue": old, "newValue": new, "op": "replace"}));
    }
    serde_json::to_vec(&json!({
        "version": 2,
        "eventType": "SyncTrigger",
        "region": "us-east-1",
        "identityPoolId": "us-east-1:00000000-0000-0000-0000-000000000001",
        "identityId": "us-east-1:00000000-0000-0000-0000-000000000002",
        "datasetName": "bench",
        "datasetRecords": records,
    }))
    .unwrap()
}

/// The plain native floor: parse into a `Value`, apply the sample's edits, serialise.
fn plain_serde_json(json: &[u8]) -> Vec<u8> {
    let mut event: Value = serde_json::from_slice(json).unwrap();
    let records = event["datasetRecords"].as_object_mut().unwrap();
    if let Some(r) = records.get_mut("SampleKey1") {
        r["newValue"] = json!("ModifyValue1");
        r["op"] = json!("replace");
    }
    if let Some(r) = records.get_mut("SampleKey2") {
        r["newValue"] = Value::Null;
        r["op"] = json!("remove");
    }
    records.entry("SampleKey3").or_insert_with(|| json!({"newValue": "ModifyValue3", "op": "replace"}));
    serde_json::to_vec(&event).unwrap()
}

fn percentiles(label: &str, samples: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..samples / 10 {
        f();
    }
    let mut times: Vec<Duration> = (0..samples)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    let p = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)].as_secs_f64() * 1e6;
    println!("{label}: p50 {:.1} µs, p99 {:.1} µs", p(0.50), p(0.99));
    p(0.50)
}

fn main() {
    let wasm = std::fs::read("target/wasm32-unknown-unknown/release/sample_plugin.wasm")
        .expect("build the plugin first: cargo build --release --target wasm32-unknown-unknown -p sample-plugin");
    let manifest = Manifest::new([Wasm::data(wasm)]);
    let compiled = CompiledPlugin::new(PluginBuilder::new(manifest)).expect("compile");
    let mut reused = Plugin::new_from_compiled(&compiled).expect("instantiate");

    let json10 = event(10);
    let out: Vec<u8> = reused.call("handle", &json10[..]).expect("call");
    let plugin_out: Value = serde_json::from_slice(&out).unwrap();
    let native_out: Value = serde_json::from_slice(&plain_serde_json(&json10)).unwrap();
    assert_eq!(plugin_out, native_out, "the plugin and the plain edit agree");

    for n in [1usize, 10, 100, 1024] {
        let json = event(n);
        let samples = if n >= 1024 { 2_000 } else { 20_000 };
        let plain = percentiles(&format!("plain serde_json, {n} records"), samples, || {
            black_box(plain_serde_json(&json));
        });
        let reuse = percentiles(&format!("extism reused instance, {n} records"), samples, || {
            let out: Vec<u8> = reused.call("handle", &json[..]).unwrap();
            black_box(out);
        });
        let fresh = percentiles(&format!("extism fresh instance, {n} records"), samples / 4, || {
            let mut plugin = Plugin::new_from_compiled(&compiled).unwrap();
            let out: Vec<u8> = plugin.call("handle", &json[..]).unwrap();
            black_box(out);
        });
        println!("ratios {n} records: reused / plain {:.2}×, fresh / plain {:.2}×", reuse / plain, fresh / plain);
    }

    // Throughput on 1 and 2 threads, 10 records, one reused instance per thread.
    for threads in [1usize, 2] {
        let per_thread = 40_000;
        let start = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    let mut plugin = Plugin::new_from_compiled(&compiled).unwrap();
                    for _ in 0..per_thread {
                        let out: Vec<u8> = plugin.call("handle", &json10[..]).unwrap();
                        black_box(out);
                    }
                });
            }
        });
        let rate = (per_thread * threads) as f64 / start.elapsed().as_secs_f64();
        println!("throughput extism reused, 10 records, {threads} threads: {rate:.0} /s");
    }
}
