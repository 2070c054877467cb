//! The generic layer on two instances besides the GLASSO: ridge regression (closed-form
//! Jacobian) and the Lasso / elastic net (held-out fixture `lasso_n100_p30_s7`, see
//! tests/fixtures/README.md), on its support (CG) and as a proximal-gradient fixed point
//! (BiCGSTAB, non-symmetric).

use ho_implicit::lasso::{validation_mse, ElasticNet, ElasticNetOptions};
use ho_implicit::ridge::Ridge;
use ho_implicit::{
    hypergradient_adjoint, jacobian, jvp, FixedPointResidual, ImplicitOptions, ImplicitSystem,
    SolverChoice, Structure,
};
use ho_linalg::io::read_matrix;
use ho_linalg::testing::{gaussian_matrix, rng};
use ho_linalg::CgOptions;
use ndarray::{s, Array1, Array2};
use std::path::PathBuf;

fn solvers() -> Vec<ImplicitOptions> {
    let cg = CgOptions {
        rel_tol: 1e-14,
        abs_tol: 0.0,
        max_iter: 2000,
    };
    [
        SolverChoice::Auto,
        SolverChoice::Cg,
        SolverChoice::Bicgstab,
        SolverChoice::Dense,
    ]
    .into_iter()
    .map(|solver| ImplicitOptions {
        solver,
        cg,
        ..Default::default()
    })
    .collect()
}

fn max_abs(a: &Array2<f64>) -> f64 {
    a.iter().fold(0.0_f64, |m, v| m.max(v.abs()))
}

#[test]
fn ridge_jacobian_vjp_and_jvp_match_the_closed_form() {
    let mut r = rng(3);
    let (n, p) = (40, 12);
    let x = gaussian_matrix(n, p, &mut r);
    let y = gaussian_matrix(n, 1, &mut r).column(0).to_owned();
    let lambdas = Array1::from_shape_fn(p, |j| 0.05 * (1.0 + j as f64));
    let ridge = Ridge { x, y, lambdas };
    let beta = ridge.solve().unwrap();
    let want = ridge.closed_form_jacobian(beta.view()).unwrap();
    let sys = ridge.system(beta.view());
    assert_eq!(sys.structure(), Structure::SymmetricPositiveDefinite);
    let g = Array1::from_shape_fn(p, |j| (j as f64 * 0.9).cos());
    let t = Array1::from_shape_fn(p, |j| (j as f64 * 0.4).sin());
    for opts in solvers() {
        let j = jacobian(&sys, &opts).unwrap();
        assert!((&j - &want)
            .iter()
            .all(|v| v.abs() <= 1e-12 * max_abs(&want)));
        let vjp = hypergradient_adjoint(&sys, g.view(), &opts, None).unwrap();
        let diff = &vjp.hypergrad - &want.t().dot(&g);
        assert!(diff.iter().all(|v| v.abs() <= 1e-11), "{:?}", opts.solver);
        let (d, _) = jvp(&sys, t.view(), &opts).unwrap();
        assert!((&d - &want.dot(&t)).iter().all(|v| v.abs() <= 1e-11));
    }
    // a warm start at the answer costs no iteration
    let opts = solvers()[0];
    let first = hypergradient_adjoint(&sys, g.view(), &opts, None).unwrap();
    let again = hypergradient_adjoint(&sys, g.view(), &opts, Some(first.adjoint.view())).unwrap();
    assert_eq!(again.report.n_iter, 0);
}

fn lasso_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures"))
}

fn read(rel: &str) -> Array2<f64> {
    read_matrix(lasso_dir().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn lasso_and_elastic_net_hypergradients_match_the_fixture() {
    let text = std::fs::read_to_string(lasso_dir().join("lasso_manifest.json")).unwrap();
    let m: serde_json::Value = serde_json::from_str(&text).unwrap();
    let lasso = &m["lasso"];
    let x = read("lasso_n100_p30_s7/X.csv");
    let y = read("lasso_n100_p30_s7/y.csv").column(0).to_owned();
    let n_train = lasso["dataset"]["n_train"].as_u64().unwrap() as usize;
    let x_train = x.slice(s![..n_train, ..]).to_owned();
    let y_train = y.slice(s![..n_train]).to_owned();
    let (x_val, y_val) = (x.slice(s![n_train.., ..]), y.slice(s![n_train..]));
    let cases = lasso["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 7);
    for case in cases {
        let id = case["id"].as_str().unwrap();
        let f = |k: &str| case[k].as_f64().unwrap();
        let lmax = ElasticNet::lambda_max(x_train.view(), y_train.view());
        assert!((lmax - f("lambda_max")).abs() <= 1e-13 * lmax, "{id}");
        let model = ElasticNet {
            x: x_train.clone(),
            y: y_train.clone(),
            lambda1: f("lambda1"),
            lambda2: f("lambda2"),
        };
        let fit = model.fit(&ElasticNetOptions::default()).unwrap();
        let file = case["file"].as_str().unwrap();
        let want_beta = read(file).column(0).to_owned();
        let scale = want_beta.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        let err = (&fit.beta - &want_beta)
            .iter()
            .fold(0.0_f64, |m, v| m.max(v.abs()));
        assert!(err <= 1e-10 * scale, "{id}: β err {err:e}");
        assert_eq!(fit.support.len(), f("support_size") as usize, "{id}");
        let margin = fit.margin.unwrap();
        assert!((margin - f("min_margin")).abs() <= 1e-10, "{id}: margin");
        let (value, grad) = validation_mse(x_val, y_val, fit.beta.view());
        assert!(
            (value - f("criterion_value")).abs() <= 1e-12 * value,
            "{id}: value"
        );
        let want1 = f("dL_dlambda1");
        let want2 = case["dL_dlambda2"].as_f64();
        // 1. on the support (SPD, CG / dense)
        let sys = model.support_system(&fit);
        let g_e = sys.restrict(&fit, grad.view());
        for opts in solvers() {
            let h = hypergradient_adjoint(&sys, g_e.view(), &opts, None).unwrap();
            assert!(
                (h.hypergrad[0] - want1).abs() <= 1e-8 * want1.abs(),
                "{id}: {:?}",
                opts.solver
            );
            if let Some(w2) = want2 {
                assert!((h.hypergrad[1] - w2).abs() <= 1e-8 * w2.abs(), "{id}: λ₂");
            }
            // forward mode along λ₁ gives ⟨g, J e₁⟩
            let (d, _) = jvp(&sys, ndarray::array![1.0, 0.0].view(), &opts).unwrap();
            assert!((g_e.dot(&d) - want1).abs() <= 1e-8 * want1.abs());
        }
        // 2. as the fixed point of proximal gradient on all 30 coordinates (non-symmetric)
        let map = model.prox_map(fit.beta.view());
        let fixed = FixedPointResidual { map: &map };
        assert_eq!(fixed.structure(), Structure::General);
        for opts in solvers()
            .into_iter()
            .filter(|o| o.solver != SolverChoice::Cg)
        {
            let h = hypergradient_adjoint(&fixed, grad.view(), &opts, None).unwrap();
            assert!(
                (h.hypergrad[0] - want1).abs() <= 1e-8 * want1.abs(),
                "{id} fixed point {:?}: {} vs {want1}",
                opts.solver,
                h.hypergrad[0]
            );
            if let Some(w2) = want2 {
                assert!(
                    (h.hypergrad[1] - w2).abs() <= 1e-8 * w2.abs(),
                    "{id}: λ₂ fixed point"
                );
            }
        }
        // the dense Jacobian of the fixed point: zero rows off the support, and Jᵀ g again
        let j = jacobian(&fixed, &ImplicitOptions::default()).unwrap();
        for jdx in 0..j.nrows() {
            if fit.beta[jdx] == 0.0 {
                assert!(j.row(jdx).iter().all(|v| v.abs() <= 1e-14));
            }
        }
        let via_j = j.t().dot(&grad);
        assert!(
            (via_j[0] - want1).abs() <= 1e-8 * want1.abs(),
            "{id}: jacobian"
        );
    }
}
