//! Ridge regression with one penalty per feature: the smooth instance of the generic layer,
//! whose Jacobian has a closed form to test against.
//!
//! ```text
//! β̂(λ) = argmin_β (1/2n) ‖y − X β‖² + ½ Σ_j λ_j β_j²          X: n × p, λ ∈ R^p, λ_j ≥ 0
//! F(β, λ) = Xᵀ(X β − y)/n + λ ⊙ β = 0
//! ∂₁F = H = XᵀX/n + diag(λ)   (symmetric positive definite when some λ_j > 0 or X has rank p)
//! ∂₂F = diag(β)               ⇒   J = ∂β̂/∂λ = −H⁻¹ diag(β̂)
//! ```

use crate::system::{ImplicitSystem, Structure};
use crate::ImplicitError;
use ho_linalg::Cholesky;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut1, Zip};
use std::cell::RefCell;

/// A ridge problem (data and per-feature penalties) with its exact solution.
#[derive(Debug, Clone)]
pub struct Ridge {
    /// Design `X` (n × p).
    pub x: Array2<f64>,
    /// Response `y` (length n).
    pub y: Array1<f64>,
    /// Penalties `λ` (length p).
    pub lambdas: Array1<f64>,
}

impl Ridge {
    /// `H = XᵀX/n + diag(λ)`.
    pub fn hessian(&self) -> Array2<f64> {
        let n = self.x.nrows() as f64;
        let mut h = self.x.t().dot(&self.x) / n;
        for (j, l) in self.lambdas.iter().enumerate() {
            h[[j, j]] += l;
        }
        h
    }

    /// `β̂ = H⁻¹ Xᵀ y / n` by Cholesky.
    ///
    /// # Errors
    /// [`ImplicitError::DimensionMismatch`] for inconsistent shapes, and
    /// [`ImplicitError::Linalg`] when `H` is not positive definite.
    pub fn solve(&self) -> Result<Array1<f64>, ImplicitError> {
        let (n, p) = self.x.dim();
        if self.y.len() != n {
            return Err(ImplicitError::DimensionMismatch {
                expected: n,
                found: self.y.len(),
            });
        }
        if self.lambdas.len() != p {
            return Err(ImplicitError::DimensionMismatch {
                expected: p,
                found: self.lambdas.len(),
            });
        }
        let c = Cholesky::factor(self.hessian().view())?;
        let mut b = self.x.t().dot(&self.y) / n as f64;
        c.solve_inplace(b.view_mut())?;
        Ok(b)
    }

    /// The closed-form Jacobian `J = −H⁻¹ diag(β̂)` (p × p).
    ///
    /// # Errors
    /// As [`Ridge::solve`].
    pub fn closed_form_jacobian(
        &self,
        beta: ArrayView1<'_, f64>,
    ) -> Result<Array2<f64>, ImplicitError> {
        let p = self.x.ncols();
        let c = Cholesky::factor(self.hessian().view())?;
        let mut j = Array2::zeros((p, p));
        for k in 0..p {
            let mut col = Array1::zeros(p);
            col[k] = -beta[k];
            c.solve_inplace(col.view_mut())?;
            j.column_mut(k).assign(&col);
        }
        Ok(j)
    }

    /// The implicit system at `beta` (normally `β̂`).
    pub fn system<'a>(&'a self, beta: ArrayView1<'a, f64>) -> RidgeSystem<'a> {
        RidgeSystem {
            x: self.x.view(),
            lambdas: self.lambdas.view(),
            beta,
            scratch: RefCell::new(Array1::zeros(self.x.nrows())),
        }
    }
}

/// The matrix-free optimality condition of [`Ridge`] at `β`:
/// `∂₁F v = Xᵀ(X v)/n + λ ⊙ v`, `∂₂F t = β ⊙ t`.
pub struct RidgeSystem<'a> {
    x: ArrayView2<'a, f64>,
    lambdas: ArrayView1<'a, f64>,
    beta: ArrayView1<'a, f64>,
    scratch: RefCell<Array1<f64>>,
}

impl ImplicitSystem for RidgeSystem<'_> {
    fn n_active(&self) -> usize {
        self.x.ncols()
    }
    fn n_hyper(&self) -> usize {
        self.lambdas.len()
    }
    fn structure(&self) -> Structure {
        Structure::SymmetricPositiveDefinite
    }
    fn jvp_theta(&self, v: ArrayView1<'_, f64>, mut out: ArrayViewMut1<'_, f64>) {
        let mut xv = self.scratch.borrow_mut();
        let n = self.x.nrows() as f64;
        ndarray::linalg::general_mat_vec_mul(1.0, &self.x, &v, 0.0, &mut *xv);
        ndarray::linalg::general_mat_vec_mul(1.0 / n, &self.x.t(), &*xv, 0.0, &mut out);
        Zip::from(&mut out)
            .and(&self.lambdas)
            .and(&v)
            .for_each(|o, &l, &vi| *o += l * vi);
    }
    fn vjp_theta(&self, w: ArrayView1<'_, f64>, out: ArrayViewMut1<'_, f64>) {
        self.jvp_theta(w, out);
    }
    fn jvp_hyper(&self, t: ArrayView1<'_, f64>, mut out: ArrayViewMut1<'_, f64>) {
        Zip::from(&mut out)
            .and(&self.beta)
            .and(&t)
            .for_each(|o, &b, &ti| *o = b * ti);
    }
    fn vjp_hyper(&self, w: ArrayView1<'_, f64>, out: ArrayViewMut1<'_, f64>) {
        self.jvp_hyper(w, out);
    }
}
