//! Core errors -> the package's exception classes (`featureplane.errors`), and panics ->
//! `PanicException`.

use std::any::Any;

use featureplane_core::{Error, ErrorClass};
use pyo3::exceptions::PyValueError;
use pyo3::panic::PanicException;
use pyo3::{import_exception, PyErr};

import_exception!(featureplane.errors, FeatureplaneError);
import_exception!(featureplane.errors, InvalidMessageError);
import_exception!(featureplane.errors, SchemaMismatchError);
import_exception!(featureplane.errors, UnknownSymbolError);
import_exception!(featureplane.errors, TransportError);
import_exception!(featureplane.errors, RingNotFoundError);
import_exception!(featureplane.errors, RingBusyError);
import_exception!(featureplane.errors, StaleRingError);

pub fn to_py(err: Error) -> PyErr {
    let msg = err.to_string();
    match err.class() {
        ErrorClass::InvalidMessage => InvalidMessageError::new_err(msg),
        ErrorClass::UnknownSymbol => UnknownSymbolError::new_err(msg),
        ErrorClass::InvalidArgument => PyValueError::new_err(msg),
        ErrorClass::SchemaMismatch => SchemaMismatchError::new_err(msg),
        ErrorClass::Transport => TransportError::new_err(msg),
        ErrorClass::RingNotFound => RingNotFoundError::new_err(msg),
        ErrorClass::RingBusy => RingBusyError::new_err(msg),
        ErrorClass::StaleRing => StaleRingError::new_err(msg),
    }
}

/// A caught panic as the exception pyo3 itself would raise (a `BaseException`: it signals a
/// bug in the kernel, not bad input).
pub fn from_panic(payload: Box<dyn Any + Send>) -> PyErr {
    let what = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panic in the Rust kernel".to_string());
    PanicException::new_err(format!("featureplane internal error: {what}"))
}

pub fn poisoned() -> PyErr {
    FeatureplaneError::new_err(
        "this engine hit an internal error (a Rust panic) and its state is unknown; \
         build a new engine",
    )
}
