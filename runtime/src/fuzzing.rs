//! Fuzzing harnesses of the runtime: each takes arbitrary bytes, drives one surface that
//! untrusted input reaches, and asserts what must hold for every input — no panic, and the
//! round trips and limits the code promises. `fuzz/` runs them under libFuzzer (`cargo
//! fuzz`, coverage-guided); the unit tests replay the committed corpus (`fuzz/corpus`) and
//! a seeded stream of random inputs on stable, so a crash once found stays a test. The
//! SigV4 and API targets are `synctrig_sigv4::fuzzing` and `synctrig_server::fuzzing`.
//!
//! - [`event_codec`]: the Sync Trigger event's JSON codec;
//! - [`merge`]: patches, the event built from them, a trigger's response, the merge;
//! - [`lift`]: a trigger's output lifted from guest memory the fuzzer writes (by our code
//!   and by wasmtime's, which must agree).

use crate::event::{EventRecord, Op, SyncEvent};
use crate::limits;
use crate::merge::{self, Dataset, EventMeta, Patch};
use arbitrary::{Arbitrary, Unstructured};

pub fn event_codec(data: &[u8]) {
    let Ok(event) = SyncEvent::from_json(data) else {
        let _ = SyncEvent::from_json_input(data);
        return;
    };
    let compact = SyncEvent::from_json(event.to_json().as_bytes()).expect("our compact encoding decodes");
    assert_eq!(compact, event);
    let pretty = SyncEvent::from_json(event.to_json_pretty().as_bytes()).expect("our indented encoding decodes");
    assert_eq!(pretty, event);
    let _ = SyncEvent::from_json_input(data);
}

/// A short string from a small alphabet, so that keys collide and values repeat.
#[derive(Debug)]
struct Small(String);

impl<'a> Arbitrary<'a> for Small {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        const ALPHABET: &[&str] = &["a", "b", "k", "é", "\0", "😀", " ", "."];
        let len = u.int_in_range(0..=4)?;
        let mut s = String::new();
        for _ in 0..len {
            s.push_str(u.choose(ALPHABET)?);
        }
        Ok(Small(s))
    }
}

#[derive(Arbitrary, Debug)]
struct MergeCase {
    stored: Vec<(Small, Small)>,
    patches: Vec<(Small, bool, Option<Small>)>,
    /// What the trigger does to each record of its input: keep, drop, rewrite, remove.
    edits: Vec<(u8, Option<Small>)>,
    added: Vec<(Small, Option<Small>, bool)>,
    /// Which read-only field the trigger changes, if any.
    tamper: u8,
}

/// Merge: an event built from any stored dataset and valid patches holds every stored and
/// patched key; the identity trigger writes exactly the patches; any response either
/// merges into a dataset within the limits or is refused.
pub fn merge(data: &[u8]) {
    let Ok(case) = MergeCase::arbitrary(&mut Unstructured::new(data)) else { return };
    let meta = EventMeta {
        region: "us-east-1".into(),
        identity_pool_id: "us-east-1:00".into(),
        identity_id: "us-east-1:01".into(),
        dataset_name: "d".into(),
    };
    let stored: Dataset = case
        .stored
        .into_iter()
        .filter(|(k, v)| limits::key_problem(&k.0).is_none() && limits::value_problem(&k.0, &v.0).is_none())
        .map(|(k, v)| (k.0, v.0))
        .collect();
    let patches: Vec<Patch> = case
        .patches
        .into_iter()
        .map(|(k, replace, v)| Patch {
            key: k.0,
            op: if replace { Op::Replace } else { Op::Remove },
            value: v.map(|v| v.0),
        })
        .collect();
    if merge::check_patches(&patches).is_err() {
        return;
    }
    let input = merge::build_event(&meta, &stored, &patches);
    let keys: std::collections::BTreeSet<&str> = input.dataset_records.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys.len(), input.dataset_records.len(), "one record per key");
    // Every stored key, and every patched one but a removal of what is not there.
    let removes_nothing = |p: &Patch| (p.op == Op::Remove || p.value.is_none()) && !stored.contains_key(&p.key);
    let shown = patches.iter().filter(|p| !removes_nothing(p)).map(|p| p.key.as_str());
    for key in stored.keys().map(String::as_str).chain(shown) {
        assert!(keys.contains(key), "{key:?} is missing from the event");
    }
    for p in patches.iter().filter(|p| removes_nothing(p)) {
        assert!(!keys.contains(p.key.as_str()), "removing the absent {:?} is not shown", p.key);
    }
    if let (Ok(identity), Ok(direct)) =
        (merge::merge(&stored, &input, &input), merge::apply_patches(&meta, &stored, &patches))
    {
        assert_eq!(identity, direct, "the identity trigger writes exactly the patches");
    }
    let mut response = input.clone();
    let mut edits = case.edits.into_iter();
    response.dataset_records.retain_mut(|r| match edits.next() {
        None | Some((0, _)) => true,
        Some((1, _)) => false,
        Some((2, value)) => {
            r.new_value = value.map(|v| v.0);
            r.op = Op::Replace;
            true
        }
        Some(_) => {
            r.op = Op::Remove;
            true
        }
    });
    for (key, value, replace) in case.added {
        let op = if replace { Op::Replace } else { Op::Remove };
        response.dataset_records.push(EventRecord { key: key.0, old_value: None, new_value: value.map(|v| v.0), op });
    }
    match case.tamper % 8 {
        1 => response.region.push('x'),
        2 => response.identity_id.push('x'),
        3 => response.dataset_name.push('x'),
        4 => response.version += 1,
        _ => {}
    }
    let checked = merge::check_response(&input, &response);
    let tampered = (1..=4).contains(&(case.tamper % 8));
    match merge::merge(&stored, &input, &response) {
        Ok(writes) => {
            assert!(!tampered, "a changed read-only field is refused");
            assert!(checked.is_ok(), "a response that merges passes the checks");
            let (records, bytes) = merge::size_after(&stored, &writes);
            assert!(records <= limits::MAX_RECORDS && bytes <= limits::MAX_DATASET_BYTES);
            let mut written: Vec<&str> = writes.iter().map(|w| w.key.as_str()).collect();
            written.sort_unstable();
            assert!(written.windows(2).all(|w| w[0] != w[1]), "each key written once");
            for w in &writes {
                if let Some(v) = &w.value {
                    assert!(limits::key_problem(&w.key).is_none() && limits::value_problem(&w.key, v).is_none());
                }
            }
        }
        Err(_) => assert!(!tampered || checked.is_err(), "check_response refuses what merge does"),
    }
}

pub fn lift(data: &[u8]) {
    let fixture = &*lift::FIXTURE;
    let event = SyncEvent {
        version: 2,
        event_type: hex::encode(&data[..data.len().min(lift::MEMORY)]),
        region: "r".into(),
        identity_pool_id: "p".into(),
        identity_id: "i".into(),
        dataset_name: "d".into(),
        dataset_records: vec![EventRecord {
            key: "k".into(),
            old_value: None,
            new_value: Some("v".into()),
            op: Op::Replace,
        }],
    };
    let invocation = fixture.runtime.invoke(&fixture.trigger, &event);
    // Whatever the guest returns is the trigger's doing, never a fault of the host's.
    if let Err(crate::Error::Internal(e)) = &invocation.result {
        panic!("the host failed lifting a trigger's output: {e}");
    }
    // Our own lift of the records says exactly what wasmtime's generic one says.
    let generic = crate::sandbox::with_wasmtime_abi(false, true, || fixture.runtime.invoke(&fixture.trigger, &event));
    assert_eq!(invocation.result, generic.result, "our lift and wasmtime's agree");
    if let Ok(response) = &invocation.result {
        let limits = &fixture.runtime.config().limits;
        let strings: usize = [
            &response.event_type,
            &response.region,
            &response.identity_pool_id,
            &response.identity_id,
            &response.dataset_name,
        ]
        .iter()
        .map(|s| s.len())
        .sum::<usize>()
            + response
                .dataset_records
                .iter()
                .map(|r| {
                    r.key.len()
                        + r.old_value.as_ref().map_or(0, String::len)
                        + r.new_value.as_ref().map_or(0, String::len)
                })
                .sum::<usize>();
        assert!(strings <= limits.max_output_bytes, "the output cap holds");
        assert!(response.dataset_records.len() <= limits.max_output_records, "the record cap holds");
    }
}

mod lift {
    use std::sync::LazyLock;

    /// Bytes of guest memory the fuzzer writes (the first page).
    pub const MEMORY: usize = 65536;

    pub struct Fixture {
        pub runtime: crate::Runtime,
        pub trigger: crate::Trigger,
    }

    pub static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
        let runtime = crate::Runtime::new(crate::RuntimeConfig {
            compiler: crate::sandbox::Compiler::InProcess,
            pool_instances: 2,
            ..Default::default()
        })
        .expect("runtime");
        let wasm = wat::parse_str(GUEST).expect("the guest assembles");
        let trigger = runtime.load(&wasm).expect("the guest loads");
        Fixture { runtime, trigger }
    });

    /// The guest: `handle` hex-decodes `eventType` into memory at 0 and returns the
    /// pointer its first word names (kept in the first page and aligned, so the lift, not
    /// the bounds check, is what runs).
    const GUEST: &str = r#"
(component
  (core module $m
    (memory (export "memory") 2)
    (global $heap (mut i32) (i32.const 65536))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $p i32)
      (local.set $p (i32.and (i32.add (global.get $heap) (i32.sub (local.get 2) (i32.const 1)))
                             (i32.sub (i32.const 0) (local.get 2))))
      (global.set $heap (i32.add (local.get $p) (local.get 3)))
      (block $fits
        (br_if $fits (i32.le_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536))))
        (br_if $fits (i32.ne (memory.grow (i32.add (i32.shr_u (i32.sub (global.get $heap)
          (i32.mul (memory.size) (i32.const 65536))) (i32.const 16)) (i32.const 1))) (i32.const -1)))
        unreachable)
      (local.get $p))
    (func $nibble (param $c i32) (result i32)
      (if (result i32) (i32.le_u (local.get $c) (i32.const 57))
        (then (i32.sub (local.get $c) (i32.const 48)))
        (else (i32.sub (local.get $c) (i32.const 87)))))
    (func (export "handle")
      (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)
      (local $i i32) (local $n i32)
      (local.set $n (i32.shr_u (local.get 2) (i32.const 1)))
      (if (i32.gt_u (local.get $n) (i32.const 65536)) (then (local.set $n (i32.const 65536))))
      (block $done
        (loop $next
          (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
          (i32.store8 (local.get $i)
            (i32.or
              (i32.shl (call $nibble (i32.load8_u (i32.add (local.get 1) (i32.shl (local.get $i) (i32.const 1)))))
                       (i32.const 4))
              (call $nibble (i32.load8_u (i32.add (local.get 1)
                (i32.add (i32.shl (local.get $i) (i32.const 1)) (i32.const 1)))))))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $next)))
      (i32.and (i32.load (i32.const 0)) (i32.const 0xfffc))))
  (core instance $i (instantiate $m))
  (type $op-def (enum "replace" "remove"))
  (export $op "op" (type $op-def))
  (type $record-def (record (field "key" string) (field "old-value" (option string))
                            (field "new-value" (option string)) (field "op" $op)))
  (export $record "dataset-record" (type $record-def))
  (type $event-def (record (field "version" u32) (field "event-type" string) (field "region" string)
                           (field "identity-pool-id" string) (field "identity-id" string)
                           (field "dataset-name" string) (field "records" (list $record))))
  (export $event "sync-event" (type $event-def))
  (type $error-def (variant (case "reject" string)))
  (export $error "trigger-error" (type $error-def))
  (func (export "handle") (param "event" $event) (result (result $event (error $error)))
    (canon lift (core func $i "handle") (memory (core memory $i "memory")) (realloc (core func $i "realloc")))))
"#;
}

/// Replays a target's committed corpus, then `random` seeded random inputs of up to `max`
/// bytes (`SYNCTRIG_FUZZ_RANDOM` and `SYNCTRIG_FUZZ_SEED` override the count and the seed):
/// the stable-toolchain run of a target (the unit tests, and `tests/fuzz.sh` without
/// nightly). Answers how many corpus files it replayed; a missing or empty corpus is a
/// failure, not a pass (the inputs that once crashed live there).
pub fn replay(target: &str, run: fn(&[u8]), random: usize, max: usize) -> usize {
    let random = std::env::var("SYNCTRIG_FUZZ_RANDOM").ok().and_then(|s| s.parse().ok()).unwrap_or(random);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(target);
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("the corpus {} cannot be read: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    assert!(!entries.is_empty(), "the corpus {} is empty", dir.display());
    for path in &entries {
        run(&std::fs::read(path).expect("a corpus file reads"));
    }
    let seed: u64 = std::env::var("SYNCTRIG_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed);
    let mut state = seed;
    for _ in 0..random {
        let mut next = || {
            // SplitMix64: a fixed, fast stream of bytes.
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        let len = (next() as usize) % max;
        let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        run(&bytes);
    }
    entries.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_codec_corpus_and_random_inputs_hold() {
        assert!(replay("event_codec", event_codec, 2000, 512) > 0);
    }

    #[test]
    fn the_merge_corpus_and_random_inputs_hold() {
        assert!(replay("merge", merge, 3000, 512) > 0);
    }

    #[test]
    fn the_lift_corpus_and_random_inputs_hold() {
        assert!(replay("lift", lift, 200, 2048) > 0);
    }

    #[test]
    fn the_lift_guest_answers_with_what_its_memory_holds() {
        // The return area at 8: `err` (1), case `reject` (0) at 12, its string at 16 (a
        // pointer to 24 and a length of 2), and the string's bytes at 24.
        let mut memory = vec![0u8; 32];
        memory[0..4].copy_from_slice(&8u32.to_le_bytes());
        memory[8] = 1;
        memory[16..20].copy_from_slice(&24u32.to_le_bytes());
        memory[20..24].copy_from_slice(&2u32.to_le_bytes());
        memory[24..26].copy_from_slice(b"hi");
        let fixture = &*lift::FIXTURE;
        let mut event = SyncEvent::from_json(
            br#"{"version":2,"eventType":"","region":"r","identityPoolId":"p",
            "identityId":"i","datasetName":"d","datasetRecords":{}}"#,
        )
        .unwrap();
        event.event_type = hex::encode(&memory);
        let out = fixture.runtime.invoke(&fixture.trigger, &event);
        assert_eq!(out.result, Err(crate::Error::Rejected { reason: "hi".into() }));
        // The committed seed of a whole event (one record, k = v) lifts as written.
        let seed = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/corpus/lift/ok-one-record")).unwrap();
        event.event_type = hex::encode(&seed);
        let response = fixture.runtime.invoke(&fixture.trigger, &event).result.unwrap();
        assert_eq!((response.event_type.as_str(), response.dataset_name.as_str()), ("SyncTrigger", "d"));
        assert_eq!(
            response.dataset_records,
            [EventRecord { key: "k".into(), old_value: None, new_value: Some("v".into()), op: Op::Replace }]
        );
    }
}
