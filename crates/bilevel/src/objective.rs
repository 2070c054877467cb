//! The bilevel GLASSO objective `L(x) = mean over folds of C_f(Θ̂_f(Λ(x)))`, an `ho-outer`
//! [`Objective`] in the log parametrization.
//!
//! ```text
//! scalar:  x = [log λ],                Λ = λ P,  dL/dx = λ dL/dλ
//! matrix:  x = [log Λ_kl]_{k<l} (+ [log Λ_ii] when the diagonal is tuned),
//!          dL/dx_kl = Λ_kl (G_kl + G_lk),  dL/dx_ii = Λ_ii G_ii,  G = ∂L/∂Λ (ho-implicit)
//! ```
//!
//! Each evaluation is one inner solve per fold (folds in parallel with rayon), warm-started
//! from that fold's previous fit; a gradient adds one adjoint solve per fold, warm-started
//! from the previous adjoint. The last point is cached: `value(x)` then `value_and_grad(x)`
//! solves once, and a repeated call costs nothing. Inner solves use a tight tolerance (a
//! loose one gives a wrong support, hence a wrong gradient; DESIGN.md §2): 1e-10 by default,
//! [`BilevelObjective::set_inner_tol`] to change it (the tuner's matrix stage uses 1e-6, and
//! adjoint solves to a relative residual of 1e-4, [`BilevelObjective::set_adjoint_tol`]).
//!
//! Adaptive adjoint tolerance ([`AdaptiveAdjoint`], the tuner's scalar stage). The scalar
//! gradient is a sum over the support, `g = Σ_kl Λ_kl G_kl`, whose terms cancel near the
//! optimum, so a fixed relative residual is either wasteful far from λ* or too loose near it.
//! With the terms' size `A = Σ_kl |Λ_kl G_kl|`, an adjoint solved to the relative residual t
//! has `|δg| ≲ t·A`: measured against solves at 1e-11 on the paper's data and on sparser and
//! reconstruction settings at p = 100 (every scalar-stage evaluation, t = 1e-4, 1e-6, 1e-8),
//! `|δg| / (t·A)` was at most 0.09 and usually 1e-3 to 5e-2. Each hypergradient is solved to
//! `t = clamp(fraction·r, tightest, loosest)`, r the ratio `|g|/A` predicted from the previous
//! evaluations (the last ratio, times its decrease over the one before when falling), then
//! checked with this one's: if `t·A > 10·fraction·|g|` and t is above `tightest`, the adjoint
//! is refined (warm-started from the one just computed) to the tolerance the new ratio asks,
//! at least 10× tighter. With `fraction` = 0.01 the gradient's error thus stays below about
//! 1 % of |g| (0.1 % typically), or is that of `tightest` where |g| is too small for that.
//!
//! Adaptive inner tolerance ([`BilevelObjective::set_inner_tol_max`], the tuner's scalar
//! stage, on top of the adaptive adjoint). Far from λ* a solve to 1e-5 serves as well as one
//! to 1e-10, and DualPn's last Newton steps to 1e-10 are its most expensive ones. The gap
//! perturbs both what the outer method sees: the gradient's terms (their relative error is
//! about the gap reached, as for the adjoint) and the value, by about the gap relative to
//! the criterion, while the line search compares values that differ by about g²/(2h) near
//! λ*, which falls like the square of the ratio. Each solve therefore aims at the relative
//! gap `clamp(fraction·r², tol, inner_tol_max)` from the same predicted ratio r (`tol` the
//! solver's own, 1e-10), and the gradient's ratio checks it: when the gap reached is more
//! than 10× what its own ratio asks, the point is solved again, warm, to that gap (at least
//! 10× tighter) before the hypergradient is recomputed. (Aimed at `fraction·r`, as the
//! adjoint is, the values near λ* at p = 200 scattered by ±3e-7 around differences of 4e-10
//! and the line search failed.)

use crate::BilevelError;
use ho_glasso::{Auto, GlassoFit, GlassoOptions, GlassoProblem, GlassoSolver, Penalty};
use ho_implicit::{Criterion, HypergradOptions, Hypergradient, HypergradientEngine};
use ho_linalg::SingleThreadedBlas;
use ho_outer::{Objective, OuterError};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2};
use rayon::prelude::*;
use std::time::Instant;

/// How `x` maps to the penalty Λ.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Parametrization {
    /// `x = [log λ]`, `Λ = λ P`.
    Scalar {
        /// `P = 11ᵀ` instead of `11ᵀ − I`.
        penalize_diagonal: bool,
    },
    /// One parameter per pair k < l (row-major upper triangle), then one per diagonal entry
    /// when `tune_diagonal`; otherwise `Λ_ii = fixed_diagonal`.
    Matrix {
        /// p.
        p: usize,
        /// Whether the diagonal is tuned too.
        tune_diagonal: bool,
        /// `Λ_ii` when the diagonal is not tuned (0: unpenalized).
        fixed_diagonal: f64,
    },
}

impl Parametrization {
    /// Number of outer parameters.
    pub fn dim(&self) -> usize {
        match *self {
            Parametrization::Scalar { .. } => 1,
            Parametrization::Matrix {
                p, tune_diagonal, ..
            } => p * (p - 1) / 2 + if tune_diagonal { p } else { 0 },
        }
    }

    /// The penalty at `x`.
    pub fn penalty(&self, x: ArrayView1<'_, f64>) -> Penalty {
        match *self {
            Parametrization::Scalar { penalize_diagonal } => Penalty::Scalar {
                alpha: x[0].exp(),
                penalize_diagonal,
            },
            Parametrization::Matrix {
                p,
                tune_diagonal,
                fixed_diagonal,
            } => {
                let mut lam = Array2::from_elem((p, p), fixed_diagonal);
                let mut m = 0;
                for k in 0..p {
                    for l in k + 1..p {
                        let v = x[m].exp();
                        lam[[k, l]] = v;
                        lam[[l, k]] = v;
                        m += 1;
                    }
                }
                if tune_diagonal {
                    for i in 0..p {
                        lam[[i, i]] = x[m + i].exp();
                    }
                }
                Penalty::Matrix(lam)
            }
        }
    }

    /// `x` for a scalar `λ` on the pattern (for a matrix: every pair at `log λ`, the diagonal
    /// too when tuned).
    pub fn x_from_lambda(&self, lambda: f64) -> Array1<f64> {
        Array1::from_elem(self.dim(), lambda.ln())
    }

    /// The gradient in `x` from a hypergradient.
    fn grad(
        &self,
        h: &Hypergradient,
        lam: ArrayView2<'_, f64>,
    ) -> Result<Array1<f64>, BilevelError> {
        match *self {
            Parametrization::Scalar { .. } => Ok(Array1::from_elem(
                1,
                h.grad_log_lambda.ok_or(BilevelError::DimensionMismatch {
                    expected: 1,
                    found: 0,
                })?,
            )),
            Parametrization::Matrix {
                p, tune_diagonal, ..
            } => {
                let g = h
                    .grad_matrix
                    .as_ref()
                    .ok_or(BilevelError::DimensionMismatch {
                        expected: p * p,
                        found: 0,
                    })?;
                let mut out = Array1::zeros(self.dim());
                let mut m = 0;
                for k in 0..p {
                    for l in k + 1..p {
                        out[m] = lam[[k, l]] * (g[[k, l]] + g[[l, k]]);
                        m += 1;
                    }
                }
                if tune_diagonal {
                    for i in 0..p {
                        out[m + i] = lam[[i, i]] * g[[i, i]];
                    }
                }
                Ok(out)
            }
        }
    }
}

/// One training/validation fold with its warm starts.
pub struct Fold {
    /// S of the training rows.
    pub s_train: Array2<f64>,
    /// The criterion on the validation rows.
    pub criterion: Box<dyn Criterion + Send + Sync>,
    fit: Option<GlassoFit>,
    engine: HypergradientEngine,
}

impl Fold {
    /// A fold with no warm start yet.
    pub fn new(
        s_train: Array2<f64>,
        criterion: Box<dyn Criterion + Send + Sync>,
        hyper: HypergradOptions,
    ) -> Self {
        Self {
            s_train,
            criterion,
            fit: None,
            engine: HypergradientEngine::new(hyper),
        }
    }

    /// The fit at the last evaluated point.
    pub fn fit(&self) -> Option<&GlassoFit> {
        self.fit.as_ref()
    }
}

/// Counters and diagnostics of a [`BilevelObjective`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BilevelStats {
    /// Inner GLASSO solves (all folds).
    pub n_inner_solves: usize,
    /// Hypergradients (adjoint solves, all folds).
    pub n_hypergrads: usize,
    /// Adjoint solves repeated at a tighter tolerance by [`AdaptiveAdjoint`] (all folds; the
    /// time is in `hypergrad_seconds`).
    pub n_adjoint_refinements: usize,
    /// Inner solves repeated at a tighter gap by the adaptive inner tolerance
    /// ([`BilevelObjective::set_inner_tol_max`]; all folds, also counted in
    /// `n_inner_solves`).
    pub n_inner_refinements: usize,
    /// Iterations of the inner solves (all folds; for DualPn its Newton steps and any polishing
    /// steps): a measure of the work that does not depend on the machine's speed.
    pub n_inner_iter: usize,
    /// CG iterations of the adjoint solves (all folds, refinements included; the report of
    /// each hypergradient's linear solve).
    pub n_adjoint_iter: usize,
    /// Wall time in inner solves (summed over folds).
    pub inner_seconds: f64,
    /// Wall time in hypergradients (summed over folds).
    pub hypergrad_seconds: f64,
    /// Largest relative duality gap of an inner solve.
    pub max_relative_gap: f64,
    /// Smallest off-support margin seen in a hypergradient (how close to a kink).
    pub min_margin: Option<f64>,
}

/// One fold's gradient in x, seconds spent, off-support margin, the size
/// `Σ_kl |Λ_kl G_kl|` of the terms of a scalar gradient (0 for a matrix parametrization), and
/// the iterations of its adjoint solve.
type FoldGrad = (Array1<f64>, f64, Option<f64>, f64, usize);

/// The adjoint tolerance of each hypergradient chosen from the size of the scalar gradient
/// (module documentation, "Adaptive adjoint tolerance"). Only used with
/// [`Parametrization::Scalar`]; a matrix gradient has no cancelling sum.
///
/// | Name | Meaning | Range |
/// |---|---|---|
/// | `tightest` | smallest relative residual of an adjoint solve | (0, `loosest`] |
/// | `loosest` | largest relative residual (the first evaluation's) | [`tightest`, 1) |
/// | `fraction` | bound on the estimated error `t·Σ|Λ G|` relative to `|g|` | (0, 1) |
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdaptiveAdjoint {
    /// Smallest relative residual.
    pub tightest: f64,
    /// Largest relative residual.
    pub loosest: f64,
    /// Estimated error allowed, relative to |g|.
    pub fraction: f64,
}

impl AdaptiveAdjoint {
    /// The fraction of |g| that the estimated error `t·A` may reach (the measured error is
    /// 10–1000× below the estimate, module documentation).
    pub const DEFAULT_FRACTION: f64 = 0.01;

    /// A computed gradient is refined only when its estimated error exceeds this many times
    /// `fraction·|g|` (the prediction from the previous evaluations aims at `fraction`).
    const SLACK: f64 = 10.0;

    /// The tolerance that a gradient-to-terms ratio `|g|/A` asks for, within the bounds.
    fn tol_for(&self, ratio: f64) -> f64 {
        if ratio.is_nan() {
            return self.tightest;
        }
        (self.fraction * ratio).clamp(self.tightest, self.loosest)
    }

    /// The ratio `|g|/A` predicted for the next evaluation from the last two: the last one,
    /// times its decrease over the one before when the ratios are falling (near λ* they fall
    /// superlinearly, and a prediction from the last ratio alone would be too loose); `None`
    /// before the first gradient.
    fn predict_ratio(last: Option<f64>, before: Option<f64>) -> Option<f64> {
        match (last, before) {
            (None, _) => None,
            (Some(r), None) => Some(r),
            (Some(r), Some(b)) => Some(r * (r / b).min(1.0)),
        }
    }

    /// The tolerance predicted for the next evaluation ([`Self::predict_ratio`]; `loosest`
    /// before the first gradient).
    fn predict(&self, last: Option<f64>, before: Option<f64>) -> f64 {
        Self::predict_ratio(last, before).map_or(self.loosest, |r| self.tol_for(r))
    }

    /// The relative gap of an inner solve that a ratio r asks for, `fraction·r²` between the
    /// solver's own `tightest` and `loosest` (`loosest` without a ratio yet; `tightest` for a
    /// NaN one; module documentation, "Adaptive inner tolerance").
    fn inner_tol_for(&self, ratio: Option<f64>, tightest: f64, loosest: f64) -> f64 {
        match ratio {
            None => loosest,
            Some(r) if r.is_nan() => tightest,
            Some(r) => (self.fraction * r * r).clamp(tightest, loosest),
        }
    }
}

struct Eval {
    x: Array1<f64>,
    value: f64,
    grad: Option<Array1<f64>>,
    /// The relative gap the inner solves aimed at.
    inner_tol: f64,
}

/// The bilevel objective (see the module doc).
pub struct BilevelObjective {
    /// The folds (one for a hold-out split).
    pub folds: Vec<Fold>,
    /// How x maps to Λ.
    pub parametrization: Parametrization,
    /// The inner solver (Auto with a tight tolerance by default).
    pub solver: Auto,
    /// Counters.
    pub stats: BilevelStats,
    last: Option<Eval>,
    /// Largest S_ii over the folds (the scale of the KKT tolerance).
    scale: f64,
    /// Adaptive adjoint tolerance, and the last gradient's `|g|/A`.
    adaptive: Option<AdaptiveAdjoint>,
    last_ratios: [Option<f64>; 2],
    /// Loosest relative gap of an adaptive inner solve ([`Self::set_inner_tol_max`]).
    inner_tol_max: Option<f64>,
}

/// Inner options precise enough for hypergradients on a problem whose covariance has
/// diagonal scale `scale` (its largest S_ii): relative gap 1e-10 and KKT residual
/// 1e-9·scale. The KKT test matters for warm starts: a nearby penalty changes the gap of the
/// old solution by far less than 1e-10, but its KKT residual by the change of Λ.
pub fn inner_options(scale: f64) -> GlassoOptions {
    inner_options_with_tol(scale, INNER_TOL)
}

/// The relative duality gap of the inner solves of [`inner_options`].
pub const INNER_TOL: f64 = 1e-10;

/// [`inner_options`] with relative gap `tol` and KKT residual `10·tol·scale`.
pub fn inner_options_with_tol(scale: f64, tol: f64) -> GlassoOptions {
    GlassoOptions {
        tol,
        kkt_tol: 10.0 * tol * scale.max(f64::MIN_POSITIVE),
        ..Default::default()
    }
}

impl BilevelObjective {
    /// An objective over `folds`.
    pub fn new(folds: Vec<Fold>, parametrization: Parametrization) -> Self {
        let scale = folds
            .iter()
            .flat_map(|f| f.s_train.diag().to_vec())
            .fold(0.0_f64, f64::max);
        Self {
            folds,
            parametrization,
            solver: Auto {
                options: inner_options(scale),
                // DualPn's solves end once the recovered primal is certified against its
                // own dual iterate (docs/solvers.md); the tuner's final fit is certified the
                // default way (`GlassoTuner::fit_cov`).
                certify_against_iterate: true,
                ..Default::default()
            },
            stats: BilevelStats::default(),
            last: None,
            scale,
            adaptive: None,
            last_ratios: [None; 2],
            inner_tol_max: None,
        }
    }

    /// Sets the relative duality gap of the inner solves to `tol` (KKT residual
    /// `10·tol·scale`, [`inner_options_with_tol`]) and lets the hypergradients accept fits
    /// at that gap (their `gap_tol` becomes at least `tol`).
    pub fn set_inner_tol(&mut self, tol: f64) {
        self.solver.options = inner_options_with_tol(self.scale, tol);
        for fold in &mut self.folds {
            let o = &mut fold.engine.options;
            o.gap_tol = o.gap_tol.max(tol);
        }
    }

    /// Sets the relative residual `‖M u − b‖ ≤ tol·‖b‖` of the adjoint solves of the
    /// hypergradients (the engines' `cg.rel_tol`), and turns the adaptive tolerance off.
    pub fn set_adjoint_tol(&mut self, tol: f64) {
        self.adaptive = None;
        for fold in &mut self.folds {
            fold.engine.options.cg.rel_tol = tol;
        }
    }

    /// Chooses the adjoint tolerance of each hypergradient from the size of the scalar
    /// gradient ([`AdaptiveAdjoint`]; `None`: the engines' fixed `cg.rel_tol`). Ignored by a
    /// matrix parametrization.
    ///
    /// # Errors
    /// [`BilevelError::InvalidOption`] unless `0 < tightest ≤ loosest < 1` and
    /// `0 < fraction < 1`.
    pub fn set_adaptive_adjoint(
        &mut self,
        adaptive: Option<AdaptiveAdjoint>,
    ) -> Result<(), BilevelError> {
        if let Some(a) = adaptive {
            let bad =
                |name, value: f64, range| Err(BilevelError::InvalidOption { name, value, range });
            if !(a.tightest > 0.0 && a.tightest <= a.loosest) {
                return bad("tightest", a.tightest, "(0, loosest]");
            }
            if !(a.loosest < 1.0) {
                return bad("loosest", a.loosest, "[tightest, 1)");
            }
            if !(a.fraction > 0.0 && a.fraction < 1.0) {
                return bad("fraction", a.fraction, "(0, 1)");
            }
        }
        self.adaptive = adaptive;
        self.last_ratios = [None; 2];
        Ok(())
    }

    /// Lets the inner solves of a scalar parametrization with an adaptive adjoint
    /// ([`Self::set_adaptive_adjoint`]) aim at relative gaps up to `loosest` (module
    /// documentation, "Adaptive inner tolerance"; `None`: always the solver's own tolerance),
    /// and the hypergradients accept fits at that gap. Ignored by a matrix parametrization
    /// and without an adaptive adjoint.
    ///
    /// # Errors
    /// [`BilevelError::InvalidOption`] unless `loosest` is at least the solver's tolerance
    /// and below 1.
    pub fn set_inner_tol_max(&mut self, loosest: Option<f64>) -> Result<(), BilevelError> {
        if let Some(l) = loosest {
            if !(l >= self.solver.options.tol && l < 1.0) {
                return Err(BilevelError::InvalidOption {
                    name: "inner_tol_max",
                    value: l,
                    range: "[inner tol, 1)",
                });
            }
            for fold in &mut self.folds {
                let o = &mut fold.engine.options;
                o.gap_tol = o.gap_tol.max(l);
            }
        }
        self.inner_tol_max = loosest;
        Ok(())
    }

    /// The adaptive adjoint and the loosest inner gap, when inner solves adapt their gap.
    fn adaptive_inner(&self) -> Option<(AdaptiveAdjoint, f64)> {
        match (self.parametrization, self.adaptive, self.inner_tol_max) {
            (Parametrization::Scalar { .. }, Some(a), Some(l)) => Some((a, l)),
            _ => None,
        }
    }

    /// The relative duality gap the next inner solve aims at: the solver's own tolerance, or
    /// the one the predicted ratio asks for ([`Self::set_inner_tol_max`]).
    fn next_inner_tol(&self) -> f64 {
        let tol = self.solver.options.tol;
        match self.adaptive_inner() {
            Some((a, loosest)) => {
                let [last, before] = self.last_ratios;
                a.inner_tol_for(AdaptiveAdjoint::predict_ratio(last, before), tol, loosest)
            }
            None => tol,
        }
    }

    /// The relative residual asked of the last adjoint solves (that of the next ones when
    /// the tolerance is fixed); `None` without folds.
    pub fn adjoint_tol(&self) -> Option<f64> {
        self.folds.first().map(|f| f.engine.options.cg.rel_tol)
    }

    fn same_x(&self, x: ArrayView1<'_, f64>) -> bool {
        self.last.as_ref().is_some_and(|e| e.x == x)
    }

    /// When the folds run on several rayon threads at once, a guard that keeps each fold's
    /// BLAS calls on its own thread (two pools on the same cores oversubscribe them: see
    /// [`ho_linalg::threads`]).
    fn parallel_folds(&self) -> Option<SingleThreadedBlas> {
        (self.folds.len() > 1 && rayon::current_num_threads() > 1).then(SingleThreadedBlas::new)
    }

    /// Solves every fold at `x` (warm-started) and returns the mean criterion.
    fn solve_at(&mut self, x: ArrayView1<'_, f64>) -> Result<f64, BilevelError> {
        let tol = self.next_inner_tol();
        self.solve_at_tol(x, tol)
    }

    /// [`Self::solve_at`] with the relative duality gap `tol` (and KKT residual
    /// `10·tol·scale`, [`inner_options_with_tol`]).
    fn solve_at_tol(&mut self, x: ArrayView1<'_, f64>, tol: f64) -> Result<f64, BilevelError> {
        let penalty = self.parametrization.penalty(x);
        let adapted;
        let solver = if tol.to_bits() == self.solver.options.tol.to_bits() {
            &self.solver
        } else {
            let tuned = inner_options_with_tol(self.scale, tol);
            adapted = Auto {
                options: GlassoOptions {
                    tol: tuned.tol,
                    kkt_tol: tuned.kkt_tol,
                    ..self.solver.options
                },
                ..self.solver.clone()
            };
            &adapted
        };
        let _blas = self.parallel_folds();
        let results: Vec<Result<(f64, f64, f64, usize), BilevelError>> = self
            .folds
            .par_iter_mut()
            .map(|fold| {
                let t = Instant::now();
                let problem = GlassoProblem::new(fold.s_train.view(), penalty.clone());
                let fit = solver.solve(&problem, fold.fit.as_ref())?;
                let secs = t.elapsed().as_secs_f64();
                let value = fold.criterion.value_at(&fit)?;
                let rel_gap = fit.relative_gap();
                let n_iter = fit.n_iter;
                fold.fit = Some(fit);
                Ok((value, secs, rel_gap, n_iter))
            })
            .collect();
        let mut total = 0.0;
        for r in results {
            let (v, secs, gap, n_iter) = r?;
            total += v;
            self.stats.n_inner_solves += 1;
            self.stats.n_inner_iter += n_iter;
            self.stats.inner_seconds += secs;
            self.stats.max_relative_gap = self.stats.max_relative_gap.max(gap);
        }
        let value = total / self.folds.len() as f64;
        self.last = Some(Eval {
            x: x.to_owned(),
            value,
            grad: None,
            inner_tol: tol,
        });
        Ok(value)
    }

    /// Hypergradients at the last solved point.
    fn grad_at_last(&mut self) -> Result<Array1<f64>, BilevelError> {
        let adaptive = match self.parametrization {
            Parametrization::Scalar { .. } => self.adaptive,
            Parametrization::Matrix { .. } => None,
        };
        let Some(a) = adaptive else {
            let (grad, _) = self.grad_once(None)?;
            self.stats.n_hypergrads += self.folds.len();
            return Ok(grad);
        };
        let [last, before] = self.last_ratios;
        let mut t = a.predict(last, before);
        let (mut grad, mut terms) = self.grad_once(Some(t))?;
        self.stats.n_hypergrads += self.folds.len();
        // A zero A (no penalized entry in the support) is an exact zero gradient.
        while terms > 0.0 {
            let ratio = grad[0].abs() / terms;
            // A refinement replaces this evaluation's ratio.
            self.last_ratios = [Some(ratio), last];
            // First the inner gap against what this ratio asks, then the adjoint's estimated
            // error t·A against the allowed multiple of fraction·|g|.
            if let Some((_, loosest)) = self.adaptive_inner() {
                let tightest = self.solver.options.tol;
                let gap = self.inner_tol().unwrap_or(tightest);
                let asked = a.inner_tol_for(Some(ratio), tightest, loosest);
                if gap > tightest && !(gap <= AdaptiveAdjoint::SLACK * asked) {
                    let tol = asked.min(0.1 * gap).max(tightest);
                    let x = self.last.as_ref().expect("solved before").x.clone();
                    self.solve_at_tol(x.view(), tol)?;
                    self.stats.n_inner_refinements += self.folds.len();
                    (grad, terms) = self.grad_once(Some(t))?;
                    continue;
                }
            }
            if t <= a.tightest || !(t * terms > AdaptiveAdjoint::SLACK * a.fraction * grad[0].abs())
            {
                break;
            }
            t = a.tol_for(ratio).min(0.1 * t).max(a.tightest);
            (grad, terms) = self.grad_once(Some(t))?;
            self.stats.n_adjoint_refinements += self.folds.len();
        }
        Ok(grad)
    }

    /// The relative duality gap the last point's inner solves aimed at (`None` before the
    /// first solve).
    pub fn inner_tol(&self) -> Option<f64> {
        self.last.as_ref().map(|e| e.inner_tol)
    }

    /// One hypergradient per fold at the last solved point (adjoint tolerance `tol` when
    /// given): the mean gradient in x and the mean size of a scalar gradient's terms.
    fn grad_once(&mut self, tol: Option<f64>) -> Result<(Array1<f64>, f64), BilevelError> {
        let x = self.last.as_ref().expect("solved before").x.clone();
        let penalty = self.parametrization.penalty(x.view());
        let p = self.folds[0].s_train.nrows();
        let lam = penalty.to_matrix(p);
        let param = self.parametrization;
        if let Some(t) = tol {
            for fold in &mut self.folds {
                fold.engine.options.cg.rel_tol = t;
            }
        }
        let _blas = self.parallel_folds();
        let results: Vec<Result<FoldGrad, BilevelError>> = self
            .folds
            .par_iter_mut()
            .map(|fold| {
                let t = Instant::now();
                let problem = GlassoProblem::new(fold.s_train.view(), penalty.clone());
                let fit = fold.fit.as_ref().expect("solved before");
                let h = fold
                    .engine
                    .hypergradient(fit, &problem, fold.criterion.as_ref())?;
                let g = param.grad(&h, lam.view())?;
                let terms = match (param, h.grad_matrix.as_ref()) {
                    (Parametrization::Scalar { .. }, Some(gm)) => {
                        gm.iter().zip(lam.iter()).map(|(g, l)| (g * l).abs()).sum()
                    }
                    _ => 0.0,
                };
                Ok((
                    g,
                    t.elapsed().as_secs_f64(),
                    h.margin,
                    terms,
                    h.report.n_iter,
                ))
            })
            .collect();
        let mut grad = Array1::zeros(self.parametrization.dim());
        let mut terms = 0.0;
        for r in results {
            let (g, secs, margin, a, n_iter) = r?;
            self.stats.n_adjoint_iter += n_iter;
            grad += &g;
            terms += a;
            self.stats.hypergrad_seconds += secs;
            if let Some(m) = margin {
                self.stats.min_margin = Some(self.stats.min_margin.map_or(m, |o: f64| o.min(m)));
            }
        }
        let n = self.folds.len() as f64;
        grad /= n;
        if let Some(e) = self.last.as_mut() {
            e.grad = Some(grad.clone());
        }
        Ok((grad, terms / n))
    }

    /// The fits of every fold at the last evaluated point.
    pub fn fits(&self) -> Vec<Option<&GlassoFit>> {
        self.folds.iter().map(Fold::fit).collect()
    }
}

impl Objective for BilevelObjective {
    fn dim(&self) -> usize {
        self.parametrization.dim()
    }

    fn value_and_grad(&mut self, x: ArrayView1<'_, f64>) -> Result<(f64, Array1<f64>), OuterError> {
        if !self.same_x(x) {
            self.solve_at(x).map_err(OuterError::objective)?;
        }
        let e = self.last.as_ref().expect("just solved");
        if let Some(g) = &e.grad {
            return Ok((e.value, g.clone()));
        }
        let grad = self.grad_at_last().map_err(OuterError::objective)?;
        // The value of the last solve (a refined one when the gradient asked for it).
        let value = self.last.as_ref().expect("just solved").value;
        Ok((value, grad))
    }

    fn value(&mut self, x: ArrayView1<'_, f64>) -> Result<f64, OuterError> {
        if self.same_x(x) {
            return Ok(self.last.as_ref().expect("cached").value);
        }
        self.solve_at(x).map_err(OuterError::objective)
    }
}
