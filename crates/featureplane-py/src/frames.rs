//! Frames and values -> numpy columns and Python tuples.

use featureplane_core::features::schema::{dtype, Dtype, Values, N_FEATURES};
use featureplane_core::frames::Column;
use featureplane_core::FrameColumns;
use numpy::IntoPyArray;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};

/// (header arrays..., [value arrays]) with every Vec moved into numpy without a copy.
pub fn columns_to_py(py: Python<'_>, cols: FrameColumns) -> PyResult<Bound<'_, PyTuple>> {
    let values = PyList::empty(py);
    for column in cols.values {
        match column {
            Column::I64(v) => values.append(v.into_pyarray(py))?,
            Column::F64(v) => values.append(v.into_pyarray(py))?,
            Column::U32(v) => values.append(v.into_pyarray(py))?,
        }
    }
    let items: [Bound<'_, PyAny>; 9] = [
        cols.input_index.into_pyarray(py).into_any(),
        cols.symbol_id.into_pyarray(py).into_any(),
        cols.seq.into_pyarray(py).into_any(),
        cols.source_ts_ns.into_pyarray(py).into_any(),
        cols.local_ts_ns.into_pyarray(py).into_any(),
        cols.changed_mask.into_pyarray(py).into_any(),
        cols.warmup_ready_mask.into_pyarray(py).into_any(),
        cols.quality_flags.into_pyarray(py).into_any(),
        values.into_any(),
    ];
    PyTuple::new(py, items)
}

fn value_to_py<'py>(py: Python<'py>, values: &Values, i: usize) -> Bound<'py, PyAny> {
    // Ints and floats convert infallibly (their error type is `Infallible`).
    match dtype(i) {
        Dtype::I64 => {
            let Ok(v) = values.i64(i).into_pyobject(py);
            v.into_any()
        }
        Dtype::F64 => {
            let Ok(v) = values.f64(i).into_pyobject(py);
            v.into_any()
        }
        Dtype::U32 => {
            let Ok(v) = values.u32(i).into_pyobject(py);
            v.into_any()
        }
    }
}

/// Values in schema order as Python ints and floats.
pub fn values_to_py<'py>(py: Python<'py>, values: &Values) -> PyResult<Bound<'py, PyTuple>> {
    PyTuple::new(py, (0..N_FEATURES).map(|i| value_to_py(py, values, i)))
}

/// The last values tuple handed out for each symbol, to reuse its objects.
#[derive(Default)]
pub struct ValuesCache {
    last: Vec<Option<(Values, Py<PyTuple>)>>,
}

impl ValuesCache {
    /// `values` as a tuple, reusing the Python object of every value whose bits equal the
    /// symbol's previous tuple's (a frame changes a few values; making the other objects anew
    /// is most of the cost of the tuple).
    pub fn tuple<'py>(
        &mut self,
        py: Python<'py>,
        symbol_id: u32,
        values: &Values,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let sid = symbol_id as usize;
        if self.last.len() <= sid {
            self.last.resize_with(sid + 1, || None);
        }
        let tuple = match &self.last[sid] {
            Some((old, cached)) => {
                let cached = cached.bind(py);
                // Straight from the iterator: no Vec per frame. The cached tuple is read only
                // where the bits are equal (a changed value never needs its old object);
                // reading it cannot fail (it has N_FEATURES items), and if it did, the value
                // is made anew.
                PyTuple::new(
                    py,
                    (0..N_FEATURES).map(|i| {
                        if old.0[i] == values.0[i] {
                            if let Ok(item) = cached.get_item(i) {
                                return item;
                            }
                        }
                        value_to_py(py, values, i)
                    }),
                )?
            }
            None => values_to_py(py, values)?,
        };
        self.last[sid] = Some((*values, tuple.clone().unbind()));
        Ok(tuple)
    }
}
