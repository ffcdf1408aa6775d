//! Feature families (one per file) and the lob_shared_v1 set built from them.
//!
//! The floating-point operations of every family are the reference's, in the reference's
//! order (`python/featureplane/features/*.py`), so the f64 features come out bit-identical.

pub mod l1;
pub mod lob_shared_v1;
pub mod ofi;
pub mod rolling;
pub mod schema;

/// `x` rounded to the nearest f64 (ties to even), as Python's `float(int)` does.
///
/// i128 to f64 is a software routine; through i64 it is one instruction, and both round the same
/// exact integer the same way. LLVM sees that too and folds the two arms back into the slow
/// routine, so the fast arm goes through `black_box` (a register move) to keep it.
#[inline]
pub(crate) fn to_f64(x: i128) -> f64 {
    match i64::try_from(x) {
        Ok(small) => std::hint::black_box(small) as f64,
        Err(_) => x as f64,
    }
}
