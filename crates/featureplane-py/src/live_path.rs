//! `live_path_ns`: the Rust-only per-message figure of `featureplane bench` (one venue message
//! in, its typed frame out), timed message by message inside Rust.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use featureplane_core::sources::binance::live::LivePath;
use featureplane_core::sources::binance::{ChainConfig, Grid};
use featureplane_core::Config;
use numpy::{IntoPyArray, PyArray1};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

use crate::errors::{from_panic, to_py};

type Timed<'py> = (
    Bound<'py, PyArray1<u64>>,
    Bound<'py, PyArray1<u8>>,
    u64,
    Bound<'py, PyBytes>,
);

/// ns per line, what each released, frames written, the last frame.
type Run = (Vec<u64>, Vec<u8>, u64, Vec<u8>);

/// Feed `lines` (recorder lines of one symbol) one at a time through a fresh chain and
/// lob_shared_v1 engine; (ns of each line, what each released, frames written, the last
/// frame's FPF1 bytes).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (lines, *, symbol, usdm, px_grid, qty_grid, tick, lot, schema_hash64))]
pub fn live_path_ns<'py>(
    py: Python<'py>,
    lines: &Bound<'py, PyList>,
    symbol: String,
    usdm: bool,
    px_grid: (u64, u32),
    qty_grid: (u64, u32),
    tick: f64,
    lot: f64,
    schema_hash64: u64,
) -> PyResult<Timed<'py>> {
    let lines: Vec<Vec<u8>> = lines
        .iter()
        .map(|line| line.extract::<Vec<u8>>())
        .collect::<PyResult<_>>()?;
    let chain = ChainConfig {
        symbol,
        symbol_id: 0,
        usdm,
        px: Grid {
            units: px_grid.0,
            exp: px_grid.1,
        },
        qty: Grid {
            units: qty_grid.0,
            exp: qty_grid.1,
        },
        chunk_rows: usize::MAX,
        stop_on_skip: false,
    };
    let config = Config {
        stale_after_ns: None,
        schema_hash64,
    };
    let run = || -> featureplane_core::Result<Run> {
        let mut path = LivePath::new(chain, featureplane_core::Grid { tick, lot }, config)?;
        let mut ns = Vec::with_capacity(lines.len());
        let mut released = Vec::with_capacity(lines.len());
        for line in &lines {
            let t0 = Instant::now();
            let what = path.message(line)?;
            ns.push(t0.elapsed().as_nanos() as u64);
            released.push(what);
        }
        Ok((ns, released, path.frames(), path.last_frame().to_vec()))
    };
    let (ns, released, frames, last) = py
        .detach(|| catch_unwind(AssertUnwindSafe(run)))
        .map_err(from_panic)?
        .map_err(to_py)?;
    Ok((
        ns.into_pyarray(py),
        released.into_pyarray(py),
        frames,
        PyBytes::new(py, &last),
    ))
}
