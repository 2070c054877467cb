//! The error type of `ho-linalg`.

use std::path::PathBuf;

/// Everything that can go wrong in `ho-linalg`. Variants carry the numbers that locate the
/// problem (pivot, row, column, line); messages are lower-case one-liners.
#[derive(Debug, thiserror::Error)]
pub enum LinalgError {
    /// A Cholesky factorization met a non-positive pivot (0-based index of the leading minor).
    #[error("matrix is not positive definite (non-positive pivot at index {pivot})")]
    NotPositiveDefinite {
        /// 0-based index of the first non-positive pivot.
        pivot: usize,
    },
    /// A square matrix was expected.
    #[error("matrix is not square ({rows} × {cols})")]
    NotSquare {
        /// Number of rows.
        rows: usize,
        /// Number of columns.
        cols: usize,
    },
    /// Two dimensions that must agree do not.
    #[error("dimension mismatch: expected {expected}, found {found}")]
    DimensionMismatch {
        /// The expected length.
        expected: usize,
        /// The length found.
        found: usize,
    },
    /// A matrix that must be symmetric is not, within the tolerance.
    #[error("matrix is not symmetric: |A[{row},{col}] − A[{col},{row}]| = {asymmetry:e} exceeds {tol:e}")]
    NotSymmetric {
        /// Row of the worst entry.
        row: usize,
        /// Column of the worst entry.
        col: usize,
        /// The absolute asymmetry found.
        asymmetry: f64,
        /// The tolerance allowed.
        tol: f64,
    },
    /// A NaN or infinite entry.
    #[error("non-finite entry at row {row}, column {col}")]
    NonFinite {
        /// 0-based row.
        row: usize,
        /// 0-based column.
        col: usize,
    },
    /// Too few samples for the requested estimate.
    #[error("too few samples: {n_samples} given, at least {min} needed")]
    TooFewSamples {
        /// Number of samples given.
        n_samples: usize,
        /// Minimum required.
        min: usize,
    },
    /// A column of the data has zero variance (where that matters, e.g. for a correlation).
    #[error("column {column} has zero variance")]
    ZeroVariance {
        /// 0-based column.
        column: usize,
    },
    /// A threshold or tolerance out of its allowed range.
    #[error("invalid value {value} for {name} (allowed: {range})")]
    InvalidOption {
        /// The option's name.
        name: &'static str,
        /// The value given.
        value: f64,
        /// The allowed range, in words.
        range: &'static str,
    },
    /// An iterative solver broke down (a zero or negative curvature / inner product).
    #[error("linear solver breakdown after {n_iter} iterations (residual norm {residual_norm:e})")]
    SolverBreakdown {
        /// Iterations done.
        n_iter: usize,
        /// Residual norm at the breakdown.
        residual_norm: f64,
    },
    /// LAPACK reported an error code other than a non-positive pivot.
    #[error("lapack routine failed with code {code}")]
    Lapack {
        /// The LAPACK `info` code.
        code: i32,
    },
    /// The file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A file holds no data.
    #[error("{}: file is empty", path.display())]
    EmptyFile {
        /// The file.
        path: PathBuf,
    },
    /// A row of a CSV file has a different number of fields from the first.
    #[error("{}: line {line} has {found} fields, expected {expected}", path.display())]
    RaggedRow {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// Fields expected (those of the first row).
        expected: usize,
        /// Fields found.
        found: usize,
    },
    /// A field of a CSV file is not a number.
    #[error("{}: line {line}, column {column}: not a number", path.display())]
    BadNumber {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// 1-based column number.
        column: usize,
    },
    /// A field of a file is NaN or infinite.
    #[error("{}: line {line}, column {column}: NaN or infinite value", path.display())]
    NonFiniteInFile {
        /// The file.
        path: PathBuf,
        /// 1-based line number (for `.npy`: 1-based row).
        line: usize,
        /// 1-based column number.
        column: usize,
    },
    /// An `.npy` file could not be parsed as a 2-D `f64` array.
    #[error("{}: not a 2-d float64 .npy array ({source})", path.display())]
    Npy {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The file name has an extension other than `.csv` or `.npy`.
    #[error("{}: unsupported file extension (use .csv or .npy)", path.display())]
    UnsupportedExtension {
        /// The file.
        path: PathBuf,
    },
}

impl LinalgError {
    /// Converts a LAPACK error of a Cholesky routine (`potrf`: a positive `info` is the 1-based
    /// order of the first non-positive leading minor).
    pub(crate) fn from_cholesky(e: lax::error::Error) -> Self {
        use lax::error::Error as E;
        match e {
            E::LapackComputationalFailure { return_code } if return_code > 0 => {
                LinalgError::NotPositiveDefinite {
                    pivot: (return_code - 1) as usize,
                }
            }
            E::LapackComputationalFailure { return_code }
            | E::LapackInvalidValue { return_code } => LinalgError::Lapack { code: return_code },
            E::InvalidShape => LinalgError::Lapack { code: 0 },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const fn assert_send_sync<T: Send + Sync + 'static>() {}
    const _: () = assert_send_sync::<LinalgError>();

    #[test]
    fn messages_are_one_line() {
        let e = LinalgError::NotPositiveDefinite { pivot: 3 };
        assert!(!e.to_string().contains('\n'));
    }
}
