//! Closed forms, invariants, agreement between solvers, warm starts and bad inputs.
#![allow(clippy::float_cmp)] // exact zeros off the support and exact error payloads are the point

mod common;
use common::{max_abs, max_abs_diff};
use ho_glasso::{
    duality_gap, kkt_residual, lambda_max, objective, solve_path, Auto, GlassoError, GlassoFit,
    GlassoOptions, GlassoProblem, GlassoSolver, NewtonCd, ObnCg, Penalty, Status,
};
use ho_linalg::prox::soft_threshold_scalar;
use ho_linalg::testing::{paper_data, random_penalty};
use ho_linalg::{empirical_covariance, Cholesky};
use ndarray::{array, Array2};
use proptest::prelude::*;

fn exact() -> GlassoOptions {
    GlassoOptions {
        tol: 1e-12,
        kkt_tol: 1e-10,
        max_iter: 500,
        screening: true,
    }
}

fn solvers() -> Vec<Box<dyn GlassoSolver>> {
    vec![
        Box::new(Auto {
            options: exact(),
            ..Default::default()
        }),
        Box::new(NewtonCd {
            options: exact(),
            ..Default::default()
        }),
        Box::new(ObnCg {
            options: exact(),
            ..Default::default()
        }),
    ]
}

fn data_cov(p: usize, seed: u64) -> Array2<f64> {
    let d = paper_data(p, 10 * p, 0.9, seed);
    empirical_covariance(d.x.view(), false).unwrap()
}

/// The fit's `log det Θ̂` (summed over the screened blocks) is that of its precision.
fn assert_log_det(fit: &GlassoFit, expected: f64) {
    let log_det = fit.log_det.expect("a solver's fit carries log det Θ̂");
    assert!(
        (log_det - expected).abs() <= 1e-10 * expected.abs().max(1.0),
        "log det {log_det} against {expected}"
    );
}

/// Certificates and invariants every fit must satisfy.
fn assert_certified(fit: &GlassoFit, s: &Array2<f64>, lam: &Array2<f64>) {
    let p = s.nrows();
    assert_eq!(fit.status, Status::Converged);
    let chol = Cholesky::factor(fit.precision.view()).expect("Θ SPD");
    assert_log_det(fit, chol.logdet());
    for i in 0..p {
        for j in 0..p {
            assert_eq!(
                fit.precision[[i, j]].to_bits(),
                fit.precision[[j, i]].to_bits()
            );
            assert_eq!(
                fit.covariance[[i, j]].to_bits(),
                fit.covariance[[j, i]].to_bits()
            );
        }
    }
    let wt = fit.covariance.dot(&fit.precision);
    let eye = Array2::<f64>::eye(p);
    let cond = max_abs(&fit.covariance) * max_abs(&fit.precision) * p as f64;
    assert!(
        max_abs_diff(&wt, &eye) <= 1e2 * f64::EPSILON * cond,
        "WΘ ≠ I"
    );
    let obj = objective(fit.precision.view(), s.view(), lam.view()).unwrap();
    assert!((obj - fit.objective).abs() <= 1e-10 * obj.abs().max(1.0));
    let gap = duality_gap(obj, fit.covariance.view(), s.view(), lam.view());
    assert!(gap.abs() <= 1e-10 * obj.abs().max(1.0), "gap {gap:e}");
    let kkt = kkt_residual(
        fit.precision.view(),
        fit.covariance.view(),
        s.view(),
        lam.view(),
    );
    assert!(kkt <= 1e-9, "kkt {kkt:e}");
}

#[test]
fn p2_closed_form() {
    let s = array![[1.3, 0.6], [0.6, 0.8]];
    for &alpha in &[0.0, 0.1, 0.3, 0.59, 0.7] {
        for &pd in &[false, true] {
            let pen = Penalty::Scalar {
                alpha,
                penalize_diagonal: pd,
            };
            let problem = GlassoProblem::new(s.view(), pen);
            let d = if pd { alpha } else { 0.0 };
            let w12 = soft_threshold_scalar(0.6, alpha);
            for solver in solvers() {
                let fit = solver.solve(&problem, None).unwrap();
                assert!(
                    (fit.covariance[[0, 1]] - w12).abs() < 1e-10,
                    "{} α={alpha}",
                    solver.name()
                );
                assert!((fit.covariance[[0, 0]] - (1.3 + d)).abs() < 1e-10);
                assert!((fit.covariance[[1, 1]] - (0.8 + d)).abs() < 1e-10);
            }
        }
    }
}

#[test]
fn above_lambda_max_the_solution_is_diagonal() {
    let s = data_cov(15, 1);
    let lmax = lambda_max(s.view());
    for &pd in &[false, true] {
        for &alpha in &[lmax, 1.5 * lmax] {
            let problem = GlassoProblem::new(
                s.view(),
                Penalty::Scalar {
                    alpha,
                    penalize_diagonal: pd,
                },
            );
            for solver in solvers() {
                let fit = solver.solve(&problem, None).unwrap();
                for i in 0..15 {
                    let want = 1.0 / (s[[i, i]] + if pd { alpha } else { 0.0 });
                    assert!((fit.precision[[i, i]] - want).abs() <= 1e-14 * want);
                    for j in 0..15 {
                        if i != j {
                            assert_eq!(fit.precision[[i, j]], 0.0);
                        }
                    }
                }
                assert_eq!(fit.n_blocks, 15);
                assert_eq!(fit.n_edges(), 0);
            }
        }
    }
    // a diagonal S: Θ = diag(1/S_ii) for any λ
    let sd = Array2::from_diag(&ndarray::arr1(&[1.0, 2.0, 4.0]));
    let fit = Auto::default()
        .solve(&GlassoProblem::new(sd.view(), Penalty::scalar(0.1)), None)
        .unwrap();
    assert_eq!(
        fit.precision,
        Array2::from_diag(&ndarray::arr1(&[1.0, 0.5, 0.25]))
    );
}

#[test]
fn solvers_agree_and_are_certified_on_random_problems() {
    for (p, seed, ratio) in [(12, 3, 0.3), (25, 4, 0.1), (40, 5, 0.05), (30, 6, 0.02)] {
        let s = data_cov(p, seed);
        let alpha = ratio * lambda_max(s.view());
        let mut weighted = random_penalty(p, 0.02 * alpha / ratio, alpha / ratio, seed);
        weighted.diag_mut().fill(0.01);
        for penalty in [Penalty::scalar(alpha), Penalty::Matrix(weighted)] {
            let problem = GlassoProblem::new(s.view(), penalty.clone());
            let lam = penalty.to_matrix(p);
            let fits: Vec<_> = solvers()
                .iter()
                .map(|solver| solver.solve(&problem, None).unwrap())
                .collect();
            for fit in &fits {
                assert_certified(fit, &s, &lam);
                assert!(
                    max_abs_diff(&fit.precision, &fits[0].precision)
                        <= 1e-7 * max_abs(&fits[0].precision)
                );
            }
        }
    }
}

#[test]
fn screening_on_and_off_agree_and_warm_start_is_cheaper() {
    let s = data_cov(40, 8);
    let lmax = lambda_max(s.view());
    let problem = GlassoProblem::new(s.view(), Penalty::scalar(0.4 * lmax));
    let on = Auto {
        options: exact(),
        ..Default::default()
    }
    .solve(&problem, None)
    .unwrap();
    let off_opts = GlassoOptions {
        screening: false,
        ..exact()
    };
    let off = Auto {
        options: off_opts,
        ..Default::default()
    }
    .solve(&problem, None)
    .unwrap();
    assert!(on.n_blocks > 1);
    assert_eq!(off.n_blocks, 1);
    for fit in [&on, &off] {
        assert_log_det(
            fit,
            Cholesky::factor(fit.precision.view()).unwrap().logdet(),
        );
    }
    assert!(max_abs_diff(&on.precision, &off.precision) <= 1e-8 * max_abs(&on.precision));
    // warm start from a nearby λ: same solution, fewer iterations
    let solver = ObnCg {
        options: exact(),
        ..Default::default()
    };
    let near = GlassoProblem::new(s.view(), Penalty::scalar(0.1 * lmax));
    let target = GlassoProblem::new(s.view(), Penalty::scalar(0.09 * lmax));
    let warm_from = solver.solve(&near, None).unwrap();
    let cold = solver.solve(&target, None).unwrap();
    let warm = solver.solve(&target, Some(&warm_from)).unwrap();
    assert!(max_abs_diff(&cold.precision, &warm.precision) <= 1e-8 * max_abs(&cold.precision));
    assert!(
        warm.n_iter < cold.n_iter,
        "warm {} cold {}",
        warm.n_iter,
        cold.n_iter
    );
    // from the solution itself: no iteration at all
    let again = solver.solve(&target, Some(&cold)).unwrap();
    assert_eq!(again.n_iter, 0);
}

#[test]
fn path_is_warm_started_and_monotone_in_sparsity() {
    let s = data_cov(30, 9);
    let lmax = lambda_max(s.view());
    let lambdas = ho_glasso::lambda_path(lmax, 0.05, 8);
    let fits = solve_path(
        &Auto {
            options: exact(),
            ..Default::default()
        },
        s.view(),
        &lambdas,
        false,
    )
    .unwrap();
    assert_eq!(fits.len(), 8);
    assert_eq!(fits[0].n_edges(), 0);
    assert!(fits.last().unwrap().n_edges() > fits[0].n_edges());
    for (fit, &l) in fits.iter().zip(&lambdas) {
        let lam = Penalty::scalar(l).to_matrix(30);
        assert_certified(fit, &s, &lam);
    }
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    let s = array![[1.0, 0.2], [0.2, 1.0]];
    let solve = |s: Array2<f64>, pen: Penalty| {
        Auto::default().solve(&GlassoProblem::new(s.view(), pen), None)
    };
    assert!(matches!(
        solve(Array2::zeros((2, 3)), Penalty::scalar(0.1)),
        Err(GlassoError::NotSquare { rows: 2, cols: 3 })
    ));
    assert!(matches!(
        solve(Array2::zeros((0, 0)), Penalty::scalar(0.1)),
        Err(GlassoError::Empty)
    ));
    assert!(matches!(
        solve(array![[1.0, f64::NAN], [0.0, 1.0]], Penalty::scalar(0.1)),
        Err(GlassoError::NonFinite {
            what: "covariance",
            ..
        })
    ));
    assert!(matches!(
        solve(array![[1.0, 0.3], [0.2, 1.0]], Penalty::scalar(0.1)),
        Err(GlassoError::NotSymmetric {
            what: "covariance",
            ..
        })
    ));
    assert!(matches!(
        solve(s.clone(), Penalty::scalar(-0.1)),
        Err(GlassoError::InvalidPenalty { .. })
    ));
    assert!(matches!(
        solve(s.clone(), Penalty::scalar(f64::NAN)),
        Err(GlassoError::InvalidPenalty { .. })
    ));
    assert!(
        matches!(solve(s.clone(), Penalty::Matrix(array![[0.0, -1.0], [-1.0, 0.0]])), Err(GlassoError::InvalidPenalty { value, .. }) if value == -1.0)
    );
    assert!(matches!(
        solve(s.clone(), Penalty::Matrix(array![[0.0, 0.1], [0.2, 0.0]])),
        Err(GlassoError::NotSymmetric {
            what: "penalty",
            ..
        })
    ));
    assert!(matches!(
        solve(s.clone(), Penalty::Matrix(Array2::zeros((3, 3)))),
        Err(GlassoError::PenaltyShape {
            expected: 2,
            found: 3
        })
    ));
    assert!(matches!(
        solve(array![[0.0, 0.0], [0.0, 1.0]], Penalty::scalar(0.1)),
        Err(GlassoError::Unbounded { index: 0, .. })
    ));
    // ...but a zero variance is fine when its diagonal is penalized
    assert!(solve(
        array![[0.0, 0.0], [0.0, 1.0]],
        Penalty::Scalar {
            alpha: 0.1,
            penalize_diagonal: true
        }
    )
    .is_ok());
    let bad = GlassoOptions {
        tol: 0.0,
        ..Default::default()
    };
    assert!(matches!(
        Auto {
            options: bad,
            ..Default::default()
        }
        .solve(&GlassoProblem::new(s.view(), Penalty::scalar(0.1)), None),
        Err(GlassoError::InvalidOption { name: "tol", .. })
    ));
    let warm = Auto::default()
        .solve(
            &GlassoProblem::new(Array2::eye(3).view(), Penalty::scalar(0.1)),
            None,
        )
        .unwrap();
    assert!(matches!(
        Auto::default().solve(
            &GlassoProblem::new(s.view(), Penalty::scalar(0.1)),
            Some(&warm)
        ),
        Err(GlassoError::WarmStartShape {
            expected: 2,
            found: 3
        })
    ));
    assert!(matches!(
        ho_glasso::solver_from_name("quic", GlassoOptions::default()),
        Err(GlassoError::UnknownSolver { .. })
    ));
}

#[test]
fn max_iter_is_a_status_not_an_error() {
    let s = data_cov(30, 10);
    let problem = GlassoProblem::new(s.view(), Penalty::scalar(0.02 * lambda_max(s.view())));
    let opts = GlassoOptions {
        max_iter: 1,
        ..exact()
    };
    let fit = ObnCg {
        options: opts,
        ..Default::default()
    }
    .solve(&problem, None)
    .unwrap();
    assert_eq!(fit.status, Status::MaxIter);
    assert!(fit.dual_gap > 0.0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]
    /// Permutation equivariance, scaling (cS, cΛ) → Θ/c, and agreement of the two Newton solvers.
    #[test]
    fn invariances(p in 3usize..20, seed in 0u64..500, ratio in 0.02f64..0.9) {
        let s = data_cov(p, seed);
        let alpha = ratio * lambda_max(s.view());
        let solver = Auto { options: exact(), ..Default::default() };
        let fit = solver.solve(&GlassoProblem::new(s.view(), Penalty::scalar(alpha)), None).unwrap();
        prop_assert_eq!(fit.status, Status::Converged);
        // permutation: reverse the indices
        let perm: Vec<usize> = (0..p).rev().collect();
        let sp = s.select(ndarray::Axis(0), &perm).select(ndarray::Axis(1), &perm);
        let fp = solver.solve(&GlassoProblem::new(sp.view(), Penalty::scalar(alpha)), None).unwrap();
        let back = fp.precision.select(ndarray::Axis(0), &perm).select(ndarray::Axis(1), &perm);
        prop_assert!(max_abs_diff(&back, &fit.precision) <= 1e-7 * max_abs(&fit.precision));
        // scaling
        let c = 3.7;
        let sc = &s * c;
        let fc = solver.solve(&GlassoProblem::new(sc.view(), Penalty::scalar(c * alpha)), None).unwrap();
        let scaled = &fc.precision * c;
        prop_assert!(max_abs_diff(&scaled, &fit.precision) <= 1e-7 * max_abs(&fit.precision));
        let newton = NewtonCd { options: exact(), ..Default::default() }
            .solve(&GlassoProblem::new(s.view(), Penalty::scalar(alpha)), None).unwrap();
        prop_assert!(max_abs_diff(&newton.precision, &fit.precision) <= 1e-7 * max_abs(&fit.precision));
    }
}

/// The screened driver meets the relative gap of the whole problem even when its blocks'
/// objectives cancel in the sum: each block solved to `tol` relative to its own objective is
/// not enough then (seen at p = 1000 on the paper's data: relative gap 1.04e-5 at tol 1e-5,
/// and the tuner's hypergradient refused the fit).
#[test]
fn blocks_whose_objectives_cancel_still_meet_the_whole_relative_gap() {
    // One block of 40 nodes from correlated data, scaled so that its objective is large and
    // negative (log det W_b ≈ 40·log 0.01), and isolated nodes whose objectives (log S_ii + 1)
    // bring the total to about 1.
    let nb = 40;
    let block = data_cov(nb, 3).mapv(|v| 0.01 * v);
    let lam_b = 0.05 * lambda_max(block.view());
    let tight = Auto {
        options: exact(),
        ..Default::default()
    };
    let fb = tight
        .solve(
            &GlassoProblem::new(block.view(), Penalty::scalar(lam_b)),
            None,
        )
        .unwrap()
        .objective;
    assert!(fb < -100.0, "{fb}");
    let k = 10;
    let c = ((1.0 - fb) / k as f64 - 1.0).exp();
    let p = nb + k;
    let mut s = Array2::zeros((p, p));
    s.slice_mut(ndarray::s![..nb, ..nb]).assign(&block);
    for i in nb..p {
        s[[i, i]] = c;
    }
    let problem = GlassoProblem::new(s.view(), Penalty::scalar(lam_b));
    let total = tight.solve(&problem, None).unwrap();
    assert!((total.objective - 1.0).abs() < 1e-6, "{}", total.objective);
    assert_eq!(total.n_blocks, k + 1);
    let loose = GlassoOptions {
        tol: 1e-4,
        kkt_tol: f64::INFINITY,
        max_iter: 500,
        screening: true,
    };
    let solvers: Vec<Box<dyn GlassoSolver>> = vec![
        Box::new(Auto {
            options: loose,
            ..Default::default()
        }),
        Box::new(NewtonCd {
            options: loose,
            ..Default::default()
        }),
        Box::new(ObnCg {
            options: loose,
            ..Default::default()
        }),
        Box::new(ho_glasso::Bcd {
            options: loose,
            ..Default::default()
        }),
        Box::new(ho_glasso::DualPn {
            options: loose,
            ..Default::default()
        }),
    ];
    for solver in &solvers {
        let fit = solver.solve(&problem, None).unwrap();
        let name = solver.name();
        assert_eq!(fit.status, Status::Converged, "{name}");
        assert!(
            fit.relative_gap() <= loose.tol,
            "{name}: {:e}",
            fit.relative_gap()
        );
        // The reported gap is the recomputed one.
        let lam = Penalty::scalar(lam_b).to_matrix(p);
        let obj = objective(fit.precision.view(), s.view(), lam.view()).unwrap();
        let gap = duality_gap(obj, fit.covariance.view(), s.view(), lam.view());
        assert!(
            (gap - fit.dual_gap).abs() <= 1e-9,
            "{name}: {gap:e} {:e}",
            fit.dual_gap
        );
        assert!(
            (fit.objective - total.objective).abs() <= 2.0 * loose.tol,
            "{name}"
        );
    }
}
