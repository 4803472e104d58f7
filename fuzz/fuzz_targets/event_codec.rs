#![no_main]
//! `cargo fuzz run event_codec`: see `synctrig_wasm::fuzzing::event_codec`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| synctrig_wasm::fuzzing::event_codec(data));
