//! Chunk buffers lent to numpy and taken back once numpy is done with them.
//!
//! A replay parses a capture into chunks of event rows, 4 MB each. A fresh buffer per chunk
//! is fresh memory, and the first touch of each of its 4 KB pages is a page fault: about a
//! thousand per chunk, a third more parse time (docs/sources/binance.md, Speed).
//! Here a chunk's array is a view of a buffer held by a [`RowBuffer`] object (the array's
//! base), and when the last array or view of it goes, the buffer returns to the pool of the
//! parser that filled it, which fills its next chunk with it. A consumer that keeps its
//! chunks simply keeps the buffers: the pool then stays empty and the parser allocates.
//!
//! The third module of this crate with `unsafe` (the workspace denies it elsewhere): numpy's
//! crate lends a buffer to an array only through an `unsafe` call. The block says what makes
//! it sound.

#![allow(unsafe_code)]

use std::sync::{Arc, Mutex, Weak};

use numpy::ndarray::ArrayView1;
use numpy::PyArray1;
use pyo3::prelude::*;

/// Buffers a pool keeps at most: a replay holds a chunk or two in flight beyond the one being
/// filled, so more would only hold memory.
const MAX_SPARE: usize = 2;

type Spares = Mutex<Vec<Vec<i64>>>;

/// Where the buffers of one parser's chunks come back to.
#[derive(Default)]
pub struct Pool {
    spares: Arc<Spares>,
}

impl Pool {
    /// A buffer given back, if any.
    pub fn take(&self) -> Option<Vec<i64>> {
        // A poisoned lock (a panic while pushing) only loses a buffer: allocate instead.
        self.spares.lock().ok()?.pop()
    }

    /// `words` as a numpy array whose buffer comes back here when numpy lets it go.
    pub fn lend<'py>(
        &self,
        py: Python<'py>,
        words: Vec<i64>,
    ) -> PyResult<Bound<'py, PyArray1<i64>>> {
        let owner = Bound::new(
            py,
            RowBuffer {
                words,
                pool: Arc::downgrade(&self.spares),
            },
        )?;
        let base = owner.clone().into_any();
        let view = ArrayView1::from(owner.get().words.as_slice());
        // SAFETY: the array's base is `owner`, which holds `words` and is frozen: the vector
        // is never changed, moved or freed while `owner` lives, and `owner` lives as long as
        // the array and every view of it (numpy keeps the base alive).
        Ok(unsafe { PyArray1::borrow_from_array(&view, base) })
    }
}

/// The owner of one lent buffer: on drop, the buffer goes back to its pool (if the pool's
/// parser still exists and has room).
#[pyclass(frozen, module = "featureplane._core")]
pub struct RowBuffer {
    words: Vec<i64>,
    pool: Weak<Spares>,
}

impl Drop for RowBuffer {
    fn drop(&mut self) {
        let Some(pool) = self.pool.upgrade() else {
            return;
        };
        let Ok(mut spares) = pool.lock() else {
            return;
        };
        if spares.len() < MAX_SPARE {
            spares.push(std::mem::take(&mut self.words));
        }
    }
}
