//! `BinanceChain`: the Python face of `featureplane_core::sources::binance::Chain`.
//!
//! The parse runs with the GIL released, inside `catch_unwind`: a panic becomes
//! `PanicException` and poisons the object. Decimal strings the core leaves aside (exponents,
//! whitespace, Unicode digits, ...) go to the reference's grid caches, taking the GIL back for
//! that one call, so their rules are Python's own.

use std::panic::{catch_unwind, AssertUnwindSafe};

use featureplane_core::sources::binance::{
    rows_buffer, Chain, ChainConfig, Fed, Field, Grid, Note, Reason, Resolve,
};
use numpy::{IntoPyArray, PyArray1};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};
use pyo3::{import_exception, PyErr};

use crate::errors::{from_panic, poisoned};
use crate::recycled::Pool;

import_exception!(featureplane.errors, OffGridError);
import_exception!(featureplane.errors, InvalidMessageError);

/// `Grid` of the decimal fields from the Python side's `(units, exp)`.
fn grid((units, exp): (u64, u32)) -> Grid {
    Grid { units, exp }
}

/// Resolves through the reference's `GridCache` objects (`cache[text]` -> steps).
struct PyResolver<'a> {
    px: &'a Py<PyAny>,
    qty: &'a Py<PyAny>,
    error: Option<PyErr>,
}

impl Resolve for PyResolver<'_> {
    fn steps(&mut self, field: Field, text: &str) -> Result<i64, Reason> {
        Python::attach(|py| {
            let cache = match field {
                Field::Price => self.px.bind(py),
                Field::Size => self.qty.bind(py),
            };
            let err = match cache.get_item(text).and_then(|v| v.extract::<i64>()) {
                Ok(steps) => return Ok(steps),
                Err(err) => err,
            };
            if err.is_instance_of::<OffGridError>(py) {
                Err(Reason::OffGrid)
            } else if err.is_instance_of::<InvalidMessageError>(py) {
                Err(Reason::BadValue)
            } else {
                self.error = Some(err); // not a verdict on the value: the read stops
                Err(Reason::Foreign)
            }
        })
    }
}

#[pyclass(name = "BinanceChain", module = "featureplane._core")]
pub struct PyBinanceChain {
    chain: Chain,
    px_cache: Py<PyAny>,
    qty_cache: Py<PyAny>,
    poisoned: bool,
    /// The event buffers of chunks numpy has let go, for the next chunks.
    pool: Pool,
}

impl PyBinanceChain {
    fn guard<T>(&mut self, f: impl FnOnce(&mut Chain) -> T) -> PyResult<T> {
        if self.poisoned {
            return Err(poisoned());
        }
        let chain = &mut self.chain;
        catch_unwind(AssertUnwindSafe(|| f(chain))).map_err(|payload| {
            self.poisoned = true;
            from_panic(payload)
        })
    }
}

#[pymethods]
impl PyBinanceChain {
    /// Parameters
    /// ----------
    /// px_grid, qty_grid : (units, exp) of the tick and lot, step = units / 10**exp
    /// px_cache, qty_cache : the reference's `GridCache` of each, for the rare decimal forms
    #[new]
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (*, symbol, symbol_id, usdm, px_grid, qty_grid, chunk_rows, stop_on_skip,
                        px_cache, qty_cache))]
    fn new(
        symbol: String,
        symbol_id: u32,
        usdm: bool,
        px_grid: (u64, u32),
        qty_grid: (u64, u32),
        chunk_rows: usize,
        stop_on_skip: bool,
        px_cache: Py<PyAny>,
        qty_cache: Py<PyAny>,
    ) -> Self {
        let cfg = ChainConfig {
            symbol,
            symbol_id,
            usdm,
            px: grid(px_grid),
            qty: grid(qty_grid),
            chunk_rows: chunk_rows.max(1),
            stop_on_skip,
        };
        Self {
            chain: Chain::new(cfg),
            px_cache,
            qty_cache,
            poisoned: false,
            pool: Pool::default(),
        }
    }

    /// The next file of the chain starts (position `pos`, 0 the first); its local timestamps
    /// are in units of `local_ts_scale` ns (1000: an older recorder's microseconds).
    #[pyo3(signature = (pos, local_ts_scale = 1))]
    fn start_file(&mut self, pos: u32, local_ts_scale: u32) -> PyResult<()> {
        self.guard(|c| {
            c.start_file(pos);
            c.set_local_ts_scale(local_ts_scale);
        })
    }

    /// Read the lines of `block` from byte `start`; returns `(next start, status)` with
    /// status 0 block done, 1 chunk full, 2 a line skipped in stop-on-skip mode.
    fn feed(
        &mut self,
        py: Python<'_>,
        block: &Bound<'_, PyBytes>,
        start: usize,
    ) -> PyResult<(usize, u8)> {
        if self.poisoned {
            return Err(poisoned());
        }
        let text = block.as_bytes();
        let mut resolver = PyResolver {
            px: &self.px_cache,
            qty: &self.qty_cache,
            error: None,
        };
        let chain = &mut self.chain;
        let outcome =
            py.detach(|| catch_unwind(AssertUnwindSafe(|| chain.feed(text, start, &mut resolver))));
        let (next, fed) = match outcome {
            Ok(done) => done,
            Err(payload) => {
                self.poisoned = true;
                return Err(from_panic(payload));
            }
        };
        let status = match fed {
            Fed::Block => 0,
            Fed::ChunkFull => 1,
            Fed::Skipped => 2,
            Fed::Aborted => {
                return Err(resolver.error.take().unwrap_or_else(|| {
                    crate::errors::FeatureplaneError::new_err("decimal resolver failed")
                }))
            }
        };
        Ok((next, status))
    }

    /// The chunk built so far as (event row words i8, message ends, keys, book-ticker bytes,
    /// book-ticker keys); numpy takes the vectors over without a copy. The event words are
    /// lent (`recycled`): once numpy lets them go, a later chunk is filled in them.
    #[allow(clippy::type_complexity)]
    fn take_chunk<'py>(
        &mut self,
        py: Python<'py>,
    ) -> PyResult<(
        Bound<'py, PyArray1<i64>>,
        Bound<'py, PyArray1<i64>>,
        Bound<'py, PyArray1<i64>>,
        Bound<'py, PyArray1<u8>>,
        Bound<'py, PyArray1<i64>>,
    )> {
        let spare = self.pool.take().and_then(rows_buffer);
        let mut chunk = self.guard(|c| {
            if let Some(rows) = spare {
                c.recycle(rows);
            }
            c.take_chunk()
        })?;
        Ok((
            self.pool.lend(py, chunk.event_words())?,
            chunk.ends.into_pyarray(py),
            chunk.key.into_pyarray(py),
            chunk.bbo.into_pyarray(py),
            chunk.bbo_key.into_pyarray(py),
        ))
    }

    /// Skips and warnings since the last call, in order: `("skip", reason, start, line, end)`
    /// (`start..end`: the line's bytes in the block last fed) or
    /// `("warn", reason, file_pos, line, detail)`.
    fn take_notes<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let notes = self.guard(|c| c.take_notes())?;
        let out = PyList::empty(py);
        for note in notes {
            let item = match note {
                Note::Skip {
                    reason,
                    line,
                    start,
                    end,
                } => ("skip", reason.as_str(), start, line, end).into_pyobject(py)?,
                Note::Warn {
                    reason,
                    file,
                    line,
                    detail,
                } => ("warn", reason.as_str(), file, line, detail).into_pyobject(py)?,
            };
            out.append(item)?;
        }
        Ok(out)
    }

    /// End of the chain: `(diffs, file_pos, line, gap)` of diffs that never met a snapshot
    /// (they are dropped), `gap` the `(file_pos, line)` of the chain gap they wait since, or
    /// None.
    #[allow(clippy::type_complexity)]
    fn finish(&mut self) -> PyResult<Option<(usize, u32, u64, Option<(u32, u64)>)>> {
        self.guard(|c| c.finish().map(|u| (u.diffs, u.file, u.line, u.gap)))
    }

    /// Lines read from the current file.
    #[getter]
    fn lines(&self) -> u64 {
        self.chain.lines()
    }

    /// The counters so far, by the reference's field names.
    fn counters<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let c = self.chain.counters();
        let d = PyDict::new(py);
        d.set_item("diffs_read", c.diffs_read)?;
        d.set_item("snapshots_read", c.snapshots_read)?;
        d.set_item("buffered_diffs", c.buffered_diffs)?;
        d.set_item("stale_dropped", c.stale_dropped)?;
        d.set_item("snapshots", c.snapshots)?;
        d.set_item("last_update_id", c.last_update_id)?;
        d.set_item("first_U", c.first_u_upper)?;
        d.set_item("first_u", c.first_u)?;
        d.set_item("straddled", c.straddled)?;
        d.set_item("last_u", c.last_u)?;
        d.set_item("chain_gaps", c.chain_gaps)?;
        d.set_item("chain_resets", c.chain_resets)?;
        d.set_item("seq_gaps", c.seq_gaps)?;
        d.set_item("empty_diffs_folded", c.empty_diffs_folded)?;
        Ok(d)
    }

    /// Raise a Rust panic inside the guard (tests check it never crosses the boundary).
    fn _debug_panic(&mut self) -> PyResult<()> {
        self.guard(|_| panic!("deliberate panic"))
    }
}
