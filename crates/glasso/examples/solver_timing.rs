//! Times every solver on the paper's data recipe (n = 20p, first half as S) at a few λ/λ_max.
//!
//! ```text
//! cargo run --release -p ho-glasso --example solver_timing -- 200 0.1,0.05,0.01 newton-cd,obn-cg
//! ```

use ho_glasso::{lambda_max, solver_from_name, GlassoOptions, GlassoProblem, Penalty};
use ho_linalg::empirical_covariance;
use ho_linalg::testing::paper_data;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    ho_linalg::restart_with_faster_blas();
    let args: Vec<String> = std::env::args().collect();
    let p: usize = args.get(1).map_or(Ok(100), |s| s.parse())?;
    let ratios: Vec<f64> = args
        .get(2)
        .map_or("0.5,0.1,0.05,0.01".to_string(), |s| s.clone())
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let solvers: Vec<String> = args
        .get(3)
        .map_or("newton-cd,obn-cg".to_string(), |s| s.clone())
        .split(',')
        .map(str::to_string)
        .collect();
    let data = paper_data(p, 20 * p, 0.9, 0);
    let s = empirical_covariance(data.x.view(), false)?;
    let lmax = lambda_max(s.view());
    for r in ratios {
        for name in &solvers {
            let tol = std::env::var("HO_TOL").map_or(Ok(1e-8), |v| v.parse())?;
            let kkt_tol = std::env::var("HO_KKT").map_or(Ok(f64::INFINITY), |v| v.parse())?;
            let options = GlassoOptions {
                tol,
                kkt_tol,
                ..Default::default()
            };
            let solver = solver_from_name(name, options)?;
            let problem = GlassoProblem::new(s.view(), Penalty::scalar(r * lmax));
            let t = Instant::now();
            let fit = solver.solve(&problem, None)?;
            println!(
                "p={p} r={r} {name:10} {:>9.3} ms  iters {:3} rel_gap {:.1e} kkt {:.1e} edges {} blocks {}",
                t.elapsed().as_secs_f64() * 1e3,
                fit.n_iter,
                fit.relative_gap(),
                fit.kkt_residual,
                fit.n_edges(),
                fit.n_blocks
            );
        }
    }
    Ok(())
}
