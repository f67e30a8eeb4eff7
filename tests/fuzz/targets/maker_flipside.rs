//! libFuzzer entry point of [`cascade_fuzz::maker_flipside`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cascade_fuzz::maker_flipside(data));
