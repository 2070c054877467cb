//! Helpers shared by the solvers' unit tests.

use crate::problem::{duality_gap, kkt_residual, lambda_max, objective, relative_gap};
use crate::{BlockOutcome, GlassoOptions, Penalty};
use ho_linalg::empirical_covariance;
use ho_linalg::testing::paper_data;
use ndarray::Array2;

/// S of the paper's recipe (p variables, n samples) and `Λ = r λ_max (11ᵀ − I)`.
pub(crate) fn problem(p: usize, n: usize, r: f64, seed: u64) -> (Array2<f64>, Array2<f64>) {
    let data = paper_data(p, n, 0.9, seed);
    let s = empirical_covariance(data.x.view(), false).unwrap();
    let lam = Penalty::scalar(r * lambda_max(s.view())).to_matrix(p);
    (s, lam)
}

pub(crate) fn tight(max_iter: usize) -> GlassoOptions {
    GlassoOptions {
        tol: 1e-12,
        kkt_tol: 1e-10,
        max_iter,
        screening: false,
    }
}

/// Asserts the certificate of an outcome from scratch, and `W Θ = I`.
pub(crate) fn assert_certified(out: &BlockOutcome, s: &Array2<f64>, lam: &Array2<f64>) {
    let obj = objective(out.theta.view(), s.view(), lam.view()).unwrap();
    let gap = duality_gap(obj, out.covariance.view(), s.view(), lam.view());
    assert!(relative_gap(gap.abs(), obj) <= 1e-11, "gap {gap:e}");
    let kkt = kkt_residual(
        out.theta.view(),
        out.covariance.view(),
        s.view(),
        lam.view(),
    );
    assert!(kkt <= 1e-10, "kkt {kkt:e}");
    let wt = out.covariance.dot(&out.theta);
    let p = s.nrows();
    let err = (&wt - &Array2::<f64>::eye(p))
        .iter()
        .fold(0.0_f64, |m, v| m.max(v.abs()));
    assert!(err <= 1e-10, "‖WΘ − I‖ = {err:e}");
}

/// The pairs i < j of m nodes that `keep` selects.
pub(crate) fn pairs_where(m: usize, keep: impl Fn(usize, usize) -> bool) -> Vec<(usize, usize)> {
    (0..m)
        .flat_map(|i| (i + 1..m).map(move |j| (i, j)))
        .filter(|&(i, j)| keep(i, j))
        .collect()
}
