//! featureplane-core: the L2 book and the `lob_shared_v1` feature kernels.
//!
//! Plain Rust with no Python dependency, so `cargo test` and `cargo bench` stay plain and a
//! Rust-only live process can reuse the kernels.

/// Crate version, reported by the Python extension next to its own.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
