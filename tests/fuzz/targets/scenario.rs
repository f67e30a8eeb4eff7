//! libFuzzer entry point of [`cascade_fuzz::scenario`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cascade_fuzz::scenario(data));
