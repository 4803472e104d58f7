//! Helpers for the integration tests: where the guest components are, and the events
//! they run on.

use std::path::PathBuf;

include!(concat!(env!("OUT_DIR"), "/guests.rs"));

/// The path of a built guest component (`sample_trigger`, `infinite_loop`, …).
pub fn guest(name: &str) -> PathBuf {
    let (_, path) = GUESTS.iter().find(|(n, _)| *n == name).unwrap_or_else(|| {
        panic!("no guest component named {name}; known: {:?}", GUESTS.iter().map(|g| g.0).collect::<Vec<_>>())
    });
    PathBuf::from(path)
}

/// The seed's example event, verbatim.
pub const SEED_EVENT: &str = include_str!("../../examples/seed-event.json");

/// The workspace's root directory.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

use synctrig_runtime::sandbox::Compiler;
use synctrig_runtime::{Limits, Runtime, RuntimeConfig, SyncEvent};

/// The configuration the binary uses (components compiled by the `synctrig-wasm compile`
/// worker), with `limits` and a small pool, as tests need many runtimes at once.
pub fn runtime_config(limits: Limits) -> RuntimeConfig {
    RuntimeConfig { limits, pool_instances: 8, compiler: Compiler::Worker(synctrig_bin()), ..RuntimeConfig::default() }
}

/// A runtime of [`runtime_config`].
pub fn runtime(limits: Limits) -> Runtime {
    Runtime::new(runtime_config(limits)).expect("runtime")
}

/// The seed's event, decoded.
pub fn seed_event() -> SyncEvent {
    SyncEvent::from_json_input(SEED_EVENT.as_bytes()).expect("seed event")
}

/// The `synctrig-wasm` binary that `cargo test` built beside the test executables
/// (cargo builds a package's binaries when it has integration tests, as runtime does).
pub fn synctrig_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(|deps| deps.parent()).expect("target dir");
    let bin = dir.join("synctrig-wasm");
    assert!(bin.exists(), "{} is missing; run the tests with `cargo test --workspace`", bin.display());
    bin
}

/// Components built to crash, stall or bloat whoever parses and compiles them: the
/// hostile-loading catalogue of `tests/tests/loading.rs` and the e2e tests.
pub mod hostile {
    use synctrig_runtime::limits::component::{MAX_CONTROL_DEPTH, MAX_FUNCTIONS};

    fn leb(out: &mut Vec<u8>, mut n: usize) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                return out.push(byte);
            }
            out.push(byte | 0x80);
        }
    }

    /// A component whose only section is one type, nested `depth` component types deep
    /// (about 3 bytes a level: written as bytes, since a text parser would recurse too).
    pub fn nested_types(depth: usize) -> Vec<u8> {
        let mut body = vec![0x01];
        for _ in 0..depth {
            body.extend([0x41, 0x01, 0x01]);
        }
        body.extend([0x41, 0x00]);
        let mut bytes = b"\0asm\x0d\x00\x01\x00\x07".to_vec();
        leb(&mut bytes, body.len());
        bytes.extend(body);
        bytes
    }

    /// Each of `levels` nested components instantiates the one inside it `fanout` times:
    /// `fanout^levels` instances once flattened, in a few hundred bytes.
    pub fn nested_instantiation(levels: usize, fanout: usize) -> Vec<u8> {
        let mut wat = "(component (core module $m) (core instance (instantiate $m)))".to_owned();
        for _ in 0..levels {
            let uses: String = (0..fanout).map(|_| "(instance (instantiate $inner))").collect();
            wat = format!("(component {} {uses})", wat.replacen("(component", "(component $inner", 1));
        }
        wat::parse_str(&wat).expect("valid WAT")
    }

    /// One function more than the limit.
    pub fn too_many_functions() -> Vec<u8> {
        let funcs = "(func)".repeat(MAX_FUNCTIONS + 1);
        wat::parse_str(format!("(component (core module {funcs}))")).expect("valid WAT")
    }

    /// Blocks nested one deeper than the limit (flat syntax: the text parser stays flat).
    pub fn deeply_nested_blocks() -> Vec<u8> {
        let depth = MAX_CONTROL_DEPTH + 1;
        let body = format!("{}{}", "block ".repeat(depth), "end ".repeat(depth));
        wat::parse_str(format!("(component (core module (func {body})))")).expect("valid WAT")
    }

    /// A module with three tables (the pooling allocator holds one per module).
    pub fn three_tables() -> Vec<u8> {
        wat::parse_str("(component (core module (table 1 funcref) (table 1 funcref) (table 1 funcref)))")
            .expect("valid WAT")
    }

    /// Thirty functions of 1,000 locals, all live around a loop with 2,000 joins: every join
    /// needs a value per local. About 1 MB, inside every structural limit; each function
    /// takes about a second of register allocation in a release build (eight took 9 s) and
    /// a few hundred MB, freed before the next, so the compile passes its CPU limit by far in
    /// any build profile, well inside its memory limit. (One function of 2,000 locals and
    /// 4,000 joins, the bomb before, took about the limit's 10 s in a release build.)
    pub fn register_allocator_bomb() -> Vec<u8> {
        let (locals, functions) = (1_000u64, 30);
        let joins: String = (0..2_000u64)
            .map(|j| format!("(block (br_if 0 (i32.const {})) (local.set {} (i64.const 1)))", j % 2, 1 + j % locals))
            .collect();
        let uses: String =
            (1..=locals).map(|i| format!("(local.set {i} (i64.add (local.get {i}) (i64.const 1)))")).collect();
        let function = format!(
            "(func (param i32) (local {}) (loop {joins} {uses} (br_if 0 (local.get 0))))",
            "i64 ".repeat(locals as usize)
        );
        let wat = format!("(component (core module {}))", function.repeat(functions));
        wat::parse_str(&wat).expect("valid WAT")
    }

    /// The catalogue: (name, bytes, what the refusal names).
    pub fn catalogue() -> Vec<(&'static str, Vec<u8>, &'static str)> {
        vec![
            ("nested_types", nested_types(1_500), "component types nest more than"),
            ("nested_types_overflow", nested_types(3_000_000), "overflowed the compile worker's stack"),
            ("nested_instantiation", nested_instantiation(6, 8), "once nested"),
            ("too_many_functions", too_many_functions(), "functions (the limit)"),
            ("deeply_nested_blocks", deeply_nested_blocks(), "blocks nest more than"),
            ("three_tables", three_tables(), "3 tables, over the limit of 1 per module"),
            ("register_allocator_bomb", register_allocator_bomb(), "limit of 10 s of CPU time"),
        ]
    }
}

/// The benches' event of `n` records: half changed by the user, the rest untouched,
/// SampleKey1 and SampleKey2 among them so the sample trigger has work to do.
pub fn bench_event(n: usize) -> SyncEvent {
    use synctrig_runtime::event::{EventRecord, Op};
    let mut records: Vec<EventRecord> = (0..n)
        .map(|i| {
            let key = match i {
                0 => "SampleKey1".to_owned(),
                1 => "SampleKey2".to_owned(),
                _ => format!("key{i:04}"),
            };
            let old = format!("value-{i}-{}", "x".repeat(40));
            let new = if i % 2 == 0 { format!("changed-{i}") } else { old.clone() };
            EventRecord { key, old_value: Some(old), new_value: Some(new), op: Op::Replace }
        })
        .collect();
    records.sort_by(|a, b| a.key.cmp(&b.key));
    SyncEvent {
        version: 2,
        event_type: "SyncTrigger".into(),
        region: "us-east-1".into(),
        identity_pool_id: "us-east-1:00000000-0000-0000-0000-000000000001".into(),
        identity_id: "us-east-1:00000000-0000-0000-0000-000000000002".into(),
        dataset_name: "bench".into(),
        dataset_records: records,
    }
}
