//! Thin PyO3 bindings: convert, call the core, convert back. No feature logic lives here.
//! Files mirror the core: `engine` (the pyclass), `frames` (columns and values out),
//! `state` (saved engine state), `sources::binance` (the recorder-file parser), `synthetic`
//! (the benchmark feed); `errors` maps core errors and panics to Python exceptions.

mod engine;
mod errors;
mod frames;
mod sources;
mod state;
mod synthetic;

use featureplane_core::features::schema::{FEATURES, FEATURE_SET_ID};
use featureplane_core::frames::{Frame, FrameHeader};
use pyo3::prelude::*;

/// `"release"` or `"debug"`: benchmarks refuse a debug build.
const BUILD_PROFILE: &str = if cfg!(debug_assertions) {
    "debug"
} else {
    "release"
};

/// Header fields of the packed frame record `process_into` writes, before the feature values.
const FRAME_RECORD_HEADER: [(&str, &str); 7] = [
    ("seq", "<i8"),
    ("source_ts_ns", "<i8"),
    ("local_ts_ns", "<i8"),
    ("changed_mask", "<u8"),
    ("warmup_ready_mask", "<u8"),
    ("quality_flags", "<u4"),
    ("symbol_id", "<u4"),
];

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", featureplane_core::VERSION)?;
    m.add("BUILD_PROFILE", BUILD_PROFILE)?;
    m.add("FEATURE_SET_ID", FEATURE_SET_ID)?;
    let features: Vec<(&str, &str)> = FEATURES.iter().map(|(n, d)| (*n, d.as_str())).collect();
    m.add("FEATURES", features)?;
    m.add("FRAME_RECORD_HEADER", FRAME_RECORD_HEADER.to_vec())?;
    m.add("FRAME_RECORD_SIZE", Frame::RECORD_SIZE)?;
    debug_assert_eq!(FrameHeader::PACKED_SIZE, 48);
    m.add_class::<engine::PyEngine>()?;
    m.add_class::<sources::binance::PyBinanceChain>()?;
    m.add_class::<synthetic::PySyntheticFeed>()?;
    Ok(())
}
