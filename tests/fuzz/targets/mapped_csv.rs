//! libFuzzer entry point of [`cascade_fuzz::mapped_csv`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cascade_fuzz::mapped_csv(data));
