//! The error type of `ho-glasso`.

use ho_linalg::LinalgError;

/// Everything that can go wrong when setting up or solving a GLASSO problem.
#[derive(Debug, thiserror::Error)]
pub enum GlassoError {
    /// The empirical covariance is not square.
    #[error("empirical covariance is not square ({rows} × {cols})")]
    NotSquare {
        /// Rows.
        rows: usize,
        /// Columns.
        cols: usize,
    },
    /// The empirical covariance has no rows.
    #[error("empirical covariance is empty")]
    Empty,
    /// A NaN or infinite entry in S or Λ.
    #[error("non-finite entry in {what} at ({row}, {col})")]
    NonFinite {
        /// `"covariance"` or `"penalty"`.
        what: &'static str,
        /// Row.
        row: usize,
        /// Column.
        col: usize,
    },
    /// S or Λ is not symmetric beyond the tolerance.
    #[error("{what} is not symmetric at ({row}, {col}): asymmetry {asymmetry:e}")]
    NotSymmetric {
        /// `"covariance"` or `"penalty"`.
        what: &'static str,
        /// Row.
        row: usize,
        /// Column.
        col: usize,
        /// Absolute difference `|A_ij − A_ji|`.
        asymmetry: f64,
    },
    /// A negative (or NaN) penalty.
    #[error("penalty must be ≥ 0, found {value} at ({row}, {col})")]
    InvalidPenalty {
        /// The value.
        value: f64,
        /// Row.
        row: usize,
        /// Column.
        col: usize,
    },
    /// The penalty matrix does not match the dimension of S.
    #[error("penalty matrix is {found} × {found}, expected {expected} × {expected}")]
    PenaltyShape {
        /// p of S.
        expected: usize,
        /// Size of Λ (rows, or columns when not square).
        found: usize,
    },
    /// `S_ii + Λ_ii ≤ 0`: the objective is unbounded below in Θ_ii.
    #[error("unbounded problem: S[{index},{index}] + Λ[{index},{index}] = {value} ≤ 0")]
    Unbounded {
        /// The diagonal index.
        index: usize,
        /// `S_ii + Λ_ii`.
        value: f64,
    },
    /// A solver option out of its range.
    #[error("invalid value {value} for {name} (allowed: {range})")]
    InvalidOption {
        /// Option name.
        name: &'static str,
        /// Value given.
        value: f64,
        /// Allowed range.
        range: &'static str,
    },
    /// The warm start does not have the problem's dimension.
    #[error("warm start is {found} × {found}, the problem is {expected} × {expected}")]
    WarmStartShape {
        /// p of the problem.
        expected: usize,
        /// p of the warm start.
        found: usize,
    },
    /// A numerical failure inside a solver (lost positive definiteness that no step could
    /// restore, a non-finite iterate).
    #[error("numerical failure in {solver} at iteration {iteration}: {reason}")]
    NumericalFailure {
        /// Solver name.
        solver: &'static str,
        /// Iteration.
        iteration: usize,
        /// What failed.
        reason: &'static str,
    },
    /// A solver name that does not exist.
    #[error(
        "unknown solver {name:?} (expected one of auto, newton-cd, obn-cg, dual-pn, bcd, gista)"
    )]
    UnknownSolver {
        /// The name given.
        name: String,
    },
    /// A lower-layer failure.
    #[error(transparent)]
    Linalg(#[from] LinalgError),
}

#[cfg(test)]
mod tests {
    const fn assert_send_sync<T: Send + Sync + 'static>() {}
    const _: () = assert_send_sync::<super::GlassoError>();
}
