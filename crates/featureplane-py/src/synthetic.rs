//! `SyntheticFeed`: the core's deterministic synthetic feed as a stream of numpy event rows,
//! for benchmarks that need many millions of events without holding them all.

use std::panic::{catch_unwind, AssertUnwindSafe};

use featureplane_core::events::EventRow;
use featureplane_core::synthetic::{as_bytes, FeedShape, SyntheticFeed};
use numpy::{PyArray1, PyArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::errors::from_panic;

/// Largest depth and message size accepted: far beyond any benchmark, and small enough that a
/// snapshot of every symbol stays a reasonable allocation.
const MAX_DEPTH: i64 = 1 << 20;
const MAX_CHANGES: usize = 1 << 16;
const MAX_SYMBOLS: u32 = 1 << 16;

#[pyclass(name = "SyntheticFeed", module = "featureplane._core")]
pub struct PySyntheticFeed {
    feed: SyntheticFeed,
    rows: Vec<EventRow>,
}

impl PySyntheticFeed {
    /// Fill the reused row buffer with `f` and copy it out as a uint8 array (EVENT_DTYPE rows).
    fn emit<'py>(
        &mut self,
        py: Python<'py>,
        f: impl FnOnce(&mut SyntheticFeed, &mut Vec<EventRow>) + Send,
    ) -> PyResult<Bound<'py, PyArray1<u8>>> {
        let (feed, rows) = (&mut self.feed, &mut self.rows);
        rows.clear();
        py.detach(|| catch_unwind(AssertUnwindSafe(|| f(feed, rows))))
            .map_err(from_panic)?;
        let bytes = as_bytes(rows);
        let out = PyArray1::<u8>::zeros(py, bytes.len(), false);
        out.readwrite().as_slice_mut()?.copy_from_slice(bytes);
        Ok(out)
    }
}

#[pymethods]
impl PySyntheticFeed {
    /// Parameters
    /// ----------
    /// symbols : symbol ids 0..symbols; diffs take turns over them
    /// depth : levels a side in each snapshot
    /// changes_per_diff : level changes in each depth message
    /// trades_per_diff : trade messages after each depth message
    /// seed : the same seed and shape give the same rows
    #[new]
    #[pyo3(signature = (symbols = 1, depth = 1000, changes_per_diff = 68, trades_per_diff = 3,
                        seed = 7))]
    fn new(
        symbols: u32,
        depth: i64,
        changes_per_diff: usize,
        trades_per_diff: usize,
        seed: u64,
    ) -> PyResult<Self> {
        if !(1..=MAX_SYMBOLS).contains(&symbols)
            || !(1..=MAX_DEPTH).contains(&depth)
            || !(1..=MAX_CHANGES).contains(&changes_per_diff)
            || trades_per_diff > MAX_CHANGES
        {
            return Err(PyValueError::new_err(format!(
                "need 1 <= symbols <= {MAX_SYMBOLS}, 1 <= depth <= {MAX_DEPTH}, \
                 1 <= changes_per_diff <= {MAX_CHANGES}, trades_per_diff <= {MAX_CHANGES}"
            )));
        }
        let shape = FeedShape {
            symbols,
            depth,
            diffs: 0,
            changes_per_diff,
            trades_per_diff,
        };
        Ok(Self {
            feed: SyntheticFeed::new(shape, seed),
            rows: Vec::new(),
        })
    }

    /// Rows of one depth message and its trade messages.
    #[getter]
    fn rows_per_diff(&self) -> usize {
        self.feed.rows_per_diff()
    }

    /// One snapshot message per symbol, as EVENT_DTYPE rows viewed as uint8.
    fn snapshots<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<u8>>> {
        self.emit(py, |feed, rows| feed.snapshots(rows))
    }

    /// The next `n` depth messages, each followed by its trades, as EVENT_DTYPE rows viewed as
    /// uint8 (sequences and timestamps continue from the previous call).
    fn diffs<'py>(&mut self, py: Python<'py>, n: usize) -> PyResult<Bound<'py, PyArray1<u8>>> {
        let rows = n.checked_mul(self.feed.rows_per_diff());
        if rows.is_none_or(|r| r > (1 << 28)) {
            return Err(PyValueError::new_err(
                "n too large: at most 2**28 rows per call",
            ));
        }
        self.emit(py, |feed, rows| feed.diffs(n, rows))
    }
}
