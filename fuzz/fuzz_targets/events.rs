//! `cargo +nightly fuzz run events`: `featureplane_core::fuzz::events` under libFuzzer.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| featureplane_core::fuzz::events(data));
