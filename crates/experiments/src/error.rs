//! The error type of the `glasso-ho` commands and its exit codes.

use ho_bilevel::BilevelError;
use ho_glasso::GlassoError;
use ho_implicit::ImplicitError;
use ho_linalg::LinalgError;
use ho_outer::OuterError;
use std::path::PathBuf;

/// Exit code of a successful run.
pub const EXIT_OK: i32 = 0;
/// Exit code of a numerical failure that is reported (non-convergence within the budget, a
/// factorization or linear solve that failed).
pub const EXIT_NUMERICAL: i32 = 1;
/// Exit code of bad input or usage (unreadable or malformed file, invalid matrix, invalid
/// option, unknown or conflicting flags).
pub const EXIT_USAGE: i32 = 2;

/// Everything that can make a `glasso-ho` command fail. Messages are lower-case one-liners;
/// [`CliError::exit_code`] classifies them.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A file could not be read or written, or a matrix is malformed (from `ho-linalg`).
    #[error(transparent)]
    Linalg(#[from] LinalgError),
    /// The GLASSO problem is invalid, or a solver failed (from `ho-glasso`).
    #[error(transparent)]
    Glasso(#[from] GlassoError),
    /// An input file whose content makes the problem invalid.
    #[error("{}: {source}", path.display())]
    InvalidFile {
        /// The file (or the flag's argument) the content came from.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: GlassoError,
    },
    /// An option value outside its allowed range.
    #[error("invalid value {value} for --{name} (allowed: {range})")]
    InvalidArgument {
        /// The flag, without the leading dashes.
        name: &'static str,
        /// The value given.
        value: f64,
        /// The allowed range, in words.
        range: &'static str,
    },
    /// Flags that are missing or conflict (the command line parser rejects these first; this
    /// covers arguments built in code).
    #[error("invalid usage: {reason}")]
    Usage {
        /// What is wrong.
        reason: &'static str,
    },
    /// The folder of an output file does not exist.
    #[error("{}: output folder {} does not exist", path.display(), folder.display())]
    MissingOutputFolder {
        /// The output file.
        path: PathBuf,
        /// Its parent folder.
        folder: PathBuf,
    },
    /// The solver stopped at its iteration budget before meeting the tolerance (the fit is
    /// still written and reported, with `"converged": false`).
    #[error(
        "{solver} did not converge: relative duality gap {relative_gap:.2e} > tol {tol:e} \
         after {n_iter} iterations (raise --max-iter or --tol)"
    )]
    NotConverged {
        /// The solver's name.
        solver: String,
        /// `dual_gap / max(1, |objective|)` at the stop.
        relative_gap: f64,
        /// The tolerance asked for.
        tol: f64,
        /// Iterations done.
        n_iter: usize,
    },
    /// A hypergradient failed (from `ho-implicit`).
    #[error(transparent)]
    Implicit(#[from] ImplicitError),
    /// Tuning failed (from `ho-bilevel`).
    #[error(transparent)]
    Bilevel(#[from] BilevelError),
    /// An output folder that cannot be used (not a folder, not empty, missing parent).
    #[error("{}: {reason}", path.display())]
    OutputDir {
        /// The folder.
        path: PathBuf,
        /// What is wrong, in words.
        reason: &'static str,
    },
    /// A file-system operation on an output folder failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path operated on.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// No TrueType font to render the text of the plots.
    #[error(
        "no font found for the plots (looked for {tried}): install fonts-dejavu-core \
         (scripts/setup.sh) or set GLASSO_HO_FONT to a .ttf file"
    )]
    NoFont {
        /// The paths tried.
        tried: String,
    },
    /// A plot could not be drawn or written.
    #[error("{}: cannot draw the plot: {reason}", path.display())]
    Plot {
        /// The image file.
        path: PathBuf,
        /// The drawing backend's message.
        reason: String,
    },
    /// The JSON result could not be written to stdout.
    #[error("cannot write to stdout: {source}")]
    Stdout {
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl CliError {
    /// The process exit code: [`EXIT_USAGE`] (2) for bad input or usage, [`EXIT_NUMERICAL`]
    /// (1) for a reported numerical failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Linalg(e) => linalg_exit_code(e),
            CliError::Glasso(e) | CliError::InvalidFile { source: e, .. } => glasso_exit_code(e),
            CliError::InvalidArgument { .. }
            | CliError::Usage { .. }
            | CliError::MissingOutputFolder { .. } => EXIT_USAGE,
            CliError::NotConverged { .. } | CliError::Stdout { .. } => EXIT_NUMERICAL,
            CliError::Implicit(e) => implicit_exit_code(e),
            CliError::Bilevel(e) => bilevel_exit_code(e),
            CliError::OutputDir { .. } | CliError::NoFont { .. } => EXIT_USAGE,
            CliError::Io { .. } | CliError::Plot { .. } => EXIT_NUMERICAL,
        }
    }
}

fn linalg_exit_code(e: &LinalgError) -> i32 {
    match e {
        LinalgError::NotPositiveDefinite { .. }
        | LinalgError::SolverBreakdown { .. }
        | LinalgError::Lapack { .. } => EXIT_NUMERICAL,
        LinalgError::NotSquare { .. }
        | LinalgError::DimensionMismatch { .. }
        | LinalgError::NotSymmetric { .. }
        | LinalgError::NonFinite { .. }
        | LinalgError::TooFewSamples { .. }
        | LinalgError::ZeroVariance { .. }
        | LinalgError::InvalidOption { .. }
        | LinalgError::Io { .. }
        | LinalgError::EmptyFile { .. }
        | LinalgError::RaggedRow { .. }
        | LinalgError::BadNumber { .. }
        | LinalgError::NonFiniteInFile { .. }
        | LinalgError::Npy { .. }
        | LinalgError::UnsupportedExtension { .. } => EXIT_USAGE,
    }
}

fn glasso_exit_code(e: &GlassoError) -> i32 {
    match e {
        GlassoError::NumericalFailure { .. } => EXIT_NUMERICAL,
        GlassoError::Linalg(inner) => linalg_exit_code(inner),
        GlassoError::NotSquare { .. }
        | GlassoError::Empty
        | GlassoError::NonFinite { .. }
        | GlassoError::NotSymmetric { .. }
        | GlassoError::InvalidPenalty { .. }
        | GlassoError::PenaltyShape { .. }
        | GlassoError::Unbounded { .. }
        | GlassoError::InvalidOption { .. }
        | GlassoError::WarmStartShape { .. }
        | GlassoError::UnknownSolver { .. } => EXIT_USAGE,
    }
}

fn implicit_exit_code(e: &ImplicitError) -> i32 {
    match e {
        ImplicitError::Linalg(inner) => linalg_exit_code(inner),
        ImplicitError::Glasso(inner) => glasso_exit_code(inner),
        ImplicitError::DimensionMismatch { .. }
        | ImplicitError::InvalidOption { .. }
        | ImplicitError::TooLarge { .. } => EXIT_USAGE,
        _ => EXIT_NUMERICAL,
    }
}

fn outer_exit_code(e: &OuterError) -> i32 {
    match e {
        OuterError::InvalidOption { .. }
        | OuterError::MissingOption { .. }
        | OuterError::InvalidBounds { .. }
        | OuterError::DimensionMismatch { .. } => EXIT_USAGE,
        OuterError::Objective(inner) => {
            if let Some(b) = inner.downcast_ref::<BilevelError>() {
                bilevel_exit_code(b)
            } else if let Some(i) = inner.downcast_ref::<ImplicitError>() {
                implicit_exit_code(i)
            } else if let Some(g) = inner.downcast_ref::<GlassoError>() {
                glasso_exit_code(g)
            } else {
                EXIT_NUMERICAL
            }
        }
        _ => EXIT_NUMERICAL,
    }
}

fn bilevel_exit_code(e: &BilevelError) -> i32 {
    match e {
        BilevelError::TooFewSamples { .. }
        | BilevelError::InvalidOption { .. }
        | BilevelError::DimensionMismatch { .. }
        | BilevelError::NothingToTune => EXIT_USAGE,
        BilevelError::Linalg(inner) => linalg_exit_code(inner),
        BilevelError::Glasso(inner) => glasso_exit_code(inner),
        BilevelError::Implicit(inner) => implicit_exit_code(inner),
        BilevelError::Outer(inner) => outer_exit_code(inner),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn assert_send_sync<T: Send + Sync + 'static>() {}
    const _: () = assert_send_sync::<CliError>();

    #[test]
    fn exit_codes() {
        let usage = CliError::Glasso(GlassoError::InvalidPenalty {
            value: -1.0,
            row: 0,
            col: 1,
        });
        assert_eq!(usage.exit_code(), EXIT_USAGE);
        let io = CliError::Linalg(LinalgError::EmptyFile {
            path: "x.csv".into(),
        });
        assert_eq!(io.exit_code(), EXIT_USAGE);
        let numerical = CliError::Glasso(GlassoError::NumericalFailure {
            solver: "bcd",
            iteration: 3,
            reason: "non-finite iterate",
        });
        assert_eq!(numerical.exit_code(), EXIT_NUMERICAL);
        let spd = CliError::Glasso(GlassoError::Linalg(LinalgError::NotPositiveDefinite {
            pivot: 2,
        }));
        assert_eq!(spd.exit_code(), EXIT_NUMERICAL);
        let stalled = CliError::NotConverged {
            solver: "newton-cd".into(),
            relative_gap: 1e-3,
            tol: 1e-8,
            n_iter: 1,
        };
        assert_eq!(stalled.exit_code(), EXIT_NUMERICAL);
        assert!(!stalled.to_string().contains('\n'));
    }
}
