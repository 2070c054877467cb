//! Zero-order baselines: [`GridSearch`] and [`RandomSearch`] over a box.

use std::ops::ControlFlow;
use std::time::Duration;

use ndarray::{Array1, ArrayView1};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

use crate::driver::{check_start_dim, validate_max_evals, Evaluator, Stop};
use crate::{Bounds, IterRecord, Minimizer, Minimum, Objective, Observer, OuterError, Termination};

/// Options of [`GridSearch`].
///
/// | Name | Default | Meaning | Range |
/// |------|---------|---------|-------|
/// | `n_points` | 20 | grid points per coordinate | ≥ 1 |
/// | `bounds` | `None` | the box searched (required) | finite, lengths = dim, `lower ≤ upper` |
/// | `max_evals` | `None` | maximal number of points evaluated | `None` or ≥ 1 |
/// | `time_budget` | `None` | no point is evaluated after this wall time | any |
#[derive(Debug, Clone, PartialEq)]
pub struct GridSearchOptions {
    /// Grid points per coordinate.
    pub n_points: usize,
    /// The box searched.
    pub bounds: Option<Bounds>,
    /// Maximal number of objective calls.
    pub max_evals: Option<usize>,
    /// Wall-time budget.
    pub time_budget: Option<Duration>,
}

impl Default for GridSearchOptions {
    fn default() -> Self {
        Self {
            n_points: 20,
            bounds: None,
            max_evals: None,
            time_budget: None,
        }
    }
}

impl GridSearchOptions {
    /// Checks every field against its range (and the bounds against `dim`).
    ///
    /// # Errors
    ///
    /// [`OuterError::InvalidOption`], [`OuterError::MissingOption`] without bounds, or the
    /// errors of [`Bounds::check_finite`].
    pub fn validate(&self, dim: usize) -> Result<(), OuterError> {
        if self.n_points == 0 {
            return Err(OuterError::InvalidOption {
                name: "n_points",
                value: 0.0,
                range: "≥ 1",
            });
        }
        validate_max_evals(self.max_evals)?;
        self.bounds
            .as_ref()
            .ok_or(OuterError::MissingOption { name: "bounds" })?
            .check_finite(dim)
    }
}

/// Exhaustive search on a regular grid of the box, from the upper corner down.
///
/// On each coordinate the grid is `upperᵢ − j (upperᵢ − lowerᵢ)/(n − 1)`, `j = 0..n−1`
/// (only `upperᵢ` if `n = 1`). With `x = log α` this is a log-spaced grid of penalties,
/// visited from the largest penalty down, so a warm-started inner solver follows the
/// regularization path.
///
/// # Algorithm
///
/// In dimension `d` the grid is the full tensor product, `nᵈ` points, visited in
/// boustrophedon (snake) order: the last coordinate moves fastest and reverses direction each
/// time a slower coordinate moves, so consecutive points differ by one grid step in one
/// coordinate (good for warm starts). Each point is evaluated with
/// [`Objective::value`] only; a NaN or infinite value is skipped (never the best).
/// The start point `x0` passed to [`Minimizer::minimize`] only fixes the dimension. In
/// dimension > 2 the grid grows fast: cap it with `max_evals`.
///
/// # Stopping
///
/// After the last grid point ([`SearchExhausted`](Termination::SearchExhausted)), observer
/// break, `max_evals`, or time budget. [`Minimum`] reports the best point, `grad_norm = None`
/// and `n_grad_evals = 0`.
///
/// # Errors
///
/// Invalid options, missing or infinite bounds, `x0` of the wrong length,
/// [`OuterError::NonFiniteValue`] if no evaluated point has a finite value, and the errors of
/// the objective.
///
/// # References
///
/// J. Bergstra and Y. Bengio, "Random search for hyper-parameter optimization", JMLR 13
/// (2012) (grid versus random search). J. Nocedal and S. J. Wright, *Numerical Optimization*,
/// 2nd ed., Springer, 2006, ch. 9 (derivative-free optimization).
#[derive(Debug, Clone, Default)]
pub struct GridSearch {
    /// Options.
    pub options: GridSearchOptions,
}

impl GridSearch {
    /// Grid search with the given options.
    pub fn new(options: GridSearchOptions) -> Self {
        Self { options }
    }
}

/// Odometer over the boustrophedon order of an `nᵈ` grid.
struct Snake {
    n: usize,
    digits: Vec<usize>,
    forward: Vec<bool>,
}

impl Snake {
    fn new(n: usize, d: usize) -> Self {
        Self {
            n,
            digits: vec![0; d],
            forward: vec![true; d],
        }
    }

    /// Moves to the next point; `false` when the grid is exhausted.
    fn advance(&mut self) -> bool {
        for i in (0..self.digits.len()).rev() {
            let (digit, forward) = (self.digits[i], self.forward[i]);
            if forward && digit + 1 < self.n {
                self.digits[i] += 1;
                return true;
            }
            if !forward && digit > 0 {
                self.digits[i] -= 1;
                return true;
            }
            self.forward[i] = !forward;
        }
        false
    }
}

impl Minimizer for GridSearch {
    fn minimize(
        &mut self,
        obj: &mut dyn Objective,
        x0: Array1<f64>,
        observer: &mut dyn Observer,
    ) -> Result<Minimum, OuterError> {
        self.options.validate(obj.dim())?;
        check_start_dim(obj, x0.view())?;
        let bounds = self.options.bounds.as_ref().expect("validated");
        let n = self.options.n_points;
        let coord = |i: usize, j: usize| {
            let (lo, hi) = (bounds.lower[i], bounds.upper[i]);
            if n == 1 || j == 0 {
                hi
            } else if j == n - 1 {
                lo
            } else {
                hi - (hi - lo) * (j as f64) / ((n - 1) as f64)
            }
        };
        let mut snake = Snake::new(n, x0.len());
        let mut x = x0;
        let mut search = Search::new(obj, self.options.max_evals, self.options.time_budget);
        let termination = loop {
            for (i, xi) in x.iter_mut().enumerate() {
                *xi = coord(i, snake.digits[i]);
            }
            if let Some(t) = search.visit(x.view(), observer)? {
                break t;
            }
            if !snake.advance() {
                break Termination::SearchExhausted;
            }
            if let Some(t) = search.budget_spent() {
                break t;
            }
        };
        search.finish(termination)
    }
}

/// Options of [`RandomSearch`].
///
/// | Name | Default | Meaning | Range |
/// |------|---------|---------|-------|
/// | `n_samples` | 20 | points evaluated | ≥ 1 |
/// | `seed` | 0 | seed of the PCG-64 generator | any |
/// | `bounds` | `None` | the box searched (required) | finite, lengths = dim, `lower ≤ upper` |
/// | `time_budget` | `None` | no point is evaluated after this wall time | any |
#[derive(Debug, Clone, PartialEq)]
pub struct RandomSearchOptions {
    /// Points evaluated.
    pub n_samples: usize,
    /// Random seed.
    pub seed: u64,
    /// The box searched.
    pub bounds: Option<Bounds>,
    /// Wall-time budget.
    pub time_budget: Option<Duration>,
}

impl Default for RandomSearchOptions {
    fn default() -> Self {
        Self {
            n_samples: 20,
            seed: 0,
            bounds: None,
            time_budget: None,
        }
    }
}

impl RandomSearchOptions {
    /// Checks every field against its range (and the bounds against `dim`).
    ///
    /// # Errors
    ///
    /// [`OuterError::InvalidOption`], [`OuterError::MissingOption`] without bounds, or the
    /// errors of [`Bounds::check_finite`].
    pub fn validate(&self, dim: usize) -> Result<(), OuterError> {
        if self.n_samples == 0 {
            return Err(OuterError::InvalidOption {
                name: "n_samples",
                value: 0.0,
                range: "≥ 1",
            });
        }
        self.bounds
            .as_ref()
            .ok_or(OuterError::MissingOption { name: "bounds" })?
            .check_finite(dim)
    }
}

/// Random search: points drawn uniformly in the box, with a seeded generator.
///
/// With `x = log α` the penalties are log-uniform.
///
/// # Algorithm
///
/// `n_samples` points `xᵢ = lowerᵢ + uᵢ (upperᵢ − lowerᵢ)`, `uᵢ ~ U[0, 1)` independent, drawn
/// from PCG-64 seeded with `seed` (the same seed gives the same points), each evaluated with
/// [`Objective::value`] only; a NaN or infinite value is skipped. The start point `x0` only
/// fixes the dimension.
///
/// # Stopping
///
/// After `n_samples` points ([`SearchExhausted`](Termination::SearchExhausted)), observer
/// break, or time budget. [`Minimum`] reports the best point, `grad_norm = None` and
/// `n_grad_evals = 0`.
///
/// # Errors
///
/// Invalid options, missing or infinite bounds, `x0` of the wrong length,
/// [`OuterError::NonFiniteValue`] if no evaluated point has a finite value, and the errors of
/// the objective.
///
/// # References
///
/// J. Bergstra and Y. Bengio, "Random search for hyper-parameter optimization", JMLR 13
/// (2012). J. Nocedal and S. J. Wright, *Numerical Optimization*, 2nd ed., Springer, 2006,
/// ch. 9 (derivative-free optimization).
#[derive(Debug, Clone, Default)]
pub struct RandomSearch {
    /// Options.
    pub options: RandomSearchOptions,
}

impl RandomSearch {
    /// Random search with the given options.
    pub fn new(options: RandomSearchOptions) -> Self {
        Self { options }
    }
}

impl Minimizer for RandomSearch {
    fn minimize(
        &mut self,
        obj: &mut dyn Objective,
        x0: Array1<f64>,
        observer: &mut dyn Observer,
    ) -> Result<Minimum, OuterError> {
        self.options.validate(obj.dim())?;
        check_start_dim(obj, x0.view())?;
        let bounds = self.options.bounds.as_ref().expect("validated");
        let mut rng = Pcg64::seed_from_u64(self.options.seed);
        let mut x = x0;
        let mut search = Search::new(obj, Some(self.options.n_samples), self.options.time_budget);
        let termination = loop {
            for ((xi, &lo), &hi) in x.iter_mut().zip(&bounds.lower).zip(&bounds.upper) {
                let u: f64 = rng.random();
                *xi = lo + u * (hi - lo);
            }
            if let Some(t) = search.visit(x.view(), observer)? {
                break t;
            }
            if search.eval.evals_exhausted() {
                break Termination::SearchExhausted;
            }
            if let Some(t) = search.budget_spent() {
                break t;
            }
        };
        search.finish(termination)
    }
}

/// Bookkeeping of a zero-order search.
struct Search<'a> {
    eval: Evaluator<'a>,
    best: Option<(Array1<f64>, f64)>,
    last_value: f64,
    n_iter: usize,
}

impl<'a> Search<'a> {
    fn new(
        obj: &'a mut dyn Objective,
        max_evals: Option<usize>,
        time_budget: Option<Duration>,
    ) -> Self {
        Self {
            eval: Evaluator::new(obj, max_evals, time_budget),
            best: None,
            last_value: f64::NAN,
            n_iter: 0,
        }
    }

    /// Evaluates `x`, keeps it if best, reports it. `Some(termination)` to stop.
    fn visit(
        &mut self,
        x: ArrayView1<'_, f64>,
        observer: &mut dyn Observer,
    ) -> Result<Option<Termination>, OuterError> {
        let value = match self.eval.value(x) {
            Ok(value) => value,
            Err(e) => {
                return match Stop::from(e) {
                    Stop::Done(t) => Ok(Some(t)),
                    Stop::Fail(e) => Err(e),
                }
            }
        };
        self.last_value = value;
        let improves = value.is_finite() && self.best.as_ref().is_none_or(|(_, b)| value < *b);
        if improves {
            self.best = Some((x.to_owned(), value));
        }
        let rec = IterRecord {
            iteration: self.n_iter,
            elapsed_secs: self.eval.elapsed_secs(),
            value,
            grad_norm: None,
            x,
            best_value: self.best.as_ref().map_or(f64::NAN, |(_, b)| *b),
            n_evals: self.eval.counters.n_evals(),
            n_grad_evals: 0,
        };
        self.n_iter += 1;
        match observer.on_iter(&rec) {
            ControlFlow::Break(()) => Ok(Some(Termination::StoppedByObserver)),
            ControlFlow::Continue(()) => Ok(None),
        }
    }

    fn budget_spent(&self) -> Option<Termination> {
        if self.eval.evals_exhausted() {
            Some(Termination::MaxEvals)
        } else if self.eval.time_exhausted() {
            Some(Termination::TimeBudget)
        } else {
            None
        }
    }

    fn finish(self, termination: Termination) -> Result<Minimum, OuterError> {
        let (x, value) = self.best.ok_or(OuterError::NonFiniteValue {
            value: self.last_value,
        })?;
        Ok(Minimum {
            x,
            value,
            grad_norm: None,
            n_iter: self.n_iter,
            n_evals: self.eval.counters.n_evals(),
            n_grad_evals: 0,
            elapsed_secs: self.eval.elapsed_secs(),
            termination,
        })
    }
}
