//! Readers of recorded venue data, as the core's `sources` lays them out.

pub mod binance;
