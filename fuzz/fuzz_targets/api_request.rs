#![no_main]
//! `cargo fuzz run api_request`: see `synctrig_wasm::fuzzing::api_request`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| synctrig_wasm::fuzzing::api_request(data));
