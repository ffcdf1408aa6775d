//! `cargo +nightly fuzz run state`: `featureplane_core::fuzz::state` under libFuzzer.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| featureplane_core::fuzz::state(data));
