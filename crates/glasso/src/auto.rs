//! `Auto`: the default solver, which picks NewtonCd, DualPn or Bcd→ObnCg per screened block.
//!
//! # Algorithm
//! For each block (connected component of `|S_kl| > Λ_kl`), count the candidate edges
//! `c = #{k ≠ l: |S_kl| > Λ_kl}` (an upper bound of the free set at the start). Sparse blocks
//! (`c ≤ sparse_ratio · p_b`) go to [`NewtonCd`], whose coordinate sweeps cost O(|F| p).
//! Denser blocks go to [`Bcd`] (block coordinate descent: cheap sweeps, linear convergence at
//! a rate of ≈ 4 in the gap per sweep on the paper's data), to `tol` and `kkt_tol`; if its
//! sweep budget (`max_iter`) runs out first, [`ObnCg`] (orthant Newton–CG, quadratic
//! convergence once the support is found) finishes from its last point. Measured side by side
//! at p = 200 and 500, λ = 0.1, 0.05 and 0.02·λ_max, Bcd alone was 1.0–1.9× faster than a
//! Bcd-to-1e-6-then-ObnCg polish both at the default tolerance and at the hypergradients'
//! (gap 1e-10, KKT 1e-9), and 2–3× faster than ObnCg alone.
//!
//! Dense blocks (candidate fraction `c / (p_b(p_b − 1)/2) ≥ dual_fraction`, i.e. λ ≲ 0.02·λ_max
//! on the paper's data) go to [`DualPn`] (projected Newton on the dual) when `p_b ≤ 300`, when
//! the start is warm (Θ₀ has off-diagonal nonzeros), or when DualPn's cold start — the
//! soft-thresholded `S` with `S_ii + Λ_ii` on the diagonal, `S + U₀` for the bounds
//! `U₀ = −clip(S, −Λ, Λ)` — is positive definite (one Cholesky factorization decides).
//! Measured side by side at p = 100–200, λ = 0.01 and 0.003·λ_max, tight tolerances: DualPn
//! 2–4× faster than Bcd→ObnCg and 3–10× faster than ObnCg, cold and warm-started (4 steps for
//! a 10 % change of λ); at 0.05·λ_max it is slower than Bcd→ObnCg. A cold large block whose
//! soft-thresholded start is not positive definite starts DualPn with its pairs pulled into
//! the interior, hence free (Jacobi- or star-preconditioned CG on large free sets), and keeps
//! Bcd→ObnCg: at p = 500, tolerance 1e-7, two threads, DualPn against Bcd→ObnCg there took
//! 3.9 vs 2.4 s (0.01·λ_max) and 2.8 vs 1.1 s (0.02) with n = 20p, 2.6 vs 7.4 s, 1.9 vs 2.2 s
//! and 1.1 vs 1.1 s (0.003, 0.01, 0.02) with n = 4p. Where it is positive definite (the
//! smallest penalties) Bcd's linear rate is slow and DualPn was 3–60× faster: at p = 500,
//! n = 20p, 0.28 vs 13.5 s (3e-4·λ_max), 0.63 vs 6.9 s (1e-3), 1.16 vs 3.7 s (3e-3); n = 4p
//! 0.25 vs 15.0 s (3e-4), 0.62 vs 7.1 s (1e-3); at p = 1000, n = 20p, 2.6 s against 175 s at
//! 1e-4·λ_max (where Bcd→ObnCg stopped unconverged at its 400-step budget, relative gap
//! 7e-3) and 4.5 vs 57 s at 1e-3 (the soft start is not positive definite at 0.01: 16.7 s
//! against 14.0 s, Bcd→ObnCg kept). Warm-started DualPn was 2.7× faster than ObnCg at
//! p = 500, 0.01·λ_max.
//!
//! Cold large blocks whose soft-thresholded start is not positive definite still go to
//! DualPn from a candidate fraction of `cold_dual_fraction` = 0.79: there Bcd's linear rate
//! collapses. Cold solves on the paper's data (n = 20p), tolerance 1e-7, two threads, DualPn
//! against Bcd→ObnCg: p = 1000 at 0.007·λ_max (candidate fraction 0.799) 16.2 vs 26.1 s,
//! 0.005 (0.854) 14.0 vs 36.0 s, 0.003 (0.911) 22.2 vs 66.3 s, 0.00183 (0.945) 13.7 s against
//! 3449 s (Bcd crawled through 370 sweeps of ~9 s); p = 500 at 0.005 (0.885) 1.26 vs 4.47 s.
//! Below it Bcd→ObnCg stays: p = 1000 at 0.01 (0.722) 16.7 vs 14.0 s, p = 500 at 0.01 (0.777)
//! 3.9 vs 2.4 s, with n = 4p (0.767) 1.9 vs 2.2 s.
//!
//! Large warm blocks (more than `large_block` = 600 nodes) go to DualPn from a candidate
//! fraction of `large_dual_fraction` = 0.2 already. Bcd's sweeps update W column by column on
//! one thread, and beyond ~500 nodes W (8p² bytes) no longer fits a core's L2 cache (2 MB
//! here), while DualPn's products and factorizations use every thread. Warm starts from
//! 0.1·λ_max on the paper's data, tight tolerances (gap 1e-10), two threads, Bcd against
//! DualPn: p = 500 at 0.05 and 0.037·λ_max (candidate fractions 0.28 and 0.39) 0.51 vs
//! 0.85 s and 0.89 vs 1.11 s, at 0.02 (0.60) 1.91 vs 1.45 s; p = 700 at 0.07, 0.05, 0.037
//! (0.19, 0.29, 0.39) 0.97 vs 1.00 s, 1.82 vs 1.34 s, 3.25 vs 1.84 s; p = 1000 (0.16, 0.24,
//! 0.33) 2.99 vs 2.06 s, 5.14 vs 3.18 s, 8.31 vs 4.69 s. In matrix tuning at p = 1000 the
//! scalar stage's first line-search trial (0.037·λ_max) took 9.2 s with Bcd, 4.9 s with
//! DualPn.
//!
//! # Stopping
//! That of the chosen solver (relative gap ≤ `tol`, KKT ≤ `kkt_tol`).
//!
//! # Errors
//! Those of the chosen solver.
//!
//! # References
//! See [`NewtonCd`] and [`ObnCg`].

use crate::problem::{kkt_residual, relative_gap};
use crate::{
    Bcd, BlockOutcome, BlockSolver, BlockStart, DualPn, GlassoError, GlassoOptions, NewtonCd, ObnCg,
};
use ho_linalg::{soft_threshold_matrix, Cholesky};
use ndarray::{Array2, ArrayView2};

/// The default solver: NewtonCd on sparse blocks, DualPn or Bcd (ObnCg as a fallback) on dense ones.
///
/// | Name | Default | Meaning | Range |
/// |---|---|---|---|
/// | `options` | [`GlassoOptions::default`] | shared by both solvers | |
/// | `sparse_ratio` | 2.0 | blocks with at most `sparse_ratio · p_b` candidate edges use NewtonCd | ≥ 0 |
/// | `dual_fraction` | 0.6 | dense blocks with at least this fraction of candidate pairs use DualPn (p_b ≤ 300, warm, or a positive definite soft-thresholded start) | [0, 1], > 1 disables |
/// | `large_block` | 600 | warm blocks with more nodes use DualPn from `large_dual_fraction` | |
/// | `large_dual_fraction` | 0.2 | the fraction of candidate pairs from which large warm blocks use DualPn | [0, 1], > 1 disables |
/// | `cold_dual_fraction` | 0.79 | the fraction of candidate pairs from which large cold blocks use DualPn even when the soft-thresholded start is not positive definite | [0, 1], > 1 disables |
/// | `certify_against_iterate` | false | DualPn's [`DualPn::certify_against_iterate`] | |
#[derive(Debug, Clone)]
pub struct Auto {
    /// Shared options.
    pub options: GlassoOptions,
    /// Candidate edges per node below which NewtonCd is used.
    pub sparse_ratio: f64,
    /// Fraction of candidate pairs from which DualPn is used.
    pub dual_fraction: f64,
    /// Nodes beyond which a warm block uses DualPn from `large_dual_fraction`.
    pub large_block: usize,
    /// Fraction of candidate pairs from which large warm blocks use DualPn.
    pub large_dual_fraction: f64,
    /// Fraction of candidate pairs from which large cold blocks use DualPn whatever their
    /// soft-thresholded start (module docs).
    pub cold_dual_fraction: f64,
    /// Passed to DualPn ([`DualPn::certify_against_iterate`]): its recovered primal certified
    /// against its dual iterate (the tuner's inner solves).
    pub certify_against_iterate: bool,
}

impl Default for Auto {
    fn default() -> Self {
        Self {
            options: GlassoOptions::default(),
            sparse_ratio: 2.0,
            dual_fraction: 0.6,
            large_block: 600,
            large_dual_fraction: 0.2,
            cold_dual_fraction: 0.79,
            certify_against_iterate: false,
        }
    }
}

impl Auto {
    /// Whether a block is solved by NewtonCd (true) or ObnCg (false).
    pub fn prefers_newton_cd(
        &self,
        emp_cov: ArrayView2<'_, f64>,
        lam: ArrayView2<'_, f64>,
    ) -> bool {
        let p = emp_cov.nrows();
        let mut c = 0usize;
        for i in 0..p {
            for j in 0..i {
                if emp_cov[[i, j]].abs() > lam[[i, j]] {
                    c += 1;
                }
            }
        }
        (c as f64) <= self.sparse_ratio * p as f64
    }

    /// Whether a dense block is solved by DualPn (see the module documentation).
    pub fn prefers_dual_pn(
        &self,
        emp_cov: ArrayView2<'_, f64>,
        lam: ArrayView2<'_, f64>,
        start_theta: ArrayView2<'_, f64>,
    ) -> bool {
        let p = emp_cov.nrows();
        if p < 2 {
            return false;
        }
        let (mut c, mut warm) = (0usize, false);
        for i in 0..p {
            for j in 0..i {
                if emp_cov[[i, j]].abs() > lam[[i, j]] {
                    c += 1;
                }
                warm |= start_theta[[i, j]] != 0.0;
            }
        }
        let fraction = c as f64 / (p * (p - 1) / 2) as f64;
        if warm && p > self.large_block {
            fraction >= self.large_dual_fraction.min(self.dual_fraction)
        } else {
            fraction >= self.dual_fraction
                && (p <= 300
                    || warm
                    || fraction >= self.cold_dual_fraction
                    || soft_start_is_positive_definite(emp_cov, lam))
        }
    }
}

/// Whether DualPn's cold start `S + U₀`, `U₀ = −clip(S, −Λ, Λ)` off the diagonal and
/// `U_ii = Λ_ii` (the soft-thresholded S with `S_ii + Λ_ii` on its diagonal), is positive
/// definite: DualPn then starts with its pairs at their bounds, not pulled into the interior
/// (module docs).
fn soft_start_is_positive_definite(emp_cov: ArrayView2<'_, f64>, lam: ArrayView2<'_, f64>) -> bool {
    // No panic on bad penalties (`prefers_dual_pn` is public): a NaN one puts a NaN on the
    // diagonal, which the factorization refuses.
    let mut soft = Array2::zeros(emp_cov.dim());
    soft_threshold_matrix(emp_cov, lam, soft.view_mut());
    for i in 0..soft.nrows() {
        soft[[i, i]] = emp_cov[[i, i]] + lam[[i, i]];
    }
    Cholesky::factor_inplace(soft).is_ok()
}

impl BlockSolver for Auto {
    fn name(&self) -> &'static str {
        "auto"
    }

    fn options(&self) -> &GlassoOptions {
        &self.options
    }

    fn with_tol(&self, tol: f64) -> Box<dyn BlockSolver> {
        crate::fit::with_tol(self, tol, |s| &mut s.options)
    }

    fn solve_block(
        &self,
        emp_cov: ArrayView2<'_, f64>,
        lam: ArrayView2<'_, f64>,
        start: BlockStart,
    ) -> Result<BlockOutcome, GlassoError> {
        if self.prefers_newton_cd(emp_cov, lam) {
            NewtonCd {
                options: self.options,
                ..Default::default()
            }
            .solve_block(emp_cov, lam, start)
        } else if self.prefers_dual_pn(emp_cov, lam, start.theta.view()) {
            DualPn {
                options: self.options,
                certify_against_iterate: self.certify_against_iterate,
                ..Default::default()
            }
            .solve_block(emp_cov, lam, start)
        } else {
            // Block coordinate descent converges linearly at a fast rate on these blocks
            // (a factor ≈ 4 of the gap per sweep on the paper's data, cheap sweeps)...
            let first = Bcd {
                options: self.options,
                ..Default::default()
            }
            .solve_block(emp_cov, lam, start)?;
            let kkt = kkt_residual(first.theta.view(), first.covariance.view(), emp_cov, lam);
            if self
                .options
                .is_converged(first.dual_gap, first.objective, kkt)
            {
                return Ok(first);
            }
            // ...and when its sweep budget runs out, Newton finishes from there in a few
            // quadratically convergent steps.
            let n_bcd = first.n_iter;
            let mut out = ObnCg {
                options: self.options,
                ..Default::default()
            }
            .solve_block(
                emp_cov,
                lam,
                BlockStart {
                    theta: first.theta,
                    covariance: first.covariance,
                },
            )?;
            out.n_iter += n_bcd;
            debug_assert!(relative_gap(out.dual_gap, out.objective).is_finite());
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    /// A p × p "covariance" whose off-diagonal entries exceed λ = 1 on about `share` of the
    /// pairs, and a start that is warm (one off-diagonal nonzero) or cold.
    fn block(p: usize, share: f64, warm: bool) -> (Array2<f64>, Array2<f64>, Array2<f64>) {
        let s = Array2::from_shape_fn((p, p), |(i, j)| {
            if i == j || (((i + j) * 7919 + i * j) % 1000) as f64 / 1000.0 < share {
                2.0
            } else {
                0.5
            }
        });
        let lam = Array2::from_elem((p, p), 1.0);
        let mut theta = Array2::eye(p);
        if warm {
            theta[[0, 1]] = 0.1;
            theta[[1, 0]] = 0.1;
        }
        (s, lam, theta)
    }

    #[test]
    fn large_warm_blocks_use_dual_pn_from_a_lower_candidate_fraction() {
        let auto = Auto::default();
        let choice = |p: usize, share: f64, warm: bool| {
            let (s, lam, theta) = block(p, share, warm);
            auto.prefers_dual_pn(s.view(), lam.view(), theta.view())
        };
        // A third of the pairs: DualPn for a large warm block only.
        assert!(choice(700, 0.33, true));
        assert!(!choice(700, 0.33, false));
        assert!(!choice(500, 0.33, true));
        // Below large_dual_fraction: Bcd at any size.
        assert!(!choice(700, 0.1, true));
        // Dense blocks: DualPn when warm or small, as before.
        assert!(choice(500, 0.8, true));
        assert!(choice(200, 0.8, false));
        assert!(!choice(700, 0.7, false));
        // Cold, not positive definite, but nearly every pair a candidate: DualPn.
        assert!(choice(700, 0.9, false));
    }

    #[test]
    fn large_cold_blocks_use_dual_pn_when_the_soft_thresholded_start_is_positive_definite() {
        let auto = Auto::default();
        // 2 on 80 % of the pairs, 0.5 elsewhere, λ = 1: the soft-thresholded S has 1 on those
        // pairs, and is positive definite only with a dominant diagonal.
        let (mut s, lam, cold) = block(700, 0.7, false);
        assert!(!soft_start_is_positive_definite(s.view(), lam.view()));
        assert!(!auto.prefers_dual_pn(s.view(), lam.view(), cold.view()));
        s.diag_mut().fill(700.0);
        assert!(soft_start_is_positive_definite(s.view(), lam.view()));
        assert!(auto.prefers_dual_pn(s.view(), lam.view(), cold.view()));
        // A NaN penalty (rejected earlier by problem validation) gives false, not a panic.
        let nan = Array2::from_elem((700, 700), f64::NAN);
        assert!(!soft_start_is_positive_definite(s.view(), nan.view()));
        // The candidate fraction still comes first.
        let (mut sparse, lam, cold) = block(700, 0.3, false);
        sparse.diag_mut().fill(700.0);
        assert!(!auto.prefers_dual_pn(sparse.view(), lam.view(), cold.view()));
    }

    #[test]
    fn a_cold_large_block_at_a_small_penalty_is_solved_by_dual_pn() {
        // n = 4p samples of a 400-variable model at 1e-3·λ_max: nearly every pair is a
        // candidate and the soft-thresholded S is positive definite.
        let data = ho_linalg::testing::paper_data(400, 1600, 0.9, 0);
        let s = ho_linalg::empirical_covariance(data.x.view(), false).unwrap();
        let lam = Array2::from_elem((400, 400), 1e-3 * crate::lambda_max(s.view()));
        let cold = crate::fit::cold_start(s.view(), lam.view());
        let auto = Auto::default();
        assert!(auto.prefers_dual_pn(s.view(), lam.view(), cold.theta.view()));
        let out = auto.solve_block(s.view(), lam.view(), cold).unwrap();
        let kkt = kkt_residual(
            out.theta.view(),
            out.covariance.view(),
            s.view(),
            lam.view(),
        );
        assert!(auto.options.is_converged(out.dual_gap, out.objective, kkt));
        // DualPn's Newton steps, not Bcd's sweeps (which need dozens at this penalty).
        assert!(out.n_iter <= 20, "{} iterations", out.n_iter);
    }
}
