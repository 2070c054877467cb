//! Observers: called after every iteration, they record a trace and may stop the run.

use crate::vecops::Dot;
use std::io::{self, Write};
use std::ops::ControlFlow;

use ndarray::ArrayView1;

/// What a minimizer reports after each iteration.
#[derive(Debug, Clone)]
pub struct IterRecord<'a> {
    /// Iteration number. Gradient methods report the start point as iteration 0 and step `k`
    /// as iteration `k`; zero-order searches number their points from 0.
    pub iteration: usize,
    /// Wall time since the start of `minimize`, in seconds.
    pub elapsed_secs: f64,
    /// Objective value at `x`.
    pub value: f64,
    /// Projected gradient norm at `x`; `None` for zero-order searches.
    pub grad_norm: Option<f64>,
    /// The current iterate (for zero-order searches: the point just evaluated).
    pub x: ArrayView1<'a, f64>,
    /// Lowest value seen so far (equal to `value` for the line-search methods).
    pub best_value: f64,
    /// Objective calls so far (`value` and `value_and_grad`).
    pub n_evals: usize,
    /// `value_and_grad` calls so far.
    pub n_grad_evals: usize,
}

/// Called by a [`Minimizer`](crate::Minimizer) after each iteration.
///
/// Return `ControlFlow::Break(())` to stop: the run ends with
/// [`Termination::StoppedByObserver`](crate::Termination::StoppedByObserver) (unless the same
/// iteration met a convergence tolerance). Closures implement this trait:
///
/// ```
/// use ho_outer::{IterRecord, Observer};
/// use std::ops::ControlFlow;
///
/// let mut values = Vec::new();
/// let mut stop_below = |rec: &IterRecord<'_>| {
///     values.push(rec.value);
///     if rec.value < 1e-3 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
/// };
/// let observer: &mut dyn Observer = &mut stop_below;
/// # let _ = observer;
/// ```
pub trait Observer {
    /// Receives the record of one iteration.
    fn on_iter(&mut self, rec: &IterRecord<'_>) -> ControlFlow<()>;
}

impl<F> Observer for F
where
    F: FnMut(&IterRecord<'_>) -> ControlFlow<()>,
{
    fn on_iter(&mut self, rec: &IterRecord<'_>) -> ControlFlow<()> {
        self(rec)
    }
}

/// An observer that records nothing and never stops.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoObserver;

impl Observer for NoObserver {
    fn on_iter(&mut self, _rec: &IterRecord<'_>) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
}

/// One row of a [`Trace`]: an iteration with a summary of `x`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TraceRow {
    /// [`IterRecord::iteration`].
    pub iteration: usize,
    /// [`IterRecord::elapsed_secs`].
    pub elapsed_secs: f64,
    /// [`IterRecord::value`].
    pub value: f64,
    /// [`IterRecord::best_value`].
    pub best_value: f64,
    /// [`IterRecord::grad_norm`], NaN for zero-order searches.
    pub grad_norm: f64,
    /// [`IterRecord::n_evals`].
    pub n_evals: usize,
    /// [`IterRecord::n_grad_evals`].
    pub n_grad_evals: usize,
    /// `minᵢ xᵢ`.
    pub x_min: f64,
    /// `maxᵢ xᵢ`.
    pub x_max: f64,
    /// `(1/n) Σᵢ xᵢ`.
    pub x_mean: f64,
    /// `‖x‖₂`.
    pub x_norm: f64,
}

impl TraceRow {
    /// Summarizes a record.
    pub fn from_record(rec: &IterRecord<'_>) -> Self {
        let x = rec.x;
        let (x_min, x_max) = x
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
        let n = x.len().max(1) as f64;
        Self {
            iteration: rec.iteration,
            elapsed_secs: rec.elapsed_secs,
            value: rec.value,
            best_value: rec.best_value,
            grad_norm: rec.grad_norm.unwrap_or(f64::NAN),
            n_evals: rec.n_evals,
            n_grad_evals: rec.n_grad_evals,
            x_min,
            x_max,
            x_mean: x.sum() / n,
            x_norm: x.vdot(&x).sqrt(),
        }
    }
}

/// An observer that records one [`TraceRow`] per iteration and never stops.
///
/// For a scalar penalty (`x = [log α]`), `x_min = x_max = x_mean = log α`.
///
/// ```
/// use ho_outer::{IterRecord, Observer, Trace};
/// use ndarray::array;
///
/// let mut trace = Trace::default();
/// let x = array![1.0, 3.0];
/// let rec = IterRecord {
///     iteration: 0, elapsed_secs: 0.0, value: 2.0, grad_norm: Some(0.5), x: x.view(),
///     best_value: 2.0, n_evals: 1, n_grad_evals: 1,
/// };
/// let _ = trace.on_iter(&rec);
/// assert_eq!(trace.rows.len(), 1);
/// assert!((trace.rows[0].x_max - 3.0).abs() < 1e-15);
///
/// let mut csv = Vec::new();
/// trace.write_csv(&mut csv)?;
/// assert!(String::from_utf8(csv).unwrap().starts_with("iteration,elapsed_secs,value"));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Trace {
    /// Recorded rows, in iteration order.
    pub rows: Vec<TraceRow>,
}

impl Trace {
    /// Header of [`write_csv`](Self::write_csv).
    pub const CSV_HEADER: &'static str =
        "iteration,elapsed_secs,value,best_value,grad_norm,n_evals,n_grad_evals,x_min,x_max,x_mean,x_norm";

    /// Writes the rows as CSV with [`CSV_HEADER`](Self::CSV_HEADER) (a NaN `grad_norm` is
    /// written as `NaN`).
    ///
    /// # Errors
    ///
    /// Any I/O error of `out`.
    pub fn write_csv<W: Write>(&self, mut out: W) -> io::Result<()> {
        writeln!(out, "{}", Self::CSV_HEADER)?;
        for r in &self.rows {
            writeln!(
                out,
                "{},{},{},{},{},{},{},{},{},{},{}",
                r.iteration,
                r.elapsed_secs,
                r.value,
                r.best_value,
                r.grad_norm,
                r.n_evals,
                r.n_grad_evals,
                r.x_min,
                r.x_max,
                r.x_mean,
                r.x_norm
            )?;
        }
        Ok(())
    }
}

impl Observer for Trace {
    fn on_iter(&mut self, rec: &IterRecord<'_>) -> ControlFlow<()> {
        self.rows.push(TraceRow::from_record(rec));
        ControlFlow::Continue(())
    }
}
