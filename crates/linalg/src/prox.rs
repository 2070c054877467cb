//! Soft-thresholding, the proximal operator of the (weighted) ℓ1 norm.
//!
//! ```text
//! ST(x, t) = sign(x) · max(|x| − t, 0),   t ≥ 0
//! ```

use ndarray::{ArrayView2, ArrayViewMut2, Zip};

/// `ST(x, t) = sign(x) · max(|x| − t, 0)` for one number.
#[inline]
pub fn soft_threshold_scalar(x: f64, t: f64) -> f64 {
    if x > t {
        x - t
    } else if x < -t {
        x + t
    } else {
        0.0
    }
}

/// `out ← ST(x, t)` elementwise with one threshold `t`.
///
/// # Panics
/// If the shapes differ (a programmer error).
pub fn soft_threshold(x: ArrayView2<'_, f64>, t: f64, out: ArrayViewMut2<'_, f64>) {
    Zip::from(out)
        .and(x)
        .for_each(|o, &v| *o = soft_threshold_scalar(v, t));
}

/// `out ← ST(x, T)` elementwise with a threshold matrix `T` (`T_ij ≥ 0`).
///
/// # Panics
/// If the shapes differ (a programmer error).
pub fn soft_threshold_matrix(
    x: ArrayView2<'_, f64>,
    t: ArrayView2<'_, f64>,
    out: ArrayViewMut2<'_, f64>,
) {
    Zip::from(out)
        .and(x)
        .and(t)
        .for_each(|o, &v, &th| *o = soft_threshold_scalar(v, th));
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // exact results of exact arithmetic
mod tests {
    use super::*;
    use ndarray::{array, Array2};

    #[test]
    fn scalar_cases() {
        assert_eq!(soft_threshold_scalar(3.0, 1.0), 2.0);
        assert_eq!(soft_threshold_scalar(-3.0, 1.0), -2.0);
        assert_eq!(soft_threshold_scalar(0.5, 1.0), 0.0);
        assert_eq!(soft_threshold_scalar(-1.0, 1.0), 0.0);
        assert_eq!(soft_threshold_scalar(2.0, 0.0), 2.0);
    }

    #[test]
    fn matrix_forms_agree() {
        let x = array![[1.5, -0.2], [-3.0, 0.7]];
        let t = array![[1.0, 1.0], [1.0, 1.0]];
        let mut a = Array2::zeros((2, 2));
        let mut b = Array2::zeros((2, 2));
        soft_threshold(x.view(), 1.0, a.view_mut());
        soft_threshold_matrix(x.view(), t.view(), b.view_mut());
        assert_eq!(a, array![[0.5, 0.0], [-2.0, 0.0]]);
        assert_eq!(a, b);
        let t2 = array![[0.0, 0.1], [2.0, 0.0]];
        soft_threshold_matrix(x.view(), t2.view(), b.view_mut());
        assert_eq!(b[[0, 0]], 1.5);
        assert!((b[[0, 1]] + 0.1).abs() < 1e-15);
        assert_eq!(b[[1, 0]], -1.0);
    }
}
