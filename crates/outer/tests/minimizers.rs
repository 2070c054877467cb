//! One problem, many solvers: every gradient minimizer on a convex quadratic, Rosenbrock in 2-D
//! and 10-D, a 1-D non-convex function and a box-constrained problem, asserting the minimizer
//! and value reached (pattern of argmin's `tests.rs`). Plus evaluation budgets and per-iteration
//! call counts.

mod common;

use approx::assert_abs_diff_eq;
use common::*;
use ho_outer::{
    Adam, AdamOptions, Backtracking, BacktrackingOptions, Bounds, GradientDescent,
    GradientDescentOptions, IterRecord, Lbfgs, LbfgsOptions, Minimizer, NoObserver, Objective,
    StrongWolfe, Termination, Trace,
};
use ndarray::Array1;
use std::ops::ControlFlow;

const GRAD_TOL: f64 = 1e-6;

#[derive(Debug, Clone, Copy)]
enum Problem {
    Quadratic,
    Rosenbrock,
    NonConvex,
    /// `Shifted` in the box [−1, 1]³.
    Bounded,
}

fn box3() -> Option<Bounds> {
    Some(Bounds::uniform(3, -1.0, 1.0).unwrap())
}

/// Fixed-step gradient descent, step below 2/L for each problem.
fn gd(p: Problem) -> Box<dyn Minimizer> {
    let step = match p {
        Problem::Quadratic => 0.07,
        Problem::Rosenbrock => 5e-4,
        Problem::NonConvex => 0.02,
        Problem::Bounded => 0.1,
    };
    Box::new(GradientDescent::new(GradientDescentOptions {
        step,
        grad_tol: GRAD_TOL,
        max_iter: 100_000,
        bounds: matches!(p, Problem::Bounded).then(box3).flatten(),
        ..GradientDescentOptions::default()
    }))
}

/// Gradient descent along −∇f with Armijo backtracking.
fn gd_armijo(p: Problem) -> Box<dyn Minimizer> {
    Box::new(GradientDescent::with_line_search(
        GradientDescentOptions {
            step: 1.0,
            grad_tol: GRAD_TOL,
            max_iter: 100_000,
            bounds: matches!(p, Problem::Bounded).then(box3).flatten(),
            ..GradientDescentOptions::default()
        },
        Backtracking::armijo(),
    ))
}

fn lbfgs_options(p: Problem) -> LbfgsOptions {
    LbfgsOptions {
        grad_tol: GRAD_TOL,
        rel_tol: 0.0,
        max_iter: 1000,
        bounds: matches!(p, Problem::Bounded).then(box3).flatten(),
        ..LbfgsOptions::default()
    }
}

/// L-BFGS with its default weak-Wolfe line search.
fn lbfgs(p: Problem) -> Box<dyn Minimizer> {
    Box::new(Lbfgs::new(lbfgs_options(p)))
}

/// L-BFGS with a strong-Wolfe line search.
fn lbfgs_strong_wolfe(p: Problem) -> Box<dyn Minimizer> {
    Box::new(Lbfgs::with_line_search(
        lbfgs_options(p),
        Backtracking::new(BacktrackingOptions::default(), StrongWolfe::default()),
    ))
}

fn adam(p: Problem) -> Box<dyn Minimizer> {
    let lr = match p {
        Problem::Quadratic | Problem::Rosenbrock => 0.05,
        Problem::NonConvex | Problem::Bounded => 0.01,
    };
    Box::new(Adam::new(AdamOptions {
        lr,
        grad_tol: GRAD_TOL,
        max_iter: 100_000,
        bounds: matches!(p, Problem::Bounded).then(box3).flatten(),
        ..AdamOptions::default()
    }))
}

type Setup = fn(Problem) -> Box<dyn Minimizer>;

fn check_quadratic(setup: Setup) {
    let q = Quadratic::new();
    let c = q.c.clone();
    let (min, _) = run_counted(
        &mut *setup(Problem::Quadratic),
        q,
        Array1::zeros(5),
        &mut NoObserver,
    );
    assert_eq!(min.termination, Termination::ConvergedGradNorm);
    assert!(min.grad_norm.unwrap() <= GRAD_TOL);
    // ‖x − c‖ ≤ ‖∇f‖ / λ_min(A), λ_min > 0.5.
    assert_abs_diff_eq!(min.x, c, epsilon = 2.0 * GRAD_TOL / 0.5);
    assert!(min.value <= 1e-11, "value {}", min.value);
}

fn check_rosenbrock(setup: Setup, n: usize) {
    let (min, _) = run_counted(
        &mut *setup(Problem::Rosenbrock),
        Rosenbrock { n },
        rosenbrock_start(n),
        &mut NoObserver,
    );
    assert_eq!(min.termination, Termination::ConvergedGradNorm, "{min:?}");
    assert_abs_diff_eq!(min.x, Array1::ones(n), epsilon = 1e-4);
    assert!(min.value <= 1e-10, "value {}", min.value);
}

fn check_non_convex(setup: Setup, x0: f64, x_star: f64, f_star: f64) {
    let (min, _) = run_counted(
        &mut *setup(Problem::NonConvex),
        NonConvex,
        Array1::from_elem(1, x0),
        &mut NoObserver,
    );
    assert_eq!(min.termination, Termination::ConvergedGradNorm);
    // f''(x*) > 9, so |x − x*| ≤ |f'(x)| / 9.
    assert_abs_diff_eq!(min.x[0], x_star, epsilon = GRAD_TOL / 9.0 * 1.01);
    assert_abs_diff_eq!(min.value, f_star, epsilon = 1e-11);
}

fn check_bounded(setup: Setup) {
    let bounds = box3().unwrap();
    let mut inside = |rec: &IterRecord<'_>| {
        assert!(
            bounds.contains(rec.x),
            "iterate {} left the box: {}",
            rec.iteration,
            rec.x
        );
        ControlFlow::Continue(())
    };
    let (min, _) = run_counted(
        &mut *setup(Problem::Bounded),
        Shifted { n: 3 },
        Array1::zeros(3),
        &mut inside,
    );
    // Converged on the upper bound, where ∇f = 2(x − 3) = −4 points outward.
    assert_eq!(min.termination, Termination::ConvergedGradNorm);
    assert_abs_diff_eq!(min.x, Array1::ones(3), epsilon = 1e-12);
    assert_abs_diff_eq!(min.grad_norm.unwrap(), 0.0);
    assert_abs_diff_eq!(min.value, 12.0, epsilon = 1e-10);
}

macro_rules! one_problem_many_solvers {
    ($($solver:ident: from_right_reaches = ($x_right:expr, $f_right:expr);)*) => {$(
        mod $solver {
            use super::*;

            #[test]
            fn quadratic() {
                check_quadratic(super::$solver);
            }

            #[test]
            fn rosenbrock_2d() {
                check_rosenbrock(super::$solver, 2);
            }

            #[test]
            fn rosenbrock_10d() {
                check_rosenbrock(super::$solver, 10);
            }

            #[test]
            fn non_convex_from_left_reaches_global_minimum() {
                check_non_convex(super::$solver, -2.0, X_GLOBAL, F_GLOBAL);
            }

            #[test]
            fn non_convex_from_right() {
                check_non_convex(super::$solver, 2.0, $x_right, $f_right);
            }

            #[test]
            fn box_is_respected_and_bound_point_converges() {
                check_bounded(super::$solver);
            }
        }
    )*};
}

one_problem_many_solvers! {
    gd: from_right_reaches = (X_LOCAL, F_LOCAL);
    // The first Armijo trial (t = 1 along −∇f(2) = −21) lands in the other basin.
    gd_armijo: from_right_reaches = (X_GLOBAL, F_GLOBAL);
    lbfgs: from_right_reaches = (X_LOCAL, F_LOCAL);
    lbfgs_strong_wolfe: from_right_reaches = (X_LOCAL, F_LOCAL);
    adam: from_right_reaches = (X_LOCAL, F_LOCAL);
}

/// Evaluation budgets: a regression in L-BFGS's cost fails here (measured: 16, 50, 97
/// `value_and_grad` calls).
#[test]
fn lbfgs_evaluation_budgets() {
    let cases: [(&mut dyn Objective, Array1<f64>, usize); 3] = [
        (&mut Quadratic::new(), Array1::zeros(5), 20),
        (&mut Rosenbrock { n: 2 }, rosenbrock_start(2), 60),
        (&mut Rosenbrock { n: 10 }, rosenbrock_start(10), 120),
    ];
    for (obj, x0, budget) in cases {
        let (min, counted) =
            run_counted(&mut *lbfgs(Problem::Rosenbrock), obj, x0, &mut NoObserver);
        assert_eq!(min.termination, Termination::ConvergedGradNorm);
        assert!(
            min.n_grad_evals <= budget,
            "{} value_and_grad calls > budget {budget}",
            min.n_grad_evals
        );
        assert_eq!(
            counted.counters.n_value, 0,
            "the Wolfe search needs gradients: it should never call `value`"
        );
    }
}

/// Fixed-step gradient descent and Adam make exactly one `value_and_grad` call per iteration.
#[test]
fn one_call_per_iteration_without_line_search() {
    for setup in [gd as Setup, adam] {
        let (min, counted) = run_counted(
            &mut *setup(Problem::Quadratic),
            Quadratic::new(),
            Array1::zeros(5),
            &mut NoObserver,
        );
        assert_eq!(counted.counters.n_value, 0);
        assert_eq!(min.n_grad_evals, min.n_iter + 1);
    }
}

/// With Armijo, trials call `value` only, and each accepted point costs exactly one
/// `value_and_grad` call: the minimizer never evaluates a point twice.
#[test]
fn armijo_trials_use_value_and_each_accepted_point_one_gradient() {
    let (min, counted) = run_counted(
        &mut *gd_armijo(Problem::Rosenbrock),
        Rosenbrock { n: 2 },
        rosenbrock_start(2),
        &mut NoObserver,
    );
    assert_eq!(min.n_grad_evals, min.n_iter + 1);
    assert!(counted.counters.n_value >= min.n_iter);
    assert!(
        counted.counters.n_value > min.n_iter,
        "some steps should have backtracked"
    );
}

/// The line-search methods never increase the value from one iteration to the next.
#[test]
fn line_search_methods_are_monotone() {
    for setup in [gd_armijo as Setup, lbfgs, lbfgs_strong_wolfe] {
        for (n, x0) in [(2, rosenbrock_start(2)), (10, Array1::zeros(10))] {
            let mut trace = Trace::default();
            run_counted(
                &mut *setup(Problem::Rosenbrock),
                Rosenbrock { n },
                x0,
                &mut trace,
            );
            for w in trace.rows.windows(2) {
                assert!(
                    w[1].value <= w[0].value,
                    "increase at iteration {}",
                    w[1].iteration
                );
            }
        }
    }
}

/// The trace has one row per iteration plus the start point, with consistent counters.
#[test]
fn trace_records_every_iteration() {
    let mut trace = Trace::default();
    let (min, _) = run_counted(
        &mut *lbfgs(Problem::Rosenbrock),
        Rosenbrock { n: 2 },
        rosenbrock_start(2),
        &mut trace,
    );
    assert_eq!(trace.rows.len(), min.n_iter + 1);
    for (k, row) in trace.rows.iter().enumerate() {
        assert_eq!(row.iteration, k);
        assert!(row.x_min <= row.x_mean && row.x_mean <= row.x_max);
    }
    for w in trace.rows.windows(2) {
        assert!(w[0].n_evals < w[1].n_evals && w[0].elapsed_secs <= w[1].elapsed_secs);
    }
    let last = trace.rows.last().unwrap();
    assert_eq!(last.n_evals, min.n_evals);
    assert_abs_diff_eq!(last.value, min.value);
    let mut csv = Vec::new();
    trace.write_csv(&mut csv).unwrap();
    assert_eq!(
        String::from_utf8(csv).unwrap().lines().count(),
        trace.rows.len() + 1
    );
}

/// Records every point where the wrapped objective is evaluated.
struct Logged<O> {
    inner: O,
    points: Vec<Array1<f64>>,
}

impl<O: Objective> Objective for Logged<O> {
    fn dim(&self) -> usize {
        self.inner.dim()
    }

    fn value_and_grad(
        &mut self,
        x: ndarray::ArrayView1<'_, f64>,
    ) -> Result<(f64, Array1<f64>), ho_outer::OuterError> {
        self.points.push(x.to_owned());
        self.inner.value_and_grad(x)
    }
}

/// L-BFGS on the quadratic from 0 with `max_step`: the minimizer reached and the largest
/// first trial of a line search, `‖x_k + d_k − x_k‖_∞` (the evaluation right after iterate k).
fn lbfgs_first_trials(max_step: Option<f64>) -> (Array1<f64>, f64) {
    let mut obj = Logged {
        inner: Quadratic::new(),
        points: Vec::new(),
    };
    let mut iterates = Vec::new();
    let mut observer = |rec: &IterRecord<'_>| {
        iterates.push((rec.n_evals, rec.x.to_owned()));
        ControlFlow::Continue(())
    };
    let min = Lbfgs::new(LbfgsOptions {
        grad_tol: 1e-9,
        rel_tol: 0.0,
        max_step,
        ..LbfgsOptions::default()
    })
    .minimize(&mut obj, Array1::zeros(5), &mut observer)
    .unwrap();
    let longest = iterates
        .iter()
        .filter_map(|(n, x)| obj.points.get(*n).map(|next| next - x))
        .map(|d| d.iter().fold(0.0_f64, |a, v| a.max(v.abs())))
        .fold(0.0, f64::max);
    (min.x, longest)
}

#[test]
fn lbfgs_max_step_caps_the_first_trial_of_every_line_search() {
    let c = Quadratic::new().c;
    let (x, longest) = lbfgs_first_trials(None);
    assert!(
        longest > 1.0,
        "the uncapped first trials were all short: {longest}"
    );
    assert_abs_diff_eq!(x, c, epsilon = 1e-6);
    let (x, longest) = lbfgs_first_trials(Some(0.5));
    assert!(
        longest <= 0.5 * (1.0 + 1e-12),
        "a first trial moved {longest}"
    );
    assert_abs_diff_eq!(x, c, epsilon = 1e-6);
}

#[test]
fn lbfgs_rejects_a_non_positive_max_step() {
    for m in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        for (name, options) in [
            (
                "max_step",
                LbfgsOptions {
                    max_step: Some(m),
                    ..LbfgsOptions::default()
                },
            ),
            (
                "steepest_step",
                LbfgsOptions {
                    steepest_step: Some(m),
                    ..LbfgsOptions::default()
                },
            ),
        ] {
            assert!(
                matches!(
                    options.validate(2),
                    Err(ho_outer::OuterError::InvalidOption { name: n, .. }) if n == name
                ),
                "{name} {m}"
            );
        }
    }
}

#[test]
fn lbfgs_steepest_step_sets_the_length_of_the_first_trial() {
    // The first trial from 0 is `−∇f` scaled: to 1/max(1, ‖∇f‖₂) by default, to
    // ‖d‖_∞ = steepest_step when given (and still capped by max_step).
    let first_trial = |steepest_step: Option<f64>, max_step: Option<f64>| {
        let mut obj = Logged {
            inner: Quadratic::new(),
            points: Vec::new(),
        };
        let min = Lbfgs::new(LbfgsOptions {
            grad_tol: 1e-9,
            rel_tol: 0.0,
            steepest_step,
            max_step,
            ..LbfgsOptions::default()
        })
        .minimize(&mut obj, Array1::zeros(5), &mut NoObserver)
        .unwrap();
        assert_abs_diff_eq!(min.x, Quadratic::new().c, epsilon = 1e-6);
        let d = &obj.points[1] - &obj.points[0];
        let (_, g) = Quadratic::new()
            .value_and_grad(obj.points[0].view())
            .unwrap();
        // Along −∇f.
        let cos = -d.dot(&g) / (d.dot(&d).sqrt() * g.dot(&g).sqrt());
        assert_abs_diff_eq!(cos, 1.0, epsilon = 1e-12);
        d.iter().fold(0.0_f64, |a, v| a.max(v.abs()))
    };
    let plain = first_trial(None, None);
    for length in [0.01, 0.3, 7.0] {
        assert!((length - plain).abs() > 1e-3);
        assert_abs_diff_eq!(first_trial(Some(length), None), length, epsilon = 1e-12);
    }
    assert_abs_diff_eq!(first_trial(Some(7.0), Some(2.0)), 2.0, epsilon = 1e-12);
}
