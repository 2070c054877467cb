//! Test objectives and helpers shared by the integration tests.
#![allow(dead_code)]

// ndarray is built with its `blas` feature in this workspace (ho-linalg enables it);
// linking ho-linalg brings the OpenBLAS symbols that `dot` needs.
extern crate ho_linalg as _;

use std::time::Duration;

use ho_outer::{Counting, Minimizer, Minimum, Objective, Observer, OuterError};
use ndarray::{array, Array1, Array2, ArrayView1};

/// `f(x) = ½ (x − c)ᵀ A (x − c)` with a fixed 5 × 5 SPD tridiagonal `A` (eigenvalues in
/// about [0.7, 25.5]) and `c = (1, −2, 3, −4, 5)`.
#[derive(Debug, Clone)]
pub struct Quadratic {
    pub a: Array2<f64>,
    pub c: Array1<f64>,
}

impl Quadratic {
    pub fn new() -> Self {
        let d = [1.0, 4.0, 9.0, 16.0, 25.0];
        let mut a = Array2::zeros((5, 5));
        for i in 0..5 {
            a[[i, i]] = d[i];
            if i + 1 < 5 {
                a[[i, i + 1]] = 0.5;
                a[[i + 1, i]] = 0.5;
            }
        }
        Self {
            a,
            c: array![1.0, -2.0, 3.0, -4.0, 5.0],
        }
    }
}

impl Objective for Quadratic {
    fn dim(&self) -> usize {
        self.c.len()
    }

    fn value_and_grad(&mut self, x: ArrayView1<'_, f64>) -> Result<(f64, Array1<f64>), OuterError> {
        let r = &x - &self.c;
        let g = self.a.dot(&r);
        Ok((0.5 * r.dot(&g), g))
    }
}

/// Rosenbrock in dimension `n ≥ 2`: `Σᵢ 100 (xᵢ₊₁ − xᵢ²)² + (1 − xᵢ)²`, minimum 0 at `(1, …, 1)`.
#[derive(Debug, Clone, Copy)]
pub struct Rosenbrock {
    pub n: usize,
}

impl Objective for Rosenbrock {
    fn dim(&self) -> usize {
        self.n
    }

    fn value_and_grad(&mut self, x: ArrayView1<'_, f64>) -> Result<(f64, Array1<f64>), OuterError> {
        let mut f = 0.0;
        let mut g = Array1::zeros(self.n);
        for i in 0..self.n - 1 {
            let t = x[i + 1] - x[i] * x[i];
            let u = 1.0 - x[i];
            f += 100.0 * t * t + u * u;
            g[i] += -400.0 * t * x[i] - 2.0 * u;
            g[i + 1] += 200.0 * t;
        }
        Ok((f, g))
    }
}

/// `f(x) = x⁴ − 3x² + x`: global minimum at `X_GLOBAL`, local minimum at `X_LOCAL`, local
/// maximum near 0.17.
#[derive(Debug, Clone, Copy)]
pub struct NonConvex;

pub const X_GLOBAL: f64 = -1.300_839_565_941_577_2;
pub const F_GLOBAL: f64 = -3.513_905_038_934_79;
pub const X_LOCAL: f64 = 1.130_901_122_629_986;
pub const F_LOCAL: f64 = -1.070_230_181_776_154;

impl Objective for NonConvex {
    fn dim(&self) -> usize {
        1
    }

    fn value_and_grad(&mut self, x: ArrayView1<'_, f64>) -> Result<(f64, Array1<f64>), OuterError> {
        let t = x[0];
        Ok((
            t.powi(4) - 3.0 * t * t + t,
            array![4.0 * t.powi(3) - 6.0 * t + 1.0],
        ))
    }
}

/// `f(x) = Σ (xᵢ − 3)²`, whose minimizer lies outside the box `[−1, 1]ⁿ`.
#[derive(Debug, Clone, Copy)]
pub struct Shifted {
    pub n: usize,
}

impl Objective for Shifted {
    fn dim(&self) -> usize {
        self.n
    }

    fn value_and_grad(&mut self, x: ArrayView1<'_, f64>) -> Result<(f64, Array1<f64>), OuterError> {
        let r = x.mapv(|v| v - 3.0);
        Ok((r.dot(&r), 2.0 * r))
    }
}

/// `(x₀ − 2)²`, NaN for `x₀ > limit` (an inner solver that fails for small penalties).
#[derive(Debug, Clone, Copy)]
pub struct NanBeyond {
    pub limit: f64,
}

impl Objective for NanBeyond {
    fn dim(&self) -> usize {
        1
    }

    fn value_and_grad(&mut self, x: ArrayView1<'_, f64>) -> Result<(f64, Array1<f64>), OuterError> {
        if x[0] > self.limit {
            Ok((f64::NAN, array![f64::NAN]))
        } else {
            let d = x[0] - 2.0;
            Ok((d * d, array![2.0 * d]))
        }
    }
}

/// Wraps an objective and sleeps before every call.
#[derive(Debug, Clone)]
pub struct Sleepy<O> {
    pub inner: O,
    pub pause: Duration,
}

impl<O: Objective> Objective for Sleepy<O> {
    fn dim(&self) -> usize {
        self.inner.dim()
    }

    fn value_and_grad(&mut self, x: ArrayView1<'_, f64>) -> Result<(f64, Array1<f64>), OuterError> {
        std::thread::sleep(self.pause);
        self.inner.value_and_grad(x)
    }

    fn value(&mut self, x: ArrayView1<'_, f64>) -> Result<f64, OuterError> {
        std::thread::sleep(self.pause);
        self.inner.value(x)
    }
}

/// Runs `minimizer` on `obj` wrapped in `Counting`, and checks that the counts reported in
/// `Minimum` are the calls the objective actually received.
pub fn run_counted<O: Objective>(
    minimizer: &mut dyn Minimizer,
    obj: O,
    x0: Array1<f64>,
    observer: &mut dyn Observer,
) -> (Minimum, Counting<O>) {
    let mut counted = Counting::new(obj);
    let min = minimizer
        .minimize(&mut counted, x0, observer)
        .expect("minimize failed");
    assert_eq!(
        min.n_evals,
        counted.counters.n_evals(),
        "n_evals is not honest"
    );
    assert_eq!(
        min.n_grad_evals, counted.counters.n_value_and_grad,
        "n_grad_evals is not honest"
    );
    (min, counted)
}

/// Rosenbrock's classical start point in dimension `n`: (−1.2, 1, −1.2, 1, …).
pub fn rosenbrock_start(n: usize) -> Array1<f64> {
    Array1::from_iter((0..n).map(|i| if i % 2 == 0 { -1.2 } else { 1.0 }))
}
