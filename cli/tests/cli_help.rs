//! The binary's own surface. (Having an integration test here also makes `cargo test`
//! build the binary that the workspace's `tests` crate runs.)

use std::process::Command;

#[test]
fn top_level_help_lists_the_subcommands() {
    let out = Command::new(env!("CARGO_BIN_EXE_synctrig-wasm")).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("run"), "{help}");
}

#[test]
fn unknown_flags_are_usage_errors() {
    let out = Command::new(env!("CARGO_BIN_EXE_synctrig-wasm")).args(["run", "--bogus"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--bogus"));
}
