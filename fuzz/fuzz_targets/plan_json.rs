//! `cargo +nightly fuzz run plan_json`: `featureplane_core::fuzz::plan_json` under libFuzzer.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| featureplane_core::fuzz::plan_json(data));
