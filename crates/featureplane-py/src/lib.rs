//! Thin PyO3 bindings: convert, call the core, convert back. No feature logic lives here.

use pyo3::prelude::*;

/// `"release"` or `"debug"`: benchmarks refuse a debug build.
const BUILD_PROFILE: &str = if cfg!(debug_assertions) { "debug" } else { "release" };

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", featureplane_core::VERSION)?;
    m.add("BUILD_PROFILE", BUILD_PROFILE)?;
    Ok(())
}
