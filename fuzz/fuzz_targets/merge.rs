#![no_main]
//! `cargo fuzz run merge`: see `synctrig_wasm::fuzzing::merge`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| synctrig_wasm::fuzzing::merge(data));
