//! `Gista`: proximal gradient with backtracking that keeps Θ ≻ 0 and Barzilai–Borwein steps
//! (G-ISTA, Rolfs, Rajaratnam, Guillot, Wong, Maleki, NeurIPS 2012).
//!
//! # Algorithm
//! With the smooth part `f(Θ) = −log det Θ + ⟨S, Θ⟩`, its gradient `G = S − W` (W = Θ⁻¹) and
//! the weighted ℓ1 part handled by its proximal operator, one step is
//!
//! ```text
//! Θ⁺ = ST(Θ − t G, t Λ)            (soft-thresholding, elementwise)
//! accept if  Θ⁺ ≻ 0 (its Cholesky factorization succeeds)  and
//!            f(Θ⁺) ≤ f(Θ) + ⟨G, Θ⁺ − Θ⟩ + ‖Θ⁺ − Θ‖²_F / (2t)
//! otherwise  t ← t/2
//! ```
//!
//! so Φ does not increase across accepted steps (up to the rounding slack below). W⁺ = (Θ⁺)⁻¹ comes from the accepted factor
//! (LAPACK `potri`): W is always Θ⁻¹ to rounding. The trial step of the next iteration is the
//! Barzilai–Borwein step of the paper,
//!
//! ```text
//! t = ⟨ΔΘ, ΔΘ⟩ / ⟨ΔΘ, ΔG⟩ = ‖ΔΘ‖²_F / (−⟨ΔΘ, ΔW⟩),   ΔΘ = Θ⁺ − Θ,  ΔW = W⁺ − W
//! ```
//!
//! (positive because Θ ↦ Θ⁻¹ is monotone decreasing), clamped to `[1e-20, 1e20]`, and kept
//! from the last step when not positive and finite. The first trial step is
//! `1 / ‖W₀‖²_∞ ≤ λ_min(Θ₀)²`. The sufficient-decrease test allows a rounding slack of
//! `16 ε (|log det Θ| + |⟨S, Θ⟩| + p)`, without which steps near the optimum, whose decrease is
//! below the resolution of f, would be halved forever. The fixed point is the one the
//! hypergradients differentiate (DESIGN.md §2); the convergence is linear.
//!
//! # Stopping
//! Relative duality gap `gap / max(1, |Φ|) ≤ tol` and KKT residual `≤ kkt_tol` (DESIGN.md §1),
//! checked before each step; a step that leaves Θ unchanged (an exact fixed point); or
//! `max_iter` accepted proximal steps (status `MaxIter`).
//!
//! # Errors
//! [`GlassoError::NumericalFailure`] when 60 halvings of t find no positive definite step with
//! sufficient decrease; [`GlassoError::Linalg`] when the start's Θ is not positive definite.
//!
//! # References
//! B. Rolfs, B. Rajaratnam, D. Guillot, I. Wong, A. Maleki, *Iterative thresholding algorithm
//! for sparse inverse covariance estimation*, NeurIPS 25 (2012). J. Barzilai, J. M. Borwein,
//! *Two-point step size gradient methods*, IMA J. Numer. Anal. 8 (1988).

use crate::fit::Certificate;
use crate::newton_cd::Iterate;
use crate::problem::frobenius_inner;
use crate::{BlockOutcome, BlockSolver, BlockStart, GlassoError, GlassoOptions};
use ho_linalg::prox::soft_threshold_matrix;
use ho_linalg::Cholesky;
use ndarray::{Array2, ArrayView2, Zip};

/// G-ISTA: proximal gradient with positive-definite backtracking and Barzilai–Borwein steps.
///
/// | Name | Default | Meaning | Range |
/// |---|---|---|---|
/// | `options` | [`GlassoOptions::default`] | tolerance, proximal-step budget (`max_iter`), screening | |
#[derive(Debug, Clone, Default)]
pub struct Gista {
    /// Shared options (`max_iter` counts accepted proximal steps).
    pub options: GlassoOptions,
}

/// Maximum halvings of the step in one iteration.
const MAX_HALVINGS: usize = 60;
/// Bounds of the Barzilai–Borwein step.
const T_MIN: f64 = 1e-20;
const T_MAX: f64 = 1e20;

/// `1 / ‖W‖²_∞` (max absolute row sum): a lower bound of `λ_min(Θ)²`, so a safe first step.
fn initial_step(w: ArrayView2<'_, f64>) -> f64 {
    let norm = w
        .rows()
        .into_iter()
        .map(|r| r.iter().map(|v| v.abs()).sum::<f64>())
        .fold(0.0_f64, f64::max);
    (1.0 / (norm * norm)).clamp(T_MIN, T_MAX)
}

impl BlockSolver for Gista {
    fn name(&self) -> &'static str {
        "gista"
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
        let opts = &self.options;
        let p = s.nrows();
        let mut it = Iterate::from_start(start)?;
        let mut t = initial_step(it.w.view());
        let mut grad = Array2::zeros((p, p));
        let mut z = Array2::zeros((p, p));
        let mut thr = Array2::zeros((p, p));
        let mut n_iter = 0;
        loop {
            let cert = Certificate::of(it.theta.view(), it.logdet, it.w.view(), s, lam, opts);
            if cert.converged(opts) || n_iter >= opts.max_iter {
                return Ok(cert.outcome(it.theta, it.w, s, lam, n_iter));
            }
            // G = S − W.
            Zip::from(&mut grad)
                .and(s)
                .and(&it.w)
                .for_each(|g, &ss, &ww| *g = ss - ww);
            let s_theta = frobenius_inner(s, it.theta.view());
            let mut accepted = None;
            for _ in 0..MAX_HALVINGS {
                Zip::from(&mut z)
                    .and(&it.theta)
                    .and(&grad)
                    .for_each(|zz, &th, &g| *zz = th - t * g);
                Zip::from(&mut thr).and(lam).for_each(|o, &l| *o = t * l);
                let mut cand = Array2::zeros((p, p));
                soft_threshold_matrix(z.view(), thr.view(), cand.view_mut());
                // ⟨G, D⟩ and ‖D‖², D = Θ⁺ − Θ.
                let (mut gd, mut dd) = (0.0, 0.0);
                Zip::from(&cand)
                    .and(&it.theta)
                    .and(&grad)
                    .for_each(|&c, &th, &g| {
                        let d = c - th;
                        gd += g * d;
                        dd += d * d;
                    });
                if dd == 0.0 {
                    // Θ is a fixed point of the proximal-gradient map: optimal to rounding.
                    return Ok(cert.outcome(it.theta, it.w, s, lam, n_iter));
                }
                if let Ok(chol) = Cholesky::factor(cand.view()) {
                    let logdet = chol.logdet();
                    let s_cand = frobenius_inner(s, cand.view());
                    // f(Θ⁺) − f(Θ), its terms grouped to limit cancellation.
                    let df = (it.logdet - logdet) + (s_cand - s_theta);
                    let slack = 16.0 * f64::EPSILON * (it.logdet.abs() + s_theta.abs() + p as f64);
                    if df.is_finite() && df <= gd + dd / (2.0 * t) + slack {
                        let w = chol.into_inverse()?;
                        accepted = Some((cand, w, logdet));
                        break;
                    }
                }
                t *= 0.5;
            }
            let Some((theta, w, logdet)) = accepted else {
                return Err(GlassoError::NumericalFailure {
                    solver: "gista",
                    iteration: n_iter,
                    reason: "backtracking found no positive definite step with sufficient decrease",
                });
            };
            // Barzilai–Borwein: t = ‖ΔΘ‖² / (−⟨ΔΘ, ΔW⟩).
            let (mut num, mut den) = (0.0, 0.0);
            Zip::from(&theta)
                .and(&it.theta)
                .and(&w)
                .and(&it.w)
                .for_each(|&th1, &th0, &w1, &w0| {
                    let d = th1 - th0;
                    num += d * d;
                    den -= d * (w1 - w0);
                });
            let bb = num / den;
            if bb.is_finite() && bb > 0.0 {
                t = bb.clamp(T_MIN, T_MAX);
            }
            it = Iterate { theta, w, logdet };
            n_iter += 1;
        }
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
    fn objective_does_not_increase_across_accepted_steps() {
        let (s, lam) = problem(20, 60, 0.1, 7);
        let mut prev = f64::INFINITY;
        let mut n_decreasing = 0;
        for k in 1..=40 {
            let solver = Gista {
                options: GlassoOptions {
                    tol: f64::MIN_POSITIVE,
                    kkt_tol: f64::INFINITY,
                    max_iter: k,
                    screening: false,
                },
            };
            let out = solver
                .solve_block(s.view(), lam.view(), cold_start(s.view(), lam.view()))
                .unwrap();
            assert_eq!(out.n_iter, k);
            // The acceptance test allows a rounding slack of a few ε.
            assert!(
                out.objective <= prev + 1e-13 * prev.abs().max(1.0),
                "step {k}: {} > {prev}",
                out.objective
            );
            if out.objective < prev {
                n_decreasing += 1;
            }
            prev = out.objective;
        }
        assert!(n_decreasing >= 20, "only {n_decreasing} decreasing steps");
    }

    #[test]
    fn matches_newton_cd_and_certifies() {
        let (s, lam) = problem(25, 75, 0.05, 3);
        let out = Gista {
            options: tight(5000),
        }
        .solve_block(s.view(), lam.view(), cold_start(s.view(), lam.view()))
        .unwrap();
        assert!(out.n_iter < 5000);
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
        assert!(err <= 1e-8, "max |Θ_gista − Θ_newton| = {err:e}");
        // Exact zeros off the support, as the reference.
        for (a, b) in out.theta.iter().zip(reference.theta.iter()) {
            assert_eq!(*a != 0.0, *b != 0.0);
        }
    }

    #[test]
    fn warm_start_from_the_solution_takes_at_most_one_step() {
        let (s, lam) = problem(20, 60, 0.2, 11);
        let solver = Gista {
            options: tight(5000),
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
        assert!(warm.n_iter <= 1, "{} steps", warm.n_iter);
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
        let fit = Gista {
            options: tight(5000),
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
    fn the_budget_is_reported_as_max_iter() {
        let (s, lam) = problem(10, 30, 0.05, 2);
        let fit = Gista {
            options: GlassoOptions {
                max_iter: 2,
                ..tight(2)
            },
        }
        .solve(&GlassoProblem::new(s.view(), Penalty::Matrix(lam)), None)
        .unwrap();
        assert_eq!(fit.status, ho_linalg::Status::MaxIter);
        assert_eq!(fit.n_iter, 2);
    }
}
