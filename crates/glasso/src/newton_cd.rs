//! `NewtonCd`: the second-order method of QUIC (Hsieh, Sustik, Dhillon, Ravikumar, JMLR 2014).
//!
//! # Algorithm
//! At the iterate Θ (W = Θ⁻¹, G = S − W), the Newton direction minimizes the quadratic model
//!
//! ```text
//! D = argmin_Δ  ⟨G, Δ⟩ + ½ tr(W Δ W Δ) + Σ Λ_kl |Θ_kl + Δ_kl|
//! ```
//!
//! over the free set `F = {(k,l): Θ_kl ≠ 0 or |G_kl| > Λ_kl}` (Δ = 0 elsewhere) by cyclic
//! coordinate descent on the symmetric pairs (k ≤ l), keeping `U = Δ W` up to date so that one
//! coordinate costs O(p):
//!
//! ```text
//! a = W_kl² + W_kk W_ll  (k ≠ l),  a = W_kk²  (k = l)
//! b = G_kl + (W Δ W)_kl,  c = Θ_kl + Δ_kl
//! μ = −c + ST(c − b/a, Λ_kl/a);  Δ_kl, Δ_lk += μ;  U_k· += μ W_l·,  U_l· += μ W_k·
//! ```
//!
//! with `1 + t/3` sweeps at Newton iteration t. The step `Θ + αD`, α = 1, ½, ¼, …, must be
//! positive definite (its Cholesky factorization succeeds) and satisfy the Armijo condition
//! `Φ(Θ + αD) ≤ Φ(Θ) + σ α δ`, `δ = ⟨G, D⟩ + ‖Λ⊙(Θ+D)‖₁ − ‖Λ⊙Θ‖₁`, σ = 1e-3. W is then
//! recomputed from the accepted factor (LAPACK `potri`): W is always Θ⁻¹ to rounding.
//!
//! # Stopping
//! Relative duality gap `gap / max(1, |Φ|) ≤ tol` (DESIGN.md §1), checked before each Newton
//! step, or `max_iter` Newton steps (status `MaxIter`).
//!
//! # Errors
//! [`GlassoError::NumericalFailure`] when no step along D keeps Θ ≻ 0 with a decrease (after
//! 50 halvings) while the gap is still above the tolerance.
//!
//! # References
//! C.-J. Hsieh, M. A. Sustik, I. S. Dhillon, P. Ravikumar, *QUIC: Quadratic Approximation for
//! Sparse Inverse Covariance Estimation*, JMLR 15 (2014).

use crate::fit::Certificate;
use crate::problem::{frobenius_inner, penalty_value};
use crate::{BlockOutcome, BlockSolver, BlockStart, GlassoError, GlassoOptions};
use ho_linalg::prox::soft_threshold_scalar;
use ho_linalg::Cholesky;
use ndarray::{Array2, ArrayView2, Zip};

/// QUIC's Newton method with coordinate descent on the free set (the sparse-regime solver).
///
/// | Name | Default | Meaning | Range |
/// |---|---|---|---|
/// | `options` | [`GlassoOptions::default`] | tolerance, Newton-step budget, screening | |
/// | `max_sweeps` | 50 | cap on the coordinate sweeps per Newton step | ≥ 1 |
/// | `sweep_tol` | 1e-4 | floor of the relative change of D that ends the sweeps | ≥ 0 |
#[derive(Debug, Clone)]
pub struct NewtonCd {
    /// Shared options.
    pub options: GlassoOptions,
    /// Maximum coordinate-descent sweeps per Newton step.
    pub max_sweeps: usize,
    /// Relative change of D below which the sweeps stop.
    pub sweep_tol: f64,
}

impl Default for NewtonCd {
    fn default() -> Self {
        Self {
            options: GlassoOptions::default(),
            max_sweeps: 50,
            sweep_tol: 1e-4,
        }
    }
}

/// Armijo constant.
const SIGMA: f64 = 1e-3;
/// Maximum step halvings.
const MAX_HALVINGS: usize = 50;

/// An SPD iterate with its inverse and log-det.
pub(crate) struct Iterate {
    pub theta: Array2<f64>,
    pub w: Array2<f64>,
    pub logdet: f64,
}

impl Iterate {
    /// From a start (Θ₀, W₀): computes log det Θ₀ by Cholesky.
    pub(crate) fn from_start(start: BlockStart) -> Result<Self, GlassoError> {
        let logdet = Cholesky::factor(start.theta.view())?.logdet();
        Ok(Self {
            theta: start.theta,
            w: start.covariance,
            logdet,
        })
    }
}

/// Line search along `d` from `it` (Φ(Θ) = `f`, directional model decrease `delta` < 0):
/// returns the accepted iterate (W recomputed) or `None` if no step was accepted.
pub(crate) fn armijo_step(
    it: &Iterate,
    d: ArrayView2<'_, f64>,
    f: f64,
    delta: f64,
    s: ArrayView2<'_, f64>,
    lam: ArrayView2<'_, f64>,
) -> Result<Option<(Iterate, f64)>, GlassoError> {
    let p = it.theta.nrows();
    let mut alpha = 1.0;
    for _ in 0..MAX_HALVINGS {
        let mut cand = Array2::zeros((p, p));
        Zip::from(&mut cand)
            .and(&it.theta)
            .and(d)
            .for_each(|c, &t, &dd| *c = t + alpha * dd);
        if let Ok(chol) = Cholesky::factor(cand.view()) {
            let logdet = chol.logdet();
            let lin = frobenius_inner(s, cand.view());
            let f_new = -logdet + lin + penalty_value(cand.view(), lam);
            // The rounding allowance lets full Newton steps through near the optimum, where
            // the decrease (≈ KKT²) is below the resolution of Φ.
            let allowance = 16.0 * f64::EPSILON * (f.abs() + lin.abs());
            if f_new.is_finite() && f_new <= f + SIGMA * alpha * delta + allowance {
                let w = chol.into_inverse()?;
                return Ok(Some((
                    Iterate {
                        theta: cand,
                        w,
                        logdet,
                    },
                    f_new,
                )));
            }
        }
        alpha *= 0.5;
    }
    Ok(None)
}

impl NewtonCd {
    /// The Newton direction by coordinate descent on the free set (writes `d`, uses `ut`).
    ///
    /// `ut = (D W)ᵀ = W D` is stored row-major so that the product needed by every
    /// coordinate, `(W D W)_ij = Σ_k W_ik (D W)_kj = ⟨W_i·, ut_j·⟩`, reads two contiguous rows;
    /// the update after a nonzero step touches two columns of `ut`.
    #[allow(clippy::too_many_arguments)]
    fn direction(
        &self,
        it: &Iterate,
        s: ArrayView2<'_, f64>,
        lam: ArrayView2<'_, f64>,
        sweep_tol: f64,
        free: &[(usize, usize)],
        d: &mut Array2<f64>,
        ut: &mut Array2<f64>,
    ) {
        let w = &it.w;
        let theta = &it.theta;
        let p = w.nrows();
        d.fill(0.0);
        ut.fill(0.0);
        for _ in 0..self.max_sweeps {
            let mut max_step = 0.0_f64;
            for &(i, j) in free {
                let wdw = w.row(i).dot(&ut.row(j));
                let wij = w[[i, j]];
                let b = s[[i, j]] - wij + wdw;
                let c = theta[[i, j]] + d[[i, j]];
                let l = lam[[i, j]];
                let a = if i == j {
                    wij * wij
                } else {
                    wij * wij + w[[i, i]] * w[[j, j]]
                };
                let mu = -c + soft_threshold_scalar(c - b / a, l / a);
                if mu == 0.0 {
                    continue;
                }
                max_step = max_step.max(mu.abs());
                d[[i, j]] += mu;
                // (D W)_i· += μ W_j·  →  ut_·i += μ W_·j  (W symmetric)
                for k in 0..p {
                    ut[[k, i]] += mu * w[[j, k]];
                }
                if i != j {
                    d[[j, i]] += mu;
                    for k in 0..p {
                        ut[[k, j]] += mu * w[[i, k]];
                    }
                }
            }
            // The sweep changed D by little relative to D: the direction is accurate enough.
            let d_max = d.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
            if max_step <= sweep_tol * d_max {
                break;
            }
        }
    }
}

impl BlockSolver for NewtonCd {
    fn name(&self) -> &'static str {
        "newton-cd"
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
        if self.max_sweeps == 0 {
            return Err(GlassoError::InvalidOption {
                name: "max_sweeps",
                value: 0.0,
                range: "≥ 1",
            });
        }
        let p = s.nrows();
        let mut it = Iterate::from_start(start)?;
        let s_max = s.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        let mut d = Array2::zeros((p, p));
        let mut u = Array2::zeros((p, p));
        let mut free: Vec<(usize, usize)> = Vec::with_capacity(p * 4);
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
            free.clear();
            for i in 0..p {
                for j in i..p {
                    let g = s[[i, j]] - it.w[[i, j]];
                    if i == j || it.theta[[i, j]] != 0.0 || g.abs() > lam[[i, j]] {
                        free.push((i, j));
                    }
                }
            }
            // Inexact Newton: loose directions far from the optimum, tight near it.
            let sweep_tol = (cert.kkt / (1.0 + s_max)).clamp(self.sweep_tol, 0.1);
            self.direction(&it, s, lam, sweep_tol, &free, &mut d, &mut u);
            // δ = ⟨G, D⟩ + ‖Λ⊙(Θ+D)‖₁ − ‖Λ⊙Θ‖₁
            let mut delta = 0.0;
            Zip::from(&d)
                .and(&it.theta)
                .and(s)
                .and(&it.w)
                .and(lam)
                .for_each(|&dd, &t, &ss, &ww, &l| {
                    delta += (ss - ww) * dd + l * ((t + dd).abs() - t.abs());
                });
            n_iter += 1;
            let d_max = d.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
            let t_max = it.theta.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
            if !(delta < 0.0) || d_max <= 4.0 * f64::EPSILON * t_max {
                // No descent direction left: the model says we are optimal to rounding.
                let cert = Certificate::of(
                    it.theta.view(),
                    it.logdet,
                    it.w.view(),
                    s,
                    lam,
                    &self.options,
                );
                return Ok(cert.outcome(it.theta, it.w, s, lam, n_iter));
            }
            match armijo_step(&it, d.view(), f, delta, s, lam)? {
                Some((next, _)) => it = next,
                None => {
                    return Err(GlassoError::NumericalFailure {
                        solver: "newton-cd",
                        iteration: n_iter,
                        reason: "line search found no positive definite decrease",
                    })
                }
            }
        }
    }
}
