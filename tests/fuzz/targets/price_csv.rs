//! libFuzzer entry point of [`cascade_fuzz::price_csv`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cascade_fuzz::price_csv(data));
