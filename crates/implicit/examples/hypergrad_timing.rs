//! Times the hypergradient (adjoint on the support with each kernel and preconditioner, and
//! through the complement, and the dense Kronecker formula up to |E| = 8000) against the inner
//! solve on
//! the paper's data recipe (n = 20p, S of the first half of the rows, S_val of the second),
//! along a warm-started path of λ/λ_max.
//!
//! ```text
//! cargo run --release -p ho-implicit --example hypergrad_timing -- 200 0.5,0.1,0.01
//! ```

use ho_glasso::{
    lambda_max, GlassoFit, GlassoOptions, GlassoProblem, GlassoSolver, ObnCg, Penalty,
};
use ho_implicit::glasso::{
    hypergradient, AdjointSolver, HeldOutNll, HypergradOptions, Kernel, Method, PreconditionerKind,
    RestrictedKronecker,
};
use ho_implicit::ActiveSet;
use ho_linalg::empirical_covariance;
use ho_linalg::testing::paper_data;
use ho_linalg::LinearOperator;
use ndarray::s;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    ho_linalg::restart_with_faster_blas();
    let args: Vec<String> = std::env::args().collect();
    let p: usize = args.get(1).map_or(Ok(100), |s| s.parse())?;
    let ratios: Vec<f64> = args
        .get(2)
        .map_or("0.5,0.1,0.01".to_string(), |s| s.clone())
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let n = 20 * p;
    let data = paper_data(p, n, 0.9, 0);
    let s = empirical_covariance(data.x.slice(s![..n / 2, ..]), false)?;
    let s_val = empirical_covariance(data.x.slice(s![n / 2.., ..]), false)?;
    let crit = HeldOutNll::new(s_val);
    let lmax = lambda_max(s.view());
    let solver = ObnCg {
        options: GlassoOptions {
            tol: 1e-10,
            ..Default::default()
        },
        ..Default::default()
    };
    let mut warm: Option<GlassoFit> = None;
    for r in ratios {
        let problem = GlassoProblem::new(s.view(), Penalty::scalar(r * lmax));
        let t = Instant::now();
        let fit = solver.solve(&problem, warm.as_ref())?;
        let solve_s = t.elapsed().as_secs_f64();
        let active = ActiveSet::from_precision(fit.precision.view());
        let m = RestrictedKronecker::new(fit.covariance.view(), &active, Kernel::Auto);
        let (cs, cd) = m.costs();
        println!(
            "p={p} r={r}: obn-cg (warm) {solve_s:.3} s, rel gap {:.1e}, |E| = {} ({:.1}% of p²), auto kernel {:?} (cost sparse {cs:.2e} dense {cd:.2e})",
            fit.relative_gap(),
            active.len(),
            100.0 * active.len() as f64 / (p * p) as f64,
            m.kernel()
        );
        // one product M v per kernel: the minimum over 15 repetitions (robust to machine load)
        let x = ndarray::Array1::from_shape_fn(active.len(), |i| (i as f64 * 0.37).sin());
        let mut y = ndarray::Array1::zeros(active.len());
        let mut line = String::new();
        for (name, a, kernel) in [
            ("M sparse", fit.covariance.view(), Kernel::Sparse),
            ("M dense", fit.covariance.view(), Kernel::Dense),
            ("K sparse", fit.precision.view(), Kernel::Sparse),
            ("K dense", fit.precision.view(), Kernel::Dense),
        ] {
            let op = RestrictedKronecker::new(a, &active, kernel);
            let best = (0..15)
                .map(|_| {
                    let t = Instant::now();
                    op.apply(x.view(), y.view_mut());
                    t.elapsed().as_secs_f64()
                })
                .fold(f64::INFINITY, f64::min);
            line += &format!(" {name} {:.3} ms", best * 1e3);
        }
        println!("    one product (min of 15):{line}");
        // the fixed costs of one hypergradient call
        let stage = |name: &str, f: &mut dyn FnMut()| {
            let t = Instant::now();
            f();
            format!(" {name} {:.2} ms", t.elapsed().as_secs_f64() * 1e3)
        };
        let mut fixed = String::new();
        fixed += &stage("validate", &mut || {
            problem.validate().unwrap();
        });
        fixed += &stage("criterion", &mut || {
            ho_implicit::Criterion::value_and_grad(
                &crit,
                fit.precision.view(),
                fit.covariance.view(),
            )
            .unwrap();
        });
        fixed += &stage("active set", &mut || {
            ActiveSet::from_precision(fit.precision.view());
        });
        fixed += &stage("system", &mut || {
            ho_implicit::GlassoSystem::new(
                fit.precision.view(),
                fit.covariance.view(),
                &active,
                Kernel::Auto,
                PreconditionerKind::Kronecker,
            )
            .unwrap();
        });
        let lam = problem.penalty.to_matrix(p);
        fixed += &stage("margin", &mut || {
            ho_implicit::glasso::off_support_margin(
                &active,
                fit.covariance.view(),
                s.view(),
                lam.view(),
            );
        });
        println!("    fixed costs:{fixed}");
        // (the last flag: the complement's Z system preconditioned by node stars, else Jacobi)
        for (solver, kernel, pre, star) in [
            (
                AdjointSolver::Support,
                Kernel::Sparse,
                PreconditionerKind::Kronecker,
                true,
            ),
            (
                AdjointSolver::Support,
                Kernel::Dense,
                PreconditionerKind::Kronecker,
                true,
            ),
            (
                AdjointSolver::Support,
                Kernel::Auto,
                PreconditionerKind::Jacobi,
                true,
            ),
            (
                AdjointSolver::Complement,
                Kernel::Auto,
                PreconditionerKind::Kronecker,
                false,
            ),
            (
                AdjointSolver::Complement,
                Kernel::Auto,
                PreconditionerKind::Kronecker,
                true,
            ),
        ] {
            let options = HypergradOptions {
                kernel,
                preconditioner: pre,
                adjoint_solver: solver,
                star_preconditioner: star,
                ..Default::default()
            };
            let h = hypergradient(&fit, &problem, &crit, &options)?;
            let best = (0..5)
                .map(|_| hypergradient(&fit, &problem, &crit, &options).map(|h| h.seconds))
                .collect::<Result<Vec<f64>, _>>()?
                .into_iter()
                .fold(h.seconds, f64::min);
            let z = match solver {
                AdjointSolver::Complement if star => " (Z: node stars)",
                AdjointSolver::Complement => " (Z: Jacobi)",
                _ => "",
            };
            println!(
                "    {solver:?}{z} {kernel:?}/{pre:?}: {:.4} s (min of 6), {} CG iterations, dL/dλ = {:.6e}",
                best,
                h.report.n_iter,
                h.grad_lambda.unwrap_or(f64::NAN)
            );
        }
        // the paper's dense formula, (W ⊗ W)_{E,E} formed and factored, up to |E| = 8000
        // (512 MB): the reference the matrix-free adjoint is measured against
        if active.len() <= 8000 {
            let options = HypergradOptions {
                method: Method::DenseKronecker,
                dense_limit: 8000,
                ..Default::default()
            };
            let h = hypergradient(&fit, &problem, &crit, &options)?;
            let again = hypergradient(&fit, &problem, &crit, &options)?;
            println!(
                "    dense Kronecker: {:.4} s (min of 2), {:.0} MB, dL/dλ = {:.6e}",
                h.seconds.min(again.seconds),
                8.0 * (active.len() as f64).powi(2) / 1e6,
                h.grad_lambda.unwrap_or(f64::NAN)
            );
        }
        warm = Some(fit);
    }
    Ok(())
}
