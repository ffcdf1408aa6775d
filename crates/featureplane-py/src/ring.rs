//! The shared-memory frame ring (featureplane_core::ring) for Python: `RingWriter`,
//! `RingReader`, `ring_probe`, `ring_remove_stale`, and the benchmark loops. Frames cross as
//! bytes or numpy uint8 arrays (the records of `frame_batch_dtype` viewed as bytes); reads
//! copy into a caller's array, so a batch needs no per-frame object. Waiting releases the GIL.

use std::time::Duration;

use featureplane_core::ring::{
    bench, probe, remove_stale, Expect, RingReader, RingSpec, RingStatus, RingWriter, Start,
};
use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1, PyReadwriteArray1};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::errors::to_py;

/// The bytes of a `bytes` object or a contiguous numpy uint8 array, for the call's duration.
fn with_bytes<T>(obj: &Bound<'_, PyAny>, f: impl FnOnce(&[u8]) -> PyResult<T>) -> PyResult<T> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        return f(b.as_bytes());
    }
    let arr: PyReadonlyArray1<'_, u8> = obj.extract().map_err(|_| {
        PyValueError::new_err("frames must be bytes or a contiguous numpy uint8 array")
    })?;
    let slice = arr
        .as_slice()
        .map_err(|_| PyValueError::new_err("frames must be a contiguous numpy uint8 array"))?;
    f(slice)
}

fn status_to_py<'py>(py: Python<'py>, s: &RingStatus) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("name", &s.name)?;
    d.set_item("state", s.state.as_str())?;
    d.set_item("writer_pid", s.writer_pid)?;
    d.set_item("epoch", s.epoch)?;
    d.set_item("cursor", s.cursor)?;
    d.set_item("heartbeat_ns", s.heartbeat_ns)?;
    d.set_item("heartbeat_age_ns", s.heartbeat_age_ns)?;
    d.set_item("capacity", s.capacity)?;
    d.set_item("max_symbols", s.max_symbols)?;
    d.set_item("frame_size", s.frame_size)?;
    d.set_item("feature_set_id", &s.feature_set_id)?;
    d.set_item("schema_hash64", s.schema_hash64)?;
    Ok(d)
}

/// The status of the ring `name` as a dict, or None when there is no such segment.
#[pyfunction]
pub fn ring_probe<'py>(py: Python<'py>, name: &str) -> PyResult<Option<Bound<'py, PyDict>>> {
    match probe(name).map_err(to_py)? {
        Some(s) => Ok(Some(status_to_py(py, &s)?)),
        None => Ok(None),
    }
}

/// Remove the ring `name` if its writer is gone; its status then, or None when absent.
#[pyfunction]
pub fn ring_remove_stale<'py>(py: Python<'py>, name: &str) -> PyResult<Option<Bound<'py, PyDict>>> {
    match remove_stale(name).map_err(to_py)? {
        Some(s) => Ok(Some(status_to_py(py, &s)?)),
        None => Ok(None),
    }
}

#[pyclass(name = "RingWriter", module = "featureplane._core")]
pub struct PyRingWriter {
    inner: RingWriter,
}

#[pymethods]
impl PyRingWriter {
    #[new]
    #[pyo3(signature = (name, *, capacity, max_symbols, max_readers, frame_size, feature_set_id,
                        schema_hash64, meta, replace_stale = true))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        name: &str,
        capacity: usize,
        max_symbols: usize,
        max_readers: usize,
        frame_size: usize,
        feature_set_id: String,
        schema_hash64: u64,
        meta: &[u8],
        replace_stale: bool,
    ) -> PyResult<Self> {
        let spec = RingSpec {
            capacity,
            max_symbols,
            max_readers,
            frame_size,
            meta_cap: meta.len(),
            feature_set_id,
            schema_hash64,
        };
        let inner = RingWriter::create(name, &spec, meta, replace_stale).map_err(to_py)?;
        Ok(Self { inner })
    }

    #[getter]
    fn name(&self) -> &str {
        self.inner.name()
    }

    #[getter]
    fn cursor(&self) -> u64 {
        self.inner.cursor()
    }

    #[getter]
    fn capacity(&self) -> usize {
        self.inner.spec().capacity
    }

    #[getter]
    fn closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// The crashed or closed segment this writer replaced at create (a dict), or None.
    fn replaced<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        self.inner
            .replaced()
            .map(|s| status_to_py(py, s))
            .transpose()
    }

    fn status<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        status_to_py(py, &self.inner.status())
    }

    /// Publish one frame (bytes or a uint8 array of frame_size bytes); its position.
    fn publish(&mut self, frame: &Bound<'_, PyAny>) -> PyResult<u64> {
        let inner = &mut self.inner;
        with_bytes(frame, |b| inner.publish(b).map_err(to_py))
    }

    /// Publish frames back to back (n x frame_size bytes); the first one's position.
    fn publish_batch(&mut self, py: Python<'_>, frames: &Bound<'_, PyAny>) -> PyResult<u64> {
        let inner = &mut self.inner;
        with_bytes(frames, |b| {
            py.detach(|| inner.publish_batch(b)).map_err(to_py)
        })
    }

    fn lock_memory(&self) -> PyResult<()> {
        self.inner.lock_memory().map_err(to_py)
    }

    fn heartbeat(&self) {
        self.inner.heartbeat();
    }

    /// (pid, position, lag, lost, gaps, attached_ns, alive) of every attached reader.
    fn readers(&self) -> Vec<(u64, u64, u64, u64, u64, u64, bool)> {
        self.inner
            .readers()
            .into_iter()
            .map(|r| {
                (
                    r.pid,
                    r.position,
                    r.lag,
                    r.lost,
                    r.gaps,
                    r.attached_ns,
                    r.alive,
                )
            })
            .collect()
    }

    #[pyo3(signature = (unlink = true))]
    fn close(&mut self, unlink: bool) -> PyResult<()> {
        self.inner.close(unlink).map_err(to_py)
    }
}

#[pyclass(name = "RingReader", module = "featureplane._core")]
pub struct PyRingReader {
    inner: RingReader,
}

#[pymethods]
impl PyRingReader {
    #[new]
    #[pyo3(signature = (name, *, feature_set_id, schema_hash64, frame_size, start = "live",
                        allow_stale = false))]
    fn new(
        name: &str,
        feature_set_id: String,
        schema_hash64: u64,
        frame_size: usize,
        start: &str,
        allow_stale: bool,
    ) -> PyResult<Self> {
        let start = match start {
            "live" => Start::Live,
            "oldest" => Start::Oldest,
            other => {
                return Err(PyValueError::new_err(format!(
                    "start must be 'live' or 'oldest', got {other:?}"
                )))
            }
        };
        let expect = Expect {
            feature_set_id,
            schema_hash64,
            frame_size,
        };
        let inner = RingReader::attach(name, &expect, start, allow_stale).map_err(to_py)?;
        Ok(Self { inner })
    }

    /// Copy up to `max_frames` frames into `out` (a writable uint8 array), waiting up to
    /// `timeout_ns` (spinning the first `spin_ns`); (start, frames, lost, closed).
    #[pyo3(signature = (out, max_frames, timeout_ns = 0, spin_ns = 0))]
    fn read_into(
        &mut self,
        py: Python<'_>,
        mut out: PyReadwriteArray1<'_, u8>,
        max_frames: usize,
        timeout_ns: u64,
        spin_ns: u64,
    ) -> PyResult<(u64, usize, u64, bool)> {
        let out = out
            .as_slice_mut()
            .map_err(|_| PyValueError::new_err("out must be a contiguous uint8 array"))?;
        let inner = &mut self.inner;
        let r = if timeout_ns == 0 {
            inner.read(out, max_frames)
        } else {
            py.detach(|| {
                inner.read_wait(
                    out,
                    max_frames,
                    Duration::from_nanos(timeout_ns),
                    Duration::from_nanos(spin_ns),
                )
            })
        };
        Ok((r.start, r.frames, r.lost, r.closed))
    }

    /// Each symbol's newest frame older than the reader's position into `out`; how many.
    fn latest_into(&self, mut out: PyReadwriteArray1<'_, u8>) -> PyResult<usize> {
        let out = out
            .as_slice_mut()
            .map_err(|_| PyValueError::new_err("out must be a contiguous uint8 array"))?;
        Ok(self.inner.latest(out))
    }

    fn meta<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.meta())
    }

    fn status<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        status_to_py(py, &self.inner.status())
    }

    fn lock_memory(&self) -> PyResult<()> {
        self.inner.lock_memory().map_err(to_py)
    }

    fn writer_alive(&self) -> bool {
        self.inner.writer_alive()
    }

    #[getter]
    fn name(&self) -> &str {
        self.inner.name()
    }

    #[getter]
    fn position(&self) -> u64 {
        self.inner.position()
    }

    #[getter]
    fn cursor(&self) -> u64 {
        self.inner.cursor()
    }

    #[getter]
    fn lag(&self) -> u64 {
        self.inner.lag()
    }

    #[getter]
    fn lost(&self) -> u64 {
        self.inner.lost()
    }

    #[getter]
    fn gaps(&self) -> u64 {
        self.inner.gaps()
    }

    #[getter]
    fn registered(&self) -> bool {
        self.inner.registered()
    }

    #[getter]
    fn capacity(&self) -> u64 {
        self.inner.capacity()
    }

    #[getter]
    fn max_symbols(&self) -> usize {
        self.inner.max_symbols()
    }

    #[getter]
    fn frame_size(&self) -> usize {
        self.inner.frame_size()
    }

    #[getter]
    fn epoch(&self) -> u64 {
        self.inner.epoch()
    }
}

/// Publish `n` frames from `template`, one every `interval_ns` (sleeping, or spinning when
/// `spin_pacing`), stamped with their index (seq) and send time (local_ts_ns, monotonic).
#[pyfunction]
#[pyo3(signature = (writer, template, n, interval_ns, spin_pacing = false))]
pub fn ring_bench_write_paced(
    py: Python<'_>,
    mut writer: PyRefMut<'_, PyRingWriter>,
    template: &[u8],
    n: u64,
    interval_ns: u64,
    spin_pacing: bool,
) -> PyResult<()> {
    let w = &mut writer.inner;
    py.detach(|| bench::write_paced(w, template, n, interval_ns, spin_pacing))
        .map_err(to_py)
}

/// The clock the latency loops stamp with (CLOCK_MONOTONIC ns).
#[pyfunction]
pub fn ring_bench_clock_ns() -> u64 {
    bench::monotonic_ns()
}

/// One clock read's cost: (median, largest) ns between back-to-back reads of `samples`.
#[pyfunction]
pub fn ring_bench_clock_cost(py: Python<'_>, samples: usize) -> (u64, u64) {
    py.detach(|| bench::clock_cost_ns(samples))
}

/// Read `n` frames one at a time, spinning `spin_ns` in each wait, then parked:
/// (frames, lost, wrong, latencies_ns, elapsed_ns).
#[pyfunction]
pub fn ring_bench_read_latencies<'py>(
    py: Python<'py>,
    mut reader: PyRefMut<'_, PyRingReader>,
    n: u64,
    timeout_ns: u64,
    spin_ns: u64,
) -> (u64, u64, u64, Bound<'py, PyArray1<u64>>, u64) {
    let r = &mut reader.inner;
    let got = py.detach(|| {
        bench::read_latencies(
            r,
            n,
            Duration::from_nanos(timeout_ns),
            Duration::from_nanos(spin_ns),
        )
    });
    (
        got.frames,
        got.lost,
        got.wrong,
        got.latencies_ns.into_pyarray(py),
        got.elapsed_ns,
    )
}

/// Publish `n` frames from `template` in batches, flat out; the ns it took.
#[pyfunction]
pub fn ring_bench_write_flood(
    py: Python<'_>,
    mut writer: PyRefMut<'_, PyRingWriter>,
    template: &[u8],
    n: u64,
    batch: usize,
) -> PyResult<u64> {
    let w = &mut writer.inner;
    py.detach(|| bench::write_flood(w, template, n, batch))
        .map_err(to_py)
}

/// Read batches until the ring closes: (frames, lost, wrong, elapsed_ns).
#[pyfunction]
pub fn ring_bench_read_flood(
    py: Python<'_>,
    mut reader: PyRefMut<'_, PyRingReader>,
    batch: usize,
    timeout_ns: u64,
) -> (u64, u64, u64, u64) {
    let r = &mut reader.inner;
    let got = py.detach(|| bench::read_flood(r, batch, Duration::from_nanos(timeout_ns)));
    (got.frames, got.lost, got.wrong, got.elapsed_ns)
}
