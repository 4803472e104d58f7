//! JavaScript triggers against the oracle: every handler of `tests/js-compat/corpus` (and
//! the JavaScript examples) runs on several events here and in Node.js under a
//! Lambda-style harness (`tests/js-compat/lambda.cjs`). Results must agree, outcome and
//! validated response, except the differences `tests/js-compat/differences.json` documents
//! (the README's JavaScript section lists them); logs are compared after normalising
//! timestamps and ids, and their agreement is reported, not required.
//!
//! The report (every case, and the figures) is written to `target/js-compat/report.md`.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use synctrig_runtime::event::{EventRecord, Op};
use synctrig_runtime::merge;
use synctrig_runtime::pipeline::{run_trigger, stored_from_event};
use synctrig_runtime::sandbox::js::ScriptSettings;
use synctrig_runtime::{Error, Limits, Runtime, RuntimeConfig, SyncEvent};
use synctrig_tests::{runtime_config, seed_event, workspace_root};

/// Short, so that the timeout cases do not take the suite's time; both sides use it.
const DEADLINE_MS: u64 = 1000;

/// How an invocation ended, in terms both sides share.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// The validated response and the writes it makes.
    Ok {
        response: String,
        writes: String,
    },
    Rejected(String),
    Failed,
    Timeout,
}

fn settings() -> ScriptSettings {
    ScriptSettings {
        function_name: "test-fn".into(),
        function_version: "7".into(),
        invoked_function_arn: "arn:aws:lambda:us-east-1:000000000000:function:test-fn:7".into(),
        memory_limit_in_mb: "64".into(),
        deadline_ms: DEADLINE_MS,
        environment: Default::default(),
    }
}

fn record(key: &str, old: Option<&str>, new: Option<&str>) -> EventRecord {
    EventRecord {
        key: key.into(),
        old_value: old.map(str::to_owned),
        new_value: new.map(str::to_owned),
        op: if new.is_some() { Op::Replace } else { Op::Remove },
    }
}

/// The events every handler runs on.
fn events() -> Vec<(&'static str, SyncEvent)> {
    let seed = seed_event();
    let mut empty = seed.clone();
    empty.dataset_records.clear();
    let mut unicode = seed.clone();
    unicode.dataset_records = vec![
        record("ключ", Some("значение"), Some("новое значение")),
        record("emoji😀", None, Some("🎉 party ﬁ ß")),
        record("日本語", Some("古い"), Some("新しい")),
        record("city", None, Some("İstanbul straße")),
        record("email", Some("old@example.com"), Some("  Ada@Example.COM ")),
        record("tmp:scratch", None, Some(" keep out ")),
        record("link", None, Some("https://example.com/a/b?id=7&x=1")),
        record("json", None, Some("{\"a\":[1,2]}")),
        record("gone", Some("bye"), None),
    ];
    let mut many = seed.clone();
    many.dataset_records = (0..200)
        .map(|i| {
            let key = format!("key-{i:03}");
            match i % 4 {
                0 => record(&key, Some(&format!("old {i}")), Some(&format!("value {i}"))),
                1 => record(&key, None, Some(&format!("{{\"n\":{i}}}"))),
                2 => record(&key, Some(&format!("same {i}")), Some(&format!("same {i}"))),
                _ => record(&key, Some(&format!("old {i}")), None),
            }
        })
        .collect();
    let mut bad = seed.clone();
    bad.dataset_records = vec![
        record("email", None, Some("not an address")),
        record("banned", None, Some("x")),
        record("json", None, Some("{\"a\":")),
        record("level", Some("1"), Some("3")),
    ];
    vec![("seed", seed), ("empty", empty), ("unicode", unicode), ("200-records", many), ("bad-input", bad)]
}

/// The handler's result as the engine reads it: the fields of an event, `op` defaulting to
/// `replace`, null or absent values as none.
fn event_from_lambda(result: &Value) -> Result<SyncEvent, String> {
    let obj = result.as_object().ok_or("not an object")?;
    let text = |name: &str| obj.get(name).and_then(Value::as_str).map(str::to_owned).ok_or_else(|| name.to_owned());
    let version = obj.get("version").and_then(Value::as_f64).ok_or("version")?;
    if version.fract() != 0.0 || !(0.0..=f64::from(u32::MAX)).contains(&version) {
        return Err("version".into());
    }
    let records = obj.get("datasetRecords").and_then(Value::as_object).ok_or("datasetRecords")?;
    let mut out = Vec::new();
    for (key, r) in records {
        let r = r.as_object().ok_or("record")?;
        let value = |name: &str| match r.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("{key}.{name}")),
        };
        let op = match value("op")?.as_deref() {
            None | Some("replace") => Op::Replace,
            Some("remove") => Op::Remove,
            Some(_) => return Err(format!("{key}.op")),
        };
        out.push(EventRecord { key: key.clone(), old_value: value("oldValue")?, new_value: value("newValue")?, op });
    }
    Ok(SyncEvent {
        version: version as u32,
        event_type: text("eventType")?,
        region: text("region")?,
        identity_pool_id: text("identityPoolId")?,
        identity_id: text("identityId")?,
        dataset_name: text("datasetName")?,
        dataset_records: out,
    })
}

fn validated(input: &SyncEvent, response: SyncEvent) -> Outcome {
    match merge::merge(&stored_from_event(input), input, &response) {
        Ok(writes) => {
            Outcome::Ok { response: normalise(&response.to_json()), writes: normalise(&format!("{writes:?}")) }
        }
        Err(_) => Outcome::Failed,
    }
}

/// Node.js's run of one case: its outcome and log.
fn node(script: &Path, event_file: &Path, input: &SyncEvent) -> (Outcome, String) {
    let harness = workspace_root().join("tests/js-compat/lambda.cjs");
    let out = Command::new("node")
        .arg(&harness)
        .arg(script)
        .arg(event_file)
        .arg(DEADLINE_MS.to_string())
        .output()
        .expect("node (Node.js 20) runs the Lambda-style harness");
    let line: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("harness output on {}: {e}\n{}", script.display(), String::from_utf8_lossy(&out.stderr))
    });
    let logs: Vec<String> =
        line["logs"].as_array().unwrap().iter().map(|l| l.as_str().unwrap().to_owned() + "\n").collect();
    let outcome = match line["outcome"].as_str().unwrap() {
        "ok" => match event_from_lambda(&line["result"]) {
            Ok(response) => validated(input, response),
            Err(_) => Outcome::Failed,
        },
        "rejected" => Outcome::Rejected(normalise(line["message"].as_str().unwrap())),
        "timeout" => Outcome::Timeout,
        _ => Outcome::Failed,
    };
    (outcome, normalise(&logs.concat()))
}

/// Ours: the script prepared as at deploy (or the deploy's error), run on the event.
fn ours(rt: &Runtime, trigger: &Result<synctrig_runtime::Trigger, Error>, input: &SyncEvent) -> (Outcome, String) {
    let Ok(trigger) = trigger else { return (Outcome::Failed, String::new()) };
    let run = run_trigger(rt, trigger, &stored_from_event(input), input);
    let outcome = match run.result {
        Ok(applied) => validated(input, applied.response),
        Err(Error::Rejected { reason }) => Outcome::Rejected(normalise(&reason)),
        Err(Error::Timeout { .. }) => Outcome::Timeout,
        Err(_) => Outcome::Failed,
    };
    (outcome, normalise(own_lines(&run.log)))
}

/// The handler's own log lines: without the report the engine adds when an invocation
/// fails (Lambda writes its own, elsewhere).
fn own_lines(log: &str) -> &str {
    match log.find("thread '<unnamed>' panicked at index.js:") {
        Some(panic) => log[..panic].rfind("[error] ").map_or(&log[..panic], |at| &log[..at]),
        None => log,
    }
}

/// Where two outcomes part, in a line: the kinds, or the text around the first byte
/// that differs.
fn difference(ours: &Outcome, theirs: &Outcome) -> String {
    let text = |o: &Outcome| format!("{o:?}");
    let (a, b) = (text(ours), text(theirs));
    let at = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    let from = a.floor_char_boundary(at.saturating_sub(60));
    let cut = |t: &str| {
        let end = t.floor_char_boundary((at + 100).min(t.len()));
        t[from.min(end)..end].to_owned()
    };
    format!("\n  ours: …{}\n  node: …{}", cut(&a), cut(&b))
}

/// Timestamps and ids differ from run to run: replaced by placeholders.
fn normalise(text: &str) -> String {
    let iso = regex::Regex::new(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z").unwrap();
    let uuid = regex::Regex::new(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}").unwrap();
    let text = iso.replace_all(text, "<date>");
    uuid.replace_all(&text, "<uuid>").into_owned()
}

fn scripts() -> Vec<PathBuf> {
    let root = workspace_root();
    let mut all = Vec::new();
    for dir in ["examples/js", "tests/js-compat/corpus"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "js") {
                all.push(path);
            }
        }
    }
    all.sort();
    all
}

#[test]
fn javascript_triggers_do_what_they_did_on_lambda() {
    let root = workspace_root();
    let documented: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("tests/js-compat/differences.json")).unwrap()).unwrap();
    let documented = documented.as_object().unwrap();
    let dir = root.join("target/js-compat");
    std::fs::create_dir_all(&dir).unwrap();
    let events = events();
    for (name, event) in &events {
        // The engine shows a new record's oldValue as null: the file Node reads says so too.
        let mut json: Value = serde_json::from_str(&event.to_json()).unwrap();
        for r in json["datasetRecords"].as_object_mut().unwrap().values_mut() {
            let mut ordered = serde_json::Map::new();
            ordered.insert("oldValue".into(), r.get("oldValue").cloned().unwrap_or(Value::Null));
            ordered.extend(r.as_object().unwrap().clone());
            *r = Value::Object(ordered);
        }
        std::fs::write(dir.join(format!("{name}.json")), json.to_string()).unwrap();
    }
    let cache = root.join("target").join("test-artifacts");
    let limits = Limits { deadline: Duration::from_millis(DEADLINE_MS), ..Limits::default() };
    let rt = Runtime::new(RuntimeConfig { cache_dir: Some(cache), ..runtime_config(limits) }).unwrap();

    // Node's runs on a thread of their own while ours run here.
    let cases: Vec<(PathBuf, &str)> =
        scripts().into_iter().flat_map(|s| events.iter().map(move |(e, _)| (s.clone(), *e))).collect();
    let node_runs = {
        let (cases, dir) = (cases.clone(), dir.clone());
        let inputs: BTreeMap<&str, SyncEvent> = events.iter().map(|(n, e)| (*n, e.clone())).collect();
        let inputs: BTreeMap<String, SyncEvent> = inputs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        std::thread::spawn(move || {
            cases
                .iter()
                .map(|(script, event)| node(script, &dir.join(format!("{event}.json")), &inputs[*event]))
                .collect::<Vec<_>>()
        })
    };
    let mut our_runs = Vec::new();
    let mut prepared = BTreeMap::new();
    for (script, event) in &cases {
        let trigger = prepared.entry(script.clone()).or_insert_with(|| {
            let source = std::fs::read_to_string(script).unwrap();
            rt.prepare_script(&source, "handler", &settings()).and_then(|p| rt.load(&p.component))
        });
        let input = &events.iter().find(|(n, _)| n == event).unwrap().1;
        our_runs.push(ours(&rt, trigger, input));
    }
    let node_runs = node_runs.join().unwrap();

    let mut report = String::from("| case | result | log |\n|---|---|---|\n");
    let (mut results_agree, mut logs_agree) = (0, 0);
    let mut undocumented = Vec::new();
    let mut stale = Vec::new();
    for (((script, event), (ours, our_log)), (theirs, their_log)) in cases.iter().zip(our_runs).zip(node_runs) {
        let name = script.file_name().unwrap().to_str().unwrap();
        let case = format!("{name}@{event}");
        let known = documented.get(&case).or_else(|| documented.get(name)).and_then(Value::as_str);
        let result_ok = ours == theirs;
        let log_ok = our_log == their_log;
        results_agree += usize::from(result_ok);
        logs_agree += usize::from(log_ok);
        match (result_ok, known) {
            (false, None) => undocumented.push(format!("{case}: {}", difference(&ours, &theirs))),
            (true, Some(_)) if documented.get(&case).is_some() => stale.push(case.clone()),
            _ => {}
        }
        if !result_ok {
            report.push_str(&format!("\n{case}: {}\n\n", difference(&ours, &theirs)));
        }
        let mark = |ok: bool| if ok { "same" } else { "differs" };
        report.push_str(&format!("| {case} | {} | {} |\n", mark(result_ok), mark(log_ok)));
        if !log_ok {
            report.push_str(&format!("\n<details><summary>{case} logs</summary>\n\n```\nours:\n{our_log}\nnode:\n{their_log}\n```\n</details>\n\n"));
        }
    }
    let total = cases.len();
    let summary = format!(
        "results agree: {results_agree}/{total} ({:.1}%); logs agree: {logs_agree}/{total} ({:.1}%)",
        100.0 * results_agree as f64 / total as f64,
        100.0 * logs_agree as f64 / total as f64
    );
    std::fs::write(dir.join("report.md"), format!("{summary}\n\n{report}")).unwrap();
    println!("{summary} (target/js-compat/report.md)");
    assert!(undocumented.is_empty(), "{summary}\nundocumented differences:\n{}", undocumented.join("\n"));
    assert!(stale.is_empty(), "documented differences that now agree (remove them): {stale:?}");
}
