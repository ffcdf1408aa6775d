//! `PlanEngine`: the Python face of `featureplane_core::plan::PlanEngine`, the generic kernel of
//! a declared feature set built from its compiled plan (JSON). The same calls as `Engine`, the
//! same guard: a panic becomes an exception and poisons the engine.

use std::panic::{catch_unwind, AssertUnwindSafe};

use featureplane_core::events::rows_from_bytes;
use featureplane_core::features::schema::Dtype;
use featureplane_core::frames::wire::frame_size;
use featureplane_core::frames::FrameHeader;
use featureplane_core::plan::{PlanEngine, MAX_OUTPUTS};
use featureplane_core::{Config, Grid};
use numpy::{PyArrayDescr, PyReadonlyArray1};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple, PyType};
use pyo3::{PyTraverseError, PyVisit};

use crate::engine::{counters_dict, l1_of, levels_of, stats_of, Side, Stats, L1};
use crate::errors::{from_panic, poisoned, to_py};
use crate::frame_object::Frames;
use crate::frames::columns_to_py;
use crate::message_rows::{detached_if_long, MessageInput, RecordOut};
use crate::per_message::{self, PerMessage};
use crate::plan_state::{saved_from_py, saved_to_py};

#[pyclass(name = "PlanEngine", module = "featureplane._core")]
pub struct PyPlanEngine {
    engine: PlanEngine,
    poisoned: bool,
    frames: Frames,
}

fn word_to_py(py: Python<'_>, word: u64, dtype: Dtype) -> Bound<'_, PyAny> {
    // Ints and floats convert infallibly (their error type is `Infallible`).
    match dtype {
        Dtype::I64 => {
            let Ok(v) = (word as i64).into_pyobject(py);
            v.into_any()
        }
        Dtype::F64 => {
            let Ok(v) = f64::from_bits(word).into_pyobject(py);
            v.into_any()
        }
        Dtype::U32 => {
            let Ok(v) = (word as u32).into_pyobject(py);
            v.into_any()
        }
    }
}

fn words_to_py<'py>(
    py: Python<'py>,
    words: &[u64],
    dtypes: &[Dtype],
) -> PyResult<Bound<'py, PyTuple>> {
    PyTuple::new(
        py,
        words
            .iter()
            .zip(dtypes)
            .map(|(&w, &d)| word_to_py(py, w, d)),
    )
}

impl PyPlanEngine {
    fn guard<T>(&mut self, f: impl FnOnce(&mut PlanEngine) -> PyResult<T>) -> PyResult<T> {
        if self.poisoned {
            return Err(poisoned());
        }
        let engine = &mut self.engine;
        match catch_unwind(AssertUnwindSafe(|| f(engine))) {
            Ok(result) => result,
            Err(payload) => {
                self.poisoned = true;
                Err(from_panic(payload))
            }
        }
    }
}

impl PerMessage for PyPlanEngine {
    type Applied = (FrameHeader, Vec<u64>);

    fn frames(&mut self) -> &mut Frames {
        &mut self.frames
    }

    fn record_size(&self) -> usize {
        frame_size(self.engine.dtypes().len())
    }

    fn apply(&mut self, py: Python<'_>, rows: &[u8]) -> PyResult<Option<Self::Applied>> {
        self.guard(|engine| {
            detached_if_long(py, rows, || {
                rows_from_bytes(rows).and_then(|rows| engine.process_message(&rows))
            })
            .map_err(to_py)
        })
    }

    fn frame_object<'py>(
        &mut self,
        py: Python<'py>,
        (h, words): Self::Applied,
    ) -> PyResult<Bound<'py, PyAny>> {
        let values = words_to_py(py, &words, self.engine.dtypes())?;
        self.frames.maker()?.make(py, &h, values)
    }

    fn write_into(
        &mut self,
        py: Python<'_>,
        rows: &[u8],
        out: &RecordOut<'_, '_>,
    ) -> PyResult<bool> {
        let mut record = [0u8; frame_size(MAX_OUTPUTS)];
        let written = self.guard(|engine| {
            detached_if_long(py, rows, || {
                rows_from_bytes(rows).and_then(|rows| engine.process_into(&rows, &mut record))
            })
            .map_err(to_py)
        })?;
        let Some(n) = written else {
            return Ok(false);
        };
        out.write(py, &record[..n])?;
        Ok(true)
    }
}

#[pymethods]
impl PyPlanEngine {
    /// Parameters
    /// ----------
    /// plan : the compiled plan's canonical JSON text (`featureplane.features.plan`)
    /// grids : list of (tick, lot) as float, one per symbol id in order
    /// stale_after_ns : the STALE_INPUT bound, or None to turn the rule off
    /// schema_hash64 : the set's `schema_hash64`, carried by every typed frame
    #[new]
    #[pyo3(signature = (plan, grids, stale_after_ns = None, *, schema_hash64 = 0))]
    fn new(
        py: Python<'_>,
        plan: &str,
        grids: Vec<(f64, f64)>,
        stale_after_ns: Option<i64>,
        schema_hash64: u64,
    ) -> PyResult<Self> {
        let grids: Vec<Grid> = grids
            .into_iter()
            .map(|(tick, lot)| Grid { tick, lot })
            .collect();
        let config = Config {
            stale_after_ns,
            schema_hash64,
        };
        let built = catch_unwind(AssertUnwindSafe(|| {
            py.detach(|| PlanEngine::from_json(plan, &grids, config))
        }))
        .map_err(from_panic)?;
        Ok(Self {
            engine: built.map_err(to_py)?,
            poisoned: false,
            frames: Frames::default(),
        })
    }

    /// (id, dtype) of each output feature, in frame order.
    #[getter]
    fn features(&self) -> Vec<(String, &'static str)> {
        self.engine
            .plan()
            .features()
            .into_iter()
            .map(|(id, dtype)| (id.to_owned(), dtype.as_str()))
            .collect()
    }

    /// Bytes of one FPF1 frame of this set (`process_into`'s buffer).
    #[getter]
    fn frame_size(&self) -> usize {
        frame_size(self.engine.dtypes().len())
    }

    /// Register the next symbol id; returns it.
    fn add_symbol(&mut self, tick: f64, lot: f64) -> PyResult<u32> {
        self.guard(|e| e.add_symbol(Grid { tick, lot }).map_err(to_py))
    }

    #[pyo3(signature = (symbol_id, depth))]
    fn set_source_depth(&mut self, symbol_id: u32, depth: Option<u32>) -> PyResult<()> {
        self.guard(|e| e.set_source_depth(symbol_id, depth).map_err(to_py))
    }

    #[getter]
    fn n_symbols(&self) -> usize {
        self.engine.n_symbols()
    }

    #[getter]
    fn stale_after_ns(&self) -> Option<i64> {
        self.engine.config().stale_after_ns
    }

    #[getter]
    fn schema_hash64(&self) -> u64 {
        self.engine.config().schema_hash64
    }

    /// Apply every message of `events` (EVENT_DTYPE rows viewed as uint8, C-contiguous); the
    /// columns of `Engine.process_batch`, one value array per output feature.
    fn process_batch<'py>(
        &mut self,
        py: Python<'py>,
        events: PyReadonlyArray1<'py, u8>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let bytes = events
            .as_slice()
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        let columns = self.guard(|engine| {
            py.detach(|| {
                let rows = rows_from_bytes(bytes)?;
                engine.process_batch(&rows)
            })
            .map_err(to_py)
        })?;
        columns_to_py(py, columns)
    }

    /// Apply one message and write its FPF1 frame into `out` (writable, exactly `frame_size`
    /// bytes); True when written, False when the message was dropped. See
    /// `Engine.process_into`.
    fn process_into<'py>(
        slf: &Bound<'py, Self>,
        message: &Bound<'py, PyAny>,
        out: &Bound<'py, PyAny>,
    ) -> PyResult<bool> {
        per_message::process_into(slf, message, out)
    }

    /// Make `process_frame`'s frames of class `cls`; see `Engine.frame_type`.
    fn frame_type(
        &mut self,
        cls: &Bound<'_, PyType>,
        feature_set_id: &Bound<'_, PyString>,
        marker: &Bound<'_, PyString>,
    ) -> PyResult<bool> {
        self.frames.set_type(cls, feature_set_id, marker)
    }

    /// The symbol names of `process_frame`'s frames, by symbol id.
    fn frame_names(&mut self, names: Vec<Bound<'_, PyString>>) -> PyResult<()> {
        self.frames.set_names(names)
    }

    /// Apply one message; its frame object (see `frame_type`), or None when it was dropped.
    fn process_frame<'py>(
        &mut self,
        py: Python<'py>,
        message: &[u8],
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        per_message::process_frame(self, py, message)
    }

    /// Per-message input as numpy arrays; see `Engine.message_input`.
    fn message_input(
        &mut self,
        dtype: Bound<'_, PyArrayDescr>,
        fallback: Bound<'_, PyAny>,
        fallback_into: Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let input = MessageInput::new(dtype, fallback, fallback_into)?;
        self.frames.set_input(input);
        Ok(())
    }

    /// Apply one message given as its numpy array; see `Engine.process`.
    fn process<'py>(
        slf: &Bound<'py, Self>,
        message: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        per_message::process(slf, message)
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        self.frames.traverse(&visit)
    }

    fn __clear__(&mut self) {
        self.frames.clear();
    }

    /// (values tuple, warmup_ready_mask, quality_flags, seq, source_ts_ns) of a symbol.
    fn symbol_values<'py>(
        &mut self,
        py: Python<'py>,
        symbol_id: u32,
    ) -> PyResult<(Bound<'py, PyTuple>, u64, u32, i64, i64)> {
        let sv = self.guard(|e| e.symbol_values(symbol_id).map_err(to_py))?;
        Ok((
            words_to_py(py, &sv.words, self.engine.dtypes())?,
            sv.warmup_ready_mask,
            sv.quality_flags,
            sv.seq,
            sv.source_ts_ns,
        ))
    }

    fn reset_symbol(&mut self, symbol_id: u32) -> PyResult<()> {
        self.guard(|e| e.reset_symbol(symbol_id).map_err(to_py))
    }

    fn reset_book(&mut self, symbol_id: u32) -> PyResult<()> {
        self.guard(|e| e.reset_book(symbol_id).map_err(to_py))
    }

    fn l1(&mut self, symbol_id: u32) -> PyResult<L1> {
        self.guard(|e| Ok(l1_of(e.book(symbol_id).map_err(to_py)?)))
    }

    fn top_n(&mut self, symbol_id: u32, n: isize) -> PyResult<(Side, Side)> {
        self.guard(|e| Ok(levels_of(e.book(symbol_id).map_err(to_py)?, Some(n))))
    }

    fn snapshot(&mut self, symbol_id: u32) -> PyResult<(Side, Side)> {
        self.guard(|e| Ok(levels_of(e.book(symbol_id).map_err(to_py)?, None)))
    }

    fn book_stats(&mut self, symbol_id: u32) -> PyResult<Stats> {
        self.guard(|e| Ok(stats_of(e.book_stats(symbol_id).map_err(to_py)?)))
    }

    fn counters<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let counters = self.guard(|e| Ok(e.counters()))?;
        counters_dict(py, counters)
    }

    /// The engine's whole state: the kernel part of `featureplane.plan_state.v1` (counters,
    /// and per symbol `book`, `sequencing`, `features`, `frame`) as dicts and lists.
    fn export_state<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let state = self.guard(|e| Ok(e.export_state()))?;
        saved_to_py(py, &state)
    }

    /// Replace the engine's whole state with one `export_state` gave (of either backend).
    /// Symbols beyond the state's start fresh. A malformed state raises `ValueError` naming
    /// the field, and changes nothing.
    fn import_state(&mut self, state: &Bound<'_, PyAny>) -> PyResult<()> {
        let state = saved_from_py(state, "", 0)?;
        self.guard(|e| e.import_state(&state).map_err(to_py))
    }

    /// Test hook: panic inside the guarded kernel call, as a kernel bug would.
    fn _debug_panic(&mut self) -> PyResult<()> {
        self.guard(|_| panic!("forced panic (_debug_panic)"))
    }
}
