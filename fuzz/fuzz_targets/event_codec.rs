#![no_main]
//! `cargo fuzz run event_codec`: see `synctrig_runtime::fuzzing::event_codec`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| synctrig_runtime::fuzzing::event_codec(data));
