//! libFuzzer entry point of [`cascade_fuzz::eth_logs`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cascade_fuzz::eth_logs(data));
