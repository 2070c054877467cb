//! Seeded generators for tests and benchmarks (feature `testing`).
//!
//! # The paper's data recipe
//!
//! ```text
//! Θ_true = make_sparse_spd_matrix(p, alpha = 0.9) + 0.1 I      (precision, sparse, SPD)
//! Σ_true = Θ_true⁻¹                                           (covariance)
//! x_i ~ N(0, Σ_true), i = 1..n                                (rows of X, n × p)
//! ```
//!
//! `make_sparse_spd_matrix` follows scikit-learn's recipe (not its random stream): start from
//! `C = −I`; draw a strictly lower-triangular `A` whose entries are nonzero with probability
//! `1 − alpha`, with values uniform in `[0.1, 0.9]`; permute rows and columns of `A` by one random
//! permutation; `C ← C + A`; return `Cᵀ C`. It is SPD (C is a permuted unit-triangular matrix,
//! hence non-singular) and sparse for alpha near 1.
//!
//! Every generator is deterministic given its seed (PCG64 from `rand_pcg`). The numbers differ
//! from numpy's, so the shared fixtures (computed with numpy) are read from files, never
//! regenerated here.

use crate::dense::{symmetrize_inplace, Cholesky};
use ndarray::{Array1, Array2};
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use rand_pcg::Pcg64;

/// The seeded generator used by every function here.
pub fn rng(seed: u64) -> Pcg64 {
    Pcg64::seed_from_u64(seed)
}

/// An n × n matrix of independent standard normal numbers.
pub fn gaussian_matrix(rows: usize, cols: usize, rng: &mut Pcg64) -> Array2<f64> {
    Array2::from_shape_simple_fn((rows, cols), || StandardNormal.sample(rng))
}

/// A random SPD matrix `Q diag(λ) Qᵀ` with eigenvalues log-spaced in `[1, kappa]` (so its
/// condition number is `kappa`) and `Q` a random orthogonal matrix (Gram–Schmidt of a Gaussian
/// matrix). Exactly symmetric.
///
/// # Panics
/// If `kappa < 1` (a programmer error in a test).
pub fn random_spd(n: usize, kappa: f64, seed: u64) -> Array2<f64> {
    assert!(kappa >= 1.0, "kappa must be ≥ 1");
    let mut r = rng(seed);
    let mut q = gaussian_matrix(n, n, &mut r);
    // Modified Gram–Schmidt on the columns, twice for orthogonality to rounding.
    for _ in 0..2 {
        for j in 0..n {
            for k in 0..j {
                let d = q.column(j).dot(&q.column(k));
                let ck = q.column(k).to_owned();
                q.column_mut(j).scaled_add(-d, &ck);
            }
            let nrm = q.column(j).dot(&q.column(j)).sqrt();
            q.column_mut(j).mapv_inplace(|v| v / nrm);
        }
    }
    let lambdas = Array1::from_iter((0..n).map(|i| {
        if n == 1 {
            1.0
        } else {
            kappa.powf(i as f64 / (n - 1) as f64)
        }
    }));
    let ql = &q * &lambdas;
    let mut a = ql.dot(&q.t());
    symmetrize_inplace(a.view_mut());
    a
}

/// scikit-learn's `make_sparse_spd_matrix(n_dim = p, alpha)` recipe (see the module doc), with
/// coefficients in `[0.1, 0.9]`.
pub fn make_sparse_spd_matrix(p: usize, alpha: f64, seed: u64) -> Array2<f64> {
    let mut r = rng(seed);
    let mut aux = Array2::<f64>::zeros((p, p));
    for i in 0..p {
        for j in 0..i {
            let u: f64 = r.random();
            if u > alpha {
                aux[[i, j]] = 0.1 + 0.8 * r.random::<f64>();
            }
        }
    }
    // random permutation (Fisher–Yates)
    let mut perm: Vec<usize> = (0..p).collect();
    for i in (1..p).rev() {
        let j = r.random_range(0..=i);
        perm.swap(i, j);
    }
    let mut chol = Array2::<f64>::zeros((p, p));
    for i in 0..p {
        chol[[i, i]] = -1.0;
    }
    for i in 0..p {
        for j in 0..p {
            chol[[i, j]] += aux[[perm[i], perm[j]]];
        }
    }
    let mut prec = chol.t().dot(&chol);
    symmetrize_inplace(prec.view_mut());
    prec
}

/// One synthetic data set of the paper's recipe (see the module doc).
#[derive(Debug, Clone)]
pub struct PaperData {
    /// `Θ_true` (p × p).
    pub precision: Array2<f64>,
    /// `Σ_true = Θ_true⁻¹` (p × p).
    pub covariance: Array2<f64>,
    /// Samples, n × p, rows are samples.
    pub x: Array2<f64>,
}

/// The paper's synthetic setup: `Θ_true = make_sparse_spd_matrix(p, alpha) + 0.1 I` (the
/// paper uses `alpha = 0.9`), and `n` Gaussian samples with covariance `Θ_true⁻¹`.
pub fn paper_data(p: usize, n: usize, alpha: f64, seed: u64) -> PaperData {
    let mut precision = make_sparse_spd_matrix(p, alpha, seed);
    for i in 0..p {
        precision[[i, i]] += 0.1;
    }
    let covariance = Cholesky::factor(precision.view())
        .and_then(Cholesky::into_inverse)
        .expect("Θ_true is SPD by construction");
    let x = gaussian_samples(covariance.view(), n, seed.wrapping_add(0x9e37_79b9));
    PaperData {
        precision,
        covariance,
        x,
    }
}

/// `n` samples of `N(0, Σ)` as the rows of an n × p matrix: `X = Z U` with `Σ = Uᵀ U`.
///
/// # Panics
/// If `Σ` is not SPD (a programmer error in a test).
pub fn gaussian_samples(cov: ndarray::ArrayView2<'_, f64>, n: usize, seed: u64) -> Array2<f64> {
    let p = cov.nrows();
    let c = Cholesky::factor(cov).expect("covariance must be SPD");
    let mut u = c.buffer().to_owned();
    for i in 0..p {
        for j in 0..i {
            u[[i, j]] = 0.0;
        }
    }
    let mut r = rng(seed);
    let z = gaussian_matrix(n, p, &mut r);
    z.dot(&u)
}

/// A random symmetric penalty matrix with off-diagonal entries log-uniform in
/// `[lo, hi]` and a zero diagonal (the weighted fixtures' recipe, with this crate's stream).
pub fn random_penalty(p: usize, lo: f64, hi: f64, seed: u64) -> Array2<f64> {
    let mut r = rng(seed);
    let mut l = Array2::zeros((p, p));
    let (a, b) = (lo.ln(), hi.ln());
    for i in 0..p {
        for j in 0..i {
            let v = (a + (b - a) * r.random::<f64>()).exp();
            l[[i, j]] = v;
            l[[j, i]] = v;
        }
    }
    l
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // exact symmetry and exact zeros are the point
mod tests {
    use super::*;
    use crate::covariance::empirical_covariance;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn random_spd_is_spd_symmetric_and_deterministic(n in 1usize..40, seed in 0u64..1000, lk in 0.0f64..6.0) {
            let kappa = 10f64.powf(lk);
            let a = random_spd(n, kappa, seed);
            let b = random_spd(n, kappa, seed);
            prop_assert_eq!(&a, &b);
            for i in 0..n { for j in 0..n { prop_assert_eq!(a[[i, j]].to_bits(), a[[j, i]].to_bits()); } }
            let c = Cholesky::factor(a.view());
            prop_assert!(c.is_ok());
            // log det = Σ log λ_i = (n/2) log κ for log-spaced eigenvalues
            let want = if n == 1 { 0.0 } else { 0.5 * n as f64 * kappa.ln() };
            prop_assert!((c.unwrap().logdet() - want).abs() < 1e-8 * (1.0 + want.abs()) * kappa.max(1.0).log10().max(1.0));
        }

        #[test]
        fn sparse_spd_recipe_is_spd_sparse_and_deterministic(p in 2usize..60, seed in 0u64..1000) {
            let d = paper_data(p, 3, 0.9, seed);
            let again = paper_data(p, 3, 0.9, seed);
            prop_assert_eq!(&d.precision, &again.precision);
            prop_assert_eq!(&d.x, &again.x);
            prop_assert!(Cholesky::factor(d.precision.view()).is_ok());
            for i in 0..p {
                prop_assert!(d.precision[[i, i]] >= 1.1 - 1e-12);
                for j in 0..p { prop_assert_eq!(d.precision[[i, j]].to_bits(), d.precision[[j, i]].to_bits()); }
            }
            let wt = d.covariance.dot(&d.precision);
            for i in 0..p { for j in 0..p {
                let e = if i == j { 1.0 } else { 0.0 };
                prop_assert!((wt[[i, j]] - e).abs() < 1e-9);
            } }
        }
    }

    #[test]
    fn sparsity_matches_alpha() {
        let p = 200;
        let t = make_sparse_spd_matrix(p, 0.9, 1);
        // The factor has ≈ 10 % of its strict lower part nonzero; Θ = CᵀC has more.
        let nnz = t.iter().filter(|v| v.abs() > 0.0).count() - p;
        let frac = nnz as f64 / (p * (p - 1)) as f64;
        assert!(frac > 0.05 && frac < 0.6, "off-diagonal density {frac}");
    }

    #[test]
    fn samples_have_the_requested_covariance() {
        let d = paper_data(5, 40_000, 0.5, 3);
        let s = empirical_covariance(d.x.view(), false).unwrap();
        let err = (&s - &d.covariance)
            .iter()
            .fold(0.0_f64, |m, v| m.max(v.abs()));
        let scale = d.covariance.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        assert!(err < 0.05 * scale, "err {err} scale {scale}");
    }

    #[test]
    fn random_penalty_is_symmetric_in_range() {
        let l = random_penalty(8, 0.05, 1.0, 4);
        for i in 0..8 {
            assert_eq!(l[[i, i]], 0.0);
            for j in 0..8 {
                assert_eq!(l[[i, j]], l[[j, i]]);
                if i != j {
                    assert!(l[[i, j]] >= 0.05 && l[[i, j]] <= 1.0);
                }
            }
        }
    }
}
