#![no_main]
//! `cargo fuzz run api_request`: see `synctrig_server::fuzzing::api_request`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| synctrig_server::fuzzing::api_request(data));
