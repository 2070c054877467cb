//! The problem side: [`Objective`], and honest call counting ([`Counters`], [`Counting`]).

use ndarray::{Array1, ArrayView1};

use crate::OuterError;

/// A function `f: ℝⁿ → ℝ` whose every evaluation is expensive.
///
/// For hyperparameter optimization, one call is one inner solve (plus one adjoint solve for the
/// gradient), so the minimizers of this crate count calls and never evaluate a point twice on
/// their side.
///
/// Implementors provide [`value_and_grad`](Self::value_and_grad) and should override
/// [`value`](Self::value) when the value alone is cheaper (the hyperparameter objective skips
/// the adjoint solve); backtracking line searches call only `value` on their trial points.
/// `&mut self` lets an implementation warm-start and cache (for instance remember the last `x`,
/// so that `value(x)` followed by `value_and_grad(x)` solves once).
///
/// Returning a NaN or infinite value is allowed: at the start point it is an error
/// ([`OuterError::NonFiniteValue`]), at a line-search trial it fails the trial, and elsewhere it
/// ends the run with [`Termination::NonFiniteValue`](crate::Termination::NonFiniteValue).
/// Failures of the computation itself are returned with [`OuterError::objective`].
pub trait Objective {
    /// Dimension `n` of `x`.
    fn dim(&self) -> usize;

    /// Returns `(f(x), ∇f(x))`, the gradient of length [`dim`](Self::dim).
    ///
    /// # Errors
    ///
    /// Whatever the computation reports, usually wrapped with [`OuterError::objective`].
    fn value_and_grad(&mut self, x: ArrayView1<'_, f64>) -> Result<(f64, Array1<f64>), OuterError>;

    /// Returns `f(x)`. The default calls [`value_and_grad`](Self::value_and_grad) and drops the
    /// gradient; override it when the value alone is cheaper.
    ///
    /// # Errors
    ///
    /// As [`value_and_grad`](Self::value_and_grad).
    fn value(&mut self, x: ArrayView1<'_, f64>) -> Result<f64, OuterError> {
        Ok(self.value_and_grad(x)?.0)
    }
}

impl<O: Objective + ?Sized> Objective for &mut O {
    fn dim(&self) -> usize {
        (**self).dim()
    }

    fn value_and_grad(&mut self, x: ArrayView1<'_, f64>) -> Result<(f64, Array1<f64>), OuterError> {
        (**self).value_and_grad(x)
    }

    fn value(&mut self, x: ArrayView1<'_, f64>) -> Result<f64, OuterError> {
        (**self).value(x)
    }
}

/// Numbers of objective calls, by kind.
///
/// A call is counted when it is made, whether it succeeds or not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Calls of [`Objective::value`].
    pub n_value: usize,
    /// Calls of [`Objective::value_and_grad`].
    pub n_value_and_grad: usize,
}

impl Counters {
    /// Total number of objective calls, `n_value + n_value_and_grad`.
    pub fn n_evals(&self) -> usize {
        self.n_value + self.n_value_and_grad
    }
}

/// An [`Objective`] wrapper that counts the calls made to `inner`.
///
/// The minimizers count their calls themselves (see [`Minimum`](crate::Minimum)); this wrapper
/// lets a caller check those counts, or count the calls of a [`LineSearch`](crate::LineSearch)
/// used on its own.
///
/// ```
/// use ho_outer::{Counting, Objective, OuterError};
/// use ndarray::{array, Array1, ArrayView1};
///
/// struct Square;
/// impl Objective for Square {
///     fn dim(&self) -> usize { 1 }
///     fn value_and_grad(&mut self, x: ArrayView1<'_, f64>) -> Result<(f64, Array1<f64>), OuterError> {
///         Ok((x[0] * x[0], array![2.0 * x[0]]))
///     }
/// }
///
/// let mut obj = Counting::new(Square);
/// obj.value(array![3.0].view())?;
/// obj.value_and_grad(array![1.0].view())?;
/// assert_eq!((obj.counters.n_value, obj.counters.n_value_and_grad), (1, 1));
/// # Ok::<(), OuterError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Counting<O> {
    /// The wrapped objective.
    pub inner: O,
    /// Calls made so far.
    pub counters: Counters,
}

impl<O> Counting<O> {
    /// Wraps `inner` with zero counts.
    pub fn new(inner: O) -> Self {
        Self {
            inner,
            counters: Counters::default(),
        }
    }
}

impl<O: Objective> Objective for Counting<O> {
    fn dim(&self) -> usize {
        self.inner.dim()
    }

    fn value_and_grad(&mut self, x: ArrayView1<'_, f64>) -> Result<(f64, Array1<f64>), OuterError> {
        self.counters.n_value_and_grad += 1;
        self.inner.value_and_grad(x)
    }

    fn value(&mut self, x: ArrayView1<'_, f64>) -> Result<f64, OuterError> {
        self.counters.n_value += 1;
        self.inner.value(x)
    }
}
