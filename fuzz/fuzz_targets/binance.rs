//! `cargo +nightly fuzz run binance`: `featureplane_core::fuzz::binance` under libFuzzer.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| featureplane_core::fuzz::binance(data));
