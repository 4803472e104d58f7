#![no_main]
//! `cargo fuzz run lift`: see `synctrig_wasm::fuzzing::lift`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| synctrig_wasm::fuzzing::lift(data));
