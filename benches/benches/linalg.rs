//! `linalg/*`: the dense kernels every layer stands on, and the raw GEMM rate that bounds them.
//!
//! Run with `OPENBLAS_NUM_THREADS=1 cargo bench -p ho-benches --bench linalg`; the thread counts
//! are printed with the results. The sparse pair kernel splits its larger products (m = 500
//! and 1000 here) over two rayon threads when the pool has them: `RAYON_NUM_THREADS=1` for
//! one-thread figures.

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use ho_linalg::kernels::{axpy, dot};
use ho_linalg::testing::random_spd;
use ho_linalg::{
    pcg, sandwich, sandwich_upper, CgOptions, Cholesky, JacobiPreconditioner, LinearOperator,
    PairSandwich, StarPreconditioner,
};
use ndarray::Array1;
use std::hint::black_box;
use std::time::Duration;

const SIZES: [usize; 4] = [100, 200, 500, 1000];

fn linalg(c: &mut Criterion) {
    ho_benches::print_threads();
    let mut g = c.benchmark_group("linalg");
    g.sample_size(10).measurement_time(Duration::from_secs(3));
    for &p in &SIZES {
        let a = random_spd(p, 1e3, p as u64);
        g.throughput(Throughput::Elements((2 * p * p * p) as u64));
        g.bench_with_input(BenchmarkId::new("gemm", p), &a, |b, a| {
            b.iter(|| black_box(a.dot(a)))
        });
        g.throughput(Throughput::Elements((p * p * p / 3) as u64));
        g.bench_with_input(BenchmarkId::new("cholesky", p), &a, |b, a| {
            b.iter(|| black_box(Cholesky::factor(a.view()).unwrap()))
        });
        g.bench_with_input(BenchmarkId::new("logdet", p), &a, |b, a| {
            b.iter(|| black_box(ho_linalg::logdet_spd(a.view()).unwrap()))
        });
        g.throughput(Throughput::Elements((p * p * p) as u64));
        g.bench_with_input(BenchmarkId::new("spd_inverse", p), &a, |b, a| {
            b.iter(|| black_box(Cholesky::factor(a.view()).unwrap().into_inverse().unwrap()))
        });
        let rhs = Array1::from_iter((0..p).map(|i| (i as f64).sin()));
        let jac = JacobiPreconditioner::from_diagonal(a.diag()).unwrap();
        let opts = CgOptions {
            rel_tol: 1e-10,
            max_iter: 10 * p,
            ..Default::default()
        };
        g.throughput(Throughput::Elements((p * p) as u64));
        g.bench_with_input(BenchmarkId::new("cg_jacobi", p), &a, |b, a| {
            b.iter(|| {
                let mut x = Array1::zeros(p);
                black_box(pcg(a, Some(&jac), rhs.view(), x.view_mut(), &opts).unwrap())
            })
        });
    }
    g.finish();
}

/// The star preconditioner of the GLASSO pair systems (`ho_linalg::pairs`) against the
/// operator it preconditions: its set-up, one application, and one single-precision product
/// `Θ V Θ` (what a CG iteration of DualPn's dense kernel or of the hypergradient's Z system
/// costs), on a dense precision matrix (κ = 100) with 45 % of its pairs in the system.
fn pair_preconditioner(c: &mut Criterion) {
    let mut g = c.benchmark_group("pair_preconditioner");
    g.sample_size(20).measurement_time(Duration::from_secs(3));
    // p = 1000 with 13 % of the pairs: the Z systems of matrix tuning there (two tasks from
    // 2²⁰ entries of inverses when the pool has two threads).
    for (p, percent) in [(100, 45), (200, 45), (1000, 13)] {
        let theta = random_spd(p, 100.0, 7);
        let pairs: Vec<(usize, usize)> = (0..p)
            .flat_map(|i| (i + 1..p).map(move |j| (i, j)))
            .filter(|&(i, j)| (i * 7919 + j * 104_729) % 100 < percent)
            .collect();
        g.bench_with_input(BenchmarkId::new("star_setup", p), &theta, |b, t| {
            b.iter(|| black_box(StarPreconditioner::new(t.view(), &pairs).unwrap()))
        });
        let star = StarPreconditioner::new(theta.view(), &pairs).unwrap();
        let x = Array1::from_iter((0..pairs.len()).map(|k| (k as f64).cos()));
        let mut out = Array1::zeros(pairs.len());
        g.bench_function(BenchmarkId::new("star_apply", p), |b| {
            b.iter(|| star.apply(x.view(), out.view_mut()))
        });
        if p > 200 {
            continue;
        }
        let t32 = theta.mapv(|v| v as f32);
        let v = ndarray::Array2::<f32>::from_shape_fn((p, p), |(i, j)| ((i + j) as f32).sin());
        let (mut t, mut full) = (v.clone(), v.clone());
        g.bench_function(BenchmarkId::new("sandwich_f32", p), |b| {
            b.iter(|| sandwich(t32.view(), v.view(), t.view_mut(), full.view_mut()))
        });
    }
    g.finish();
}

/// The dense products `Θ V Θ` of the Newton and adjoint systems on large free sets: the full
/// product (`sandwich`, 4n³ flops) against its upper triangle by row bands (`sandwich_upper`,
/// 3.1n³ at n = 1000), in both precisions.
fn dense_sandwich(c: &mut Criterion) {
    let mut g = c.benchmark_group("dense_sandwich");
    g.sample_size(10).measurement_time(Duration::from_secs(3));
    for p in [300, 1000] {
        let theta = random_spd(p, 100.0, 7);
        let v = ndarray::Array2::from_shape_fn((p, p), |(i, j)| ((i + j) as f64).sin());
        let (mut t, mut full) = (v.clone(), v.clone());
        g.bench_function(BenchmarkId::new("full_f64", p), |b| {
            b.iter(|| sandwich(theta.view(), v.view(), t.view_mut(), full.view_mut()))
        });
        g.bench_function(BenchmarkId::new("upper_f64", p), |b| {
            b.iter(|| sandwich_upper(theta.view(), v.view(), t.view_mut(), full.view_mut()))
        });
        let (t32, v32) = (theta.mapv(|x| x as f32), v.mapv(|x| x as f32));
        let (mut t, mut full) = (v32.clone(), v32.clone());
        g.bench_function(BenchmarkId::new("full_f32", p), |b| {
            b.iter(|| sandwich(t32.view(), v32.view(), t.view_mut(), full.view_mut()))
        });
        g.bench_function(BenchmarkId::new("upper_f32", p), |b| {
            b.iter(|| sandwich_upper(t32.view(), v32.view(), t.view_mut(), full.view_mut()))
        });
    }
    g.finish();
}

/// The sparse pair kernel `(Θ V Θ)_P` (`PairSandwich`, single and double precision) against
/// the pair-by-pair axpy kernel of the solvers' double-precision products, on a dense Θ with
/// 13 % of the pairs (m = 1000, the zeros of Θ̂ in matrix tuning at p = 1000) and 30 %
/// (m = 500).
fn pair_sandwich(c: &mut Criterion) {
    let mut g = c.benchmark_group("pair_sandwich");
    g.sample_size(10).measurement_time(Duration::from_secs(4));
    for (m, percent) in [(100, 45), (100, 20), (500, 30), (1000, 13)] {
        let theta = random_spd(m, 100.0, 7);
        let pairs: Vec<(usize, usize)> = (0..m)
            .flat_map(|i| (i + 1..m).map(move |j| (i, j)))
            .filter(|&(i, j)| (i * 7919 + j * 104_729) % 100 < percent)
            .collect();
        let x = Array1::from_iter((0..pairs.len()).map(|k| (k as f64).cos()));
        let mut out = Array1::zeros(pairs.len());
        let single = PairSandwich::<f32>::new(theta.view(), &pairs).unwrap();
        g.bench_function(BenchmarkId::new(format!("f32_{percent}%"), m), |b| {
            b.iter(|| single.apply(x.view(), out.view_mut()))
        });
        let double = PairSandwich::<f64>::new(theta.view(), &pairs).unwrap();
        g.bench_function(BenchmarkId::new(format!("f64_{percent}%"), m), |b| {
            b.iter(|| double.apply(x.view(), out.view_mut()))
        });
        let ths = theta.as_slice().unwrap();
        let (mut t, mut v) = (vec![0.0; m * m], vec![0.0; m * m]);
        g.bench_function(BenchmarkId::new(format!("axpy_f64_{percent}%"), m), |b| {
            b.iter(|| {
                t.fill(0.0);
                for (&(i, j), &d) in pairs.iter().zip(x.iter()) {
                    axpy(d, &ths[j * m..(j + 1) * m], &mut t[i * m..(i + 1) * m]);
                    axpy(d, &ths[i * m..(i + 1) * m], &mut t[j * m..(j + 1) * m]);
                }
                for i in 0..m {
                    for j in 0..m {
                        v[j * m + i] = t[i * m + j];
                    }
                }
                for (o, &(i, j)) in out.iter_mut().zip(&pairs) {
                    *o = dot(&v[i * m..(i + 1) * m], &ths[j * m..(j + 1) * m]);
                }
            })
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    linalg,
    pair_preconditioner,
    dense_sandwich,
    pair_sandwich
);
fn main() {
    // OpenBLAS's fast kernels when its CPU detection failed (`ho_linalg::blas_core`).
    ho_linalg::restart_with_faster_blas();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
