#![no_main]
//! `cargo fuzz run sigv4`: see `synctrig_sigv4::fuzzing::sigv4`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| synctrig_sigv4::fuzzing::sigv4(data));
