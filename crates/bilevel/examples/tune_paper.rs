//! Tunes λ, then the full matrix Λ, on the paper's synthetic setup (p = 100, n = 2000, 50/50
//! split), and prints what each stage did.
//!
//! ```text
//! cargo run --release -p ho-bilevel --example tune_paper [-- P [SEED [trace]]]
//! ```
//!
//! SEED (default 0) draws another data set of the same recipe: the matrix stage stops at its
//! iteration budget far from stationarity, and its final criterion moves by ~1e-4 relative
//! with any change of the path, so a change is judged over several seeds.

use ho_bilevel::{GlassoTuner, TunerOptions};
use ho_linalg::testing::paper_data;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    ho_linalg::restart_with_faster_blas();
    let p: usize = std::env::args().nth(1).map_or(Ok(100), |s| s.parse())?;
    let seed: u64 = std::env::args().nth(2).map_or(Ok(0), |s| s.parse())?;
    let data = paper_data(p, 20 * p, 0.9, seed);
    let tuner = GlassoTuner {
        options: TunerOptions {
            weighted: true,
            ..Default::default()
        },
    };
    let t = tuner.fit(data.x.view())?;
    println!(
        "p = {p}: λ* = {:.4e} ({:.2e}·λ_max), scalar criterion {:.6}, matrix criterion {:.6}",
        t.lambda,
        t.lambda / t.lambda_max,
        t.scalar_criterion,
        t.criterion
    );
    for (name, stage) in [("scalar", Some(&t.scalar)), ("matrix", t.matrix.as_ref())] {
        if let Some(s) = stage {
            println!(
                "{name}: {} outer iterations ({:?}), {} inner solves {:.3} s, {} hypergradients {:.3} s; work: {} inner iterations, {} adjoint CG iterations",
                s.minimum.n_iter,
                s.minimum.termination,
                s.stats.n_inner_solves,
                s.stats.inner_seconds,
                s.stats.n_hypergrads,
                s.stats.hypergrad_seconds,
                s.stats.n_inner_iter,
                s.stats.n_adjoint_iter
            );
        }
    }
    if std::env::args().nth(3).as_deref() == Some("trace") {
        for r in &t.trace {
            println!(
                "{} {:3} {:8.3} s {:.6} evals {} grads {} |g| {:.3e}",
                r.stage,
                r.row.iteration,
                r.row.elapsed_secs,
                r.row.value,
                r.row.n_evals,
                r.row.n_grad_evals,
                r.row.grad_norm
            );
        }
    }
    println!("total {:.3} s", t.seconds);
    Ok(())
}
