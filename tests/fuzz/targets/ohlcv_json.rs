//! libFuzzer entry point of [`cascade_fuzz::ohlcv_json`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cascade_fuzz::ohlcv_json(data));
