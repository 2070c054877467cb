//! Training/validation covariances from a data matrix (rows are samples), in file order (as
//! the fixtures and scikit-learn's unshuffled `KFold`): shuffle the rows beforehand if their
//! order carries structure.

use crate::BilevelError;
use ho_linalg::empirical_covariance;
use ndarray::{concatenate, s, Array2, ArrayView2, Axis};

/// One training/validation pair of covariances.
#[derive(Debug, Clone)]
pub struct FoldCov {
    /// Empirical covariance of the training rows.
    pub s_train: Array2<f64>,
    /// Empirical covariance of the validation rows (each centred on its own mean).
    pub s_val: Array2<f64>,
}

/// Hold-out split: the first `n − ⌊f n⌋` rows train, the last `⌊f n⌋` validate.
///
/// # Errors
/// [`BilevelError::InvalidOption`] for `f ∉ (0, 1)`, [`BilevelError::TooFewSamples`] when a
/// side has fewer than 2 rows.
pub fn holdout(
    x: ArrayView2<'_, f64>,
    val_fraction: f64,
    assume_centered: bool,
) -> Result<FoldCov, BilevelError> {
    if !(val_fraction > 0.0 && val_fraction < 1.0) {
        return Err(BilevelError::InvalidOption {
            name: "val_fraction",
            value: val_fraction,
            range: "(0, 1)",
        });
    }
    let n = x.nrows();
    let n_val = (val_fraction * n as f64).floor() as usize;
    let n_train = n - n_val;
    if n_val < 2 || n_train < 2 {
        return Err(BilevelError::TooFewSamples {
            n_samples: n,
            min: (4.0 / val_fraction.min(1.0 - val_fraction)).ceil() as usize,
        });
    }
    Ok(FoldCov {
        s_train: empirical_covariance(x.slice(s![..n_train, ..]), assume_centered)?,
        s_val: empirical_covariance(x.slice(s![n_train.., ..]), assume_centered)?,
    })
}

/// K contiguous folds: fold k validates on rows `[k n/K, (k+1) n/K)` and trains on the rest.
///
/// # Errors
/// [`BilevelError::InvalidOption`] for `k < 2`, [`BilevelError::TooFewSamples`] when a fold
/// has fewer than 2 rows.
pub fn k_fold(
    x: ArrayView2<'_, f64>,
    k: usize,
    assume_centered: bool,
) -> Result<Vec<FoldCov>, BilevelError> {
    if k < 2 {
        return Err(BilevelError::InvalidOption {
            name: "folds",
            value: k as f64,
            range: "≥ 2",
        });
    }
    let n = x.nrows();
    if n < 2 * k {
        return Err(BilevelError::TooFewSamples {
            n_samples: n,
            min: 2 * k,
        });
    }
    (0..k)
        .map(|f| {
            let (lo, hi) = (f * n / k, (f + 1) * n / k);
            let train = concatenate![Axis(0), x.slice(s![..lo, ..]), x.slice(s![hi.., ..])];
            Ok(FoldCov {
                s_train: empirical_covariance(train.view(), assume_centered)?,
                s_val: empirical_covariance(x.slice(s![lo..hi, ..]), assume_centered)?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ho_linalg::testing::paper_data;

    #[test]
    fn splits_have_the_right_rows() {
        let d = paper_data(4, 20, 0.5, 1);
        let h = holdout(d.x.view(), 0.5, false).unwrap();
        let want = empirical_covariance(d.x.slice(s![..10, ..]), false).unwrap();
        assert_eq!(h.s_train, want);
        let folds = k_fold(d.x.view(), 5, false).unwrap();
        assert_eq!(folds.len(), 5);
        let want = empirical_covariance(d.x.slice(s![4..8, ..]), false).unwrap();
        assert_eq!(folds[1].s_val, want);
        assert!(matches!(
            holdout(d.x.view(), 1.0, false),
            Err(BilevelError::InvalidOption { .. })
        ));
        assert!(matches!(
            holdout(d.x.slice(s![..3, ..]), 0.5, false),
            Err(BilevelError::TooFewSamples { .. })
        ));
        assert!(matches!(
            k_fold(d.x.view(), 11, false),
            Err(BilevelError::TooFewSamples { .. })
        ));
    }
}
