//! Placeholder: not implemented yet.

use crate::{BlockOutcome, BlockSolver, BlockStart, GlassoError, GlassoOptions};
use ndarray::ArrayView2;

/// Placeholder solver (not implemented yet).
#[derive(Debug, Clone, Default)]
pub struct Auto {
    /// Shared options.
    pub options: GlassoOptions,
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
        _emp_cov: ArrayView2<'_, f64>,
        _lam: ArrayView2<'_, f64>,
        _start: BlockStart,
    ) -> Result<BlockOutcome, GlassoError> {
        Err(GlassoError::NumericalFailure {
            solver: "auto",
            iteration: 0,
            reason: "not implemented",
        })
    }
}
