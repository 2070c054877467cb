//! BLAS-free vector products.
//!
//! ho-outer deliberately calls no BLAS routine: in a workspace where another crate enables
//! ndarray's `blas` feature (ho-linalg does, for its matrix products), every `ArrayBase::dot`
//! monomorphized here would reference `cblas_*` symbols, and binaries that link ho-outer alone
//! (its own tests, doctests and benchmarks) would fail to link. Vectors of length n cost O(n)
//! here anyway, negligible next to one objective evaluation.

use ndarray::{ArrayBase, Data, Ix1};

/// `⟨a, b⟩` for 1-D arrays, without BLAS.
pub(crate) trait Dot {
    /// The inner product with `other` (same length).
    fn vdot<S2: Data<Elem = f64>>(&self, other: &ArrayBase<S2, Ix1>) -> f64;
}

impl<S: Data<Elem = f64>> Dot for ArrayBase<S, Ix1> {
    fn vdot<S2: Data<Elem = f64>>(&self, other: &ArrayBase<S2, Ix1>) -> f64 {
        debug_assert_eq!(self.len(), other.len());
        self.iter().zip(other.iter()).map(|(a, b)| a * b).sum()
    }
}
