//! Cold vs warm-started solves at small penalties (the tuning regime).
use ho_glasso::*;
use ho_linalg::{empirical_covariance, testing::paper_data};
use std::time::Instant;
fn main() {
    let p: usize = std::env::args().nth(1).map_or(100, |s| s.parse().unwrap());
    let data = paper_data(p, 20 * p, 0.9, 0);
    let s = empirical_covariance(data.x.slice(ndarray::s![..10 * p, ..]), false).unwrap();
    let lmax = lambda_max(s.view());
    let opts = GlassoOptions {
        tol: 1e-10,
        kkt_tol: 1e-9,
        ..Default::default()
    };
    for name in ["obn-cg"] {
        let solver = solver_from_name(name, opts).unwrap();
        let l1 = 0.003 * lmax;
        let t = Instant::now();
        let f1 = solver
            .solve(&GlassoProblem::new(s.view(), Penalty::scalar(l1)), None)
            .unwrap();
        let cold = t.elapsed().as_secs_f64();
        for factor in [1.1f64] {
            let t = Instant::now();
            let f2 = solver
                .solve(
                    &GlassoProblem::new(s.view(), Penalty::scalar(l1 * factor)),
                    Some(&f1),
                )
                .unwrap();
            println!(
                "{name} p={p} cold {:.1} ms ({} it) warm x{factor}: {:.1} ms ({} it) edges {}",
                cold * 1e3,
                f1.n_iter,
                t.elapsed().as_secs_f64() * 1e3,
                f2.n_iter,
                f2.n_edges()
            );
        }
    }
}
