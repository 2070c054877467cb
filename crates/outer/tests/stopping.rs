//! Stopping rules, budgets, observers, bounds, invalid input and error paths, for every
//! minimizer.

mod common;

use std::error::Error;
use std::ops::ControlFlow;
use std::time::Duration;

use approx::assert_abs_diff_eq;
use common::*;
use ho_outer::{
    Adam, AdamOptions, Backtracking, Bounds, Counting, GradientDescent, GradientDescentOptions,
    GridSearch, GridSearchOptions, IterRecord, Lbfgs, LbfgsOptions, LineSearch, Minimizer,
    NoObserver, Objective, OuterError, RandomSearch, RandomSearchOptions, Step, Termination, Trace,
};
use ndarray::{array, Array1, ArrayView1};

/// Options shared by the gradient minimizers of these tests.
#[derive(Clone, Default)]
struct Common {
    max_iter: Option<usize>,
    max_evals: Option<usize>,
    time_budget: Option<Duration>,
    bounds: Option<Bounds>,
}

fn gradient_minimizers(c: &Common) -> Vec<(&'static str, Box<dyn Minimizer>)> {
    let max_iter = c.max_iter.unwrap_or(100_000);
    let gd_options = GradientDescentOptions {
        step: 1e-3,
        grad_tol: 0.0,
        max_iter,
        max_evals: c.max_evals,
        time_budget: c.time_budget,
        bounds: c.bounds.clone(),
        ..GradientDescentOptions::default()
    };
    vec![
        ("gd", Box::new(GradientDescent::new(gd_options.clone()))),
        (
            "gd_armijo",
            Box::new(GradientDescent::with_line_search(
                GradientDescentOptions {
                    step: 1.0,
                    ..gd_options
                },
                Backtracking::armijo(),
            )),
        ),
        (
            "lbfgs",
            Box::new(Lbfgs::new(LbfgsOptions {
                grad_tol: 0.0,
                rel_tol: 0.0,
                max_iter,
                max_evals: c.max_evals,
                time_budget: c.time_budget,
                bounds: c.bounds.clone(),
                ..LbfgsOptions::default()
            })),
        ),
        (
            "adam",
            Box::new(Adam::new(AdamOptions {
                grad_tol: 0.0,
                max_iter,
                max_evals: c.max_evals,
                time_budget: c.time_budget,
                bounds: c.bounds.clone(),
                ..AdamOptions::default()
            })),
        ),
    ]
}

fn zero_order_minimizers(
    bounds: Bounds,
    n: usize,
    time_budget: Option<Duration>,
) -> Vec<(&'static str, Box<dyn Minimizer>)> {
    vec![
        (
            "grid",
            Box::new(GridSearch::new(GridSearchOptions {
                n_points: n,
                bounds: Some(bounds.clone()),
                time_budget,
                ..GridSearchOptions::default()
            })),
        ),
        (
            "random",
            Box::new(RandomSearch::new(RandomSearchOptions {
                n_samples: n,
                bounds: Some(bounds),
                time_budget,
                ..RandomSearchOptions::default()
            })),
        ),
    ]
}

#[test]
fn observer_can_stop_every_minimizer() {
    let stop_at_3 = |rec: &IterRecord<'_>| {
        if rec.iteration == 3 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    };
    for (name, mut m) in gradient_minimizers(&Common::default()) {
        let mut observer = stop_at_3;
        let (min, _) = run_counted(
            &mut *m,
            Rosenbrock { n: 2 },
            rosenbrock_start(2),
            &mut observer,
        );
        assert_eq!(min.termination, Termination::StoppedByObserver, "{name}");
        assert_eq!(min.n_iter, 3, "{name}");
    }
    let bounds = Bounds::uniform(1, -2.0, 2.0).unwrap();
    for (name, mut m) in zero_order_minimizers(bounds, 100, None) {
        let mut observer = stop_at_3;
        let (min, _) = run_counted(&mut *m, NonConvex, array![0.0], &mut observer);
        assert_eq!(min.termination, Termination::StoppedByObserver, "{name}");
        assert_eq!((min.n_iter, min.n_evals), (4, 4), "{name}");
    }
    // Stopping at the start point costs one evaluation.
    for (name, mut m) in gradient_minimizers(&Common::default()) {
        let mut stop_now = |_: &IterRecord<'_>| ControlFlow::Break(());
        let (min, _) = run_counted(
            &mut *m,
            Rosenbrock { n: 2 },
            rosenbrock_start(2),
            &mut stop_now,
        );
        assert_eq!((min.n_iter, min.n_evals), (0, 1), "{name}");
        assert_eq!(min.termination, Termination::StoppedByObserver);
    }
}

#[test]
fn time_budget_stops_every_minimizer() {
    let budget = Duration::from_millis(50);
    let pause = Duration::from_millis(5);
    let c = Common {
        time_budget: Some(budget),
        ..Common::default()
    };
    let mut runs = gradient_minimizers(&c);
    runs.extend(zero_order_minimizers(
        Bounds::uniform(2, -2.0, 2.0).unwrap(),
        1000,
        Some(budget),
    ));
    for (name, mut m) in runs {
        let obj = Sleepy {
            inner: Rosenbrock { n: 2 },
            pause,
        };
        let (min, _) = run_counted(&mut *m, obj, rosenbrock_start(2), &mut NoObserver);
        assert_eq!(min.termination, Termination::TimeBudget, "{name}");
        // No call starts after 50 ms and each takes at least 5 ms: at most 10 calls start.
        assert!(min.n_evals <= 10, "{name}: {} calls", min.n_evals);
        assert!(min.elapsed_secs >= budget.as_secs_f64(), "{name}");
        assert!(min.elapsed_secs < 2.0, "{name}: {} s", min.elapsed_secs);
    }
}

#[test]
fn max_evals_is_a_hard_cap() {
    for max_evals in [1, 2, 7, 20] {
        let c = Common {
            max_evals: Some(max_evals),
            ..Common::default()
        };
        for (name, mut m) in gradient_minimizers(&c) {
            let (min, _) = run_counted(
                &mut *m,
                Rosenbrock { n: 2 },
                rosenbrock_start(2),
                &mut NoObserver,
            );
            assert_eq!(min.termination, Termination::MaxEvals, "{name}");
            assert!(
                min.n_evals <= max_evals,
                "{name}: {} > {max_evals}",
                min.n_evals
            );
            if name == "gd" || name == "adam" {
                assert_eq!(
                    (min.n_evals, min.n_iter),
                    (max_evals, max_evals - 1),
                    "{name}"
                );
            }
        }
    }
    let mut grid = GridSearch::new(GridSearchOptions {
        n_points: 10,
        max_evals: Some(5),
        bounds: Some(Bounds::uniform(2, -2.0, 2.0).unwrap()),
        ..GridSearchOptions::default()
    });
    let (min, _) = run_counted(
        &mut grid,
        Rosenbrock { n: 2 },
        array![0.0, 0.0],
        &mut NoObserver,
    );
    assert_eq!((min.termination, min.n_evals), (Termination::MaxEvals, 5));
}

#[test]
fn max_iter_stops_after_exactly_max_iter_steps() {
    for max_iter in [0, 1, 3] {
        let c = Common {
            max_iter: Some(max_iter),
            ..Common::default()
        };
        for (name, mut m) in gradient_minimizers(&c) {
            let mut trace = Trace::default();
            let (min, _) = run_counted(
                &mut *m,
                Rosenbrock { n: 2 },
                rosenbrock_start(2),
                &mut trace,
            );
            assert_eq!(min.termination, Termination::MaxIter, "{name}");
            assert_eq!(min.n_iter, max_iter, "{name}");
            assert_eq!(trace.rows.len(), max_iter + 1, "{name}");
        }
    }
}

#[test]
fn relative_decrease_stops_gradient_descent() {
    let rel_tol = 1e-4;
    let mut gd = GradientDescent::new(GradientDescentOptions {
        step: 0.01,
        rel_tol,
        grad_tol: 0.0,
        max_iter: 100_000,
        ..GradientDescentOptions::default()
    });
    let mut trace = Trace::default();
    let (min, _) = run_counted(&mut gd, Quadratic::new(), Array1::zeros(5), &mut trace);
    assert_eq!(min.termination, Termination::ConvergedRelativeDecrease);
    let n = trace.rows.len();
    let (prev, last) = (trace.rows[n - 2].value, trace.rows[n - 1].value);
    assert!((prev - last).abs() <= rel_tol * prev.abs().max(last.abs()).max(1.0));
    let before = trace.rows[n - 3].value;
    assert!((before - prev).abs() > rel_tol * before.abs().max(prev.abs()).max(1.0));
}

#[test]
fn non_finite_start_point_is_an_error() {
    for (name, mut m) in gradient_minimizers(&Common::default()) {
        let mut obj = Counting::new(NanBeyond { limit: 0.0 });
        let r = m.minimize(&mut obj, array![1.0], &mut NoObserver);
        assert!(
            matches!(r, Err(OuterError::NonFiniteValue { .. })),
            "{name}: {r:?}"
        );
        assert_eq!(obj.counters.n_evals(), 1);
    }
    struct NanGrad;
    impl Objective for NanGrad {
        fn dim(&self) -> usize {
            2
        }
        fn value_and_grad(
            &mut self,
            _x: ArrayView1<'_, f64>,
        ) -> Result<(f64, Array1<f64>), OuterError> {
            Ok((1.0, array![0.0, f64::INFINITY]))
        }
    }
    for (name, mut m) in gradient_minimizers(&Common::default()) {
        let r = m.minimize(&mut NanGrad, array![0.0, 0.0], &mut NoObserver);
        assert!(
            matches!(r, Err(OuterError::NonFiniteGradient { n_non_finite: 1 })),
            "{name}: {r:?}"
        );
    }
    // Zero-order searches skip NaN points, and fail only if every point is NaN.
    let bounds = Bounds::uniform(1, 1.0, 2.0).unwrap();
    for (name, mut m) in zero_order_minimizers(bounds, 5, None) {
        let r = m.minimize(&mut NanBeyond { limit: 0.0 }, array![0.0], &mut NoObserver);
        assert!(
            matches!(r, Err(OuterError::NonFiniteValue { .. })),
            "{name}: {r:?}"
        );
    }
}

#[test]
fn non_finite_value_at_a_new_point_ends_the_run_at_the_best_point() {
    // (x − 2)², NaN beyond 0.5. From 0, the fixed step 1 along −∇f = 4 lands at 4.
    let mut gd = GradientDescent::new(GradientDescentOptions {
        step: 1.0,
        ..GradientDescentOptions::default()
    });
    let (min, _) = run_counted(
        &mut gd,
        NanBeyond { limit: 0.5 },
        array![0.0],
        &mut NoObserver,
    );
    assert_eq!(min.termination, Termination::LineSearchFailed);
    assert_abs_diff_eq!(min.x, array![0.0]);
    assert_abs_diff_eq!(min.value, 4.0);
    // Adam with lr = 1 moves to x = 1.
    let mut adam = Adam::new(AdamOptions {
        lr: 1.0,
        ..AdamOptions::default()
    });
    let (min, _) = run_counted(
        &mut adam,
        NanBeyond { limit: 0.5 },
        array![0.0],
        &mut NoObserver,
    );
    assert_eq!(min.termination, Termination::NonFiniteValue);
    assert_abs_diff_eq!(min.x, array![0.0]);
    assert_eq!(min.n_iter, 0);
    // A line search shrinks instead, and the run goes on.
    let mut lbfgs = Lbfgs::default();
    let (min, _) = run_counted(
        &mut lbfgs,
        NanBeyond { limit: 0.5 },
        array![0.0],
        &mut NoObserver,
    );
    assert!(min.value.is_finite() && min.value < 4.0 && min.x[0] <= 0.5);
}

#[test]
fn bounds_are_respected_and_the_start_point_is_projected() {
    let bounds = Bounds::new(array![-1.0, 0.5], array![1.0, 2.0]).unwrap();
    let c = Common {
        bounds: Some(bounds.clone()),
        max_iter: Some(2000),
        ..Common::default()
    };
    for (name, mut m) in gradient_minimizers(&c) {
        let mut first = None;
        let mut inside = |rec: &IterRecord<'_>| {
            assert!(
                bounds.contains(rec.x),
                "{name}: iterate {} outside: {}",
                rec.iteration,
                rec.x
            );
            first.get_or_insert_with(|| rec.x.to_owned());
            ControlFlow::Continue(())
        };
        // Rosenbrock's minimizer (1, 1) is inside; the start (−3, 5) is outside.
        let (min, _) = run_counted(&mut *m, Rosenbrock { n: 2 }, array![-3.0, 5.0], &mut inside);
        assert_abs_diff_eq!(first.unwrap(), array![-1.0, 2.0]);
        assert!(bounds.contains(min.x.view()), "{name}");
    }
    // Zero-order points stay in the box too.
    for (name, mut m) in zero_order_minimizers(bounds.clone(), 30, None) {
        let mut inside = |rec: &IterRecord<'_>| {
            assert!(bounds.contains(rec.x), "{name}: point outside: {}", rec.x);
            ControlFlow::Continue(())
        };
        run_counted(&mut *m, Rosenbrock { n: 2 }, array![0.0, 0.0], &mut inside);
    }
}

/// The bound is active in one coordinate only: the free coordinate still converges.
#[test]
fn partially_active_bounds_converge() {
    // Rosenbrock with x₁ ≤ 0.5: the constrained minimizer has x₁ = 0.5 and x₀ ≈ 0.7.
    let bounds = Bounds::new(array![-2.0, -2.0], array![2.0, 0.5]).unwrap();
    let mut lbfgs = Lbfgs::new(LbfgsOptions {
        bounds: Some(bounds),
        rel_tol: 0.0,
        max_iter: 500,
        ..LbfgsOptions::default()
    });
    let (min, _) = run_counted(
        &mut lbfgs,
        Rosenbrock { n: 2 },
        rosenbrock_start(2),
        &mut NoObserver,
    );
    assert_eq!(min.termination, Termination::ConvergedGradNorm, "{min:?}");
    assert_abs_diff_eq!(min.x[1], 0.5);
    // ∂f/∂x₀ = −400 x₀ (x₁ − x₀²) − 2 (1 − x₀) = 0 at x₁ = 0.5.
    let x0 = min.x[0];
    assert_abs_diff_eq!(
        -400.0 * x0 * (0.5 - x0 * x0) - 2.0 * (1.0 - x0),
        0.0,
        epsilon = 1e-6
    );
}

fn invalid_name(r: Result<ho_outer::Minimum, OuterError>) -> &'static str {
    match r {
        Err(OuterError::InvalidOption { name, .. }) => name,
        other => panic!("expected InvalidOption, got {other:?}"),
    }
}

#[test]
fn invalid_options_are_rejected_before_any_evaluation() {
    let gd = GradientDescentOptions::default();
    let lb = LbfgsOptions::default();
    let ad = AdamOptions::default();
    let cases: Vec<(&str, Box<dyn Minimizer>)> = vec![
        (
            "step",
            Box::new(GradientDescent::new(GradientDescentOptions {
                step: 0.0,
                ..gd.clone()
            })),
        ),
        (
            "step",
            Box::new(GradientDescent::new(GradientDescentOptions {
                step: f64::NAN,
                ..gd.clone()
            })),
        ),
        (
            "grad_tol",
            Box::new(GradientDescent::new(GradientDescentOptions {
                grad_tol: -1.0,
                ..gd.clone()
            })),
        ),
        (
            "rel_tol",
            Box::new(GradientDescent::new(GradientDescentOptions {
                rel_tol: 1.0,
                ..gd.clone()
            })),
        ),
        (
            "max_evals",
            Box::new(GradientDescent::new(GradientDescentOptions {
                max_evals: Some(0),
                ..gd.clone()
            })),
        ),
        (
            "c1",
            Box::new(GradientDescent::with_line_search(
                gd.clone(),
                Backtracking::new(Default::default(), ho_outer::Armijo { c1: 2.0 }),
            )),
        ),
        (
            "memory",
            Box::new(Lbfgs::new(LbfgsOptions {
                memory: 0,
                ..lb.clone()
            })),
        ),
        (
            "grad_tol",
            Box::new(Lbfgs::new(LbfgsOptions {
                grad_tol: f64::NAN,
                ..lb.clone()
            })),
        ),
        (
            "rel_tol",
            Box::new(Lbfgs::new(LbfgsOptions {
                rel_tol: -0.1,
                ..lb.clone()
            })),
        ),
        (
            "lr",
            Box::new(Adam::new(AdamOptions {
                lr: -1.0,
                ..ad.clone()
            })),
        ),
        (
            "beta1",
            Box::new(Adam::new(AdamOptions {
                beta1: 1.0,
                ..ad.clone()
            })),
        ),
        (
            "beta2",
            Box::new(Adam::new(AdamOptions {
                beta2: -0.5,
                ..ad.clone()
            })),
        ),
        (
            "eps",
            Box::new(Adam::new(AdamOptions {
                eps: 0.0,
                ..ad.clone()
            })),
        ),
        (
            "n_points",
            Box::new(GridSearch::new(GridSearchOptions {
                n_points: 0,
                ..Default::default()
            })),
        ),
        (
            "max_evals",
            Box::new(GridSearch::new(GridSearchOptions {
                max_evals: Some(0),
                bounds: Some(Bounds::uniform(2, 0.0, 1.0).unwrap()),
                ..Default::default()
            })),
        ),
        (
            "n_samples",
            Box::new(RandomSearch::new(RandomSearchOptions {
                n_samples: 0,
                ..Default::default()
            })),
        ),
    ];
    for (expected, mut m) in cases {
        let mut obj = Counting::new(Rosenbrock { n: 2 });
        assert_eq!(
            invalid_name(m.minimize(&mut obj, array![0.0, 0.0], &mut NoObserver)),
            expected
        );
        assert_eq!(
            obj.counters.n_evals(),
            0,
            "{expected}: evaluated before validation"
        );
    }
}

#[test]
fn invalid_bounds_and_dimensions_are_rejected() {
    let swapped = Bounds {
        lower: array![0.0, 1.0],
        upper: array![1.0, 0.0],
    };
    let short = Bounds::uniform(1, 0.0, 1.0).unwrap();
    for (bounds, check) in [
        (
            swapped.clone(),
            (|r: &Result<_, _>| matches!(r, Err(OuterError::InvalidBounds { index: 1, .. })))
                as fn(&Result<ho_outer::Minimum, OuterError>) -> bool,
        ),
        (short.clone(), |r| {
            matches!(
                r,
                Err(OuterError::DimensionMismatch {
                    expected: 2,
                    found: 1
                })
            )
        }),
    ] {
        let c = Common {
            bounds: Some(bounds.clone()),
            ..Common::default()
        };
        let mut runs = gradient_minimizers(&c);
        runs.extend(zero_order_minimizers(bounds, 3, None));
        for (name, mut m) in runs {
            let r = m.minimize(&mut Rosenbrock { n: 2 }, array![0.0, 0.0], &mut NoObserver);
            assert!(check(&r), "{name}: {r:?}");
        }
    }
    // Zero-order searches need bounds, and finite ones.
    let r = GridSearch::default().minimize(&mut NonConvex, array![0.0], &mut NoObserver);
    assert!(matches!(
        r,
        Err(OuterError::MissingOption { name: "bounds" })
    ));
    let r = RandomSearch::default().minimize(&mut NonConvex, array![0.0], &mut NoObserver);
    assert!(matches!(
        r,
        Err(OuterError::MissingOption { name: "bounds" })
    ));
    let half_line = Bounds::uniform(1, 0.0, f64::INFINITY).unwrap();
    for (name, mut m) in zero_order_minimizers(half_line, 3, None) {
        let r = m.minimize(&mut NonConvex, array![0.0], &mut NoObserver);
        assert!(
            matches!(r, Err(OuterError::InvalidBounds { index: 0, .. })),
            "{name}: {r:?}"
        );
    }
    // A start point of the wrong length.
    let mut runs = gradient_minimizers(&Common::default());
    runs.extend(zero_order_minimizers(
        Bounds::uniform(2, 0.0, 1.0).unwrap(),
        3,
        None,
    ));
    for (name, mut m) in runs {
        let r = m.minimize(
            &mut Rosenbrock { n: 2 },
            array![0.0, 0.0, 0.0],
            &mut NoObserver,
        );
        assert!(
            matches!(
                r,
                Err(OuterError::DimensionMismatch {
                    expected: 2,
                    found: 3
                })
            ),
            "{name}: {r:?}"
        );
    }
}

/// Fails on its `fail_at`-th call, with an error type `ho-outer` does not know.
struct Failing {
    calls: usize,
    fail_at: usize,
}

impl Objective for Failing {
    fn dim(&self) -> usize {
        2
    }

    fn value_and_grad(&mut self, x: ArrayView1<'_, f64>) -> Result<(f64, Array1<f64>), OuterError> {
        self.calls += 1;
        if self.calls == self.fail_at {
            return Err(OuterError::objective(std::io::Error::other(
                "inner solver diverged",
            )));
        }
        Rosenbrock { n: 2 }.value_and_grad(x)
    }
}

#[test]
fn objective_errors_are_passed_through() {
    let mut runs = gradient_minimizers(&Common::default());
    runs.extend(zero_order_minimizers(
        Bounds::uniform(2, 0.0, 1.0).unwrap(),
        10,
        None,
    ));
    for (name, mut m) in runs {
        let mut obj = Failing {
            calls: 0,
            fail_at: 3,
        };
        let r = m.minimize(&mut obj, array![0.0, 0.0], &mut NoObserver);
        match r {
            Err(e @ OuterError::Objective(_)) => {
                assert_eq!(
                    e.source().unwrap().to_string(),
                    "inner solver diverged",
                    "{name}"
                );
            }
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn wrong_gradient_length_is_an_error() {
    struct Short;
    impl Objective for Short {
        fn dim(&self) -> usize {
            2
        }
        fn value_and_grad(
            &mut self,
            _x: ArrayView1<'_, f64>,
        ) -> Result<(f64, Array1<f64>), OuterError> {
            Ok((1.0, array![1.0]))
        }
    }
    for (name, mut m) in gradient_minimizers(&Common::default()) {
        let r = m.minimize(&mut Short, array![0.0, 0.0], &mut NoObserver);
        assert!(
            matches!(
                r,
                Err(OuterError::DimensionMismatch {
                    expected: 2,
                    found: 1
                })
            ),
            "{name}: {r:?}"
        );
    }
}

/// Wraps a line search: records the directions it is given and fails on chosen calls.
struct Flaky<L> {
    inner: L,
    fail_on: Vec<usize>,
    calls: usize,
    dirs: Vec<(Array1<f64>, Array1<f64>)>,
}

impl<L: LineSearch> LineSearch for Flaky<L> {
    fn search(
        &mut self,
        obj: &mut dyn Objective,
        x: ArrayView1<'_, f64>,
        value: f64,
        grad: ArrayView1<'_, f64>,
        dir: ArrayView1<'_, f64>,
    ) -> Result<Step, OuterError> {
        self.calls += 1;
        self.dirs.push((grad.to_owned(), dir.to_owned()));
        if self.fail_on.contains(&self.calls) {
            return Err(OuterError::LineSearchFailed {
                n_trials: 0,
                alpha: 1.0,
            });
        }
        self.inner.search(obj, x, value, grad, dir)
    }
}

#[test]
fn lbfgs_restarts_along_steepest_descent_after_a_failed_line_search() {
    let flaky = Flaky {
        inner: Backtracking::wolfe(),
        fail_on: vec![4],
        calls: 0,
        dirs: Vec::new(),
    };
    let options = LbfgsOptions {
        rel_tol: 0.0,
        ..LbfgsOptions::default()
    };
    let mut lbfgs = Lbfgs::with_line_search(options, flaky);
    let (min, _) = run_counted(
        &mut lbfgs,
        Quadratic::new(),
        Array1::zeros(5),
        &mut NoObserver,
    );
    assert_eq!(min.termination, Termination::ConvergedGradNorm);
    let dirs = &lbfgs.line_search.dirs;
    // Call 4 (a quasi-Newton direction) failed; call 5 retried from the same point along
    // −∇f / max(1, ‖∇f‖).
    let (g4, d4) = &dirs[3];
    let (g5, d5) = &dirs[4];
    assert_abs_diff_eq!(g4, g5);
    let steepest = -g5 / g5.dot(g5).sqrt().max(1.0);
    assert_abs_diff_eq!(d5, &steepest, epsilon = 1e-14);
    assert!(
        (d4 - &steepest).iter().any(|e| e.abs() > 1e-6),
        "call 4 was not quasi-Newton"
    );
    // After the restart the memory fills again: call 6 is not steepest descent.
    let (g6, d6) = &dirs[5];
    let steepest6 = -g6 / g6.dot(g6).sqrt().max(1.0);
    assert!((d6 - &steepest6).iter().any(|e| e.abs() > 1e-6));
}

#[test]
fn lbfgs_reports_a_failed_line_search_along_steepest_descent() {
    let flaky = Flaky {
        inner: Backtracking::wolfe(),
        fail_on: vec![1],
        calls: 0,
        dirs: Vec::new(),
    };
    let mut lbfgs = Lbfgs::with_line_search(LbfgsOptions::default(), flaky);
    let (min, _) = run_counted(
        &mut lbfgs,
        Quadratic::new(),
        Array1::zeros(5),
        &mut NoObserver,
    );
    assert_eq!(min.termination, Termination::LineSearchFailed);
    assert_eq!((min.n_iter, min.n_evals), (0, 1));
    assert_abs_diff_eq!(min.x, Array1::zeros(5));
}

/// `100 + (x − 1)²/4` with its value rounded to multiples of 1e-9 (a bilevel value is only as
/// exact as its inner solve) and a gradient off by up to 1e-6 (an inexact hypergradient).
struct NoisyParabola;

impl Objective for NoisyParabola {
    fn dim(&self) -> usize {
        1
    }

    fn value_and_grad(&mut self, x: ArrayView1<'_, f64>) -> Result<(f64, Array1<f64>), OuterError> {
        let g = 0.5 * (x[0] - 1.0) + 1e-6 * (1e6 * x[0]).sin();
        Ok((self.value(x)?, array![g]))
    }

    fn value(&mut self, x: ArrayView1<'_, f64>) -> Result<f64, OuterError> {
        let d = x[0] - 1.0;
        Ok(((100.0 + 0.25 * d * d) * 1e9).round() * 1e-9)
    }
}

#[test]
fn lbfgs_stops_when_its_model_predicts_less_than_the_value_tolerance() {
    // rel_tol·|f| = 1e-8. The first steps change the value by 3e-6 and ~1e-6 (nearly
    // stalled); then the quasi-Newton model predicts a decrease below 1e-8, where a line
    // search would only compare rounded values: the run ends before it, although the last
    // realized change was still above the tolerance.
    let rel_tol = 1e-10;
    let mut lbfgs = Lbfgs::new(LbfgsOptions {
        grad_tol: 0.0,
        rel_tol,
        max_iter: 200,
        ..LbfgsOptions::default()
    });
    let mut trace = Trace::default();
    let (min, _) = run_counted(&mut lbfgs, NoisyParabola, array![1.004], &mut trace);
    assert_eq!(min.termination, Termination::ConvergedRelativeDecrease);
    let n = trace.rows.len();
    let (prev, last) = (trace.rows[n - 2].value, trace.rows[n - 1].value);
    assert!(
        (prev - last).abs() > rel_tol * prev.abs(),
        "{prev} → {last}"
    );
    assert!(min.n_evals <= 6, "{} evaluations", min.n_evals);
    assert!((min.x[0] - 1.0).abs() <= 1e-4, "x = {}", min.x[0]);
}
