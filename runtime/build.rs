//! Embeds the JavaScript engine component: `js-engine/engine.wasm`, built from
//! `js-engine/src` (QuickJS through rquickjs) by `js-engine/build.sh` and committed, as Wasm
//! projects commit their adapter components. So building the runtime needs no C toolchain,
//! no wasi-libc and no wasm32-wasip2 target; CI rebuilds the file and checks that it is the
//! same bytes (`js-engine/build.sh --check`).
//!
//! `SYNCTRIG_JS_ENGINE=<file>` embeds another build instead (e.g. one being worked on).

use std::path::PathBuf;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let committed = manifest_dir.join("../js-engine/engine.wasm");
    println!("cargo:rerun-if-env-changed=SYNCTRIG_JS_ENGINE");
    let engine = std::env::var_os("SYNCTRIG_JS_ENGINE").map(PathBuf::from).unwrap_or(committed);
    println!("cargo:rerun-if-changed={}", engine.display());
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("js_engine.wasm");
    if let Err(e) = std::fs::copy(&engine, &out) {
        panic!(
            "\n\ncannot read the JavaScript engine component {}: {e}\n(js-engine/build.sh builds it)\n",
            engine.display()
        );
    }
}
