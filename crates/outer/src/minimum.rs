//! The result of a minimization: [`Minimum`] and [`Termination`].

use std::fmt;

use ndarray::Array1;

/// Why a minimizer stopped.
///
/// Only the `Converged*` variants mean that a stopping tolerance was met; the others report a
/// limit, a request, or a failure to progress, with the best point found so far in
/// [`Minimum`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Termination {
    /// The (projected) gradient norm fell to `grad_tol` or below.
    ConvergedGradNorm,
    /// The change of value over one iteration fell to `rel_tol · max(|f_prev|, |f|, 1)` or
    /// below (L-BFGS: or, the value having nearly stalled, the decrease its quasi-Newton
    /// model predicts for the next step fell to `rel_tol · max(|f|, 1)`).
    ConvergedRelativeDecrease,
    /// `max_iter` iterations were made.
    MaxIter,
    /// `max_evals` objective calls were made (or the next one was refused).
    MaxEvals,
    /// The time budget was spent.
    TimeBudget,
    /// The [`Observer`](crate::Observer) returned `ControlFlow::Break`.
    StoppedByObserver,
    /// The line search found no acceptable step, even after a restart along the steepest
    /// descent direction (L-BFGS). For [`FixedStep`](crate::FixedStep), the step landed on a
    /// non-finite value.
    LineSearchFailed,
    /// The objective returned a NaN or infinite value or gradient at a new iterate (gradient
    /// descent with a fixed step, Adam) or a non-finite gradient at an accepted line-search
    /// point. The best finite point is reported.
    NonFiniteValue,
    /// A zero-order search evaluated all of its points.
    SearchExhausted,
}

impl Termination {
    /// Whether a stopping tolerance was met (as opposed to a limit or a failure).
    pub fn is_converged(self) -> bool {
        matches!(
            self,
            Self::ConvergedGradNorm | Self::ConvergedRelativeDecrease
        )
    }

    /// A stable snake-case name, for traces and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ConvergedGradNorm => "converged_grad_norm",
            Self::ConvergedRelativeDecrease => "converged_relative_decrease",
            Self::MaxIter => "max_iter",
            Self::MaxEvals => "max_evals",
            Self::TimeBudget => "time_budget",
            Self::StoppedByObserver => "stopped_by_observer",
            Self::LineSearchFailed => "line_search_failed",
            Self::NonFiniteValue => "non_finite_value",
            Self::SearchExhausted => "search_exhausted",
        }
    }
}

impl fmt::Display for Termination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The result of [`Minimizer::minimize`](crate::Minimizer::minimize).
///
/// `x`, `value` and `grad_norm` describe the best iterate (lowest value). For the line-search
/// methods this is the last iterate; gradient descent with a fixed step and Adam are not
/// monotone, so it may be an earlier one. Zero-order searches report their best evaluated point.
#[derive(Debug, Clone, PartialEq)]
pub struct Minimum {
    /// Best point found.
    pub x: Array1<f64>,
    /// Objective value at `x`.
    pub value: f64,
    /// Projected gradient norm at `x` (plain gradient norm without bounds); `None` for the
    /// zero-order searches, which never compute a gradient.
    pub grad_norm: Option<f64>,
    /// Iterations made (steps for gradient methods, points evaluated for zero-order searches).
    pub n_iter: usize,
    /// Objective calls made, [`Objective::value`](crate::Objective::value) and
    /// [`Objective::value_and_grad`](crate::Objective::value_and_grad) together.
    pub n_evals: usize,
    /// Calls of [`Objective::value_and_grad`](crate::Objective::value_and_grad).
    pub n_grad_evals: usize,
    /// Wall time of the whole run, in seconds.
    pub elapsed_secs: f64,
    /// Why the minimizer stopped.
    pub termination: Termination,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stable_and_only_tolerances_count_as_converged() {
        let all = [
            Termination::ConvergedGradNorm,
            Termination::ConvergedRelativeDecrease,
            Termination::MaxIter,
            Termination::MaxEvals,
            Termination::TimeBudget,
            Termination::StoppedByObserver,
            Termination::LineSearchFailed,
            Termination::NonFiniteValue,
            Termination::SearchExhausted,
        ];
        let converged: Vec<bool> = all.iter().map(|t| t.is_converged()).collect();
        assert_eq!(
            converged,
            [true, true, false, false, false, false, false, false, false]
        );
        assert_eq!(Termination::MaxEvals.to_string(), "max_evals");
        let mut names: Vec<&str> = all.iter().map(|t| t.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len());
    }
}
