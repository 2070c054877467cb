//! The GLASSO optimality condition as an [`ImplicitSystem`] (docs/implicit-diff.md §3–§4).
//!
//! ```text
//! x = vec(Θ)_E (|E| ordered pairs),  λ = vec(Λ) (all p² ordered entries, row-major)
//! F(Θ_E, Λ) = (S − Θ⁻¹ + Λ ⊙ s)_E = 0
//! ∂₁F v = (W V W)_E = M v          (symmetric positive definite)
//! ∂₂F t = (s ⊙ T)_E,   (∂₂F)ᵀ w = s ⊙ W_E scattered to p × p (0 off E)
//! ```

use super::active::ActiveSet;
use super::operator::{jacobi_preconditioner, Kernel, RestrictedKronecker};
use crate::system::{ImplicitSystem, Structure};
use crate::ImplicitError;
use ho_linalg::{JacobiPreconditioner, LinearOperator};
use ndarray::{ArrayView1, ArrayView2, ArrayViewMut1};

/// The preconditioner of the CG solves with `M = (W ⊗ W)_{E,E}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreconditionerKind {
    /// Plain CG.
    None,
    /// `diag(M)⁻¹`, `diag(M)_(ij) = W_ii W_jj`.
    Jacobi,
    /// The restricted Kronecker inverse `v ↦ (Θ̂ V Θ̂)_E`, exact when E is full
    /// (docs/implicit-diff.md §7).
    Kronecker,
}

enum Preconditioner<'a> {
    None,
    Jacobi(JacobiPreconditioner),
    Kronecker(Box<RestrictedKronecker<'a>>),
}

/// The GLASSO optimality condition at a fit `(Θ̂, W)` on its support.
pub struct GlassoSystem<'a> {
    active: &'a ActiveSet,
    operator: RestrictedKronecker<'a>,
    preconditioner: Preconditioner<'a>,
}

impl<'a> GlassoSystem<'a> {
    /// The system at Θ̂ (`precision`) with `W = Θ̂⁻¹` (`covariance`) on the support `active`
    /// (normally `ActiveSet::from_precision(precision)`).
    ///
    /// # Errors
    /// [`ImplicitError::DimensionMismatch`] when the shapes disagree, and
    /// [`ImplicitError::Linalg`] when a diagonal entry of W is not positive (Jacobi).
    pub fn new(
        precision: ArrayView2<'a, f64>,
        covariance: ArrayView2<'a, f64>,
        active: &'a ActiveSet,
        kernel: Kernel,
        preconditioner: PreconditionerKind,
    ) -> Result<Self, ImplicitError> {
        let p = active.dim();
        for found in [
            precision.nrows(),
            precision.ncols(),
            covariance.nrows(),
            covariance.ncols(),
        ] {
            if found != p {
                return Err(ImplicitError::DimensionMismatch { expected: p, found });
            }
        }
        let preconditioner = match preconditioner {
            PreconditionerKind::None => Preconditioner::None,
            PreconditionerKind::Jacobi => {
                Preconditioner::Jacobi(jacobi_preconditioner(covariance, active)?)
            }
            PreconditionerKind::Kronecker => Preconditioner::Kronecker(Box::new(
                RestrictedKronecker::new(precision, active, kernel),
            )),
        };
        Ok(Self {
            active,
            operator: RestrictedKronecker::new(covariance, active, kernel),
            preconditioner,
        })
    }

    /// The operator `M`.
    pub fn operator(&self) -> &RestrictedKronecker<'a> {
        &self.operator
    }

    /// The support.
    pub fn active(&self) -> &ActiveSet {
        self.active
    }
}

impl ImplicitSystem for GlassoSystem<'_> {
    fn n_active(&self) -> usize {
        self.active.len()
    }
    fn n_hyper(&self) -> usize {
        self.active.dim() * self.active.dim()
    }
    fn structure(&self) -> Structure {
        Structure::SymmetricPositiveDefinite
    }
    fn jvp_theta(&self, v: ArrayView1<'_, f64>, out: ArrayViewMut1<'_, f64>) {
        self.operator.apply(v, out);
    }
    fn vjp_theta(&self, w: ArrayView1<'_, f64>, out: ArrayViewMut1<'_, f64>) {
        self.operator.apply(w, out);
    }
    fn jvp_hyper(&self, t: ArrayView1<'_, f64>, mut out: ArrayViewMut1<'_, f64>) {
        let p = self.active.dim();
        let signs = self.active.signs();
        for (k, (i, j)) in self.active.pairs().enumerate() {
            out[k] = signs[k] * t[i * p + j];
        }
    }
    fn vjp_hyper(&self, w: ArrayView1<'_, f64>, mut out: ArrayViewMut1<'_, f64>) {
        let p = self.active.dim();
        let signs = self.active.signs();
        out.fill(0.0);
        for (k, (i, j)) in self.active.pairs().enumerate() {
            out[i * p + j] = signs[k] * w[k];
        }
    }
    fn preconditioner(&self) -> Option<&dyn LinearOperator> {
        match &self.preconditioner {
            Preconditioner::None => None,
            Preconditioner::Jacobi(j) => Some(j),
            Preconditioner::Kronecker(k) => Some(&**k),
        }
    }
}
