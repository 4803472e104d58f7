//! The hostile-loading catalogue: components built to crash, stall or bloat whoever parses
//! and compiles them. Each must be refused with the limit it breaks named, by the compile
//! worker (a child process under OS limits), with this process alive and its resident
//! memory bounded afterwards, and nothing left in the artifact cache.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use std::path::Path;
use synctrig_runtime::limits::component::{MAX_CONTROL_DEPTH, MAX_FUNCTIONS, MAX_TYPE_NESTING};
use synctrig_runtime::pipeline::{run_trigger, stored_from_event};
use synctrig_runtime::{Error, Limits, Runtime, RuntimeConfig};
use synctrig_tests::{guest, hostile, runtime, runtime_config, seed_event};

fn resident_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    statm.split_whitespace().nth(1).unwrap().parse::<usize>().unwrap() * 4096
}

/// Loads `bytes` with a cache, expects a refusal whose message contains `limit`, and checks
/// that this process is healthy and small and that the cache holds nothing.
fn refused(bytes: &[u8], limit: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let rt =
        Runtime::new(RuntimeConfig { cache_dir: Some(dir.path().to_owned()), ..runtime_config(Limits::default()) })
            .unwrap();
    let message = match rt.load(bytes) {
        Err(Error::InvalidComponent(m)) => m,
        Err(other) => panic!("expected InvalidComponent naming {limit:?}, got {other:?}"),
        Ok(_) => panic!("loaded a component that should be refused ({limit})"),
    };
    assert!(message.contains(limit), "{message:?} does not name {limit:?}");
    assert_eq!(artifacts(dir.path()), 0, "a refused component leaves nothing in the cache");
    // Still healthy: a normal trigger loads and runs.
    let sample = rt.load_file(&guest("sample_trigger")).unwrap();
    let input = seed_event();
    assert!(run_trigger(&rt, &sample, &stored_from_event(&input), &input).result.is_ok());
    let rss = resident_bytes();
    assert!(rss < 1 << 30, "this process holds {} MiB after loading a bomb", rss >> 20);
    message
}

fn artifacts(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "cwasm"))
        .count()
}

#[test]
fn deeply_nested_types() {
    // 1,500 levels (4.5 KB) killed a server's compile thread; 10,000 (30 KB) `run` and deploy.
    for depth in [MAX_TYPE_NESTING + 1, 1_500, 10_000] {
        refused(&hostile::nested_types(depth), &format!("component types nest more than {MAX_TYPE_NESTING} deep"));
    }
    // So deep that parsing alone overflows the worker's 64 MiB stack: the worker dies, we do not.
    let m = refused(&hostile::nested_types(3_000_000), "overflowed the compile worker's stack of 64 MiB");
    assert!(m.contains("nests too deeply"), "{m}");
}

#[test]
fn nested_instantiation() {
    // Each level instantiates the one inside it eight times: 8^6 instances once flattened.
    let m = refused(&hostile::nested_instantiation(6, 8), "once nested");
    assert!(m.contains("over the limit of 16"), "{m}");
}

#[test]
fn too_many_functions() {
    refused(&hostile::too_many_functions(), &format!("more than {MAX_FUNCTIONS} functions"));
}

#[test]
fn deeply_nested_blocks() {
    refused(&hostile::deeply_nested_blocks(), &format!("blocks nest more than {MAX_CONTROL_DEPTH} deep"));
}

#[test]
fn three_tables_in_a_module() {
    // The pooling allocator holds one table per module: what `serve` could not instantiate
    // is refused at load, by every command alike.
    refused(&hostile::three_tables(), "3 tables, over the limit of 1 per module");
}

#[test]
fn a_memory_larger_than_the_cap_is_refused_at_load() {
    // Valid, compiles, but cannot start in the sandbox (128 MiB initial memory > 64 MiB).
    let bytes = wat::parse_str("(component (core module $m (memory 2048)) (core instance (instantiate $m)))").unwrap();
    refused(&bytes, "memory has a minimum byte size of 134217728 which exceeds the limit of 0x4000000 bytes");
}

#[test]
fn a_register_allocator_bomb_meets_the_cpu_limit() {
    let bytes = hostile::register_allocator_bomb();
    assert!(synctrig_runtime::sandbox::structure::check(&bytes).is_ok(), "within every structural limit");
    refused(&bytes, "took more than the limit of 10 s of CPU time");
}

#[test]
fn the_compile_worker_compiles_on_the_same_threads_on_any_machine() {
    use std::io::Write;
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Command, Stdio};
    // RAYON_NUM_THREADS=8 sizes the pool as an eight-core machine would. Left at eight
    // threads, the bomb meets the memory limit within a second (eight functions' compile
    // state at once) instead of the CPU limit it meets on two.
    let settings =
        synctrig_runtime::sandbox::EngineSettings { fuel: true, max_wasm_stack: Limits::default().max_wasm_stack };
    let mut worker = Command::new(synctrig_tests::synctrig_bin())
        .args(["compile", "--settings", &settings.to_arg()])
        .env_clear()
        .env("MIMALLOC_ARENA_RESERVE", "32MiB")
        .env("RAYON_NUM_THREADS", "8")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = worker.stdin.take().unwrap();
    let bomb = hostile::register_allocator_bomb();
    let writer = std::thread::spawn(move || stdin.write_all(&bomb));
    let out = worker.wait_with_output().unwrap();
    let _ = writer.join();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // SIGXCPU at the CPU limit (SIGKILL a second later); an allocation failure aborts.
    assert!(matches!(out.status.signal(), Some(24 | 9)), "{:?}: {stderr}", out.status);
    assert!(!stderr.contains("memory allocation"), "{stderr}");
}

#[test]
fn an_artifact_that_does_not_load_is_recompiled_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = RuntimeConfig { cache_dir: Some(dir.path().to_owned()), ..runtime_config(Limits::default()) };
    let bytes = std::fs::read(guest("sample_trigger")).unwrap();
    let digest = hex::encode(Sha256::digest(&bytes));
    let first = Runtime::new(config.clone()).unwrap();
    first.load(&bytes).unwrap();
    let path = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "cwasm"))
        .unwrap();
    // Garbage with a valid tag: as if this installation had written a broken artifact.
    let key = std::fs::read(dir.path().join("artifact.key")).unwrap();
    let garbage = vec![0x5a; 4096];
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&key).unwrap();
    mac.update(digest.as_bytes());
    mac.update(&garbage);
    let mut tagged = garbage.clone();
    tagged.extend(mac.finalize().into_bytes());
    std::fs::write(&path, tagged).unwrap();
    let second = Runtime::new(config).unwrap();
    let trigger = second.load(&bytes).expect("recompiled");
    let input = seed_event();
    assert!(run_trigger(&second, &trigger, &stored_from_event(&input), &input).result.is_ok());
    assert!(std::fs::read(&path).unwrap().len() > 4096 + 32, "the cache holds a good artifact again");
}

#[test]
fn a_huge_reject_reason_is_capped() {
    let rt = runtime(Limits::default());
    let trigger = rt.load_file(&guest("huge_reject")).unwrap();
    let input = seed_event();
    let before = resident_bytes();
    let Err(Error::Rejected { reason }) = run_trigger(&rt, &trigger, &stored_from_event(&input), &input).result else {
        panic!("not rejected")
    };
    assert!(reason.len() < 4200, "{} bytes", reason.len());
    assert!(
        reason.ends_with(&format!("… [synctrig: {} more bytes truncated]", (40 << 20) - 4096)),
        "{}",
        &reason[4000..]
    );
    assert!(resident_bytes() < before + (256 << 20));
}

#[test]
fn host_call_failures_are_named_as_such() {
    let rt = runtime(Limits::default());
    let input = seed_event();
    for (name, expected) in [
        ("random_flood", "requested len 67108864 exceeds limit 65536"),
        (
            "pollable_leak",
            "the trigger held more than 1024 host resources (streams, pollables, timers) at once, the sandbox's limit: \
             drop each when done with it",
        ),
    ] {
        let trigger = rt.load_file(&guest(name)).unwrap();
        let err = run_trigger(&rt, &trigger, &stored_from_event(&input), &input).result.unwrap_err();
        assert_eq!(err, Error::HostCallFailed { message: expected.into() }, "{name}");
        assert_eq!(err.api_name(), "InvalidLambdaFunctionOutputException");
    }
}

#[test]
fn a_refused_grow_the_guest_handled_does_not_explain_a_later_trap() {
    let rt = runtime(Limits::default());
    let input = seed_event();
    let trigger = rt.load_file(&guest("memory_then_trap")).unwrap();
    let outcome = run_trigger(&rt, &trigger, &stored_from_event(&input), &input);
    assert!(outcome.log.contains("1 GiB refused: true"), "{:?}", outcome.log);
    assert_eq!(outcome.result.unwrap_err(), Error::Trap { message: "wasm trap: out of bounds memory access".into() });
}
