//! On seeded random problems: the five methods agree, the operator equals its explicit
//! Kronecker matrix, CG equals the dense solve, the identities of docs/implicit-diff.md hold,
//! and the errors are the documented variants.

mod common;
use common::*;
use ho_glasso::{lambda_max, GlassoProblem, GlassoSolver, Penalty};
use ho_implicit::glasso::{
    hypergradient, kronecker_matrix, pattern_sum, ActiveSet, AdjointSolver, GlassoSystem,
    HeldOutNll, HypergradOptions, HypergradientEngine, Kernel, Method, PreconditionerKind,
    Reconstruction, RestrictedKronecker,
};
use ho_implicit::{hypergradient_adjoint, ImplicitError, ImplicitOptions, SolverChoice};
use ho_linalg::{CgOptions, LinearOperator};
use ndarray::{Array1, Array2};
use proptest::prelude::*;

fn tight() -> HypergradOptions {
    HypergradOptions {
        cg: CgOptions {
            rel_tol: 1e-13,
            abs_tol: 0.0,
            max_iter: 5000,
        },
        ..Default::default()
    }
}

#[test]
fn the_five_methods_agree_on_random_problems() {
    for &(p, seed, ratio, pd) in &[(6, 1, 0.3, false), (8, 2, 0.15, true), (12, 3, 0.1, false)] {
        let (s, s_val) = random_problem(p, 20 * p, seed);
        let (fit, penalty) = solve_scalar(&s, ratio, pd);
        let problem = GlassoProblem::new(s.view(), penalty);
        let crit = HeldOutNll::new(s_val);
        let run = |method, full_matrix| {
            let opts = HypergradOptions {
                method,
                full_matrix,
                ..tight()
            };
            hypergradient(&fit, &problem, &crit, &opts).unwrap()
        };
        let adjoint = run(Method::Adjoint, false);
        let g_ref = adjoint.grad_matrix.clone().unwrap();
        let d_ref = adjoint.grad_lambda.unwrap();
        assert!(
            adjoint.support_size > p,
            "p={p}: the test needs off-diagonal entries"
        );
        for (method, tol) in [
            (Method::Forward, 1e-10),
            (Method::DenseKronecker, 1e-10),
            (Method::Unrolled, 1e-7),
            (Method::FiniteDiff, 1e-5),
        ] {
            let scalar = run(method, false);
            let d = scalar.grad_lambda.unwrap();
            assert!(
                (d - d_ref).abs() <= tol * d_ref.abs().max(1e-3),
                "p={p} {}: {d} vs {d_ref}",
                method.name()
            );
            if p <= 8 || matches!(method, Method::Forward | Method::DenseKronecker) {
                let full = run(method, true);
                let g = full.grad_matrix.unwrap();
                let err = max_abs_diff(&g, &g_ref);
                assert!(
                    err <= tol * max_abs(&g_ref),
                    "p={p} {} matrix: {err:e}",
                    method.name()
                );
            }
        }
    }
}

#[test]
fn the_operator_is_the_restricted_kronecker_product_and_cg_equals_the_dense_solve() {
    for &(p, ratio) in &[(7, 0.5), (10, 0.1), (10, 0.0)] {
        let (s, s_val) = random_problem(p, 20 * p, 11);
        let (fit, _) = solve_scalar(&s, ratio, false);
        let active = ActiveSet::from_precision(fit.precision.view());
        if ratio == 0.0 {
            assert!(active.is_full());
        }
        let want = kronecker_matrix(fit.covariance.view(), &active);
        for kernel in [Kernel::Sparse, Kernel::Dense] {
            let m = RestrictedKronecker::new(fit.covariance.view(), &active, kernel);
            let got = m.to_dense();
            assert!(max_abs_diff(&got, &want) <= 1e-13 * max_abs(&want));
            // ⟨M x, y⟩ = ⟨x, M y⟩
            let n = active.len();
            let x = Array1::from_shape_fn(n, |i| ((i * 7 + 1) as f64).sin());
            let y = Array1::from_shape_fn(n, |i| ((i * 3 + 2) as f64).cos());
            let (mut mx, mut my) = (Array1::zeros(n), Array1::zeros(n));
            m.apply(x.view(), mx.view_mut());
            m.apply(y.view(), my.view_mut());
            let (a, b) = (mx.dot(&y), x.dot(&my));
            assert!((a - b).abs() <= 1e-13 * a.abs().max(1.0));
            // the Kronecker preconditioner is (Θ ⊗ Θ)_{E,E}; the exact inverse when E is full
            let k = RestrictedKronecker::new(fit.precision.view(), &active, kernel);
            let kd = k.to_dense();
            assert!(
                max_abs_diff(&kd, &kronecker_matrix(fit.precision.view(), &active))
                    <= 1e-13 * max_abs(&kd)
            );
            if active.is_full() {
                let prod = kd.dot(&got);
                let eye = Array2::<f64>::eye(n);
                assert!(max_abs_diff(&prod, &eye) <= 1e-9);
            }
        }
        // CG (matrix-free, each preconditioner) equals the dense Cholesky solve
        let g = active.gather_owned((&s_val - &fit.covariance).view());
        let dense = ImplicitOptions {
            solver: SolverChoice::Dense,
            ..Default::default()
        };
        let sys = GlassoSystem::new(
            fit.precision.view(),
            fit.covariance.view(),
            &active,
            Kernel::Auto,
            PreconditionerKind::None,
        )
        .unwrap();
        let u_ref = hypergradient_adjoint(&sys, g.view(), &dense, None).unwrap();
        for pre in [
            PreconditionerKind::None,
            PreconditionerKind::Jacobi,
            PreconditionerKind::Kronecker,
        ] {
            let sys = GlassoSystem::new(
                fit.precision.view(),
                fit.covariance.view(),
                &active,
                Kernel::Auto,
                pre,
            )
            .unwrap();
            let cg = ImplicitOptions {
                cg: CgOptions {
                    rel_tol: 1e-13,
                    abs_tol: 0.0,
                    max_iter: 5000,
                },
                ..Default::default()
            };
            let u = hypergradient_adjoint(&sys, g.view(), &cg, None).unwrap();
            let err = (&u.adjoint - &u_ref.adjoint)
                .iter()
                .fold(0.0_f64, |m, v| m.max(v.abs()));
            let scale = u_ref.adjoint.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
            assert!(err <= 1e-10 * scale, "{pre:?}: {err:e}");
            if pre == PreconditionerKind::Kronecker && active.is_full() {
                assert!(
                    u.report.n_iter <= 2,
                    "exact preconditioner: {}",
                    u.report.n_iter
                );
            }
        }
    }
}

#[test]
fn grad_lambda_is_the_pattern_sum_and_the_log_and_pair_forms_follow() {
    for pd in [false, true] {
        let (s, s_val) = random_problem(9, 200, 5);
        let (fit, penalty) = solve_scalar(&s, 0.2, pd);
        let alpha = penalty.alpha().unwrap();
        let problem = GlassoProblem::new(s.view(), penalty);
        let h = hypergradient(&fit, &problem, &HeldOutNll::new(s_val), &tight()).unwrap();
        let g = h.grad_matrix.clone().unwrap();
        let d = h.grad_lambda.unwrap();
        assert!((d - pattern_sum(g.view(), pd)).abs() <= 1e-14 * d.abs().max(1.0));
        assert_eq!(h.grad_log_lambda, Some(alpha * d));
        // symmetric, zero off the support
        for ((i, j), v) in g.indexed_iter() {
            assert!((v - g[[j, i]]).abs() <= 1e-12 * max_abs(&g));
            if fit.precision[[i, j]] == 0.0 {
                assert_eq!(v.to_bits(), 0.0_f64.to_bits());
            }
        }
        let lam = problem.penalty.to_matrix(9);
        let log = h.grad_log_matrix(lam.view()).unwrap();
        assert!((pattern_sum(log.view(), pd) - alpha * d).abs() <= 1e-12 * (alpha * d).abs());
        let pairs = h.grad_pairs().unwrap();
        assert!((pairs[[0, 1]] - 2.0 * g[[0, 1]]).abs() <= 1e-15 * g[[0, 1]].abs());
        assert_eq!(pairs[[3, 3]].to_bits(), g[[3, 3]].to_bits());
    }
}

#[test]
fn the_hypergradient_is_exactly_zero_above_lambda_max_with_an_unpenalized_diagonal() {
    let (s, s_val) = random_problem(8, 160, 2);
    let (fit, _) = solve_scalar(&s, 1.5, false);
    assert_eq!(fit.support_size(), 8);
    let problem = GlassoProblem::new(s.view(), Penalty::scalar(1.5 * lambda_max(s.view())));
    for crit in [
        &HeldOutNll::new(s_val.clone()) as &dyn ho_implicit::Criterion,
        &Reconstruction::new(s_val.clone()),
    ] {
        for method in [Method::Adjoint, Method::Forward, Method::DenseKronecker] {
            let opts = HypergradOptions { method, ..tight() };
            let h = hypergradient(&fit, &problem, crit, &opts).unwrap();
            assert_eq!(h.grad_lambda.unwrap().abs().to_bits(), 0.0_f64.to_bits());
            assert!(h.margin.unwrap() > 0.0);
        }
    }
    // with a penalized diagonal it is not
    let (fit, penalty) = solve_scalar(&s, 1.5, true);
    let problem = GlassoProblem::new(s.view(), penalty);
    let h = hypergradient(&fit, &problem, &HeldOutNll::new(s_val), &tight()).unwrap();
    assert!(h.grad_lambda.unwrap().abs() > 0.0);
}

#[test]
fn the_support_and_complement_adjoint_solvers_agree_warm_and_cold() {
    // sparse (Z large) to dense (Z small) supports, both solvers forced
    for &(p, seed, ratio) in &[(15, 5, 0.5), (20, 6, 0.1), (25, 7, 0.02), (30, 8, 0.005)] {
        let (s, s_val) = random_problem(p, 20 * p, seed);
        let crit = HeldOutNll::new(s_val);
        let mut engines = [AdjointSolver::Support, AdjointSolver::Complement].map(|a| {
            HypergradientEngine::new(HypergradOptions {
                adjoint_solver: a,
                ..tight()
            })
        });
        let mut previous: Option<ho_glasso::GlassoFit> = None;
        let lmax = lambda_max(s.view());
        // a short path: the second and third calls are warm-started across support changes
        for k in 0..5 {
            let lambda = lmax * ratio * (0.9_f64).powi(k);
            let problem = GlassoProblem::new(s.view(), Penalty::scalar(lambda));
            let fit = tight_solver().solve(&problem, previous.as_ref()).unwrap();
            let [a, b] = engines
                .each_mut()
                .map(|e| e.hypergradient(&fit, &problem, &crit).unwrap());
            let (ga, gb) = (a.grad_matrix.unwrap(), b.grad_matrix.unwrap());
            let err = max_abs_diff(&ga, &gb);
            assert!(
                err <= 1e-9 * max_abs(&ga),
                "p={p} λ={ratio}·λmax k={k}: {err:e} (|E| = {})",
                a.support_size
            );
            assert!(b.report.residual_norm <= a.report.residual_norm.max(1e-12) * 1e3);
            previous = Some(fit);
        }
    }
}

#[test]
fn a_warm_start_saves_iterations_and_survives_a_support_change() {
    let (s, s_val) = random_problem(30, 600, 4);
    let crit = HeldOutNll::new(s_val);
    let mut engine = HypergradientEngine::new(HypergradOptions {
        preconditioner: PreconditionerKind::Jacobi,
        ..tight()
    });
    let mut supports = Vec::new();
    let mut warm_iters = 0;
    let mut cold_iters = 0;
    let lmax = lambda_max(s.view());
    let mut previous: Option<ho_glasso::GlassoFit> = None;
    for k in 0..6 {
        let lambda = lmax * 0.2 * (0.97_f64).powi(k);
        let problem = GlassoProblem::new(s.view(), Penalty::scalar(lambda));
        let fit = tight_solver().solve(&problem, previous.as_ref()).unwrap();
        let warm = engine.hypergradient(&fit, &problem, &crit).unwrap();
        let cold = hypergradient(&fit, &problem, &crit, &engine.options).unwrap();
        let (a, b) = (warm.grad_lambda.unwrap(), cold.grad_lambda.unwrap());
        assert!((a - b).abs() <= 1e-9 * b.abs(), "k={k}: {a} vs {b}");
        if k > 0 {
            warm_iters += warm.report.n_iter;
            cold_iters += cold.report.n_iter;
        }
        supports.push(fit.support_size());
        previous = Some(fit);
    }
    assert!(engine.has_warm_start());
    assert!(
        supports.windows(2).any(|w| w[0] != w[1]),
        "the path should change support: {supports:?}"
    );
    assert!(
        warm_iters < cold_iters,
        "warm {warm_iters} vs cold {cold_iters}"
    );
    engine.reset();
    assert!(!engine.has_warm_start());
}

#[test]
fn documented_errors() {
    let (s, s_val) = random_problem(6, 120, 8);
    let (mut fit, penalty) = solve_scalar(&s, 0.2, false);
    let problem = GlassoProblem::new(s.view(), penalty);
    let crit = HeldOutNll::new(s_val.clone());
    let small = HypergradOptions {
        method: Method::DenseKronecker,
        dense_limit: 3,
        ..Default::default()
    };
    assert!(matches!(
        hypergradient(&fit, &problem, &crit, &small),
        Err(ImplicitError::TooLarge { limit: 3, .. })
    ));
    let bad = HypergradOptions {
        gap_tol: -1.0,
        ..Default::default()
    };
    assert!(matches!(
        hypergradient(&fit, &problem, &crit, &bad),
        Err(ImplicitError::InvalidOption {
            name: "gap_tol",
            ..
        })
    ));
    let short = HypergradOptions {
        cg: CgOptions {
            rel_tol: 1e-15,
            abs_tol: 0.0,
            max_iter: 1,
        },
        preconditioner: PreconditionerKind::None,
        adjoint_solver: AdjointSolver::Support,
        ..Default::default()
    };
    assert!(matches!(
        hypergradient(&fit, &problem, &crit, &short),
        Err(ImplicitError::LinearSolveFailed { n_iter: 1, .. })
    ));
    // through the complement: Z holds more than half of the entries here, so it is
    // preconditioned by Jacobi and its products are the ordered sparse kernel, with no
    // single-precision refinement: one double-precision iteration on Z, then one finishing
    // iteration on M (without the Kronecker preconditioner, no refinement on M); both counted
    let short_complement = HypergradOptions {
        adjoint_solver: AdjointSolver::Complement,
        ..short
    };
    assert!(matches!(
        hypergradient(&fit, &problem, &crit, &short_complement),
        Err(ImplicitError::LinearSolveFailed { n_iter: 2, .. })
    ));
    let bad_fraction = HypergradOptions {
        complement_fraction: f64::NAN,
        ..Default::default()
    };
    assert!(matches!(
        hypergradient(&fit, &problem, &crit, &bad_fraction),
        Err(ImplicitError::InvalidOption {
            name: "complement_fraction",
            ..
        })
    ));
    let wrong_p = HeldOutNll::new(Array2::eye(5));
    assert!(matches!(
        hypergradient(&fit, &problem, &wrong_p, &Default::default()),
        Err(ImplicitError::DimensionMismatch {
            expected: 5,
            found: 6
        })
    ));
    fit.dual_gap = 1e-3;
    assert!(matches!(
        hypergradient(&fit, &problem, &crit, &Default::default()),
        Err(ImplicitError::InnerNotConverged { tol, .. }) if tol.to_bits() == 1e-8_f64.to_bits()
    ));
    let lenient = HypergradOptions {
        gap_tol: 1.0,
        ..Default::default()
    };
    assert!(hypergradient(&fit, &problem, &crit, &lenient).is_ok());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Adjoint vs central finite differences in log λ (two NewtonCd solves), when the
    /// support is the same at both ends.
    #[test]
    fn adjoint_matches_finite_differences(p in 3usize..8, seed in 0u64..500, log_ratio in -3.0f64..-0.2) {
        let (s, s_val) = random_problem(p, 10 * p, seed);
        let lmax = lambda_max(s.view());
        prop_assume!(lmax > 0.0);
        let alpha = lmax * log_ratio.exp();
        let solver = tight_solver();
        let solve = |a: f64| solver.solve(&GlassoProblem::new(s.view(), Penalty::scalar(a)), None).unwrap();
        let h: f64 = 1e-5;
        let (fit, plus, minus) = (solve(alpha), solve(alpha * h.exp()), solve(alpha * (-h).exp()));
        let e = ActiveSet::from_precision(fit.precision.view());
        prop_assume!(e.symmetric_difference(&ActiveSet::from_precision(plus.precision.view())) == 0);
        prop_assume!(e.symmetric_difference(&ActiveSet::from_precision(minus.precision.view())) == 0);
        let crit = HeldOutNll::new(s_val);
        let problem = GlassoProblem::new(s.view(), Penalty::scalar(alpha));
        let hg = hypergradient(&fit, &problem, &crit, &tight()).unwrap();
        use ho_implicit::Criterion;
        let fd = (crit.value(plus.precision.view(), plus.covariance.view()).unwrap()
            - crit.value(minus.precision.view(), minus.covariance.view()).unwrap()) / (2.0 * h);
        let got = hg.grad_log_lambda.unwrap();
        prop_assert!((got - fd).abs() <= 1e-5 * got.abs().max(1e-2), "adjoint {} fd {}", got, fd);
        // and the forward mode gives the same
        let fwd = hypergradient(&fit, &problem, &crit, &HypergradOptions { method: Method::Forward, ..tight() }).unwrap();
        prop_assert!((fwd.grad_log_lambda.unwrap() - got).abs() <= 1e-9 * got.abs().max(1e-6));
    }
}

#[test]
fn the_generic_dense_jacobian_of_the_glasso_system_gives_the_same_matrix() {
    let (s, s_val) = random_problem(6, 120, 21);
    let (fit, penalty) = solve_scalar(&s, 0.2, true);
    let problem = GlassoProblem::new(s.view(), penalty);
    let h = hypergradient(&fit, &problem, &HeldOutNll::new(s_val.clone()), &tight()).unwrap();
    let active = ActiveSet::from_precision(fit.precision.view());
    let sys = GlassoSystem::new(
        fit.precision.view(),
        fit.covariance.view(),
        &active,
        Kernel::Auto,
        PreconditionerKind::Kronecker,
    )
    .unwrap();
    // J = ∂vec(Θ)_E / ∂vec(Λ): |E| × p², then ∂L/∂Λ = Jᵀ g_E
    let j = ho_implicit::jacobian(&sys, &ImplicitOptions::default()).unwrap();
    assert_eq!(j.dim(), (active.len(), 36));
    let g_e = active.gather_owned((&s_val - &fit.covariance).view());
    let g = j.t().dot(&g_e).into_shape_with_order((6, 6)).unwrap();
    let want = h.grad_matrix.unwrap();
    assert!(max_abs_diff(&g, &want) <= 1e-10 * max_abs(&want));
    // columns of entries off the support are zero: moving Λ_kl there does not move Θ̂
    for (k, col) in j.columns().into_iter().enumerate() {
        if fit.precision[[k / 6, k % 6]] == 0.0 {
            assert!(col.iter().all(|v| v.abs() == 0.0));
        }
    }
}

/// One hypergradient of [`engine_along_the_path`]: the engine's complement margin before
/// and after it, its certificate ratio, and the gradient's error relative to a tight solve.
struct EngineStep {
    margin: f64,
    next_margin: f64,
    ratio: f64,
    error: f64,
}

/// A stateful engine's complement hypergradients at five penalties 0.01·0.95^k·λ_max, each
/// fit warm from the previous one.
fn engine_along_the_path(
    s: &Array2<f64>,
    crit: &HeldOutNll,
    options: HypergradOptions,
) -> Vec<EngineStep> {
    let mut engine = HypergradientEngine::new(options);
    let lmax = lambda_max(s.view());
    let mut previous: Option<ho_glasso::GlassoFit> = None;
    let mut steps = Vec::new();
    for k in 0..5 {
        let problem = GlassoProblem::new(s.view(), Penalty::scalar(lmax * 0.01 * 0.95_f64.powi(k)));
        let fit = tight_solver().solve(&problem, previous.as_ref()).unwrap();
        let margin = engine.complement_margin();
        let h = engine.hypergradient(&fit, &problem, crit).unwrap();
        let reference = hypergradient(&fit, &problem, crit, &tight()).unwrap();
        let (g, r) = (h.grad_matrix.unwrap(), reference.grad_matrix.unwrap());
        steps.push(EngineStep {
            margin,
            next_margin: engine.complement_margin(),
            ratio: h.certificate_ratio.unwrap(),
            error: max_abs_diff(&g, &r) / max_abs(&r),
        });
        previous = Some(fit);
    }
    steps
}

#[test]
fn the_engine_tightens_the_complement_margin_after_a_missed_certificate() {
    // With the Z system solved only to the requested residual itself (margin 1), the
    // recovered adjoint misses it on M (the Z residual is amplified) and a finishing solve
    // on M follows; the engine then asks the next Z solves for 0.3/ratio of that, and their
    // adjoints pass the certificate. Every gradient matches a tight solve.
    let (s, s_val) = random_problem(40, 800, 9);
    let crit = HeldOutNll::new(s_val);
    let options = HypergradOptions {
        adjoint_solver: AdjointSolver::Complement,
        complement_margin: 1.0,
        cg: CgOptions {
            rel_tol: 1e-6,
            abs_tol: 0.0,
            max_iter: 5000,
        },
        ..Default::default()
    };
    let steps = engine_along_the_path(&s, &crit, options);
    let mut ratios = Vec::new();
    for (k, step) in steps.iter().enumerate() {
        assert!(step.error <= 1e-4, "k={k}");
        if step.ratio > 1.0 {
            let expected = (step.margin * 0.3 / step.ratio).clamp(1.0 / 50.0, 1.0);
            assert_eq!(step.next_margin.to_bits(), expected.to_bits());
        }
        ratios.push((step.margin, step.ratio));
    }
    let lmax = lambda_max(s.view());
    // (margin, ratio) per step: a miss, then passes with a margin below the option.
    assert!(ratios.iter().any(|&(_, r)| r > 1.0), "{ratios:?}");
    for w in ratios.windows(2) {
        if w[0].1 > 1.0 {
            assert!(w[1].0 < w[0].0 && w[1].1 <= 1.0, "{ratios:?}");
        }
    }
    // The stateless solver keeps the option, and reports no ratio for the support solver.
    let problem = GlassoProblem::new(s.view(), Penalty::scalar(lmax * 0.01));
    let fit = tight_solver().solve(&problem, None).unwrap();
    let support = HypergradOptions {
        adjoint_solver: AdjointSolver::Support,
        ..options
    };
    assert!(hypergradient(&fit, &problem, &crit, &support)
        .unwrap()
        .certificate_ratio
        .is_none());
    for bad in [0.0, 1.5, f64::NAN] {
        let r = hypergradient(
            &fit,
            &problem,
            &crit,
            &HypergradOptions {
                complement_margin: bad,
                ..options
            },
        );
        assert!(
            matches!(
                r,
                Err(ImplicitError::InvalidOption {
                    name: "complement_margin",
                    ..
                })
            ),
            "{bad}"
        );
    }
}

#[test]
fn the_default_adjoint_solver_goes_through_the_complement_from_about_a_quarter_of_the_entries() {
    // A support on 22–33 % of the entries (2 < |Z|/|E| ≤ 3.5): the complement, whose
    // iterations cost two single-precision products against four double-precision ones on M
    // (`HypergradOptions::complement_fraction`), and the same gradient as on the support.
    let (s, s_val) = random_problem(40, 800, 3);
    let crit = HeldOutNll::new(s_val);
    let lmax = lambda_max(s.view());
    let mut found = false;
    for k in 0..40 {
        let lambda = lmax * 0.5 * (0.85_f64).powi(k);
        let problem = GlassoProblem::new(s.view(), Penalty::scalar(lambda));
        let fit = tight_solver().solve(&problem, None).unwrap();
        let e = fit.support_size() as f64;
        let z = 1600.0 - e;
        if !(z > 2.0 * e && z <= 3.5 * e) {
            continue;
        }
        found = true;
        let auto = hypergradient(&fit, &problem, &crit, &tight()).unwrap();
        assert!(
            auto.certificate_ratio.is_some(),
            "|E| = {e}: Auto took the support"
        );
        let support = HypergradOptions {
            adjoint_solver: AdjointSolver::Support,
            ..tight()
        };
        let on_e = hypergradient(&fit, &problem, &crit, &support).unwrap();
        let (a, b) = (auto.grad_lambda.unwrap(), on_e.grad_lambda.unwrap());
        assert!((a - b).abs() <= 1e-9 * b.abs(), "|E| = {e}: {a} vs {b}");
    }
    assert!(
        found,
        "no λ of the path put the support on 22–33 % of the entries"
    );
}

#[test]
fn tight_complement_solves_take_their_margin_below_1e_8() {
    // The scalar stage's last hypergradients ask for 1e-8. With the Z target floored at 1e-8
    // (an earlier Z_MARGIN_FLOOR) the adapted margin could not apply: every such adjoint
    // missed its certificate on M and was finished there by double-precision products of
    // the large side (at p = 1000, 1.2–1.4 s each against 0.35 s for the Z solve). With the
    // margin taken down to 1e-10 the misses stop after the first one.
    let (s, s_val) = random_problem(40, 800, 9);
    let crit = HeldOutNll::new(s_val);
    let options = HypergradOptions {
        adjoint_solver: AdjointSolver::Complement,
        complement_margin: 1.0,
        cg: CgOptions {
            rel_tol: 1e-8,
            abs_tol: 0.0,
            max_iter: 5000,
        },
        ..Default::default()
    };
    let steps = engine_along_the_path(&s, &crit, options);
    for (k, step) in steps.iter().enumerate() {
        assert!(step.error <= 1e-6, "k={k}");
    }
    let ratios: Vec<f64> = steps.iter().map(|step| step.ratio).collect();
    assert!(ratios[0] > 1.0, "{ratios:?}");
    assert!(ratios[1..].iter().all(|&r| r <= 1.0), "{ratios:?}");
}
