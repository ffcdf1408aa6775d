//! `cargo +nightly fuzz run fpf1`: `featureplane_core::fuzz::fpf1` under libFuzzer.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| featureplane_core::fuzz::fpf1(data));
