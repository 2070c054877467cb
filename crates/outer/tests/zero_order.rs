//! Grid and random search: visiting order, best point, reproducibility, value-only calls.

mod common;

use std::ops::ControlFlow;

use approx::assert_abs_diff_eq;
use common::*;
use ho_outer::{
    Bounds, GridSearch, GridSearchOptions, IterRecord, NoObserver, RandomSearch,
    RandomSearchOptions, Termination,
};
use ndarray::{array, Array1};

fn grid(n_points: usize, bounds: Bounds) -> GridSearch {
    GridSearch::new(GridSearchOptions {
        n_points,
        bounds: Some(bounds),
        ..GridSearchOptions::default()
    })
}

fn random(n_samples: usize, seed: u64, bounds: Bounds) -> RandomSearch {
    RandomSearch::new(RandomSearchOptions {
        n_samples,
        seed,
        bounds: Some(bounds),
        ..RandomSearchOptions::default()
    })
}

/// Records every point a search evaluates, with its value.
fn recorder(
    points: &mut Vec<(Array1<f64>, f64)>,
) -> impl FnMut(&IterRecord<'_>) -> ControlFlow<()> + '_ {
    |rec| {
        assert!(rec.grad_norm.is_none());
        assert_eq!(rec.n_grad_evals, 0);
        points.push((rec.x.to_owned(), rec.value));
        ControlFlow::Continue(())
    }
}

#[test]
fn grid_1d_runs_from_the_upper_bound_down() {
    let (lo, hi) = (-7.0, -2.0);
    let mut points = Vec::new();
    let (min, counted) = run_counted(
        &mut grid(11, Bounds::uniform(1, lo, hi).unwrap()),
        NonConvex,
        array![0.0],
        &mut recorder(&mut points),
    );
    assert_eq!(min.termination, Termination::SearchExhausted);
    assert_eq!((min.n_iter, min.n_evals, min.n_grad_evals), (11, 11, 0));
    assert_eq!(counted.counters.n_value_and_grad, 0);
    let xs: Vec<f64> = points.iter().map(|(x, _)| x[0]).collect();
    assert_abs_diff_eq!(xs[0], hi);
    assert_abs_diff_eq!(xs[10], lo);
    for (j, x) in xs.iter().enumerate() {
        assert_abs_diff_eq!(*x, hi - 0.5 * j as f64, epsilon = 1e-12);
    }
    // f decreases on [−7, −2] (towards its minimizer −1.3): the best is the upper end.
    assert_abs_diff_eq!(min.x[0], hi);
}

#[test]
fn single_point_grid_is_the_upper_corner() {
    let bounds = Bounds::new(array![-1.0, -3.0], array![1.0, 2.0]).unwrap();
    let (min, _) = run_counted(
        &mut grid(1, bounds),
        Rosenbrock { n: 2 },
        array![0.0, 0.0],
        &mut NoObserver,
    );
    assert_abs_diff_eq!(min.x, array![1.0, 2.0]);
    assert_eq!(min.n_evals, 1);
}

#[test]
fn grid_2d_is_a_snake_through_the_tensor_grid() {
    let n = 5;
    let bounds = Bounds::new(array![0.0, -1.0], array![2.0, 1.0]).unwrap();
    let steps = [0.5, 0.5];
    let mut points = Vec::new();
    let (min, _) = run_counted(
        &mut grid(n, bounds),
        Rosenbrock { n: 2 },
        array![0.0, 0.0],
        &mut recorder(&mut points),
    );
    assert_eq!(min.n_evals, n * n);
    assert_abs_diff_eq!(points[0].0, array![2.0, 1.0]);
    // Consecutive points differ by one grid step in exactly one coordinate.
    for w in points.windows(2) {
        let d = &w[1].0 - &w[0].0;
        let moved: Vec<usize> = (0..2).filter(|&i| d[i].abs() > 1e-12).collect();
        assert_eq!(moved.len(), 1, "{} -> {}", w[0].0, w[1].0);
        assert_abs_diff_eq!(d[moved[0]].abs(), steps[moved[0]], epsilon = 1e-12);
    }
    // All n² points, each once.
    let mut keys: Vec<(i64, i64)> = points
        .iter()
        .map(|(x, _)| ((x[0] * 2.0).round() as i64, (x[1] * 2.0).round() as i64))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), n * n);
    // The best reported is the best evaluated: (1, 1), on the grid.
    assert_abs_diff_eq!(min.x, array![1.0, 1.0], epsilon = 1e-12);
    assert_abs_diff_eq!(min.value, 0.0, epsilon = 1e-20);
}

#[test]
fn grid_finds_the_global_minimum_of_the_non_convex_function() {
    let (min, _) = run_counted(
        &mut grid(401, Bounds::uniform(1, -2.0, 2.0).unwrap()),
        NonConvex,
        array![2.0],
        &mut NoObserver,
    );
    // Grid spacing 0.01.
    assert_abs_diff_eq!(min.x[0], X_GLOBAL, epsilon = 0.005);
    assert!(min.value - F_GLOBAL < 15.0 * 0.005 * 0.005);
}

#[test]
fn grid_on_the_quadratic_and_rosenbrock() {
    // Quadratic: c = (1, −2, 3, −4, 5) lies on the grid of [−5, 5]⁵ with 11 points per axis.
    let (min, _) = run_counted(
        &mut grid(11, Bounds::uniform(5, -5.0, 5.0).unwrap()),
        Quadratic::new(),
        Array1::zeros(5),
        &mut NoObserver,
    );
    assert_eq!(min.n_evals, 11usize.pow(5));
    assert_abs_diff_eq!(min.x, array![1.0, -2.0, 3.0, -4.0, 5.0], epsilon = 1e-12);
    assert_abs_diff_eq!(min.value, 0.0, epsilon = 1e-20);
    // Rosenbrock 10-D: the grid {2, 1, 0} per axis (3¹⁰ = 59049 points) contains (1, …, 1).
    let (min, _) = run_counted(
        &mut grid(3, Bounds::uniform(10, 0.0, 2.0).unwrap()),
        Rosenbrock { n: 10 },
        Array1::zeros(10),
        &mut NoObserver,
    );
    assert_eq!(min.n_evals, 3usize.pow(10));
    assert_abs_diff_eq!(min.x, Array1::ones(10));
    assert_abs_diff_eq!(min.value, 0.0);
}

#[test]
fn random_search_is_reproducible_and_reports_its_best_point() {
    let bounds = Bounds::new(array![-2.0, -1.0], array![2.0, 3.0]).unwrap();
    let run = |seed| {
        let mut points = Vec::new();
        let (min, counted) = run_counted(
            &mut random(200, seed, bounds.clone()),
            Rosenbrock { n: 2 },
            array![0.0, 0.0],
            &mut recorder(&mut points),
        );
        assert_eq!(counted.counters.n_value_and_grad, 0);
        (min, points)
    };
    let (a, points_a) = run(7);
    let (b, points_b) = run(7);
    let (c, _) = run(8);
    assert_abs_diff_eq!(a.x, b.x);
    assert_abs_diff_eq!(a.value, b.value);
    for ((xa, _), (xb, _)) in points_a.iter().zip(&points_b) {
        assert_abs_diff_eq!(xa, xb);
    }
    assert_eq!(points_a.len(), 200);
    assert_eq!(points_a.len(), points_b.len());
    assert!(
        (&a.x - &c.x).iter().any(|d| d.abs() > 0.0),
        "different seeds, same best point"
    );
    // All points in the box, and the best one reported.
    for (x, _) in &points_a {
        assert!(bounds.contains(x.view()));
    }
    let best = points_a
        .iter()
        .map(|(_, v)| *v)
        .fold(f64::INFINITY, f64::min);
    assert_abs_diff_eq!(a.value, best);
    assert_eq!((a.n_iter, a.n_evals, a.n_grad_evals), (200, 200, 0));
    assert_eq!(a.termination, Termination::SearchExhausted);
    assert!(a.grad_norm.is_none());
    // 200 samples in this box land near the valley floor (f ≤ 0.2; f = 0 only at (1, 1)).
    assert!(a.value < 0.2, "value {}", a.value);
}

#[test]
fn random_search_on_the_non_convex_function_and_rosenbrock_10d() {
    let (min, _) = run_counted(
        &mut random(200, 1, Bounds::uniform(1, -2.0, 2.0).unwrap()),
        NonConvex,
        array![0.0],
        &mut NoObserver,
    );
    assert_abs_diff_eq!(min.x[0], X_GLOBAL, epsilon = 0.05);
    assert!(min.value - F_GLOBAL < 15.0 * 0.05 * 0.05);
    // In 10-D random search is hopeless; it must still report the best of its samples.
    let mut points = Vec::new();
    let (min, _) = run_counted(
        &mut random(500, 3, Bounds::uniform(10, -2.0, 2.0).unwrap()),
        Rosenbrock { n: 10 },
        Array1::zeros(10),
        &mut recorder(&mut points),
    );
    let best = points.iter().min_by(|a, b| a.1.total_cmp(&b.1)).unwrap();
    assert_abs_diff_eq!(min.x, best.0);
    assert_abs_diff_eq!(min.value, best.1);
}

#[test]
fn nan_points_are_skipped() {
    // (x − 2)², NaN beyond 0.5, searched on [−1, 1]: the best is the largest finite point.
    let mut points = Vec::new();
    let (min, _) = run_counted(
        &mut grid(21, Bounds::uniform(1, -1.0, 1.0).unwrap()),
        NanBeyond { limit: 0.5 },
        array![0.0],
        &mut recorder(&mut points),
    );
    assert!(points[0].1.is_nan());
    assert_eq!(min.termination, Termination::SearchExhausted);
    assert_abs_diff_eq!(min.x[0], 0.5, epsilon = 1e-12);
    assert_abs_diff_eq!(min.value, 2.25, epsilon = 1e-12);
}
