//! libFuzzer entry point of [`cascade_fuzz::mapping`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cascade_fuzz::mapping(data));
