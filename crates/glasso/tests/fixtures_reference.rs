//! Every GLASSO case of the shared fixtures: Θ̂ to 1e-7 relative, identical support, tiny gap
//! (against the fit's and the reference's dual points), the solver's reported gap a true bound.

mod common;
use common::*;
use ho_glasso::{
    duality_gap, kkt_residual, objective, Auto, Bcd, DualPn, Gista, GlassoOptions, GlassoProblem,
    GlassoSolver, NewtonCd, ObnCg, Status,
};
use ho_linalg::Cholesky;

fn check_solver(solver: &dyn GlassoSolver, max_p: usize) {
    check_solver_gaps(solver, max_p, true);
}

/// `own_gap`: whether the fit's gap against its own clip(W − S) is asserted (not for DualPn
/// certifying against its dual iterate, whose reported gap is against that iterate).
fn check_solver_gaps(solver: &dyn GlassoSolver, max_p: usize, own_gap: bool) {
    let mut n_checked = 0;
    for case in cases().iter().filter(|c| c.p <= max_p) {
        let s = case.s_train();
        let problem = GlassoProblem::new(s.view(), case.penalty.clone());
        let lam = problem.penalty.to_matrix(case.p);
        let fit = solver
            .solve(&problem, None)
            .unwrap_or_else(|e| panic!("{} {}: {e}", solver.name(), case.id));
        let want = case.theta();
        let name = solver.name();
        assert_eq!(
            fit.status,
            Status::Converged,
            "{name} {}: gap {:e} kkt {:e} iters {}",
            case.id,
            fit.dual_gap,
            fit.kkt_residual,
            fit.n_iter
        );
        let err = max_abs_diff(&fit.precision, &want);
        assert!(
            err <= 1e-7 * max_abs(&want),
            "{name} {}: max abs diff {err:e}",
            case.id
        );
        for ((i, j), v) in want.indexed_iter() {
            assert_eq!(
                *v != 0.0,
                fit.precision[[i, j]] != 0.0,
                "{name} {}: support differs at ({i},{j})",
                case.id
            );
        }
        // Certificates recomputed from scratch, not trusted from the solver: the gap of the
        // fit against its own dual point clip(W − S) (DESIGN.md §1), and against the certified
        // reference's clip(Θ̂⁻¹ − S) (a bound on its suboptimality independent of the solver).
        let obj = objective(fit.precision.view(), s.view(), lam.view()).unwrap();
        let scale = obj.abs().max(1.0);
        let gap = duality_gap(obj, fit.covariance.view(), s.view(), lam.view());
        assert!(
            !own_gap || gap.abs() <= 1e-10 * scale,
            "{name} {}: gap {gap:e}",
            case.id
        );
        let w_ref = Cholesky::factor(want.view())
            .and_then(Cholesky::into_inverse)
            .unwrap();
        let gap_ref = duality_gap(obj, w_ref.view(), s.view(), lam.view());
        assert!(
            gap_ref.abs() <= 1e-10 * scale,
            "{name} {}: gap against the reference {gap_ref:e}",
            case.id
        );
        assert!((obj - case.f64("primal_objective")).abs() <= 1e-10 * scale);
        // The solver's reported gap bounds the suboptimality it claims to bound.
        assert!(
            obj - case.f64("primal_objective") <= fit.dual_gap + 1e-13 * scale,
            "{name} {}: reported gap {:e} below the suboptimality {:e}",
            case.id,
            fit.dual_gap,
            obj - case.f64("primal_objective")
        );
        let kkt = kkt_residual(
            fit.precision.view(),
            fit.covariance.view(),
            s.view(),
            lam.view(),
        );
        assert!(kkt <= 1e-7, "{name} {}: kkt {kkt:e}", case.id);
        // W Θ = I
        let wt = fit.covariance.dot(&fit.precision);
        let eye = ndarray::Array2::<f64>::eye(case.p);
        assert!(max_abs_diff(&wt, &eye) <= 1e-10, "{name} {}", case.id);
        n_checked += 1;
    }
    assert!(n_checked >= 30, "only {n_checked} cases checked");
}

fn tight() -> GlassoOptions {
    GlassoOptions {
        tol: 1e-12,
        kkt_tol: 1e-10,
        max_iter: 500,
        screening: true,
    }
}

#[test]
fn auto_matches_every_fixture() {
    check_solver(
        &Auto {
            options: tight(),
            ..Default::default()
        },
        100,
    );
}

#[test]
fn newton_cd_matches_every_fixture() {
    check_solver(
        &NewtonCd {
            options: tight(),
            ..Default::default()
        },
        100,
    );
}

#[test]
fn obn_cg_matches_every_fixture() {
    check_solver(
        &ObnCg {
            options: tight(),
            ..Default::default()
        },
        100,
    );
}

#[test]
fn dual_pn_matches_every_fixture() {
    check_solver(
        &DualPn {
            options: tight(),
            ..Default::default()
        },
        100,
    );
    check_solver_gaps(
        &DualPn {
            options: tight(),
            certify_against_iterate: true,
            ..Default::default()
        },
        100,
        false,
    );
}

#[test]
fn bcd_matches_every_fixture() {
    check_solver(
        &Bcd {
            options: GlassoOptions {
                max_iter: 2000,
                ..tight()
            },
            ..Default::default()
        },
        50,
    );
}

#[test]
fn gista_matches_every_fixture() {
    check_solver(
        &Gista {
            options: GlassoOptions {
                max_iter: 20000,
                ..tight()
            },
        },
        20,
    );
}
