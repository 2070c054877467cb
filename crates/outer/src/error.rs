//! The error type of `ho-outer`.

use std::error::Error;

/// Everything that can go wrong in `ho-outer`.
///
/// Three groups of variants:
///
/// * set-up errors, reported once at the start of [`Minimizer::minimize`](crate::Minimizer::minimize):
///   [`InvalidOption`](Self::InvalidOption), [`MissingOption`](Self::MissingOption),
///   [`InvalidBounds`](Self::InvalidBounds), [`DimensionMismatch`](Self::DimensionMismatch),
///   and [`NonFiniteValue`](Self::NonFiniteValue) / [`NonFiniteGradient`](Self::NonFiniteGradient)
///   at the start point;
/// * failures of the objective itself, [`Objective`](Self::Objective), passed through unchanged;
/// * signals of a [`LineSearch`](crate::LineSearch) or of the evaluation budget
///   ([`LineSearchFailed`](Self::LineSearchFailed),
///   [`NotDescentDirection`](Self::NotDescentDirection),
///   [`EvalBudgetExhausted`](Self::EvalBudgetExhausted),
///   [`TimeBudgetExhausted`](Self::TimeBudgetExhausted)). The minimizers of this crate never
///   return these: they turn them into a [`Termination`](crate::Termination) and report the best
///   point found so far. A caller of [`LineSearch::search`](crate::LineSearch::search) sees them.
#[derive(Debug, thiserror::Error)]
pub enum OuterError {
    /// An option is outside its allowed range.
    #[error("invalid option `{name}` = {value}: expected {range}")]
    InvalidOption {
        /// Field name in the `*Options` struct.
        name: &'static str,
        /// The rejected value (integers are converted to `f64`).
        value: f64,
        /// The allowed range, e.g. `"(0, 1)"`.
        range: &'static str,
    },
    /// An option that this minimizer requires was left unset (`None`).
    #[error("option `{name}` is required by this minimizer")]
    MissingOption {
        /// Field name in the `*Options` struct.
        name: &'static str,
    },
    /// Box bounds with `lower > upper`, a NaN bound, or an infinite bound where a finite box is
    /// required (grid and random search).
    #[error("invalid bounds at index {index}: lower = {lower}, upper = {upper}")]
    InvalidBounds {
        /// Coordinate of the first offending bound.
        index: usize,
        /// Its lower bound.
        lower: f64,
        /// Its upper bound.
        upper: f64,
    },
    /// A vector has the wrong length (start point, bounds, or a gradient returned by the
    /// objective).
    #[error("dimension mismatch: expected {expected}, found {found}")]
    DimensionMismatch {
        /// Expected length ([`Objective::dim`](crate::Objective::dim)).
        expected: usize,
        /// Length found.
        found: usize,
    },
    /// The objective is NaN or infinite at the start point (or, for grid and random search, at
    /// every point evaluated).
    #[error("non-finite objective value {value}")]
    NonFiniteValue {
        /// The value returned.
        value: f64,
    },
    /// The gradient has NaN or infinite entries at the start point.
    #[error("non-finite gradient at the start point ({n_non_finite} entries)")]
    NonFiniteGradient {
        /// Number of non-finite entries.
        n_non_finite: usize,
    },
    /// A line search found no acceptable step within its trial budget.
    #[error("line search failed after {n_trials} trials (last step {alpha})")]
    LineSearchFailed {
        /// Trials made.
        n_trials: usize,
        /// Last step length tried.
        alpha: f64,
    },
    /// The search direction is not a descent direction (`gradᵀ dir ≥ 0`, or NaN).
    #[error("not a descent direction: slope gradᵀ dir = {slope}")]
    NotDescentDirection {
        /// The directional derivative `gradᵀ dir`.
        slope: f64,
    },
    /// The minimizer refused an objective call because `max_evals` calls were already made.
    #[error("evaluation budget of {max_evals} objective calls exhausted")]
    EvalBudgetExhausted {
        /// The budget.
        max_evals: usize,
    },
    /// The minimizer refused an objective call because its time budget is spent.
    #[error("time budget of {budget_secs} s exhausted")]
    TimeBudgetExhausted {
        /// The budget in seconds.
        budget_secs: f64,
    },
    /// The objective failed (for the hyperparameter objective: the inner solve or the
    /// hypergradient). The cause is kept as the error source.
    #[error("objective evaluation failed")]
    Objective(#[source] Box<dyn Error + Send + Sync>),
}

impl OuterError {
    /// Wraps an error of an [`Objective`](crate::Objective) implementation, which lives in a
    /// crate that `ho-outer` cannot name.
    ///
    /// ```
    /// use ho_outer::OuterError;
    /// use std::error::Error;
    ///
    /// let e = OuterError::objective(std::io::Error::other("inner solver diverged"));
    /// assert!(matches!(e, OuterError::Objective(_)));
    /// assert_eq!(e.source().unwrap().to_string(), "inner solver diverged");
    /// ```
    pub fn objective<E>(e: E) -> Self
    where
        E: Into<Box<dyn Error + Send + Sync>>,
    {
        Self::Objective(e.into())
    }
}

/// Compile-time check that errors cross threads and live in `Box<dyn Error + Send + Sync>`.
const _: () = {
    const fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<OuterError>();
};
