//! `Bcd`: block coordinate descent on the covariance (Friedman, Hastie, Tibshirani 2008), with a
//! weighted penalty per column.
//!
//! # Algorithm
//! The solver works on `W` (the dual variable, `W = Θ⁻¹` at the optimum) one column at a time.
//! For column j, with `W₁₁ = W` without row and column j, `s₁₂ = S[−j, j]` and
//! `λ₁₂ = Λ[−j, j]`, it solves the weighted Lasso in Gram form
//!
//! ```text
//! β = argmin_β  ½ βᵀ W₁₁ β − βᵀ s₁₂ + Σ_k λ₁₂,k |β_k|
//! ```
//!
//! by cyclic coordinate descent, warm-started from the β of the previous sweep, keeping the
//! gradient `g = W₁₁ β − s₁₂` up to date (one coordinate costs O(p)):
//!
//! ```text
//! β_k ← ST(W_kk β_k − g_k, λ₁₂,k) / W_kk;   g ← g + (β_k,new − β_k,old) W_·k
//! ```
//!
//! (full passes alternate with passes over the nonzero coordinates, as in glmnet), then sets
//! `w₁₂ = W₁₁ β` (= g + s₁₂). The diagonal is fixed: `W_jj = S_jj + Λ_jj`. W is never copied
//! into `W₁₁`: the kernels read the full W and skip index j. The precision is recovered from
//! (W, β) after each sweep,
//!
//! ```text
//! Θ_jj = 1 / (W_jj − w₁₂ᵀ β),   Θ₁₂ = −β Θ_jj,   then Θ ← (Θ + Θᵀ)/2
//! ```
//!
//! and the certified pair is (Θ, Θ⁻¹) with `Θ⁻¹` from Θ's Cholesky factor (LAPACK `potri`), so
//! the returned covariance is exactly the inverse of the returned precision (to rounding), not
//! the internal W.
//!
//! The start `W₀` is the dual-feasible projection of the given `W` of the start,
//! `W₀ = S + clip(W_start − S, −Λ, Λ)` with `W₀,jj = S_jj + Λ_jj`, when it is positive definite
//! (then every exact column update keeps W ≻ 0 and increases log det W, Mazumder and Hastie
//! 2012); otherwise the start's W with its diagonal reset, or failing that `diag(S + Λ)`. The β
//! of column j starts from the start's Θ: `β = −Θ₁₂ / Θ_jj`. From a start that is not dual
//! feasible (the cold start when `n < p` or Λ is small), an exact column update may leave a
//! W that is not positive definite, after which the Lasso diverges. So W stays positive definite
//! by construction: the new W is ≻ 0 iff its Schur complement is positive,
//!
//! ```text
//! W_jj − w₁₂ᵀ W₁₁⁻¹ w₁₂ = W_jj − βᵀ W₁₁ β  > 10⁻⁶ W_jj,
//! ```
//!
//! and when it is not, the update is scaled, `w₁₂ = γ W₁₁ β` with `γ² βᵀ W₁₁ β = ½ W_jj`
//! (β itself is kept as the next warm start). Near the solution, where the Schur complement is
//! `1/Θ_jj > 0`, no update is scaled, so the fixed point is unchanged.
//!
//! The Lasso tolerance adapts to the outer progress: a column's coordinate passes stop when no
//! coordinate moves the gradient by more than `clamp(0.1 ΔW, 16 ε s, enet_tol · s)`, with ΔW
//! the largest change of an entry of W in the previous sweep and `s = max_j W_jj`.
//!
//! # Stopping
//! The certificate of the start, then of (Θ, Θ⁻¹) after each full sweep over the columns:
//! relative duality gap `gap / max(1, |Φ|) ≤ tol` and KKT residual `≤ kkt_tol` (DESIGN.md §1).
//! A sweep whose Θ is not positive definite is not certified (the sweeps go on). The solver
//! also stops when a sweep changes no β and W by no more than rounding (a fixed point), and after
//! `max_iter` sweeps; it then returns the last certified pair, with status `MaxIter` if the
//! tolerance is not met.
//!
//! # Errors
//! [`GlassoError::InvalidOption`] for `enet_tol` or `max_enet_iter` out of range;
//! [`GlassoError::NumericalFailure`] when W stops being finite (a diverging Lasso on a
//! W that lost positive definiteness); [`GlassoError::Linalg`] when the start's Θ is not
//! positive definite.
//!
//! # References
//! J. Friedman, T. Hastie, R. Tibshirani, *Sparse inverse covariance estimation with the
//! graphical lasso*, Biostatistics 9(3) (2008). R. Mazumder, T. Hastie, *The graphical lasso:
//! New insights and alternatives*, Electronic Journal of Statistics 6 (2012).

use crate::fit::Certificate;
use crate::{BlockOutcome, BlockSolver, BlockStart, GlassoError, GlassoOptions};
use ho_linalg::kernels::axpy;
use ho_linalg::prox::soft_threshold_scalar;
use ho_linalg::Cholesky;
use ndarray::{Array2, ArrayView2};

/// Block coordinate descent on the covariance (the GLASSO algorithm of Friedman et al.).
///
/// | Name | Default | Meaning | Range |
/// |---|---|---|---|
/// | `options` | [`GlassoOptions::default`] | tolerance, sweep budget (`max_iter`), screening | |
/// | `enet_tol` | 1e-4 | loosest Lasso tolerance, relative to `max_j W_jj` (see the module doc) | > 0 |
/// | `max_enet_iter` | 1000 | cap on the coordinate passes of one column's Lasso | ≥ 1 |
#[derive(Debug, Clone)]
pub struct Bcd {
    /// Shared options (`max_iter` counts sweeps over the columns).
    pub options: GlassoOptions,
    /// Loosest tolerance of the column Lasso (largest gradient change of a coordinate in a
    /// pass), relative to `max_j W_jj`; it tightens as the sweeps converge.
    pub enet_tol: f64,
    /// Maximum coordinate passes per column and sweep.
    pub max_enet_iter: usize,
}

impl Default for Bcd {
    fn default() -> Self {
        Self {
            options: GlassoOptions::default(),
            enet_tol: 1e-4,
            max_enet_iter: 1000,
        }
    }
}

/// The working state of the sweeps: W, the β of every column and a gradient buffer, all
/// preallocated (the column loop allocates nothing).
struct Sweeper {
    p: usize,
    /// W, row-major p × p, exactly symmetric.
    w: Vec<f64>,
    /// Row j holds the β of column j (entry j unused, kept 0).
    beta: Vec<f64>,
    /// Gradient `g = W₁₁ β − s₁₂` of the current column (entry j unused).
    g: Vec<f64>,
    /// S, row-major.
    s: Vec<f64>,
    /// Λ, row-major.
    lam: Vec<f64>,
}

impl Sweeper {
    /// Solves column j's Lasso and writes `w₁₂ = W₁₁ β` into row and column j of W. Returns the
    /// largest change of an entry of W and whether any β moved.
    fn update_column(&mut self, j: usize, tol: f64, max_passes: usize) -> (f64, bool) {
        let p = self.p;
        let w = &mut self.w;
        let bj = &mut self.beta[j * p..(j + 1) * p];
        let g = &mut self.g;
        let sj = &self.s[j * p..(j + 1) * p];
        let lj = &self.lam[j * p..(j + 1) * p];
        // g = W₁₁ β − s₁₂, recomputed from scratch so rounding does not accumulate over sweeps.
        for (gk, &sk) in g.iter_mut().zip(sj) {
            *gk = -sk;
        }
        for l in 0..p {
            let b = bj[l];
            if b != 0.0 {
                axpy(b, &w[l * p..(l + 1) * p], g);
            }
        }
        let mut moved = false;
        let mut full = true;
        for pass in 1..=max_passes {
            let mut max_d = 0.0_f64;
            for k in 0..p {
                let b = bj[k];
                if k == j || (!full && b == 0.0) {
                    continue;
                }
                let wkk = w[k * p + k];
                let d = soft_threshold_scalar(wkk * b - g[k], lj[k]) / wkk - b;
                if d != 0.0 {
                    bj[k] = b + d;
                    // g_j picks up W_kj too; it is never read.
                    axpy(d, &w[k * p..(k + 1) * p], g);
                    max_d = max_d.max(d.abs() * wkk);
                    moved = true;
                }
            }
            if pass == max_passes {
                break;
            }
            if max_d <= tol {
                if full {
                    break;
                }
                // The active set has converged: check every coordinate again.
                full = true;
            } else {
                full = false;
            }
        }
        // The Schur complement W_jj − w₁₂ᵀ W₁₁⁻¹ w₁₂ = W_jj − βᵀ W₁₁ β decides whether the new W
        // is positive definite; scale w₁₂ down when it would (nearly) vanish (a transient of
        // starts that are not dual feasible).
        let mut q = 0.0;
        for k in 0..p {
            if k != j {
                q += bj[k] * (g[k] + sj[k]);
            }
        }
        let wjj = w[j * p + j];
        let gamma = if q > (1.0 - SCHUR_MIN) * wjj {
            (0.5 * wjj / q).sqrt()
        } else {
            1.0
        };
        let mut dw = 0.0_f64;
        for k in 0..p {
            if k == j {
                continue;
            }
            let v = gamma * (g[k] + sj[k]);
            let d = (v - w[j * p + k]).abs();
            // NaN-propagating maximum.
            if !(d <= dw) {
                dw = d;
            }
            w[j * p + k] = v;
            w[k * p + j] = v;
        }
        (dw, moved)
    }

    /// Θ from (W, β), symmetrized, into `theta`. `false` if some `W_jj − w₁₂ᵀβ ≤ 0` (Θ is then
    /// not positive definite).
    fn recover_theta(&self, theta: &mut Array2<f64>) -> bool {
        let p = self.p;
        for j in 0..p {
            let wj = &self.w[j * p..(j + 1) * p];
            let bj = &self.beta[j * p..(j + 1) * p];
            let mut schur = wj[j];
            for k in 0..p {
                if k != j {
                    schur -= wj[k] * bj[k];
                }
            }
            if !(schur > 0.0 && schur.is_finite()) {
                return false;
            }
            let tjj = 1.0 / schur;
            for k in 0..p {
                theta[[k, j]] = if k == j {
                    tjj
                } else if bj[k] == 0.0 {
                    0.0
                } else {
                    -bj[k] * tjj
                };
            }
        }
        for i in 0..p {
            for j in 0..i {
                let v = 0.5 * (theta[[i, j]] + theta[[j, i]]);
                theta[[i, j]] = v;
                theta[[j, i]] = v;
            }
        }
        true
    }
}

/// The starting W₀ (row-major): the dual-feasible projection of the start's W if positive
/// definite, else the start's W with its diagonal reset, else `diag(S + Λ)`.
fn initial_w(
    s: ArrayView2<'_, f64>,
    lam: ArrayView2<'_, f64>,
    w_start: ArrayView2<'_, f64>,
) -> Vec<f64> {
    let p = s.nrows();
    let mut w = Array2::zeros((p, p));
    for ((i, j), v) in w.indexed_iter_mut() {
        let (sij, lij) = (s[[i, j]], lam[[i, j]]);
        *v = if i == j {
            sij + lij
        } else {
            sij + (w_start[[i, j]] - sij).clamp(-lij, lij)
        };
    }
    if Cholesky::factor(w.view()).is_err() {
        for ((i, j), v) in w.indexed_iter_mut() {
            *v = if i == j {
                s[[i, i]] + lam[[i, i]]
            } else {
                w_start[[i, j]]
            };
        }
        if Cholesky::factor(w.view()).is_err() {
            for ((i, j), v) in w.indexed_iter_mut() {
                *v = if i == j { s[[i, i]] + lam[[i, i]] } else { 0.0 };
            }
        }
    }
    w.iter().copied().collect()
}

/// Smallest Schur complement `W_jj − w₁₂ᵀ W₁₁⁻¹ w₁₂`, relative to `W_jj`, that a column
/// update may leave.
const SCHUR_MIN: f64 = 1e-6;

/// A certified SPD pair.
struct Certified {
    theta: Array2<f64>,
    w: Array2<f64>,
    cert: Certificate,
}

impl Bcd {
    fn validate(&self) -> Result<(), GlassoError> {
        if !(self.enet_tol > 0.0 && self.enet_tol.is_finite()) {
            return Err(GlassoError::InvalidOption {
                name: "enet_tol",
                value: self.enet_tol,
                range: "finite, > 0",
            });
        }
        if self.max_enet_iter == 0 {
            return Err(GlassoError::InvalidOption {
                name: "max_enet_iter",
                value: 0.0,
                range: "≥ 1",
            });
        }
        Ok(())
    }
}

impl BlockSolver for Bcd {
    fn name(&self) -> &'static str {
        "bcd"
    }

    fn options(&self) -> &GlassoOptions {
        &self.options
    }

    fn with_tol(&self, tol: f64) -> Box<dyn BlockSolver> {
        crate::fit::with_tol(self, tol, |s| &mut s.options)
    }

    fn solve_block(
        &self,
        s: ArrayView2<'_, f64>,
        lam: ArrayView2<'_, f64>,
        start: BlockStart,
    ) -> Result<BlockOutcome, GlassoError> {
        self.validate()?;
        let opts = &self.options;
        let p = s.nrows();
        let logdet0 = Cholesky::factor(start.theta.view())?.logdet();
        let cert0 = Certificate::of(
            start.theta.view(),
            logdet0,
            start.covariance.view(),
            s,
            lam,
            opts,
        );
        if cert0.converged(opts) {
            return Ok(cert0.outcome(start.theta, start.covariance, s, lam, 0));
        }
        let mut beta = vec![0.0; p * p];
        for j in 0..p {
            let tjj = start.theta[[j, j]];
            for k in 0..p {
                let t = start.theta[[k, j]];
                if k != j && t != 0.0 {
                    beta[j * p + k] = -t / tjj;
                }
            }
        }
        let mut sw = Sweeper {
            p,
            w: initial_w(s, lam, start.covariance.view()),
            beta,
            g: vec![0.0; p],
            s: s.iter().copied().collect(),
            lam: lam.iter().copied().collect(),
        };
        let mut last = Certified {
            theta: start.theta,
            w: start.covariance,
            cert: cert0,
        };
        let scale = (0..p).fold(0.0_f64, |m, j| m.max(sw.w[j * p + j]));
        let floor = 16.0 * f64::EPSILON * scale;
        let loosest = (self.enet_tol * scale).max(floor);
        let mut theta = Array2::zeros((p, p));
        let mut dw_prev = f64::INFINITY;
        let mut n_iter = 0;
        while n_iter < opts.max_iter {
            let tol = (0.1 * dw_prev).clamp(floor, loosest);
            let (mut dw, mut moved) = (0.0_f64, false);
            for j in 0..p {
                let (d, m) = sw.update_column(j, tol, self.max_enet_iter);
                if !(d <= dw) {
                    dw = d;
                }
                moved |= m;
            }
            n_iter += 1;
            if !dw.is_finite() {
                return Err(GlassoError::NumericalFailure {
                    solver: "bcd",
                    iteration: n_iter,
                    reason: "the covariance iterate is not finite",
                });
            }
            if sw.recover_theta(&mut theta) {
                if let Ok(chol) = Cholesky::factor(theta.view()) {
                    let logdet = chol.logdet();
                    let w = chol.into_inverse()?;
                    let cert = Certificate::of(theta.view(), logdet, w.view(), s, lam, opts);
                    last = Certified {
                        theta: theta.clone(),
                        w,
                        cert,
                    };
                    if cert.converged(opts) {
                        break;
                    }
                }
            }
            if !moved && dw <= floor {
                // A fixed point of the sweeps: more sweeps change nothing.
                break;
            }
            dw_prev = dw;
        }
        Ok(last.cert.outcome(last.theta, last.w, s, lam, n_iter))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fit::cold_start;
    use crate::problem::lambda_max;
    use crate::test_support::{assert_certified, problem, tight};
    use crate::{GlassoProblem, GlassoSolver, NewtonCd, Penalty};
    use ho_linalg::testing::random_penalty;

    #[test]
    fn objective_does_not_increase_across_sweeps() {
        let (s, lam) = problem(20, 60, 0.1, 7);
        let mut prev = f64::INFINITY;
        let mut n_distinct = 0;
        for k in 1..=12 {
            let solver = Bcd {
                options: GlassoOptions {
                    tol: f64::MIN_POSITIVE,
                    kkt_tol: f64::INFINITY,
                    max_iter: k,
                    screening: false,
                },
                ..Default::default()
            };
            let out = solver
                .solve_block(s.view(), lam.view(), cold_start(s.view(), lam.view()))
                .unwrap();
            assert!(
                out.objective <= prev + 1e-13 * prev.abs().max(1.0),
                "sweep {k}: {} > {prev}",
                out.objective
            );
            if out.objective < prev {
                n_distinct += 1;
            }
            prev = out.objective;
        }
        assert!(n_distinct >= 5, "only {n_distinct} decreasing sweeps");
    }

    #[test]
    fn matches_newton_cd_and_certifies() {
        let (s, lam) = problem(30, 90, 0.05, 3);
        let out = Bcd {
            options: tight(500),
            ..Default::default()
        }
        .solve_block(s.view(), lam.view(), cold_start(s.view(), lam.view()))
        .unwrap();
        assert_certified(&out, &s, &lam);
        let reference = NewtonCd {
            options: tight(100),
            ..Default::default()
        }
        .solve_block(s.view(), lam.view(), cold_start(s.view(), lam.view()))
        .unwrap();
        let err = (&out.theta - &reference.theta)
            .iter()
            .fold(0.0_f64, |m, v| m.max(v.abs()));
        assert!(err <= 1e-8, "max |Θ_bcd − Θ_newton| = {err:e}");
    }

    #[test]
    fn warm_start_from_the_solution_takes_at_most_one_sweep() {
        let (s, lam) = problem(20, 60, 0.2, 11);
        let solver = Bcd {
            options: tight(500),
            ..Default::default()
        };
        let cold = solver
            .solve_block(s.view(), lam.view(), cold_start(s.view(), lam.view()))
            .unwrap();
        assert!(cold.n_iter > 1);
        let warm = solver
            .solve_block(
                s.view(),
                lam.view(),
                BlockStart {
                    theta: cold.theta.clone(),
                    covariance: cold.covariance.clone(),
                },
            )
            .unwrap();
        assert!(warm.n_iter <= 1, "{} sweeps", warm.n_iter);
        assert_certified(&warm, &s, &lam);
    }

    #[test]
    fn weighted_penalty_with_a_penalized_diagonal() {
        let p = 15;
        let (s, _) = problem(p, 45, 0.1, 5);
        let lmax = lambda_max(s.view());
        let mut lam = random_penalty(p, 0.02 * lmax, 0.5 * lmax, 9);
        for i in 0..p {
            lam[[i, i]] = 0.05 * (1 + i % 3) as f64 * lmax;
        }
        let problem = GlassoProblem::new(s.view(), Penalty::Matrix(lam.clone()));
        let fit = Bcd {
            options: tight(500),
            ..Default::default()
        }
        .solve(&problem, None)
        .unwrap();
        assert_eq!(fit.status, ho_linalg::Status::Converged);
        let out = BlockOutcome {
            theta: fit.precision.clone(),
            covariance: fit.covariance.clone(),
            objective: fit.objective,
            logdet: fit.log_det.expect("a solver's fit"),
            dual_gap: fit.dual_gap,
            n_iter: fit.n_iter,
        };
        assert_certified(&out, &s, &lam);
        // The penalized diagonal: W_jj = S_jj + Λ_jj at the optimum.
        for i in 0..p {
            let d = fit.covariance[[i, i]] - s[[i, i]] - lam[[i, i]];
            assert!(d.abs() <= 1e-10, "W_{i}{i} off by {d:e}");
        }
        assert!(fit.n_edges() > 0 && fit.n_edges() < p * (p - 1) / 2);
    }

    #[test]
    fn fewer_samples_than_variables_from_the_cold_start() {
        // n < p: S is singular and the cold start is far from dual feasible; without the Schur
        // safeguard the first sweep lost positive definiteness and the Lasso diverged here.
        let (s, lam) = problem(50, 30, 0.1, 1);
        let problem = GlassoProblem::new(s.view(), Penalty::Matrix(lam.clone()));
        let fit = Bcd {
            options: GlassoOptions {
                screening: true,
                ..tight(500)
            },
            ..Default::default()
        }
        .solve(&problem, None)
        .unwrap();
        assert_eq!(fit.status, ho_linalg::Status::Converged);
        let reference = NewtonCd {
            options: tight(100),
            ..Default::default()
        }
        .solve(&problem, None)
        .unwrap();
        let err = (&fit.precision - &reference.precision)
            .iter()
            .fold(0.0_f64, |m, v| m.max(v.abs()));
        let scale = reference
            .precision
            .iter()
            .fold(0.0_f64, |m, v| m.max(v.abs()));
        assert!(err <= 1e-7 * scale, "max |Θ_bcd − Θ_newton| = {err:e}");
    }

    #[test]
    fn two_variables_closed_form_in_one_sweep() {
        // p = 2, unpenalized diagonal: W₁₂ = ST(S₁₂, λ), W_ii = S_ii.
        let s = ndarray::array![[2.0, 0.8], [0.8, 1.0]];
        let lam = ndarray::array![[0.0, 0.3], [0.3, 0.0]];
        let out = Bcd {
            options: tight(10),
            ..Default::default()
        }
        .solve_block(s.view(), lam.view(), cold_start(s.view(), lam.view()))
        .unwrap();
        assert_eq!(out.n_iter, 1);
        assert!((out.covariance[[0, 1]] - 0.5).abs() <= 1e-14);
        assert!((out.covariance[[0, 0]] - 2.0).abs() <= 1e-14);
        assert_certified(&out, &s, &lam);
    }

    #[test]
    fn invalid_options_are_rejected() {
        let (s, lam) = problem(5, 20, 0.1, 1);
        let start = || cold_start(s.view(), lam.view());
        let bad = Bcd {
            enet_tol: 0.0,
            ..Default::default()
        };
        assert!(matches!(
            bad.solve_block(s.view(), lam.view(), start()),
            Err(GlassoError::InvalidOption {
                name: "enet_tol",
                ..
            })
        ));
        let bad = Bcd {
            max_enet_iter: 0,
            ..Default::default()
        };
        assert!(matches!(
            bad.solve_block(s.view(), lam.view(), start()),
            Err(GlassoError::InvalidOption {
                name: "max_enet_iter",
                ..
            })
        ));
    }
}
