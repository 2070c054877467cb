//! Progress of a tuning run on stderr: an indicatif spinner when stderr is a terminal, else
//! one short log line per stage; nothing with `--quiet`.

use ho_bilevel::TunerTraceRow;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::time::Duration;

/// Reports the outer iterations of a tuning run.
pub struct Progress<'a> {
    log: &'a mut dyn Write,
    bar: Option<ProgressBar>,
    prefix: String,
    stage: Option<&'static str>,
    quiet: bool,
}

impl<'a> Progress<'a> {
    /// A reporter writing its lines to `log` (stderr, or a sink with `--quiet`), or a
    /// spinner when `interactive`.
    pub fn new(log: &'a mut dyn Write, quiet: bool, prefix: &str) -> Self {
        let interactive = !quiet && std::io::stderr().is_terminal();
        let bar = interactive.then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix} [{elapsed}] {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_prefix(prefix.to_string());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Self {
            log,
            bar,
            prefix: prefix.to_string(),
            stage: None,
            quiet,
        }
    }

    /// A free-form log line (above the spinner when there is one).
    pub fn line(&mut self, text: &str) {
        if self.quiet {
            return;
        }
        match &self.bar {
            Some(bar) => bar.println(format!("{}: {text}", self.prefix)),
            None => {
                let _ = writeln!(self.log, "{}: {text}", self.prefix);
            }
        }
    }

    /// Raw text (several lines), unless quiet.
    pub fn raw(&mut self, text: &str) {
        if self.quiet {
            return;
        }
        self.finish();
        let _ = write!(self.log, "{text}");
    }

    /// One outer iteration.
    pub fn row(&mut self, row: &TunerTraceRow) {
        let what = if row.stage == "scalar" {
            "λ"
        } else {
            "‖Λ‖_F"
        };
        if self.stage != Some(row.stage) {
            self.stage = Some(row.stage);
            self.line(&format!(
                "{} stage: start at {what} = {:.4e}, criterion {:.6}",
                row.stage, row.penalty_size, row.row.value
            ));
        }
        if let Some(bar) = &self.bar {
            bar.set_message(format!(
                "{} iteration {}: criterion {:.6}, {what} = {:.4e}",
                row.stage, row.row.iteration, row.row.value, row.penalty_size
            ));
        }
    }

    /// Ends the spinner.
    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress<'_> {
    fn drop(&mut self) {
        self.finish();
    }
}
