//! `Engine`: the Python face of `featureplane_core::Engine`. Converts, calls, converts back.
//!
//! Every entry point runs the core inside `guard`, which turns a panic into a Python exception
//! and poisons the engine (its state is unknown after a panic), so a kernel bug never kills
//! the process and never yields features from a half-applied message.

use std::panic::{catch_unwind, AssertUnwindSafe};

use featureplane_core::book::lob::{BookStats, Counters};
use featureplane_core::book::{BookSide, L2Book, Level};
use featureplane_core::events::rows_from_bytes;
use featureplane_core::features::schema::Values;
use featureplane_core::frames::wire::{write_fpf1, FRAME_SIZE};
use featureplane_core::frames::{Frame, FrameHeader};
use featureplane_core::{Config, Engine, Grid};
use numpy::{IntoPyArray, PyArray1, PyArrayDescr, PyReadonlyArray1};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple, PyType};
use pyo3::{PyTraverseError, PyVisit};

use crate::errors::{from_panic, poisoned, to_py};
use crate::frame_object::Frames;
use crate::frames::{columns_to_py, values_to_py, ValuesCache};
use crate::message_rows::{detached_if_long, MessageInput, RecordOut};
use crate::per_message::{self, PerMessage};
use crate::state::{state_from_py, state_to_py};

pub(crate) type Side = Vec<(i64, i64)>;

#[pyclass(name = "Engine", module = "featureplane._core")]
pub struct PyEngine {
    engine: Engine,
    poisoned: bool,
    values_cache: ValuesCache,
    frames: Frames,
}

impl PerMessage for PyEngine {
    /// The header alone: the values stay in the engine until they are read, once.
    type Applied = FrameHeader;

    fn frames(&mut self) -> &mut Frames {
        &mut self.frames
    }

    fn record_size(&self) -> usize {
        FRAME_SIZE
    }

    fn apply(&mut self, py: Python<'_>, rows: &[u8]) -> PyResult<Option<FrameHeader>> {
        self.guard(|engine| {
            detached_if_long(py, rows, || {
                rows_from_bytes(rows).and_then(|rows| engine.process_message_header(&rows))
            })
            .map_err(to_py)
        })
    }

    fn frame_object<'py>(
        &mut self,
        py: Python<'py>,
        h: FrameHeader,
    ) -> PyResult<Bound<'py, PyAny>> {
        let values = values_of(&self.engine, &h)?;
        let values = self.values_cache.tuple(py, h.symbol_id, values)?;
        self.frames.maker()?.make(py, &h, values)
    }

    fn write_into(
        &mut self,
        py: Python<'_>,
        rows: &[u8],
        out: &RecordOut<'_, '_>,
    ) -> PyResult<bool> {
        let Some(header) = self.apply(py, rows)? else {
            return Ok(false);
        };
        let frame = Frame {
            header,
            values: *values_of(&self.engine, &header)?,
        };
        let mut record = [0u8; FRAME_SIZE];
        write_fpf1(&frame, self.engine.config().schema_hash64, &mut record).map_err(to_py)?;
        out.write(py, &record)?;
        Ok(true)
    }
}

/// The values of the frame `h` heads (its symbol's, until the symbol's next message).
fn values_of<'a>(engine: &'a Engine, h: &FrameHeader) -> PyResult<&'a Values> {
    engine
        .values_of(h.symbol_id)
        .ok_or_else(|| PyValueError::new_err(format!("no symbol {}", h.symbol_id)))
}

impl PyEngine {
    /// Run `f` on the engine; a panic becomes `PanicException` and poisons the engine.
    fn guard<T>(&mut self, f: impl FnOnce(&mut Engine) -> PyResult<T>) -> PyResult<T> {
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

    /// Read-only access; a panic here changes no state, but still poisons to stay simple.
    fn read<T>(&mut self, f: impl FnOnce(&Engine) -> PyResult<T>) -> PyResult<T> {
        self.guard(|engine| f(engine))
    }
}

pub(crate) fn side_levels(side: &BookSide, n: Option<isize>) -> Side {
    let all = side.levels().map(|Level { px, qty }| (px, qty));
    let len = side.len();
    // Python slice semantics of the reference's `prices[:n]`, negative n included.
    let take = match n {
        None => len,
        Some(n) if n >= 0 => (n as usize).min(len),
        Some(n) => len.saturating_sub(n.unsigned_abs()),
    };
    all.take(take).collect()
}

/// (bid_px, bid_qty, ask_px, ask_qty), None for an empty side: `l1` of both engine classes.
pub(crate) type L1 = (Option<i64>, Option<i64>, Option<i64>, Option<i64>);

pub(crate) fn l1_of(book: &L2Book) -> L1 {
    let l1 = book.l1();
    (
        l1.bid.map(|l| l.px),
        l1.bid.map(|l| l.qty),
        l1.ask.map(|l| l.px),
        l1.ask.map(|l| l.qty),
    )
}

/// The best `n` levels of each side (every level for None), best first.
pub(crate) fn levels_of(book: &L2Book, n: Option<isize>) -> (Side, Side) {
    (side_levels(&book.bids, n), side_levels(&book.asks, n))
}

/// (bid_levels, ask_levels, bid_depth_qty, ask_depth_qty, crossed, untrusted, last_book_seq,
/// messages_applied): `book_stats` of both engine classes.
pub(crate) type Stats = (usize, usize, i128, i128, bool, bool, i64, u64);

pub(crate) fn stats_of(s: BookStats) -> Stats {
    (
        s.bid_levels,
        s.ask_levels,
        s.bid_depth_qty,
        s.ask_depth_qty,
        s.crossed,
        s.untrusted,
        s.last_book_seq,
        s.messages_applied,
    )
}

/// Engine-wide counters by name (messages, applied, duplicates, ...).
pub(crate) fn counters_dict(py: Python<'_>, counters: Counters) -> PyResult<Bound<'_, PyDict>> {
    let dict = PyDict::new(py);
    for (name, value) in Counters::NAMES.iter().zip(counters.values()) {
        dict.set_item(name, value)?;
    }
    Ok(dict)
}

#[pymethods]
impl PyEngine {
    /// Parameters
    /// ----------
    /// grids : list of (tick, lot) as float, one per symbol id in order
    /// stale_after_ns : the STALE_INPUT bound, or None to turn the rule off
    /// book_only : maintain the books only, no features (`process_books`; the frame paths
    ///     raise ValueError)
    /// schema_hash64 : `LOB_SHARED_V1.schema_hash64`, carried by every typed frame
    ///     `process_into` writes; 0 names no schema (receivers refuse such frames)
    #[new]
    #[pyo3(signature = (grids, stale_after_ns = None, book_only = false, *, schema_hash64 = 0))]
    fn new(
        grids: Vec<(f64, f64)>,
        stale_after_ns: Option<i64>,
        book_only: bool,
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
        let engine = if book_only {
            Engine::new_book_only(&grids, config)
        } else {
            Engine::new(&grids, config)
        }
        .map_err(to_py)?;
        Ok(Self {
            engine,
            poisoned: false,
            values_cache: ValuesCache::default(),
            frames: Frames::default(),
        })
    }

    /// Register the next symbol id; returns it.
    fn add_symbol(&mut self, tick: f64, lot: f64) -> PyResult<u32> {
        self.guard(|e| e.add_symbol(Grid { tick, lot }).map_err(to_py))
    }

    /// The price levels per side a symbol's source carries (None: every level); features
    /// reading more are never ready on it.
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

    #[getter]
    fn book_only(&self) -> bool {
        self.engine.is_book_only()
    }

    /// Book-only engines: apply every message of `events` (EVENT_DTYPE rows viewed as uint8,
    /// C-contiguous) to the books. Returns (input_index, symbol_id, bid_px, bid_qty, ask_px,
    /// ask_qty), one entry per applied message, the best levels after it (0 and 0 for an empty
    /// side). The GIL is released while the kernel runs.
    #[allow(clippy::type_complexity)]
    fn process_books<'py>(
        &mut self,
        py: Python<'py>,
        events: PyReadonlyArray1<'py, u8>,
    ) -> PyResult<(
        Bound<'py, PyArray1<i64>>,
        Bound<'py, PyArray1<u32>>,
        Bound<'py, PyArray1<i64>>,
        Bound<'py, PyArray1<i64>>,
        Bound<'py, PyArray1<i64>>,
        Bound<'py, PyArray1<i64>>,
    )> {
        let bytes = events
            .as_slice()
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        let l1 = self.guard(|engine| {
            py.detach(|| {
                let rows = rows_from_bytes(bytes)?;
                engine.process_books(&rows)
            })
            .map_err(to_py)
        })?;
        Ok((
            l1.input_index.into_pyarray(py),
            l1.symbol_id.into_pyarray(py),
            l1.bid_px.into_pyarray(py),
            l1.bid_qty.into_pyarray(py),
            l1.ask_px.into_pyarray(py),
            l1.ask_qty.into_pyarray(py),
        ))
    }

    /// Apply every message of `events` (EVENT_DTYPE rows viewed as uint8, C-contiguous).
    ///
    /// Returns (input_index, symbol_id, seq, source_ts_ns, local_ts_ns, changed_mask,
    /// warmup_ready_mask, quality_flags, [one array per feature]). The GIL is released while
    /// the kernel runs; the caller must not write to `events` meanwhile.
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

    /// Apply one message and write its frame into `out`, a writable C-contiguous byte buffer
    /// of exactly FRAME_RECORD_SIZE bytes (a `bytearray`, or a uint8 numpy array), as an FPF1
    /// typed frame (docs/frame-abi.md): the FRAME_RECORD_HEADER fields, then one 8-byte slot
    /// per feature. The message is its EVENT_DTYPE rows as bytes, or its numpy array (read as
    /// `process` reads it; anything else goes to `message_input`'s `fallback_into`).
    ///
    /// Returns True when the frame was written, False when the message was dropped (duplicate,
    /// out of order, stale; `out` untouched). `out` is checked before anything is applied.
    /// No Python object is made per call: the live path for consumers that read the record in
    /// place (e.g. through a numpy structured view of `out`) or pass it on as is.
    fn process_into<'py>(
        slf: &Bound<'py, Self>,
        message: &Bound<'py, PyAny>,
        out: &Bound<'py, PyAny>,
    ) -> PyResult<bool> {
        per_message::process_into(slf, message, out)
    }

    /// Make `process_frame`'s frames of class `cls` (`FeatureUpdateFrameV1`), with this
    /// feature set id and marker; True when they are filled slot by slot (docs of
    /// `frame_object`), False when the class is called.
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

    /// Apply one message (its EVENT_DTYPE rows as bytes); its frame object (see
    /// `frame_type`), or None when the message was dropped.
    fn process_frame<'py>(
        &mut self,
        py: Python<'py>,
        message: &[u8],
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        per_message::process_frame(self, py, message)
    }

    /// Take per-message input as numpy arrays of `dtype` (EVENT_DTYPE) from now on: `process`
    /// reads such an array in place (`message_rows`) and hands any other input, and any
    /// message the kernel refuses, to `fallback(message)`, which checks it as the reference
    /// does (and may register new symbols and try again); `process_into` hands them to
    /// `fallback_into(message, out)`.
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

    /// Apply one message given as its 1-d EVENT_DTYPE numpy array (`FeatureEngine.process`);
    /// its frame object, or None when it was dropped.
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
        let sv = self.read(|e| e.symbol_values(symbol_id).map_err(to_py))?;
        Ok((
            values_to_py(py, &sv.values)?,
            sv.warmup_ready_mask,
            sv.quality_flags,
            sv.seq,
            sv.source_ts_ns,
        ))
    }

    /// Clear a symbol's book, sequence and features; its next frame carries STATE_RESET.
    fn reset_symbol(&mut self, symbol_id: u32) -> PyResult<()> {
        self.guard(|e| e.reset_symbol(symbol_id).map_err(to_py))
    }

    /// Reset only the symbol's book and sequence state (`LOBEngine.reset_symbol`).
    fn reset_book(&mut self, symbol_id: u32) -> PyResult<()> {
        self.guard(|e| e.reset_book(symbol_id).map_err(to_py))
    }

    /// (bid_px, bid_qty, ask_px, ask_qty), None for an empty side.
    fn l1(&mut self, symbol_id: u32) -> PyResult<L1> {
        self.read(|e| Ok(l1_of(e.book(symbol_id).map_err(to_py)?)))
    }

    /// The best `n` levels of each side (Python slice semantics for n), best first.
    fn top_n(&mut self, symbol_id: u32, n: isize) -> PyResult<(Side, Side)> {
        self.read(|e| Ok(levels_of(e.book(symbol_id).map_err(to_py)?, Some(n))))
    }

    /// Every level of each side, best first.
    fn snapshot(&mut self, symbol_id: u32) -> PyResult<(Side, Side)> {
        self.read(|e| Ok(levels_of(e.book(symbol_id).map_err(to_py)?, None)))
    }

    /// (bid_levels, ask_levels, bid_depth_qty, ask_depth_qty, crossed, untrusted,
    /// last_book_seq, messages_applied)
    fn book_stats(&mut self, symbol_id: u32) -> PyResult<Stats> {
        self.read(|e| Ok(stats_of(e.book_stats(symbol_id).map_err(to_py)?)))
    }

    /// Engine-wide counters by name (messages, applied, duplicates, ...).
    fn counters<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let counters = self.read(|e| Ok(e.counters()))?;
        counters_dict(py, counters)
    }

    /// The engine's whole state as nested dicts: `{"counters": {...}, "symbols": [{"book":
    /// {"bids", "asks"}, "sequencing": {...}, "features": {...}, "frame": {...}}, ...]}`, one
    /// entry per symbol id (the keys of `featureplane.engine_state`).
    fn export_state<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let state = self.read(|e| Ok(e.export_state()))?;
        state_to_py(py, &state)
    }

    /// Replace the engine's whole state with one `export_state` returned (levels as tuples).
    /// Symbols beyond the state's start fresh. A malformed state raises `ValueError` naming the
    /// field, and changes nothing.
    fn import_state(&mut self, state: &Bound<'_, PyAny>) -> PyResult<()> {
        let state = state_from_py(state)?;
        self.guard(|e| e.import_state(&state).map_err(to_py))?;
        // The cached tuples still match their bits, but they describe the old state.
        self.values_cache = ValuesCache::default();
        Ok(())
    }

    /// Test hook: panic inside the guarded kernel call, as a kernel bug would.
    fn _debug_panic(&mut self) -> PyResult<()> {
        self.guard(|_| panic!("forced panic (_debug_panic)"))
    }
}
