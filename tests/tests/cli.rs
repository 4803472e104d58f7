//! Real components through the `synctrig-wasm` binary.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use synctrig_tests::{SEED_EVENT, guest, synctrig_bin, workspace_root};

fn run(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(synctrig_bin())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON value ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

fn seed_file() -> String {
    workspace_root().join("examples/seed-event.json").display().to_string()
}

#[test]
fn seed_event_file_through_sample_trigger() {
    let trigger = guest("sample_trigger").display().to_string();
    let out = run(&["run", "--trigger", &trigger, "--event", &seed_file()], None);
    assert!(out.status.success(), "{out:?}");
    let response = json(&out);
    let records = &response["datasetRecords"];
    assert_eq!(records["SampleKey1"]["newValue"], "ModifyValue1");
    assert_eq!(records["SampleKey1"]["op"], "replace");
    assert_eq!(records["SampleKey2"]["op"], "remove");
    assert_eq!(records["SampleKey3"]["newValue"], "ModifyValue3");
    assert_eq!(records["SampleKey3"]["op"], "replace");
    let input: serde_json::Value = serde_json::from_str(SEED_EVENT).unwrap();
    for field in ["version", "eventType", "region", "identityPoolId", "identityId", "datasetName"] {
        assert_eq!(
            serde_json::to_string(&response[field]).unwrap(),
            serde_json::to_string(&input[field]).unwrap(),
            "{field} must be byte-for-byte what went in"
        );
    }
    assert_eq!(String::from_utf8_lossy(&out.stderr), "[info] SyncTrigger for identityId / datasetName: 2 records\n");
}

#[test]
fn event_from_stdin_and_stats() {
    let trigger = guest("sample_trigger").display().to_string();
    let out = run(&["run", "--trigger", &trigger, "--stats"], Some(SEED_EVENT));
    assert!(out.status.success(), "{out:?}");
    assert_eq!(json(&out)["datasetRecords"]["SampleKey1"]["newValue"], "ModifyValue1");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("stats: wall ") && stderr.contains("fuel ") && stderr.contains("peak memory "), "{stderr}");
}

#[test]
fn tampered_identity_gives_invalid_output_and_nothing_else() {
    let trigger = guest("tamper_identity").display().to_string();
    let out = run(&["run", "--trigger", &trigger, "--event", &seed_file()], None);
    assert!(!out.status.success());
    let lines: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    assert_eq!(lines.len(), 1, "exactly one JSON object on stdout: {lines:?}");
    let error = json(&out);
    assert_eq!(error["__type"], "InvalidLambdaFunctionOutputException");
    assert!(error["message"].as_str().unwrap().contains("identityId"));
    assert_eq!(error.as_object().unwrap().len(), 2);
}

#[test]
fn bad_event_json_is_invalid_parameter() {
    let trigger = guest("sample_trigger").display().to_string();
    for (event, needle) in [
        ("{", "EOF"),
        (r#"{"version": 2}"#, "missing field"),
        (&SEED_EVENT.replace("\"replace\"", "\"upsert\""), "upsert"),
        (&SEED_EVENT.replace("SampleKey2", "SampleKey1"), "duplicate record key"),
    ] {
        let out = run(&["run", "--trigger", &trigger], Some(event));
        assert!(!out.status.success());
        let error = json(&out);
        assert_eq!(error["__type"], "InvalidParameterException", "{event}");
        assert!(error["message"].as_str().unwrap().contains(needle), "{error}");
    }
}

#[test]
fn a_missing_or_bad_component_is_invalid_configuration() {
    let out = run(&["run", "--trigger", "/nonexistent.wasm", "--event", &seed_file()], None);
    assert_eq!(json(&out)["__type"], "InvalidConfigurationException");
    let out = run(&["run", "--trigger", &seed_file(), "--event", &seed_file()], None);
    assert_eq!(json(&out)["__type"], "InvalidConfigurationException");
}

#[test]
fn help_explains_the_contract() {
    let out = run(&["run", "--help"], None);
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "--trigger",
        "--event",
        "stdin",
        "__type",
        "InvalidLambdaFunctionOutputException",
        "stderr",
        "--stats",
        "--deadline-ms",
        "--fuel",
    ] {
        assert!(help.contains(needle), "--help lacks {needle}:\n{help}");
    }
}

/// The one test that uses the real default deadline: with fuel metering off, only the
/// deadline can stop an infinite loop, and it must do so at 5 s. The bound is checked on
/// the invocation's own wall time (`--stats`), not on the process's, whose start-up and
/// compile time vary with the machine's load.
#[test]
fn default_deadline_is_five_seconds() {
    assert_eq!(synctrig_runtime::Limits::default().deadline, Duration::from_secs(5));
    let trigger = guest("infinite_loop").display().to_string();
    let start = Instant::now();
    let out = run(&["run", "--trigger", &trigger, "--event", &seed_file(), "--no-fuel", "--stats"], None);
    assert!(start.elapsed() >= Duration::from_secs(5), "stopped early: {:?}", start.elapsed());
    assert_eq!(json(&out)["__type"], "LambdaSocketTimeoutException");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let wall_ms: f64 = stderr
        .split("stats: wall ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_else(|| panic!("no stats on stderr: {stderr}"));
    assert!((5000.0..=5500.0).contains(&wall_ms), "the invocation was stopped after {wall_ms} ms");
}

/// The deadline does not drift on long deadlines either: epochs follow a monotonic clock.
/// Ignored (20 s); run with `cargo test -p synctrig-tests --test cli -- --ignored`.
#[test]
#[ignore]
fn twenty_second_deadline_ends_within_a_tick() {
    let trigger = guest("infinite_loop").display().to_string();
    let out = run(
        &["run", "--trigger", &trigger, "--event", &seed_file(), "--no-fuel", "--stats", "--deadline-ms", "20000"],
        None,
    );
    assert_eq!(json(&out)["__type"], "LambdaSocketTimeoutException");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let wall_ms: f64 = stderr.split("stats: wall ").nth(1).and_then(|r| r.split(' ').next()?.parse().ok()).unwrap();
    eprintln!("a 20 s deadline stopped the invocation after {wall_ms} ms");
    // Two 5 ms ticks (the partial one and its rounding) plus scheduling.
    assert!((20000.0..=20050.0).contains(&wall_ms), "the invocation was stopped after {wall_ms} ms");
}

#[test]
fn pooling_falls_back_to_on_demand_when_address_space_is_short() {
    // 6 GB of address space: too little for the pool (many 4 GiB memory reservations),
    // enough for one on-demand instance.
    let trigger = guest("sample_trigger").display().to_string();
    let script = format!("ulimit -v 6000000 && exec \"$0\" run --trigger '{trigger}' --event '{}'", seed_file());
    let out = Command::new("sh").args(["-c", &script]).arg(synctrig_bin()).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(json(&out)["datasetRecords"]["SampleKey1"]["newValue"], "ModifyValue1");
    assert!(String::from_utf8_lossy(&out.stderr).contains("pooling allocator unavailable"));
}
