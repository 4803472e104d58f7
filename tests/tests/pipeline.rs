//! Real components through the library: the seed's example, every merge rule end to
//! end, and the example triggers.

use synctrig_runtime::event::{EventRecord, Op};
use synctrig_runtime::merge::{EventMeta, Patch, Write, build_event};
use synctrig_runtime::pipeline::{run_trigger, stored_from_event};
use synctrig_runtime::{Error, Limits, SyncEvent};
use synctrig_tests::{guest, runtime, seed_event};

fn run(name: &str, input: &SyncEvent) -> Result<(SyncEvent, Vec<Write>), Error> {
    let rt = runtime(Limits::default());
    let trigger = rt.load_file(&guest(name)).unwrap();
    let outcome = run_trigger(&rt, &trigger, &stored_from_event(input), input);
    outcome.result.map(|a| (a.response, a.writes))
}

fn write(key: &str, value: Option<&str>) -> Write {
    Write { key: key.into(), value: value.map(Into::into) }
}

#[test]
fn seed_event_through_sample_trigger_gives_the_seed_result() {
    let input = seed_event();
    let (out, writes) = run("sample_trigger", &input).unwrap();
    let r1 = out.record("SampleKey1").unwrap();
    assert_eq!((r1.new_value.as_deref(), r1.op), (Some("ModifyValue1"), Op::Replace));
    assert_eq!(out.record("SampleKey2").unwrap().op, Op::Remove);
    let r3 = out.record("SampleKey3").unwrap();
    assert_eq!((r3.new_value.as_deref(), r3.op, r3.old_value.as_deref()), (Some("ModifyValue3"), Op::Replace, None));
    assert_eq!(
        (&out.version, &out.event_type, &out.region, &out.identity_pool_id, &out.identity_id, &out.dataset_name),
        (
            &input.version,
            &input.event_type,
            &input.region,
            &input.identity_pool_id,
            &input.identity_id,
            &input.dataset_name
        )
    );
    assert_eq!(
        writes,
        vec![
            write("SampleKey1", Some("ModifyValue1")),
            write("SampleKey2", None),
            write("SampleKey3", Some("ModifyValue3"))
        ]
    );
}

#[test]
fn tampering_with_a_read_only_field_fails_the_update() {
    let err = run("tamper_identity", &seed_event()).unwrap_err();
    assert!(matches!(&err, Error::InvalidOutput(m) if m.contains("identityId")), "{err:?}");
    assert_eq!(err.api_name(), "InvalidLambdaFunctionOutputException");
    let err = run("tamper_version", &seed_event()).unwrap_err();
    assert!(matches!(&err, Error::InvalidOutput(m) if m.contains("version")), "{err:?}");
}

#[test]
fn null_value_means_remove() {
    let (_, writes) = run("null_value", &seed_event()).unwrap();
    assert_eq!(writes, vec![write("SampleKey1", None), write("SampleKey2", None)]);
}

#[test]
fn omitted_records_are_left_out_of_the_update() {
    let (out, writes) = run("omit_all", &seed_event()).unwrap();
    assert!(out.dataset_records.is_empty());
    assert_eq!(writes, vec![], "the user's patches to omitted records are dropped");
}

#[test]
fn added_records_are_written() {
    let (_, writes) = run("add_records", &seed_event()).unwrap();
    assert_eq!(
        writes,
        vec![
            write("SampleKey1", Some("newValue1")),
            write("SampleKey2", Some("newValue2")),
            write("added1", Some("one")),
            write("added2", Some("two"))
        ]
    );
}

#[test]
fn an_unknown_op_is_invalid_output() {
    let err = run("invalid_op", &seed_event()).unwrap_err();
    assert!(matches!(&err, Error::InvalidOutput(m) if m.contains("discriminant")), "{err:?}");
    assert_eq!(err.api_name(), "InvalidLambdaFunctionOutputException");
}

#[test]
fn a_duplicate_key_is_invalid_output() {
    let err = run("duplicate_key", &seed_event()).unwrap_err();
    assert!(matches!(&err, Error::InvalidOutput(m) if m.contains("twice")), "{err:?}");
}

#[test]
fn reject_with_reason_reaches_the_caller() {
    let err = run("reject", &seed_event()).unwrap_err();
    assert_eq!(err, Error::Rejected { reason: "level may not go down".into() });
    assert_eq!(err.api_name(), "InvalidParameterException");
}

#[test]
fn identity_trigger_writes_exactly_the_patches() {
    let meta = EventMeta {
        region: "us-east-1".into(),
        identity_pool_id: "us-east-1:00000000-0000-0000-0000-000000000001".into(),
        identity_id: "us-east-1:00000000-0000-0000-0000-000000000002".into(),
        dataset_name: "game".into(),
    };
    let stored = [("a", "1"), ("b", "2")].into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
    let patches = vec![
        Patch { key: "a".into(), op: Op::Replace, value: Some("10".into()) },
        Patch { key: "b".into(), op: Op::Remove, value: None },
        Patch { key: "c".into(), op: Op::Replace, value: Some("3".into()) },
    ];
    let input = build_event(&meta, &stored, &patches);
    let rt = runtime(Limits::default());
    let trigger = rt.load_file(&guest("identity")).unwrap();
    let applied = run_trigger(&rt, &trigger, &stored, &input).result.unwrap();
    assert_eq!(applied.writes, vec![write("a", Some("10")), write("b", None), write("c", Some("3"))]);
}

/// The records go in and come back by the runtime's own canonical-ABI code: through a
/// trigger that returns its event, every shape of record (absent and empty values, a
/// removal, multi-byte text, none at all, many, random ones) arrives as it left, with our
/// code or wasmtime's generic code each way (our lowering read back by wasmtime's lifting
/// and the other way round, so that a mistake made in both directions cannot cancel out).
#[test]
fn records_cross_into_a_trigger_and_back_unchanged() {
    let rt = runtime(Limits::default());
    let trigger = rt.load_file(&guest("identity")).unwrap();
    let record = |key: String, old: Option<&str>, new: Option<&str>, op| EventRecord {
        key,
        old_value: old.map(str::to_owned),
        new_value: new.map(str::to_owned),
        op,
    };
    let mut shapes = vec![
        record("a".into(), None, Some("new"), Op::Replace),
        record("b".into(), Some("old"), None, Op::Remove),
        record("c".into(), Some(""), Some(""), Op::Replace),
        record("d".into(), None, None, Op::Replace),
        record("é😀\u{0}".into(), Some("ünïcödé"), Some(&"v".repeat(5000)), Op::Remove),
    ];
    shapes.extend((0..1500).map(|i| record(format!("k{i:05}"), Some("o"), Some(&format!("{i}")), Op::Replace)));
    // Random records: each field present or not, of random lengths and text.
    let mut state = 0x5eed_u64;
    let mut next = move |n: u64| {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 33) % n
    };
    let text = |next: &mut dyn FnMut(u64) -> u64| -> String {
        (0..next(12)).map(|_| ["a", "é", "😀", "\0", "z"][next(5) as usize]).collect()
    };
    let random: Vec<EventRecord> = (0..300)
        .map(|i| {
            let key = format!("{i:03}{}", text(&mut next));
            let old = (next(3) > 0).then(|| text(&mut next));
            let new = (next(3) > 0).then(|| text(&mut next));
            let op = if next(2) == 0 { Op::Replace } else { Op::Remove };
            record(key, old.as_deref(), new.as_deref(), op)
        })
        .collect();
    for records in [vec![], shapes[..5].to_vec(), shapes, random] {
        let event = SyncEvent { dataset_records: records, ..seed_event() };
        for (lower, lift) in [(false, false), (false, true), (true, false), (true, true)] {
            let out = synctrig_runtime::sandbox::with_wasmtime_abi(lower, lift, || rt.invoke(&trigger, &event));
            assert_eq!(out.result.unwrap(), event, "wasmtime's code lowering: {lower}, lifting: {lift}");
        }
    }
}

/// A Rust trigger's allocator (the SDK's: a bump arena, then the system's) under events far
/// larger than its arena: every record comes back as the sample trigger leaves it, whether
/// its strings landed in the arena, in the system allocator or moved between them.
#[test]
fn the_sdks_allocator_holds_events_larger_than_its_arena() {
    let rt = runtime(Limits::default());
    let trigger = rt.load_file(&guest("sample_trigger")).unwrap();
    let record = |i: usize, len: usize| EventRecord {
        key: format!("key{i:05}"),
        old_value: (!i.is_multiple_of(3)).then(|| "o".repeat(len / 2)),
        new_value: (!i.is_multiple_of(5)).then(|| format!("{i}-{}", "v".repeat(len))),
        op: if i.is_multiple_of(7) { Op::Remove } else { Op::Replace },
    };
    for (count, len) in [(10, 10), (300, 40), (1500, 8), (40, 5000), (2, 200_000)] {
        let mut records: Vec<EventRecord> = (0..count).map(|i| record(i, len)).collect();
        records.push(EventRecord {
            key: "SampleKey2".into(),
            old_value: Some("old".into()),
            new_value: Some("new".into()),
            op: Op::Replace,
        });
        let event = SyncEvent { dataset_records: records, ..seed_event() };
        let out = rt.invoke(&trigger, &event).result.unwrap_or_else(|e| panic!("{count} x {len}: {e}"));
        let mut expected = event.dataset_records.clone();
        let sample2 = expected.iter_mut().find(|r| r.key == "SampleKey2").unwrap();
        (sample2.new_value, sample2.op) = (None, Op::Remove);
        expected.push(EventRecord {
            key: "SampleKey3".into(),
            old_value: None,
            new_value: Some("ModifyValue3".into()),
            op: Op::Replace,
        });
        // The SDK hands records back in key order.
        expected.sort_by(|a, b| a.key.cmp(&b.key));
        assert_eq!(out.dataset_records, expected, "{count} records of {len} bytes");
    }
}

#[test]
fn award_on_level_grants_awards() {
    let json = std::fs::read(synctrig_tests::workspace_root().join("examples/award-on-level/event.json")).unwrap();
    let input = SyncEvent::from_json_input(&json).unwrap();
    let (_, writes) = run("award_on_level", &input).unwrap();
    assert_eq!(
        writes,
        vec![
            write("award:level-2", Some("Reached level 2")),
            write("award:level-3", Some("Reached level 3")),
            write("awards", Some("3")),
            write("level", Some("3")),
        ]
    );
}

#[test]
fn validate_input_normalises_and_rejects() {
    let json = std::fs::read(synctrig_tests::workspace_root().join("examples/validate-input/event.json")).unwrap();
    let input = SyncEvent::from_json_input(&json).unwrap();
    let (_, writes) = run("validate_input", &input).unwrap();
    assert_eq!(writes, vec![write("age", Some("36")), write("email", Some("ada@example.com"))]);

    let bad = String::from_utf8(json).unwrap().replace("036", "two hundred");
    let err = run("validate_input", &SyncEvent::from_json_input(bad.as_bytes()).unwrap()).unwrap_err();
    assert!(matches!(&err, Error::Rejected { reason } if reason.contains("age")), "{err:?}");
}

#[test]
fn logs_are_captured_per_invocation() {
    let rt = runtime(Limits::default());
    let trigger = rt.load_file(&guest("sample_trigger")).unwrap();
    let input = seed_event();
    let first = rt.invoke(&trigger, &input);
    let second = rt.invoke(&trigger, &input);
    assert_eq!(first.log, "[info] SyncTrigger for identityId / datasetName: 2 records\n");
    assert_eq!(second.log, first.log, "nothing of one invocation leaks into the next");
    assert!(first.stats.fuel_consumed > 0 && first.stats.peak_memory_bytes > 0);
    assert_eq!(first.stats.log_bytes, first.log.len());
}
