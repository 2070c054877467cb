//! `GlassoTuner`: the estimator API — configure, fit on data (or on covariances), read the
//! precision, the penalty, the trace and a report.

use crate::objective::{AdaptiveAdjoint, BilevelObjective, BilevelStats, Fold, Parametrization};
use crate::split::{holdout, k_fold, FoldCov};
use crate::BilevelError;
use ho_glasso::{lambda_max, Auto, GlassoFit, GlassoProblem, GlassoSolver, Penalty};
use ho_implicit::{Criterion, HeldOutNll, HypergradOptions, Reconstruction};
use ho_linalg::empirical_covariance;
use ho_outer::{
    Adam, AdamOptions, Backtracking, BacktrackingOptions, Bounds, GradientDescent,
    GradientDescentOptions, GridSearch, GridSearchOptions, IterRecord, Lbfgs, LbfgsOptions,
    Minimizer, Minimum, Objective, Observer, RandomSearch, RandomSearchOptions, Termination,
    TraceRow, Wolfe,
};
use ndarray::{Array1, Array2, ArrayView2};
use std::ops::ControlFlow;
use std::time::Instant;

/// The outer criterion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CriterionKind {
    /// Held-out negative log-likelihood `−log det Θ + ⟨S_val, Θ⟩`.
    HeldOut,
    /// Reconstruction `‖Θ S_val − I‖_F`.
    Reconstruction,
}

impl CriterionKind {
    fn build(self, s_val: Array2<f64>) -> Box<dyn Criterion + Send + Sync> {
        match self {
            CriterionKind::HeldOut => Box::new(HeldOutNll::new(s_val)),
            CriterionKind::Reconstruction => Box::new(Reconstruction::new(s_val)),
        }
    }
}

/// How the validation criterion is formed from the data.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Validation {
    /// The last `fraction` of the rows validate.
    Holdout {
        /// In (0, 1).
        fraction: f64,
    },
    /// K contiguous folds, the criterion averaged over them.
    KFold {
        /// K ≥ 2.
        k: usize,
    },
}

/// Expansion factor of L-BFGS's Wolfe line search when a trial is too short (the
/// library's default is 2). Measured in the scalar stage at p = 1000 (`tune_paper`): after a
/// secant step past the optimum, L-BFGS's direction is tiny where the criterion is nearly
/// linear in log λ; doubling took four trials, each a solve and a hypergradient, and stopped
/// at a point that only just met the curvature condition, whose pair then sent the next
/// step far off (to ~120·λ*, a 62 s solve). With 4 (Moré and Thuente's extrapolation bound),
/// side by side on two cores: scalar stage 17 → 12 solves, 285 → 153 s, same λ*; whole
/// tuning 794 → 724 s, matrix criterion −262.46 → −265.76; p = 100 and 200 same criteria,
/// 3–4 fewer solves.
const LBFGS_EXPAND: f64 = 4.0;

/// Largest expansion of a too-short L-BFGS step by secant extrapolation of the directional
/// derivative (`BacktrackingOptions::max_expand`). The matrix stage's first step is L-BFGS's
/// raw gradient (‖∇f‖ ≈ 0.03), about 1000× too short on the paper's data: expanding it by 4
/// at a time took 4 trials at p = 100 and 7 at p = 1000, each a solve and a hypergradient;
/// the secant reached the same accepted step in 2 and 3. Side by side (two threads): p = 100
/// 42 → 40 evaluations, same criterion to 7 digits; p = 200 52 → 51 (criterion 109.28 →
/// 109.93, another path); p = 500 46 → 44 (73.09 → 72.10); p = 1000 38 → 34 evaluations,
/// criterion −265.851 → −265.877 (with the adaptive complement margin). 1000 instead of 64
/// sent p = 100's first step further, to a path ending at 71.81 instead of 71.56.
///
/// Since the twentieth session the matrix stage's first trial is that gradient scaled to
/// `max_log_step` in its largest entry (`LbfgsOptions::steepest_step`): the steps accepted
/// after expanding had moved the largest log-penalty by 0.49 (p = 100), 3.8 (p = 200) and
/// 3.0 (p = 500), and the later L-BFGS steps are capped at 3. Evaluations of the matrix
/// stage: p = 100 32 → 31, p = 200 33 → 31, p = 500 33 → 31, p = 1000 33 → 31; criteria
/// 71.495 → 71.522, 108.940 → 108.924, 71.523 → 71.479, −266.634 → −266.726 (other paths).
const LBFGS_MAX_EXPAND: f64 = 64.0;

/// The outer optimizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptimizerKind {
    /// Gradient descent with the fixed step `gd_step` (the paper's method).
    Gd,
    /// Gradient descent with an Armijo backtracking line search.
    Armijo,
    /// L-BFGS with a Wolfe line search that expands short steps by 4 (the default).
    Lbfgs,
    /// Adam with learning rate `gd_step`.
    Adam,
    /// Log-spaced grid on log λ (scalar only), largest first.
    Grid,
    /// Log-uniform random search (scalar only).
    Random,
}

impl OptimizerKind {
    /// From its CLI name.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "gd" => Self::Gd,
            "armijo" => Self::Armijo,
            "lbfgs" => Self::Lbfgs,
            "adam" => Self::Adam,
            "grid" => Self::Grid,
            "random" => Self::Random,
            _ => return None,
        })
    }

    /// Its CLI name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Gd => "gd",
            Self::Armijo => "armijo",
            Self::Lbfgs => "lbfgs",
            Self::Adam => "adam",
            Self::Grid => "grid",
            Self::Random => "random",
        }
    }
}

/// Options of [`GlassoTuner`].
///
/// | Name | Default | Meaning | Range |
/// |---|---|---|---|
/// | `criterion` | HeldOut | outer criterion | |
/// | `validation` | Holdout 0.5 | split of the rows (for `fit`) | |
/// | `weighted` | false | after the scalar stage, tune the full matrix Λ | |
/// | `tune_diagonal` | false | matrix stage: tune Λ_ii too | |
/// | `penalize_diagonal` | false | scalar pattern P = 11ᵀ (else 11ᵀ − I) | |
/// | `optimizer` | Lbfgs | outer method | |
/// | `max_iter` | 50 | outer iterations per stage (points for grid/random) | ≥ 1 |
/// | `matrix_max_iter` | 30 | outer iterations of the matrix stage | ≥ 1 |
/// | `gd_step` | 0.1 | step of `Gd`, learning rate of `Adam` | > 0 |
/// | `log_range` | 12 | bounds on log λ: [log λ_max − log_range, log λ_max] | > 0 |
/// | `max_log_step` | 3 | L-BFGS: largest change of any log-penalty at a line search's first trial (a factor e³ ≈ 20), both stages | > 0 (∞: none) |
/// | `start_ratio` | 0.1 | scalar start λ₀ = start_ratio·λ_max | (0, 1) |
/// | `grad_tol` | 1e-6 | stop when the projected gradient norm (log space) is below | ≥ 0 |
/// | `adjoint_tol` | 1e-8 | smallest relative residual of the scalar stage's adjoint solves | (0, 1) |
/// | `adjoint_tol_max` | 1e-4 | largest one: each is solved only as tightly as the size of the scalar gradient needs ([`AdaptiveAdjoint`]) | [`adjoint_tol`, 1) |
/// | `inner_tol_max` | 1e-5 | largest relative duality gap of the scalar stage's inner solves: each aims only as tightly as the size of the scalar gradient needs, down to 1e-10 near λ* (with the adaptive adjoint; [`BilevelObjective::set_inner_tol_max`]) | [1e-10, 1e-3] |
/// | `matrix_inner_tol` | 1e-6 | relative duality gap of the inner solves of the matrix stage (the scalar stage's: `inner_tol_max` down to 1e-10) | (0, 1e-3] |
/// | `matrix_adjoint_tol` | 1e-4 | relative residual of the adjoint solves of the matrix stage | (0, 1) |
/// | `seed` | 0 | random search seed | |
/// | `assume_centered` | false | covariance without centring | |
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TunerOptions {
    /// Outer criterion.
    pub criterion: CriterionKind,
    /// Validation scheme for [`GlassoTuner::fit`].
    pub validation: Validation,
    /// Whether to tune the full matrix after the scalar.
    pub weighted: bool,
    /// Whether the matrix stage tunes the diagonal.
    pub tune_diagonal: bool,
    /// Scalar pattern with the diagonal.
    pub penalize_diagonal: bool,
    /// Outer method.
    pub optimizer: OptimizerKind,
    /// Iterations (or points) of the scalar stage.
    pub max_iter: usize,
    /// Iterations of the matrix stage.
    pub matrix_max_iter: usize,
    /// Fixed step / learning rate.
    pub gd_step: f64,
    /// Width of the log λ box below log λ_max.
    pub log_range: f64,
    /// Largest change of any log-penalty at the first trial of an L-BFGS line search (a
    /// longer quasi-Newton step is scaled down to it; the line search may still expand it):
    /// `LbfgsOptions::max_step`, both stages; infinity disables it. In the matrix stage,
    /// L-BFGS's early steps multiplied penalty entries by up to e¹¹ (100 000 pairs of the
    /// support grew by more than e and 100 000 shrank, at p = 1000), each such point a
    /// 15–20 s inner solve. Side by side (two threads, same build) with 3 instead of none:
    /// tuned criterion lower at every size (p = 50 41.164 → 41.146, p = 100 71.562 → 71.494,
    /// p = 200 109.948 → 108.886, p = 500 72.092 → 71.513, p = 1000 −265.888 → −266.577)
    /// and time the same or lower (p = 100 medians of 3 0.89 → 0.76 s, p = 200 5.05 → 5.30 s,
    /// p = 500 31.0–34.2 → 30.0 s, p = 1000 214–222 → 167 s); 2 and 4 gave criteria within
    /// ±0.1 of 3's.
    pub max_log_step: f64,
    /// Start of the scalar stage, relative to λ_max.
    pub start_ratio: f64,
    /// Gradient-norm tolerance.
    pub grad_tol: f64,
    /// Relative residual `‖r‖ ≤ adjoint_tol·‖b‖` of the adjoint solve. The hypergradient's
    /// relative error is at most about `κ(M)·adjoint_tol`; on the paper's data at p = 100,
    /// 1e-8 instead of the hypergradient default 1e-10 saved 20–25 % of the hypergradient time
    /// and left the tuned criterion unchanged to 8 digits (1e-6 changed its 8th digit).
    pub adjoint_tol: f64,
    /// Largest relative residual of the scalar stage's adjoint solves. Each hypergradient is
    /// solved to `clamp(0.01·|g|/A, adjoint_tol, adjoint_tol_max)`, A = `Σ_kl |Λ_kl G_kl|` the
    /// size of the terms that the scalar gradient g sums (refined if this evaluation's ratio
    /// asks for more; [`AdaptiveAdjoint`]): loose far from λ*, `adjoint_tol` where the terms
    /// cancel. Equal to `adjoint_tol`: a fixed tolerance. Measured on the paper's data, scalar
    /// stage, two threads, against a fixed 1e-8 (with the L-BFGS predicted-decrease stop,
    /// `ho_outer::Lbfgs`, added at the same time): p = 1000 149.9 → 109.5 s (hypergradients
    /// 73.3 → 38.3 s, CG iterations 424 → 226, 12 → 11 evaluations), p = 500 12.1–13.4 →
    /// 8.6 s (CG 325 → 187), p = 100 CG 191 → 137; λ* within 3e-5 relative and the
    /// criterion within 1e-10. On sparser data (n = p, 2p, 5p), reconstruction and 5-fold
    /// criteria at p = 100: CG −25 to −50 %, λ* within 4e-7.
    pub adjoint_tol_max: f64,
    /// Largest relative duality gap of the scalar stage's inner solves, when its adjoint
    /// tolerance adapts (`adjoint_tol_max > adjoint_tol`): each solve aims at
    /// `clamp(0.01·r², 1e-10, inner_tol_max)`, r the predicted `|g|/A`, and is solved again
    /// tighter when the gradient's own ratio asks for it (module docs of
    /// [`crate::objective`]). Equal to [`crate::INNER_TOL`] (1e-10): every solve at 1e-10.
    /// Far from λ* the rule asks for gaps of 1e-4 and more; 1e-5 instead of 1e-7 saved a
    /// Newton step in each of the long first steps of the scalar stage (p = 1000: scalar
    /// inner time 12.8–13.5 → 9.8–10.0 s over seeds 0 and 1, same λ* to 1e-5 and scalar
    /// criterion to 9 digits, one more warm re-solve; p = 500: 1.41–1.53 → 1.18–1.21 s;
    /// p = 100 and 200: same λ* and criterion, −20 to −35 % scalar inner time).
    pub inner_tol_max: f64,
    /// Relative duality gap of the inner solves of the matrix stage (the scalar stage's are
    /// at most `inner_tol_max`, down to [`crate::INNER_TOL`] = 1e-10 next to λ*). The
    /// hypergradient's relative error is about the gap reached (on the paper's data at
    /// p = 100, support found then Newton-polished: 2e-10 at a 1.6e-10 gap, 6e-7 at 4e-7,
    /// against a 1e-13 solve): at 1e-6 it stays an order below that of the stage's adjoint
    /// solves (`matrix_adjoint_tol`, 2e-5 median). 1e-7 instead of 1e-10 had cut the stage's
    /// inner time by ~20 % at p = 100; 1e-6 instead of 1e-7, once DualPn certified its
    /// recovered primal against its own dual iterate and aimed its last Newton step at the
    /// tolerance (docs/solvers.md), took the stage's solves at p = 1000 from 40.4 / 46.5 s to
    /// 36.4 / 37.1 / 36.8 s (two threads, runs in a fast and a slow phase of the machine), at
    /// p = 500 from 47.1 to 43.3 s over four data seeds, at p = 100 from 0.28 to 0.25 s. The
    /// tuned criterion moved within the noise of the stage's path (it stops at its budget far
    /// from stationarity): p = 200, eight seeds, −0.030 to +0.091 (mean +1e-4 relative);
    /// p = 500, four seeds, −0.137 to +0.020; p = 1000 −266.651 → −266.665; p = 100
    /// 71.493637 → 71.494676. The tuner reports the largest gap reached.
    pub matrix_inner_tol: f64,
    /// Relative residual of the adjoint solves of the matrix stage (`adjoint_tol` is the
    /// scalar stage's). The hypergradient's relative error is at most about κ(M) times it;
    /// the matrix stage runs far from stationarity (it usually stops at `matrix_max_iter`),
    /// where L-BFGS needs a few correct digits, not ten. Measured along the matrix stage of
    /// tune_paper (every hypergradient recomputed by a fresh engine at 1e-11): at 1e-4 the
    /// relative error of the gradient in log Λ was 1.7e-5 / 2.5e-5 / 2.7e-5 (median) and at
    /// most 4.8e-5 / 6.2e-5 / 6.0e-5 at p = 100 / 200 / 500 (at 1e-6: 1.7e-7 median, 6.7e-7
    /// at most), cosine 1 to 8 digits. Against 1e-6 it took the CG iterations of the stage's
    /// hypergradients 935 → 684 at p = 100, 1403 → 944 at p = 200 and 2251 → 1487 at p = 500
    /// (hypergradient time 37.8 → 27.9 s there), and ended at the same criterion to 7 digits
    /// at p = 100 (71.563172), 4e-5 relative above at p = 200, 2e-5 at p = 500 (the L-BFGS
    /// path differs); at p = 1000 (two threads) the stage's hypergradients took 200.9 s
    /// instead of 252.6 s (CG iterations 2129 → 1421) and the criterion ended 1.3e-4 relative
    /// lower. Earlier, 1e-6 instead of 1e-8 had cut it by ~17 % at p = 100.
    pub matrix_adjoint_tol: f64,
    /// Seed of the random search.
    pub seed: u64,
    /// Covariance without centring.
    pub assume_centered: bool,
}

impl Default for TunerOptions {
    fn default() -> Self {
        Self {
            criterion: CriterionKind::HeldOut,
            validation: Validation::Holdout { fraction: 0.5 },
            weighted: false,
            tune_diagonal: false,
            penalize_diagonal: false,
            optimizer: OptimizerKind::Lbfgs,
            max_iter: 50,
            matrix_max_iter: 30,
            gd_step: 0.1,
            log_range: 12.0,
            max_log_step: 3.0,
            start_ratio: 0.1,
            grad_tol: 1e-6,
            adjoint_tol: 1e-8,
            adjoint_tol_max: 1e-4,
            inner_tol_max: 1e-5,
            matrix_inner_tol: 1e-6,
            matrix_adjoint_tol: 1e-4,
            seed: 0,
            assume_centered: false,
        }
    }
}

/// One iteration of the trace, with the stage it belongs to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TunerTraceRow {
    /// `"scalar"` or `"matrix"`.
    pub stage: &'static str,
    /// The outer record summary.
    pub row: TraceRow,
    /// λ (scalar stage) or ‖Λ‖_F (matrix stage) at the iterate.
    pub penalty_size: f64,
}

/// What one stage did.
#[derive(Debug, Clone)]
pub struct StageReport {
    /// The outer minimum.
    pub minimum: Minimum,
    /// Counters of the objective during the stage.
    pub stats: BilevelStats,
}

/// The result of a tuning run.
#[derive(Debug, Clone)]
pub struct Tuned {
    /// Θ̂ at the chosen penalty (on the training covariance for a hold-out split; refit on all
    /// rows for K-fold).
    pub precision: Array2<f64>,
    /// W = Θ̂⁻¹.
    pub covariance: Array2<f64>,
    /// The chosen penalty matrix Λ.
    pub penalty: Array2<f64>,
    /// The chosen scalar λ (scalar stage).
    pub lambda: f64,
    /// λ_max of the (first) training covariance.
    pub lambda_max: f64,
    /// The validation criterion at the chosen scalar λ.
    pub scalar_criterion: f64,
    /// The validation criterion at the final penalty (the matrix one when weighted).
    pub criterion: f64,
    /// Scalar stage.
    pub scalar: StageReport,
    /// Matrix stage, when weighted.
    pub matrix: Option<StageReport>,
    /// The whole trace.
    pub trace: Vec<TunerTraceRow>,
    /// Total wall time.
    pub seconds: f64,
    /// The final inner fit (on the first fold's training covariance, or the refit).
    pub fit: GlassoFit,
}

impl Tuned {
    /// Inner solves over both stages.
    pub fn n_inner_solves(&self) -> usize {
        self.scalar.stats.n_inner_solves
            + self.matrix.as_ref().map_or(0, |m| m.stats.n_inner_solves)
    }

    /// Outer iterations over both stages.
    pub fn n_outer(&self) -> usize {
        self.scalar.minimum.n_iter + self.matrix.as_ref().map_or(0, |m| m.minimum.n_iter)
    }
}

/// The estimator: `GlassoTuner { options }.fit(x)` or `.fit_cov(s_train, s_val)`.
#[derive(Debug, Clone, Default)]
pub struct GlassoTuner {
    /// Options.
    pub options: TunerOptions,
}

struct Recorder<'a, F: FnMut(&TunerTraceRow)> {
    stage: &'static str,
    param: Parametrization,
    rows: &'a mut Vec<TunerTraceRow>,
    progress: F,
}

impl<F: FnMut(&TunerTraceRow)> Observer for Recorder<'_, F> {
    fn on_iter(&mut self, rec: &IterRecord<'_>) -> ControlFlow<()> {
        let penalty_size = match self.param {
            Parametrization::Scalar { .. } => rec.x[0].exp(),
            Parametrization::Matrix { .. } => {
                2f64.sqrt() * rec.x.mapv(|v| (2.0 * v).exp()).sum().sqrt()
            }
        };
        let row = TunerTraceRow {
            stage: self.stage,
            row: TraceRow::from_record(rec),
            penalty_size,
        };
        (self.progress)(&row);
        self.rows.push(row);
        ControlFlow::Continue(())
    }
}

impl GlassoTuner {
    fn validate(&self) -> Result<(), BilevelError> {
        let o = &self.options;
        let bad = |name, value: f64, range| Err(BilevelError::InvalidOption { name, value, range });
        if o.max_iter == 0 {
            return bad("max_iter", 0.0, "≥ 1");
        }
        if o.matrix_max_iter == 0 {
            return bad("matrix_max_iter", 0.0, "≥ 1");
        }
        if !(o.gd_step > 0.0 && o.gd_step.is_finite()) {
            return bad("gd_step", o.gd_step, "> 0");
        }
        if !(o.log_range > 0.0 && o.log_range.is_finite()) {
            return bad("log_range", o.log_range, "> 0");
        }
        if !(o.max_log_step > 0.0) {
            return bad("max_log_step", o.max_log_step, "> 0");
        }
        if !(o.start_ratio > 0.0 && o.start_ratio < 1.0) {
            return bad("start_ratio", o.start_ratio, "(0, 1)");
        }
        if !(o.adjoint_tol > 0.0 && o.adjoint_tol < 1.0) {
            return bad("adjoint_tol", o.adjoint_tol, "(0, 1)");
        }
        if !(o.adjoint_tol_max >= o.adjoint_tol && o.adjoint_tol_max < 1.0) {
            return bad("adjoint_tol_max", o.adjoint_tol_max, "[adjoint_tol, 1)");
        }
        if !(o.inner_tol_max >= crate::INNER_TOL && o.inner_tol_max <= 1e-3) {
            return bad("inner_tol_max", o.inner_tol_max, "[1e-10, 1e-3]");
        }
        if !(o.matrix_inner_tol > 0.0 && o.matrix_inner_tol <= 1e-3) {
            return bad("matrix_inner_tol", o.matrix_inner_tol, "(0, 1e-3]");
        }
        if !(o.matrix_adjoint_tol > 0.0 && o.matrix_adjoint_tol < 1.0) {
            return bad("matrix_adjoint_tol", o.matrix_adjoint_tol, "(0, 1)");
        }
        if o.weighted && matches!(o.optimizer, OptimizerKind::Grid | OptimizerKind::Random) {
            // zero-order searches are scalar baselines; the matrix stage then uses L-BFGS
        }
        Ok(())
    }

    /// Tunes on a data matrix X (n × p, rows are samples), split by `options.validation`.
    ///
    /// # Errors
    /// Invalid options or data ([`BilevelError`]), and failures of the layers below.
    pub fn fit(&self, x: ArrayView2<'_, f64>) -> Result<Tuned, BilevelError> {
        self.fit_with_progress(x, |_| {})
    }

    /// [`GlassoTuner::fit`] with a callback after every outer iteration.
    ///
    /// # Errors
    /// As [`GlassoTuner::fit`].
    pub fn fit_with_progress(
        &self,
        x: ArrayView2<'_, f64>,
        progress: impl FnMut(&TunerTraceRow),
    ) -> Result<Tuned, BilevelError> {
        self.validate()?;
        let ac = self.options.assume_centered;
        match self.options.validation {
            Validation::Holdout { fraction } => {
                let f = holdout(x, fraction, ac)?;
                self.run(vec![f], None, progress)
            }
            Validation::KFold { k } => {
                let folds = k_fold(x, k, ac)?;
                let full = empirical_covariance(x, ac)?;
                self.run(folds, Some(full), progress)
            }
        }
    }

    /// Tunes on given training and validation covariances.
    ///
    /// # Errors
    /// As [`GlassoTuner::fit`].
    pub fn fit_cov(
        &self,
        s_train: ArrayView2<'_, f64>,
        s_val: ArrayView2<'_, f64>,
    ) -> Result<Tuned, BilevelError> {
        self.fit_cov_with_progress(s_train, s_val, |_| {})
    }

    /// [`GlassoTuner::fit_cov`] with a progress callback.
    ///
    /// # Errors
    /// As [`GlassoTuner::fit`].
    pub fn fit_cov_with_progress(
        &self,
        s_train: ArrayView2<'_, f64>,
        s_val: ArrayView2<'_, f64>,
        progress: impl FnMut(&TunerTraceRow),
    ) -> Result<Tuned, BilevelError> {
        self.validate()?;
        if s_train.dim() != s_val.dim() {
            return Err(BilevelError::DimensionMismatch {
                expected: s_train.nrows(),
                found: s_val.nrows(),
            });
        }
        let fold = FoldCov {
            s_train: s_train.to_owned(),
            s_val: s_val.to_owned(),
        };
        self.run(vec![fold], None, progress)
    }

    fn make_folds(&self, folds: &[FoldCov], hyper: HypergradOptions) -> Vec<Fold> {
        folds
            .iter()
            .map(|f| {
                Fold::new(
                    f.s_train.clone(),
                    self.options.criterion.build(f.s_val.clone()),
                    hyper,
                )
            })
            .collect()
    }

    /// The outer method of a stage; `steepest_step` is L-BFGS's
    /// [`LbfgsOptions::steepest_step`].
    fn minimizer(
        &self,
        kind: OptimizerKind,
        max_iter: usize,
        bounds: Bounds,
        steepest_step: Option<f64>,
    ) -> Box<dyn Minimizer> {
        let o = &self.options;
        match kind {
            OptimizerKind::Gd => Box::new(GradientDescent::new(GradientDescentOptions {
                step: o.gd_step,
                grad_tol: o.grad_tol,
                max_iter,
                bounds: Some(bounds),
                ..Default::default()
            })),
            OptimizerKind::Armijo => Box::new(GradientDescent::with_line_search(
                GradientDescentOptions {
                    step: 1.0,
                    grad_tol: o.grad_tol,
                    max_iter,
                    bounds: Some(bounds),
                    ..Default::default()
                },
                Backtracking::armijo(),
            )),
            OptimizerKind::Lbfgs => Box::new(Lbfgs::with_line_search(
                LbfgsOptions {
                    grad_tol: o.grad_tol,
                    max_iter,
                    bounds: Some(bounds),
                    max_step: Some(o.max_log_step).filter(|m| m.is_finite()),
                    steepest_step,
                    ..Default::default()
                },
                Backtracking::new(
                    BacktrackingOptions {
                        expand: LBFGS_EXPAND,
                        max_expand: LBFGS_MAX_EXPAND,
                        ..Default::default()
                    },
                    Wolfe::default(),
                ),
            )),
            OptimizerKind::Adam => Box::new(Adam::new(AdamOptions {
                lr: o.gd_step,
                grad_tol: o.grad_tol,
                max_iter,
                bounds: Some(bounds),
                ..Default::default()
            })),
            OptimizerKind::Grid => Box::new(GridSearch::new(GridSearchOptions {
                n_points: max_iter,
                bounds: Some(bounds),
                ..Default::default()
            })),
            OptimizerKind::Random => Box::new(RandomSearch::new(RandomSearchOptions {
                n_samples: max_iter,
                seed: o.seed,
                bounds: Some(bounds),
                ..Default::default()
            })),
        }
    }

    fn run(
        &self,
        folds: Vec<FoldCov>,
        refit_cov: Option<Array2<f64>>,
        mut progress: impl FnMut(&TunerTraceRow),
    ) -> Result<Tuned, BilevelError> {
        let start = Instant::now();
        let o = self.options;
        let p = folds[0].s_train.nrows();
        let lmax = lambda_max(folds[0].s_train.view());
        if !(lmax > 0.0) {
            return Err(BilevelError::NothingToTune);
        }
        let (lo, hi) = (lmax.ln() - o.log_range, lmax.ln());
        let mut trace = Vec::new();

        // Scalar stage.
        let scalar_param = Parametrization::Scalar {
            penalize_diagonal: o.penalize_diagonal,
        };
        let mut hyper = HypergradOptions::default();
        hyper.cg.rel_tol = o.adjoint_tol;
        let mut obj = BilevelObjective::new(self.make_folds(&folds, hyper), scalar_param);
        if o.adjoint_tol_max > o.adjoint_tol {
            obj.set_adaptive_adjoint(Some(AdaptiveAdjoint {
                tightest: o.adjoint_tol,
                loosest: o.adjoint_tol_max,
                fraction: AdaptiveAdjoint::DEFAULT_FRACTION,
            }))?;
            obj.set_inner_tol_max(Some(o.inner_tol_max))?;
        }
        let bounds = Bounds::uniform(1, lo, hi)?;
        let x0 = Array1::from_elem(1, (o.start_ratio * lmax).ln());
        let mut minimizer = self.minimizer(o.optimizer, o.max_iter, bounds, None);
        let scalar_min = {
            let mut rec = Recorder {
                stage: "scalar",
                param: scalar_param,
                rows: &mut trace,
                progress: &mut progress,
            };
            minimizer.minimize(&mut obj, x0, &mut rec)?
        };
        let lambda = scalar_min.x[0].exp();
        // The fits at the optimum (the minimizer's last call may have been elsewhere).
        let scalar_criterion = obj.value(scalar_min.x.view())?;
        let scalar = StageReport {
            minimum: scalar_min,
            stats: obj.stats,
        };
        let mut final_obj = obj;
        let mut final_x = scalar.minimum.x.clone();
        let mut criterion = scalar_criterion;

        // Matrix stage, from the scalar optimum (an entry with Θ̂_kl = 0 has a zero
        // hypergradient, so starting from a diagonal solution would never move).
        let matrix = if o.weighted {
            let param = Parametrization::Matrix {
                p,
                tune_diagonal: o.tune_diagonal,
                fixed_diagonal: if o.penalize_diagonal { lambda } else { 0.0 },
            };
            // The scalar stage's folds carry the fits and adjoints at x0 (Λ₀ = λ*·P): the
            // first evaluation costs no solve.
            let mut mobj = BilevelObjective::new(std::mem::take(&mut final_obj.folds), param);
            mobj.set_inner_tol(o.matrix_inner_tol);
            mobj.set_adjoint_tol(o.matrix_adjoint_tol);
            let dim = param.dim();
            let x0 = param.x_from_lambda(lambda);
            let bounds = Bounds::uniform(dim, lo, hi + 2.0)?;
            let kind = match o.optimizer {
                OptimizerKind::Grid | OptimizerKind::Random => OptimizerKind::Lbfgs,
                k => k,
            };
            // The first step of the matrix stage is the raw gradient, whose size (‖∇f‖ ≈ 0.03
            // on the paper's data) says nothing of the step: scaled to max_log_step in the
            // largest entry, about the first step the line search accepted by expanding it
            // (module docs of LBFGS_MAX_EXPAND).
            let steepest = Some(o.max_log_step).filter(|m| m.is_finite());
            let mut minimizer = self.minimizer(kind, o.matrix_max_iter, bounds, steepest);
            let m = {
                let mut rec = Recorder {
                    stage: "matrix",
                    param,
                    rows: &mut trace,
                    progress: &mut progress,
                };
                minimizer.minimize(&mut mobj, x0, &mut rec)?
            };
            criterion = mobj.value(m.x.view())?;
            final_x = m.x.clone();
            let report = StageReport {
                minimum: m,
                stats: mobj.stats,
            };
            final_obj = mobj;
            Some(report)
        } else {
            None
        };

        let penalty = final_obj.parametrization.penalty(final_x.view());
        let lam = penalty.to_matrix(p);
        // The final fit is certified the default way (the gap against clip(W − S) of
        // DESIGN.md §1, recomputable from the returned pair), warm from the last inner
        // solve, whose DualPn may have stopped on its dual iterate's certificate: usually
        // one more Newton step at most.
        let strict = Auto {
            certify_against_iterate: false,
            ..final_obj.solver.clone()
        };
        let fit = match refit_cov {
            Some(full) => strict.solve(
                &GlassoProblem::new(full.view(), Penalty::Matrix(lam.clone())),
                None,
            )?,
            None => {
                let last = final_obj.folds[0]
                    .fit()
                    .ok_or(BilevelError::NothingToTune)?;
                strict.solve(
                    &GlassoProblem::new(
                        final_obj.folds[0].s_train.view(),
                        Penalty::Matrix(lam.clone()),
                    ),
                    Some(last),
                )?
            }
        };
        Ok(Tuned {
            precision: fit.precision.clone(),
            covariance: fit.covariance.clone(),
            penalty: lam,
            lambda,
            lambda_max: lmax,
            scalar_criterion,
            criterion,
            scalar,
            matrix,
            trace,
            seconds: start.elapsed().as_secs_f64(),
            fit,
        })
    }
}

/// Whether a termination is a normal end of tuning (converged, or a budget reached).
pub fn is_normal_end(t: Termination) -> bool {
    !matches!(
        t,
        Termination::LineSearchFailed | Termination::NonFiniteValue
    )
}
