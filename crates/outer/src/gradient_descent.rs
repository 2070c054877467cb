//! Gradient descent, with a fixed step or a line search.

use std::convert::Infallible;
use std::time::Duration;

use ndarray::{Array1, Zip};

use crate::driver::{resolve, validate_limits, Driver, Iterate, Limits, Stop};
use crate::{Bounds, FixedStep, LineSearch, Minimizer, Minimum, Objective, Observer, OuterError};

/// Options of [`GradientDescent`].
///
/// | Name | Default | Meaning | Range |
/// |------|---------|---------|-------|
/// | `step` | 0.1 | step size: the direction is `−step · ∇f` | (0, ∞) |
/// | `grad_tol` | 1e-6 | stop when the projected gradient norm is ≤ `grad_tol` | [0, ∞) |
/// | `rel_tol` | 0 | stop when `|f_prev − f| ≤ rel_tol · max(|f_prev|, |f|, 1)`; 0 disables | [0, 1) |
/// | `max_iter` | 100 | maximal number of steps | ≥ 0 |
/// | `max_evals` | `None` | maximal number of objective calls (a hard cap) | `None` or ≥ 1 |
/// | `time_budget` | `None` | no objective call is started after this wall time | any |
/// | `bounds` | `None` | box kept by projection | lengths = dim, `lower ≤ upper` |
#[derive(Debug, Clone, PartialEq)]
pub struct GradientDescentOptions {
    /// Step size.
    pub step: f64,
    /// Tolerance on the projected gradient norm.
    pub grad_tol: f64,
    /// Tolerance on the relative change of value (0 disables).
    pub rel_tol: f64,
    /// Maximal number of iterations.
    pub max_iter: usize,
    /// Maximal number of objective calls.
    pub max_evals: Option<usize>,
    /// Wall-time budget.
    pub time_budget: Option<Duration>,
    /// Box constraints.
    pub bounds: Option<Bounds>,
}

impl Default for GradientDescentOptions {
    fn default() -> Self {
        Self {
            step: 0.1,
            grad_tol: 1e-6,
            rel_tol: 0.0,
            max_iter: 100,
            max_evals: None,
            time_budget: None,
            bounds: None,
        }
    }
}

impl GradientDescentOptions {
    fn limits(&self) -> Limits<'_> {
        Limits {
            grad_tol: self.grad_tol,
            rel_tol: self.rel_tol,
            max_iter: self.max_iter,
            max_evals: self.max_evals,
            time_budget: self.time_budget,
            bounds: self.bounds.as_ref(),
        }
    }

    /// Checks every field against its range (and the bounds against `dim`).
    ///
    /// # Errors
    ///
    /// [`OuterError::InvalidOption`] naming the first offending field, or the errors of
    /// [`Bounds::check`].
    pub fn validate(&self, dim: usize) -> Result<(), OuterError> {
        if !(self.step > 0.0 && self.step.is_finite()) {
            return Err(OuterError::InvalidOption {
                name: "step",
                value: self.step,
                range: "(0, ∞)",
            });
        }
        validate_limits(&self.limits(), dim)
    }
}

/// Gradient descent `x ← P(x − t · step · ∇f(x))`, `t = 1` by default or chosen by a
/// [`LineSearch`].
///
/// With [`FixedStep`] (the default, [`GradientDescent::new`]) this is the method of the paper:
/// a fixed step of 0.1 on `log α`, one `value_and_grad` call per iteration. With
/// [`Backtracking`](crate::Backtracking) and [`Armijo`](crate::Armijo)
/// ([`GradientDescent::with_line_search`]) the value decreases at every step.
///
/// # Algorithm
///
/// ```text
/// d_k     = −step · ∇f(x_k), with the components that would leave the box set to 0
/// t_k     = line search along d_k (FixedStep: t_k = 1)
/// x_{k+1} = P(x_k + t_k d_k)          P: projection onto the box (identity without bounds)
/// ```
///
/// # Requirements
///
/// `f` differentiable; with a fixed step, `step < 2/L` for an `L`-smooth `f` to descend.
///
/// # Stopping
///
/// After each iteration, in order: projected gradient norm ≤ `grad_tol`
/// ([`ConvergedGradNorm`](crate::Termination::ConvergedGradNorm)), relative change ≤ `rel_tol`,
/// observer break, `max_iter`, `max_evals`, time budget. A failed line search (with
/// [`FixedStep`]: a non-finite value at the new point) ends the run with
/// [`LineSearchFailed`](crate::Termination::LineSearchFailed). The fixed-step method is not
/// monotone, so [`Minimum`] reports the best iterate.
///
/// # Errors
///
/// Invalid options, a start point of the wrong length, a non-finite value or gradient at the
/// start point, and the errors of the objective.
///
/// # References
///
/// J. Nocedal and S. J. Wright, *Numerical Optimization*, 2nd ed., Springer, 2006: § 3.1
/// (steepest descent, step-length conditions), § 3.3 (convergence rate), § 16.7 (gradient
/// projection).
#[derive(Debug, Clone, Default)]
pub struct GradientDescent<L = FixedStep> {
    /// Options.
    pub options: GradientDescentOptions,
    /// Step-length rule.
    pub line_search: L,
}

impl GradientDescent<FixedStep> {
    /// Gradient descent with the fixed step `options.step`.
    pub fn new(options: GradientDescentOptions) -> Self {
        Self {
            options,
            line_search: FixedStep,
        }
    }
}

impl<L: LineSearch> GradientDescent<L> {
    /// Gradient descent along `−options.step · ∇f` with the step length chosen by
    /// `line_search` (for instance [`Backtracking::armijo`](crate::Backtracking::armijo)).
    pub fn with_line_search(options: GradientDescentOptions, line_search: L) -> Self {
        Self {
            options,
            line_search,
        }
    }
}

impl<L: LineSearch> Minimizer for GradientDescent<L> {
    fn minimize(
        &mut self,
        obj: &mut dyn Objective,
        x0: Array1<f64>,
        observer: &mut dyn Observer,
    ) -> Result<Minimum, OuterError> {
        self.options.validate(obj.dim())?;
        self.line_search.validate()?;
        let step = self.options.step;
        let line_search = &mut self.line_search;
        let limits = self.options.limits();
        let (mut run, first) = Driver::start(obj, x0, &limits, observer)?;
        let outcome = first.and_then(|it| descend(&mut run, it, step, line_search));
        Ok(run.finish(resolve(outcome)?))
    }
}

/// The iterations after the start point; ends only through `Err(Stop)`.
fn descend(
    run: &mut Driver<'_>,
    mut it: Iterate,
    step: f64,
    line_search: &mut dyn LineSearch,
) -> Result<Infallible, Stop> {
    let mut dir = Array1::zeros(it.x.len());
    loop {
        Zip::from(&mut dir)
            .and(&it.grad)
            .for_each(|d, &g| *d = -step * g);
        if let Some(b) = run.bounds() {
            b.restrict_direction_inplace(it.x.view(), dir.view_mut());
        }
        let accepted = run.line_search(line_search, &it, dir.view())?;
        let prev_value = it.value;
        it = run.accept(accepted)?;
        run.n_iter += 1;
        run.check(&it, Some(prev_value))?;
    }
}
