//! Box constraints `lower ≤ x ≤ upper`, handled by projection.

use crate::vecops::Dot;
use ndarray::{Array1, ArrayView1, ArrayViewMut1, Zip};

use crate::OuterError;

/// A box `{ x : lowerᵢ ≤ xᵢ ≤ upperᵢ }`.
///
/// Gradient methods keep their iterates in the box by projection (clamping), and stop on the
/// norm of the *projected* gradient (see [`projected_grad_norm`](Self::projected_grad_norm)), so
/// a point sitting on a bound with the gradient pushing outward counts as converged. Infinite
/// bounds are allowed for gradient methods; grid and random search need a finite box.
///
/// For the hyperparameter problem the box keeps `log α` inside
/// `[log α_max − k, log α_max]` (α_max: the smallest penalty giving the diagonal solution), see
/// [`Bounds::uniform`].
///
/// The fields are public; the minimizers check them (equal lengths, `lower ≤ upper`, no NaN)
/// when they start.
#[derive(Debug, Clone, PartialEq)]
pub struct Bounds {
    /// Lower bounds (may be `-∞`).
    pub lower: Array1<f64>,
    /// Upper bounds (may be `+∞`).
    pub upper: Array1<f64>,
}

impl Bounds {
    /// Creates a box after checking it.
    ///
    /// # Errors
    ///
    /// [`OuterError::DimensionMismatch`] if the lengths differ, [`OuterError::InvalidBounds`]
    /// if some `lowerᵢ > upperᵢ` or a bound is NaN.
    pub fn new(lower: Array1<f64>, upper: Array1<f64>) -> Result<Self, OuterError> {
        let bounds = Self { lower, upper };
        bounds.check(bounds.lower.len())?;
        Ok(bounds)
    }

    /// The box `[lower, upper]ⁿ`, the same interval on every coordinate.
    ///
    /// ```
    /// use ho_outer::Bounds;
    ///
    /// let log_alpha_max = 0.3_f64.ln();
    /// let bounds = Bounds::uniform(1, log_alpha_max - 5.0, log_alpha_max)?;
    /// assert_eq!(bounds.dim(), 1);
    /// # Ok::<(), ho_outer::OuterError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`OuterError::InvalidBounds`] if `lower > upper` or either is NaN.
    pub fn uniform(dim: usize, lower: f64, upper: f64) -> Result<Self, OuterError> {
        Self::new(Array1::from_elem(dim, lower), Array1::from_elem(dim, upper))
    }

    /// Dimension of the box.
    pub fn dim(&self) -> usize {
        self.lower.len()
    }

    /// Checks lengths against `dim`, `lower ≤ upper` and the absence of NaN.
    ///
    /// # Errors
    ///
    /// As [`Bounds::new`].
    pub fn check(&self, dim: usize) -> Result<(), OuterError> {
        for found in [self.lower.len(), self.upper.len()] {
            if found != dim {
                return Err(OuterError::DimensionMismatch {
                    expected: dim,
                    found,
                });
            }
        }
        for (index, (&lower, &upper)) in self.lower.iter().zip(&self.upper).enumerate() {
            if lower.is_nan() || upper.is_nan() || lower > upper {
                return Err(OuterError::InvalidBounds {
                    index,
                    lower,
                    upper,
                });
            }
        }
        Ok(())
    }

    /// Checks as [`check`](Self::check), and that every bound is finite.
    ///
    /// # Errors
    ///
    /// As [`Bounds::new`], and [`OuterError::InvalidBounds`] for an infinite bound.
    pub fn check_finite(&self, dim: usize) -> Result<(), OuterError> {
        self.check(dim)?;
        for (index, (&lower, &upper)) in self.lower.iter().zip(&self.upper).enumerate() {
            if !lower.is_finite() || !upper.is_finite() {
                return Err(OuterError::InvalidBounds {
                    index,
                    lower,
                    upper,
                });
            }
        }
        Ok(())
    }

    /// Projects `x` onto the box in place: `xᵢ ← min(max(xᵢ, lowerᵢ), upperᵢ)`.
    ///
    /// # Panics
    ///
    /// If `x` does not have length [`dim`](Self::dim).
    pub fn project_inplace(&self, x: ArrayViewMut1<'_, f64>) {
        Zip::from(x)
            .and(&self.lower)
            .and(&self.upper)
            .for_each(|xi, &l, &u| *xi = xi.max(l).min(u));
    }

    /// Whether `x` lies in the box.
    pub fn contains(&self, x: ArrayView1<'_, f64>) -> bool {
        x.len() == self.dim()
            && Zip::from(x)
                .and(&self.lower)
                .and(&self.upper)
                .all(|&xi, &l, &u| l <= xi && xi <= u)
    }

    /// Zeroes the components of `dir` that would leave the box from `x`: those with
    /// `xᵢ ≤ lowerᵢ` and `dirᵢ < 0`, or `xᵢ ≥ upperᵢ` and `dirᵢ > 0`.
    ///
    /// # Panics
    ///
    /// If the lengths differ.
    pub fn restrict_direction_inplace(&self, x: ArrayView1<'_, f64>, dir: ArrayViewMut1<'_, f64>) {
        Zip::from(dir)
            .and(x)
            .and(&self.lower)
            .and(&self.upper)
            .for_each(|d, &xi, &l, &u| {
                if (xi <= l && *d < 0.0) || (xi >= u && *d > 0.0) {
                    *d = 0.0;
                }
            });
    }

    /// Euclidean norm of the projected gradient at `x`:
    ///
    /// ```text
    /// pgᵢ = 0    if xᵢ ≤ lowerᵢ and gᵢ > 0   (descent would leave the box)
    /// pgᵢ = 0    if xᵢ ≥ upperᵢ and gᵢ < 0
    /// pgᵢ = gᵢ   otherwise
    /// ```
    ///
    /// It is zero exactly at the first-order (KKT) points of `min f` over the box.
    ///
    /// # Panics
    ///
    /// If the lengths differ.
    pub fn projected_grad_norm(&self, x: ArrayView1<'_, f64>, grad: ArrayView1<'_, f64>) -> f64 {
        let mut sum = 0.0;
        Zip::from(grad)
            .and(x)
            .and(&self.lower)
            .and(&self.upper)
            .for_each(|&g, &xi, &l, &u| {
                if !((xi <= l && g > 0.0) || (xi >= u && g < 0.0)) {
                    sum += g * g;
                }
            });
        sum.sqrt()
    }
}

/// Projected gradient norm with optional bounds (the plain norm without them).
pub(crate) fn grad_norm(
    bounds: Option<&Bounds>,
    x: ArrayView1<'_, f64>,
    grad: ArrayView1<'_, f64>,
) -> f64 {
    match bounds {
        Some(b) => b.projected_grad_norm(x, grad),
        None => grad.vdot(&grad).sqrt(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;
    use ndarray::array;

    #[test]
    fn projection_clamps_and_is_idempotent() {
        let b = Bounds::new(array![-1.0, 0.0, f64::NEG_INFINITY], array![1.0, 0.0, 2.0]).unwrap();
        let mut x = array![3.0, -2.0, -1e300];
        b.project_inplace(x.view_mut());
        assert_abs_diff_eq!(x, array![1.0, 0.0, -1e300]);
        let y = x.clone();
        b.project_inplace(x.view_mut());
        assert_abs_diff_eq!(x, y);
        assert!(b.contains(x.view()));
    }

    #[test]
    fn projected_gradient_ignores_outward_components() {
        let b = Bounds::uniform(3, -1.0, 1.0).unwrap();
        let x = array![1.0, -1.0, 0.0];
        // Outward at both bounds, inward in the middle.
        assert_abs_diff_eq!(
            b.projected_grad_norm(x.view(), array![-2.0, 3.0, 4.0].view()),
            4.0
        );
        // Inward at the bounds counts.
        assert_abs_diff_eq!(
            b.projected_grad_norm(x.view(), array![3.0, -4.0, 0.0].view()),
            5.0
        );
    }

    #[test]
    fn restrict_direction_zeroes_outward_moves() {
        let b = Bounds::uniform(3, -1.0, 1.0).unwrap();
        let x = array![1.0, -1.0, 0.0];
        let mut d = array![1.0, -1.0, 1.0];
        b.restrict_direction_inplace(x.view(), d.view_mut());
        assert_abs_diff_eq!(d, array![0.0, 0.0, 1.0]);
    }

    #[test]
    fn invalid_boxes_are_rejected() {
        assert!(matches!(
            Bounds::new(array![0.0, 2.0], array![1.0, 1.0]),
            Err(OuterError::InvalidBounds { index: 1, .. })
        ));
        assert!(matches!(
            Bounds::new(array![f64::NAN], array![1.0]),
            Err(OuterError::InvalidBounds { index: 0, .. })
        ));
        assert!(matches!(
            Bounds::new(array![0.0], array![1.0, 2.0]),
            Err(OuterError::DimensionMismatch {
                expected: 1,
                found: 2
            })
        ));
        let b = Bounds::uniform(2, f64::NEG_INFINITY, 0.0).unwrap();
        assert!(matches!(
            b.check_finite(2),
            Err(OuterError::InvalidBounds { index: 0, .. })
        ));
    }
}
