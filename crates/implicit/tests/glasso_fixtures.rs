//! Every hypergradient case of the shared fixtures: value, dL/dλ, dL/d(log λ), the matrix
//! ∂L/∂Λ and its pair version, the support size and the margin, from the stored Θ̂ (to 1e-9)
//! and end to end from our own NewtonCd solve (to 1e-6).

mod common;
use common::*;
use ho_glasso::{GlassoProblem, GlassoSolver, ObnCg, Penalty, Status};
use ho_implicit::glasso::{
    hypergradient, HeldOutNll, HypergradOptions, Kernel, Method, PreconditionerKind, Reconstruction,
};
use ho_linalg::CgOptions;

fn tight_cg() -> CgOptions {
    CgOptions {
        rel_tol: 1e-13,
        abs_tol: 0.0,
        max_iter: 5000,
    }
}

fn options(method: Method) -> HypergradOptions {
    HypergradOptions {
        method,
        cg: tight_cg(),
        ..Default::default()
    }
}

/// Checks a hypergradient against a case at relative tolerance `tol`.
fn check_case(case: &Case, h: &ho_implicit::Hypergradient, tol: f64, what: &str) {
    let id = &case.id;
    // the criterion is first order in the error of Θ̂: 1e-8 for a solve to KKT ≤ 1e-10
    let value_tol = if tol < 1e-8 { 1e-10 } else { 1e-8 };
    assert!(
        rel(h.value, case.f64("criterion_value")) <= value_tol,
        "{what} {id}: value {} vs {}",
        h.value,
        case.f64("criterion_value")
    );
    assert_eq!(
        h.support_size,
        case.f64("support_size") as usize,
        "{what} {id}"
    );
    if case.is_scalar() {
        let want = case.f64("dL_dlambda");
        let got = h.grad_lambda.unwrap();
        assert!(
            (got - want).abs() <= tol * want.abs().max(1e-3),
            "{what} {id}: dL/dλ {got} vs {want}"
        );
        let want_a = case.f64("dL_dalpha");
        let got_a = h.grad_log_lambda.unwrap();
        assert!(
            (got_a - want_a).abs() <= tol * want_a.abs().max(1e-3),
            "{what} {id}: dL/dα {got_a} vs {want_a}"
        );
    } else {
        assert!(h.grad_lambda.is_none() && h.grad_log_lambda.is_none());
    }
    if let (Some(want), Some(got)) = (case.grad(), h.grad_matrix.as_ref()) {
        let err = max_abs_diff(got, &want);
        assert!(
            err <= tol * max_abs(&want),
            "{what} {id}: matrix err {err:e} (max {:e})",
            max_abs(&want)
        );
    }
    if let (Some(want), Some(got)) = (case.grad_pair(), h.grad_pairs()) {
        assert!(
            max_abs_diff(&got, &want) <= tol * max_abs(&want),
            "{what} {id}: pairs"
        );
    }
    match (case.opt_f64("min_margin"), h.margin) {
        (None, None) => {}
        (Some(want), Some(got)) => assert!(
            (got - want).abs() <= 1e-6 * want.abs() + 1e-9,
            "{what} {id}: margin {got} vs {want}"
        ),
        (want, got) => panic!("{what} {id}: margin {got:?} vs {want:?}"),
    }
}

#[test]
fn adjoint_from_the_stored_theta_matches_every_case_to_1e9() {
    let mut n = 0;
    let mut worst = (0.0_f64, 0.0_f64);
    for case in cases() {
        let s = case.s_train();
        let problem = GlassoProblem::new(s.view(), case.penalty.clone());
        let fit = case.stored_fit();
        let crit = HeldOutNll::new(case.s_val());
        let h = hypergradient(&fit, &problem, &crit, &options(Method::Adjoint)).unwrap();
        check_case(&case, &h, 1e-9, "adjoint");
        if let Some(d) = h.grad_lambda {
            worst.0 = worst.0.max(rel(d, case.f64("dL_dlambda")));
        }
        if let (Some(want), Some(got)) = (case.grad(), h.grad_matrix.as_ref()) {
            worst.1 = worst.1.max(max_abs_diff(got, &want) / max_abs(&want));
        }
        assert!(h.grad_matrix.is_some());
        assert!(h.dual_gap.abs() <= 1e-12 * fit.objective.abs().max(1.0));
        n += 1;
    }
    assert_eq!(n, 54);
    println!(
        "from the stored Θ̂, worst relative error: dL/dλ {:.1e}, matrix {:.1e}",
        worst.0, worst.1
    );
}

#[test]
fn dense_forward_jacobi_and_both_kernels_match_the_stored_cases() {
    for case in cases().into_iter().filter(|c| c.p <= 20) {
        let s = case.s_train();
        let problem = GlassoProblem::new(s.view(), case.penalty.clone());
        let fit = case.stored_fit();
        let crit = HeldOutNll::new(case.s_val());
        let variants = [
            options(Method::DenseKronecker),
            HypergradOptions {
                full_matrix: true,
                ..options(Method::Forward)
            },
            options(Method::Forward),
            HypergradOptions {
                preconditioner: PreconditionerKind::Jacobi,
                kernel: Kernel::Dense,
                ..options(Method::Adjoint)
            },
            HypergradOptions {
                preconditioner: PreconditionerKind::None,
                kernel: Kernel::Sparse,
                ..options(Method::Adjoint)
            },
        ];
        for opts in variants {
            let h = hypergradient(&fit, &problem, &crit, &opts).unwrap();
            check_case(&case, &h, 1e-9, opts.method.name());
        }
    }
}

#[test]
fn reconstruction_criterion_matches_every_scalar_case() {
    let mut n = 0;
    for case in cases().into_iter().filter(Case::is_scalar) {
        let s = case.s_train();
        let problem = GlassoProblem::new(s.view(), case.penalty.clone());
        let fit = case.stored_fit();
        let crit = Reconstruction::new(case.s_val());
        let h = hypergradient(&fit, &problem, &crit, &options(Method::Adjoint)).unwrap();
        let r = &case.json["reconstruction"];
        let (value, want) = (
            r["value"].as_f64().unwrap(),
            r["dL_dlambda"].as_f64().unwrap(),
        );
        assert!(rel(h.value, value) <= 1e-12, "{}: value", case.id);
        let got = h.grad_lambda.unwrap();
        assert!(
            (got - want).abs() <= 1e-9 * want.abs().max(1e-3),
            "{}: {got} vs {want}",
            case.id
        );
        n += 1;
    }
    assert_eq!(n, 50);
}

#[test]
fn end_to_end_from_our_own_solve_matches_every_case_to_1e6() {
    let solver = tight_solver();
    let mut worst = (0.0_f64, 0.0_f64);
    for case in cases() {
        let s = case.s_train();
        let problem = GlassoProblem::new(s.view(), case.penalty.clone());
        let fit = solver.solve(&problem, None).unwrap();
        let want_theta = case.theta();
        for ((i, j), v) in want_theta.indexed_iter() {
            assert_eq!(
                *v != 0.0,
                fit.precision[[i, j]] != 0.0,
                "{}: support differs at ({i},{j})",
                case.id
            );
        }
        let crit = HeldOutNll::new(case.s_val());
        let h = hypergradient(&fit, &problem, &crit, &HypergradOptions::default()).unwrap();
        check_case(&case, &h, 1e-6, "end-to-end");
        if let Some(d) = h.grad_lambda {
            worst.0 = worst.0.max(rel(d, case.f64("dL_dlambda")));
        }
        if let (Some(want), Some(got)) = (case.grad(), h.grad_matrix.as_ref()) {
            worst.1 = worst.1.max(max_abs_diff(got, &want) / max_abs(&want));
        }
    }
    println!(
        "end to end, worst relative error: dL/dλ {:.1e}, matrix {:.1e}",
        worst.0, worst.1
    );
}

#[test]
fn finite_differences_match_the_stored_matrix_and_scalar() {
    // matrix (per pair) for the p = 10 weighted cases, scalar for a p = 20 case
    for case in cases()
        .into_iter()
        .filter(|c| (c.p == 10 && !c.is_scalar()) || c.id == "p20_n200_s3/scalar_offdiag_r0.20")
    {
        let s = case.s_train();
        let problem = GlassoProblem::new(s.view(), case.penalty.clone());
        let fit = tight_solver().solve(&problem, None).unwrap();
        let crit = HeldOutNll::new(case.s_val());
        let h = hypergradient(&fit, &problem, &crit, &options(Method::FiniteDiff)).unwrap();
        check_case(&case, &h, 1e-5, "finite-diff");
        if !case.is_scalar() {
            assert!(h.grad_matrix.is_some());
        }
    }
}

#[test]
fn unrolled_gista_converges_to_the_stored_hypergradients() {
    for case in cases()
        .into_iter()
        .filter(|c| matches!(c.p, 2 | 5) || c.id == "p10_n100_s2/weighted_zerodiag")
    {
        let s = case.s_train();
        let problem = GlassoProblem::new(s.view(), case.penalty.clone());
        let fit = case.stored_fit();
        let crit = HeldOutNll::new(case.s_val());
        let opts = HypergradOptions {
            full_matrix: case.p <= 5,
            ..options(Method::Unrolled)
        };
        let h = hypergradient(&fit, &problem, &crit, &opts).unwrap();
        check_case(&case, &h, 1e-7, "unrolled");
        assert!(h.report.n_iter > 1);
    }
}

#[test]
fn kronecker_preconditioner_needs_fewer_cg_iterations_than_jacobi() {
    // Prints the iteration counts (cargo test -- --nocapture) and asserts the ordering.
    println!("case                                   |E|   none  jacobi  kronecker");
    for case in cases() {
        let s = case.s_train();
        let problem = GlassoProblem::new(s.view(), case.penalty.clone());
        let fit = case.stored_fit();
        let crit = HeldOutNll::new(case.s_val());
        let count = |preconditioner| {
            let opts = HypergradOptions {
                preconditioner,
                cg: CgOptions {
                    rel_tol: 1e-10,
                    ..tight_cg()
                },
                ..Default::default()
            };
            hypergradient(&fit, &problem, &crit, &opts)
                .unwrap()
                .report
                .n_iter
        };
        let (none, jac, kron) = (
            count(PreconditionerKind::None),
            count(PreconditionerKind::Jacobi),
            count(PreconditionerKind::Kronecker),
        );
        println!(
            "{:38} {:5} {:5} {:7} {:10}",
            case.id,
            case.f64("support_size"),
            none,
            jac,
            kron
        );
        assert!(kron <= jac, "{}: kronecker {kron} > jacobi {jac}", case.id);
        if let Penalty::Scalar { .. } = case.penalty {
            assert!(kron <= none);
        }
    }
}

#[test]
fn end_to_end_at_the_held_out_minimum_of_the_paper_curve() {
    // curve_heldout_extended.csv row k = 76 (λ = 2.65e-3 λ_max, |E| = 8042 of 10⁴, margin
    // 6.4e-6): the dense regime where a tuner spends its time.
    let rows = read("p100_n2000_s5/curve_heldout_extended.csv");
    let row = rows.row(76 - 60);
    let (lambda, value, grad, support) = (row[0], row[2], row[4], row[5] as usize);
    let s = read("p100_n2000_s5/S_train.csv");
    let problem = GlassoProblem::new(s.view(), Penalty::scalar(lambda));
    // ObnCg, ho-glasso's dense-regime solver (NewtonCd needs ~40 s here)
    let solver = ObnCg {
        options: tight_solver().options,
        ..Default::default()
    };
    let fit = solver.solve(&problem, None).unwrap();
    assert_eq!(fit.status, Status::Converged);
    let crit = HeldOutNll::new(read("p100_n2000_s5/S_val.csv"));
    let h = hypergradient(&fit, &problem, &crit, &HypergradOptions::default()).unwrap();
    assert_eq!(h.support_size, support);
    assert!(rel(h.value, value) <= 1e-8, "value {} vs {value}", h.value);
    let got = h.grad_lambda.unwrap();
    assert!(rel(got, grad) <= 1e-6, "dL/dλ {got} vs {grad}");
    assert!((h.margin.unwrap() - row[9]).abs() <= 1e-8);
}
