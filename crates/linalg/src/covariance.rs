//! Empirical covariance and correlation of a data matrix (rows are samples).
//!
//! ```text
//! S = (1/n) Σ_i (x_i − x̄)(x_i − x̄)ᵀ        (default, scikit-learn's empirical_covariance)
//! S = (1/n) Σ_i x_i x_iᵀ                    (assume_centered)
//! ```
//!
//! The result is exactly symmetric (the product is symmetrized).

use crate::dense::{check_finite, symmetrize_inplace};
use crate::LinalgError;
use ndarray::{Array2, ArrayView2, Axis};

/// Empirical covariance of `x` (n × p, rows are samples), divided by `n`.
///
/// # Errors
/// [`LinalgError::TooFewSamples`] if n < 2 (n < 1 with `assume_centered`),
/// [`LinalgError::NonFinite`] for a NaN/inf entry of `x`.
pub fn empirical_covariance(
    x: ArrayView2<'_, f64>,
    assume_centered: bool,
) -> Result<Array2<f64>, LinalgError> {
    let n = x.nrows();
    let min = if assume_centered { 1 } else { 2 };
    if n < min {
        return Err(LinalgError::TooFewSamples { n_samples: n, min });
    }
    check_finite(x)?;
    let mut s = if assume_centered {
        x.t().dot(&x)
    } else {
        let mean = x.mean_axis(Axis(0)).expect("n ≥ 2");
        let xc = &x - &mean;
        xc.t().dot(&xc)
    };
    s /= n as f64;
    symmetrize_inplace(s.view_mut());
    Ok(s)
}

/// Correlation matrix `D^{-1/2} S D^{-1/2}` of the empirical covariance (unit diagonal).
///
/// # Errors
/// As [`empirical_covariance`], and [`LinalgError::ZeroVariance`] for a constant column.
pub fn correlation(
    x: ArrayView2<'_, f64>,
    assume_centered: bool,
) -> Result<Array2<f64>, LinalgError> {
    let mut s = empirical_covariance(x, assume_centered)?;
    let d: Vec<f64> = s.diag().to_vec();
    for (column, &v) in d.iter().enumerate() {
        if v <= 0.0 {
            return Err(LinalgError::ZeroVariance { column });
        }
    }
    let inv_sd: Vec<f64> = d.iter().map(|v| 1.0 / v.sqrt()).collect();
    for ((i, j), v) in s.indexed_iter_mut() {
        *v = if i == j {
            1.0
        } else {
            *v * inv_sd[i] * inv_sd[j]
        };
    }
    Ok(s)
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // exact results of exact arithmetic
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn small_exact_case() {
        let x = array![[1.0, 2.0], [3.0, 6.0], [5.0, 4.0]];
        let s = empirical_covariance(x.view(), false).unwrap();
        // mean (3, 4); centred rows (-2,-2), (0,2), (2,0)
        let want = array![[8.0 / 3.0, 4.0 / 3.0], [4.0 / 3.0, 8.0 / 3.0]];
        assert!((&s - &want).iter().all(|v| v.abs() < 1e-15));
        let s0 = empirical_covariance(x.view(), true).unwrap();
        assert!((s0[[0, 1]] - (2.0 + 18.0 + 20.0) / 3.0).abs() < 1e-14);
        let r = correlation(x.view(), false).unwrap();
        assert!((r[[0, 1]] - 0.5).abs() < 1e-15);
        assert_eq!(r[[1, 1]], 1.0);
    }

    #[test]
    fn errors() {
        let one = array![[1.0, 2.0]];
        assert!(matches!(
            empirical_covariance(one.view(), false),
            Err(LinalgError::TooFewSamples {
                n_samples: 1,
                min: 2
            })
        ));
        let nan = array![[1.0, f64::INFINITY], [0.0, 1.0]];
        assert!(matches!(
            empirical_covariance(nan.view(), false),
            Err(LinalgError::NonFinite { row: 0, col: 1 })
        ));
        let constant = array![[1.0, 2.0], [1.0, 3.0]];
        assert!(matches!(
            correlation(constant.view(), false),
            Err(LinalgError::ZeroVariance { column: 0 })
        ));
    }
}
