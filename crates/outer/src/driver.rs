//! Shared machinery of the minimizers: counted evaluation with budgets, projection, iteration
//! bookkeeping, stopping rules. Private to the crate.

use std::convert::Infallible;
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use ndarray::{Array1, ArrayView1, Zip};

use crate::bounds::grad_norm;
use crate::{
    Bounds, Counters, IterRecord, LineSearch, Minimum, Objective, Observer, OuterError, Step,
    Termination,
};

/// Wraps the user's objective: counts calls, enforces `max_evals` and the time budget (an
/// evaluation is refused, not interrupted, once a budget is spent; the first evaluation is
/// always allowed), and checks dimensions.
pub(crate) struct Evaluator<'a> {
    obj: &'a mut dyn Objective,
    dim: usize,
    pub(crate) counters: Counters,
    max_evals: Option<usize>,
    start: Instant,
    time_budget: Option<Duration>,
}

impl<'a> Evaluator<'a> {
    pub(crate) fn new(
        obj: &'a mut dyn Objective,
        max_evals: Option<usize>,
        time_budget: Option<Duration>,
    ) -> Self {
        let dim = obj.dim();
        Self {
            obj,
            dim,
            counters: Counters::default(),
            max_evals,
            start: Instant::now(),
            time_budget,
        }
    }

    pub(crate) fn elapsed_secs(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    pub(crate) fn evals_exhausted(&self) -> bool {
        self.max_evals.is_some_and(|m| self.counters.n_evals() >= m)
    }

    pub(crate) fn time_exhausted(&self) -> bool {
        self.time_budget.is_some_and(|b| self.start.elapsed() >= b)
    }

    fn admit(&self, x: ArrayView1<'_, f64>) -> Result<(), OuterError> {
        if x.len() != self.dim {
            return Err(OuterError::DimensionMismatch {
                expected: self.dim,
                found: x.len(),
            });
        }
        if self.counters.n_evals() == 0 {
            return Ok(());
        }
        if let (true, Some(max_evals)) = (self.evals_exhausted(), self.max_evals) {
            return Err(OuterError::EvalBudgetExhausted { max_evals });
        }
        if let (true, Some(budget)) = (self.time_exhausted(), self.time_budget) {
            return Err(OuterError::TimeBudgetExhausted {
                budget_secs: budget.as_secs_f64(),
            });
        }
        Ok(())
    }
}

impl Objective for Evaluator<'_> {
    fn dim(&self) -> usize {
        self.dim
    }

    fn value_and_grad(&mut self, x: ArrayView1<'_, f64>) -> Result<(f64, Array1<f64>), OuterError> {
        self.admit(x)?;
        self.counters.n_value_and_grad += 1;
        let (value, grad) = self.obj.value_and_grad(x)?;
        if grad.len() != self.dim {
            return Err(OuterError::DimensionMismatch {
                expected: self.dim,
                found: grad.len(),
            });
        }
        Ok((value, grad))
    }

    fn value(&mut self, x: ArrayView1<'_, f64>) -> Result<f64, OuterError> {
        self.admit(x)?;
        self.counters.n_value += 1;
        self.obj.value(x)
    }
}

/// Evaluates the objective at the projection of its argument onto the box, so that an
/// unmodified line search follows the projected path `t ↦ P(x + t d)`.
struct Projected<'e, 'a> {
    eval: &'e mut Evaluator<'a>,
    bounds: &'e Bounds,
    buf: Array1<f64>,
}

impl Projected<'_, '_> {
    fn project(&mut self, x: ArrayView1<'_, f64>) {
        self.buf.assign(&x);
        self.bounds.project_inplace(self.buf.view_mut());
    }
}

impl Objective for Projected<'_, '_> {
    fn dim(&self) -> usize {
        self.eval.dim
    }

    fn value_and_grad(&mut self, x: ArrayView1<'_, f64>) -> Result<(f64, Array1<f64>), OuterError> {
        self.project(x);
        self.eval.value_and_grad(self.buf.view())
    }

    fn value(&mut self, x: ArrayView1<'_, f64>) -> Result<f64, OuterError> {
        self.project(x);
        self.eval.value(self.buf.view())
    }
}

/// How a run ends early: with a termination reason, or with a hard error.
pub(crate) enum Stop {
    Done(Termination),
    Fail(OuterError),
}

impl From<OuterError> for Stop {
    fn from(e: OuterError) -> Self {
        match e {
            OuterError::EvalBudgetExhausted { .. } => Self::Done(Termination::MaxEvals),
            OuterError::TimeBudgetExhausted { .. } => Self::Done(Termination::TimeBudget),
            OuterError::LineSearchFailed { .. } | OuterError::NotDescentDirection { .. } => {
                Self::Done(Termination::LineSearchFailed)
            }
            e => Self::Fail(e),
        }
    }
}

/// Turns the outcome of an iteration loop into the termination reason or the error.
pub(crate) fn resolve(outcome: Result<Infallible, Stop>) -> Result<Termination, OuterError> {
    match outcome {
        Ok(never) => match never {},
        Err(Stop::Done(t)) => Ok(t),
        Err(Stop::Fail(e)) => Err(e),
    }
}

/// The state a gradient method carries between iterations.
pub(crate) struct Iterate {
    pub(crate) x: Array1<f64>,
    pub(crate) value: f64,
    pub(crate) grad: Array1<f64>,
    /// Projected gradient norm.
    pub(crate) grad_norm: f64,
}

/// Stopping rules and budgets shared by the gradient methods.
pub(crate) struct Limits<'a> {
    pub(crate) grad_tol: f64,
    pub(crate) rel_tol: f64,
    pub(crate) max_iter: usize,
    pub(crate) max_evals: Option<usize>,
    pub(crate) time_budget: Option<Duration>,
    pub(crate) bounds: Option<&'a Bounds>,
}

/// Validates the options shared by the gradient methods.
pub(crate) fn validate_limits(limits: &Limits<'_>, dim: usize) -> Result<(), OuterError> {
    if limits.grad_tol.is_nan() || limits.grad_tol < 0.0 {
        return Err(OuterError::InvalidOption {
            name: "grad_tol",
            value: limits.grad_tol,
            range: "[0, ∞)",
        });
    }
    if !(0.0..1.0).contains(&limits.rel_tol) {
        return Err(OuterError::InvalidOption {
            name: "rel_tol",
            value: limits.rel_tol,
            range: "[0, 1)",
        });
    }
    validate_max_evals(limits.max_evals)?;
    if let Some(b) = limits.bounds {
        b.check(dim)?;
    }
    Ok(())
}

pub(crate) fn validate_max_evals(max_evals: Option<usize>) -> Result<(), OuterError> {
    match max_evals {
        Some(0) => Err(OuterError::InvalidOption {
            name: "max_evals",
            value: 0.0,
            range: "None or Some(n) with n ≥ 1",
        }),
        _ => Ok(()),
    }
}

pub(crate) fn check_start_dim(
    obj: &dyn Objective,
    x0: ArrayView1<'_, f64>,
) -> Result<(), OuterError> {
    if x0.len() != obj.dim() {
        return Err(OuterError::DimensionMismatch {
            expected: obj.dim(),
            found: x0.len(),
        });
    }
    Ok(())
}

/// A value whose last change is within this factor of the relative tolerance has nearly
/// stalled (the predicted-decrease stop of L-BFGS): a superlinearly converging smooth run
/// still changes by far more one step before its end, and takes that step.
pub(crate) const STALL_FACTOR: f64 = 1e3;

/// Bookkeeping of a gradient method: evaluation, best point, observer, stopping rules.
pub(crate) struct Driver<'a> {
    pub(crate) eval: Evaluator<'a>,
    bounds: Option<&'a Bounds>,
    observer: &'a mut dyn Observer,
    grad_tol: f64,
    rel_tol: f64,
    max_iter: usize,
    pub(crate) n_iter: usize,
    best_x: Array1<f64>,
    best_value: f64,
    best_grad_norm: f64,
}

impl<'a> Driver<'a> {
    /// Checks dimensions, projects `x0`, evaluates it (an error if non-finite) and reports it
    /// to the observer as iteration 0. `Err(Stop::Done)` if the run ends right there.
    pub(crate) fn start(
        obj: &'a mut dyn Objective,
        mut x0: Array1<f64>,
        limits: &Limits<'a>,
        observer: &'a mut dyn Observer,
    ) -> Result<(Self, Result<Iterate, Stop>), OuterError> {
        check_start_dim(obj, x0.view())?;
        if let Some(b) = limits.bounds {
            b.project_inplace(x0.view_mut());
        }
        let mut eval = Evaluator::new(obj, limits.max_evals, limits.time_budget);
        let (value, grad) = eval.value_and_grad(x0.view())?;
        if !value.is_finite() {
            return Err(OuterError::NonFiniteValue { value });
        }
        let n_non_finite = grad.iter().filter(|g| !g.is_finite()).count();
        if n_non_finite > 0 {
            return Err(OuterError::NonFiniteGradient { n_non_finite });
        }
        let grad_norm = grad_norm(limits.bounds, x0.view(), grad.view());
        let mut driver = Self {
            eval,
            bounds: limits.bounds,
            observer,
            grad_tol: limits.grad_tol,
            rel_tol: limits.rel_tol,
            max_iter: limits.max_iter,
            n_iter: 0,
            best_x: x0.clone(),
            best_value: value,
            best_grad_norm: grad_norm,
        };
        let it = Iterate {
            x: x0,
            value,
            grad,
            grad_norm,
        };
        let first = match driver.check(&it, None) {
            Ok(()) => Ok(it),
            Err(stop) => Err(stop),
        };
        Ok((driver, first))
    }

    pub(crate) fn bounds(&self) -> Option<&'a Bounds> {
        self.bounds
    }

    /// Runs `line_search` from `it` along `dir`, through the projection when there are bounds.
    pub(crate) fn line_search(
        &mut self,
        line_search: &mut dyn LineSearch,
        it: &Iterate,
        dir: ArrayView1<'_, f64>,
    ) -> Result<Step, OuterError> {
        match self.bounds {
            Some(bounds) => {
                let mut projected = Projected {
                    buf: Array1::zeros(self.eval.dim),
                    eval: &mut self.eval,
                    bounds,
                };
                line_search.search(&mut projected, it.x.view(), it.value, it.grad.view(), dir)
            }
            None => line_search.search(&mut self.eval, it.x.view(), it.value, it.grad.view(), dir),
        }
    }

    /// Turns an accepted step into the next iterate: projects it, and calls `value_and_grad`
    /// only if the line search did not already compute the gradient.
    pub(crate) fn accept(&mut self, step: Step) -> Result<Iterate, Stop> {
        let mut x = step.x;
        if let Some(b) = self.bounds {
            b.project_inplace(x.view_mut());
        }
        match step.grad {
            Some(grad) => self.finish_iterate(x, step.value, grad),
            None => self.evaluate(x),
        }
    }

    /// Evaluates `x` (already in the box) with `value_and_grad`.
    pub(crate) fn evaluate(&mut self, x: Array1<f64>) -> Result<Iterate, Stop> {
        let (value, grad) = self.eval.value_and_grad(x.view())?;
        self.finish_iterate(x, value, grad)
    }

    fn finish_iterate(
        &mut self,
        x: Array1<f64>,
        value: f64,
        grad: Array1<f64>,
    ) -> Result<Iterate, Stop> {
        if !value.is_finite() || grad.iter().any(|g| !g.is_finite()) {
            return Err(Stop::Done(Termination::NonFiniteValue));
        }
        let grad_norm = grad_norm(self.bounds, x.view(), grad.view());
        Ok(Iterate {
            x,
            value,
            grad,
            grad_norm,
        })
    }

    /// Records `it` as iteration `n_iter`: updates the best point, calls the observer, and
    /// applies the stopping rules in order (convergence, observer, iterations, evaluations,
    /// time).
    pub(crate) fn check(&mut self, it: &Iterate, prev_value: Option<f64>) -> Result<(), Stop> {
        if it.value < self.best_value {
            self.best_x.assign(&it.x);
            self.best_value = it.value;
            self.best_grad_norm = it.grad_norm;
        }
        let rec = IterRecord {
            iteration: self.n_iter,
            elapsed_secs: self.eval.elapsed_secs(),
            value: it.value,
            grad_norm: Some(it.grad_norm),
            x: it.x.view(),
            best_value: self.best_value,
            n_evals: self.eval.counters.n_evals(),
            n_grad_evals: self.eval.counters.n_value_and_grad,
        };
        let flow = self.observer.on_iter(&rec);
        let stop = |t| Err(Stop::Done(t));
        if it.grad_norm <= self.grad_tol {
            return stop(Termination::ConvergedGradNorm);
        }
        if let Some(prev) = prev_value {
            let scale = prev.abs().max(it.value.abs()).max(1.0);
            if self.rel_tol > 0.0 && (prev - it.value).abs() <= self.rel_tol * scale {
                return stop(Termination::ConvergedRelativeDecrease);
            }
        }
        if let ControlFlow::Break(()) = flow {
            return stop(Termination::StoppedByObserver);
        }
        if self.n_iter >= self.max_iter {
            return stop(Termination::MaxIter);
        }
        if self.eval.evals_exhausted() {
            return stop(Termination::MaxEvals);
        }
        if self.eval.time_exhausted() {
            return stop(Termination::TimeBudget);
        }
        Ok(())
    }

    /// Whether the value has nearly stalled (its last change `last_change` is at most
    /// [`STALL_FACTOR`] times the tolerance) and a step along a direction of slope
    /// `slope = ∇fᵀd < 0`, whose quadratic model predicts the decrease `½|slope|`, would gain
    /// at most the tolerance `rel_tol · max(|f|, 1)`.
    pub(crate) fn predicts_no_decrease(
        &self,
        it: &Iterate,
        slope: f64,
        last_change: Option<f64>,
    ) -> bool {
        let tol = self.rel_tol * it.value.abs().max(1.0);
        self.rel_tol > 0.0
            && last_change.is_some_and(|c| c <= STALL_FACTOR * tol)
            && 0.5 * slope.abs() <= tol
    }

    /// The result: the best iterate and the counts.
    pub(crate) fn finish(self, termination: Termination) -> Minimum {
        Minimum {
            x: self.best_x,
            value: self.best_value,
            grad_norm: Some(self.best_grad_norm),
            n_iter: self.n_iter,
            n_evals: self.eval.counters.n_evals(),
            n_grad_evals: self.eval.counters.n_value_and_grad,
            elapsed_secs: self.eval.elapsed_secs(),
            termination,
        }
    }
}

/// `out ← x + alpha · dir`.
pub(crate) fn axpy_into(
    x: ArrayView1<'_, f64>,
    alpha: f64,
    dir: ArrayView1<'_, f64>,
    out: &mut Array1<f64>,
) {
    Zip::from(out)
        .and(x)
        .and(dir)
        .for_each(|o, &xi, &di| *o = xi + alpha * di);
}
