//! The error type of `ho-bilevel`.

use ho_glasso::GlassoError;
use ho_implicit::ImplicitError;
use ho_linalg::LinalgError;
use ho_outer::OuterError;

/// Everything that can go wrong while tuning.
#[derive(Debug, thiserror::Error)]
pub enum BilevelError {
    /// Too few samples for the requested split.
    #[error("too few samples: {n_samples} rows, at least {min} needed for this split")]
    TooFewSamples {
        /// Rows of X.
        n_samples: usize,
        /// Rows needed.
        min: usize,
    },
    /// An option out of its range.
    #[error("invalid value {value} for {name} (allowed: {range})")]
    InvalidOption {
        /// Option name.
        name: &'static str,
        /// Value given.
        value: f64,
        /// Allowed range.
        range: &'static str,
    },
    /// Shapes that must agree do not.
    #[error("dimension mismatch: expected {expected}, found {found}")]
    DimensionMismatch {
        /// Expected.
        expected: usize,
        /// Found.
        found: usize,
    },
    /// `λ_max = 0`: the training covariance is diagonal, there is nothing to tune.
    #[error("the training covariance is diagonal (λ_max = 0): nothing to tune")]
    NothingToTune,
    /// A lower-layer failure.
    #[error(transparent)]
    Linalg(#[from] LinalgError),
    /// A GLASSO failure.
    #[error(transparent)]
    Glasso(#[from] GlassoError),
    /// A hypergradient failure.
    #[error(transparent)]
    Implicit(#[from] ImplicitError),
    /// An outer-optimizer failure.
    #[error(transparent)]
    Outer(#[from] OuterError),
}

#[cfg(test)]
mod tests {
    const fn assert_send_sync<T: Send + Sync + 'static>() {}
    const _: () = assert_send_sync::<super::BilevelError>();
}
