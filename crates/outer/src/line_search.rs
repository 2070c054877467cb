//! Step-length selection: [`LineSearch`], the trivial [`FixedStep`], and [`Backtracking`] with
//! a pluggable [`AcceptanceRule`] ([`Armijo`], [`Wolfe`], [`StrongWolfe`]).

use crate::vecops::Dot;
use ndarray::{Array1, ArrayView1};

use crate::driver::axpy_into;
use crate::{Objective, OuterError};

/// An accepted step of a line search.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Accepted step length `t`.
    pub alpha: f64,
    /// The point evaluated, `x + alpha · dir`.
    pub x: Array1<f64>,
    /// Objective value at `x`.
    pub value: f64,
    /// Gradient at `x`, if the line search computed it (Wolfe rules, [`FixedStep`]); `None` if
    /// it only called [`Objective::value`] (Armijo). The minimizer then makes exactly one
    /// [`Objective::value_and_grad`] call at `x`, which an objective that caches its last
    /// point answers without solving again.
    pub grad: Option<Array1<f64>>,
    /// Trial points evaluated, including the accepted one.
    pub n_trials: usize,
}

/// Chooses a step length along a search direction.
///
/// Given `x`, `f(x)`, `∇f(x)` and a direction `dir`, returns an accepted point
/// `x + t · dir`. A search never evaluates `x` itself (the caller passes its value and
/// gradient) and hands back the gradient at the accepted point when it has one, so that no
/// point is evaluated twice from the minimizer's side.
///
/// # Errors
///
/// [`OuterError::NotDescentDirection`] if the rule needs one and `∇f(x)ᵀ dir` is not negative,
/// [`OuterError::LineSearchFailed`] if no trial is accepted, and any error of `obj` (including
/// the budget errors of the minimizer's evaluator). The minimizers of this crate turn the first
/// two into a restart or [`Termination::LineSearchFailed`](crate::Termination::LineSearchFailed).
pub trait LineSearch {
    /// Searches from `x` (value `value`, gradient `grad`) along `dir`.
    ///
    /// # Errors
    ///
    /// See the trait documentation.
    fn search(
        &mut self,
        obj: &mut dyn Objective,
        x: ArrayView1<'_, f64>,
        value: f64,
        grad: ArrayView1<'_, f64>,
        dir: ArrayView1<'_, f64>,
    ) -> Result<Step, OuterError>;

    /// Checks the options; minimizers call it once, before their first evaluation.
    ///
    /// # Errors
    ///
    /// [`OuterError::InvalidOption`] for an option outside its range.
    fn validate(&self) -> Result<(), OuterError> {
        Ok(())
    }
}

/// The step `t = 1` taken unconditionally: one [`Objective::value_and_grad`] call at
/// `x + dir`, whatever the value.
///
/// With [`GradientDescent`](crate::GradientDescent), whose direction is `−step · ∇f`, this is
/// the fixed-step method of the paper. A non-finite value or gradient at the new point is
/// reported as [`OuterError::LineSearchFailed`] (one trial), never accepted.
#[derive(Debug, Clone, Copy, Default)]
pub struct FixedStep;

impl LineSearch for FixedStep {
    fn search(
        &mut self,
        obj: &mut dyn Objective,
        x: ArrayView1<'_, f64>,
        _value: f64,
        _grad: ArrayView1<'_, f64>,
        dir: ArrayView1<'_, f64>,
    ) -> Result<Step, OuterError> {
        let mut x_new = Array1::zeros(x.len());
        axpy_into(x, 1.0, dir, &mut x_new);
        let (value, grad) = obj.value_and_grad(x_new.view())?;
        if !value.is_finite() || grad.iter().any(|g| !g.is_finite()) {
            return Err(OuterError::LineSearchFailed {
                n_trials: 1,
                alpha: 1.0,
            });
        }
        Ok(Step {
            alpha: 1.0,
            x: x_new,
            value,
            grad: Some(grad),
            n_trials: 1,
        })
    }
}

/// One trial point of a line search, as seen by an [`AcceptanceRule`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trial {
    /// `f(x)` at the start of the search.
    pub value0: f64,
    /// `∇f(x)ᵀ dir` at the start (negative).
    pub slope0: f64,
    /// Step length `t` of this trial.
    pub alpha: f64,
    /// `f(x + t dir)`, possibly NaN or infinite.
    pub value: f64,
    /// `∇f(x + t dir)ᵀ dir`, present when the rule [needs the gradient](AcceptanceRule::needs_grad).
    pub slope: Option<f64>,
}

/// What a rule says about a trial step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Accept the step.
    Accept,
    /// The step is too long (not enough decrease, a non-finite value, or, for strong Wolfe,
    /// a slope too positive): shrink it.
    TooLong,
    /// The step is too short (curvature condition violated): lengthen it.
    TooShort,
}

/// A step-acceptance rule for [`Backtracking`].
pub trait AcceptanceRule {
    /// Whether the rule reads the gradient at trial points. If `false`, the search calls only
    /// [`Objective::value`] on its trials.
    fn needs_grad(&self) -> bool;

    /// Judges a trial. A NaN or infinite `value` or `slope` must give [`Verdict::TooLong`].
    fn verdict(&self, trial: &Trial) -> Verdict;

    /// Checks the constants.
    ///
    /// # Errors
    ///
    /// [`OuterError::InvalidOption`] for a constant outside its range.
    fn validate(&self) -> Result<(), OuterError> {
        Ok(())
    }
}

fn sufficient_decrease(c1: f64, t: &Trial) -> bool {
    // Written so that NaN fails.
    t.value.is_finite() && t.value <= t.value0 + c1 * t.alpha * t.slope0
}

fn check_c1_c2(c1: f64, c2: Option<f64>) -> Result<(), OuterError> {
    if !(c1 > 0.0 && c1 < 1.0) {
        return Err(OuterError::InvalidOption {
            name: "c1",
            value: c1,
            range: "(0, 1)",
        });
    }
    if let Some(c2) = c2 {
        if !(c2 > c1 && c2 < 1.0) {
            return Err(OuterError::InvalidOption {
                name: "c2",
                value: c2,
                range: "(c1, 1)",
            });
        }
    }
    Ok(())
}

/// The Armijo (sufficient decrease) rule:
///
/// ```text
/// f(x + t d) ≤ f(x) + c1 · t · ∇f(x)ᵀ d
/// ```
///
/// Since `∇f(x)ᵀ d < 0`, an accepted step never increases the value. Needs values only.
///
/// | Name | Default | Meaning | Range |
/// |------|---------|---------|-------|
/// | `c1` | 1e-4 | fraction of the linear decrease required | (0, 1) |
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Armijo {
    /// Sufficient-decrease constant.
    pub c1: f64,
}

impl Default for Armijo {
    fn default() -> Self {
        Self { c1: 1e-4 }
    }
}

impl AcceptanceRule for Armijo {
    fn needs_grad(&self) -> bool {
        false
    }

    fn verdict(&self, trial: &Trial) -> Verdict {
        if sufficient_decrease(self.c1, trial) {
            Verdict::Accept
        } else {
            Verdict::TooLong
        }
    }

    fn validate(&self) -> Result<(), OuterError> {
        check_c1_c2(self.c1, None)
    }
}

/// The weak Wolfe rule: sufficient decrease and the curvature condition
///
/// ```text
/// f(x + t d) ≤ f(x) + c1 · t · ∇f(x)ᵀ d
/// ∇f(x + t d)ᵀ d ≥ c2 · ∇f(x)ᵀ d
/// ```
///
/// The curvature condition guarantees `sᵀy > 0` for L-BFGS updates. Every trial calls
/// [`Objective::value_and_grad`].
///
/// | Name | Default | Meaning | Range |
/// |------|---------|---------|-------|
/// | `c1` | 1e-4 | sufficient-decrease constant | (0, 1) |
/// | `c2` | 0.9 | curvature constant (0.9 for quasi-Newton) | (c1, 1) |
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Wolfe {
    /// Sufficient-decrease constant.
    pub c1: f64,
    /// Curvature constant.
    pub c2: f64,
}

impl Default for Wolfe {
    fn default() -> Self {
        Self { c1: 1e-4, c2: 0.9 }
    }
}

impl AcceptanceRule for Wolfe {
    fn needs_grad(&self) -> bool {
        true
    }

    fn verdict(&self, trial: &Trial) -> Verdict {
        let Some(slope) = trial.slope.filter(|s| s.is_finite()) else {
            return Verdict::TooLong;
        };
        if !sufficient_decrease(self.c1, trial) {
            Verdict::TooLong
        } else if slope < self.c2 * trial.slope0 {
            Verdict::TooShort
        } else {
            Verdict::Accept
        }
    }

    fn validate(&self) -> Result<(), OuterError> {
        check_c1_c2(self.c1, Some(self.c2))
    }
}

/// The strong Wolfe rule: sufficient decrease and
///
/// ```text
/// |∇f(x + t d)ᵀ d| ≤ c2 · |∇f(x)ᵀ d|
/// ```
///
/// Every trial calls [`Objective::value_and_grad`].
///
/// | Name | Default | Meaning | Range |
/// |------|---------|---------|-------|
/// | `c1` | 1e-4 | sufficient-decrease constant | (0, 1) |
/// | `c2` | 0.9 | curvature constant | (c1, 1) |
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StrongWolfe {
    /// Sufficient-decrease constant.
    pub c1: f64,
    /// Curvature constant.
    pub c2: f64,
}

impl Default for StrongWolfe {
    fn default() -> Self {
        Self { c1: 1e-4, c2: 0.9 }
    }
}

impl AcceptanceRule for StrongWolfe {
    fn needs_grad(&self) -> bool {
        true
    }

    fn verdict(&self, trial: &Trial) -> Verdict {
        let Some(slope) = trial.slope.filter(|s| s.is_finite()) else {
            return Verdict::TooLong;
        };
        let bound = self.c2 * trial.slope0.abs();
        if !sufficient_decrease(self.c1, trial) || slope > bound {
            Verdict::TooLong
        } else if slope < -bound {
            Verdict::TooShort
        } else {
            Verdict::Accept
        }
    }

    fn validate(&self) -> Result<(), OuterError> {
        check_c1_c2(self.c1, Some(self.c2))
    }
}

/// Options of [`Backtracking`].
///
/// | Name | Default | Meaning | Range |
/// |------|---------|---------|-------|
/// | `initial_step` | 1.0 | first trial step length `t₀` | (0, ∞) |
/// | `shrink` | 0.5 | `t ← shrink · t` when a step is too long and no shorter acceptable-so-far step is known | (0, 1) |
/// | `expand` | 2.0 | `t ← expand · t` when a step is too short and no upper bracket is known | (1, ∞) |
/// | `max_expand` | 0 (off) | above `expand`: a too-short step with a known slope (Wolfe rules) is extrapolated to where the secant of the directional derivative vanishes, kept in `[expand · t, max_expand · t]` | [0, ∞) |
/// | `max_trials` | 20 | trial points before giving up | ≥ 1 |
/// | `interpolate` | true | replace the plain shrink by the minimizer of the quadratic through `f(x)`, `∇f(x)ᵀd`, `f(x + t d)`, kept in `[min(0.1, shrink) · t, shrink · t]` | — |
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BacktrackingOptions {
    /// First trial step length.
    pub initial_step: f64,
    /// Shrink factor.
    pub shrink: f64,
    /// Expansion factor.
    pub expand: f64,
    /// Largest expansion factor of a secant extrapolation (at most `expand`: none).
    pub max_expand: f64,
    /// Maximal number of trials.
    pub max_trials: usize,
    /// Quadratic interpolation when shrinking.
    pub interpolate: bool,
}

impl Default for BacktrackingOptions {
    fn default() -> Self {
        Self {
            initial_step: 1.0,
            shrink: 0.5,
            expand: 2.0,
            max_expand: 0.0,
            max_trials: 20,
            interpolate: true,
        }
    }
}

impl BacktrackingOptions {
    /// Checks every field against its range.
    ///
    /// # Errors
    ///
    /// [`OuterError::InvalidOption`] naming the first offending field.
    pub fn validate(&self) -> Result<(), OuterError> {
        let invalid = |name, value, range| Err(OuterError::InvalidOption { name, value, range });
        if !(self.initial_step > 0.0 && self.initial_step.is_finite()) {
            return invalid("initial_step", self.initial_step, "(0, ∞)");
        }
        if !(self.shrink > 0.0 && self.shrink < 1.0) {
            return invalid("shrink", self.shrink, "(0, 1)");
        }
        if !(self.expand > 1.0 && self.expand.is_finite()) {
            return invalid("expand", self.expand, "(1, ∞)");
        }
        if !(self.max_expand >= 0.0 && self.max_expand.is_finite()) {
            return invalid("max_expand", self.max_expand, "[0, ∞)");
        }
        if self.max_trials == 0 {
            return invalid("max_trials", 0.0, "≥ 1");
        }
        Ok(())
    }
}

/// Backtracking line search with bracketing, generic over its [`AcceptanceRule`].
///
/// # Algorithm
///
/// Keep a bracket `[lo, hi]` of step lengths, initially `[0, ∞)`, and try `t = initial_step`.
/// If the rule says the step is too long, `hi ← t` and the next trial is `shrink · t` (or the
/// safeguarded quadratic interpolant) while `lo = 0`, the midpoint `(lo + hi)/2` otherwise. If
/// it is too short, `lo ← t` and the next trial is `expand · t` while `hi = ∞`, the midpoint
/// otherwise. With `max_expand > expand` and the slopes of a Wolfe rule, the expansion is
/// instead the zero of the secant of the directional derivative through the last two points
/// (`0` and the too-short trials), kept in `[expand · t, max_expand · t]` (`expand · t` when
/// the slope did not increase): a first step whose scale is far off (L-BFGS's first step is
/// the raw gradient) is reached in a few trials instead of one per factor `expand`. With
/// [`Armijo`] the steps only shrink, which is classical backtracking; with [`Wolfe`] this is the bisection search of Lewis and Overton, which terminates for any
/// function bounded below along `dir`. A NaN or infinite trial value counts as too long, so
/// the step is shrunk.
///
/// # Requirements
///
/// `dir` must be a descent direction, `∇f(x)ᵀ dir < 0`.
///
/// # Stopping
///
/// Returns at the first accepted trial, or fails after `max_trials` trials.
///
/// # Errors
///
/// [`OuterError::NotDescentDirection`] if `∇f(x)ᵀ dir` is not negative (or NaN),
/// [`OuterError::LineSearchFailed`] after `max_trials` rejected trials, and the errors of the
/// objective.
///
/// # References
///
/// J. Nocedal and S. J. Wright, *Numerical Optimization*, 2nd ed., Springer, 2006:
/// Algorithm 3.1 (backtracking), § 3.5 (interpolation), § 3.1 (Wolfe conditions).
/// A. S. Lewis and M. L. Overton, "Nonsmooth optimization via quasi-Newton methods",
/// *Math. Program.* 141 (2013), § 4.2 (bisection for the weak Wolfe conditions).
///
/// ```
/// use ho_outer::{Armijo, Backtracking, LineSearch, Objective, OuterError};
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
/// // From x = 1 along d = −∇f = −2, t = 1 overshoots to x = −1 (no decrease), the quadratic
/// // interpolant then lands on the minimizer x = 0.
/// let mut ls = Backtracking::armijo();
/// let step = ls.search(&mut Square, array![1.0].view(), 1.0, array![2.0].view(), array![-2.0].view())?;
/// assert!(step.value < 1e-12 && step.grad.is_none() && step.n_trials == 2);
/// # Ok::<(), OuterError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Backtracking<R = Armijo> {
    /// Step-length options.
    pub options: BacktrackingOptions,
    /// Acceptance rule.
    pub rule: R,
}

impl<R> Backtracking<R> {
    /// A search with the given options and rule.
    pub fn new(options: BacktrackingOptions, rule: R) -> Self {
        Self { options, rule }
    }
}

impl Backtracking<Armijo> {
    /// Default options with the default [`Armijo`] rule.
    pub fn armijo() -> Self {
        Self::default()
    }
}

impl Backtracking<Wolfe> {
    /// Default options with the default weak [`Wolfe`] rule (the default of
    /// [`Lbfgs`](crate::Lbfgs)).
    pub fn wolfe() -> Self {
        Self::default()
    }
}

impl<R: AcceptanceRule> Backtracking<R> {
    /// Next trial when shrinking from the bracket `[0, alpha]`.
    fn shrink_from_zero(&self, value0: f64, slope0: f64, alpha: f64, value: f64) -> f64 {
        let plain = self.options.shrink * alpha;
        if !self.options.interpolate || !value.is_finite() {
            return plain;
        }
        // Minimizer of q(t) = value0 + slope0 t + c t², with q(alpha) = value.
        let curvature = value - value0 - slope0 * alpha;
        let t = -slope0 * alpha * alpha / (2.0 * curvature);
        if t.is_finite() && t > 0.0 {
            t.clamp(self.options.shrink.min(0.1) * alpha, plain)
        } else {
            plain
        }
    }

    /// Next trial after the too-short step `alpha` (slope `slope`, when known) with no upper
    /// bracket; `(lo, slope_lo)` is the previous point (0 or the last too-short trial).
    fn expand_from(&self, lo: f64, slope_lo: f64, alpha: f64, slope: Option<f64>) -> f64 {
        let (expand, max_expand) = (self.options.expand, self.options.max_expand);
        match slope {
            Some(s) if max_expand > expand && s > slope_lo && s < 0.0 => {
                // Zero of the line through (lo, slope_lo) and (alpha, s).
                let t = alpha - s * (alpha - lo) / (s - slope_lo);
                if t.is_finite() {
                    t.clamp(expand * alpha, max_expand * alpha)
                } else {
                    max_expand * alpha
                }
            }
            _ => expand * alpha,
        }
    }
}

impl<R: AcceptanceRule> LineSearch for Backtracking<R> {
    fn search(
        &mut self,
        obj: &mut dyn Objective,
        x: ArrayView1<'_, f64>,
        value0: f64,
        grad: ArrayView1<'_, f64>,
        dir: ArrayView1<'_, f64>,
    ) -> Result<Step, OuterError> {
        debug_assert!(self.validate().is_ok(), "invalid line-search options");
        let slope0 = grad.vdot(&dir);
        if slope0.is_nan() || slope0 >= 0.0 {
            return Err(OuterError::NotDescentDirection { slope: slope0 });
        }
        let needs_grad = self.rule.needs_grad();
        let (mut lo, mut hi) = (0.0_f64, f64::INFINITY);
        // The slope at lo (the secant extrapolation's other point).
        let mut slope_lo = slope0;
        let mut alpha = self.options.initial_step;
        let mut trial_x = Array1::zeros(x.len());
        let mut last_alpha = alpha;
        for n_trials in 1..=self.options.max_trials {
            last_alpha = alpha;
            axpy_into(x, alpha, dir, &mut trial_x);
            let (value, trial_grad) = if needs_grad {
                let (v, g) = obj.value_and_grad(trial_x.view())?;
                (v, Some(g))
            } else {
                (obj.value(trial_x.view())?, None)
            };
            let trial = Trial {
                value0,
                slope0,
                alpha,
                value,
                slope: trial_grad.as_ref().map(|g| g.vdot(&dir)),
            };
            match self.rule.verdict(&trial) {
                Verdict::Accept => {
                    return Ok(Step {
                        alpha,
                        x: trial_x,
                        value,
                        grad: trial_grad,
                        n_trials,
                    });
                }
                Verdict::TooLong => {
                    hi = alpha;
                    alpha = if lo > 0.0 {
                        0.5 * (lo + hi)
                    } else {
                        self.shrink_from_zero(value0, slope0, alpha, value)
                    };
                }
                Verdict::TooShort => {
                    let next = if hi.is_finite() {
                        0.5 * (alpha + hi)
                    } else {
                        self.expand_from(lo, slope_lo, alpha, trial.slope)
                    };
                    lo = alpha;
                    if let Some(s) = trial.slope {
                        slope_lo = s;
                    }
                    alpha = next;
                }
            }
        }
        Err(OuterError::LineSearchFailed {
            n_trials: self.options.max_trials,
            alpha: last_alpha,
        })
    }

    fn validate(&self) -> Result<(), OuterError> {
        self.options.validate()?;
        self.rule.validate()
    }
}
