//! Helpers for the integration tests: where the guest components are, and the events
//! they run on.

use std::path::PathBuf;

include!(concat!(env!("OUT_DIR"), "/guests.rs"));

/// The path of a built guest component (`sample_trigger`, `infinite_loop`, …).
pub fn guest(name: &str) -> PathBuf {
    let (_, path) = GUESTS
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no guest component named {name}; known: {:?}", GUESTS.iter().map(|g| g.0).collect::<Vec<_>>()));
    PathBuf::from(path)
}

/// The seed's example event, verbatim.
pub const SEED_EVENT: &str = include_str!("../../examples/seed-event.json");

/// The workspace's root directory.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}
