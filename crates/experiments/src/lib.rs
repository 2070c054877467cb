#![doc = include_str!("../README.md")]

pub mod cli;
pub mod commands;
pub mod error;
pub mod experiment;
pub mod hypergrad;
pub mod outdir;
pub mod plot;
pub mod progress;
pub mod tuning;

pub use cli::{
    Cli, Command, DemoArgs, ExperimentArgs, FitArgs, GenerateArgs, HypergradArgs, TuneArgs,
};
pub use commands::{check_output_path, fit, generate, FitReport, GenerateReport, MIN_SAMPLES};
pub use error::{CliError, EXIT_NUMERICAL, EXIT_OK, EXIT_USAGE};
pub use experiment::experiment;
pub use hypergrad::{hypergrad, HypergradReport};
pub use tuning::{demo, tune, DemoReport, TuneReport};

use serde::Serialize;
use std::io::Write;

/// Runs one parsed command line: the command's JSON report goes to `stdout` (one object, one
/// line), logs to `stderr` unless `--quiet`.
///
/// A fit that did not converge is written and printed first, then returned as
/// [`CliError::NotConverged`].
///
/// # Errors
/// The command's [`CliError`]; [`CliError::exit_code`] gives the process exit code.
pub fn run(cli: &Cli, stdout: &mut dyn Write, stderr: &mut dyn Write) -> Result<(), CliError> {
    let mut sink = std::io::sink();
    let log: &mut dyn Write = if cli.quiet { &mut sink } else { stderr };
    match &cli.command {
        Command::Generate(args) => {
            let report = generate(args, log)?;
            print_json(stdout, &report)
        }
        Command::Fit(args) => {
            let report = fit(args, log)?;
            print_json(stdout, &report)?;
            report.check_converged()
        }
        Command::Hypergrad(args) => {
            let report = hypergrad(args, log)?;
            print_json(stdout, &report)
        }
        Command::Tune(args) => {
            let report = tune(args, cli.quiet, log)?;
            print_json(stdout, &report)
        }
        Command::Demo(args) => {
            let report = demo(args, cli.quiet, log)?;
            print_json(stdout, &report)
        }
        Command::Experiment(args) => {
            let report = experiment(args, cli.quiet, log)?;
            print_json(stdout, &report)
        }
    }
}

/// Writes `value` as one line of JSON and flushes.
fn print_json(out: &mut dyn Write, value: &impl Serialize) -> Result<(), CliError> {
    let text = serde_json::to_string(value).map_err(|e| CliError::Stdout {
        source: std::io::Error::other(e),
    })?;
    writeln!(out, "{text}")
        .and_then(|()| out.flush())
        .map_err(|source| CliError::Stdout { source })
}
