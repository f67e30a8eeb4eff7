//! libFuzzer entry point of [`cascade_fuzz::chainlink_rounds`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cascade_fuzz::chainlink_rounds(data));
