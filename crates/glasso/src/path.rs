//! Regularization path: a decreasing sequence of λ solved with warm starts.

use crate::{GlassoError, GlassoFit, GlassoProblem, GlassoSolver, Penalty};
use ndarray::ArrayView2;

/// `n` values log-spaced from `lambda_max` down to `ratio · lambda_max` (decreasing).
pub fn lambda_path(lambda_max: f64, ratio: f64, n: usize) -> Vec<f64> {
    match n {
        0 => vec![],
        1 => vec![lambda_max],
        _ => (0..n)
            .map(|k| lambda_max * ratio.powf(k as f64 / (n - 1) as f64))
            .collect(),
    }
}

/// Solves the scalar-penalty problems for every λ of `lambdas` (in the order given; use a
/// decreasing order), each warm-started from the previous fit.
///
/// # Errors
/// The first solver error.
pub fn solve_path(
    solver: &dyn GlassoSolver,
    emp_cov: ArrayView2<'_, f64>,
    lambdas: &[f64],
    penalize_diagonal: bool,
) -> Result<Vec<GlassoFit>, GlassoError> {
    let mut fits: Vec<GlassoFit> = Vec::with_capacity(lambdas.len());
    for &alpha in lambdas {
        let problem = GlassoProblem::new(
            emp_cov,
            Penalty::Scalar {
                alpha,
                penalize_diagonal,
            },
        );
        let fit = solver.solve(&problem, fits.last())?;
        fits.push(fit);
    }
    Ok(fits)
}
