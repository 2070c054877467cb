#![doc = include_str!("../README.md")]

mod adam;
mod bounds;
mod driver;
mod error;
mod gradient_descent;
mod lbfgs;
mod line_search;
mod minimum;
mod objective;
mod observer;
mod vecops;
mod zero_order;

pub use adam::{Adam, AdamOptions};
pub use bounds::Bounds;
pub use error::OuterError;
pub use gradient_descent::{GradientDescent, GradientDescentOptions};
pub use lbfgs::{Lbfgs, LbfgsOptions};
pub use line_search::{
    AcceptanceRule, Armijo, Backtracking, BacktrackingOptions, FixedStep, LineSearch, Step,
    StrongWolfe, Trial, Verdict, Wolfe,
};
pub use minimum::{Minimum, Termination};
pub use objective::{Counters, Counting, Objective};
pub use observer::{IterRecord, NoObserver, Observer, Trace, TraceRow};
pub use zero_order::{GridSearch, GridSearchOptions, RandomSearch, RandomSearchOptions};

use ndarray::Array1;

/// A minimization algorithm: holds its options, runs on any [`Objective`].
///
/// Implemented by [`GradientDescent`], [`Lbfgs`], [`Adam`], [`GridSearch`] and
/// [`RandomSearch`]; the trait is object-safe, so a `Box<dyn Minimizer>` can be chosen at run
/// time.
pub trait Minimizer {
    /// Minimizes `obj` from `x0`, calling `observer` after every iteration.
    ///
    /// Options are validated first, before any objective call. Reaching a limit or failing to
    /// progress is not an error: it is the [`Termination`] of the returned [`Minimum`].
    ///
    /// # Errors
    ///
    /// [`OuterError::InvalidOption`] and the other set-up errors, a non-finite value at the
    /// start point, and the errors of the objective.
    fn minimize(
        &mut self,
        obj: &mut dyn Objective,
        x0: Array1<f64>,
        observer: &mut dyn Observer,
    ) -> Result<Minimum, OuterError>;
}
