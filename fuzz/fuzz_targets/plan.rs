//! `cargo +nightly fuzz run plan corpus/engine`: `featureplane_core::fuzz::plan` under libFuzzer.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| featureplane_core::fuzz::plan(data));
