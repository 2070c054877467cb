//! `glasso/<solver>`: inner solves on the paper's data recipe (Θ_true =
//! make_sparse_spd_matrix(p, 0.9) + 0.1 I, n = 20p, S = empirical covariance), to relative gap
//! 1e-8, at λ ∈ {0.5, 0.1, 0.05, 0.01}·λ_max and for a random symmetric Λ, and for `auto` and
//! `dual-pn` also at 0.001·λ_max (cold, where `auto` hands large blocks to DualPn when its
//! soft-thresholded start is positive definite; Bcd and ObnCg take minutes there at p = 1000).
//!
//! `HO_BENCH_P=100,200 cargo bench -p ho-benches --bench glasso` restricts the sizes (default
//! 50,100,200,500,1000; the p = 1000 points take minutes). `HO_BENCH_SOLVERS=auto,obn-cg`
//! restricts the solvers (default: all six; gista only up to p = 200, dual-pn up to 500). Record `OPENBLAS_NUM_THREADS` with the results (printed).

use criterion::{criterion_group, BenchmarkId, Criterion};
use ho_glasso::{lambda_max, solver_from_name, GlassoOptions, GlassoProblem, Penalty};
use ho_linalg::empirical_covariance;
use ho_linalg::testing::{paper_data, random_penalty};
use std::hint::black_box;
use std::time::Duration;

fn env_list<T: std::str::FromStr>(key: &str, default: &str) -> Vec<T> {
    std::env::var(key)
        .unwrap_or_else(|_| default.to_string())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

fn glasso(c: &mut Criterion) {
    ho_benches::print_threads();
    let sizes: Vec<usize> = env_list("HO_BENCH_P", "50,100,200,500,1000");
    let solvers: Vec<String> = env_list(
        "HO_BENCH_SOLVERS",
        "auto,newton-cd,obn-cg,dual-pn,bcd,gista",
    );
    for name in &solvers {
        let mut g = c.benchmark_group(format!("glasso/{}", name.replace('-', "_")));
        g.sample_size(10).measurement_time(Duration::from_secs(5));
        for &p in &sizes {
            // proximal gradient is far too slow in the dense regime at large p, and a cold
            // DualPn at p = 1000 takes minutes per point
            if (name == "gista" && p > 200) || (name == "dual-pn" && p > 500) {
                continue;
            }
            let data = paper_data(p, 20 * p, 0.9, 42);
            let s = empirical_covariance(data.x.view(), false).unwrap();
            let lmax = lambda_max(s.view());
            let small: &[f64] = if name == "auto" || name == "dual-pn" {
                &[0.001]
            } else {
                &[]
            };
            let mut cases: Vec<(String, Penalty)> = [0.5, 0.1, 0.05, 0.01]
                .iter()
                .chain(small)
                .map(|r| (format!("{r}"), Penalty::scalar(r * lmax)))
                .collect();
            cases.push((
                "weighted".into(),
                Penalty::Matrix(random_penalty(p, 0.05 * lmax, lmax, 7)),
            ));
            for (label, penalty) in cases {
                let options = GlassoOptions::default();
                let solver = solver_from_name(name, options).unwrap();
                let problem = GlassoProblem::new(s.view(), penalty);
                g.bench_with_input(BenchmarkId::new(label, p), &problem, |b, problem| {
                    b.iter(|| black_box(solver.solve(problem, None).unwrap()))
                });
            }
        }
        g.finish();
    }
}

criterion_group!(benches, glasso);
fn main() {
    // OpenBLAS's fast kernels when its CPU detection failed (`ho_linalg::blas_core`).
    ho_linalg::restart_with_faster_blas();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
