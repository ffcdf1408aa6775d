//! Saved engine state (`featureplane_core::state`) <-> nested Python dicts.
//!
//! The dicts have the keys and nesting of `featureplane.engine_state.EngineState.to_dict()`
//! minus what the Python layer adds (format, feature set, symbol names and grids): `counters`,
//! then per symbol `book` (bids, asks), `sequencing`, `features` and `frame`. Reading one, a
//! missing key or a value of the wrong type is a `ValueError` naming the field.

use featureplane_core::book::lob::Counters;
use featureplane_core::book::sequencing::SequenceState;
use featureplane_core::book::Level;
use featureplane_core::features::schema::{dtype, Dtype, Values, N_FEATURES};
use featureplane_core::state::{
    BookState, DecayedSumState, EmaState, EngineState, FeatureState, FrameState, SymbolState,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::frames::values_to_py;

type Pairs = Vec<(i64, i64)>;

fn pairs(levels: &[Level]) -> Pairs {
    levels.iter().map(|l| (l.px, l.qty)).collect()
}

fn levels(pairs: Pairs) -> Vec<Level> {
    pairs
        .into_iter()
        .map(|(px, qty)| Level { px, qty })
        .collect()
}

// ----- out -----------------------------------------------------------------------------------

fn ema_to_py<'py>(py: Python<'py>, s: &EmaState) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("value", s.value)?;
    d.set_item("count", s.count)?;
    Ok(d)
}

fn decayed_to_py<'py>(py: Python<'py>, s: &DecayedSumState) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("value", s.value)?;
    d.set_item("last_ts_ns", s.last_ts_ns)?;
    d.set_item("count", s.count)?;
    Ok(d)
}

fn symbol_to_py<'py>(py: Python<'py>, s: &SymbolState) -> PyResult<Bound<'py, PyDict>> {
    let b = &s.book;
    let book = PyDict::new(py);
    book.set_item("bids", pairs(&b.bids))?;
    book.set_item("asks", pairs(&b.asks))?;

    let seq = PyDict::new(py);
    seq.set_item("book_seq", b.seq.book_seq)?;
    seq.set_item("trade_seq", b.seq.trade_seq)?;
    seq.set_item("after_snapshot", b.seq.after_snapshot)?;
    seq.set_item("last_source_ts_ns", b.seq.last_source_ts_ns)?;
    seq.set_item("untrusted", b.untrusted)?;
    seq.set_item("reset_pending", b.reset_pending)?;
    seq.set_item("out_of_order_pending", b.out_of_order_pending)?;
    seq.set_item("messages_applied", b.messages_applied)?;

    let f = &s.features;
    let features = PyDict::new(py);
    let values = values_to_py(py, &f.values)?;
    features.set_item("values", PyList::new(py, values.iter())?)?;
    features.set_item("n_book", f.n_book)?;
    features.set_item("n_trade", f.n_trade)?;
    features.set_item("has_bid", f.has_bid)?;
    features.set_item("has_ask", f.has_ask)?;
    features.set_item("prev_bids", pairs(&f.prev_bids))?;
    features.set_item("prev_asks", pairs(&f.prev_asks))?;
    features.set_item("ofi_cum", f.ofi_cum)?;
    features.set_item("ofi_ema", ema_to_py(py, &f.ofi_ema)?)?;
    features.set_item("ofi_decay", decayed_to_py(py, &f.ofi_decay)?)?;
    features.set_item("spread_ema", ema_to_py(py, &f.spread_ema)?)?;
    features.set_item("imbalance_ema", ema_to_py(py, &f.imbalance_ema)?)?;
    features.set_item("mids", &f.mids)?;
    features.set_item("mid_changes", &f.mid_changes)?;
    features.set_item("n_mids", f.n_mids)?;
    features.set_item("signed_qty_cum", f.signed_qty_cum)?;
    features.set_item("tfi", decayed_to_py(py, &f.tfi)?)?;

    let h = &s.frame;
    let frame = PyDict::new(py);
    frame.set_item("quality_flags", h.quality_flags)?;
    frame.set_item("warmup_ready_mask", h.warmup_ready_mask)?;
    frame.set_item("seq", h.seq)?;
    frame.set_item("source_ts_ns", h.source_ts_ns)?;
    frame.set_item("local_ts_ns", h.local_ts_ns)?;

    let d = PyDict::new(py);
    d.set_item("book", book)?;
    d.set_item("sequencing", seq)?;
    d.set_item("features", features)?;
    d.set_item("frame", frame)?;
    Ok(d)
}

/// `{"counters": {...}, "symbols": [{"book", "sequencing", "features", "frame"}, ...]}`
pub fn state_to_py<'py>(py: Python<'py>, state: &EngineState) -> PyResult<Bound<'py, PyDict>> {
    let counters = PyDict::new(py);
    for (name, value) in Counters::NAMES.iter().zip(state.counters.values()) {
        counters.set_item(name, value)?;
    }
    let symbols = PyList::empty(py);
    for symbol in &state.symbols {
        symbols.append(symbol_to_py(py, symbol)?)?;
    }
    let d = PyDict::new(py);
    d.set_item("counters", counters)?;
    d.set_item("symbols", symbols)?;
    Ok(d)
}

// ----- in ------------------------------------------------------------------------------------

/// A dict being read, with its path in the state for error messages.
struct Node<'py> {
    dict: Bound<'py, PyDict>,
    path: String,
}

fn bad(path: &str, what: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(format!("engine state: {path}: {what}"))
}

/// `path.key`, or `key` at the root.
fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

impl<'py> Node<'py> {
    fn root(obj: &Bound<'py, PyAny>) -> PyResult<Self> {
        let dict = obj
            .cast::<PyDict>()
            .map_err(|_| bad("state", "expected a dict"))?;
        Ok(Self {
            dict: dict.clone(),
            path: String::new(),
        })
    }

    fn item(&self, key: &str) -> PyResult<Bound<'py, PyAny>> {
        self.dict
            .get_item(key)?
            .ok_or_else(|| bad(&join(&self.path, key), "missing"))
    }

    fn get<T: FromPyObjectOwned<'py>>(&self, key: &str) -> PyResult<T> {
        self.item(key)?.extract::<T>().map_err(|e| {
            let e: PyErr = e.into();
            bad(&join(&self.path, key), e)
        })
    }

    fn child(&self, key: &str) -> PyResult<Node<'py>> {
        let path = join(&self.path, key);
        let dict = self
            .item(key)?
            .cast_into::<PyDict>()
            .map_err(|_| bad(&path, "expected a dict"))?;
        Ok(Node { dict, path })
    }

    fn ema(&self, key: &str) -> PyResult<EmaState> {
        let n = self.child(key)?;
        Ok(EmaState {
            value: n.get("value")?,
            count: n.get("count")?,
        })
    }

    fn decayed(&self, key: &str) -> PyResult<DecayedSumState> {
        let n = self.child(key)?;
        Ok(DecayedSumState {
            value: n.get("value")?,
            last_ts_ns: n.get("last_ts_ns")?,
            count: n.get("count")?,
        })
    }

    fn values(&self, key: &str) -> PyResult<Values> {
        let path = join(&self.path, key);
        let items: Vec<Bound<'py, PyAny>> = self.get(key)?;
        if items.len() != N_FEATURES {
            return Err(bad(
                &path,
                format!("{} values, expected {N_FEATURES}", items.len()),
            ));
        }
        let mut values = Values::default();
        for (i, item) in items.iter().enumerate() {
            let at = |e: PyErr| bad(&format!("{path}[{i}]"), e);
            match dtype(i) {
                Dtype::I64 => values.set_i64(i, item.extract().map_err(at)?),
                Dtype::F64 => values.set_f64(i, item.extract().map_err(at)?),
                Dtype::U32 => values.set_u32(i, item.extract().map_err(at)?),
            }
        }
        Ok(values)
    }
}

fn symbol_from_py(node: &Node<'_>) -> PyResult<SymbolState> {
    let book = node.child("book")?;
    let seq = node.child("sequencing")?;
    let f = node.child("features")?;
    let h = node.child("frame")?;
    Ok(SymbolState {
        book: BookState {
            bids: levels(book.get("bids")?),
            asks: levels(book.get("asks")?),
            seq: SequenceState {
                book_seq: seq.get("book_seq")?,
                trade_seq: seq.get("trade_seq")?,
                after_snapshot: seq.get("after_snapshot")?,
                last_source_ts_ns: seq.get("last_source_ts_ns")?,
            },
            untrusted: seq.get("untrusted")?,
            reset_pending: seq.get("reset_pending")?,
            out_of_order_pending: seq.get("out_of_order_pending")?,
            messages_applied: seq.get("messages_applied")?,
        },
        features: FeatureState {
            values: f.values("values")?,
            n_book: f.get("n_book")?,
            n_trade: f.get("n_trade")?,
            has_bid: f.get("has_bid")?,
            has_ask: f.get("has_ask")?,
            prev_bids: levels(f.get("prev_bids")?),
            prev_asks: levels(f.get("prev_asks")?),
            ofi_cum: f.get("ofi_cum")?,
            ofi_ema: f.ema("ofi_ema")?,
            ofi_decay: f.decayed("ofi_decay")?,
            spread_ema: f.ema("spread_ema")?,
            imbalance_ema: f.ema("imbalance_ema")?,
            mids: f.get("mids")?,
            mid_changes: f.get("mid_changes")?,
            n_mids: f.get("n_mids")?,
            signed_qty_cum: f.get("signed_qty_cum")?,
            tfi: f.decayed("tfi")?,
        },
        frame: FrameState {
            quality_flags: h.get("quality_flags")?,
            warmup_ready_mask: h.get("warmup_ready_mask")?,
            seq: h.get("seq")?,
            source_ts_ns: h.get("source_ts_ns")?,
            local_ts_ns: h.get("local_ts_ns")?,
        },
    })
}

/// The inverse of [`state_to_py`]; extra keys are ignored.
pub fn state_from_py(obj: &Bound<'_, PyAny>) -> PyResult<EngineState> {
    let root = Node::root(obj)?;
    let c = root.child("counters")?;
    let counters = Counters {
        messages: c.get("messages")?,
        applied: c.get("applied")?,
        duplicates: c.get("duplicates")?,
        out_of_order: c.get("out_of_order")?,
        stale: c.get("stale")?,
        gaps: c.get("gaps")?,
        resets: c.get("resets")?,
        ts_backwards: c.get("ts_backwards")?,
    };
    let items: Vec<Bound<'_, PyAny>> = root.get("symbols")?;
    let mut symbols = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let path = format!("symbols[{i}]");
        let dict = item
            .cast_into::<PyDict>()
            .map_err(|_| bad(&path, "expected a dict"))?;
        symbols.push(symbol_from_py(&Node { dict, path })?);
    }
    Ok(EngineState { counters, symbols })
}
