//! libFuzzer entry point of [`cascade_fuzz::segment`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cascade_fuzz::segment(data));
