//! The `glasso-ho` program: parses the command line and runs [`ho_experiments::run`].
//!
//! Every failure is one line on stderr, `glasso-ho: error: <message>`, and an exit code:
//! 0 success, 1 a reported numerical failure, 2 bad input or usage.

use clap::error::ErrorKind;
use clap::Parser;
use ho_experiments::{run, Cli, EXIT_NUMERICAL, EXIT_USAGE};
use std::panic::{self, AssertUnwindSafe};
use std::process::ExitCode;

/// Joins the lines of a message into one.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// clap's message on one line, without its `error: ` prefix.
fn clap_message(e: &clap::Error) -> String {
    if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        return "no command given (try 'glasso-ho --help')".to_string();
    }
    // clap's first paragraph is the message (a list of missing flags or of possible values
    // may follow on its next lines); the usage and tips after the blank line are dropped.
    let rendered = e.render().to_string();
    let paragraph = one_line(
        &rendered
            .trim_start()
            .lines()
            .take_while(|l| !l.trim().is_empty())
            .collect::<Vec<_>>()
            .join("\n"),
    );
    let message = paragraph.strip_prefix("error: ").unwrap_or(&paragraph);
    if message.is_empty() {
        "invalid command line (try --help)".to_string()
    } else {
        format!("{message} (try --help)")
    }
}

fn exit_code(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

fn main() -> ExitCode {
    // OpenBLAS's fast kernels when its CPU detection failed (`ho_linalg::blas_core`).
    ho_linalg::restart_with_faster_blas();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version: print to stdout, success.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("glasso-ho: error: {}", clap_message(&e));
            return exit_code(EXIT_USAGE);
        }
    };
    // A panic is a bug in a lower layer; report it on one line like every other error.
    panic::set_hook(Box::new(|info| {
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string());
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!(
            "glasso-ho: error: internal error (a bug): {}{place}",
            one_line(&payload)
        );
    }));
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        run(&cli, &mut std::io::stdout(), &mut std::io::stderr())
    }));
    match outcome {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("glasso-ho: error: {}", one_line(&e.to_string()));
            exit_code(e.exit_code())
        }
        Err(_) => exit_code(EXIT_NUMERICAL),
    }
}
