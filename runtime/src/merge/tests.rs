use super::*;
use proptest::prelude::*;

fn meta() -> EventMeta {
    EventMeta {
        region: "us-east-1".into(),
        identity_pool_id: "us-east-1:0000-aaaa".into(),
        identity_id: "us-east-1:1111-bbbb".into(),
        dataset_name: "game".into(),
    }
}

fn stored(pairs: &[(&str, &str)]) -> Dataset {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn replace(key: &str, value: &str) -> Patch {
    Patch { key: key.into(), op: Op::Replace, value: Some(value.into()) }
}

fn remove(key: &str) -> Patch {
    Patch { key: key.into(), op: Op::Remove, value: None }
}

fn write(key: &str, value: Option<&str>) -> Write {
    Write { key: key.into(), value: value.map(Into::into) }
}

#[test]
fn event_shows_every_live_record_with_patches_applied() {
    let s = stored(&[("a", "1"), ("b", "2"), ("c", "3")]);
    let e = build_event(&meta(), &s, &[replace("a", "10"), remove("b"), replace("new", "x"), remove("ghost")]);
    assert_eq!(e.version, 2);
    assert_eq!(e.event_type, "SyncTrigger");
    let rec = |k| e.record(k).cloned().unwrap();
    assert_eq!(
        (rec("a").old_value, rec("a").new_value, rec("a").op),
        (Some("1".into()), Some("10".into()), Op::Replace)
    );
    assert_eq!((rec("b").old_value, rec("b").new_value, rec("b").op), (Some("2".into()), None, Op::Remove));
    assert_eq!(
        (rec("c").old_value, rec("c").new_value, rec("c").op),
        (Some("3".into()), Some("3".into()), Op::Replace)
    );
    assert_eq!((rec("new").old_value, rec("new").new_value), (None, Some("x".into())));
    assert!(e.record("ghost").is_none(), "removing an absent key is not shown");
}

#[test]
fn unchanged_response_writes_exactly_the_patches() {
    let s = stored(&[("a", "1"), ("b", "2"), ("c", "3")]);
    let input = build_event(&meta(), &s, &[replace("a", "10"), remove("b"), replace("c", "3")]);
    let writes = merge(&s, &input, &input).unwrap();
    assert_eq!(writes, vec![write("a", Some("10")), write("b", None)]);
}

#[test]
fn read_only_fields_may_not_change() {
    let s = stored(&[("a", "1")]);
    let input = build_event(&meta(), &s, &[]);
    for field in ["version", "eventType", "region", "identityPoolId", "identityId", "datasetName"] {
        let mut out = input.clone();
        match field {
            "version" => out.version = 3,
            "eventType" => out.event_type = "Other".into(),
            "region" => out.region = "eu-west-1".into(),
            "identityPoolId" => out.identity_pool_id = "us-east-1:ffff".into(),
            "identityId" => out.identity_id = "us-east-1:ffff".into(),
            _ => out.dataset_name = "other".into(),
        }
        let err = merge(&s, &input, &out).unwrap_err();
        assert!(err.0.contains(field), "{field}: {err}");
    }
}

#[test]
fn replace_with_string_is_written_and_null_or_remove_deletes() {
    let s = stored(&[("a", "1"), ("b", "2"), ("c", "3")]);
    let input = build_event(&meta(), &s, &[]);
    let mut out = input.clone();
    out.dataset_records[0].new_value = Some("changed".into()); // a
    out.dataset_records[1].new_value = None; // b: null value means remove
    out.dataset_records[2].op = Op::Remove; // c: remove even though newValue is set
    let writes = merge(&s, &input, &out).unwrap();
    assert_eq!(writes, vec![write("a", Some("changed")), write("b", None), write("c", None)]);
}

#[test]
fn added_records_are_written() {
    let s = stored(&[("a", "1")]);
    let input = build_event(&meta(), &s, &[]);
    let mut out = input.clone();
    out.dataset_records.push(EventRecord {
        key: "z".into(),
        old_value: None,
        new_value: Some("26".into()),
        op: Op::Replace,
    });
    assert_eq!(merge(&s, &input, &out).unwrap(), vec![write("z", Some("26"))]);
}

#[test]
fn omitted_records_are_left_out_and_patches_to_them_dropped() {
    let s = stored(&[("a", "1"), ("b", "2")]);
    let input = build_event(&meta(), &s, &[replace("a", "10"), remove("b")]);
    let mut out = input.clone();
    out.dataset_records.clear();
    assert_eq!(merge(&s, &input, &out).unwrap(), vec![]);
}

#[test]
fn old_value_in_the_response_is_ignored() {
    let s = stored(&[("a", "1")]);
    let input = build_event(&meta(), &s, &[]);
    let mut out = input.clone();
    out.dataset_records[0].old_value = Some("lies".into());
    assert_eq!(merge(&s, &input, &out).unwrap(), vec![]);
}

#[test]
fn duplicate_and_bad_keys_and_values_are_invalid_output() {
    let s = stored(&[("a", "1")]);
    let input = build_event(&meta(), &s, &[]);
    let mut dup = input.clone();
    dup.dataset_records.push(dup.dataset_records[0].clone());
    assert!(merge(&s, &input, &dup).unwrap_err().0.contains("twice"));
    let mut empty = input.clone();
    empty.dataset_records[0].key = String::new();
    assert!(merge(&s, &input, &empty).unwrap_err().0.contains("empty"));
    let mut long_key = input.clone();
    long_key.dataset_records[0].key = "k".repeat(1025);
    assert!(merge(&s, &input, &long_key).unwrap_err().0.contains("1025 characters"));
    let mut long_value = input.clone();
    long_value.dataset_records[0].new_value = Some("v".repeat(limits::MAX_VALUE_CHARS + 1));
    assert!(merge(&s, &input, &long_value).unwrap_err().0.contains("over the limit"));
}

#[test]
fn nul_is_refused_in_keys_and_values_from_clients_and_triggers() {
    let nul_value = [Patch { key: "k".into(), op: Op::Replace, value: Some("a\0b".into()) }];
    assert!(matches!(check_patches(&nul_value), Err(PatchError::InvalidParameter(m)) if m.contains("U+0000")));
    let nul_key = [Patch { key: "k\0".into(), op: Op::Replace, value: Some("v".into()) }];
    assert!(matches!(check_patches(&nul_key), Err(PatchError::InvalidParameter(m)) if m.contains("U+0000")));
    let s: Dataset = [("k".to_owned(), "v".to_owned())].into();
    let input = build_event(&meta(), &s, &[]);
    let mut out = input.clone();
    out.dataset_records[0].new_value = Some("\0".into());
    assert!(merge(&s, &input, &out).unwrap_err().0.contains("U+0000"));
}

#[test]
fn values_are_counted_in_characters_not_bytes() {
    // 1,048,575 two-byte characters: within the character limit.
    let value = "é".repeat(limits::MAX_VALUE_CHARS);
    assert_eq!(limits::value_problem("k", &value), None);
    assert!(limits::value_problem("k", &format!("{value}é")).is_some());
}

#[test]
fn record_limit_is_enforced_on_the_result() {
    let s: Dataset = (0..1024).map(|i| (format!("k{i}"), "v".into())).collect();
    let input = build_event(&meta(), &s, &[]);
    let mut out = input.clone();
    out.dataset_records.push(EventRecord {
        key: "one-more".into(),
        old_value: None,
        new_value: Some("v".into()),
        op: Op::Replace,
    });
    assert!(merge(&s, &input, &out).unwrap_err().0.contains("1025 records"));
    // Removing one makes room for one.
    out.dataset_records[0].op = Op::Remove;
    assert_eq!(merge(&s, &input, &out).unwrap().len(), 2);
}

#[test]
fn byte_limit_is_enforced_on_the_result() {
    let s = stored(&[("a", &"x".repeat(MAX_DATASET_BYTES - 1))]);
    let input = build_event(&meta(), &s, &[]);
    let mut out = input.clone();
    out.dataset_records.push(EventRecord {
        key: "b".into(),
        old_value: None,
        new_value: Some("y".into()),
        op: Op::Replace,
    });
    assert!(merge(&s, &input, &out).unwrap_err().0.contains("over the dataset limit"));
}

#[test]
fn patches_are_checked_and_limits_apply_without_trigger() {
    assert!(
        matches!(check_patches(&[replace("a", "1"), replace("a", "2")]), Err(PatchError::InvalidParameter(m)) if m.contains("more than once"))
    );
    assert!(matches!(check_patches(&[replace("", "1")]), Err(PatchError::InvalidParameter(_))));
    let s: Dataset = (0..1024).map(|i| (format!("k{i}"), "v".into())).collect();
    let err = apply_patches(&meta(), &s, &[replace("extra", "v")]).unwrap_err();
    assert!(
        matches!(err, PatchError::LimitExceeded(m) if m.contains("the dataset after this update has 1025 records"))
    );
    assert_eq!(apply_patches(&meta(), &s, &[remove("k0"), replace("extra", "v")]).unwrap().len(), 2);
}

#[test]
fn dataset_names_and_ids() {
    assert_eq!(limits::dataset_name_problem("game.v1:x-y_z"), None);
    assert!(limits::dataset_name_problem("").is_some());
    assert!(limits::dataset_name_problem("bad/name").is_some());
    assert!(limits::dataset_name_problem(&"a".repeat(129)).is_some());
    assert!(limits::is_valid_cognito_id("us-east-1:6f1c0a2e-1234-abcd-9876-000000000000"));
    assert!(!limits::is_valid_cognito_id("us-east-1"));
    assert!(!limits::is_valid_cognito_id("us-east-1:XYZ"));
}

// ---- properties ----

fn arb_dataset() -> impl Strategy<Value = Dataset> {
    prop::collection::btree_map("[a-e]{1,2}", "[a-z]{0,4}", 0..12)
}

fn arb_patches() -> impl Strategy<Value = Vec<Patch>> {
    prop::collection::btree_map("[a-f]{1,2}", prop::option::of("[a-z]{0,4}"), 0..8).prop_map(|m| {
        m.into_iter()
            .map(|(key, value)| match value {
                Some(v) => Patch { key, op: Op::Replace, value: Some(v) },
                None => Patch { key, op: Op::Remove, value: None },
            })
            .collect()
    })
}

/// A trigger's arbitrary edits: per input record keep / change / remove / null / omit,
/// plus added records.
fn arb_response(input: SyncEvent) -> impl Strategy<Value = SyncEvent> {
    let n = input.dataset_records.len();
    (prop::collection::vec((0..5u8, "[a-z]{0,3}"), n), prop::collection::btree_map("[f-h]{1,2}", "[a-z]{0,3}", 0..4))
        .prop_map(move |(edits, added)| {
            let mut out = input.clone();
            let mut records = Vec::new();
            for (r, (edit, v)) in input.dataset_records.iter().zip(edits) {
                let mut r = r.clone();
                match edit {
                    0 => {}
                    1 => {
                        r.new_value = Some(v);
                        r.op = Op::Replace;
                    }
                    2 => r.op = Op::Remove,
                    3 => r.new_value = None,
                    _ => continue,
                }
                records.push(r);
            }
            for (key, v) in added {
                if !records.iter().any(|r| r.key == key) {
                    records.push(EventRecord { key, old_value: None, new_value: Some(v), op: Op::Replace });
                }
            }
            out.dataset_records = records;
            out
        })
}

fn apply(stored: &Dataset, writes: &[Write]) -> Dataset {
    let mut d = stored.clone();
    for w in writes {
        match &w.value {
            Some(v) => {
                d.insert(w.key.clone(), v.clone());
            }
            None => {
                d.remove(&w.key);
            }
        }
    }
    d
}

proptest! {
    #[test]
    fn identity_trigger_writes_exactly_the_patches(s in arb_dataset(), patches in arb_patches()) {
        let input = build_event(&meta(), &s, &patches);
        let writes = merge(&s, &input, &input).unwrap();
        let mut expected = s.clone();
        for p in &patches {
            match (&p.op, &p.value) {
                (Op::Replace, Some(v)) => { expected.insert(p.key.clone(), v.clone()); }
                _ => { expected.remove(&p.key); }
            }
        }
        prop_assert_eq!(apply(&s, &writes), expected.clone());
        // Only keys whose value changes are written.
        for w in &writes {
            prop_assert_ne!(s.get(&w.key), expected.get(&w.key));
        }
    }

    #[test]
    fn merged_result_matches_the_response_and_keeps_omitted_records(
        (s, patches, out) in (arb_dataset(), arb_patches()).prop_flat_map(|(s, p)| {
            let input = build_event(&meta(), &s, &p);
            (Just(s), Just(p), arb_response(input))
        })
    ) {
        let input = build_event(&meta(), &s, &patches);
        let writes = merge(&s, &input, &out).unwrap();
        let result = apply(&s, &writes);
        for r in &out.dataset_records {
            let expected = if r.op == Op::Remove { None } else { r.new_value.as_ref() };
            prop_assert_eq!(result.get(&r.key), expected);
        }
        for (k, v) in &s {
            if out.record(k).is_none() {
                prop_assert_eq!(result.get(k), Some(v));
            }
        }
    }

    #[test]
    fn output_never_breaks_a_limit(n_stored in 1000..1024usize, extra in 0..60usize, big in 0..3usize) {
        let s: Dataset = (0..n_stored).map(|i| (format!("k{i:04}"), "v".repeat(1000))).collect();
        let input = build_event(&meta(), &s, &[]);
        let mut out = input.clone();
        for i in 0..extra {
            let value = if i < big { "w".repeat(400_000) } else { "w".into() };
            out.dataset_records.push(EventRecord { key: format!("x{i}"), old_value: None, new_value: Some(value), op: Op::Replace });
        }
        if let Ok(writes) = merge(&s, &input, &out) {
            let result = apply(&s, &writes);
            prop_assert!(result.len() <= MAX_RECORDS);
            prop_assert!(result.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>() <= MAX_DATASET_BYTES);
            prop_assert_eq!(size_after(&s, &writes), (result.len(), result.iter().map(|(k, v)| k.len() + v.len()).sum()));
        }
    }

    #[test]
    fn tampering_with_a_read_only_field_is_always_rejected(
        s in arb_dataset(), patches in arb_patches(), field in 0..6usize, junk in "[a-z0-9:-]{1,12}"
    ) {
        let input = build_event(&meta(), &s, &patches);
        let mut out = input.clone();
        match field {
            0 => out.version = input.version.wrapping_add(1 + junk.len() as u32),
            1 => out.event_type.push_str(&junk),
            2 => out.region.push_str(&junk),
            3 => out.identity_pool_id.push_str(&junk),
            4 => out.identity_id.push_str(&junk),
            _ => out.dataset_name.push_str(&junk),
        }
        prop_assert!(merge(&s, &input, &out).is_err());
    }

    #[test]
    fn codec_roundtrips_any_event(s in arb_dataset(), patches in arb_patches()) {
        let e = build_event(&meta(), &s, &patches);
        prop_assert_eq!(SyncEvent::from_json(e.to_json().as_bytes()).unwrap(), e);
    }
}
