//! `glasso-ho experiment`: the paper's figures and the comparison with grid and random
//! search, on its synthetic setup (`paper_data(p, n = 20 p, density 0.9, seed)`, the first
//! half of the rows train, the second half validate).

use crate::cli::ExperimentArgs;
use crate::outdir::{check_target, Publish, Staging};
use crate::plot::{self, Heatmap, Mark, Panel, Series};
use crate::progress::Progress;
use crate::tuning::{edge_f1, oracle_error, TraceLine};
use crate::CliError;
use ho_bilevel::{
    holdout, inner_options, FoldCov, GlassoTuner, OptimizerKind, Tuned, TunerOptions, TunerTraceRow,
};
use ho_glasso::{lambda_max, lambda_path, solve_path, Auto, GlassoFit, GlassoOptions};
use ho_implicit::{Criterion, HeldOutNll};
use ho_linalg::io::{format_f64, write_atomic};
use ho_linalg::testing::{paper_data, PaperData};
use serde_json::{json, Value};
use std::io::Write;
use std::path::Path;
use std::time::Instant;

/// The paper's fixed step of hypergradient descent in log λ.
pub const PAPER_STEP: f64 = 0.1;

struct Setup {
    data: PaperData,
    split: FoldCov,
    lambda_max: f64,
    n: usize,
}

fn setup(p: usize, seed: u64) -> Result<Setup, CliError> {
    let n = 20 * p;
    let data = paper_data(p, n, 0.9, seed);
    let split = holdout(data.x.view(), 0.5, false)?;
    let lambda_max = lambda_max(split.s_train.view());
    Ok(Setup {
        data,
        split,
        lambda_max,
        n,
    })
}

fn tune(s: &Setup, options: TunerOptions) -> Result<(Tuned, Vec<TraceLine>), CliError> {
    let start = Instant::now();
    let mut lines = Vec::new();
    let tuner = GlassoTuner { options };
    let t = tuner.fit_cov_with_progress(
        s.split.s_train.view(),
        s.split.s_val.view(),
        |row: &TunerTraceRow| lines.push(TraceLine::from_row(row, start.elapsed().as_secs_f64())),
    )?;
    Ok((t, lines))
}

fn csv(rows: &[Vec<String>], header: &str) -> String {
    let mut s = String::from(header);
    s.push('\n');
    for r in rows {
        s.push_str(&r.join(","));
        s.push('\n');
    }
    s
}

fn f(v: f64) -> String {
    format_f64(v)
}

fn write_text(path: &Path, text: &str) -> Result<(), CliError> {
    write_atomic(path, text.as_bytes())?;
    Ok(())
}

/// Held-out criterion and oracle error along a warm-started path.
struct PathPoint {
    lambda: f64,
    criterion: f64,
    fit: GlassoFit,
}

fn path_points(
    s: &Setup,
    lambdas: &[f64],
    options: GlassoOptions,
) -> Result<Vec<PathPoint>, CliError> {
    let solver = Auto {
        options,
        ..Default::default()
    };
    let crit = HeldOutNll::new(s.split.s_val.clone());
    let fits = solve_path(&solver, s.split.s_train.view(), lambdas, false)?;
    fits.into_iter()
        .zip(lambdas)
        .map(|(fit, &lambda)| {
            let criterion = crit.value(fit.precision.view(), fit.covariance.view())?;
            Ok(PathPoint {
                lambda,
                criterion,
                fit,
            })
        })
        .collect()
}

fn tight(s: &Setup) -> GlassoOptions {
    let scale = s
        .split
        .s_train
        .diag()
        .iter()
        .fold(0.0_f64, |m, v| m.max(*v));
    inner_options(scale)
}

fn stage_points(lines: &[TraceLine], stage: &str, offset: usize) -> Vec<(f64, f64)> {
    lines
        .iter()
        .filter(|l| l.stage == stage)
        .map(|l| ((offset + l.iteration) as f64, l.value))
        .collect()
}

fn trace_rows(name: &str, lines: &[TraceLine]) -> Vec<Vec<String>> {
    lines
        .iter()
        .map(|l| {
            vec![
                name.to_string(),
                l.stage.to_string(),
                l.iteration.to_string(),
                f(l.seconds),
                f(l.value),
                f(l.lambda_or_norm),
                if l.grad_norm.is_finite() {
                    f(l.grad_norm)
                } else {
                    String::new()
                },
            ]
        })
        .collect()
}

const TRACE_HEADER: &str = "optimizer,stage,iteration,seconds,value,lambda_or_norm,grad_norm";

/// Figure 1: the held-out criterion and the oracle error along λ, with the iterates of
/// hypergradient descent (the paper's fixed step) and L-BFGS.
fn fig1(
    s: &Setup,
    quick: bool,
    dir: &Path,
    progress: &mut Progress<'_>,
) -> Result<Value, CliError> {
    let n_grid = if quick { 20 } else { 60 };
    let lambdas: Vec<f64> = (0..n_grid)
        .map(|k| s.lambda_max * 10f64.powf(-3.0 * k as f64 / (n_grid - 1) as f64))
        .collect();
    progress.line(&format!(
        "fig1: {n_grid}-point path from λ_max down to 1e-3·λ_max"
    ));
    let pts = path_points(s, &lambdas, tight(s))?;
    let truth = s.data.precision.view();
    let max_iter = if quick { 10 } else { 50 };
    let mut runs = Vec::new();
    for (name, kind) in [("gd", OptimizerKind::Gd), ("lbfgs", OptimizerKind::Lbfgs)] {
        progress.line(&format!("fig1: hypergradient descent ({name})"));
        let (t, lines) = tune(
            s,
            TunerOptions {
                optimizer: kind,
                max_iter,
                gd_step: PAPER_STEP,
                ..TunerOptions::default()
            },
        )?;
        runs.push((name, t, lines));
    }
    let rows: Vec<Vec<String>> = pts
        .iter()
        .map(|q| {
            vec![
                f(q.lambda),
                f(q.lambda / s.lambda_max),
                f(q.criterion),
                f(oracle_error(q.fit.precision.view(), truth)),
                q.fit.n_edges().to_string(),
            ]
        })
        .collect();
    write_text(
        &dir.join("fig1.csv"),
        &csv(&rows, "lambda,lambda_ratio,heldout,oracle_error,n_edges"),
    )?;
    let mut it_rows = Vec::new();
    for (name, _, lines) in &runs {
        it_rows.extend(trace_rows(name, lines));
    }
    write_text(&dir.join("fig1_iterates.csv"), &csv(&it_rows, TRACE_HEADER))?;

    let crit_line: Vec<(f64, f64)> = pts.iter().map(|q| (q.lambda, q.criterion)).collect();
    let oracle_line: Vec<(f64, f64)> = pts
        .iter()
        .map(|q| (q.lambda, oracle_error(q.fit.precision.view(), truth)))
        .collect();
    let mut top = vec![Series::new(
        "held-out NLL on the grid",
        crit_line,
        Mark::Line,
        6,
    )];
    let labels = ["GD, fixed step 0.1 (paper)", "L-BFGS"];
    for (k, (_, _, lines)) in runs.iter().enumerate() {
        let it: Vec<(f64, f64)> = lines.iter().map(|l| (l.lambda_or_norm, l.value)).collect();
        top.push(Series::new(
            format!("{} iterates", labels[k]),
            it,
            if k == 0 {
                Mark::Points
            } else {
                Mark::LinePoints
            },
            k,
        ));
    }
    let mut bottom = vec![Series::new(
        "‖Θ(λ) − Θ_true‖_F / ‖Θ_true‖_F (Θ(λ): estimate)",
        oracle_line.clone(),
        Mark::Line,
        2,
    )];
    for (k, (_, t, _)) in runs.iter().enumerate() {
        let e = oracle_error(t.precision.view(), truth);
        bottom.push(Series::new(
            format!("λ* of {}", labels[k]),
            vec![(t.lambda, e)],
            Mark::Points,
            k,
        ));
    }
    plot::line_chart(
        &dir.join("fig1.png"),
        (1000, 1000),
        (2, 1),
        &[
            Panel {
                title: format!(
                    "Held-out criterion vs λ (p = {}, n = {}), hypergradient iterates",
                    s.data.precision.nrows(),
                    s.n
                ),
                x_label: "λ (log scale)".to_string(),
                y_label: "held-out negative log-likelihood".to_string(),
                log_x: true,
                log_y: false,
                series: top,
            },
            Panel {
                title: "Oracle relative error vs λ".to_string(),
                x_label: "λ (log scale)".to_string(),
                y_label: "relative error (log scale)".to_string(),
                log_x: true,
                log_y: true,
                series: bottom,
            },
        ],
    )?;
    let best = pts
        .iter()
        .min_by(|a, b| a.criterion.total_cmp(&b.criterion))
        .map(|q| q.lambda);
    Ok(json!({
        "lambda_max": s.lambda_max,
        "grid_best_lambda": best,
        "gd": {"lambda": runs[0].1.lambda, "criterion": runs[0].1.scalar_criterion,
               "n_outer": runs[0].1.n_outer(), "termination": runs[0].1.scalar.minimum.termination.as_str()},
        "lbfgs": {"lambda": runs[1].1.lambda, "criterion": runs[1].1.scalar_criterion,
                  "n_outer": runs[1].1.n_outer(), "termination": runs[1].1.scalar.minimum.termination.as_str()},
        "files": ["fig1.png", "fig1.csv", "fig1_iterates.csv"],
    }))
}

/// Figure 2: the outer objective along the iterations, scalar stage then matrix stage, for
/// GD with the paper's step and for L-BFGS.
fn fig2(
    s: &Setup,
    quick: bool,
    dir: &Path,
    progress: &mut Progress<'_>,
) -> Result<Value, CliError> {
    let (max_iter, matrix_iter) = if quick { (8, 8) } else { (50, 50) };
    let mut panels = Vec::new();
    let mut rows = Vec::new();
    let mut summary = serde_json::Map::new();
    for (name, label, kind) in [
        (
            "gd",
            "Gradient descent, fixed step 0.1 (paper)",
            OptimizerKind::Gd,
        ),
        ("lbfgs", "L-BFGS", OptimizerKind::Lbfgs),
    ] {
        progress.line(&format!("fig2: {name}, scalar then matrix"));
        let (t, lines) = tune(
            s,
            TunerOptions {
                optimizer: kind,
                weighted: true,
                max_iter,
                matrix_max_iter: matrix_iter,
                gd_step: PAPER_STEP,
                ..TunerOptions::default()
            },
        )?;
        rows.extend(trace_rows(name, &lines));
        let scalar = stage_points(&lines, "scalar", 0);
        let offset = scalar.last().map_or(0, |p| p.0 as usize);
        let matrix = stage_points(&lines, "matrix", offset);
        panels.push(Panel {
            title: label.to_string(),
            x_label: "outer iteration".to_string(),
            y_label: "held-out negative log-likelihood".to_string(),
            log_x: false,
            log_y: false,
            series: vec![
                Series::new("scalar λ", scalar, Mark::LinePoints, 0),
                Series::new("matrix Λ (from λ*)", matrix, Mark::LinePoints, 1),
            ],
        });
        summary.insert(
            name.to_string(),
            json!({"scalar_criterion": t.scalar_criterion, "matrix_criterion": t.criterion,
                   "n_outer": t.n_outer(), "n_inner_solves": t.n_inner_solves(), "seconds": t.seconds}),
        );
    }
    write_text(&dir.join("fig2.csv"), &csv(&rows, TRACE_HEADER))?;
    plot::line_chart(&dir.join("fig2.png"), (1400, 560), (1, 2), &panels)?;
    summary.insert("files".to_string(), json!(["fig2.png", "fig2.csv"]));
    Ok(Value::Object(summary))
}

/// Figure 3: heatmaps of the tuned Λ, of Θ_true and of Θ̂(Λ).
fn fig3(
    s: &Setup,
    quick: bool,
    dir: &Path,
    progress: &mut Progress<'_>,
) -> Result<Value, CliError> {
    progress.line("fig3: L-BFGS, scalar then matrix");
    let (t, _) = tune(
        s,
        TunerOptions {
            weighted: true,
            max_iter: if quick { 10 } else { 50 },
            matrix_max_iter: if quick { 10 } else { 30 },
            ..TunerOptions::default()
        },
    )?;
    let truth = s.data.precision.view();
    ho_linalg::io::write_matrix(dir.join("fig3_penalty.csv"), t.penalty.view())?;
    ho_linalg::io::write_matrix(dir.join("fig3_precision.csv"), t.precision.view())?;
    let tscale = plot::precision_scale(truth);
    plot::heatmaps(
        &dir.join("fig3.png"),
        (640, 580),
        &[
            Heatmap {
                title: "Tuned penalty Λ_opt".to_string(),
                matrix: t.penalty.view(),
                scale: plot::penalty_scale([t.penalty.view()]),
                bar_label: "Λ_kl (log; grey = 0)".to_string(),
            },
            Heatmap {
                title: "True precision Θ_true".to_string(),
                matrix: truth,
                scale: tscale,
                bar_label: "Θ_kl (diagonal saturated)".to_string(),
            },
            Heatmap {
                title: "Estimate Θ(Λ_opt)".to_string(),
                matrix: t.precision.view(),
                scale: tscale,
                bar_label: "Θ_kl (same scale)".to_string(),
            },
        ],
    )?;
    Ok(json!({
        "lambda": t.lambda, "criterion": t.criterion,
        "oracle_error": oracle_error(t.precision.view(), truth),
        "f1": edge_f1(t.precision.view(), truth),
        "files": ["fig3.png", "fig3_penalty.csv", "fig3_precision.csv"],
    }))
}

/// One row of the comparison.
struct Row {
    method: String,
    criterion: f64,
    lambda: f64,
    n_solves: usize,
    seconds: f64,
    oracle: f64,
    f1: f64,
    n_edges: usize,
}

fn grid_row(
    s: &Setup,
    name: &str,
    lambdas: &[f64],
    options: GlassoOptions,
) -> Result<Row, CliError> {
    let start = Instant::now();
    let pts = path_points(s, lambdas, options)?;
    let seconds = start.elapsed().as_secs_f64();
    let best = pts
        .iter()
        .min_by(|a, b| a.criterion.total_cmp(&b.criterion))
        .expect("a non-empty grid");
    let truth = s.data.precision.view();
    Ok(Row {
        method: name.to_string(),
        criterion: best.criterion,
        lambda: best.lambda,
        n_solves: lambdas.len(),
        seconds,
        oracle: oracle_error(best.fit.precision.view(), truth),
        f1: edge_f1(best.fit.precision.view(), truth),
        n_edges: best.fit.n_edges(),
    })
}

/// scikit-learn's GraphicalLassoCV search on the hold-out criterion: `n_alphas` log-spaced
/// values from λ_max down to 1e-2·λ_max, then `n_refinements − 1` refinements of the grid
/// between the neighbours of the best value, each a warm-started path from the top.
fn refined_grid_row(
    s: &Setup,
    n_alphas: usize,
    n_refinements: usize,
    options: GlassoOptions,
) -> Result<Row, CliError> {
    let start = Instant::now();
    let logspace = |a: f64, b: f64, n: usize| -> Vec<f64> {
        (0..n)
            .map(|k| 10f64.powf(a.log10() + (b.log10() - a.log10()) * k as f64 / (n - 1) as f64))
            .collect()
    };
    let mut alphas = logspace(s.lambda_max, 1e-2 * s.lambda_max, n_alphas);
    let mut seen: Vec<PathPoint> = Vec::new();
    let mut n_solves = 0;
    for _ in 0..n_refinements {
        let pts = path_points(s, &alphas, options)?;
        n_solves += pts.len();
        seen.extend(pts);
        seen.sort_by(|a, b| b.lambda.total_cmp(&a.lambda));
        let best = seen
            .iter()
            .enumerate()
            .min_by(|a, b| a.1.criterion.total_cmp(&b.1.criterion))
            .map(|(i, _)| i)
            .expect("non-empty");
        let (hi, lo) = if best == 0 {
            (seen[0].lambda, seen[1.min(seen.len() - 1)].lambda)
        } else if best == seen.len() - 1 {
            (seen[best].lambda, 1e-2 * seen[best].lambda)
        } else {
            (seen[best - 1].lambda, seen[best + 1].lambda)
        };
        let full = logspace(hi, lo, n_alphas + 2);
        alphas = full[1..=n_alphas].to_vec();
    }
    let seconds = start.elapsed().as_secs_f64();
    let best = seen
        .iter()
        .min_by(|a, b| a.criterion.total_cmp(&b.criterion))
        .expect("non-empty");
    let truth = s.data.precision.view();
    Ok(Row {
        method: format!(
            "refined grid, sklearn GraphicalLassoCV style ({n_alphas} × {n_refinements})"
        ),
        criterion: best.criterion,
        lambda: best.lambda,
        n_solves,
        seconds,
        oracle: oracle_error(best.fit.precision.view(), truth),
        f1: edge_f1(best.fit.precision.view(), truth),
        n_edges: best.fit.n_edges(),
    })
}

fn tuned_row(s: &Setup, name: &str, t: &Tuned, criterion: f64) -> Row {
    let truth = s.data.precision.view();
    Row {
        method: name.to_string(),
        criterion,
        lambda: t.lambda,
        n_solves: t.n_inner_solves(),
        seconds: t.seconds,
        oracle: oracle_error(t.precision.view(), truth),
        f1: edge_f1(t.precision.view(), truth),
        n_edges: t.fit.n_edges(),
    }
}

/// The comparison table: hypergradient tuning vs grid, random and refined-grid search.
fn compare(
    s: &Setup,
    quick: bool,
    dir: &Path,
    progress: &mut Progress<'_>,
) -> Result<Value, CliError> {
    let (g1, g2, nr) = if quick { (10, 20, 10) } else { (50, 200, 50) };
    let search = GlassoOptions::default();
    let mut rows = Vec::new();
    progress.line("compare: scalar L-BFGS");
    let (t, _) = tune(s, TunerOptions::default())?;
    rows.push(tuned_row(
        s,
        "hypergradient, L-BFGS (scalar λ)",
        &t,
        t.scalar_criterion,
    ));
    for g in [g1, g2] {
        progress.line(&format!("compare: grid of {g} points"));
        let lambdas = lambda_path(s.lambda_max, 1e-4, g);
        rows.push(grid_row(
            s,
            &format!("grid search, {g} points (warm path)"),
            &lambdas,
            search,
        )?);
    }
    progress.line(&format!("compare: random search, {nr} points"));
    let (t, _) = tune(
        s,
        TunerOptions {
            optimizer: OptimizerKind::Random,
            max_iter: nr,
            log_range: 1e4f64.ln(),
            ..TunerOptions::default()
        },
    )?;
    rows.push(tuned_row(
        s,
        &format!("random search, {nr} points"),
        &t,
        t.scalar_criterion,
    ));
    progress.line("compare: refined grid (4 alphas × 4 refinements)");
    rows.push(refined_grid_row(s, 4, 4, search)?);
    progress.line("compare: matrix tuning (L-BFGS)");
    let (t, _) = tune(
        s,
        TunerOptions {
            weighted: true,
            ..TunerOptions::default()
        },
    )?;
    rows.push(tuned_row(
        s,
        "hypergradient, L-BFGS (matrix Λ, from λ*)",
        &t,
        t.criterion,
    ));

    let p = s.data.precision.nrows();
    let mut md = format!(
        "Synthetic data of the paper: p = {p}, n = {} (first half trains, second half \
         validates), Θ_true with {} edges, λ_max = {:.4}. Criterion: held-out negative \
         log-likelihood. Oracle error: ‖Θ̂ − Θ_true‖_F / ‖Θ_true‖_F. F1: recovered edges vs \
         those of Θ_true. Grids span [1e-4, 1]·λ_max.\n\n\
         | method | held-out NLL | λ | λ/λ_max | inner solves | seconds | oracle error | F1 | edges |\n\
         |---|---|---|---|---|---|---|---|---|\n",
        s.n,
        crate::commands::count_edges(s.data.precision.view()),
        s.lambda_max
    );
    let mut csv_rows = Vec::new();
    for r in &rows {
        md.push_str(&format!(
            "| {} | {:.6} | {:.4e} | {:.3e} | {} | {:.3} | {:.4} | {:.3} | {} |\n",
            r.method,
            r.criterion,
            r.lambda,
            r.lambda / s.lambda_max,
            r.n_solves,
            r.seconds,
            r.oracle,
            r.f1,
            r.n_edges
        ));
        csv_rows.push(vec![
            format!("\"{}\"", r.method),
            f(r.criterion),
            f(r.lambda),
            f(r.lambda / s.lambda_max),
            r.n_solves.to_string(),
            f(r.seconds),
            f(r.oracle),
            f(r.f1),
            r.n_edges.to_string(),
        ]);
    }
    write_text(&dir.join("compare.md"), &md)?;
    write_text(
        &dir.join("compare.csv"),
        &csv(
            &csv_rows,
            "method,heldout,lambda,lambda_ratio,n_inner_solves,seconds,oracle_error,f1,n_edges",
        ),
    )?;
    let table: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({"method": r.method, "heldout": r.criterion, "lambda": r.lambda,
                   "n_inner_solves": r.n_solves, "seconds": r.seconds,
                   "oracle_error": r.oracle, "f1": r.f1, "n_edges": r.n_edges})
        })
        .collect();
    Ok(json!({"lambda_max": s.lambda_max, "rows": table, "files": ["compare.md", "compare.csv"]}))
}

/// Time of scalar and matrix tuning (L-BFGS) against p.
fn scaling(
    args: &ExperimentArgs,
    dir: &Path,
    progress: &mut Progress<'_>,
) -> Result<Value, CliError> {
    let all: &[usize] = if args.quick {
        &[20, 50, 100]
    } else {
        &[50, 100, 200, 500, 1000]
    };
    let p_max = args.p_max.unwrap_or(if args.quick { 100 } else { 1000 });
    let ps: Vec<usize> = all.iter().copied().filter(|&p| p <= p_max).collect();
    if ps.is_empty() {
        return Err(CliError::InvalidArgument {
            name: "p-max",
            value: p_max as f64,
            range: "≥ the smallest p of the sweep (50, or 20 with --quick)",
        });
    }
    let mut rows = Vec::new();
    let mut scalar_pts = Vec::new();
    let mut matrix_pts = Vec::new();
    for &p in &ps {
        let s = setup(p, args.seed)?;
        progress.line(&format!("scaling: p = {p}, scalar"));
        let (ts, _) = tune(&s, TunerOptions::default())?;
        progress.line(&format!("scaling: p = {p}, scalar then matrix"));
        let (tm, _) = tune(
            &s,
            TunerOptions {
                weighted: true,
                ..TunerOptions::default()
            },
        )?;
        let m = tm
            .matrix
            .as_ref()
            .map_or(0.0, |m| m.stats.inner_seconds + m.stats.hypergrad_seconds);
        scalar_pts.push((p as f64, ts.seconds));
        matrix_pts.push((p as f64, tm.seconds));
        rows.push(vec![
            p.to_string(),
            s.n.to_string(),
            f(ts.seconds),
            f(tm.seconds),
            f(m),
            ts.n_inner_solves().to_string(),
            tm.n_inner_solves().to_string(),
            f(ts.lambda / ts.lambda_max),
            f(ts.scalar_criterion),
            f(tm.criterion),
        ]);
    }
    write_text(
        &dir.join("scaling.csv"),
        &csv(
            &rows,
            "p,n,scalar_seconds,scalar_then_matrix_seconds,matrix_stage_solve_seconds,\
             scalar_inner_solves,total_inner_solves,lambda_ratio,scalar_criterion,matrix_criterion",
        ),
    )?;
    plot::line_chart(
        &dir.join("scaling.png"),
        (900, 600),
        (1, 1),
        &[Panel {
            title: "Tuning time vs dimension (L-BFGS, n = 20 p)".to_string(),
            x_label: "p (log scale)".to_string(),
            y_label: "seconds (log scale)".to_string(),
            log_x: true,
            log_y: true,
            series: vec![
                Series::new("scalar λ", scalar_pts.clone(), Mark::LinePoints, 0),
                Series::new(
                    "scalar λ then matrix Λ",
                    matrix_pts.clone(),
                    Mark::LinePoints,
                    1,
                ),
            ],
        }],
    )?;
    Ok(json!({
        "p": ps,
        "scalar_seconds": scalar_pts.iter().map(|x| x.1).collect::<Vec<_>>(),
        "matrix_seconds": matrix_pts.iter().map(|x| x.1).collect::<Vec<_>>(),
        "files": ["scaling.png", "scaling.csv"],
    }))
}

/// Seconds after which a solver is not run at larger p in the same regime.
const SOLVER_BUDGET: f64 = 10.0;

/// Inner-solve time of every solver vs p, one panel per regime λ/λ_max ∈ {0.5, 0.1, 0.05,
/// 0.01} (relative gap 1e-8, the data of the paper's recipe with S from all n = 20p rows,
/// median of 3 runs after an untimed one, a single run when it takes over 2 s; p up to
/// `--p-max`, default 500). A solver
/// that took over [`SOLVER_BUDGET`] seconds in a regime is not run at larger p there; a run
/// that stops without certifying the tolerance is kept in the CSV (`converged` false) and left
/// out of the plot.
fn solvers(
    args: &ExperimentArgs,
    dir: &Path,
    progress: &mut Progress<'_>,
) -> Result<Value, CliError> {
    let all: &[usize] = if args.quick {
        &[20, 50]
    } else {
        &[50, 100, 200, 500, 1000]
    };
    let p_max = args.p_max.unwrap_or(if args.quick { 50 } else { 500 });
    let ps: Vec<usize> = all.iter().copied().filter(|&p| p <= p_max).collect();
    let ratios = [0.5, 0.1, 0.05, 0.01];
    let names = ho_glasso::SOLVER_NAMES;
    let mut rows = Vec::new();
    // curves[ratio][solver]
    let mut curves = vec![vec![Vec::new(); names.len()]; ratios.len()];
    let mut over_budget = vec![vec![false; names.len()]; ratios.len()];
    let mut prev = vec![vec![0.0_f64; names.len()]; ratios.len()];
    for &p in &ps {
        let data = paper_data(p, 20 * p, 0.9, args.seed);
        let s = ho_linalg::empirical_covariance(data.x.view(), false)?;
        let lmax = lambda_max(s.view());
        for (k, &r) in ratios.iter().enumerate() {
            let problem =
                ho_glasso::GlassoProblem::new(s.view(), ho_glasso::Penalty::scalar(r * lmax));
            for (j, name) in names.iter().enumerate() {
                if over_budget[k][j] {
                    continue;
                }
                progress.line(&format!("solvers: p = {p}, λ = {r}·λ_max, {name}"));
                let solver = ho_glasso::solver_from_name(name, GlassoOptions::default())?;
                // An untimed first run (page faults, caches) unless the solver was already
                // slow at the previous p.
                if prev[k][j] < 1.0 {
                    solver.solve(&problem, None)?;
                }
                let mut times = Vec::new();
                let mut last = None;
                while times.len() < 3 && (times.is_empty() || times[0] <= 2.0) {
                    let t = Instant::now();
                    let fit = solver.solve(&problem, None)?;
                    times.push(t.elapsed().as_secs_f64());
                    last = Some(fit);
                }
                times.sort_by(f64::total_cmp);
                let median = times[times.len() / 2];
                let fit = last.expect("at least one run");
                let converged = fit.status == ho_glasso::Status::Converged;
                if converged {
                    curves[k][j].push((p as f64, median));
                }
                over_budget[k][j] = median > SOLVER_BUDGET;
                prev[k][j] = median;
                rows.push(vec![
                    name.to_string(),
                    p.to_string(),
                    r.to_string(),
                    format!("{median:e}"),
                    times.len().to_string(),
                    fit.n_iter.to_string(),
                    fit.n_edges().to_string(),
                    fit.n_blocks.to_string(),
                    format!("{:e}", fit.relative_gap()),
                    converged.to_string(),
                ]);
            }
        }
    }
    write_text(
        &dir.join("solvers.csv"),
        &csv(
            &rows,
            "solver,p,lambda_ratio,median_seconds,runs,n_iter,n_edges,n_blocks,relative_gap,converged",
        ),
    )?;
    let panels: Vec<Panel> = ratios
        .iter()
        .zip(curves)
        .map(|(r, per_solver)| Panel {
            title: format!("λ = {r}·λ_max (relative gap 1e-8, n = 20 p)"),
            x_label: "p (log scale)".to_string(),
            y_label: "median seconds (log scale)".to_string(),
            log_x: true,
            log_y: true,
            series: names
                .iter()
                .zip(per_solver)
                .enumerate()
                .filter(|(_, (_, pts))| !pts.is_empty())
                .map(|(j, (name, pts))| Series::new(*name, pts, Mark::LinePoints, j))
                .collect(),
        })
        .collect();
    plot::line_chart(&dir.join("solvers.png"), (1400, 1000), (2, 2), &panels)?;
    Ok(json!({
        "p": ps,
        "solvers": names,
        "files": ["solvers.png", "solvers.csv"],
    }))
}

/// `glasso-ho experiment NAME --out-dir DIR`: runs one experiment and writes its files into
/// DIR (all at the end, nothing on failure); returns a JSON summary.
///
/// # Errors
/// Bad flags or output folder (exit code 2); numerical failures (exit code 1).
pub fn experiment(
    args: &ExperimentArgs,
    quiet: bool,
    log: &mut dyn Write,
) -> Result<Value, CliError> {
    if args.p < 4 {
        return Err(CliError::InvalidArgument {
            name: "p",
            value: args.p as f64,
            range: "≥ 4",
        });
    }
    check_target(&args.out_dir, Publish::Merge, true)?;
    plot::ensure_font()?;
    let start = Instant::now();
    let mut progress = Progress::new(log, quiet, "glasso-ho: experiment");
    let staging = Staging::new(&args.out_dir, Publish::Merge, true)?;
    let dir = staging.dir().to_path_buf();
    let result = match args.name.as_str() {
        "scaling" => scaling(args, &dir, &mut progress)?,
        "solvers" => solvers(args, &dir, &mut progress)?,
        name => {
            let s = setup(args.p, args.seed)?;
            progress.line(&format!(
                "{name}: paper_data(p = {}, n = {}, density 0.9, seed {}), 50/50 split, λ_max = {:.4}",
                args.p, s.n, args.seed, s.lambda_max
            ));
            match name {
                "fig1" => fig1(&s, args.quick, &dir, &mut progress)?,
                "fig2" => fig2(&s, args.quick, &dir, &mut progress)?,
                "fig3" => fig3(&s, args.quick, &dir, &mut progress)?,
                "compare" => compare(&s, args.quick, &dir, &mut progress)?,
                _ => {
                    return Err(CliError::Usage {
                        reason: "unknown experiment",
                    })
                }
            }
        }
    };
    staging.commit()?;
    let seconds = start.elapsed().as_secs_f64();
    progress.line(&format!(
        "{} done in {seconds:.2} s; files in {}",
        args.name,
        args.out_dir.display()
    ));
    Ok(json!({
        "experiment": args.name,
        "out_dir": args.out_dir,
        "p": if args.name == "scaling" { Value::Null } else { json!(args.p) },
        "quick": args.quick,
        "seconds": seconds,
        "result": result,
    }))
}
