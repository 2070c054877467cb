//! `glasso-ho tune` and `glasso-ho demo`: tuning runs written to a folder with their trace,
//! report and plots.

use crate::cli::{DemoArgs, TuneArgs};
use crate::commands::MIN_SAMPLES;
use crate::hypergrad::{check_same_dim, load_cov};
use crate::outdir::{check_target, Publish, Staging};
use crate::plot::{self, Heatmap, Mark, Panel, Series};
use crate::progress::Progress;
use crate::CliError;
use ho_bilevel::{
    holdout, inner_options, is_normal_end, CriterionKind, GlassoTuner, OptimizerKind, Tuned,
    TunerOptions, TunerTraceRow, Validation,
};
use ho_glasso::GlassoError;
use ho_glasso::{Auto, GlassoProblem, GlassoSolver, Penalty};
use ho_linalg::io::{format_f64, read_data, write_atomic, write_matrix};
use ho_linalg::testing::paper_data;
use ho_linalg::LinalgError;
use ndarray::{Array2, ArrayView2};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// One row of `trace.csv`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TraceLine {
    /// `"scalar"` or `"matrix"`.
    pub stage: &'static str,
    /// Outer iteration within the stage (0 = the start point).
    pub iteration: usize,
    /// Seconds since the start of the run.
    pub seconds: f64,
    /// The criterion at the iterate.
    pub value: f64,
    /// λ (scalar stage) or ‖Λ‖_F (matrix stage).
    pub lambda_or_norm: f64,
    /// Projected gradient norm in log space (NaN for grid/random search).
    pub grad_norm: f64,
}

impl TraceLine {
    /// From a tuner row, timed at `seconds`.
    pub fn from_row(row: &TunerTraceRow, seconds: f64) -> Self {
        Self {
            stage: row.stage,
            iteration: row.row.iteration,
            seconds,
            value: row.row.value,
            lambda_or_norm: row.penalty_size,
            grad_norm: row.row.grad_norm,
        }
    }
}

/// Writes `trace.csv`: `stage,iteration,seconds,value,lambda_or_norm,grad_norm`.
///
/// # Errors
/// [`CliError::Linalg`] (an I/O error).
pub fn write_trace(path: &Path, lines: &[TraceLine]) -> Result<(), CliError> {
    let mut s = String::from("stage,iteration,seconds,value,lambda_or_norm,grad_norm\n");
    for l in lines {
        s.push_str(&format!(
            "{},{},{},{},{},{}\n",
            l.stage,
            l.iteration,
            format_f64(l.seconds),
            format_f64(l.value),
            format_f64(l.lambda_or_norm),
            if l.grad_norm.is_finite() {
                format_f64(l.grad_norm)
            } else {
                String::new()
            }
        ));
    }
    write_atomic(path, s.as_bytes())?;
    Ok(())
}

/// Relative oracle error ‖Θ̂ − Θ_true‖_F / ‖Θ_true‖_F.
pub fn oracle_error(theta: ArrayView2<'_, f64>, truth: ArrayView2<'_, f64>) -> f64 {
    let d: f64 = theta
        .iter()
        .zip(truth.iter())
        .map(|(a, b)| (a - b) * (a - b))
        .sum();
    let n: f64 = truth.iter().map(|v| v * v).sum();
    (d / n).sqrt()
}

/// F1 score of the recovered edges (pairs k < l with Θ̂_kl ≠ 0) against those of Θ_true.
pub fn edge_f1(theta: ArrayView2<'_, f64>, truth: ArrayView2<'_, f64>) -> f64 {
    let p = theta.nrows();
    let (mut tp, mut fp, mut fneg) = (0usize, 0usize, 0usize);
    for i in 0..p {
        for j in 0..i {
            let est = theta[[i, j]] != 0.0;
            let real = truth[[i, j]] != 0.0;
            match (est, real) {
                (true, true) => tp += 1,
                (true, false) => fp += 1,
                (false, true) => fneg += 1,
                (false, false) => {}
            }
        }
    }
    if tp == 0 {
        return 0.0;
    }
    2.0 * tp as f64 / (2 * tp + fp + fneg) as f64
}

fn frobenius(a: ArrayView2<'_, f64>) -> f64 {
    a.iter().map(|v| v * v).sum::<f64>().sqrt()
}

/// The criterion-along-iterations plot of a trace (both stages, iterations counted across).
///
/// # Errors
/// [`CliError::Plot`], [`CliError::NoFont`].
pub fn criterion_plot(path: &Path, title: &str, lines: &[TraceLine]) -> Result<(), CliError> {
    let mut series = Vec::new();
    let mut offset = 0usize;
    for (k, stage) in ["scalar", "matrix"].into_iter().enumerate() {
        let pts: Vec<(f64, f64)> = lines
            .iter()
            .filter(|l| l.stage == stage)
            .map(|l| ((offset + l.iteration) as f64, l.value))
            .collect();
        if pts.is_empty() {
            continue;
        }
        offset += lines
            .iter()
            .filter(|l| l.stage == stage)
            .map(|l| l.iteration)
            .max()
            .unwrap_or(0);
        let name = if stage == "scalar" {
            "scalar λ"
        } else {
            "matrix Λ"
        };
        series.push(Series::new(name, pts, Mark::LinePoints, k));
    }
    let panel = Panel {
        title: title.to_string(),
        x_label: "outer iteration (scalar stage, then matrix stage)".to_string(),
        y_label: "validation criterion".to_string(),
        log_x: false,
        log_y: false,
        series,
    };
    plot::line_chart(path, (900, 560), (1, 1), &[panel])
}

/// `penalty.png`: the heatmap of Λ on a log colour scale.
///
/// # Errors
/// [`CliError::Plot`], [`CliError::NoFont`].
pub fn penalty_plot(path: &Path, title: &str, lam: ArrayView2<'_, f64>) -> Result<(), CliError> {
    plot::heatmaps(
        path,
        (720, 620),
        &[Heatmap {
            title: title.to_string(),
            matrix: lam,
            scale: plot::penalty_scale([lam]),
            bar_label: "Λ_kl (log scale; grey = 0)".to_string(),
        }],
    )
}

/// `precision.png`: heatmaps of precision matrices, each on its own diverging scale.
///
/// # Errors
/// [`CliError::Plot`], [`CliError::NoFont`].
pub fn precision_plot(path: &Path, mats: &[(&str, ArrayView2<'_, f64>)]) -> Result<(), CliError> {
    let maps: Vec<Heatmap<'_>> = mats
        .iter()
        .map(|(title, m)| Heatmap {
            title: title.to_string(),
            matrix: *m,
            scale: plot::precision_scale(*m),
            bar_label: "Θ_kl (diagonal saturated)".to_string(),
        })
        .collect();
    plot::heatmaps(path, (720, 620), &maps)
}

/// What `glasso-ho tune` prints and writes to `report.json`.
#[derive(Debug, Clone, Serialize)]
pub struct TuneReport {
    /// The chosen scalar λ (scalar stage).
    pub lambda: f64,
    /// The validation criterion at the final penalty (the matrix one with `--weighted`).
    pub criterion: f64,
    /// Outer iterations, both stages.
    pub n_outer: usize,
    /// Inner GLASSO solves, both stages (all folds).
    pub n_inner_solves: usize,
    /// Wall-clock seconds of the tuning (reading and writing files excluded).
    pub seconds: f64,
    /// The outer optimizer.
    pub optimizer: &'static str,
    /// Whether the full matrix Λ was tuned.
    pub weighted: bool,
    /// λ_max of the (first) training covariance.
    pub lambda_max: f64,
    /// λ / λ_max.
    pub lambda_ratio: f64,
    /// The validation criterion at λ.
    pub scalar_criterion: f64,
    /// Seconds in inner solves (summed over folds and stages).
    pub inner_seconds: f64,
    /// Seconds in hypergradients (summed over folds and stages).
    pub hypergrad_seconds: f64,
    /// Hypergradients computed.
    pub n_hypergrads: usize,
    /// Why the scalar stage stopped.
    pub termination: &'static str,
    /// Why the matrix stage stopped (`null` without `--weighted`).
    pub matrix_termination: Option<&'static str>,
    /// Nonzero pairs k < l of the final Θ̂.
    pub n_edges: usize,
    /// ‖Λ‖_F of the final penalty.
    pub penalty_norm: f64,
    /// Largest relative duality gap of an inner solve.
    pub max_relative_gap: f64,
    /// Smallest off-support margin seen by a hypergradient (`null` if Θ̂ was always full).
    pub min_margin: Option<f64>,
    /// `heldout` or `reconstruction`.
    pub criterion_name: &'static str,
    /// `holdout F`, `K-fold` or `given` (S_train/S_val files).
    pub validation: String,
    /// Dimension.
    pub p: usize,
    /// The output folder.
    pub out_dir: PathBuf,
}

fn criterion_kind(name: &str) -> (CriterionKind, &'static str) {
    match name {
        "reconstruction" => (CriterionKind::Reconstruction, "reconstruction"),
        _ => (CriterionKind::HeldOut, "heldout"),
    }
}

fn report_of(
    t: &Tuned,
    o: &TunerOptions,
    criterion_name: &'static str,
    validation: String,
    out_dir: &Path,
) -> TuneReport {
    let m = t.matrix.as_ref();
    let stat = |f: fn(&ho_bilevel::BilevelStats) -> f64| {
        f(&t.scalar.stats) + m.map_or(0.0, |s| f(&s.stats))
    };
    let margins = [
        t.scalar.stats.min_margin,
        m.and_then(|s| s.stats.min_margin),
    ];
    TuneReport {
        lambda: t.lambda,
        criterion: t.criterion,
        n_outer: t.n_outer(),
        n_inner_solves: t.n_inner_solves(),
        seconds: t.seconds,
        optimizer: o.optimizer.name(),
        weighted: o.weighted,
        lambda_max: t.lambda_max,
        lambda_ratio: t.lambda / t.lambda_max,
        scalar_criterion: t.scalar_criterion,
        inner_seconds: stat(|s| s.inner_seconds),
        hypergrad_seconds: stat(|s| s.hypergrad_seconds),
        n_hypergrads: t.scalar.stats.n_hypergrads + m.map_or(0, |s| s.stats.n_hypergrads),
        termination: t.scalar.minimum.termination.as_str(),
        matrix_termination: m.map(|s| s.minimum.termination.as_str()),
        n_edges: t.fit.n_edges(),
        penalty_norm: frobenius(t.penalty.view()),
        max_relative_gap: t
            .scalar
            .stats
            .max_relative_gap
            .max(m.map_or(0.0, |s| s.stats.max_relative_gap)),
        min_margin: margins.into_iter().flatten().reduce(f64::min),
        criterion_name,
        validation,
        p: t.penalty.nrows(),
        out_dir: out_dir.to_path_buf(),
    }
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<(), CliError> {
    let mut text = serde_json::to_string_pretty(value).map_err(|e| CliError::Stdout {
        source: std::io::Error::other(e),
    })?;
    text.push('\n');
    write_atomic(path, text.as_bytes())?;
    Ok(())
}

fn warn_abnormal(progress: &mut Progress<'_>, t: &Tuned) {
    for (stage, s) in [("scalar", Some(&t.scalar)), ("matrix", t.matrix.as_ref())] {
        if let Some(s) = s {
            if !is_normal_end(s.minimum.termination) {
                progress.line(&format!(
                    "warning: the {stage} stage ended with {}: the best point found is reported",
                    s.minimum.termination
                ));
            }
        }
    }
}

/// Runs the tuner with progress reporting, recording the trace with times since `start`.
fn run_tuner(
    tuner: &GlassoTuner,
    input: TuneInput<'_>,
    progress: &mut Progress<'_>,
) -> Result<(Tuned, Vec<TraceLine>), CliError> {
    let start = Instant::now();
    let mut lines = Vec::new();
    let mut on_row = |row: &TunerTraceRow| {
        lines.push(TraceLine::from_row(row, start.elapsed().as_secs_f64()));
        progress.row(row);
    };
    let t = match input {
        TuneInput::Data(x) => tuner.fit_with_progress(x, &mut on_row)?,
        TuneInput::Cov(a, b) => tuner.fit_cov_with_progress(a, b, &mut on_row)?,
    };
    Ok((t, lines))
}

enum TuneInput<'a> {
    Data(ArrayView2<'a, f64>),
    Cov(ArrayView2<'a, f64>, ArrayView2<'a, f64>),
}

/// `glasso-ho tune`: tunes λ (and Λ with `--weighted`), writes `precision.csv`,
/// `penalty.csv`, `trace.csv`, `report.json`, `criterion.png`, `penalty.png` and
/// `precision.png` into `--out-dir` as a whole (nothing on failure).
///
/// # Errors
/// Bad input or an unusable output folder (exit code 2); a failed inner solve,
/// hypergradient or file operation (exit code 1).
pub fn tune(args: &TuneArgs, quiet: bool, log: &mut dyn Write) -> Result<TuneReport, CliError> {
    let optimizer = OptimizerKind::from_name(&args.optimizer).ok_or(CliError::Usage {
        reason: "unknown --optimizer",
    })?;
    let publish = Publish::Replace {
        marker: "report.json",
    };
    check_target(&args.out_dir, publish, false)?;
    plot::ensure_font()?;
    let (kind, criterion_name) = criterion_kind(&args.criterion);
    let validation = match (args.val_fraction, args.folds) {
        (Some(_), Some(_)) => {
            return Err(CliError::Usage {
                reason: "give at most one of --val-fraction and --folds",
            })
        }
        (_, Some(k)) => Validation::KFold { k },
        (f, None) => Validation::Holdout {
            fraction: f.unwrap_or(0.5),
        },
    };
    let options = TunerOptions {
        criterion: kind,
        validation,
        weighted: args.weighted,
        penalize_diagonal: args.penalize_diagonal,
        optimizer,
        max_iter: args.max_iter,
        matrix_max_iter: args.matrix_max_iter,
        seed: args.seed,
        assume_centered: args.assume_centered,
        ..TunerOptions::default()
    };
    let tuner = GlassoTuner { options };
    // Inputs are read and checked before the output folder is made.
    let (x, covs, validation_name) = match (&args.data, &args.train, &args.val) {
        (Some(path), None, None) => {
            let x = read_data(path)?;
            if x.nrows() < MIN_SAMPLES {
                return Err(CliError::InvalidFile {
                    path: path.clone(),
                    source: GlassoError::Linalg(LinalgError::TooFewSamples {
                        n_samples: x.nrows(),
                        min: MIN_SAMPLES,
                    }),
                });
            }
            let name = match validation {
                Validation::Holdout { fraction } => format!("holdout {fraction}"),
                Validation::KFold { k } => format!("{k}-fold"),
            };
            (Some(x), None, name)
        }
        (None, Some(train), Some(val)) => {
            let s_train = load_cov(train)?;
            let s_val = load_cov(val)?;
            check_same_dim(&s_train, &s_val)?;
            (None, Some((s_train, s_val)), "given".to_string())
        }
        _ => {
            return Err(CliError::Usage {
                reason: "give --data, or both --train and --val",
            })
        }
    };
    let mut progress = Progress::new(log, quiet, "glasso-ho: tune");
    let input = match (&x, &covs) {
        (Some(x), _) => TuneInput::Data(x.view()),
        (None, Some((a, b))) => TuneInput::Cov(a.view(), b.view()),
        _ => unreachable!("one input"),
    };
    let p = match &input {
        TuneInput::Data(x) => x.ncols(),
        TuneInput::Cov(a, _) => a.nrows(),
    };
    progress.line(&format!(
        "p = {p}, optimizer {}, criterion {criterion_name}, validation {validation_name}{}",
        optimizer.name(),
        if args.weighted { ", weighted" } else { "" }
    ));
    let staging = Staging::new(&args.out_dir, publish, false)?;
    let (t, lines) = run_tuner(&tuner, input, &mut progress)?;
    progress.finish();
    warn_abnormal(&mut progress, &t);
    let report = report_of(&t, &options, criterion_name, validation_name, &args.out_dir);
    write_matrix(staging.path("precision.csv"), t.precision.view())?;
    write_matrix(staging.path("penalty.csv"), t.penalty.view())?;
    write_trace(&staging.path("trace.csv"), &lines)?;
    criterion_plot(
        &staging.path("criterion.png"),
        &format!("Validation criterion ({criterion_name}) along the outer iterations"),
        &lines,
    )?;
    penalty_plot(
        &staging.path("penalty.png"),
        if args.weighted {
            "Tuned penalty matrix Λ"
        } else {
            "Tuned penalty Λ = λ P"
        },
        t.penalty.view(),
    )?;
    precision_plot(
        &staging.path("precision.png"),
        &[("Estimated precision Θ", t.precision.view())],
    )?;
    write_json(&staging.path("report.json"), &report)?;
    staging.commit()?;
    progress.line(&format!(
        "λ = {:.4e} ({:.3e}·λ_max), criterion {:.6}, {} outer iterations, {} inner solves, \
         {:.2} s; results in {}",
        report.lambda,
        report.lambda_ratio,
        report.criterion,
        report.n_outer,
        report.n_inner_solves,
        report.seconds,
        args.out_dir.display()
    ));
    Ok(report)
}

/// Metrics of one estimate in the demo.
#[derive(Debug, Clone, Serialize)]
pub struct DemoStage {
    /// Validation criterion (held-out negative log-likelihood).
    pub criterion: f64,
    /// ‖Θ̂ − Θ_true‖_F / ‖Θ_true‖_F.
    pub oracle_error: f64,
    /// F1 of the recovered edges against Θ_true.
    pub f1: f64,
    /// Nonzero pairs k < l of Θ̂.
    pub n_edges: usize,
    /// Outer iterations of the stage.
    pub n_outer: usize,
    /// Inner solves of the stage.
    pub n_inner_solves: usize,
    /// Seconds in inner solves and hypergradients during the stage.
    pub seconds: f64,
}

/// What `glasso-ho demo` prints and writes to `summary.json`.
#[derive(Debug, Clone, Serialize)]
pub struct DemoReport {
    /// Dimension.
    pub p: usize,
    /// Samples (half train, half validate).
    pub n: usize,
    /// Seed of the data.
    pub seed: u64,
    /// The tuned λ.
    pub lambda: f64,
    /// λ_max of S_train.
    pub lambda_max: f64,
    /// λ / λ_max.
    pub lambda_ratio: f64,
    /// The scalar stage.
    pub scalar: DemoStage,
    /// The matrix stage.
    pub matrix: DemoStage,
    /// Edges of Θ_true.
    pub true_edges: usize,
    /// Total inner solves.
    pub n_inner_solves: usize,
    /// Wall-clock seconds of the tuning.
    pub seconds: f64,
    /// The output folder.
    pub out_dir: PathBuf,
}

/// `glasso-ho demo`: the paper's synthetic setup (p = 100, n = 2000, seed 0, 50/50 split),
/// scalar then matrix tuning by L-BFGS; a table on stderr, the summary on stdout, files and
/// plots in `--out-dir`.
///
/// # Errors
/// As [`tune`].
pub fn demo(args: &DemoArgs, quiet: bool, log: &mut dyn Write) -> Result<DemoReport, CliError> {
    if args.p < 2 || args.n < 8 {
        return Err(CliError::Usage {
            reason: "the demo needs p ≥ 2 and n ≥ 8",
        });
    }
    let publish = Publish::Replace {
        marker: "theta_true.csv",
    };
    check_target(&args.out_dir, publish, true)?;
    plot::ensure_font()?;
    let mut progress = Progress::new(log, quiet, "glasso-ho: demo");
    progress.line(&format!(
        "paper_data(p = {}, n = {}, density 0.9, seed {}), 50/50 split, L-BFGS: scalar λ then matrix Λ",
        args.p, args.n, args.seed
    ));
    let data = paper_data(args.p, args.n, 0.9, args.seed);
    let split = holdout(data.x.view(), 0.5, false)?;
    let staging = Staging::new(&args.out_dir, publish, true)?;
    let tuner = GlassoTuner {
        options: TunerOptions {
            weighted: true,
            ..TunerOptions::default()
        },
    };
    let (t, lines) = run_tuner(
        &tuner,
        TuneInput::Cov(split.s_train.view(), split.s_val.view()),
        &mut progress,
    )?;
    progress.finish();
    warn_abnormal(&mut progress, &t);
    // Θ̂ at the scalar optimum (the tuner keeps the final, matrix-penalty fit).
    let scale = split.s_train.diag().iter().fold(0.0_f64, |m, v| m.max(*v));
    let solver = Auto {
        options: inner_options(scale),
        ..Default::default()
    };
    let scalar_fit = solver.solve(
        &GlassoProblem::new(split.s_train.view(), Penalty::scalar(t.lambda)),
        None,
    )?;
    let truth = data.precision.view();
    let stage = |theta: &Array2<f64>, criterion: f64, s: &ho_bilevel::StageReport| DemoStage {
        criterion,
        oracle_error: oracle_error(theta.view(), truth),
        f1: edge_f1(theta.view(), truth),
        n_edges: crate::commands::count_edges(theta.view()),
        n_outer: s.minimum.n_iter,
        n_inner_solves: s.stats.n_inner_solves,
        seconds: s.stats.inner_seconds + s.stats.hypergrad_seconds,
    };
    let scalar = stage(&scalar_fit.precision, t.scalar_criterion, &t.scalar);
    let matrix_report = t.matrix.as_ref().ok_or(CliError::Usage {
        reason: "the matrix stage did not run",
    })?;
    let matrix = stage(&t.precision, t.criterion, matrix_report);
    let report = DemoReport {
        p: args.p,
        n: args.n,
        seed: args.seed,
        lambda: t.lambda,
        lambda_max: t.lambda_max,
        lambda_ratio: t.lambda / t.lambda_max,
        true_edges: crate::commands::count_edges(truth),
        scalar,
        matrix,
        n_inner_solves: t.n_inner_solves(),
        seconds: t.seconds,
        out_dir: args.out_dir.clone(),
    };
    write_matrix(staging.path("theta_true.csv"), truth)?;
    write_matrix(
        staging.path("precision_scalar.csv"),
        scalar_fit.precision.view(),
    )?;
    write_matrix(staging.path("precision_matrix.csv"), t.precision.view())?;
    write_matrix(staging.path("penalty.csv"), t.penalty.view())?;
    write_trace(&staging.path("trace.csv"), &lines)?;
    criterion_plot(
        &staging.path("criterion.png"),
        "Held-out negative log-likelihood along the outer iterations (L-BFGS)",
        &lines,
    )?;
    penalty_plot(
        &staging.path("penalty.png"),
        "Tuned penalty matrix Λ",
        t.penalty.view(),
    )?;
    precision_plot(
        &staging.path("precision.png"),
        &[
            ("True precision Θ_true", truth),
            ("Estimate at the scalar λ*", scalar_fit.precision.view()),
            ("Estimate at the tuned matrix Λ*", t.precision.view()),
        ],
    )?;
    write_json(&staging.path("summary.json"), &report)?;
    staging.commit()?;
    {
        let r = &report;
        progress.raw(&format!(
            "\n  p = {}, n = {} (half train, half validate), Θ_true has {} edges\n  \
             λ* = {:.4e} = {:.3e}·λ_max\n\n  {:<28}{:>14}{:>14}\n  {:<28}{:>14.6}{:>14.6}\n  \
             {:<28}{:>14.4}{:>14.4}\n  {:<28}{:>14.3}{:>14.3}\n  {:<28}{:>14}{:>14}\n  \
             {:<28}{:>14}{:>14}\n  {:<28}{:>14}{:>14}\n  {:<28}{:>14.3}{:>14.3}\n\n  \
             total {:.2} s; files and plots in {}\n",
            r.p,
            r.n,
            r.true_edges,
            r.lambda,
            r.lambda_ratio,
            "",
            "scalar λ",
            "matrix Λ",
            "held-out criterion",
            r.scalar.criterion,
            r.matrix.criterion,
            "oracle relative error",
            r.scalar.oracle_error,
            r.matrix.oracle_error,
            "F1 of edges vs Θ_true",
            r.scalar.f1,
            r.matrix.f1,
            "edges of the estimate",
            r.scalar.n_edges,
            r.matrix.n_edges,
            "outer iterations",
            r.scalar.n_outer,
            r.matrix.n_outer,
            "inner solves",
            r.scalar.n_inner_solves,
            r.matrix.n_inner_solves,
            "seconds (solves + hypergrads)",
            r.scalar.seconds,
            r.matrix.seconds,
            r.seconds,
            args.out_dir.display()
        ));
    }
    Ok(report)
}
