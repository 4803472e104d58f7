#![no_main]
//! `cargo fuzz run lift`: see `synctrig_runtime::fuzzing::lift`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| synctrig_runtime::fuzzing::lift(data));
