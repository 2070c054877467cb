//! Limited-memory BFGS with a Wolfe line search.

use crate::vecops::Dot;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use ndarray::{Array1, Zip};

use crate::driver::{resolve, validate_limits, Driver, Iterate, Limits, Stop};
use crate::{
    Backtracking, Bounds, LineSearch, Minimizer, Minimum, Objective, Observer, OuterError,
    Termination, Wolfe,
};

/// Options of [`Lbfgs`].
///
/// | Name | Default | Meaning | Range |
/// |------|---------|---------|-------|
/// | `memory` | 10 | number `m` of curvature pairs `(s, y)` kept | ≥ 1 |
/// | `grad_tol` | 1e-6 | stop when the projected gradient norm is ≤ `grad_tol` | [0, ∞) |
/// | `rel_tol` | 1e-10 | stop when `|f_prev − f| ≤ rel_tol · max(|f_prev|, |f|, 1)`, or when the value nearly stalled and the quasi-Newton model predicts a decrease ≤ `rel_tol · max(|f|, 1)` (Stopping); 0 disables | [0, 1) |
/// | `max_iter` | 100 | maximal number of steps | ≥ 0 |
/// | `max_evals` | `None` | maximal number of objective calls (a hard cap) | `None` or ≥ 1 |
/// | `time_budget` | `None` | no objective call is started after this wall time | any |
/// | `bounds` | `None` | box kept by projection | lengths = dim, `lower ≤ upper` |
/// | `max_step` | `None` | largest change of any coordinate at a line search's first trial (a longer direction is scaled down to it; the line search may still expand) | `None` or > 0 |
/// | `steepest_step` | `None` | `‖d‖_∞` of a steepest-descent trial (the first iteration, and after a reset of the memory): `−∇f` scaled to it instead of `−∇f / max(1, ‖∇f‖₂)` | `None` or > 0 |
#[derive(Debug, Clone, PartialEq)]
pub struct LbfgsOptions {
    /// Number of curvature pairs kept.
    pub memory: usize,
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
    /// Largest `‖d‖_∞` of the direction handed to the line search (its first trial is t = 1):
    /// a longer direction is scaled down to it. A trust region on the first trial only: the
    /// line search still expands when the step is too short.
    pub max_step: Option<f64>,
    /// `‖d‖_∞` of a steepest-descent direction (the first iteration's, and after a reset of
    /// the memory): `−∇f` scaled to it, for objectives whose natural step length is known
    /// while the gradient's size says nothing of it (`max_step` still caps it). `None`:
    /// `−∇f / max(1, ‖∇f‖₂)`.
    pub steepest_step: Option<f64>,
}

impl Default for LbfgsOptions {
    fn default() -> Self {
        Self {
            memory: 10,
            grad_tol: 1e-6,
            rel_tol: 1e-10,
            max_iter: 100,
            max_evals: None,
            time_budget: None,
            bounds: None,
            max_step: None,
            steepest_step: None,
        }
    }
}

impl LbfgsOptions {
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
        if self.memory == 0 {
            return Err(OuterError::InvalidOption {
                name: "memory",
                value: 0.0,
                range: "≥ 1",
            });
        }
        for (name, value) in [
            ("max_step", self.max_step),
            ("steepest_step", self.steepest_step),
        ] {
            if let Some(m) = value {
                if !(m > 0.0 && m.is_finite()) {
                    return Err(OuterError::InvalidOption {
                        name,
                        value: m,
                        range: "None or (0, ∞)",
                    });
                }
            }
        }
        validate_limits(&self.limits(), dim)
    }
}

/// Limited-memory BFGS: quasi-Newton directions from the last `m` curvature pairs, with a
/// line search (weak [`Wolfe`] by default).
///
/// The method meant for the matrix-penalty case, where the hyperparameter objective is
/// non-convex and `x` has one entry per penalized pair.
///
/// # Algorithm
///
/// ```text
/// d_k     = −H_k ∇f(x_k)                   two-loop recursion over (s_i, y_i), i = k−m..k−1,
///                                          H⁰ = γ I, γ = sᵀy / yᵀy of the newest pair
///           −∇f(x_k) / max(1, ‖∇f(x_k)‖)   when the memory is empty (first step, restarts)
///           components that would leave the box are set to 0
///           scaled down to ‖d_k‖_∞ = max_step when longer (if set)
/// t_k     = line search along d_k, first trial t = 1
/// x_{k+1} = P(x_k + t_k d_k)                P: projection onto the box
/// s_k = x_{k+1} − x_k,  y_k = ∇f(x_{k+1}) − ∇f(x_k)
/// the pair is stored only if s_kᵀ y_k > ε ‖s_k‖ ‖y_k‖ (skipped otherwise: no curvature)
/// ```
///
/// If `d_k` is not a descent direction, or the line search fails with a non-empty memory, the
/// memory is cleared and the iteration restarts along the scaled steepest-descent direction.
/// With bounds this is a projected heuristic (active components frozen, the line search runs
/// along the projected path), not L-BFGS-B; it suffices for a box on `log α`.
///
/// # Requirements
///
/// `f` differentiable. The Wolfe curvature condition makes `sᵀy > 0` on unconstrained steps,
/// so pairs are skipped only under projection or round-off.
///
/// # Stopping
///
/// After each iteration, in order: projected gradient norm ≤ `grad_tol`, relative change ≤
/// `rel_tol`, observer break, `max_iter`, `max_evals`, time budget. Before a line search
/// along a quasi-Newton direction d (memory non-empty), when the value has nearly stalled
/// (its last change ≤ 1000 · `rel_tol · max(|f|, 1)`) and the model's predicted decrease
/// `½|∇fᵀd|` is ≤ `rel_tol · max(|f|, 1)`, the run ends as a relative-decrease convergence:
/// near the minimum of a noisy objective (a bilevel value is only as exact as its inner
/// solve) the line search would otherwise spend many evaluations on differences at the
/// noise level (20 at p = 100 in a scalar tuning whose gradient was 2e-6). A line search
/// that fails along the steepest-descent direction ends the run with
/// [`LineSearchFailed`](crate::Termination::LineSearchFailed).
///
/// # Errors
///
/// Invalid options, a start point of the wrong length, a non-finite value or gradient at the
/// start point, and the errors of the objective.
///
/// # References
///
/// J. Nocedal and S. J. Wright, *Numerical Optimization*, 2nd ed., Springer, 2006:
/// Algorithm 7.4 (two-loop recursion), Algorithm 7.5 (L-BFGS), eq. (7.20) (initial scaling γ),
/// § 3.1 (Wolfe conditions). D. C. Liu and J. Nocedal, "On the limited memory BFGS method for
/// large scale optimization", *Math. Program.* 45 (1989).
#[derive(Debug, Clone)]
pub struct Lbfgs<L = Backtracking<Wolfe>> {
    /// Options.
    pub options: LbfgsOptions,
    /// Line search.
    pub line_search: L,
}

impl Default for Lbfgs {
    fn default() -> Self {
        Self::new(LbfgsOptions::default())
    }
}

impl Lbfgs {
    /// L-BFGS with the default weak-Wolfe backtracking line search.
    pub fn new(options: LbfgsOptions) -> Self {
        Self {
            options,
            line_search: Backtracking::wolfe(),
        }
    }
}

impl<L: LineSearch> Lbfgs<L> {
    /// L-BFGS with another line search. Without the curvature condition (e.g.
    /// [`Armijo`](crate::Armijo)) more pairs may be skipped.
    pub fn with_line_search(options: LbfgsOptions, line_search: L) -> Self {
        Self {
            options,
            line_search,
        }
    }
}

impl<L: LineSearch> Minimizer for Lbfgs<L> {
    fn minimize(
        &mut self,
        obj: &mut dyn Objective,
        x0: Array1<f64>,
        observer: &mut dyn Observer,
    ) -> Result<Minimum, OuterError> {
        self.options.validate(obj.dim())?;
        self.line_search.validate()?;
        let memory = self.options.memory;
        let steps = Steps {
            max: self.options.max_step,
            steepest: self.options.steepest_step,
        };
        let line_search = &mut self.line_search;
        let limits = self.options.limits();
        let (mut run, first) = Driver::start(obj, x0, &limits, observer)?;
        let outcome = first.and_then(|it| {
            let mut pairs = Memory::new(memory);
            iterate(&mut run, it, &mut pairs, line_search, steps)
        });
        Ok(run.finish(resolve(outcome)?))
    }
}

/// A curvature pair with `rho = 1 / sᵀy`.
struct Pair {
    s: Array1<f64>,
    y: Array1<f64>,
    rho: f64,
}

/// The last `m` curvature pairs, oldest first, plus scratch space for the two-loop recursion.
struct Memory {
    m: usize,
    pairs: VecDeque<Pair>,
    alphas: Vec<f64>,
}

impl Memory {
    fn new(m: usize) -> Self {
        Self {
            m,
            pairs: VecDeque::with_capacity(m),
            alphas: vec![0.0; m],
        }
    }

    fn clear(&mut self) {
        self.pairs.clear();
    }

    fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// Stores `(x_new − x_old, g_new − g_old)` if it has positive curvature; reuses the
    /// buffers of the pair it evicts. Returns whether the pair was stored.
    fn push(&mut self, old: &Iterate, new: &Iterate) -> bool {
        let mut pair = if self.pairs.len() == self.m {
            self.pairs.pop_front().expect("memory is full")
        } else {
            Pair {
                s: Array1::zeros(old.x.len()),
                y: Array1::zeros(old.x.len()),
                rho: 0.0,
            }
        };
        Zip::from(&mut pair.s)
            .and(&new.x)
            .and(&old.x)
            .for_each(|s, &a, &b| *s = a - b);
        Zip::from(&mut pair.y)
            .and(&new.grad)
            .and(&old.grad)
            .for_each(|y, &a, &b| *y = a - b);
        let sy = pair.s.vdot(&pair.y);
        let threshold = f64::EPSILON * pair.s.vdot(&pair.s).sqrt() * pair.y.vdot(&pair.y).sqrt();
        if sy > threshold && sy.is_finite() {
            pair.rho = 1.0 / sy;
            self.pairs.push_back(pair);
            true
        } else {
            false
        }
    }

    /// `dir ← −H ∇f` by the two-loop recursion (memory non-empty).
    fn direction(&mut self, grad: &Array1<f64>, dir: &mut Array1<f64>) {
        dir.assign(grad);
        for (pair, alpha) in self.pairs.iter().zip(&mut self.alphas).rev() {
            *alpha = pair.rho * pair.s.vdot(dir);
            dir.scaled_add(-*alpha, &pair.y);
        }
        let newest = self.pairs.back().expect("memory is not empty");
        let gamma = 1.0 / (newest.rho * newest.y.vdot(&newest.y));
        *dir *= gamma;
        for (pair, &alpha) in self.pairs.iter().zip(&self.alphas) {
            let beta = pair.rho * pair.y.vdot(dir);
            dir.scaled_add(alpha - beta, &pair.s);
        }
        dir.mapv_inplace(|d| -d);
    }
}

/// Scales `dir` down to `‖dir‖_∞ = max_step` when it is longer.
fn cap_step(dir: &mut Array1<f64>, max_step: Option<f64>) {
    if let Some(m) = max_step {
        let longest = dir.iter().fold(0.0_f64, |a, &d| a.max(d.abs()));
        if longest > m {
            *dir *= m / longest;
        }
    }
}

/// The step-length options of an iteration: `max_step` and `steepest_step`.
#[derive(Clone, Copy)]
struct Steps {
    max: Option<f64>,
    steepest: Option<f64>,
}

/// `dir ← −∇f / max(1, ‖∇f‖)`, restricted to the box, then scaled to `‖dir‖_∞ = steepest`
/// when given.
fn steepest(run: &Driver<'_>, it: &Iterate, dir: &mut Array1<f64>, steepest: Option<f64>) {
    let scale = 1.0 / it.grad.vdot(&it.grad).sqrt().max(1.0);
    Zip::from(&mut *dir)
        .and(&it.grad)
        .for_each(|d, &g| *d = -scale * g);
    if let Some(b) = run.bounds() {
        b.restrict_direction_inplace(it.x.view(), dir.view_mut());
    }
    if let Some(length) = steepest {
        let longest = dir.iter().fold(0.0_f64, |a, &d| a.max(d.abs()));
        if longest > 0.0 && longest.is_finite() {
            *dir *= length / longest;
        }
    }
}

/// The iterations after the start point; ends only through `Err(Stop)`.
fn iterate(
    run: &mut Driver<'_>,
    mut it: Iterate,
    memory: &mut Memory,
    line_search: &mut dyn LineSearch,
    steps: Steps,
) -> Result<Infallible, Stop> {
    let mut dir = Array1::zeros(it.x.len());
    let mut last_change = None;
    loop {
        if memory.is_empty() {
            steepest(run, &it, &mut dir, steps.steepest);
        } else {
            memory.direction(&it.grad, &mut dir);
            if let Some(b) = run.bounds() {
                b.restrict_direction_inplace(it.x.view(), dir.view_mut());
            }
            let slope = it.grad.vdot(&dir);
            if slope.is_nan() || slope >= 0.0 {
                memory.clear();
                steepest(run, &it, &mut dir, steps.steepest);
            } else if run.predicts_no_decrease(&it, slope, last_change) {
                // The value has nearly stalled and the quasi-Newton model predicts a
                // decrease ½|gᵀd| below its tolerance: a line search would only chase
                // rounding (and inexact inner solves) in the value.
                return Err(Stop::Done(Termination::ConvergedRelativeDecrease));
            }
        }
        cap_step(&mut dir, steps.max);
        let step = match run.line_search(line_search, &it, dir.view()) {
            Ok(step) => step,
            Err(OuterError::LineSearchFailed { .. } | OuterError::NotDescentDirection { .. })
                if !memory.is_empty() =>
            {
                memory.clear();
                steepest(run, &it, &mut dir, steps.steepest);
                cap_step(&mut dir, steps.max);
                run.line_search(line_search, &it, dir.view())?
            }
            Err(e) => return Err(e.into()),
        };
        let new = run.accept(step)?;
        memory.push(&it, &new);
        let prev_value = it.value;
        it = new;
        last_change = Some((prev_value - it.value).abs());
        run.n_iter += 1;
        run.check(&it, Some(prev_value))?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;
    use ndarray::array;

    fn iterate(x: Array1<f64>, grad: Array1<f64>) -> Iterate {
        Iterate {
            x,
            value: 0.0,
            grad,
            grad_norm: 0.0,
        }
    }

    #[test]
    fn pairs_without_positive_curvature_are_skipped() {
        let mut memory = Memory::new(3);
        let a = iterate(array![0.0, 0.0], array![1.0, 1.0]);
        // s = (1, 0), y = (−1, 0): sᵀy < 0.
        let b = iterate(array![1.0, 0.0], array![0.0, 1.0]);
        assert!(!memory.push(&a, &b));
        // s = (0, 1), y = (0, 0): sᵀy = 0.
        let c = iterate(array![0.0, 1.0], array![1.0, 1.0]);
        assert!(!memory.push(&a, &c));
        assert!(memory.is_empty());
        // s = (1, 0), y = (2, 0): stored.
        let d = iterate(array![1.0, 0.0], array![3.0, 1.0]);
        assert!(memory.push(&a, &d));
        assert_eq!(memory.pairs.len(), 1);
        assert_abs_diff_eq!(memory.pairs[0].rho, 0.5);
    }

    #[test]
    fn memory_keeps_the_newest_m_pairs() {
        let mut memory = Memory::new(2);
        let origin = iterate(array![0.0], array![0.0]);
        for k in 1..=4 {
            let k = f64::from(k);
            assert!(memory.push(&origin, &iterate(array![k], array![2.0 * k])));
        }
        let s: Vec<f64> = memory.pairs.iter().map(|p| p.s[0]).collect();
        assert_abs_diff_eq!(s.as_slice(), [3.0, 4.0].as_slice());
    }

    /// The two-loop matrix H satisfies the secant equation of the newest pair: H y = s.
    #[test]
    fn two_loop_satisfies_the_newest_secant_equation() {
        let mut memory = Memory::new(5);
        let pairs = [
            (array![1.0, 0.0, 0.5], array![2.0, 0.1, 1.0]),
            (array![0.0, 1.0, -0.3], array![0.2, 3.0, -0.5]),
            (array![0.4, -0.2, 1.0], array![1.0, -0.4, 4.0]),
        ];
        let origin = iterate(Array1::zeros(3), Array1::zeros(3));
        for (s, y) in &pairs {
            assert!(memory.push(&origin, &iterate(s.clone(), y.clone())));
        }
        let (s, y) = &pairs[2];
        let mut dir = Array1::zeros(3);
        memory.direction(y, &mut dir);
        assert_abs_diff_eq!(dir, -s, epsilon = 1e-12);
        // A single pair in 1-D gives the secant step −(s/y) g.
        let mut one = Memory::new(1);
        one.push(
            &iterate(array![0.0], array![0.0]),
            &iterate(array![2.0], array![8.0]),
        );
        let mut dir = Array1::zeros(1);
        one.direction(&array![3.0], &mut dir);
        assert_abs_diff_eq!(dir[0], -0.75);
    }
}
