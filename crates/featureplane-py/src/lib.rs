//! Thin PyO3 bindings: convert, call the core, convert back. No feature logic lives here.
//! Files mirror the core: `engine` (the pyclass), `frames` (columns and values out),
//! `plan` (the generic kernel of a declared feature set), `plan_state` (its saved state),
//! `state` (saved engine state), `ring` (the shared-memory frame ring), `sources::binance`
//! (the recorder-file parser), `synthetic`
//! (the benchmark feed); `errors` maps core errors and panics to Python exceptions.
//! The per-message calls both engines share live in `per_message`, over `frame_object` (the
//! frame made here) and `message_rows` (a message array read in place).

mod engine;
mod errors;
mod frame_object;
mod frames;
mod live_path;
mod message_rows;
mod per_message;
mod plan;
mod plan_state;
mod recycled;
mod ring;
mod sources;
mod state;
mod synthetic;

use featureplane_core::features::schema::{FEATURES, FEATURE_SET_ID};
use featureplane_core::frames::wire::{FRAME_SIZE, HEADER_FIELDS};
use pyo3::prelude::*;

/// `"release"` or `"debug"`: benchmarks refuse a debug build.
const BUILD_PROFILE: &str = if cfg!(debug_assertions) {
    "debug"
} else {
    "release"
};

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", featureplane_core::VERSION)?;
    m.add("BUILD_PROFILE", BUILD_PROFILE)?;
    m.add("FEATURE_SET_ID", FEATURE_SET_ID)?;
    let features: Vec<(&str, &str)> = FEATURES.iter().map(|(n, d)| (*n, d.as_str())).collect();
    m.add("FEATURES", features)?;
    // The FPF1 typed frame `Engine.process_into` writes: its header fields as (name, numpy
    // dtype), then one 8-byte slot per feature.
    m.add("FRAME_RECORD_HEADER", HEADER_FIELDS.to_vec())?;
    m.add("FRAME_RECORD_SIZE", FRAME_SIZE)?;
    m.add_class::<engine::PyEngine>()?;
    // The generic kernel of a declared feature set, and the plan of lob_shared_v1 it is held
    // to the specialised kernel with (tests, benchmarks).
    m.add_class::<plan::PyPlanEngine>()?;
    m.add(
        "LOB_SHARED_V1_PLAN",
        featureplane_core::plan::LOB_SHARED_V1_PLAN,
    )?;
    m.add_class::<sources::binance::PyBinanceChain>()?;
    m.add_class::<synthetic::PySyntheticFeed>()?;
    m.add_class::<ring::PyRingWriter>()?;
    m.add_class::<ring::PyRingReader>()?;
    m.add_function(wrap_pyfunction!(live_path::live_path_ns, m)?)?;
    m.add_function(wrap_pyfunction!(ring::ring_probe, m)?)?;
    m.add_function(wrap_pyfunction!(ring::ring_remove_stale, m)?)?;
    m.add_function(wrap_pyfunction!(ring::ring_bench_write_paced, m)?)?;
    m.add_function(wrap_pyfunction!(ring::ring_bench_clock_ns, m)?)?;
    m.add_function(wrap_pyfunction!(ring::ring_bench_clock_cost, m)?)?;
    m.add_function(wrap_pyfunction!(ring::ring_bench_read_latencies, m)?)?;
    m.add_function(wrap_pyfunction!(ring::ring_bench_write_flood, m)?)?;
    m.add_function(wrap_pyfunction!(ring::ring_bench_read_flood, m)?)?;
    Ok(())
}
