//! Builds the example triggers and the test guests to wasm32-wasip2 components, in a
//! target directory of their own (the outer build holds the lock on the main one), and
//! tells the tests where they are.

use std::path::{Path, PathBuf};
use std::process::Command;

const PACKAGES: &[&str] = &["sample-trigger", "award-on-level", "validate-input", "test-guests"];

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap().to_owned();
    for watched in ["wit", "guest-sdk", "examples", "tests/guests", "Cargo.toml", "Cargo.lock", ".cargo"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    check_target();

    let target_dir = root.join("target").join("wasm-guests");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root)
        .args(["build", "--release", "--target", "wasm32-wasip2", "--lib", "--examples", "--target-dir"])
        .arg(&target_dir);
    for p in PACKAGES {
        cmd.args(["-p", p]);
    }
    // What the outer build set for the host must not leak into the guest build.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
        "CARGO_MAKEFLAGS",
        "CARGO_PRIMARY_PACKAGE",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("cannot run cargo to build the guest components");
    assert!(status.success(), "building the guest components for wasm32-wasip2 failed (see above)");

    let release = target_dir.join("wasm32-wasip2").join("release");
    let mut consts = String::new();
    for entry in std::fs::read_dir(release.join("examples")).unwrap().chain(std::fs::read_dir(&release).unwrap()) {
        let path = entry.unwrap().path();
        let Some(stem) = wasm_stem(&path) else { continue };
        consts.push_str(&format!("    ({stem:?}, {:?}),\n", path.display().to_string()));
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("guests.rs");
    std::fs::write(
        out,
        format!("/// Every built guest: (name, path).\npub const GUESTS: &[(&str, &str)] = &[\n{consts}];\n"),
    )
    .unwrap();
}

/// Guest file stems, skipping the `name-hash.wasm` copies cargo keeps beside them.
fn wasm_stem(path: &Path) -> Option<String> {
    if path.extension()? != "wasm" {
        return None;
    }
    let stem = path.file_stem()?.to_str()?.to_owned();
    (!stem.contains('-')).then_some(stem)
}

fn check_target() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(rustc).args(["--print", "sysroot"]).output().expect("cannot run rustc");
    let sysroot = String::from_utf8_lossy(&sysroot.stdout).trim().to_owned();
    if !Path::new(&sysroot).join("lib/rustlib/wasm32-wasip2").exists() {
        panic!(
            "\n\nThe wasm32-wasip2 target is not installed, so the trigger components cannot be built.\n\
             Add it with:\n\n    rustup target add wasm32-wasip2\n\n"
        );
    }
}
