//! Per-iteration overhead of the `ho-outer` minimizers.
//!
//! Each minimizer runs `K` iterations (`max_iter = K`, tolerances 0, so it never stops early)
//! on a cheap separable quadratic in dimension 10⁴ — the size of `x` in the matrix-penalty
//! case at p = 140 (p(p−1)/2 = 9730). The throughput is iterations per second, so the time
//! per iteration is `1 / throughput`. `outer/objective` times one `value_and_grad` call: the
//! minimizer's own overhead is the time per iteration minus the objective calls it makes
//! (printed once per minimizer as "calls/iter"). Both must be negligible next to an inner
//! GLASSO solve at p = 140 (milliseconds).
//!
//! The objective is pure Rust (no BLAS), so `OPENBLAS_NUM_THREADS` does not matter here.

// ndarray is built with its `blas` feature in this package (unified through ho-linalg), so
// `dot` calls `cblas_ddot`: link the system OpenBLAS that ho-linalg brings in.
extern crate ho_linalg as _;

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, BatchSize, BenchmarkId, Criterion, Throughput};
use ho_outer::{
    Adam, AdamOptions, Backtracking, Bounds, GradientDescent, GradientDescentOptions, GridSearch,
    GridSearchOptions, Lbfgs, LbfgsOptions, Minimizer, NoObserver, Objective, OuterError,
    RandomSearch, RandomSearchOptions, Termination,
};
use ndarray::{Array1, ArrayView1, Zip};

/// Dimension of `x`.
const DIM: usize = 10_000;
/// Iterations per timed run.
const K: usize = 20;

/// `f(x) = ½ Σᵢ aᵢ (xᵢ − cᵢ)²` with curvatures `aᵢ ∈ [1, 10]`.
struct SeparableQuadratic {
    a: Array1<f64>,
    c: Array1<f64>,
}

impl SeparableQuadratic {
    fn new(dim: usize) -> Self {
        Self {
            a: Array1::from_shape_fn(dim, |i| 1.0 + 9.0 * ((i % 97) as f64) / 96.0),
            c: Array1::from_shape_fn(dim, |i| ((i % 13) as f64) / 13.0 - 0.5),
        }
    }
}

impl Objective for SeparableQuadratic {
    fn dim(&self) -> usize {
        self.a.len()
    }

    fn value_and_grad(&mut self, x: ArrayView1<'_, f64>) -> Result<(f64, Array1<f64>), OuterError> {
        let mut grad = Array1::zeros(x.len());
        let mut value = 0.0;
        Zip::from(&mut grad)
            .and(x)
            .and(&self.a)
            .and(&self.c)
            .for_each(|g, &xi, &ai, &ci| {
                let r = xi - ci;
                *g = ai * r;
                value += 0.5 * ai * r * r;
            });
        Ok((value, grad))
    }

    fn value(&mut self, x: ArrayView1<'_, f64>) -> Result<f64, OuterError> {
        let mut value = 0.0;
        Zip::from(x)
            .and(&self.a)
            .and(&self.c)
            .for_each(|&xi, &ai, &ci| {
                let r = xi - ci;
                value += 0.5 * ai * r * r;
            });
        Ok(value)
    }
}

fn bounds() -> Bounds {
    Bounds::uniform(DIM, -3.0, 3.0).expect("valid box")
}

/// The minimizers, each set to run exactly `K` iterations.
fn minimizers() -> Vec<(&'static str, Box<dyn Minimizer>)> {
    let gd = GradientDescentOptions {
        step: 0.1,
        grad_tol: 0.0,
        max_iter: K,
        ..GradientDescentOptions::default()
    };
    vec![
        ("gd", Box::new(GradientDescent::new(gd.clone()))),
        (
            "gd_armijo",
            Box::new(GradientDescent::with_line_search(
                gd.clone(),
                Backtracking::armijo(),
            )),
        ),
        (
            "gd_bounds",
            Box::new(GradientDescent::new(GradientDescentOptions {
                bounds: Some(bounds()),
                ..gd
            })),
        ),
        (
            "lbfgs",
            Box::new(Lbfgs::new(LbfgsOptions {
                grad_tol: 0.0,
                rel_tol: 0.0,
                max_iter: K,
                ..LbfgsOptions::default()
            })),
        ),
        (
            "adam",
            Box::new(Adam::new(AdamOptions {
                grad_tol: 0.0,
                max_iter: K,
                ..AdamOptions::default()
            })),
        ),
        (
            "grid",
            Box::new(GridSearch::new(GridSearchOptions {
                n_points: 2,
                max_evals: Some(K),
                bounds: Some(bounds()),
                ..GridSearchOptions::default()
            })),
        ),
        (
            "random",
            Box::new(RandomSearch::new(RandomSearchOptions {
                n_samples: K,
                bounds: Some(bounds()),
                ..RandomSearchOptions::default()
            })),
        ),
    ]
}

fn bench_objective(c: &mut Criterion) {
    let mut group = c.benchmark_group("outer/objective");
    let mut obj = SeparableQuadratic::new(DIM);
    let x = Array1::<f64>::zeros(DIM);
    group.throughput(Throughput::Elements(1));
    group.bench_with_input(BenchmarkId::new("value_and_grad", DIM), &x, |b, x| {
        b.iter(|| black_box(obj.value_and_grad(black_box(x.view())).unwrap()))
    });
    group.bench_with_input(BenchmarkId::new("value", DIM), &x, |b, x| {
        b.iter(|| black_box(obj.value(black_box(x.view())).unwrap()))
    });
    group.finish();
}

fn bench_minimizers(c: &mut Criterion) {
    let x0 = Array1::<f64>::zeros(DIM);
    for (name, mut minimizer) in minimizers() {
        let mut obj = SeparableQuadratic::new(DIM);
        // Outside the timing: check that the run makes exactly K iterations.
        let min = minimizer
            .minimize(&mut obj, x0.clone(), &mut NoObserver)
            .expect("minimize");
        assert_eq!(min.n_iter, K, "{name}: {min:?}");
        assert!(
            matches!(
                min.termination,
                Termination::MaxIter | Termination::MaxEvals | Termination::SearchExhausted
            ),
            "{name} stopped early: {:?}",
            min.termination
        );
        eprintln!(
            "outer/{name}: calls/iter = {:.2} ({} value, {} value_and_grad over {} iterations)",
            min.n_evals as f64 / K as f64,
            min.n_evals - min.n_grad_evals,
            min.n_grad_evals,
            min.n_iter
        );

        let mut group = c.benchmark_group(format!("outer/{name}"));
        group.throughput(Throughput::Elements(K as u64));
        group.sample_size(20);
        group.measurement_time(Duration::from_secs(3));
        group.bench_with_input(BenchmarkId::new(format!("{K}_iters"), DIM), &x0, |b, x0| {
            b.iter_batched(
                || x0.clone(),
                |x0| {
                    black_box(
                        minimizer
                            .minimize(&mut obj, x0, &mut NoObserver)
                            .expect("minimize"),
                    )
                },
                BatchSize::SmallInput,
            )
        });
        group.finish();
    }
}

criterion_group!(benches, bench_objective, bench_minimizers);
fn main() {
    // OpenBLAS's fast kernels when its CPU detection failed (`ho_linalg::blas_core`).
    ho_linalg::restart_with_faster_blas();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
