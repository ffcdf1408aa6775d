//! `FeatureUpdateFrameV1` objects made here, so a per-message call returns the frame itself.
//!
//! The frame is a frozen, slotted Python dataclass. Its generated `__init__` sets each field
//! through `object.__setattr__`, and even a Python function setting the slots through their
//! member descriptors costs more than the kernel's work on a trade. Here the object is
//! allocated by its class's own allocator and each slot is set by its member descriptor's C
//! setter, which checks the object's type and stores the field where the class keeps it: the
//! same object `__init__` would give, for about a tenth of the cost. Both are stable-ABI calls.
//!
//! Registration (`FrameMaker::new`) checks the result against the class's own constructor once;
//! a class that is not exactly a slotted dataclass of these fields, or a check that fails, makes
//! the maker call the class like any caller would.
//!
//! One of the three modules of this crate with `unsafe`, beside `message_rows` and `recycled`
//! (the workspace denies it elsewhere): calling a type's own slot functions is a C-API call
//! that nothing safe in pyo3 offers. Each block says what makes it sound.

#![allow(unsafe_code)]

use std::convert::Infallible;

use featureplane_core::frames::FrameHeader;
use pyo3::exceptions::PyTypeError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple, PyType};
use pyo3::{BoundObject, PyTraverseError, PyVisit};

use crate::message_rows::MessageInput;

/// The frame's fields in the order of its constructor's arguments.
pub const FIELDS: [&str; 10] = [
    "symbol",
    "seq",
    "source_ts_ns",
    "local_ts_ns",
    "feature_set_id",
    "changed_mask",
    "warmup_ready_mask",
    "quality_flags",
    "values",
    "marker",
];

struct Slots {
    alloc: ffi::allocfunc,
    setters: Vec<(Py<PyAny>, ffi::descrsetfunc)>,
}

/// A header value's bits and its object.
type Reused = Option<(u64, Py<PyAny>)>;

/// Makes the frames of one engine: its class, feature set id and symbol names.
pub struct FrameMaker {
    cls: Py<PyType>,
    slots: Option<Slots>,
    feature_set_id: Py<PyString>,
    marker: Py<PyString>,
    names: Vec<Py<PyString>>,
    /// Per symbol, the last `source_ts_ns`, `changed_mask` and `warmup_ready_mask` handed out
    /// and their objects: the ready mask stays put once a symbol is warm, and about half of
    /// the frames repeat the other two, so an equal value reuses its int.
    reused: Vec<[Reused; 3]>,
}

impl FrameMaker {
    /// A maker for `cls` (`FeatureUpdateFrameV1`), checked once against `cls(...)`.
    pub fn new(
        cls: &Bound<'_, PyType>,
        feature_set_id: &Bound<'_, PyString>,
        marker: &Bound<'_, PyString>,
    ) -> PyResult<Self> {
        let mut maker = Self {
            cls: cls.clone().unbind(),
            slots: slots_of(cls)?,
            feature_set_id: feature_set_id.clone().unbind(),
            marker: marker.clone().unbind(),
            names: Vec::new(),
            reused: Vec::new(),
        };
        if maker.slots.is_some() && !maker.same_as_constructor(cls.py())? {
            maker.slots = None;
        }
        Ok(maker)
    }

    /// True when frames are filled slot by slot (else the class is called).
    pub fn fills_slots(&self) -> bool {
        self.slots.is_some()
    }

    /// The symbol names by id, replacing the last list.
    pub fn set_names(&mut self, names: Vec<Bound<'_, PyString>>) {
        self.names = names.into_iter().map(Bound::unbind).collect();
    }

    /// The frame of `header` with `values`.
    pub fn make<'py>(
        &mut self,
        py: Python<'py>,
        h: &FrameHeader,
        values: Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let symbol = self
            .names
            .get(h.symbol_id as usize)
            .ok_or_else(|| PyTypeError::new_err(format!("no name for symbol {}", h.symbol_id)))?
            .bind(py)
            .clone()
            .into_any();
        let sid = h.symbol_id as usize;
        if self.reused.len() <= sid {
            self.reused.resize_with(sid + 1, Default::default);
        }
        let [source_ts, changed, ready] = &mut self.reused[sid];
        let fields: [Bound<'py, PyAny>; 10] = [
            symbol,
            h.seq.into_pyobject(py)?.into_any(),
            reuse(py, source_ts, h.source_ts_ns as u64, || {
                int(py, h.source_ts_ns)
            }),
            h.local_ts_ns.into_pyobject(py)?.into_any(),
            self.feature_set_id.bind(py).clone().into_any(),
            reuse(py, changed, h.changed_mask, || int(py, h.changed_mask)),
            reuse(py, ready, h.warmup_ready_mask, || {
                int(py, h.warmup_ready_mask)
            }),
            h.quality_flags.into_pyobject(py)?.into_any(),
            values.into_any(),
            self.marker.bind(py).clone().into_any(),
        ];
        self.build(py, fields)
    }

    fn build<'py>(
        &self,
        py: Python<'py>,
        fields: [Bound<'py, PyAny>; 10],
    ) -> PyResult<Bound<'py, PyAny>> {
        let cls = self.cls.bind(py);
        let Some(slots) = &self.slots else {
            return cls.call1(PyTuple::new(py, fields)?);
        };
        // SAFETY: `alloc` is the class's own tp_alloc (what `object.__new__` calls), given the
        // class and no items; a null return has set a Python error. Each setter is the
        // member descriptor's tp_descr_set with its own descriptor; it checks the object is an
        // instance of the descriptor's class before it stores (a new reference) into the slot.
        unsafe {
            let raw = (slots.alloc)(cls.as_ptr().cast(), 0);
            if raw.is_null() {
                return Err(PyErr::fetch(py));
            }
            let frame = Bound::from_owned_ptr(py, raw);
            for ((descr, set), value) in slots.setters.iter().zip(&fields) {
                if set(descr.as_ptr(), frame.as_ptr(), value.as_ptr()) != 0 {
                    return Err(PyErr::fetch(py));
                }
            }
            Ok(frame)
        }
    }

    /// The slot-filled frame of a probe equals `cls(*probe)` field by field (the same objects)
    /// and in its repr.
    fn same_as_constructor(&self, py: Python<'_>) -> PyResult<bool> {
        let values = PyTuple::new(py, [1.5f64.into_pyobject(py)?.into_any()])?;
        let probe = |maker: &Self| -> PyResult<[Bound<'_, PyAny>; 10]> {
            Ok([
                PyString::new(py, "X").into_any(),
                1i64.into_pyobject(py)?.into_any(),
                2i64.into_pyobject(py)?.into_any(),
                3i64.into_pyobject(py)?.into_any(),
                maker.feature_set_id.bind(py).clone().into_any(),
                4u64.into_pyobject(py)?.into_any(),
                5u64.into_pyobject(py)?.into_any(),
                6u32.into_pyobject(py)?.into_any(),
                values.clone().into_any(),
                maker.marker.bind(py).clone().into_any(),
            ])
        };
        let args = probe(self)?;
        let want = self.cls.bind(py).call1(PyTuple::new(py, args.clone())?)?;
        let got = self.build(py, args)?;
        for name in FIELDS {
            if !want.getattr(name)?.is(&got.getattr(name)?) {
                return Ok(false);
            }
        }
        Ok(want.repr()?.to_str()? == got.repr()?.to_str()?)
    }
}

/// The object of `value` (its bits as u64): the last one when `value` is the last value,
/// else a new one made by `make`, remembered in `last`.
fn reuse<'py>(
    py: Python<'py>,
    last: &mut Reused,
    value: u64,
    make: impl FnOnce() -> Bound<'py, PyAny>,
) -> Bound<'py, PyAny> {
    if let Some((bits, object)) = last {
        if *bits == value {
            return object.bind(py).clone();
        }
    }
    let object = make();
    *last = Some((value, object.clone().unbind()));
    object
}

/// A Python int (ints convert infallibly).
fn int<'py>(
    py: Python<'py>,
    value: impl IntoPyObject<'py, Error = Infallible>,
) -> Bound<'py, PyAny> {
    let Ok(v) = value.into_pyobject(py);
    v.into_any().into_bound()
}

/// The allocator and slot setters of `cls`, or None when `cls` is not a plain slotted class of
/// exactly `FIELDS` (a `__post_init__` or a field of another kind would be skipped).
fn slots_of(cls: &Bound<'_, PyType>) -> PyResult<Option<Slots>> {
    let py = cls.py();
    let declared = cls
        .getattr("__slots__")
        .and_then(|s| s.extract::<Vec<String>>());
    let Ok(declared) = declared else {
        return Ok(None); // no __slots__, or not a sequence of names
    };
    if declared != FIELDS || cls.hasattr("__post_init__")? {
        return Ok(None);
    }
    let member = py
        .import("types")?
        .getattr("MemberDescriptorType")?
        .cast_into::<PyType>()?;
    let own = cls.getattr("__dict__")?;
    let mut setters = Vec::with_capacity(FIELDS.len());
    for name in FIELDS {
        let descr = own.get_item(name)?;
        if !descr.get_type().is(&member) {
            return Ok(None);
        }
        // SAFETY: PyType_GetSlot on a type object (member_descriptor) for a slot id it defines.
        let set = unsafe { ffi::PyType_GetSlot(member.as_ptr().cast(), ffi::Py_tp_descr_set) };
        if set.is_null() {
            return Ok(None);
        }
        // SAFETY: the slot Py_tp_descr_set holds a descrsetfunc.
        let set: ffi::descrsetfunc = unsafe { std::mem::transmute(set) };
        setters.push((descr.unbind(), set));
    }
    // SAFETY: as above, Py_tp_alloc of the class holds its allocfunc.
    let alloc = unsafe { ffi::PyType_GetSlot(cls.as_ptr().cast(), ffi::Py_tp_alloc) };
    if alloc.is_null() {
        return Ok(None);
    }
    // SAFETY: the slot Py_tp_alloc holds an allocfunc.
    let alloc: ffi::allocfunc = unsafe { std::mem::transmute(alloc) };
    Ok(Some(Slots { alloc, setters }))
}

/// An engine's per-message state both engines share: its frame maker, once `frame_type` is
/// set (behind `frame_type`, `frame_names` and `process_frame`), and its message input, once
/// `message_input` is set (behind `process` and `process_into` on numpy arrays).
#[derive(Default)]
pub struct Frames {
    maker: Option<FrameMaker>,
    input: Option<MessageInput>,
}

impl Frames {
    /// `frame_type`: frames of class `cls` from now on; true when filled slot by slot.
    pub fn set_type(
        &mut self,
        cls: &Bound<'_, PyType>,
        feature_set_id: &Bound<'_, PyString>,
        marker: &Bound<'_, PyString>,
    ) -> PyResult<bool> {
        let maker = FrameMaker::new(cls, feature_set_id, marker)?;
        let fills = maker.fills_slots();
        self.maker = Some(maker);
        Ok(fills)
    }

    /// `frame_names`: the symbol names by id.
    pub fn set_names(&mut self, names: Vec<Bound<'_, PyString>>) -> PyResult<()> {
        self.maker
            .as_mut()
            .ok_or_else(no_frame_type)?
            .set_names(names);
        Ok(())
    }

    /// The maker, or the error of a per-message call before `frame_type`.
    pub fn maker(&mut self) -> PyResult<&mut FrameMaker> {
        self.maker.as_mut().ok_or_else(no_frame_type)
    }

    /// `message_input`: per-message input as numpy arrays from now on.
    pub fn set_input(&mut self, input: MessageInput) {
        self.input = Some(input);
    }

    /// The message input (a new reference to each part), or the error of `process` before
    /// `message_input`.
    pub fn input(&self, py: Python<'_>) -> PyResult<MessageInput> {
        self.input
            .as_ref()
            .map(|input| input.clone_ref(py))
            .ok_or_else(|| PyTypeError::new_err("process needs message_input(...) first"))
    }

    /// The engine's `__traverse__`: the fallbacks of the message input.
    pub fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        self.input
            .as_ref()
            .map_or(Ok(()), |input| input.traverse(visit))
    }

    /// The engine's `__clear__`.
    pub fn clear(&mut self) {
        self.input = None;
    }
}

fn no_frame_type() -> PyErr {
    PyTypeError::new_err("process_frame needs frame_type(...) first")
}
