//! Forward iterative differentiation: fixed-step G-ISTA run from the cold start with the
//! derivative of every iterate carried along (docs/implicit-diff.md §9, DESIGN.md §2).
//!
//! # Algorithm
//! For each direction `D` in Λ-space (a p × p symmetric matrix; `D = P` for the scalar λ,
//! `e_kl + e_lk` for one symmetric pair), with `J = ∂Θ/∂t` along `Λ + t D`:
//!
//! ```text
//! Θ₀ = diag(1/(S_ii + Λ_ii)),  J₀ = 0
//! Z = Θ − γ (S − W),  W = Θ⁻¹
//! Θ⁺ = ST(Z, γΛ),     mask_ij = 1{|Z_ij| > γΛ_ij}
//! J⁺ = mask ⊙ (J − γ W J W) − γ mask ⊙ sign(Z) ⊙ D
//! ```
//!
//! (the second term is `E_λ` of DESIGN.md §2, with the factor γ the paper's Prop. 4 omits).
//! At convergence `J → ∂Θ̂/∂t` when the support is locally constant, so `⟨∇C(Θ̂), J⟩` is the
//! directional hypergradient.
//!
//! # Step
//! A fixed `γ = 0.99 / max(λ_max(W₀), λ_max(Ŵ))²`, that is `0.99 λ_min(Θ)²` over the start
//! and the solution (`1/L` of the smooth part on that region; λ_max by power iteration). If an
//! iterate loses positive definiteness (its Cholesky factorization fails), γ is halved and the
//! run restarts from the cold start (at most 30 times).
//!
//! # Stopping
//! When `max|Θ⁺ − Θ| ≤ tol · max|Θ⁺|` and, for every direction, `max|J⁺ − J| ≤ tol · max|J⁺|`;
//! the error of a linearly converging iteration with rate ρ is about `change · ρ/(1 − ρ)`, and
//! ρ ≈ 1 − 1/κ(W)², so the default `tol` is far below the accuracy wanted.
//!
//! # References
//! B. Rolfs, B. Rajaratnam, D. Guillot, I. Wong, A. Maleki, *Iterative thresholding algorithm
//! for sparse inverse covariance estimation*, NeurIPS 2012.

use crate::ImplicitError;
use ho_linalg::prox::soft_threshold_scalar;
use ho_linalg::Cholesky;
use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, ArrayView2, Zip};

/// Options of the unrolled differentiation.
///
/// | Name | Default | Meaning | Range |
/// |---|---|---|---|
/// | `max_iter` | 200000 | G-ISTA iterations (restarts included) | ≥ 1 |
/// | `tol` | 1e-13 | relative change of Θ and J at which to stop | > 0 |
/// | `step` | `None` | a fixed γ instead of the automatic one | > 0 |
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UnrolledOptions {
    /// Iteration budget.
    pub max_iter: usize,
    /// Relative change tolerance.
    pub tol: f64,
    /// The step γ; `None` for the automatic choice of the module doc.
    pub step: Option<f64>,
}

impl Default for UnrolledOptions {
    fn default() -> Self {
        Self {
            max_iter: 200_000,
            tol: 1e-13,
            step: None,
        }
    }
}

/// The result of an unrolled run.
#[derive(Debug, Clone)]
pub struct UnrolledRun {
    /// The last iterate Θ.
    pub precision: Array2<f64>,
    /// `J` for every direction, in the order given.
    pub tangents: Vec<Array2<f64>>,
    /// Iterations done (restarts included).
    pub n_iter: usize,
    /// The last relative change.
    pub change: f64,
    /// The step γ used.
    pub step: f64,
}

/// The largest eigenvalue of a symmetric positive semi-definite matrix, by power iteration
/// (relative accuracy ~1e-6; overestimated by 1e-3 for safety).
pub fn lambda_max_spd(a: ArrayView2<'_, f64>) -> f64 {
    let p = a.nrows();
    let mut v = ndarray::Array1::from_elem(p, 1.0 / (p as f64).sqrt());
    // a deterministic, non-symmetric start so that no eigenvector is missed by symmetry
    for (i, x) in v.iter_mut().enumerate() {
        *x *= 1.0 + 0.1 * ((i as f64) * 0.7).sin();
    }
    let mut est = 0.0;
    for _ in 0..500 {
        let w = a.dot(&v);
        let nrm = w.dot(&w).sqrt();
        if !(nrm > 0.0) {
            return 0.0;
        }
        let new_est = v.dot(&w) / v.dot(&v);
        v = w / nrm;
        if (new_est - est).abs() <= 1e-9 * new_est.abs() {
            est = new_est;
            break;
        }
        est = new_est;
    }
    est * (1.0 + 1e-3)
}

fn max_abs(a: &Array2<f64>) -> f64 {
    a.iter().fold(0.0_f64, |m, v| m.max(v.abs()))
}

/// Runs fixed-step G-ISTA on `min −log det Θ + ⟨S, Θ⟩ + Σ Λ_kl |Θ_kl|` from the cold start with
/// one tangent per direction (see the module doc). `solution_covariance` (Ŵ of a fit) only
/// serves the automatic step.
///
/// # Errors
/// [`ImplicitError::UnrolledNotConverged`] when the budget runs out,
/// [`ImplicitError::InvalidOption`] for bad options, and [`ImplicitError::Linalg`] if the
/// iterates stay indefinite after 30 step halvings.
pub fn unrolled_gista(
    emp_cov: ArrayView2<'_, f64>,
    lam: ArrayView2<'_, f64>,
    directions: &[Array2<f64>],
    solution_covariance: Option<ArrayView2<'_, f64>>,
    options: &UnrolledOptions,
) -> Result<UnrolledRun, ImplicitError> {
    if !(options.tol > 0.0) {
        return Err(ImplicitError::InvalidOption {
            name: "unrolled.tol",
            value: options.tol,
            range: "> 0",
        });
    }
    if options.max_iter == 0 {
        return Err(ImplicitError::InvalidOption {
            name: "unrolled.max_iter",
            value: 0.0,
            range: "≥ 1",
        });
    }
    let p = emp_cov.nrows();
    let start_diag: Vec<f64> = (0..p).map(|i| emp_cov[[i, i]] + lam[[i, i]]).collect();
    let mut step = match options.step {
        Some(g) if g > 0.0 && g.is_finite() => g,
        Some(g) => {
            return Err(ImplicitError::InvalidOption {
                name: "unrolled.step",
                value: g,
                range: "finite, > 0",
            })
        }
        None => {
            let w0 = start_diag.iter().fold(0.0_f64, |m, &v| m.max(v));
            let w_hat = solution_covariance.map_or(0.0, lambda_max_spd);
            0.99 / w0.max(w_hat).powi(2)
        }
    };
    let mut n_iter = 0;
    let mut restarts = 0;
    'restart: loop {
        let mut theta = Array2::<f64>::zeros((p, p));
        let mut w = Array2::<f64>::zeros((p, p));
        for i in 0..p {
            theta[[i, i]] = 1.0 / start_diag[i];
            w[[i, i]] = start_diag[i];
        }
        let mut tangents: Vec<Array2<f64>> =
            directions.iter().map(|_| Array2::zeros((p, p))).collect();
        let mut z = Array2::<f64>::zeros((p, p));
        let mut theta_new = Array2::<f64>::zeros((p, p));
        let mut tmp = Array2::<f64>::zeros((p, p));
        let mut wjw = Array2::<f64>::zeros((p, p));
        let mut change = f64::INFINITY;
        while n_iter < options.max_iter {
            n_iter += 1;
            Zip::from(&mut z)
                .and(&theta)
                .and(emp_cov)
                .and(&w)
                .for_each(|zz, &t, &s, &ww| *zz = t - step * (s - ww));
            Zip::from(&mut theta_new)
                .and(&z)
                .and(lam)
                .for_each(|tn, &zz, &l| *tn = soft_threshold_scalar(zz, step * l));
            let mut j_change = 0.0_f64;
            for (j, d) in tangents.iter_mut().zip(directions) {
                general_mat_mul(1.0, &*j, &w, 0.0, &mut tmp);
                general_mat_mul(1.0, &w, &tmp, 0.0, &mut wjw);
                let mut diff = 0.0_f64;
                Zip::from(&mut *j)
                    .and(&wjw)
                    .and(&z)
                    .and(lam)
                    .and(d)
                    .for_each(|jj, &m, &zz, &l, &dd| {
                        let new = if zz.abs() > step * l {
                            *jj - step * m - step * zz.signum() * dd
                        } else {
                            0.0
                        };
                        diff = diff.max((new - *jj).abs());
                        *jj = new;
                    });
                j_change = j_change.max(diff / max_abs(j).max(f64::MIN_POSITIVE));
            }
            let t_diff = Zip::from(&theta_new)
                .and(&theta)
                .fold(0.0_f64, |m, &a, &b| m.max((a - b).abs()));
            let t_change = t_diff / max_abs(&theta_new);
            std::mem::swap(&mut theta, &mut theta_new);
            match Cholesky::factor(theta.view()).and_then(Cholesky::into_inverse) {
                Ok(inv) => w = inv,
                Err(e) => {
                    restarts += 1;
                    if restarts > 30 {
                        return Err(e.into());
                    }
                    step *= 0.5;
                    continue 'restart;
                }
            }
            change = t_change.max(j_change);
            if change <= options.tol {
                return Ok(UnrolledRun {
                    precision: theta,
                    tangents,
                    n_iter,
                    change,
                    step,
                });
            }
        }
        return Err(ImplicitError::UnrolledNotConverged { n_iter, change });
    }
}
