//! `end_to_end/*`: tuning on the paper's synthetic setup (Θ_true = make_sparse_spd_matrix(p,
//! 0.9) + 0.1 I, n = 20p, 50/50 split, held-out negative log-likelihood): the scalar stage
//! alone (`end_to_end/scalar`) and scalar then full matrix (`end_to_end/matrix`).
//!
//! `OPENBLAS_NUM_THREADS=1 cargo bench -p ho-benches --bench end_to_end`; `HO_BENCH_P=50,100`
//! chooses the sizes (default 50,100). The share of time in inner solves vs hypergradients is
//! printed once per size (from the tuner's counters).

use criterion::{criterion_group, BenchmarkId, Criterion};
use ho_bilevel::{GlassoTuner, TunerOptions};
use ho_linalg::testing::paper_data;
use std::hint::black_box;
use std::time::Duration;

fn end_to_end(c: &mut Criterion) {
    ho_benches::print_threads();
    let sizes: Vec<usize> = std::env::var("HO_BENCH_P")
        .unwrap_or_else(|_| "50,100".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let mut g = c.benchmark_group("end_to_end");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    for &p in &sizes {
        let data = paper_data(p, 20 * p, 0.9, 0);
        for weighted in [false, true] {
            let tuner = GlassoTuner {
                options: TunerOptions {
                    weighted,
                    ..Default::default()
                },
            };
            let t = tuner.fit(data.x.view()).expect("tuning runs");
            let (inner, hyper) = [Some(&t.scalar), t.matrix.as_ref()]
                .into_iter()
                .flatten()
                .fold((0.0, 0.0), |(a, b), s| {
                    (a + s.stats.inner_seconds, b + s.stats.hypergrad_seconds)
                });
            eprintln!(
                "p = {p}, weighted = {weighted}: {:.3} s, {} inner solves ({:.0} % of the time), hypergradients {:.0} %",
                t.seconds,
                t.n_inner_solves(),
                100.0 * inner / t.seconds,
                100.0 * hyper / t.seconds
            );
            let name = if weighted { "matrix" } else { "scalar" };
            g.bench_with_input(BenchmarkId::new(name, p), &data.x, |b, x| {
                b.iter(|| black_box(tuner.fit(x.view()).expect("tuning runs")))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, end_to_end);
fn main() {
    // OpenBLAS's fast kernels when its CPU detection failed (`ho_linalg::blas_core`).
    ho_linalg::restart_with_faster_blas();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
