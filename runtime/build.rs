//! Builds the JavaScript engine component (`js-engine/`, QuickJS through rquickjs) for
//! wasm32-wasip2 from source and embeds it in the binary. QuickJS is C: it is compiled with
//! the system's clang and wasi-libc headers (Debian: `apt-get install clang-19 llvm-19
//! wasi-libc`), never a downloaded SDK.
//!
//! Without that toolchain the binary is built without the engine (deploying JavaScript then
//! says what to install), unless `SYNCTRIG_REQUIRE_JS_ENGINE=1`, which makes it an error:
//! CI sets it.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap().to_owned();
    let engine_dir = root.join("js-engine");
    for watched in ["src", "Cargo.toml", "Cargo.lock", ".cargo"] {
        println!("cargo:rerun-if-changed={}", engine_dir.join(watched).display());
    }
    println!("cargo:rerun-if-changed={}", root.join("wit").display());
    for var in ["SYNCTRIG_REQUIRE_JS_ENGINE", "SYNCTRIG_JS_CC", "SYNCTRIG_JS_AR", "SYNCTRIG_WASI_INCLUDE"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("js_engine.wasm");
    match build_engine(&root, &engine_dir) {
        Ok(wasm) => {
            std::fs::copy(&wasm, &out).expect("copy the engine component");
        }
        Err(why) => {
            if std::env::var("SYNCTRIG_REQUIRE_JS_ENGINE").as_deref() == Ok("1") {
                panic!("\n\nCannot build the JavaScript engine component: {why}\n");
            }
            println!("cargo:warning=building without the JavaScript engine: {why}");
            std::fs::write(&out, b"").expect("write an empty engine");
        }
    }
}

/// The first of `candidates` found on PATH.
fn find_tool(candidates: &[&str]) -> Option<String> {
    candidates
        .iter()
        .find(|c| Command::new(c).arg("--version").output().is_ok_and(|o| o.status.success()))
        .map(|c| (*c).to_owned())
}

fn build_engine(root: &Path, engine_dir: &Path) -> Result<PathBuf, String> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(rustc).args(["--print", "sysroot"]).output().map_err(|e| e.to_string())?;
    let sysroot = String::from_utf8_lossy(&sysroot.stdout).trim().to_owned();
    if !Path::new(&sysroot).join("lib/rustlib/wasm32-wasip2").exists() {
        return Err("the wasm32-wasip2 target is not installed (rustup target add wasm32-wasip2)".into());
    }
    let cc = std::env::var("SYNCTRIG_JS_CC")
        .ok()
        .or_else(|| find_tool(&["clang-19", "clang-20", "clang-18", "clang"]))
        .ok_or("no clang found (apt-get install clang-19)")?;
    let ar = std::env::var("SYNCTRIG_JS_AR")
        .ok()
        .or_else(|| find_tool(&["llvm-ar-19", "llvm-ar-20", "llvm-ar-18", "llvm-ar"]))
        .ok_or("no llvm-ar found (apt-get install llvm-19)")?;
    let include = std::env::var("SYNCTRIG_WASI_INCLUDE").unwrap_or_else(|_| "/usr/include/wasm32-wasi".into());
    if !Path::new(&include).join("stdio.h").exists() {
        return Err(format!("no wasi-libc headers in {include} (apt-get install wasi-libc)"));
    }
    let target_dir = root.join("target").join("js-engine");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    // Run in js-engine/ so its own .cargo/config.toml (the engine's stack size) applies.
    cmd.current_dir(engine_dir)
        .args(["build", "--release", "--locked", "--target", "wasm32-wasip2", "--target-dir"])
        .arg(&target_dir)
        .env("RQUICKJS_SYS_NO_WASI_SDK", "1")
        .env("CC_wasm32_wasip2", &cc)
        .env("AR_wasm32_wasip2", &ar)
        // Without -nostdlibinc clang would fall back to the host's glibc headers. (QuickJS at
        // -O2 instead of the profile's -Os: 10% less fuel, a 34% larger component, slower
        // deploys and cache loads; measured, not worth it.)
        .env("CFLAGS_wasm32_wasip2", format!("-nostdlibinc -isystem {include}"));
    // What the outer build set for the host must not leak into the engine's build.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
        "CARGO_MAKEFLAGS",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_PROFILE_RELEASE_DEBUG",
        "PROFILE",
        "OPT_LEVEL",
        "DEBUG",
        "TARGET",
        "HOST",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err("cargo build of js-engine failed (see above)".into());
    }
    Ok(target_dir.join("wasm32-wasip2/release/synctrig_js_engine.wasm"))
}
