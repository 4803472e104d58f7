//! The hostile-trigger catalogue: each guest must get its exact outcome, and the host
//! must stay healthy afterwards (the next normal invocation succeeds).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use synctrig_runtime::invoker::Invoker;
use synctrig_runtime::pipeline::{Outcome, run_trigger, stored_from_event};
use synctrig_runtime::sandbox::DEFAULT_MEMORY_BYTES;
use synctrig_runtime::{Error, Limits, Runtime};
use synctrig_tests::{guest, runtime, runtime_config, seed_event};

/// For guests stopped by something other than the deadline: a deadline so long that a
/// loaded machine cannot turn their outcome into a timeout.
fn limits() -> Limits {
    Limits { deadline: Duration::from_secs(60), ..Limits::default() }
}

/// For the deadline's own tests: short, so the suite stays fast (the 5 s default has
/// its own test in cli.rs).
fn short_deadline() -> Limits {
    Limits { deadline: Duration::from_millis(300), fuel: None, ..Limits::default() }
}

fn run_on(rt: &Runtime, name: &str) -> Outcome {
    let trigger = rt.load_file(&guest(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let input = seed_event();
    let outcome = run_trigger(rt, &trigger, &stored_from_event(&input), &input);
    // The host is still healthy: a normal trigger works right after.
    let healthy = rt.load_file(&guest("sample_trigger")).unwrap();
    let next = run_trigger(rt, &healthy, &stored_from_event(&input), &input);
    assert!(next.result.is_ok(), "after {name}: {:?}", next.result);
    outcome
}

fn outcome_of(name: &str, limits: Limits) -> Result<synctrig_runtime::SyncEvent, Error> {
    run_on(&runtime(limits), name).result.map(|a| a.response)
}

#[test]
fn infinite_loop_hits_the_deadline() {
    let err = outcome_of("infinite_loop", short_deadline()).unwrap_err();
    assert_eq!(err, Error::Timeout { deadline: Duration::from_millis(300) });
    assert_eq!(err.api_name(), "LambdaSocketTimeoutException");
}

#[test]
fn infinite_loop_with_fuel_runs_out_of_one_or_the_other() {
    let err = outcome_of("infinite_loop", Limits { fuel: Some(10_000_000), ..limits() }).unwrap_err();
    assert_eq!(err, Error::OutOfFuel { budget: 10_000_000 });
}

#[test]
fn host_call_loop_hits_the_deadline() {
    let outcome = run_on(&runtime(short_deadline()), "host_call_loop");
    assert_eq!(outcome.result.unwrap_err(), Error::Timeout { deadline: Duration::from_millis(300) });
    assert!(outcome.log.ends_with("more bytes dropped]\n"), "the flood of log calls is truncated");
    assert!(outcome.log.len() < 70 << 10);
}

#[test]
fn fuel_bomb_runs_out_of_fuel() {
    let err = outcome_of("fuel_bomb", Limits { fuel: Some(50_000_000), ..limits() }).unwrap_err();
    assert_eq!(err, Error::OutOfFuel { budget: 50_000_000 });
    assert_eq!(err.to_string(), "trigger exceeded its fuel budget of 50000000");
    assert_eq!(err.api_name(), "InvalidLambdaFunctionOutputException");
}

#[test]
fn memory_bomb_is_denied_memory() {
    let err = outcome_of("memory_bomb", limits()).unwrap_err();
    assert_eq!(err, Error::MemoryLimit { limit: DEFAULT_MEMORY_BYTES });
    let err = outcome_of("memory_bomb", Limits { memory_bytes: 8 << 20, ..limits() }).unwrap_err();
    assert_eq!(err, Error::MemoryLimit { limit: 8 << 20 });
}

#[test]
fn recursion_overflows_the_stack() {
    let err = outcome_of("stack_overflow", limits()).unwrap_err();
    assert_eq!(err, Error::StackOverflow { limit: Limits::default().max_wasm_stack });
    assert_eq!(err.api_name(), "InvalidLambdaFunctionOutputException");
}

#[test]
fn panic_is_reported_with_its_message() {
    let err = outcome_of("panic", limits()).unwrap_err();
    assert!(
        matches!(&err, Error::Panic { message } if message.starts_with("trigger bug: index out of range (at ")),
        "{err:?}"
    );
}

#[test]
fn unreachable_is_a_trap() {
    let err = outcome_of("unreachable", limits()).unwrap_err();
    assert!(matches!(&err, Error::Trap { message } if message.contains("unreachable")), "{err:?}");
}

#[test]
fn exit_is_not_a_response() {
    assert_eq!(outcome_of("exit", limits()).unwrap_err(), Error::Exited { code: 1 });
}

#[test]
fn output_over_the_size_cap() {
    let err = outcome_of("big_output", limits()).unwrap_err();
    assert!(matches!(&err, Error::OutputTooLarge(m) if m.contains("over the cap of 4194304")), "{err:?}");
}

#[test]
fn aliased_output_strings_are_refused_before_they_are_copied() {
    // 4,000 records whose values all point at one 4 MiB string: 16 GB if lifted naively.
    // wasmtime's own transfer limit would stop the copying at 128 MiB with a generic
    // error; the output budget stops it at the 4 MiB cap, before the first copy over it.
    let err = outcome_of("aliased_output", limits()).unwrap_err();
    assert!(matches!(&err, Error::OutputTooLarge(m) if m.contains("over the cap of 4194304 bytes")), "{err:?}");
}

#[test]
fn the_record_count_is_capped_before_the_records_are_lifted() {
    let rt = runtime(Limits { max_output_records: 2, ..limits() });
    let trigger = rt.load_file(&guest("sample_trigger")).unwrap();
    let input = seed_event();
    let outcome = run_trigger(&rt, &trigger, &stored_from_event(&input), &input);
    assert_eq!(outcome.result.unwrap_err(), Error::OutputTooLarge("3 records, over the cap of 2".into()));
}

#[test]
fn dataset_over_the_record_limit() {
    let err = outcome_of("too_many_records", limits()).unwrap_err();
    assert_eq!(err, Error::InvalidOutput("trigger's result has 1025 records, over the limit of 1024".into()));
}

#[test]
fn tampered_field_and_invalid_op() {
    assert!(
        matches!(outcome_of("tamper_identity", limits()).unwrap_err(), Error::InvalidOutput(m) if m.contains("read-only field identityId"))
    );
    assert!(
        matches!(outcome_of("invalid_op", limits()).unwrap_err(), Error::InvalidOutput(m) if m.contains("unexpected discriminant: 7"))
    );
}

#[test]
fn log_flood_is_truncated_with_a_marker() {
    let outcome = run_on(&runtime(limits()), "log_flood");
    assert!(outcome.result.is_ok(), "logging too much is not an error: {:?}", outcome.result);
    assert!(outcome.stats.log_bytes > 3_000_000, "{} bytes were logged", outcome.stats.log_bytes);
    let cap = Limits::default().max_log_bytes;
    assert!(outcome.log.len() <= cap + 100);
    assert!(outcome.log.ends_with(&format!(
        "[synctrig: log truncated at {cap} bytes; {} more bytes dropped]\n",
        outcome.stats.log_bytes - cap
    )));
}

#[test]
fn file_system_and_network_imports_are_refused_at_load() {
    let rt = runtime(limits());
    let Err(Error::InvalidComponent(m)) = rt.load_file(&guest("open_file")) else { panic!("open_file loaded") };
    assert!(m.contains("wasi:filesystem/types@0.2.6 (triggers have no file system)"), "{m}");
    let Err(Error::InvalidComponent(m)) = rt.load_file(&guest("open_socket")) else { panic!("open_socket loaded") };
    assert!(m.contains("wasi:sockets/tcp@0.2.6 (triggers have no network)"), "{m}");
}

fn result_record(event: &synctrig_runtime::SyncEvent, key: &str) -> String {
    event.record(key).and_then(|r| r.new_value.clone()).unwrap_or_else(|| panic!("no {key}"))
}

#[test]
fn environment_and_arguments_are_empty() {
    let out = outcome_of("read_env", limits()).unwrap();
    assert_eq!(result_record(&out, "result"), "0");
}

#[test]
fn wall_clock_is_frozen_at_the_invocation_to_the_second() {
    let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let out = outcome_of("read_clock", limits()).unwrap();
    let after = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let t1: u64 = result_record(&out, "t1").parse().unwrap();
    let t2: u64 = result_record(&out, "t2").parse().unwrap();
    assert_eq!(t1, t2, "time does not pass inside an invocation");
    assert_eq!(t1 % 1_000_000_000, 0, "one-second resolution");
    assert!((before..=after).contains(&(t1 / 1_000_000_000)));
}

#[test]
fn a_rust_triggers_randomness_and_clock_come_from_its_entropy() {
    use synctrig_runtime::sandbox::Entropy;
    let rt = runtime(limits());
    let trigger = rt.load_file(&guest("draw_random")).unwrap();
    let drawn = |entropy: Entropy| {
        let invocation = rt.invoke_with(&trigger, &seed_event(), entropy);
        assert_eq!(invocation.entropy, entropy);
        let out = invocation.result.unwrap();
        ["secure", "insecure", "seed", "clock"].map(|key| result_record(&out, key))
    };
    let seed = |k: u8| std::array::from_fn(|i| (i as u8).wrapping_mul(k).wrapping_add(k));
    let a = Entropy { seed: seed(7), clock_secs: 1_700_000_000 };
    let b = Entropy { seed: seed(11), clock_secs: 1_700_000_001 };
    let first = drawn(a);
    assert_eq!(drawn(a), first, "the same entropy draws the same");
    assert_eq!(first[3], "1700000000");
    // Pinned: a recorded invocation replays on later builds only while these hold.
    assert_eq!(first[..3], ["965916647881264172", "17164112219022714099", "10417020210494074992:10426027272316186768"]);
    let other = drawn(b);
    for i in 0..3 {
        assert_ne!(other[i], first[i], "another seed draws another {i}");
    }
    assert_ne!(first[0], first[1], "the secure and insecure streams differ");
}

/// The SDK's arena never reaches wasi-libc's `free`: what imports return is allocated by
/// the system allocator (`cabi_import_realloc`), as libc frees it.
#[test]
fn wasi_libc_frees_what_imports_return_beside_the_sdks_arena() {
    let out = outcome_of("sdk_libc_entropy", limits()).unwrap();
    let expected: usize = (0..200).map(|round: usize| round.to_string().len() + 5).sum();
    assert_eq!(result_record(&out, "entropy"), expected.to_string());
}

#[test]
fn monotonic_clock_is_frozen() {
    let out = outcome_of("read_timer", limits()).unwrap();
    assert_eq!(result_record(&out, "result"), "0");
}

#[test]
fn oversized_components_are_refused() {
    let rt = Runtime::new(synctrig_runtime::RuntimeConfig { max_component_bytes: 1000, ..runtime_config(limits()) })
        .unwrap();
    let Err(Error::InvalidComponent(m)) = rt.load_file(&guest("identity")) else { panic!("loaded") };
    assert!(m.contains("over the limit of 1000 bytes"), "{m}");
}

fn resident_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    statm.split_whitespace().nth(1).unwrap().parse::<usize>().unwrap() * 4096
}

#[test]
fn memory_bomb_200_times_leaves_resident_memory_flat() {
    let rt = runtime(limits());
    let trigger = rt.load_file(&guest("memory_bomb")).unwrap();
    let input = seed_event();
    let mut after_warmup = 0;
    for i in 0..200 {
        let outcome = rt.invoke(&trigger, &input);
        assert_eq!(outcome.result.unwrap_err(), Error::MemoryLimit { limit: DEFAULT_MEMORY_BYTES });
        if i == 19 {
            after_warmup = resident_bytes();
        }
    }
    let end = resident_bytes();
    let grown = end.saturating_sub(after_warmup);
    eprintln!("resident memory: {} KiB after 20 memory bombs, {} KiB after 200", after_warmup >> 10, end >> 10);
    // Other tests run in parallel in this process, so allow some noise, far below the
    // 180 × 64 MiB a leak would show.
    assert!(grown < 128 << 20, "resident memory grew by {} MiB over 180 memory bombs", grown >> 20);
}

#[test]
fn artifact_cache_is_used_and_only_trusts_its_own_artifacts() {
    let dir = tempfile::tempdir().unwrap();
    let config = synctrig_runtime::RuntimeConfig { cache_dir: Some(dir.path().to_owned()), ..runtime_config(limits()) };
    let first = Runtime::new(config.clone()).unwrap();
    let trigger = first.load_file(&guest("sample_trigger")).unwrap();
    let artifacts: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    assert_eq!(artifacts.len(), 1);
    assert!(artifacts[0].file_name().unwrap().to_str().unwrap().starts_with(trigger.digest()));

    // A second runtime (a restart) loads it from the cache and it works.
    let second = Runtime::new(config.clone()).unwrap();
    let cached = second.load_file(&guest("sample_trigger")).unwrap();
    assert!(second.invoke(&cached, &seed_event()).result.is_ok());

    // A tampered artifact is ignored (recompiled), never deserialised.
    let mut bytes = std::fs::read(&artifacts[0]).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&artifacts[0], &bytes).unwrap();
    let third = Runtime::new(config).unwrap();
    let recompiled = third.load_file(&guest("sample_trigger")).unwrap();
    assert!(third.invoke(&recompiled, &seed_event()).result.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_pool_admission_throttles() {
    let rt = Arc::new(runtime(limits()));
    // Two workers; a pool runs one at a time and may have one more admitted.
    let invoker = Arc::new(Invoker::new(rt.clone(), 2, 1, 1));
    let first = invoker.reserve("us-east-1:pool-a").await.unwrap();
    let second = invoker.reserve("us-east-1:pool-a").await.unwrap();
    let third = invoker.reserve("us-east-1:pool-a").await.err().unwrap();
    assert_eq!(third, Error::Throttled);
    assert_eq!(Error::Throttled.api_name(), "LambdaThrottledException");
    // Another tenant is not affected.
    let other = invoker.reserve("us-east-1:pool-b").await.unwrap();
    let trigger = rt.load_file(&guest("sample_trigger")).unwrap();
    let input = seed_event();
    let outcome = other.run(trigger.clone(), stored_from_event(&input), input.clone()).await;
    assert!(outcome.result.is_ok());
    // Both admitted invocations run (one after the other), and give their places back.
    let (a, b) = tokio::join!(
        first.run(trigger.clone(), stored_from_event(&input), input.clone()),
        second.run(trigger.clone(), stored_from_event(&input), input.clone()),
    );
    assert!(a.result.is_ok() && b.result.is_ok());
    assert!(invoker.reserve("us-east-1:pool-a").await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spinning_pools_backlog_does_not_delay_a_quiet_pool() {
    let rt = Arc::new(runtime(short_deadline()));
    // Two workers, each pool may use both when alone.
    let invoker = Arc::new(Invoker::new(rt.clone(), 2, 2, 64));
    let spin = rt.load_file(&guest("infinite_loop")).unwrap();
    let sample = rt.load_file(&guest("sample_trigger")).unwrap();
    let input = seed_event();
    let mut noisy = Vec::new();
    for _ in 0..8 {
        let reservation = invoker.reserve("us-east-1:noisy").await.unwrap();
        let (spin, input) = (spin.clone(), input.clone());
        noisy.push(tokio::spawn(async move { reservation.run(spin, stored_from_event(&input), input).await }));
    }
    while invoker.queued("us-east-1:noisy") < 6 {
        tokio::task::yield_now().await;
    }
    // The quiet pool is served at the noisy pool's next free worker, not after its backlog
    // of 300 ms spinners: most of that backlog is still queued when it is done.
    let quiet = invoker.reserve("us-east-1:quiet").await.unwrap();
    assert!(quiet.run(sample, stored_from_event(&input), input.clone()).await.result.is_ok());
    assert!(invoker.queued("us-east-1:noisy") >= 4, "{} noisy invocations left", invoker.queued("us-east-1:noisy"));
    for handle in noisy {
        assert!(matches!(handle.await.unwrap().result, Err(Error::Timeout { .. })));
    }
}

/// For each of this process's threads named `name`, whether it runs at the lowest priority:
/// `SCHED_IDLE` or niceness 19 (Linux: fields 41 and 19 of /proc/self/task/*/stat).
fn lowered_threads(name: &str) -> Vec<bool> {
    let mut found = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else { continue };
        // "tid (comm) state ...": the fields after the command's closing parenthesis.
        let Some((head, rest)) = stat.rsplit_once(") ") else { continue };
        if head.ends_with(&format!("({name}")) {
            let fields: Vec<&str> = rest.split(' ').collect();
            found.push(fields.get(38) == Some(&"5") || fields.get(16) == Some(&"19"));
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spinning_call_steps_aside_and_gives_its_slot_to_another_pool() {
    let rt = Arc::new(runtime(short_deadline()));
    // One worker: before the spinner steps aside, nothing else can run.
    let invoker = Arc::new(Invoker::new(rt.clone(), 1, 1, 64));
    let spin = rt.load_file(&guest("infinite_loop")).unwrap();
    let sample = rt.load_file(&guest("sample_trigger")).unwrap();
    let input = seed_event();
    let reservation = invoker.reserve("us-east-1:noisy").await.unwrap();
    let (s, i) = (spin.clone(), input.clone());
    let noisy = tokio::spawn(async move { reservation.run(s, stored_from_event(&i), i).await });
    // Once it runs long, its thread is at the lowest priority.
    while !lowered_threads("synctrig-trigge").contains(&true) {
        assert!(!noisy.is_finished(), "the spinner ended without stepping aside");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // The quiet pool is served on a fresh worker while the spinner still runs.
    let quiet = invoker.reserve("us-east-1:quiet").await.unwrap();
    assert!(quiet.run(sample.clone(), stored_from_event(&input), input.clone()).await.result.is_ok());
    assert!(!noisy.is_finished(), "the quiet pool waited for the spinner");
    // The deadline still stops it, and the lowered thread ends; its replacement is at the
    // normal priority.
    assert!(matches!(noisy.await.unwrap().result, Err(Error::Timeout { .. })));
    let quiet = invoker.reserve("us-east-1:quiet").await.unwrap();
    assert!(quiet.run(sample, stored_from_event(&input), input).await.result.is_ok());
    while lowered_threads("synctrig-trigge").contains(&true) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(lowered_threads("synctrig-trigge").contains(&false));
}
