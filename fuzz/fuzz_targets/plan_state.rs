//! `cargo +nightly fuzz run plan_state`: `featureplane_core::fuzz::plan_state` under libFuzzer.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| featureplane_core::fuzz::plan_state(data));
