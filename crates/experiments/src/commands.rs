//! The implementations of the subcommands: each takes its parsed flags and a log sink
//! (stderr, or nothing with `--quiet`), writes its files, and returns the report that
//! [`crate::run`] prints as JSON on stdout.

use crate::cli::{FitArgs, GenerateArgs};
use crate::CliError;
use ho_glasso::{
    lambda_max, solver_from_name, GlassoError, GlassoFit, GlassoOptions, GlassoProblem, Penalty,
    Status,
};
use ho_linalg::io::{read_data, read_matrix, write_matrix};
use ho_linalg::testing::paper_data;
use ho_linalg::{empirical_covariance, LinalgError};
use ndarray::{Array2, ArrayView2};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Fewest rows of a data matrix `X` that `fit --data` accepts.
pub const MIN_SAMPLES: usize = 2;

/// What `glasso-ho generate` prints.
#[derive(Debug, Clone, Serialize)]
pub struct GenerateReport {
    /// The samples file.
    pub out: PathBuf,
    /// The Θ_true file, if asked for.
    pub precision_out: Option<PathBuf>,
    /// Dimension.
    pub p: usize,
    /// Number of samples.
    pub n: usize,
    /// Seed.
    pub seed: u64,
    /// The sparsity parameter of Θ_true.
    pub density: f64,
    /// Nonzero pairs k < l of Θ_true.
    pub n_edges: usize,
    /// Wall-clock seconds (generation and writing).
    pub seconds: f64,
}

/// What `glasso-ho fit` prints (the keys of DESIGN.md §5, plus `relative_gap` and `n_blocks`).
#[derive(Debug, Clone, Serialize)]
pub struct FitReport {
    /// The solver asked for (`--solver`).
    pub solver: String,
    /// The scalar λ used (also with `--lambda-ratio`); `None` (JSON null) for a matrix.
    pub lambda: Option<f64>,
    /// Φ(Θ̂).
    pub objective: f64,
    /// Absolute duality gap of Θ̂.
    pub dual_gap: f64,
    /// KKT residual (max over entries).
    pub kkt_residual: f64,
    /// Solver iterations (summed over the screening blocks).
    pub n_iter: usize,
    /// Nonzero pairs k < l of Θ̂.
    pub n_edges: usize,
    /// Whether the tolerance was met within the budget.
    pub converged: bool,
    /// Wall-clock seconds of the solve (reading and writing files excluded).
    pub seconds: f64,
    /// `dual_gap / max(1, |objective|)`, the quantity compared with `--tol`.
    pub relative_gap: f64,
    /// Connected components of the screening graph.
    pub n_blocks: usize,
    /// The tolerance asked for (not printed).
    #[serde(skip)]
    pub tol: f64,
}

impl FitReport {
    fn new(solver: &str, lambda: Option<f64>, fit: &GlassoFit, seconds: f64, tol: f64) -> Self {
        Self {
            solver: solver.to_string(),
            lambda,
            objective: fit.objective,
            dual_gap: fit.dual_gap,
            kkt_residual: fit.kkt_residual,
            n_iter: fit.n_iter,
            n_edges: fit.n_edges(),
            converged: matches!(fit.status, Status::Converged),
            seconds,
            relative_gap: fit.relative_gap(),
            n_blocks: fit.n_blocks,
            tol,
        }
    }

    /// `Ok` when the fit converged.
    ///
    /// # Errors
    /// [`CliError::NotConverged`] (exit code 1) otherwise.
    pub fn check_converged(&self) -> Result<(), CliError> {
        if self.converged {
            Ok(())
        } else {
            Err(CliError::NotConverged {
                solver: self.solver.clone(),
                relative_gap: self.relative_gap,
                tol: self.tol,
                n_iter: self.n_iter,
            })
        }
    }
}

/// Checks, before any work, that an output file can be written: its extension is `.csv` or
/// `.npy` and its folder exists.
///
/// # Errors
/// [`LinalgError::UnsupportedExtension`] or [`CliError::MissingOutputFolder`].
pub fn check_output_path(path: &Path) -> Result<(), CliError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    if !matches!(ext.as_deref(), Some("csv" | "npy")) {
        return Err(LinalgError::UnsupportedExtension {
            path: path.to_path_buf(),
        }
        .into());
    }
    let folder = match path.parent() {
        Some(f) if !f.as_os_str().is_empty() => f,
        _ => Path::new("."),
    };
    if !folder.is_dir() {
        return Err(CliError::MissingOutputFolder {
            path: path.to_path_buf(),
            folder: folder.to_path_buf(),
        });
    }
    Ok(())
}

pub(crate) fn check_range(
    name: &'static str,
    value: f64,
    ok: bool,
    range: &'static str,
) -> Result<(), CliError> {
    if ok {
        Ok(())
    } else {
        Err(CliError::InvalidArgument { name, value, range })
    }
}

pub(crate) fn count_edges(a: ArrayView2<'_, f64>) -> usize {
    let p = a.nrows();
    (0..p)
        .map(|i| (0..i).filter(|&j| a[[i, j]] != 0.0).count())
        .sum()
}

/// `glasso-ho generate`: the paper's data, `paper_data(p, n, alpha = density, seed)`
/// (`Θ_true = make_sparse_spd_matrix(p, density) + 0.1 I`, rows of X ~ N(0, Θ_true⁻¹)).
///
/// # Errors
/// Invalid flags, an output path that cannot be written (exit code 2).
pub fn generate(args: &GenerateArgs, log: &mut dyn Write) -> Result<GenerateReport, CliError> {
    check_range("p", args.p as f64, args.p >= 1, "≥ 1")?;
    check_range("n", args.n as f64, args.n >= 1, "≥ 1")?;
    check_range(
        "density",
        args.density,
        (0.0..=1.0).contains(&args.density),
        "[0, 1]",
    )?;
    check_output_path(&args.out)?;
    if let Some(t) = &args.precision_out {
        check_output_path(t)?;
    }
    let start = Instant::now();
    let data = paper_data(args.p, args.n, args.density, args.seed);
    write_matrix(&args.out, data.x.view())?;
    if let Some(t) = &args.precision_out {
        if let Err(e) = write_matrix(t, data.precision.view()) {
            // Leave no half of the output behind.
            let _ = std::fs::remove_file(&args.out);
            return Err(e.into());
        }
    }
    let n_edges = count_edges(data.precision.view());
    let _ = writeln!(
        log,
        "glasso-ho: generate: X ({} × {}) written to {}, Θ_true has {} edges",
        args.n,
        args.p,
        args.out.display(),
        n_edges
    );
    Ok(GenerateReport {
        out: args.out.clone(),
        precision_out: args.precision_out.clone(),
        p: args.p,
        n: args.n,
        seed: args.seed,
        density: args.density,
        n_edges,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// Reads S from `--cov`, or computes it from `--data` (at least [`MIN_SAMPLES`] rows).
fn load_covariance(args: &FitArgs) -> Result<(Array2<f64>, &Path), CliError> {
    match (&args.data, &args.cov) {
        (Some(path), None) => {
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
            Ok((empirical_covariance(x.view(), args.assume_centered)?, path))
        }
        (None, Some(path)) => {
            if args.assume_centered {
                return Err(CliError::Usage {
                    reason: "--assume-centered needs --data",
                });
            }
            Ok((read_matrix(path)?, path))
        }
        _ => Err(CliError::Usage {
            reason: "give exactly one of --data and --cov",
        }),
    }
}

/// The penalty from `--lambda`, `--lambda-ratio` or `--penalty-matrix`.
fn load_penalty(args: &FitArgs, emp_cov: ArrayView2<'_, f64>) -> Result<Penalty, CliError> {
    let penalize_diagonal = args.penalize_diagonal;
    match (args.lambda, args.lambda_ratio, &args.penalty_matrix) {
        (Some(alpha), None, None) => {
            check_range("lambda", alpha, alpha >= 0.0 && alpha.is_finite(), "≥ 0")?;
            Ok(Penalty::Scalar {
                alpha,
                penalize_diagonal,
            })
        }
        (None, Some(ratio), None) => {
            check_range(
                "lambda-ratio",
                ratio,
                ratio >= 0.0 && ratio.is_finite(),
                "≥ 0",
            )?;
            Ok(Penalty::Scalar {
                alpha: ratio * lambda_max(emp_cov),
                penalize_diagonal,
            })
        }
        (None, None, Some(path)) => {
            if penalize_diagonal {
                return Err(CliError::Usage {
                    reason: "--penalize-diagonal applies to a scalar penalty only",
                });
            }
            Ok(Penalty::Matrix(read_matrix(path)?))
        }
        _ => Err(CliError::Usage {
            reason: "give exactly one of --lambda, --lambda-ratio and --penalty-matrix",
        }),
    }
}

/// Names the file an invalid-problem error comes from.
pub(crate) fn with_file(
    e: GlassoError,
    cov_path: &Path,
    penalty_path: Option<&PathBuf>,
) -> CliError {
    let about_cov = match &e {
        GlassoError::NotSquare { .. } | GlassoError::Empty | GlassoError::Unbounded { .. } => true,
        GlassoError::NonFinite { what, .. } | GlassoError::NotSymmetric { what, .. } => {
            *what == "covariance"
        }
        _ => false,
    };
    let about_penalty = matches!(
        e,
        GlassoError::PenaltyShape { .. }
            | GlassoError::InvalidPenalty { .. }
            | GlassoError::NonFinite {
                what: "penalty",
                ..
            }
            | GlassoError::NotSymmetric {
                what: "penalty",
                ..
            }
    );
    match penalty_path {
        Some(path) if about_penalty => CliError::InvalidFile {
            path: path.clone(),
            source: e,
        },
        _ if about_cov => CliError::InvalidFile {
            path: cov_path.to_path_buf(),
            source: e,
        },
        _ => CliError::Glasso(e),
    }
}

/// `glasso-ho fit`: solves the GLASSO for one penalty and writes Θ̂ to `--out` (atomically).
/// A fit that stops at the iteration budget is still written and returned, with
/// `converged == false` (see [`FitReport::check_converged`]).
///
/// # Errors
/// Bad input (exit code 2): unreadable or malformed files, too few samples, S not square or
/// not symmetric, a negative penalty, invalid options. Solver failures (exit code 1). Nothing
/// is written on error.
pub fn fit(args: &FitArgs, log: &mut dyn Write) -> Result<FitReport, CliError> {
    check_range(
        "tol",
        args.tol,
        args.tol > 0.0 && args.tol.is_finite(),
        "> 0",
    )?;
    check_range("max-iter", args.max_iter as f64, args.max_iter >= 1, "≥ 1")?;
    check_output_path(&args.out)?;
    let (emp_cov, cov_path) = load_covariance(args)?;
    let penalty = load_penalty(args, emp_cov.view())?;
    let lambda = penalty.alpha();
    let problem = GlassoProblem::new(emp_cov.view(), penalty);
    problem
        .validate()
        .map_err(|e| with_file(e, cov_path, args.penalty_matrix.as_ref()))?;
    let options = GlassoOptions {
        tol: args.tol,
        max_iter: args.max_iter,
        ..GlassoOptions::default()
    };
    let solver = solver_from_name(&args.solver, options)?;
    let what = match lambda {
        Some(l) => format!("λ = {}", ho_linalg::io::format_f64(l)),
        None => "penalty matrix".to_string(),
    };
    let _ = writeln!(
        log,
        "glasso-ho: fit: p = {}, {what}, solver {}, tol {:e}",
        problem.dim(),
        args.solver,
        args.tol
    );
    let start = Instant::now();
    let fit = solver.solve(&problem, None)?;
    let seconds = start.elapsed().as_secs_f64();
    write_matrix(&args.out, fit.precision.view())?;
    let report = FitReport::new(&args.solver, lambda, &fit, seconds, args.tol);
    let _ = writeln!(
        log,
        "glasso-ho: fit: {} in {} iterations ({seconds:.3} s), relative gap {:.2e}, {} edges; Θ̂ written to {}",
        if report.converged { "converged" } else { "NOT converged" },
        report.n_iter,
        report.relative_gap,
        report.n_edges,
        args.out.display()
    );
    Ok(report)
}
