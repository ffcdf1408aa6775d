//! Readers of recorded venue data that run in Rust (the Python package holds the others).

pub mod binance;
