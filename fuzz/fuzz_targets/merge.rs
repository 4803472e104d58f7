#![no_main]
//! `cargo fuzz run merge`: see `synctrig_runtime::fuzzing::merge`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| synctrig_runtime::fuzzing::merge(data));
