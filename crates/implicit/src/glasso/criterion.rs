//! Outer criteria `C(Θ)` with their gradients `∇C(Θ)` (DESIGN.md §1 table).
//!
//! ```text
//! held-out NLL      C = −log det Θ + ⟨S_val, Θ⟩          ∇C = S_val − Θ⁻¹
//! reconstruction    C = ‖Θ S_val − I‖_F                  ∇C = sym((Θ S_val − I) S_val) / C
//! oracle            C = ‖Θ − Θ*‖_F² / ‖Θ*‖_F²            ∇C = 2 (Θ − Θ*) / ‖Θ*‖_F²
//! ```
//!
//! with `sym(A) = (A + Aᵀ)/2`. Gradients are symmetric: Θ̂ is symmetric, so only the
//! symmetric part of `∇C` enters a hypergradient.

use crate::ImplicitError;
use ho_glasso::GlassoFit;
use ho_linalg::Cholesky;
use ndarray::{Array2, ArrayView2};

/// An outer criterion: its value and gradient with respect to Θ at a fit.
pub trait Criterion {
    /// `(C(Θ), ∇C(Θ))` given Θ (`precision`) and `W = Θ⁻¹` (`covariance`), both p × p.
    ///
    /// # Errors
    /// Shape mismatches and numerical failures (Θ not positive definite).
    fn value_and_grad(
        &self,
        precision: ArrayView2<'_, f64>,
        covariance: ArrayView2<'_, f64>,
    ) -> Result<(f64, Array2<f64>), ImplicitError>;

    /// `C(Θ)` alone (by default through [`value_and_grad`](Self::value_and_grad)).
    ///
    /// # Errors
    /// As [`value_and_grad`](Self::value_and_grad).
    fn value(
        &self,
        precision: ArrayView2<'_, f64>,
        covariance: ArrayView2<'_, f64>,
    ) -> Result<f64, ImplicitError> {
        Ok(self.value_and_grad(precision, covariance)?.0)
    }

    /// [`value_and_grad`](Self::value_and_grad) at a fit's precision and covariance; a
    /// criterion that needs `log det Θ̂` reads the fit's [`GlassoFit::log_det`] when it has
    /// one instead of factoring Θ̂ again.
    ///
    /// # Errors
    /// As [`value_and_grad`](Self::value_and_grad).
    fn value_and_grad_at(&self, fit: &GlassoFit) -> Result<(f64, Array2<f64>), ImplicitError> {
        self.value_and_grad(fit.precision.view(), fit.covariance.view())
    }

    /// [`value`](Self::value) at a fit, with its `log det Θ̂` as in
    /// [`value_and_grad_at`](Self::value_and_grad_at).
    ///
    /// # Errors
    /// As [`value`](Self::value).
    fn value_at(&self, fit: &GlassoFit) -> Result<f64, ImplicitError> {
        self.value(fit.precision.view(), fit.covariance.view())
    }
}

fn check_shape(a: ArrayView2<'_, f64>, p: usize) -> Result<(), ImplicitError> {
    for found in [a.nrows(), a.ncols()] {
        if found != p {
            return Err(ImplicitError::DimensionMismatch { expected: p, found });
        }
    }
    Ok(())
}

/// `log det Θ` of an SPD matrix, block by block: the connected components of the graph of its
/// nonzeros are factored apart (a GLASSO solution at a large penalty is block diagonal, and
/// its log-det then costs far less than one p × p Cholesky factorization).
///
/// # Errors
/// [`ImplicitError::Linalg`] when a block is not positive definite.
pub fn logdet_blockwise(theta: ArrayView2<'_, f64>) -> Result<f64, ImplicitError> {
    let p = theta.nrows();
    let mut parent: Vec<usize> = (0..p).collect();
    fn find(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    for i in 0..p {
        for j in 0..i {
            if theta[[i, j]] != 0.0 || theta[[j, i]] != 0.0 {
                let (a, b) = (find(&mut parent, i), find(&mut parent, j));
                if a != b {
                    parent[a.max(b)] = a.min(b);
                }
            }
        }
    }
    let mut blocks: Vec<Vec<usize>> = vec![Vec::new(); p];
    for i in 0..p {
        let r = find(&mut parent, i);
        blocks[r].push(i);
    }
    let mut logdet = 0.0;
    for idx in blocks.iter().filter(|b| !b.is_empty()) {
        logdet += match idx.len() {
            n if n == p => Cholesky::factor(theta)?.logdet(),
            1 => {
                let d = theta[[idx[0], idx[0]]];
                if !(d > 0.0) {
                    return Err(
                        ho_linalg::LinalgError::NotPositiveDefinite { pivot: idx[0] }.into(),
                    );
                }
                d.ln()
            }
            _ => {
                let sub = theta
                    .select(ndarray::Axis(0), idx)
                    .select(ndarray::Axis(1), idx);
                Cholesky::factor_inplace(sub)?.logdet()
            }
        };
    }
    Ok(logdet)
}

fn frobenius_inner(a: ArrayView2<'_, f64>, b: ArrayView2<'_, f64>) -> f64 {
    a.iter().zip(b.iter()).map(|(x, y)| x * y).sum()
}

/// The held-out negative log-likelihood `C = −log det Θ + ⟨S_val, Θ⟩`, `∇C = S_val − W`.
#[derive(Debug, Clone)]
pub struct HeldOutNll {
    /// `S_val`, the empirical covariance of the validation samples (p × p, symmetric).
    pub emp_cov: Array2<f64>,
}

impl HeldOutNll {
    /// The criterion for the validation covariance `S_val`.
    pub fn new(emp_cov: Array2<f64>) -> Self {
        Self { emp_cov }
    }

    /// `C` from `log det Θ`.
    fn with_logdet(&self, precision: ArrayView2<'_, f64>, logdet: f64) -> f64 {
        -logdet + frobenius_inner(self.emp_cov.view(), precision)
    }
}

impl Criterion for HeldOutNll {
    fn value_and_grad(
        &self,
        precision: ArrayView2<'_, f64>,
        covariance: ArrayView2<'_, f64>,
    ) -> Result<(f64, Array2<f64>), ImplicitError> {
        let p = self.emp_cov.nrows();
        check_shape(precision, p)?;
        check_shape(covariance, p)?;
        let logdet = logdet_blockwise(precision)?;
        Ok((
            self.with_logdet(precision, logdet),
            &self.emp_cov - &covariance,
        ))
    }

    fn value(
        &self,
        precision: ArrayView2<'_, f64>,
        _covariance: ArrayView2<'_, f64>,
    ) -> Result<f64, ImplicitError> {
        check_shape(precision, self.emp_cov.nrows())?;
        let logdet = logdet_blockwise(precision)?;
        Ok(self.with_logdet(precision, logdet))
    }

    fn value_and_grad_at(&self, fit: &GlassoFit) -> Result<(f64, Array2<f64>), ImplicitError> {
        let Some(logdet) = fit.log_det else {
            return self.value_and_grad(fit.precision.view(), fit.covariance.view());
        };
        let p = self.emp_cov.nrows();
        check_shape(fit.precision.view(), p)?;
        check_shape(fit.covariance.view(), p)?;
        Ok((
            self.with_logdet(fit.precision.view(), logdet),
            &self.emp_cov - &fit.covariance,
        ))
    }

    fn value_at(&self, fit: &GlassoFit) -> Result<f64, ImplicitError> {
        let Some(logdet) = fit.log_det else {
            return self.value(fit.precision.view(), fit.covariance.view());
        };
        check_shape(fit.precision.view(), self.emp_cov.nrows())?;
        Ok(self.with_logdet(fit.precision.view(), logdet))
    }
}

/// The reconstruction error `C = ‖Θ S_val − I‖_F`, `∇C = sym((Θ S_val − I) S_val) / C`.
#[derive(Debug, Clone)]
pub struct Reconstruction {
    /// `S_val` (p × p, symmetric).
    pub emp_cov: Array2<f64>,
}

impl Reconstruction {
    /// The criterion for the validation covariance `S_val`.
    pub fn new(emp_cov: Array2<f64>) -> Self {
        Self { emp_cov }
    }
}

impl Criterion for Reconstruction {
    fn value_and_grad(
        &self,
        precision: ArrayView2<'_, f64>,
        _covariance: ArrayView2<'_, f64>,
    ) -> Result<(f64, Array2<f64>), ImplicitError> {
        let p = self.emp_cov.nrows();
        check_shape(precision, p)?;
        let mut r = precision.dot(&self.emp_cov);
        for i in 0..p {
            r[[i, i]] -= 1.0;
        }
        let value = r.iter().map(|v| v * v).sum::<f64>().sqrt();
        if !(value > 0.0) {
            // Θ S_val = I exactly: C is not differentiable there (a norm at 0).
            return Err(ImplicitError::NotDifferentiable {
                what: "reconstruction criterion",
                value,
            });
        }
        let rs = r.dot(&self.emp_cov);
        let grad = Array2::from_shape_fn((p, p), |(i, j)| 0.5 * (rs[[i, j]] + rs[[j, i]]) / value);
        Ok((value, grad))
    }
}

/// The oracle error `C = ‖Θ − Θ*‖_F² / ‖Θ*‖_F²` against a known precision Θ* (experiments
/// on synthetic data only).
#[derive(Debug, Clone)]
pub struct Oracle {
    /// Θ* (p × p).
    pub precision: Array2<f64>,
}

impl Criterion for Oracle {
    fn value_and_grad(
        &self,
        precision: ArrayView2<'_, f64>,
        _covariance: ArrayView2<'_, f64>,
    ) -> Result<(f64, Array2<f64>), ImplicitError> {
        check_shape(precision, self.precision.nrows())?;
        let norm2 = self.precision.iter().map(|v| v * v).sum::<f64>();
        let d = &precision - &self.precision;
        let value = d.iter().map(|v| v * v).sum::<f64>() / norm2;
        Ok((value, d * (2.0 / norm2)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ho_linalg::testing::random_spd;

    /// Central differences of C along a symmetric direction vs ⟨∇C, D⟩.
    fn check_gradient(c: &dyn Criterion, theta: &Array2<f64>) {
        let p = theta.nrows();
        let dir = random_spd(p, 3.0, 99) - Array2::<f64>::eye(p) * 1.5;
        let inv = |t: &Array2<f64>| Cholesky::factor(t.view()).unwrap().inverse().unwrap();
        let (_, g) = c.value_and_grad(theta.view(), inv(theta).view()).unwrap();
        let h = 1e-6;
        let tp = theta + &(&dir * h);
        let tm = theta - &(&dir * h);
        let fd = (c.value(tp.view(), inv(&tp).view()).unwrap()
            - c.value(tm.view(), inv(&tm).view()).unwrap())
            / (2.0 * h);
        let an = frobenius_inner(g.view(), dir.view());
        assert!(
            (fd - an).abs() <= 1e-7 * an.abs().max(1.0),
            "fd {fd} an {an}"
        );
        for i in 0..p {
            for j in 0..p {
                assert!((g[[i, j]] - g[[j, i]]).abs() <= 1e-15 * g[[i, j]].abs().max(1.0));
            }
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        let theta = random_spd(6, 20.0, 1);
        let s_val = random_spd(6, 50.0, 2);
        check_gradient(&HeldOutNll::new(s_val.clone()), &theta);
        check_gradient(&Reconstruction::new(s_val), &theta);
        check_gradient(
            &Oracle {
                precision: random_spd(6, 5.0, 3),
            },
            &theta,
        );
    }

    #[test]
    fn a_fits_log_det_gives_the_same_criterion() {
        let p = 12;
        let s = random_spd(p, 10.0, 6);
        let s_val = random_spd(p, 10.0, 7);
        let problem = ho_glasso::GlassoProblem::new(
            s.view(),
            ho_glasso::Penalty::scalar(0.3 * ho_glasso::lambda_max(s.view())),
        );
        let mut fit =
            ho_glasso::GlassoSolver::solve(&ho_glasso::Auto::default(), &problem, None).unwrap();
        assert!(fit.log_det.is_some());
        let criteria: [Box<dyn Criterion>; 3] = [
            Box::new(HeldOutNll::new(s_val.clone())),
            Box::new(Reconstruction::new(s_val)),
            Box::new(Oracle {
                precision: random_spd(p, 5.0, 8),
            }),
        ];
        for c in &criteria {
            let (view_p, view_w) = (fit.precision.view(), fit.covariance.view());
            let (value, grad) = c.value_and_grad(view_p, view_w).unwrap();
            let at = c.value_at(&fit).unwrap();
            let (at_both, grad_at) = c.value_and_grad_at(&fit).unwrap();
            for v in [at, at_both] {
                assert!(
                    (v - value).abs() <= 1e-12 * value.abs().max(1.0),
                    "{v} against {value}"
                );
            }
            assert_eq!(grad, grad_at);
        }
        // The held-out NLL reads the fit's log det (a wrong one shows), or factors Θ̂ without.
        let nll = HeldOutNll::new(random_spd(p, 10.0, 9));
        let value = nll.value_at(&fit).unwrap();
        fit.log_det = fit.log_det.map(|l| l + 1.0);
        assert!((nll.value_at(&fit).unwrap() - (value - 1.0)).abs() <= 1e-12 * value.abs());
        fit.log_det = None;
        assert!((nll.value_at(&fit).unwrap() - value).abs() <= 1e-12 * value.abs().max(1.0));
        let (with, without) = (
            nll.value_and_grad_at(&fit).unwrap().0,
            nll.value(fit.precision.view(), fit.covariance.view())
                .unwrap(),
        );
        assert_eq!(with.to_bits(), without.to_bits());
    }

    #[test]
    fn blockwise_logdet_equals_the_full_one() {
        let mut theta = Array2::<f64>::zeros((7, 7));
        let a = random_spd(3, 10.0, 4);
        let b = random_spd(2, 5.0, 5);
        for (k, &i) in [0usize, 3, 5].iter().enumerate() {
            for (l, &j) in [0usize, 3, 5].iter().enumerate() {
                theta[[i, j]] = a[[k, l]];
            }
        }
        for (k, &i) in [1usize, 6].iter().enumerate() {
            for (l, &j) in [1usize, 6].iter().enumerate() {
                theta[[i, j]] = b[[k, l]];
            }
        }
        theta[[2, 2]] = 2.0;
        theta[[4, 4]] = 0.5;
        let full = Cholesky::factor(theta.view()).unwrap().logdet();
        let blocks = logdet_blockwise(theta.view()).unwrap();
        assert!((full - blocks).abs() <= 1e-13 * full.abs().max(1.0));
        theta[[4, 4]] = -1.0;
        assert!(matches!(
            logdet_blockwise(theta.view()),
            Err(ImplicitError::Linalg(
                ho_linalg::LinalgError::NotPositiveDefinite { pivot: 4 }
            ))
        ));
    }

    #[test]
    fn shape_errors_are_reported() {
        let c = HeldOutNll::new(Array2::eye(3));
        let t = Array2::<f64>::eye(2);
        assert!(matches!(
            c.value_and_grad(t.view(), t.view()),
            Err(ImplicitError::DimensionMismatch {
                expected: 3,
                found: 2
            })
        ));
    }
}
