//! `glasso-ho hypergrad`: an exact inner solve on S_train, then the hypergradient of a
//! validation criterion on S_val (ho-implicit).

use crate::cli::HypergradArgs;
use crate::commands::{check_output_path, with_file};
use crate::CliError;
use ho_glasso::{Auto, GlassoOptions, GlassoProblem, GlassoSolver, Penalty};
use ho_implicit::{hypergradient, Criterion, HeldOutNll, HypergradOptions, Method, Reconstruction};
use ho_linalg::io::{format_f64, read_matrix, write_matrix};
use ho_linalg::LinalgError;
use ndarray::Array2;
use serde::Serialize;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

/// What `glasso-ho hypergrad` prints: the keys of DESIGN.md §5, then `method`, `lambda`,
/// `relative_gap`, `inner_seconds`, `hypergrad_seconds`, `cg_iterations`.
#[derive(Debug, Clone, Serialize)]
pub struct HypergradReport {
    /// C(Θ̂): the criterion at the fit.
    pub value: f64,
    /// dL/dλ along the pattern P (scalar penalty; `null` for a matrix).
    pub grad_lambda: Option<f64>,
    /// dL/d(log λ) = λ dL/dλ (scalar penalty; `null` for a matrix).
    pub grad_log_lambda: Option<f64>,
    /// |E|: ordered pairs (i, j) with Θ̂_ij ≠ 0, diagonal included.
    pub support_size: usize,
    /// min over (k, l) ∉ E of Λ_kl − |W_kl − S_kl| (`null` when Θ̂ is full).
    pub margin: Option<f64>,
    /// Duality gap of the inner solve.
    pub dual_gap: f64,
    /// Wall-clock seconds: inner solve and hypergradient (file reading excluded).
    pub seconds: f64,
    /// The differentiation method.
    pub method: &'static str,
    /// The scalar λ (`null` for a matrix).
    pub lambda: Option<f64>,
    /// dual_gap / max(1, |objective|).
    pub relative_gap: f64,
    /// Seconds of the inner solve.
    pub inner_seconds: f64,
    /// Seconds of the hypergradient.
    pub hypergrad_seconds: f64,
    /// Iterations of the linear solver (CG) of the adjoint/forward methods.
    pub cg_iterations: usize,
}

/// Reads a covariance file and checks it (square, finite, symmetric to 1e-10 relative).
///
/// # Errors
/// [`CliError::Linalg`] for an unreadable file, [`CliError::InvalidFile`] for a bad matrix.
pub fn load_cov(path: &Path) -> Result<Array2<f64>, CliError> {
    let s = read_matrix(path)?;
    GlassoProblem::new(s.view(), Penalty::scalar(0.0))
        .validate()
        .map_err(|e| with_file(e, path, None))?;
    Ok(s)
}

/// Checks that two covariances have the same dimension.
///
/// # Errors
/// [`CliError::Linalg`] with [`LinalgError::DimensionMismatch`].
pub fn check_same_dim(a: &Array2<f64>, b: &Array2<f64>) -> Result<(), CliError> {
    if a.dim() != b.dim() {
        return Err(LinalgError::DimensionMismatch {
            expected: a.nrows(),
            found: b.nrows(),
        }
        .into());
    }
    Ok(())
}

/// Inner options for differentiation: relative gap 1e-12 and KKT residual 1e-10·max S_ii
/// (an inexact support gives a wrong hypergradient, DESIGN.md §2).
pub fn exact_options(emp_cov: &Array2<f64>) -> GlassoOptions {
    let scale = emp_cov.diag().iter().fold(0.0_f64, |m, v| m.max(v.abs()));
    GlassoOptions {
        tol: 1e-12,
        kkt_tol: 1e-10 * scale.max(f64::MIN_POSITIVE),
        max_iter: 500,
        ..GlassoOptions::default()
    }
}

/// The criterion of a `--criterion` name.
pub fn criterion_of(name: &str, s_val: Array2<f64>) -> Box<dyn Criterion> {
    match name {
        "reconstruction" => Box::new(Reconstruction::new(s_val)),
        _ => Box::new(HeldOutNll::new(s_val)),
    }
}

/// `glasso-ho hypergrad`.
///
/// # Errors
/// Bad input (exit code 2); a failed inner solve or hypergradient (exit code 1).
pub fn hypergrad(args: &HypergradArgs, log: &mut dyn Write) -> Result<HypergradReport, CliError> {
    let method = Method::from_name(&args.method).ok_or(CliError::Usage {
        reason: "unknown --method",
    })?;
    if let Some(g) = &args.out_grad {
        check_output_path(g)?;
    }
    let s_train = load_cov(&args.train)?;
    let s_val = load_cov(&args.val)?;
    check_same_dim(&s_train, &s_val)?;
    let penalty = match (args.lambda, &args.penalty_matrix) {
        (Some(alpha), None) => Penalty::Scalar {
            alpha,
            penalize_diagonal: args.penalize_diagonal,
        },
        (None, Some(path)) => Penalty::Matrix(read_matrix(path)?),
        _ => {
            return Err(CliError::Usage {
                reason: "give exactly one of --lambda and --penalty-matrix",
            })
        }
    };
    let lambda = penalty.alpha();
    let problem = GlassoProblem::new(s_train.view(), penalty);
    problem
        .validate()
        .map_err(|e| with_file(e, &args.train, args.penalty_matrix.as_ref()))?;
    let criterion = criterion_of(&args.criterion, s_val);
    let solver = Auto {
        options: exact_options(&s_train),
        ..Default::default()
    };
    let _ = writeln!(
        log,
        "glasso-ho: hypergrad: p = {}, {}, criterion {}, method {}",
        problem.dim(),
        match lambda {
            Some(l) => format!("λ = {}", format_f64(l)),
            None => "penalty matrix".to_string(),
        },
        args.criterion,
        method.name()
    );
    let start = Instant::now();
    let fit = solver.solve(&problem, None)?;
    let inner_seconds = start.elapsed().as_secs_f64();
    let options = HypergradOptions {
        method,
        full_matrix: args.out_grad.is_some(),
        ..HypergradOptions::default()
    };
    let h = hypergradient(&fit, &problem, criterion.as_ref(), &options)?;
    let seconds = start.elapsed().as_secs_f64();
    if let Some(path) = &args.out_grad {
        let g = h.grad_matrix.as_ref().ok_or(CliError::Usage {
            reason: "this --method gives no matrix gradient",
        })?;
        write_matrix(path, g.view())?;
    }
    let scale = s_train.diag().iter().fold(0.0_f64, |m, v| m.max(v.abs()));
    if let Some(m) = h.margin {
        if m <= 1e-8 * scale {
            let _ = writeln!(
                log,
                "glasso-ho: hypergrad: warning: margin {m:.2e}: an entry off the support is at \
                 its threshold (a kink of L); the hypergradient is one-sided there"
            );
        }
    }
    let _ = writeln!(
        log,
        "glasso-ho: hypergrad: C = {:.10}, |E| = {}, relative gap {:.2e}, {:.4} s",
        h.value,
        h.support_size,
        fit.relative_gap(),
        seconds
    );
    Ok(HypergradReport {
        value: h.value,
        grad_lambda: h.grad_lambda,
        grad_log_lambda: h.grad_log_lambda,
        support_size: h.support_size,
        margin: h.margin,
        dual_gap: h.dual_gap,
        seconds,
        method: method.name(),
        lambda,
        relative_gap: fit.relative_gap(),
        inner_seconds,
        hypergrad_seconds: h.seconds,
        cg_iterations: h.report.n_iter,
    })
}
