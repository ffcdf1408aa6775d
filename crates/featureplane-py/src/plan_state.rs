//! Saved plan-engine state (`featureplane_core::plan::Saved`) <-> Python data.
//!
//! The tree maps one to one: None, bool, int, float, list and dict (str keys, in order). A
//! float NaN other than Python's own `float("nan")` travels as `"f64:<16 hex digits>"`, the
//! form `featureplane.plan_state.v1` writes (a negative NaN's sign must survive JSON). Reading,
//! anything else (another type, an int past i128, a tree nested deeper than a state is) is a
//! `ValueError` naming the field.

use featureplane_core::plan::Saved;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

const NAN_TAG: &str = "f64:";
/// A state is six levels deep (symbols, features, nodes, a node, a window, a sample): deeper
/// input is not a state, and the bound keeps the recursion's stack small.
const MAX_DEPTH: usize = 12;

pub fn saved_to_py<'py>(py: Python<'py>, v: &Saved) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Saved::Null => py.None().into_bound(py),
        Saved::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Saved::Int(x) => x.into_pyobject(py)?.into_any(),
        Saved::F64(x) if x.is_nan() && x.to_bits() != f64::NAN.to_bits() => {
            PyString::new(py, &format!("{NAN_TAG}{:016x}", x.to_bits())).into_any()
        }
        Saved::F64(x) => PyFloat::new(py, *x).into_any(),
        Saved::List(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(saved_to_py(py, item)?)?;
            }
            list.into_any()
        }
        Saved::Map(items) => {
            let dict = PyDict::new(py);
            for (k, item) in items {
                dict.set_item(k, saved_to_py(py, item)?)?;
            }
            dict.into_any()
        }
    })
}

fn bad(path: &str, what: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(format!("plan state: {path}: {what}"))
}

/// A NaN written by its bits; any other text is refused.
fn tagged_nan(text: &str, path: &str) -> PyResult<f64> {
    let digits = text
        .strip_prefix(NAN_TAG)
        .filter(|d| d.len() == 16)
        .ok_or_else(|| bad(path, format!("{text:?} is not {NAN_TAG} and 16 hex digits")))?;
    let bits = u64::from_str_radix(digits, 16)
        .map_err(|_| bad(path, format!("{text:?} is not {NAN_TAG} and 16 hex digits")))?;
    let x = f64::from_bits(bits);
    if !x.is_nan() {
        return Err(bad(
            path,
            format!("{text:?} is not a NaN: write it as a number"),
        ));
    }
    Ok(x)
}

pub fn saved_from_py(obj: &Bound<'_, PyAny>, path: &str, depth: usize) -> PyResult<Saved> {
    if depth > MAX_DEPTH {
        return Err(bad(path, "nested deeper than a state"));
    }
    if obj.is_none() {
        return Ok(Saved::Null);
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Saved::Bool(b.is_true()));
    }
    if obj.is_instance_of::<PyInt>() {
        return obj
            .extract::<i128>()
            .map(Saved::Int)
            .map_err(|_| bad(path, "an int beyond i128"));
    }
    if let Ok(x) = obj.cast::<PyFloat>() {
        return Ok(Saved::F64(x.value()));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Saved::F64(tagged_nan(&s.to_cow()?, path)?));
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        let mut items = Vec::with_capacity(d.len());
        for (k, v) in d.iter() {
            let key: String = k
                .extract()
                .map_err(|_| bad(path, "a mapping with a key that is not a str"))?;
            let at = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            items.push((key, saved_from_py(&v, &at, depth + 1)?));
        }
        return Ok(Saved::Map(items));
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        let mut items = Vec::new();
        for (i, v) in obj.try_iter()?.enumerate() {
            items.push(saved_from_py(&v?, &format!("{path}[{i}]"), depth + 1)?);
        }
        return Ok(Saved::List(items));
    }
    Err(bad(
        path,
        format!("a {} is not a value of a state", obj.get_type().name()?),
    ))
}
