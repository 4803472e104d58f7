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

use synctrig_wasm::sandbox::Compiler;
use synctrig_wasm::{Limits, Runtime, RuntimeConfig, SyncEvent};

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
