//! libFuzzer entry point of [`cascade_fuzz::aave_subgraph`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cascade_fuzz::aave_subgraph(data));
