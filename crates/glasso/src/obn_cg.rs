//! `ObnCg`: orthant-based Newton with conjugate gradient (Oztoprak, Nocedal, Rennie, Olsen,
//! NeurIPS 2012), the dense-regime solver.
//!
//! # Algorithm
//! At the iterate Θ (W = Θ⁻¹, G = S − W), with the minimum-norm subgradient
//!
//! ```text
//! g_kl = G_kl + Λ_kl sign(Θ_kl)        if Θ_kl ≠ 0
//! g_kl = ST(G_kl, Λ_kl)                if Θ_kl = 0
//! ```
//!
//! the free set `F = {Θ_kl ≠ 0} ∪ {|G_kl| > Λ_kl}` and the orthant `z = sign(Θ)` (or `−sign(g)`
//! where Θ_kl = 0), the Newton direction solves, on F,
//!
//! ```text
//! (W ⊗ W)_{F,F} d = −g_F          i.e.  (W D W)_F = −g_F
//! ```
//!
//! by preconditioned CG, each product costing two dense matrix products (BLAS), preconditioned by
//! `V ↦ (Θ V Θ)_F`, the exact inverse when F is full (then CG takes one iteration), to a relative
//! residual `η = min(0.5, (‖g‖_F / (1 + ‖S‖_F))^½)` (inexact Newton, superlinear). The step is
//! projected on the orthant: `Θ⁺ = P_z(Θ + α D)` (entries leaving their orthant are set to 0),
//! α = 1, ½, …, accepted when Θ⁺ ≻ 0 (Cholesky) and
//! `Φ(Θ⁺) ≤ Φ(Θ) + σ ⟨g, Θ⁺ − Θ⟩`. W is recomputed from the accepted factor.
//!
//! # Stopping
//! Relative duality gap ≤ `tol` and KKT residual ≤ `kkt_tol`, checked before each step, or
//! `max_iter` Newton steps.
//!
//! # Errors
//! [`GlassoError::NumericalFailure`] when no step along the direction is accepted.
//!
//! # References
//! F. Oztoprak, J. Nocedal, S. Rennie, P. A. Olsen, *Newton-like methods for sparse inverse
//! covariance estimation*, NeurIPS 2012.

use crate::fit::Certificate;
use crate::newton_cd::Iterate;
use crate::problem::{frobenius_inner, penalty_value};
use crate::{BlockOutcome, BlockSolver, BlockStart, GlassoError, GlassoOptions};
use ho_linalg::prox::soft_threshold_scalar;
use ho_linalg::{pcg, CgOptions, Cholesky, LinearOperator};
use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, ArrayView1, ArrayView2, ArrayViewMut1, Zip};
use std::cell::RefCell;

/// Orthant-based Newton–CG (the dense-regime solver).
///
/// | Name | Default | Meaning | Range |
/// |---|---|---|---|
/// | `options` | [`GlassoOptions::default`] | tolerance, Newton-step budget, screening | |
/// | `max_cg_iter` | 50 | CG iterations per Newton step | ≥ 1 |
#[derive(Debug, Clone)]
pub struct ObnCg {
    /// Shared options.
    pub options: GlassoOptions,
    /// CG iterations per Newton step.
    pub max_cg_iter: usize,
}

impl Default for ObnCg {
    fn default() -> Self {
        Self {
            options: GlassoOptions::default(),
            max_cg_iter: 50,
        }
    }
}

/// `V ↦ (A V A) ⊙ mask` on p × p matrices flattened row-major (A = W for the Hessian, Θ for
/// the preconditioner). Two BLAS products per application, no allocation.
pub(crate) struct MaskedSandwich<'a> {
    pub a: ArrayView2<'a, f64>,
    pub mask: ArrayView2<'a, f64>,
    pub scratch: RefCell<Array2<f64>>,
}

impl<'a> MaskedSandwich<'a> {
    pub(crate) fn new(a: ArrayView2<'a, f64>, mask: ArrayView2<'a, f64>) -> Self {
        let p = a.nrows();
        Self {
            a,
            mask,
            scratch: RefCell::new(Array2::zeros((p, p))),
        }
    }
}

impl LinearOperator for MaskedSandwich<'_> {
    fn dim(&self) -> usize {
        self.a.len()
    }

    fn apply(&self, x: ArrayView1<'_, f64>, out: ArrayViewMut1<'_, f64>) {
        let p = self.a.nrows();
        let v = x.into_shape_with_order((p, p)).expect("p² vector");
        let mut out = out.into_shape_with_order((p, p)).expect("p² vector");
        let mut t = self.scratch.borrow_mut();
        general_mat_mul(1.0, &self.a, &v, 0.0, &mut *t);
        general_mat_mul(1.0, &*t, &self.a, 0.0, &mut out);
        Zip::from(&mut out)
            .and(&self.mask)
            .for_each(|o, &m| *o *= m);
    }
}

impl BlockSolver for ObnCg {
    fn name(&self) -> &'static str {
        "obn-cg"
    }

    fn options(&self) -> &GlassoOptions {
        &self.options
    }

    fn solve_block(
        &self,
        s: ArrayView2<'_, f64>,
        lam: ArrayView2<'_, f64>,
        start: BlockStart,
    ) -> Result<BlockOutcome, GlassoError> {
        if self.max_cg_iter == 0 {
            return Err(GlassoError::InvalidOption {
                name: "max_cg_iter",
                value: 0.0,
                range: "≥ 1",
            });
        }
        let p = s.nrows();
        let s_norm = s.iter().map(|v| v * v).sum::<f64>().sqrt();
        let mut it = Iterate::from_start(start)?;
        let mut g = Array2::<f64>::zeros((p, p));
        let mut z = Array2::<f64>::zeros((p, p));
        let mut mask = Array2::<f64>::zeros((p, p));
        let mut neg_g = Array2::<f64>::zeros((p, p));
        let mut d = Array2::<f64>::zeros((p, p));
        let mut n_iter = 0;
        loop {
            let cert = Certificate::of(
                it.theta.view(),
                it.logdet,
                it.w.view(),
                s,
                lam,
                &self.options,
            );
            if cert.converged(&self.options) || n_iter >= self.options.max_iter {
                return Ok(cert.outcome(it.theta, it.w, s, lam, n_iter));
            }
            let f = cert.objective;
            // pseudo-gradient, free set, orthant
            for i in 0..p {
                for j in 0..p {
                    let (t, l) = (it.theta[[i, j]], lam[[i, j]]);
                    let grad = s[[i, j]] - it.w[[i, j]];
                    if t != 0.0 {
                        z[[i, j]] = t.signum();
                        g[[i, j]] = grad + l * t.signum();
                        mask[[i, j]] = 1.0;
                    } else {
                        let gg = soft_threshold_scalar(grad, l);
                        g[[i, j]] = gg;
                        z[[i, j]] = -gg.signum();
                        mask[[i, j]] = if gg != 0.0 { 1.0 } else { 0.0 };
                    }
                }
            }
            let g_norm = g.iter().map(|v| v * v).sum::<f64>().sqrt();
            Zip::from(&mut neg_g).and(&g).for_each(|n, &v| *n = -v);
            let hess = MaskedSandwich::new(it.w.view(), mask.view());
            let pre = MaskedSandwich::new(it.theta.view(), mask.view());
            let eta = (g_norm / (1.0 + s_norm)).sqrt().clamp(1e-12, 0.5);
            d.fill(0.0);
            let cg = pcg(
                &hess,
                Some(&pre),
                flat(&neg_g, p),
                d.view_mut()
                    .into_shape_with_order(p * p)
                    .expect("contiguous"),
                &CgOptions {
                    rel_tol: eta,
                    abs_tol: 0.0,
                    max_iter: self.max_cg_iter,
                },
            );
            if cg.is_err() {
                // Breakdown (rounding near the optimum): use the preconditioned gradient.
                pre.apply(
                    flat(&neg_g, p),
                    d.view_mut()
                        .into_shape_with_order(p * p)
                        .expect("contiguous"),
                );
            }
            // The BLAS products leave D symmetric only to rounding; Θ must stay exactly symmetric.
            ho_linalg::symmetrize_inplace(d.view_mut());
            n_iter += 1;
            let d_max = d.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
            let t_max = it.theta.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
            if d_max <= 4.0 * f64::EPSILON * t_max {
                return Ok(cert.outcome(it.theta, it.w, s, lam, n_iter));
            }
            match orthant_line_search(&it, d.view(), z.view(), mask.view(), g.view(), f, s, lam)? {
                Some(next) => it = next,
                None => {
                    return Err(GlassoError::NumericalFailure {
                        solver: "obn-cg",
                        iteration: n_iter,
                        reason: "line search found no positive definite decrease",
                    })
                }
            }
        }
    }
}

fn flat(a: &Array2<f64>, p: usize) -> ArrayView1<'_, f64> {
    a.view().into_shape_with_order(p * p).expect("contiguous")
}

/// Backtracking along `d` with the orthant projection; `None` if no step is accepted.
#[allow(clippy::too_many_arguments)]
fn orthant_line_search(
    it: &Iterate,
    d: ArrayView2<'_, f64>,
    z: ArrayView2<'_, f64>,
    mask: ArrayView2<'_, f64>,
    g: ArrayView2<'_, f64>,
    f: f64,
    s: ArrayView2<'_, f64>,
    lam: ArrayView2<'_, f64>,
) -> Result<Option<Iterate>, GlassoError> {
    const SIGMA: f64 = 1e-4;
    let p = it.theta.nrows();
    let mut alpha = 1.0;
    let mut cand = Array2::<f64>::zeros((p, p));
    for _ in 0..50 {
        let mut decrease = 0.0;
        Zip::from(&mut cand)
            .and(&it.theta)
            .and(d)
            .and(z)
            .and(mask)
            .and(g)
            .for_each(|c, &t, &dd, &zz, &m, &gg| {
                let mut v = t + alpha * dd * m;
                if m != 0.0 && v * zz < 0.0 {
                    v = 0.0;
                }
                decrease += gg * (v - t);
                *c = v;
            });
        if let Ok(chol) = Cholesky::factor(cand.view()) {
            let logdet = chol.logdet();
            let lin = frobenius_inner(s, cand.view());
            let f_new = -logdet + lin + penalty_value(cand.view(), lam);
            let allowance = 16.0 * f64::EPSILON * (f.abs() + lin.abs());
            if f_new.is_finite() && f_new <= f + SIGMA * decrease.min(0.0) + allowance {
                let w = chol.into_inverse()?;
                return Ok(Some(Iterate {
                    theta: cand,
                    w,
                    logdet,
                }));
            }
        }
        alpha *= 0.5;
    }
    Ok(None)
}
