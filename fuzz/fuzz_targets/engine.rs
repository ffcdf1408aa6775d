//! `cargo +nightly fuzz run engine`: `featureplane_core::fuzz::engine` under libFuzzer.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| featureplane_core::fuzz::engine(data));
