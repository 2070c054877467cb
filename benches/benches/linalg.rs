//! `linalg/*`: the dense kernels every layer stands on, and the raw GEMM rate that bounds them.
//!
//! Run with `OPENBLAS_NUM_THREADS=1 cargo bench -p ho-benches --bench linalg`; the thread count
//! is printed with the results.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ho_linalg::testing::random_spd;
use ho_linalg::{pcg, CgOptions, Cholesky, JacobiPreconditioner};
use ndarray::Array1;
use std::hint::black_box;
use std::time::Duration;

const SIZES: [usize; 4] = [100, 200, 500, 1000];

fn linalg(c: &mut Criterion) {
    eprintln!(
        "OPENBLAS_NUM_THREADS={}",
        std::env::var("OPENBLAS_NUM_THREADS").unwrap_or_else(|_| "unset".into())
    );
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

criterion_group!(benches, linalg);
criterion_main!(benches);
