//! Line searches on their own: acceptance conditions, which objective method each calls,
//! NaN handling, failures, option checks.

mod common;

use approx::assert_abs_diff_eq;
use common::*;
use ho_outer::{
    AcceptanceRule, Armijo, Backtracking, BacktrackingOptions, Counting, FixedStep, LineSearch,
    Objective, OuterError, StrongWolfe, Trial, Verdict, Wolfe,
};
use ndarray::{array, Array1};
use proptest::prelude::*;

/// Value and gradient of `obj` at `x`, uncounted.
fn at(obj: &mut impl Objective, x: &Array1<f64>) -> (f64, Array1<f64>) {
    obj.value_and_grad(x.view()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Armijo never accepts an increase, calls only `value`, once per trial, and the accepted
    /// point satisfies sufficient decrease.
    #[test]
    fn armijo_never_accepts_an_increase(
        x0 in -2.0..2.0_f64, x1 in -1.0..3.0_f64,
        d0 in -1.0..1.0_f64, d1 in -1.0..1.0_f64, scale in 0.01..100.0_f64,
    ) {
        let x = array![x0, x1];
        let (f0, g0) = at(&mut Rosenbrock { n: 2 }, &x);
        let mut dir = array![d0, d1] * scale;
        let slope = g0.dot(&dir);
        prop_assume!(slope.abs() > 1e-8);
        if slope > 0.0 {
            dir = -dir;
        }
        let mut obj = Counting::new(Rosenbrock { n: 2 });
        let mut ls = Backtracking::new(BacktrackingOptions { max_trials: 60, ..Default::default() }, Armijo::default());
        let step = ls.search(&mut obj, x.view(), f0, g0.view(), dir.view()).unwrap();
        prop_assert!(step.value <= f0, "increase: {} > {}", step.value, f0);
        prop_assert!(step.value <= f0 + 1e-4 * step.alpha * g0.dot(&dir));
        prop_assert!(step.grad.is_none());
        prop_assert_eq!(obj.counters.n_value_and_grad, 0);
        prop_assert_eq!(obj.counters.n_value, step.n_trials);
        // The returned point is x + alpha dir, and its value is f there.
        let expected = &x + &(step.alpha * &dir);
        prop_assert!((&step.x - &expected).iter().all(|e| e.abs() <= 1e-12));
        prop_assert_eq!(step.value.to_bits(), at(&mut Rosenbrock { n: 2 }, &step.x).0.to_bits());
    }

    /// The Wolfe searches return points that satisfy their conditions, with the gradient.
    #[test]
    fn wolfe_steps_satisfy_the_wolfe_conditions(
        x0 in -2.0..2.0_f64, x1 in -1.0..3.0_f64, scale in 0.001..10.0_f64, strong in any::<bool>(),
    ) {
        let x = array![x0, x1];
        let (f0, g0) = at(&mut Rosenbrock { n: 2 }, &x);
        prop_assume!(g0.dot(&g0) > 1e-12);
        let dir = -scale * &g0;
        let slope0 = g0.dot(&dir);
        let (c1, c2) = (1e-4, 0.9);
        let mut obj = Counting::new(Rosenbrock { n: 2 });
        let options = BacktrackingOptions { max_trials: 60, ..Default::default() };
        let step = if strong {
            Backtracking::new(options, StrongWolfe { c1, c2 }).search(&mut obj, x.view(), f0, g0.view(), dir.view())
        } else {
            Backtracking::new(options, Wolfe { c1, c2 }).search(&mut obj, x.view(), f0, g0.view(), dir.view())
        }.unwrap();
        let g = step.grad.clone().expect("Wolfe returns the gradient");
        let slope = g.dot(&dir);
        prop_assert!(step.value <= f0 + c1 * step.alpha * slope0);
        prop_assert!(slope >= c2 * slope0);
        if strong {
            prop_assert!(slope.abs() <= c2 * slope0.abs());
        }
        prop_assert_eq!(obj.counters.n_value, 0);
        prop_assert_eq!(obj.counters.n_value_and_grad, step.n_trials);
        let (_, g_true) = at(&mut Rosenbrock { n: 2 }, &step.x);
        prop_assert!((&g - &g_true).iter().all(|e| e.abs() == 0.0));
    }
}

/// A step that is too short for the curvature condition is lengthened.
#[test]
fn wolfe_expands_short_steps() {
    // f = (x − 3)², from x = 10 along d = −0.001: t = 1 barely moves, the curvature condition fails.
    let mut obj = Shifted { n: 1 };
    let x = array![10.0];
    let (f0, g0) = at(&mut obj, &x);
    let dir = array![-0.001];
    let step = Backtracking::wolfe()
        .search(&mut obj, x.view(), f0, g0.view(), dir.view())
        .unwrap();
    assert!(step.alpha > 1.0, "alpha = {}", step.alpha);
    assert!(step.n_trials > 1);
}

/// With `max_expand`, a far too short step is extrapolated along the secant of the slope.
#[test]
fn wolfe_extrapolates_far_too_short_steps_by_the_secant_of_the_slope() {
    // f = (x − 3)² from x = 10 along d = −0.001: the slope vanishes at t = 7000. Plain
    // expansion by 4 tries 1, 4, …, 1024 (accepted: 6 trials); the secant of the slope (exact
    // on a quadratic) asks 7000, kept within 64× of each trial: 1, 64, 4096 (accepted).
    let x = array![10.0];
    let dir = array![-0.001];
    let search = |max_expand: f64| {
        let mut obj = Counting::new(Shifted { n: 1 });
        let (f0, g0) = at(&mut Shifted { n: 1 }, &x);
        let options = BacktrackingOptions {
            expand: 4.0,
            max_expand,
            ..Default::default()
        };
        let step = Backtracking::new(options, Wolfe::default())
            .search(&mut obj, x.view(), f0, g0.view(), dir.view())
            .unwrap();
        (step.alpha, step.n_trials)
    };
    assert_eq!(search(0.0), (1024.0, 6));
    assert_eq!(
        search(4.0),
        (1024.0, 6),
        "max_expand = expand: no extrapolation"
    );
    assert_eq!(search(64.0), (4096.0, 3));
    // A wider bound lands on the minimizer along the line.
    let (alpha, trials) = search(1e4);
    assert_abs_diff_eq!(alpha, 7000.0, epsilon = 1e-6);
    assert_eq!(trials, 2);
}

/// A NaN trial value is a failed trial: the step shrinks until the value is finite.
#[test]
fn nan_trials_are_shrunk() {
    // (x − 2)², NaN beyond 0.5; from 0 along −∇f = 4, t = 1 lands at 4 (NaN).
    let mut obj = Counting::new(NanBeyond { limit: 0.5 });
    let x = array![0.0];
    let (f0, g0) = at(&mut NanBeyond { limit: 0.5 }, &x);
    let dir = -&g0;
    for rule in [true, false] {
        let step = if rule {
            Backtracking::armijo().search(&mut obj, x.view(), f0, g0.view(), dir.view())
        } else {
            Backtracking::wolfe().search(&mut obj, x.view(), f0, g0.view(), dir.view())
        }
        .unwrap();
        assert!(step.value.is_finite() && step.value < f0);
        assert!(step.x[0] <= 0.5);
        assert!(step.n_trials >= 4);
    }
}

#[test]
fn ascent_direction_is_rejected_without_evaluating() {
    let mut obj = Counting::new(Shifted { n: 1 });
    let x = array![0.0];
    let (f0, g0) = at(&mut Shifted { n: 1 }, &x);
    for dir in [g0.clone(), array![0.0], array![f64::NAN]] {
        let r = Backtracking::armijo().search(&mut obj, x.view(), f0, g0.view(), dir.view());
        assert!(
            matches!(r, Err(OuterError::NotDescentDirection { .. })),
            "{r:?}"
        );
    }
    assert_eq!(obj.counters.n_evals(), 0);
}

#[test]
fn failure_after_max_trials() {
    // NaN everywhere except at x ≤ −1: no trial along +d can succeed.
    let mut obj = Counting::new(NanBeyond { limit: -1.0 });
    let x = array![-1.0];
    let (f0, g0) = at(&mut NanBeyond { limit: -1.0 }, &x);
    let dir = -&g0;
    let mut ls = Backtracking::new(
        BacktrackingOptions {
            max_trials: 7,
            ..Default::default()
        },
        Armijo::default(),
    );
    let r = ls.search(&mut obj, x.view(), f0, g0.view(), dir.view());
    assert!(
        matches!(r, Err(OuterError::LineSearchFailed { n_trials: 7, .. })),
        "{r:?}"
    );
    assert_eq!(obj.counters.n_value, 7);
}

#[test]
fn fixed_step_makes_one_value_and_grad_call() {
    let mut obj = Counting::new(Shifted { n: 2 });
    let x = array![0.0, 1.0];
    let (f0, g0) = at(&mut Shifted { n: 2 }, &x);
    let dir = -0.1 * &g0;
    let step = FixedStep
        .search(&mut obj, x.view(), f0, g0.view(), dir.view())
        .unwrap();
    assert_abs_diff_eq!(step.alpha, 1.0);
    assert_abs_diff_eq!(step.x, array![0.6, 1.4], epsilon = 1e-15);
    assert!(step.grad.is_some());
    assert_eq!(
        (obj.counters.n_value, obj.counters.n_value_and_grad),
        (0, 1)
    );
    // A non-finite value is never accepted.
    let mut nan = NanBeyond { limit: 0.5 };
    let r = FixedStep.search(
        &mut nan,
        array![0.0].view(),
        4.0,
        array![-4.0].view(),
        array![4.0].view(),
    );
    assert!(matches!(
        r,
        Err(OuterError::LineSearchFailed { n_trials: 1, .. })
    ));
}

#[test]
fn rule_verdicts() {
    let trial = |value: f64, slope: Option<f64>| Trial {
        value0: 1.0,
        slope0: -1.0,
        alpha: 1.0,
        value,
        slope,
    };
    let armijo = Armijo { c1: 0.1 };
    assert_eq!(armijo.verdict(&trial(0.9, None)), Verdict::Accept);
    assert_eq!(armijo.verdict(&trial(0.95, None)), Verdict::TooLong);
    assert_eq!(armijo.verdict(&trial(f64::NAN, None)), Verdict::TooLong);
    assert_eq!(
        armijo.verdict(&trial(f64::NEG_INFINITY, None)),
        Verdict::TooLong
    );
    let wolfe = Wolfe { c1: 0.1, c2: 0.5 };
    assert_eq!(wolfe.verdict(&trial(0.5, Some(-0.9))), Verdict::TooShort);
    assert_eq!(wolfe.verdict(&trial(0.5, Some(-0.1))), Verdict::Accept);
    assert_eq!(wolfe.verdict(&trial(0.5, Some(3.0))), Verdict::Accept);
    assert_eq!(wolfe.verdict(&trial(0.5, Some(f64::NAN))), Verdict::TooLong);
    assert_eq!(wolfe.verdict(&trial(0.5, None)), Verdict::TooLong);
    let strong = StrongWolfe { c1: 0.1, c2: 0.5 };
    assert_eq!(strong.verdict(&trial(0.5, Some(-0.9))), Verdict::TooShort);
    assert_eq!(strong.verdict(&trial(0.5, Some(0.4))), Verdict::Accept);
    assert_eq!(strong.verdict(&trial(0.5, Some(3.0))), Verdict::TooLong);
}

#[test]
fn invalid_line_search_options_are_rejected() {
    let name = |r: Result<(), OuterError>| match r {
        Err(OuterError::InvalidOption { name, .. }) => name,
        other => panic!("expected InvalidOption, got {other:?}"),
    };
    let bt = |o: BacktrackingOptions| Backtracking::new(o, Armijo::default()).validate();
    let d = BacktrackingOptions::default();
    assert_eq!(
        name(bt(BacktrackingOptions {
            initial_step: 0.0,
            ..d
        })),
        "initial_step"
    );
    assert_eq!(
        name(bt(BacktrackingOptions {
            initial_step: f64::INFINITY,
            ..d
        })),
        "initial_step"
    );
    assert_eq!(name(bt(BacktrackingOptions { shrink: 1.0, ..d })), "shrink");
    assert_eq!(
        name(bt(BacktrackingOptions {
            shrink: f64::NAN,
            ..d
        })),
        "shrink"
    );
    assert_eq!(name(bt(BacktrackingOptions { expand: 1.0, ..d })), "expand");
    for bad in [-1.0, f64::NAN, f64::INFINITY] {
        assert_eq!(
            name(bt(BacktrackingOptions {
                max_expand: bad,
                ..d
            })),
            "max_expand"
        );
    }
    assert_eq!(
        name(bt(BacktrackingOptions { max_trials: 0, ..d })),
        "max_trials"
    );
    assert_eq!(name(Armijo { c1: 0.0 }.validate()), "c1");
    assert_eq!(name(Armijo { c1: 1.0 }.validate()), "c1");
    assert_eq!(name(Wolfe { c1: 0.5, c2: 0.4 }.validate()), "c2");
    assert_eq!(name(StrongWolfe { c1: 1e-4, c2: 1.0 }.validate()), "c2");
    assert!(Backtracking::wolfe().validate().is_ok());
    assert!(Backtracking::armijo().validate().is_ok());
}
