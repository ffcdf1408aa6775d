//! featureplane-core: the L2 book and the `lob_shared_v1` feature kernels.
//!
//! Plain Rust with no Python dependency, so `cargo test` and `cargo bench` stay plain and a
//! Rust-only live process can reuse the kernels. The data path reads as the modules do, and as
//! the Python package's do (`featureplane/book/`, `featureplane/features/`, ...):
//! [`sources`] (venue captures) -> [`events`] (64-byte rows) -> [`book`] (the
//! [`book::sequencing`] rules, the L2 book, [`book::lob`] per symbol) -> [`features`] ->
//! [`frames`] (columns, or FPF1 typed frames on the wire: [`frames::wire`]), driven per
//! message by [`engine::Engine`]; [`ring`] carries FPF1 frames to other processes through
//! shared memory. [`state`] is a saved engine state; [`synthetic`] a deterministic feed for
//! tests and benchmarks; [`fuzz`] the entry points the fuzzers drive (docs/reliability.md).
//!
//! # Exactness
//!
//! The Python reference (`python/featureplane`) is the executable spec. Integer features are
//! formed in i128 from the i64 inputs and equal the reference's Python ints. Valid rows keep
//! every integer feature inside i64 (`events::MAX_ABS_UNITS`) except the two cumulative sums,
//! which saturate past i64 in both backends (`features::rolling::cum_add`, flagged
//! `VALUE_SATURATED`). A declared set's integer windows saturate where `n * S2` leaves i128
//! (`features::rolling::squares_saturated`), the same in both backends. f64 features use the
//! reference's operations in its order and come out bit-identical.

pub mod book;
#[cfg(feature = "perf-canary")]
mod canary;
pub mod engine;
pub mod error;
pub mod events;
pub mod features;
pub mod frames;
pub mod fuzz;
pub mod plan;
pub mod ring;
pub mod sources;
pub mod state;
pub mod synthetic;

pub use engine::{Config, Engine, Grid, SymbolValues};
pub use error::{Error, ErrorClass, Result};
pub use events::EventRow;
pub use frames::wire::TypedFrameHeaderV1;
pub use frames::{Frame, FrameColumns, FrameHeader};
pub use state::EngineState;

/// Crate version, reported by the Python extension next to its own.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
