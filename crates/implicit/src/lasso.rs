//! The Lasso and the elastic net: the non-smooth instance of the generic layer besides the
//! GLASSO, in two forms (docs/implicit-diff.md §10).
//!
//! ```text
//! β̂(λ) = argmin_β (1/2n) ‖y − X β‖² + λ₁ ‖β‖₁ + (λ₂/2) ‖β‖²       (Lasso: λ₂ = 0)
//! E = supp β̂, s = sign β̂_E, strict complementarity |X_jᵀ(y − Xβ̂)/n| < λ₁ off E
//! ```
//!
//! 1. On the support ([`ElasticNetSupportSystem`], symmetric positive definite: CG):
//!
//! ```text
//! F(β_E, λ) = X_Eᵀ(X_E β_E − y)/n + λ₁ s + λ₂ β_E = 0
//! ∂₁F = X_EᵀX_E/n + λ₂ I,   ∂₂F = [s, β_E]      (hyperparameters λ = (λ₁, λ₂))
//! ```
//!
//! 2. As the fixed point of proximal gradient on every coordinate ([`ProxGradientMap`], with
//!    [`crate::FixedPointResidual`]: not symmetric, BiCGSTAB):
//!
//! ```text
//! T(β, λ) = ST(z, γλ₁),  z = β − γ (Xᵀ(Xβ − y)/n + λ₂ β),  D = diag(1{|z_j| > γλ₁})
//! ∂₁T = D (I − γH),  H = XᵀX/n + λ₂ I;   ∂T/∂λ₁ = −γ D sign(z),  ∂T/∂λ₂ = −γ D β
//! ```
//!
//! Both give the same hypergradient of the validation criterion
//! `C(β) = ‖y_val − X_val β‖² / n_val` ([`validation_mse`]).
//!
//! # References
//! Q. Bertrand, Q. Klopfenstein, M. Blondel, S. Vaiter, A. Gramfort, J. Salmon, *Implicit
//! differentiation of Lasso-type models for hyperparameter optimization*, ICML 2020.

use crate::system::{FixedPointMap, ImplicitSystem, Structure};
use crate::ImplicitError;
use ho_linalg::prox::soft_threshold_scalar;
use ho_linalg::{Cholesky, Status};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut1, Axis};
use std::cell::RefCell;

/// An elastic-net problem (the Lasso when `lambda2 = 0`), no intercept.
#[derive(Debug, Clone)]
pub struct ElasticNet {
    /// Design `X` (n × p), rows are samples.
    pub x: Array2<f64>,
    /// Response `y` (length n).
    pub y: Array1<f64>,
    /// `λ₁ ≥ 0`, the ℓ1 penalty.
    pub lambda1: f64,
    /// `λ₂ ≥ 0`, the ridge penalty.
    pub lambda2: f64,
}

/// Options of [`ElasticNet::fit`].
///
/// | Name | Default | Meaning | Range |
/// |---|---|---|---|
/// | `tol` | 1e-12 | stop the sweeps when max\|Δβ_j\| ≤ tol · max(1, max\|β\|) | > 0 |
/// | `max_iter` | 100000 | coordinate-descent sweeps | ≥ 1 |
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ElasticNetOptions {
    /// Relative tolerance on the coordinate updates.
    pub tol: f64,
    /// Sweep budget.
    pub max_iter: usize,
}

impl Default for ElasticNetOptions {
    fn default() -> Self {
        Self {
            tol: 1e-12,
            max_iter: 100_000,
        }
    }
}

/// A solution `β̂` with its support and certificate.
#[derive(Debug, Clone)]
pub struct ElasticNetFit {
    /// `β̂` (length p).
    pub beta: Array1<f64>,
    /// The support `E` (sorted indices with `β̂_j ≠ 0`).
    pub support: Vec<usize>,
    /// `min_{j∉E} λ₁ − |X_jᵀ(y − Xβ̂)/n|` (`None` when E is every feature).
    pub margin: Option<f64>,
    /// `max_j` distance of `X_jᵀ(y − Xβ̂)/n − λ₂β̂_j` to `λ₁ ∂|β̂_j|`.
    pub kkt_residual: f64,
    /// Coordinate-descent sweeps done.
    pub n_iter: usize,
    /// Whether `tol` was met.
    pub status: Status,
}

impl ElasticNet {
    /// `λ_max = ‖Xᵀ y‖_∞ / n`: every `λ₁ ≥ λ_max` gives `β̂ = 0`.
    pub fn lambda_max(x: ArrayView2<'_, f64>, y: ArrayView1<'_, f64>) -> f64 {
        let n = x.nrows() as f64;
        x.t().dot(&y).iter().fold(0.0_f64, |m, v| m.max(v.abs())) / n
    }

    fn check(&self) -> Result<(), ImplicitError> {
        if self.y.len() != self.x.nrows() {
            return Err(ImplicitError::DimensionMismatch {
                expected: self.x.nrows(),
                found: self.y.len(),
            });
        }
        for (name, value) in [("lambda1", self.lambda1), ("lambda2", self.lambda2)] {
            if !(value >= 0.0 && value.is_finite()) {
                return Err(ImplicitError::InvalidOption {
                    name,
                    value,
                    range: "finite, ≥ 0",
                });
            }
        }
        Ok(())
    }

    /// `g = Xᵀ(y − Xβ)/n − λ₂ β`, minus the gradient of the smooth part.
    fn correlations(&self, beta: ArrayView1<'_, f64>) -> Array1<f64> {
        let n = self.x.nrows() as f64;
        let r = &self.y - &self.x.dot(&beta);
        self.x.t().dot(&r) / n - &(beta.to_owned() * self.lambda2)
    }

    /// Solves by cyclic coordinate descent, then polishes on the support with the closed form
    /// `β_E = (X_EᵀX_E/n + λ₂I)⁻¹ (X_Eᵀy/n − λ₁ s)` (kept when it preserves the signs and
    /// lowers the KKT residual).
    ///
    /// # Errors
    /// [`ImplicitError::DimensionMismatch`], [`ImplicitError::InvalidOption`] for negative
    /// penalties or a bad tolerance.
    pub fn fit(&self, options: &ElasticNetOptions) -> Result<ElasticNetFit, ImplicitError> {
        self.check()?;
        if !(options.tol > 0.0) || options.max_iter == 0 {
            return Err(ImplicitError::InvalidOption {
                name: "tol/max_iter",
                value: options.tol,
                range: "tol > 0, max_iter ≥ 1",
            });
        }
        let (n, p) = self.x.dim();
        let nf = n as f64;
        let col_sq: Vec<f64> = self.x.axis_iter(Axis(1)).map(|c| c.dot(&c) / nf).collect();
        let mut beta = Array1::<f64>::zeros(p);
        let mut r = self.y.clone();
        let mut status = Status::MaxIter;
        let mut n_iter = 0;
        while n_iter < options.max_iter {
            n_iter += 1;
            let mut max_step = 0.0_f64;
            for j in 0..p {
                let denom = col_sq[j] + self.lambda2;
                if denom <= 0.0 {
                    continue;
                }
                let xj = self.x.column(j);
                let old = beta[j];
                let z = col_sq[j] * old + xj.dot(&r) / nf;
                let new = soft_threshold_scalar(z, self.lambda1) / denom;
                let step = new - old;
                if step != 0.0 {
                    r.scaled_add(-step, &xj);
                    beta[j] = new;
                    max_step = max_step.max(step.abs());
                }
            }
            let scale = beta.iter().fold(1.0_f64, |m, v| m.max(v.abs()));
            if max_step <= options.tol * scale {
                status = Status::Converged;
                break;
            }
        }
        let kkt = self.kkt(beta.view());
        if let Some(polished) = self.polish(beta.view()) {
            let kkt_p = self.kkt(polished.view());
            if kkt_p <= kkt {
                beta = polished;
            }
        }
        Ok(self.certify(beta, n_iter, status))
    }

    fn polish(&self, beta: ArrayView1<'_, f64>) -> Option<Array1<f64>> {
        let support: Vec<usize> = (0..beta.len()).filter(|&j| beta[j] != 0.0).collect();
        if support.is_empty() {
            return None;
        }
        let n = self.x.nrows() as f64;
        let xe = self.x.select(Axis(1), &support);
        let mut h = xe.t().dot(&xe) / n;
        for k in 0..support.len() {
            h[[k, k]] += self.lambda2;
        }
        let mut b = xe.t().dot(&self.y) / n;
        for (k, &j) in support.iter().enumerate() {
            b[k] -= self.lambda1 * beta[j].signum();
        }
        let c = Cholesky::factor(h.view()).ok()?;
        c.solve_inplace(b.view_mut()).ok()?;
        let mut out = Array1::zeros(beta.len());
        for (k, &j) in support.iter().enumerate() {
            if b[k].signum() != beta[j].signum() {
                return None;
            }
            out[j] = b[k];
        }
        Some(out)
    }

    fn kkt(&self, beta: ArrayView1<'_, f64>) -> f64 {
        let g = self.correlations(beta);
        g.iter().zip(beta.iter()).fold(0.0_f64, |m, (&gj, &bj)| {
            let d = if bj != 0.0 {
                (gj - self.lambda1 * bj.signum()).abs()
            } else {
                (gj.abs() - self.lambda1).max(0.0)
            };
            m.max(d)
        })
    }

    fn certify(&self, beta: Array1<f64>, n_iter: usize, status: Status) -> ElasticNetFit {
        let g = self.correlations(beta.view());
        let support: Vec<usize> = (0..beta.len()).filter(|&j| beta[j] != 0.0).collect();
        let margin = (0..beta.len())
            .filter(|&j| beta[j] == 0.0)
            .map(|j| self.lambda1 - g[j].abs())
            .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.min(v))));
        let kkt_residual = self.kkt(beta.view());
        ElasticNetFit {
            beta,
            support,
            margin,
            kkt_residual,
            n_iter,
            status,
        }
    }

    /// The optimality condition restricted to the support of `fit` (hyperparameters
    /// `(λ₁, λ₂)`).
    pub fn support_system(&self, fit: &ElasticNetFit) -> ElasticNetSupportSystem {
        let xe = self.x.select(Axis(1), &fit.support);
        let beta_e = fit
            .support
            .iter()
            .map(|&j| fit.beta[j])
            .collect::<Array1<f64>>();
        ElasticNetSupportSystem {
            signs: beta_e.mapv(f64::signum),
            scratch: RefCell::new(Array1::zeros(xe.nrows())),
            x_active: xe,
            beta_active: beta_e,
            lambda2: self.lambda2,
        }
    }

    /// The proximal-gradient map at `beta` with the step `γ = 1 / (‖X‖_F²/n + λ₂)` (a bound
    /// on `1/L`; any step in `(0, 2/L)` has the same fixed point and the same derivative).
    pub fn prox_map<'a>(&'a self, beta: ArrayView1<'a, f64>) -> ProxGradientMap<'a> {
        let n = self.x.nrows() as f64;
        let step = 1.0 / (self.x.iter().map(|v| v * v).sum::<f64>() / n + self.lambda2);
        let grad = -self.correlations(beta);
        let z = &beta - &(grad * step);
        let thr = step * self.lambda1;
        let mask = z.mapv(|v| if v.abs() > thr { 1.0 } else { 0.0 });
        ProxGradientMap {
            x: self.x.view(),
            beta,
            sign_z: z.mapv(f64::signum),
            mask,
            step,
            lambda2: self.lambda2,
            scratch: RefCell::new(Array1::zeros(self.x.nrows())),
        }
    }
}

/// The elastic-net optimality condition on the support (SPD): `x = β_E`, `λ = (λ₁, λ₂)`.
pub struct ElasticNetSupportSystem {
    x_active: Array2<f64>,
    beta_active: Array1<f64>,
    signs: Array1<f64>,
    lambda2: f64,
    scratch: RefCell<Array1<f64>>,
}

impl ElasticNetSupportSystem {
    /// Restricts a gradient on every coordinate to the support (in the support's order).
    pub fn restrict(&self, fit: &ElasticNetFit, full: ArrayView1<'_, f64>) -> Array1<f64> {
        fit.support.iter().map(|&j| full[j]).collect()
    }
}

impl ImplicitSystem for ElasticNetSupportSystem {
    fn n_active(&self) -> usize {
        self.x_active.ncols()
    }
    fn n_hyper(&self) -> usize {
        2
    }
    fn structure(&self) -> Structure {
        Structure::SymmetricPositiveDefinite
    }
    fn jvp_theta(&self, v: ArrayView1<'_, f64>, mut out: ArrayViewMut1<'_, f64>) {
        let n = self.x_active.nrows() as f64;
        let mut xv = self.scratch.borrow_mut();
        ndarray::linalg::general_mat_vec_mul(1.0, &self.x_active, &v, 0.0, &mut *xv);
        ndarray::linalg::general_mat_vec_mul(1.0 / n, &self.x_active.t(), &*xv, 0.0, &mut out);
        out.scaled_add(self.lambda2, &v);
    }
    fn vjp_theta(&self, w: ArrayView1<'_, f64>, out: ArrayViewMut1<'_, f64>) {
        self.jvp_theta(w, out);
    }
    fn jvp_hyper(&self, t: ArrayView1<'_, f64>, mut out: ArrayViewMut1<'_, f64>) {
        for k in 0..out.len() {
            out[k] = self.signs[k] * t[0] + self.beta_active[k] * t[1];
        }
    }
    fn vjp_hyper(&self, w: ArrayView1<'_, f64>, mut out: ArrayViewMut1<'_, f64>) {
        out[0] = self.signs.dot(&w);
        out[1] = self.beta_active.dot(&w);
    }
}

/// The proximal-gradient map of the elastic net at `β` (every coordinate), see the module
/// doc. Use it through [`crate::FixedPointResidual`].
pub struct ProxGradientMap<'a> {
    x: ArrayView2<'a, f64>,
    beta: ArrayView1<'a, f64>,
    sign_z: Array1<f64>,
    mask: Array1<f64>,
    step: f64,
    lambda2: f64,
    scratch: RefCell<Array1<f64>>,
}

impl ProxGradientMap<'_> {
    /// `out ← H v = Xᵀ(X v)/n + λ₂ v`.
    fn hessian_apply(&self, v: ArrayView1<'_, f64>, mut out: ArrayViewMut1<'_, f64>) {
        let n = self.x.nrows() as f64;
        let mut xv = self.scratch.borrow_mut();
        ndarray::linalg::general_mat_vec_mul(1.0, &self.x, &v, 0.0, &mut *xv);
        ndarray::linalg::general_mat_vec_mul(1.0 / n, &self.x.t(), &*xv, 0.0, &mut out);
        out.scaled_add(self.lambda2, &v);
    }
}

impl FixedPointMap for ProxGradientMap<'_> {
    fn n_active(&self) -> usize {
        self.x.ncols()
    }
    fn n_hyper(&self) -> usize {
        2
    }
    fn jvp_x(&self, v: ArrayView1<'_, f64>, mut out: ArrayViewMut1<'_, f64>) {
        // D (v − γ H v)
        self.hessian_apply(v, out.view_mut());
        for j in 0..out.len() {
            out[j] = self.mask[j] * (v[j] - self.step * out[j]);
        }
    }
    fn vjp_x(&self, w: ArrayView1<'_, f64>, mut out: ArrayViewMut1<'_, f64>) {
        // (I − γ H) D w; H symmetric. `out` holds D w while H is applied into the scratch.
        for j in 0..out.len() {
            out[j] = self.mask[j] * w[j];
        }
        let n = self.x.nrows() as f64;
        let mut xv = self.scratch.borrow_mut();
        ndarray::linalg::general_mat_vec_mul(1.0, &self.x, &out, 0.0, &mut *xv);
        // out ← D w − γ (Xᵀ X D w / n + λ₂ D w)
        out.mapv_inplace(|v| v * (1.0 - self.step * self.lambda2));
        ndarray::linalg::general_mat_vec_mul(-self.step / n, &self.x.t(), &*xv, 1.0, &mut out);
    }
    fn jvp_hyper(&self, t: ArrayView1<'_, f64>, mut out: ArrayViewMut1<'_, f64>) {
        for j in 0..out.len() {
            out[j] = -self.step * self.mask[j] * (self.sign_z[j] * t[0] + self.beta[j] * t[1]);
        }
    }
    fn vjp_hyper(&self, w: ArrayView1<'_, f64>, mut out: ArrayViewMut1<'_, f64>) {
        let (mut a, mut b) = (0.0, 0.0);
        for j in 0..w.len() {
            let mw = self.mask[j] * w[j];
            a += self.sign_z[j] * mw;
            b += self.beta[j] * mw;
        }
        out[0] = -self.step * a;
        out[1] = -self.step * b;
    }
}

/// The validation criterion `C(β) = ‖y_val − X_val β‖² / n_val` and its gradient
/// `∇C = −2 X_valᵀ (y_val − X_val β) / n_val`.
pub fn validation_mse(
    x_val: ArrayView2<'_, f64>,
    y_val: ArrayView1<'_, f64>,
    beta: ArrayView1<'_, f64>,
) -> (f64, Array1<f64>) {
    let n = x_val.nrows() as f64;
    let r = &y_val - &x_val.dot(&beta);
    (r.dot(&r) / n, x_val.t().dot(&r) * (-2.0 / n))
}
