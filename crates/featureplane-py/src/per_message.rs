//! The per-message calls both engine classes share (`process_frame`, `process`,
//! `process_into`), written once over what each engine provides ([`PerMessage`]).
//!
//! `process` and `process_into` take the message's numpy array, read in place when
//! `MessageInput` can (`message_rows`); any other message, and any message the kernel refuses
//! as invalid, goes to the Python fallback, which checks it as the reference does. The engine
//! is borrowed only until the fallback is called: the fallback calls the engine.

use pyo3::prelude::*;
use pyo3::pyclass::boolean_struct::False;
use pyo3::types::PyBytes;
use pyo3::PyClass;

use crate::frame_object::Frames;
use crate::message_rows::RecordOut;

/// What the shared calls need of an engine class.
pub trait PerMessage: PyClass<Frozen = False> {
    /// What the kernel gives for an applied message.
    type Applied;

    fn frames(&mut self) -> &mut Frames;

    /// Bytes of one FPF1 frame of the engine's feature set.
    fn record_size(&self) -> usize;

    /// One message (its rows as bytes) through the guarded kernel; None when it was dropped.
    fn apply(&mut self, py: Python<'_>, rows: &[u8]) -> PyResult<Option<Self::Applied>>;

    /// The frame object of an applied message.
    fn frame_object<'py>(
        &mut self,
        py: Python<'py>,
        applied: Self::Applied,
    ) -> PyResult<Bound<'py, PyAny>>;

    /// One message (its rows as bytes) through the guarded kernel, its FPF1 frame into `out`;
    /// false when it was dropped.
    fn write_into(
        &mut self,
        py: Python<'_>,
        rows: &[u8],
        out: &RecordOut<'_, '_>,
    ) -> PyResult<bool>;
}

/// `process_frame`: one message as bytes, its frame object or None.
pub fn process_frame<'py, E: PerMessage>(
    engine: &mut E,
    py: Python<'py>,
    rows: &[u8],
) -> PyResult<Option<Bound<'py, PyAny>>> {
    engine.frames().maker()?; // refused before any state change
    let applied = engine.apply(py, rows)?;
    frame_of(engine, py, applied)
}

fn frame_of<'py, E: PerMessage>(
    engine: &mut E,
    py: Python<'py>,
    applied: Option<E::Applied>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    applied
        .map(|applied| engine.frame_object(py, applied))
        .transpose()
}

/// `process`: one message as its numpy array, its frame object or None.
pub fn process<'py, E: PerMessage>(
    slf: &Bound<'py, E>,
    message: &Bound<'py, PyAny>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let py = slf.py();
    let input = {
        let mut engine = slf.borrow_mut();
        engine.frames().maker()?; // refused before any state change
        let input = engine.frames().input(py)?;
        // The rows are read inside `run`; the frame object is made once they no longer are.
        match input.run(message, |rows| engine.apply(py, rows)) {
            Some(applied) => return frame_of(&mut *engine, py, applied?),
            None => input,
        }
    };
    input.fall_back(message)
}

/// `process_into`: one message as its numpy array (or its rows as bytes), its FPF1 frame into
/// `out`, checked first; false when it was dropped.
pub fn process_into<'py, E: PerMessage>(
    slf: &Bound<'py, E>,
    message: &Bound<'py, PyAny>,
    out: &Bound<'py, PyAny>,
) -> PyResult<bool> {
    let py = slf.py();
    let buffer = RecordOut::new(out, slf.borrow().record_size())?;
    let input = {
        let mut engine = slf.borrow_mut();
        if let Ok(bytes) = message.cast::<PyBytes>() {
            return engine.write_into(py, bytes.as_bytes(), &buffer);
        }
        let input = engine.frames().input(py)?;
        match input.run(message, |rows| engine.write_into(py, rows, &buffer)) {
            Some(written) => return written,
            None => input,
        }
    };
    input.fall_back_into(message, out)
}
