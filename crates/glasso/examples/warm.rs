//! Cold vs warm-started solves at small penalties (the tuning regime), solvers side by side.
//!
//! ```text
//! cargo run --release -p ho-glasso --example warm -- P RATIOS SOLVERS REPEATS
//! cargo run --release -p ho-glasso --example warm -- 200 0.05,0.01,0.003 obn-cg,dual-pn 5
//! ```
//!
//! For each λ = ratio·λ_max: a cold solve at λ, then a solve at 1.1·λ warm-started from it
//! (tight options: relative gap 1e-10, KKT 1e-9). Prints medians over the repeats.
use ho_glasso::*;
use ho_linalg::{empirical_covariance, testing::paper_data};
use std::time::Instant;

/// One solver's measurements: name, cold and warm times, cold and warm iterations, edges, gap.
type Row = (String, Vec<f64>, Vec<f64>, usize, usize, usize, f64);

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    ho_linalg::restart_with_faster_blas();
    let args: Vec<String> = std::env::args().collect();
    let p: usize = args.get(1).map_or(Ok(100), |s| s.parse())?;
    let ratios: Vec<f64> = args
        .get(2)
        .map_or("0.05,0.01,0.003".to_string(), |s| s.clone())
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let solvers: Vec<String> = args
        .get(3)
        .map_or("obn-cg,dual-pn".to_string(), |s| s.clone())
        .split(',')
        .map(str::to_string)
        .collect();
    let repeats: usize = args.get(4).map_or(Ok(3), |s| s.parse())?;
    let data = paper_data(p, 20 * p, 0.9, 0);
    let s = empirical_covariance(data.x.slice(ndarray::s![..10 * p, ..]), false)?;
    let lmax = lambda_max(s.view());
    let opts = GlassoOptions {
        tol: 1e-10,
        kkt_tol: 1e-9,
        ..Default::default()
    };
    println!(
        "| p | λ/λ_max | solver | cold ms | cold it | warm ×1.1 ms | warm it | edges | rel gap |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for &r in &ratios {
        let l1 = r * lmax;
        let mut rows: Vec<Row> = solvers
            .iter()
            .map(|n| (n.clone(), vec![], vec![], 0, 0, 0, 0.0))
            .collect();
        // Interleave the solvers within each repeat so that load affects them alike.
        for _ in 0..repeats {
            for row in rows.iter_mut() {
                let solver = solver_from_name(&row.0, opts)?;
                let t = Instant::now();
                let f1 = solver.solve(&GlassoProblem::new(s.view(), Penalty::scalar(l1)), None)?;
                row.1.push(t.elapsed().as_secs_f64() * 1e3);
                let t = Instant::now();
                let f2 = solver.solve(
                    &GlassoProblem::new(s.view(), Penalty::scalar(l1 * 1.1)),
                    Some(&f1),
                )?;
                row.2.push(t.elapsed().as_secs_f64() * 1e3);
                row.3 = f1.n_iter;
                row.4 = f2.n_iter;
                row.5 = f2.n_edges();
                row.6 = f1.relative_gap().max(f2.relative_gap());
                if f1.status != Status::Converged || f2.status != Status::Converged {
                    eprintln!("{} p={p} r={r}: not converged", row.0);
                }
            }
        }
        for row in rows.iter_mut() {
            println!(
                "| {p} | {r} | {} | {:.1} | {} | {:.1} | {} | {} | {:.0e} |",
                row.0,
                median(&mut row.1),
                row.3,
                median(&mut row.2),
                row.4,
                row.5,
                row.6
            );
        }
    }
    Ok(())
}
