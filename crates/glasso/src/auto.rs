//! `Auto`: the default solver, which picks NewtonCd or ObnCg per screened block.
//!
//! # Algorithm
//! For each block (connected component of `|S_kl| > Λ_kl`), count the candidate edges
//! `c = #{k ≠ l: |S_kl| > Λ_kl}` (an upper bound of the free set at the start). Sparse blocks
//! (`c ≤ sparse_ratio · p_b`) go to [`NewtonCd`], whose coordinate sweeps cost O(|F| p);
//! denser blocks go to [`ObnCg`], whose Newton–CG products are BLAS matrix products. On the
//! paper's data (benchmark `glasso/*`), ObnCg is the faster method from λ ≈ 0.1·λ_max down,
//! where tuning spends its time, and both are sub-millisecond on screened sparse problems.
//!
//! # Stopping
//! That of the chosen solver (relative gap ≤ `tol`, KKT ≤ `kkt_tol`).
//!
//! # Errors
//! Those of the chosen solver.
//!
//! # References
//! See [`NewtonCd`] and [`ObnCg`].

use crate::{BlockOutcome, BlockSolver, BlockStart, GlassoError, GlassoOptions, NewtonCd, ObnCg};
use ndarray::ArrayView2;

/// The default solver: NewtonCd on sparse blocks, ObnCg on dense ones.
///
/// | Name | Default | Meaning | Range |
/// |---|---|---|---|
/// | `options` | [`GlassoOptions::default`] | shared by both solvers | |
/// | `sparse_ratio` | 2.0 | blocks with at most `sparse_ratio · p_b` candidate edges use NewtonCd | ≥ 0 |
#[derive(Debug, Clone)]
pub struct Auto {
    /// Shared options.
    pub options: GlassoOptions,
    /// Candidate edges per node below which NewtonCd is used.
    pub sparse_ratio: f64,
}

impl Default for Auto {
    fn default() -> Self {
        Self {
            options: GlassoOptions::default(),
            sparse_ratio: 2.0,
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
}

impl BlockSolver for Auto {
    fn name(&self) -> &'static str {
        "auto"
    }

    fn options(&self) -> &GlassoOptions {
        &self.options
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
        } else {
            ObnCg {
                options: self.options,
                ..Default::default()
            }
            .solve_block(emp_cov, lam, start)
        }
    }
}
