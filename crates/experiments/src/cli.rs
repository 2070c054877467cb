//! The command line of `glasso-ho` (clap derive): flags, defaults and the value checks done
//! while parsing. The flag names are a contract (DESIGN.md §5); do not rename them.

use clap::builder::PossibleValuesParser;
use clap::{ArgGroup, Args, Parser, Subcommand};
use ho_glasso::{GlassoOptions, SOLVER_NAMES};
use std::path::PathBuf;

/// Tune the Graphical Lasso penalty by implicit differentiation.
///
/// Matrices are CSV (comma-separated, no header) or .npy, chosen by the file extension.
/// Results are one JSON object on stdout; logs go to stderr. Exit codes: 0 success, 1 a
/// reported numerical failure (e.g. no convergence within --max-iter), 2 bad input or usage.
#[derive(Debug, Clone, Parser)]
#[command(name = "glasso-ho", version)]
pub struct Cli {
    /// Silence the logs on stderr (errors are still reported).
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Draw a synthetic data set of the paper's recipe (sparse Θ_true, Gaussian samples).
    Generate(GenerateArgs),
    /// Solve one (weighted) Graphical Lasso problem and write the precision matrix Θ̂.
    Fit(FitArgs),
    /// Solve the GLASSO on S_train, then the hypergradient of a validation criterion.
    Hypergrad(HypergradArgs),
    /// Tune λ (and optionally the full matrix Λ) by hypergradient descent; write the results
    /// and plots to a folder.
    Tune(TuneArgs),
    /// The paper's synthetic setup end to end (p = 100, n = 2000): scalar then matrix tuning.
    Demo(DemoArgs),
    /// Reproduce a figure or table of the paper (fig1, fig2, fig3, compare, scaling), or time the inner solvers (solvers).
    Experiment(ExperimentArgs),
}

/// Names of `--criterion`.
pub const CRITERION_NAMES: [&str; 2] = ["heldout", "reconstruction"];
/// Names of `--method` (`ho_implicit::Method::from_name`).
pub const METHOD_NAMES: [&str; 5] = ["adjoint", "forward", "dense", "unrolled", "finite-diff"];
/// Names of `--optimizer` (`ho_bilevel::OptimizerKind::from_name`).
pub const OPTIMIZER_NAMES: [&str; 6] = ["gd", "armijo", "lbfgs", "adam", "grid", "random"];
/// Names of the experiments.
pub const EXPERIMENT_NAMES: [&str; 6] = ["fig1", "fig2", "fig3", "compare", "scaling", "solvers"];

/// Flags of `glasso-ho hypergrad`.
#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("penalty").required(true).args(["lambda", "penalty_matrix"])))]
pub struct HypergradArgs {
    /// Empirical covariance of the training samples S_train (p × p, symmetric).
    #[arg(long, value_name = "S_train.csv")]
    pub train: PathBuf,
    /// Empirical covariance of the validation samples S_val (p × p, symmetric).
    #[arg(long, value_name = "S_val.csv")]
    pub val: PathBuf,
    /// Scalar penalty λ ≥ 0 (Λ = λ (11ᵀ − I), or λ 11ᵀ with --penalize-diagonal).
    #[arg(long, value_name = "L", value_parser = parse_nonnegative,
          allow_negative_numbers = true)]
    pub lambda: Option<f64>,
    /// Penalty matrix Λ (p × p, symmetric, entries ≥ 0; its diagonal is used as given).
    #[arg(long, value_name = "L.csv", conflicts_with = "penalize_diagonal")]
    pub penalty_matrix: Option<PathBuf>,
    /// Penalize the diagonal of Θ too (scalar penalty only).
    #[arg(long)]
    pub penalize_diagonal: bool,
    /// Validation criterion: held-out negative log-likelihood or ‖Θ S_val − I‖_F.
    #[arg(long, value_name = "NAME", default_value = "heldout",
          value_parser = PossibleValuesParser::new(CRITERION_NAMES))]
    pub criterion: String,
    /// How to differentiate (adjoint: one CG solve, the default).
    #[arg(long, value_name = "NAME", default_value = "adjoint",
          value_parser = PossibleValuesParser::new(METHOD_NAMES))]
    pub method: String,
    /// Also write the p × p matrix ∂L/∂Λ_kl (each entry an independent parameter).
    #[arg(long, value_name = "G.csv")]
    pub out_grad: Option<PathBuf>,
}

/// Flags of `glasso-ho tune`.
#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("input").required(true).args(["data", "train"])))]
pub struct TuneArgs {
    /// Data X (n × p, rows are samples; CSV with an optional header row, or .npy), split by
    /// --val-fraction (default) or --folds.
    #[arg(long, value_name = "X.csv")]
    pub data: Option<PathBuf>,
    /// Hold-out split of --data: the last ⌊F n⌋ rows validate, F in (0, 1); default 0.5.
    #[arg(long, value_name = "F", requires = "data", conflicts_with = "folds",
          value_parser = parse_open_unit, allow_negative_numbers = true)]
    pub val_fraction: Option<f64>,
    /// K-fold cross-validation on --data (contiguous folds), K ≥ 2.
    #[arg(long, value_name = "K", requires = "data", value_parser = parse_folds,
          allow_negative_numbers = true)]
    pub folds: Option<usize>,
    /// Training covariance S_train (p × p, symmetric); needs --val.
    #[arg(
        long,
        value_name = "S_train.csv",
        requires = "val",
        conflicts_with = "data"
    )]
    pub train: Option<PathBuf>,
    /// Validation covariance S_val (p × p, symmetric); needs --train.
    #[arg(long, value_name = "S_val.csv", requires = "train")]
    pub val: Option<PathBuf>,
    /// After the scalar λ, tune the full symmetric matrix Λ (one parameter per pair k < l).
    #[arg(long)]
    pub weighted: bool,
    /// Outer optimizer (gd: the paper's fixed step 0.1 in log λ; grid and random search the
    /// scalar only).
    #[arg(long, value_name = "NAME", default_value = "lbfgs",
          value_parser = PossibleValuesParser::new(OPTIMIZER_NAMES))]
    pub optimizer: String,
    /// Outer iterations of the scalar stage (points for grid/random), ≥ 1.
    #[arg(long, value_name = "N", default_value_t = 50, value_parser = parse_count)]
    pub max_iter: usize,
    /// Outer iterations of the matrix stage (with --weighted), ≥ 1.
    #[arg(long, value_name = "N", default_value_t = 30, value_parser = parse_count)]
    pub matrix_max_iter: usize,
    /// Seed of the random search.
    #[arg(long, value_name = "K", default_value_t = 0)]
    pub seed: u64,
    /// Validation criterion.
    #[arg(long, value_name = "NAME", default_value = "heldout",
          value_parser = PossibleValuesParser::new(CRITERION_NAMES))]
    pub criterion: String,
    /// Scalar pattern P = 11ᵀ (the diagonal penalized) instead of 11ᵀ − I.
    #[arg(long)]
    pub penalize_diagonal: bool,
    /// Do not remove the mean of X (with --data only).
    #[arg(long, requires = "data")]
    pub assume_centered: bool,
    /// Output folder: created, or an existing empty folder, or the folder of an earlier
    /// `tune` (holding report.json), which is replaced. Written as a whole at the end.
    #[arg(long, value_name = "DIR")]
    pub out_dir: PathBuf,
}

/// Flags of `glasso-ho demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Output folder (created with its parents; replaced if it holds an earlier demo).
    #[arg(long, value_name = "DIR", default_value = "out/demo")]
    pub out_dir: PathBuf,
    /// Dimension p of the synthetic data (the paper: 100), ≥ 2.
    #[arg(long, value_name = "P", default_value_t = 100, value_parser = parse_count)]
    pub p: usize,
    /// Number of samples n (the paper: 2000), ≥ 8.
    #[arg(long, value_name = "N", default_value_t = 2000, value_parser = parse_count)]
    pub n: usize,
    /// Seed of the data.
    #[arg(long, value_name = "K", default_value_t = 0)]
    pub seed: u64,
}

/// Flags of `glasso-ho experiment`.
#[derive(Debug, Clone, Args)]
pub struct ExperimentArgs {
    /// Which experiment: fig1, fig2, fig3, compare, scaling or solvers.
    #[arg(value_name = "NAME", value_parser = PossibleValuesParser::new(EXPERIMENT_NAMES))]
    pub name: String,
    /// Output folder (created if needed; the experiment's files in it are replaced, other
    /// files are kept).
    #[arg(long, value_name = "DIR")]
    pub out_dir: PathBuf,
    /// Dimension p of the synthetic data (n = 20 p samples, half of them validate), ≥ 4.
    #[arg(long, value_name = "P", default_value_t = 100, value_parser = parse_count)]
    pub p: usize,
    /// Smaller grids and budgets (and p ≤ 100 for scaling): a fast smoke run.
    #[arg(long)]
    pub quick: bool,
    /// Largest p of the scaling experiment (default 1000, or 100 with --quick).
    #[arg(long, value_name = "P", value_parser = parse_count)]
    pub p_max: Option<usize>,
    /// Seed of the data.
    #[arg(long, value_name = "K", default_value_t = 0)]
    pub seed: u64,
}

/// Flags of `glasso-ho generate`.
#[derive(Debug, Clone, Args)]
pub struct GenerateArgs {
    /// Dimension p (number of variables), ≥ 1.
    #[arg(long, value_name = "P", value_parser = parse_count)]
    pub p: usize,
    /// Number of samples n (rows of X), ≥ 1.
    #[arg(long, value_name = "N", value_parser = parse_count)]
    pub n: usize,
    /// Seed of the generator (the same seed gives the same files).
    #[arg(long, value_name = "K")]
    pub seed: u64,
    /// Output file of the samples X (n × p), .csv or .npy.
    #[arg(long, value_name = "X.csv")]
    pub out: PathBuf,
    /// Also write the true precision matrix Θ_true (p × p), .csv or .npy.
    #[arg(long, value_name = "T.csv")]
    pub precision_out: Option<PathBuf>,
    /// Probability that an off-diagonal coefficient of Θ_true's factor is zero
    /// (scikit-learn's make_sparse_spd_matrix `alpha`; higher is sparser), in [0, 1].
    #[arg(long, value_name = "D", default_value_t = 0.9, value_parser = parse_unit,
          allow_negative_numbers = true)]
    pub density: f64,
}

/// Flags of `glasso-ho fit`.
#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("input").required(true).args(["data", "cov"])))]
#[command(group(
    ArgGroup::new("penalty").required(true).args(["lambda", "penalty_matrix", "lambda_ratio"])
))]
pub struct FitArgs {
    /// Data X (n × p, rows are samples; CSV with an optional header row, or .npy); S is its
    /// empirical covariance (divided by n).
    #[arg(long, value_name = "X.csv")]
    pub data: Option<PathBuf>,
    /// Empirical covariance S (p × p, symmetric).
    #[arg(long, value_name = "S.csv")]
    pub cov: Option<PathBuf>,
    /// Scalar penalty λ ≥ 0 (Λ = λ (11ᵀ − I), or λ 11ᵀ with --penalize-diagonal).
    #[arg(long, value_name = "L", value_parser = parse_nonnegative,
          allow_negative_numbers = true)]
    pub lambda: Option<f64>,
    /// Scalar penalty as a fraction of λ_max = max_{i≠j} |S_ij|: λ = R · λ_max, R ≥ 0.
    #[arg(long, value_name = "R", value_parser = parse_nonnegative,
          allow_negative_numbers = true)]
    pub lambda_ratio: Option<f64>,
    /// Penalty matrix Λ (p × p, symmetric, entries ≥ 0; its diagonal is used as given).
    #[arg(long, value_name = "L.csv", conflicts_with = "penalize_diagonal")]
    pub penalty_matrix: Option<PathBuf>,
    /// Penalize the diagonal of Θ too (scalar penalty only).
    #[arg(long)]
    pub penalize_diagonal: bool,
    /// Do not remove the mean of X: S = (1/n) Σ x_i x_iᵀ (with --data only).
    #[arg(long, conflicts_with = "cov")]
    pub assume_centered: bool,
    /// GLASSO solver.
    #[arg(long, value_name = "NAME", default_value = "auto",
          value_parser = PossibleValuesParser::new(SOLVER_NAMES))]
    pub solver: String,
    /// Tolerance on the relative duality gap, gap / max(1, |objective|), > 0.
    #[arg(long, value_name = "T", default_value_t = GlassoOptions::default().tol,
          value_parser = parse_positive, allow_negative_numbers = true)]
    pub tol: f64,
    /// Iteration budget of the solver (per block of the screening), ≥ 1.
    #[arg(long, value_name = "N", default_value_t = GlassoOptions::default().max_iter,
          value_parser = parse_count)]
    pub max_iter: usize,
    /// Output file of the precision matrix Θ̂ (p × p), .csv or .npy.
    #[arg(long, value_name = "THETA.csv")]
    pub out: PathBuf,
}

fn parse_f64(s: &str) -> Result<f64, String> {
    s.trim()
        .parse::<f64>()
        .map_err(|_| "not a number".to_string())
}

fn parse_nonnegative(s: &str) -> Result<f64, String> {
    let v = parse_f64(s)?;
    if v >= 0.0 && v.is_finite() {
        Ok(v)
    } else {
        Err("must be finite and ≥ 0".to_string())
    }
}

fn parse_positive(s: &str) -> Result<f64, String> {
    let v = parse_f64(s)?;
    if v > 0.0 && v.is_finite() {
        Ok(v)
    } else {
        Err("must be finite and > 0".to_string())
    }
}

fn parse_unit(s: &str) -> Result<f64, String> {
    let v = parse_f64(s)?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err("must be in [0, 1]".to_string())
    }
}

fn parse_open_unit(s: &str) -> Result<f64, String> {
    let v = parse_f64(s)?;
    if v > 0.0 && v < 1.0 {
        Ok(v)
    } else {
        Err("must be in (0, 1)".to_string())
    }
}

fn parse_folds(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(v) if v >= 2 => Ok(v),
        _ => Err("must be an integer ≥ 2".to_string()),
    }
}

fn parse_count(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(v) if v >= 1 => Ok(v),
        _ => Err("must be an integer ≥ 1".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn value_parsers() {
        assert!(parse_nonnegative("0").is_ok());
        assert!(parse_nonnegative("-0.1").is_err());
        assert!(parse_nonnegative("nan").is_err());
        assert!(parse_nonnegative("inf").is_err());
        assert!(parse_positive("0").is_err());
        assert!(parse_positive("1e-8").is_ok());
        assert!(parse_unit("1.5").is_err());
        assert!(parse_count("0").is_err());
        assert!(parse_count("-3").is_err());
        assert_eq!(parse_count("7"), Ok(7));
    }

    #[test]
    fn fit_defaults_and_conflicts() {
        let cli = Cli::try_parse_from([
            "glasso-ho",
            "fit",
            "--cov",
            "S.csv",
            "--lambda",
            "0.1",
            "--out",
            "T.csv",
        ])
        .unwrap();
        let Command::Fit(a) = cli.command else {
            panic!("not fit")
        };
        assert_eq!(a.solver, "auto");
        assert_eq!(a.max_iter, GlassoOptions::default().max_iter);
        assert!(!cli.quiet);
        for bad in [
            &[
                "fit", "--cov", "S.csv", "--data", "X.csv", "--lambda", "1", "--out", "T.csv",
            ][..],
            &[
                "fit",
                "--cov",
                "S.csv",
                "--lambda",
                "1",
                "--penalty-matrix",
                "L.csv",
                "--out",
                "T.csv",
            ],
            &["fit", "--cov", "S.csv", "--out", "T.csv"],
            &["fit", "--cov", "S.csv", "--lambda", "-1", "--out", "T.csv"],
            &[
                "fit",
                "--cov",
                "S.csv",
                "--lambda",
                "1",
                "--assume-centered",
                "--out",
                "T.csv",
            ],
            &[
                "fit", "--cov", "S.csv", "--lambda", "1", "--solver", "magic", "--out", "T.csv",
            ],
        ] {
            let args = std::iter::once("glasso-ho").chain(bad.iter().copied());
            assert!(Cli::try_parse_from(args).is_err(), "{bad:?}");
        }
    }
}
