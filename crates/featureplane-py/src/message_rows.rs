//! One message's rows read in place from its numpy array, for the per-message path.
//!
//! `FeatureEngine.process(message)` takes the message as a 1-d numpy array of `EVENT_DTYPE`
//! rows. Turning it into bytes in Python (`message.tobytes()`, a dtype and shape test) costs
//! about as much as the kernel's work on a trade; a buffer-protocol request costs more (numpy
//! builds a format string for a structured dtype on each one). Here the array's own fields
//! are read instead: its type, its number of dimensions, its contiguity, and its dtype, which
//! must be the very dtype object the engine was given (`MessageInput::new`); any other input,
//! even an equal dtype under another object, takes the Python path, which checks it exactly as
//! the reference does.
//!
//! The second module of this crate with `unsafe` (the workspace denies it elsewhere): numpy
//! offers no safe byte view of an array whose dtype is not a Rust element type. The block says
//! what makes it sound.

#![allow(unsafe_code)]

use numpy::npyffi::_PyArray_GET_ITEM_DATA;
use numpy::{PyArrayDescr, PyArrayDescrMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::buffer::PyBuffer;
use pyo3::exceptions::PyValueError;
use pyo3::marker::Ungil;
use pyo3::prelude::*;
use pyo3::types::PyByteArray;
use pyo3::PyTraverseError;
use pyo3::PyVisit;

use featureplane_core::events::ROW_SIZE;

use crate::errors::InvalidMessageError;

/// Rows above which a message is applied without the GIL (a snapshot). Below it the GIL is
/// kept: about 20 µs of kernel work at most, nothing beside Python's 5 ms switch interval,
/// where releasing it would cost a copy of the rows (another thread could change the array
/// meanwhile) and the release itself, 0.6 to 2 ns a row on a depth message of a few hundred
/// levels, the messages that make the per-message p99.
const DETACH_ROWS: usize = 2048;

/// `run()` on a message of `rows`, without the GIL when it is a long one.
pub fn detached_if_long<T: Ungil>(
    py: Python<'_>,
    rows: &[u8],
    run: impl Ungil + FnOnce() -> T,
) -> T {
    if rows.len() > DETACH_ROWS * ROW_SIZE {
        py.detach(run)
    } else {
        run()
    }
}

/// The dtype object a message array must have to be read in place, and the Python calls
/// (`process`, `process_into`) that take every other message (and every message the kernel
/// refuses: they check it, re-sync the symbol table and give the reference's error).
pub struct MessageInput {
    dtype: Py<PyArrayDescr>,
    fallback: Py<PyAny>,
    fallback_into: Py<PyAny>,
}

impl MessageInput {
    pub fn new(
        dtype: Bound<'_, PyArrayDescr>,
        fallback: Bound<'_, PyAny>,
        fallback_into: Bound<'_, PyAny>,
    ) -> PyResult<Self> {
        if dtype.itemsize() != ROW_SIZE {
            return Err(PyValueError::new_err(format!(
                "an event dtype has {ROW_SIZE}-byte rows, not {}",
                dtype.itemsize()
            )));
        }
        Ok(Self {
            dtype: dtype.unbind(),
            fallback: fallback.unbind(),
            fallback_into: fallback_into.unbind(),
        })
    }

    /// The same input, for a call that needs it beside a mutable engine.
    pub fn clone_ref(&self, py: Python<'_>) -> Self {
        Self {
            dtype: self.dtype.clone_ref(py),
            fallback: self.fallback.clone_ref(py),
            fallback_into: self.fallback_into.clone_ref(py),
        }
    }

    /// The fallbacks, for the engine's `__traverse__` (they usually refer back to the engine).
    pub fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.fallback)?;
        visit.call(&self.fallback_into)
    }

    /// `fallback(message)`: None or a frame.
    pub fn fall_back<'py>(
        &self,
        message: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let frame = self.fallback.bind(message.py()).call1((message,))?;
        Ok((!frame.is_none()).then_some(frame))
    }

    /// `fallback_into(message, out)`: whether a frame was written.
    pub fn fall_back_into(
        &self,
        message: &Bound<'_, PyAny>,
        out: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        self.fallback_into
            .bind(message.py())
            .call1((message, out))?
            .is_truthy()
    }

    /// `apply` of the rows of `message` read in place, or None when the message goes to the
    /// fallback instead: it is not readable here, or the kernel refused it as invalid (the
    /// fallback then checks it as the reference does, and may register new symbols and try
    /// again).
    pub fn run<R>(
        &self,
        message: &Bound<'_, PyAny>,
        apply: impl FnOnce(&[u8]) -> PyResult<R>,
    ) -> Option<PyResult<R>> {
        match self.with_rows(message, apply)? {
            Err(e) if e.is_instance_of::<InvalidMessageError>(message.py()) => None,
            result => Some(result),
        }
    }

    /// `f` of the rows of `message` as bytes when it is a 1-d C-contiguous array of exactly
    /// this dtype object; None (nothing called) otherwise. A message long enough to be applied
    /// without the GIL is copied first: another thread could write to the array meanwhile.
    pub fn with_rows<R>(
        &self,
        message: &Bound<'_, PyAny>,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Option<R> {
        let array = message.cast::<PyUntypedArray>().ok()?;
        if array.ndim() != 1
            || !array.is_c_contiguous()
            || !array.dtype().is(self.dtype.bind(message.py()))
        {
            return None;
        }
        let len = array.len() * ROW_SIZE;
        if len == 0 {
            return Some(f(&[]));
        }
        // SAFETY: a 1-d C-contiguous array of `len / ROW_SIZE` items of ROW_SIZE bytes holds
        // `len` readable bytes at `data`. The GIL is held and no Python code runs while `f`
        // reads them (the kernel calls none), so nothing frees or resizes the buffer
        // meanwhile; a long message is copied before `f` could release the GIL.
        let bytes = unsafe {
            let data = (*_PyArray_GET_ITEM_DATA(array.as_array_ptr())).data;
            std::slice::from_raw_parts(data.cast::<u8>().cast_const(), len)
        };
        let owned: Vec<u8>;
        let rows = if len > DETACH_ROWS * ROW_SIZE {
            owned = bytes.to_vec();
            &owned[..]
        } else {
            bytes
        };
        Some(f(rows))
    }
}

/// Where `process_into` writes one frame record: a `bytearray` (the usual caller's buffer) is
/// written directly, anything else through the buffer protocol. A buffer request costs a call
/// more than the FPF1 write itself (a heap `Py_buffer`, the format string checked, a release).
pub enum RecordOut<'a, 'py> {
    ByteArray(&'a Bound<'py, PyByteArray>),
    Buffer(PyBuffer<u8>),
}

impl<'a, 'py> RecordOut<'a, 'py> {
    /// `out` as the writable byte buffer of one `size`-byte frame record.
    pub fn new(out: &'a Bound<'py, PyAny>, size: usize) -> PyResult<Self> {
        let refused = || {
            PyValueError::new_err(format!(
                "out must be a writable, C-contiguous buffer of exactly {size} bytes"
            ))
        };
        // Exactly a bytearray: a subclass may change how its buffer is exported.
        if let Ok(bytes) = out.cast_exact::<PyByteArray>() {
            return if bytes.len() == size {
                Ok(Self::ByteArray(bytes))
            } else {
                Err(refused())
            };
        }
        let buffer = PyBuffer::<u8>::get(out)?;
        if buffer.readonly() || buffer.item_count() != size || !buffer.is_c_contiguous() {
            return Err(refused());
        }
        Ok(Self::Buffer(buffer))
    }

    /// Write `record` (its length checked against the buffer's).
    pub fn write(&self, py: Python<'_>, record: &[u8]) -> PyResult<()> {
        match self {
            Self::ByteArray(bytes) => {
                // SAFETY: the GIL is held from here to the end of the copy and no Python code
                // runs in between, so nothing can resize or free the bytearray's storage while
                // the slice lives. Its length is tested again here: a long message is applied
                // without the GIL, when another thread may have resized it.
                let target = unsafe { bytes.as_bytes_mut() };
                if target.len() != record.len() {
                    return Err(PyValueError::new_err(format!(
                        "out changed size while the message was applied ({} bytes, not {})",
                        target.len(),
                        record.len()
                    )));
                }
                target.copy_from_slice(record);
                Ok(())
            }
            Self::Buffer(buffer) => buffer.copy_from_slice(py, record),
        }
    }
}
