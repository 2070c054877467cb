//! Adam, for comparison with the sparse-ho family of tools.

use std::convert::Infallible;
use std::time::Duration;

use ndarray::{Array1, Zip};

use crate::driver::{resolve, validate_limits, Driver, Iterate, Limits, Stop};
use crate::{Bounds, Minimizer, Minimum, Objective, Observer, OuterError};

/// Options of [`Adam`].
///
/// | Name | Default | Meaning | Range |
/// |------|---------|---------|-------|
/// | `lr` | 0.01 | learning rate (step size) | (0, ∞) |
/// | `beta1` | 0.9 | decay of the first-moment average | [0, 1) |
/// | `beta2` | 0.999 | decay of the second-moment average | [0, 1) |
/// | `eps` | 1e-8 | added to `√v̂` in the denominator | (0, ∞) |
/// | `grad_tol` | 1e-6 | stop when the projected gradient norm is ≤ `grad_tol` | [0, ∞) |
/// | `rel_tol` | 0 | stop when `|f_prev − f| ≤ rel_tol · max(|f_prev|, |f|, 1)`; 0 disables | [0, 1) |
/// | `max_iter` | 100 | maximal number of steps | ≥ 0 |
/// | `max_evals` | `None` | maximal number of objective calls (a hard cap) | `None` or ≥ 1 |
/// | `time_budget` | `None` | no objective call is started after this wall time | any |
/// | `bounds` | `None` | box kept by projection | lengths = dim, `lower ≤ upper` |
#[derive(Debug, Clone, PartialEq)]
pub struct AdamOptions {
    /// Learning rate.
    pub lr: f64,
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Denominator offset.
    pub eps: f64,
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

impl Default for AdamOptions {
    fn default() -> Self {
        Self {
            lr: 0.01,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            grad_tol: 1e-6,
            rel_tol: 0.0,
            max_iter: 100,
            max_evals: None,
            time_budget: None,
            bounds: None,
        }
    }
}

impl AdamOptions {
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
        let positive = |name, value: f64| {
            if value > 0.0 && value.is_finite() {
                Ok(())
            } else {
                Err(OuterError::InvalidOption {
                    name,
                    value,
                    range: "(0, ∞)",
                })
            }
        };
        let decay = |name, value: f64| {
            if (0.0..1.0).contains(&value) {
                Ok(())
            } else {
                Err(OuterError::InvalidOption {
                    name,
                    value,
                    range: "[0, 1)",
                })
            }
        };
        positive("lr", self.lr)?;
        decay("beta1", self.beta1)?;
        decay("beta2", self.beta2)?;
        positive("eps", self.eps)?;
        validate_limits(&self.limits(), dim)
    }
}

/// Adam: steps scaled by running averages of the gradient and of its square.
///
/// Included to compare with the tools of the sparse-ho family, which tune penalties with it.
/// One `value_and_grad` call per iteration, no line search, not monotone ([`Minimum`]
/// reports the best iterate).
///
/// # Algorithm
///
/// ```text
/// m_k = β₁ m_{k−1} + (1 − β₁) g_k             m_0 = v_0 = 0, g_k = ∇f(x_{k−1})
/// v_k = β₂ v_{k−1} + (1 − β₂) g_k ⊙ g_k
/// m̂_k = m_k / (1 − β₁ᵏ),  v̂_k = v_k / (1 − β₂ᵏ)
/// x_k = P(x_{k−1} − lr · m̂_k / (√v̂_k + ε))    P: projection onto the box
/// ```
///
/// # Requirements
///
/// `f` differentiable. Each coordinate moves by about `lr` per step at first, whatever the
/// gradient scale; choose `lr` on the scale of `x` (on `log α`, 0.01–0.1).
///
/// # Stopping
///
/// After each iteration, in order: projected gradient norm ≤ `grad_tol`, relative change ≤
/// `rel_tol`, observer break, `max_iter`, `max_evals`, time budget. A non-finite value or
/// gradient at a new iterate ends the run with
/// [`NonFiniteValue`](crate::Termination::NonFiniteValue).
///
/// # Errors
///
/// Invalid options, a start point of the wrong length, a non-finite value or gradient at the
/// start point, and the errors of the objective.
///
/// # References
///
/// D. P. Kingma and J. Ba, "Adam: a method for stochastic optimization", ICLR 2015,
/// Algorithm 1. For the deterministic setting and the projection: J. Nocedal and S. J. Wright,
/// *Numerical Optimization*, 2nd ed., Springer, 2006, § 16.7 (gradient projection).
#[derive(Debug, Clone, Default)]
pub struct Adam {
    /// Options.
    pub options: AdamOptions,
}

impl Adam {
    /// Adam with the given options.
    pub fn new(options: AdamOptions) -> Self {
        Self { options }
    }
}

impl Minimizer for Adam {
    fn minimize(
        &mut self,
        obj: &mut dyn Objective,
        x0: Array1<f64>,
        observer: &mut dyn Observer,
    ) -> Result<Minimum, OuterError> {
        self.options.validate(obj.dim())?;
        let options = &self.options;
        let limits = options.limits();
        let (mut run, first) = Driver::start(obj, x0, &limits, observer)?;
        let outcome = first.and_then(|it| iterate(&mut run, it, options));
        Ok(run.finish(resolve(outcome)?))
    }
}

/// The iterations after the start point; ends only through `Err(Stop)`.
fn iterate(
    run: &mut Driver<'_>,
    mut it: Iterate,
    options: &AdamOptions,
) -> Result<Infallible, Stop> {
    let n = it.x.len();
    let (mut m, mut v) = (Array1::<f64>::zeros(n), Array1::<f64>::zeros(n));
    let (b1, b2) = (options.beta1, options.beta2);
    let (mut b1_pow, mut b2_pow) = (1.0, 1.0);
    loop {
        b1_pow *= b1;
        b2_pow *= b2;
        let (c1, c2) = (1.0 / (1.0 - b1_pow), 1.0 / (1.0 - b2_pow));
        let mut x = it.x;
        Zip::from(&mut x)
            .and(&mut m)
            .and(&mut v)
            .and(&it.grad)
            .for_each(|xi, mi, vi, &g| {
                *mi = b1 * *mi + (1.0 - b1) * g;
                *vi = b2 * *vi + (1.0 - b2) * g * g;
                *xi -= options.lr * (*mi * c1) / ((*vi * c2).sqrt() + options.eps);
            });
        if let Some(b) = run.bounds() {
            b.project_inplace(x.view_mut());
        }
        let prev_value = it.value;
        it = run.evaluate(x)?;
        run.n_iter += 1;
        run.check(&it, Some(prev_value))?;
    }
}
