//! Placeholder: not implemented yet.

use crate::{BlockOutcome, BlockSolver, BlockStart, GlassoError, GlassoOptions};
use ndarray::ArrayView2;

/// Placeholder solver (not implemented yet).
#[derive(Debug, Clone, Default)]
pub struct ObnCg {
    /// Shared options.
    pub options: GlassoOptions,
}

impl BlockSolver for ObnCg {
    fn name(&self) -> &'static str {
        "obn_cg"
    }
    fn options(&self) -> &GlassoOptions {
        &self.options
    }
    fn solve_block(
        &self,
        _emp_cov: ArrayView2<'_, f64>,
        _lam: ArrayView2<'_, f64>,
        _start: BlockStart,
    ) -> Result<BlockOutcome, GlassoError> {
        Err(GlassoError::NumericalFailure {
            solver: "obn_cg",
            iteration: 0,
            reason: "not implemented",
        })
    }
}
