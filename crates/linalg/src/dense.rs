//! Dense helpers for symmetric positive definite (SPD) matrices: Cholesky factor, log-det,
//! inverse and solves (LAPACK `potrf`/`potri`/`potrs` through `lax`), symmetrization and
//! input checks.
//!
//! Storage: every matrix is an ndarray in standard (row-major) order. A symmetric matrix has
//! the same bytes in row- and column-major order, so LAPACK is called on the buffer as it is
//! (no transposition copy). The factor is kept in the row-major **upper** triangle:
//!
//! ```text
//! A = Uᵀ U,   U upper triangular (n × n), the lower triangle of the buffer is not referenced
//! ```

use crate::LinalgError;
use lax::{layout::MatrixLayout, Lapack, UPLO};
use ndarray::linalg::general_mat_mul;
use ndarray::{s, Array2, ArrayView2, ArrayViewMut1, ArrayViewMut2, LinalgScalar};

/// Cholesky factor `A = Uᵀ U` of an SPD matrix, reused for log-det, inverse and solves.
#[derive(Debug, Clone)]
pub struct Cholesky {
    /// Row-major buffer whose upper triangle holds `U`.
    factor: Array2<f64>,
}

/// The layout to pass to LAPACK for an n × n row-major symmetric buffer, whose row-major
/// upper triangle is LAPACK's column-major lower triangle.
fn layout(n: usize) -> (MatrixLayout, UPLO) {
    (
        MatrixLayout::F {
            col: n as i32,
            lda: n as i32,
        },
        UPLO::Lower,
    )
}

impl Cholesky {
    /// Factors the SPD matrix `a` (only its upper triangle is read).
    ///
    /// # Errors
    /// [`LinalgError::NotSquare`], or [`LinalgError::NotPositiveDefinite`] with the first
    /// non-positive pivot (or the first NaN or infinite one: OpenBLAS's `potrf` lets NaNs
    /// through).
    pub fn factor(a: ArrayView2<'_, f64>) -> Result<Self, LinalgError> {
        check_square(a)?;
        let mut buf = Array2::zeros(a.raw_dim());
        buf.assign(&a);
        Self::factor_inplace(buf)
    }

    /// Factors `a` in its own buffer (no allocation). Only the upper triangle is read.
    ///
    /// # Errors
    /// As [`Cholesky::factor`].
    pub fn factor_inplace(mut a: Array2<f64>) -> Result<Self, LinalgError> {
        check_square(a.view())?;
        let n = a.nrows();
        if n == 0 {
            return Ok(Self { factor: a });
        }
        if !a.is_standard_layout() {
            a = a.as_standard_layout().into_owned();
        }
        let (l, uplo) = layout(n);
        let slice = a.as_slice_mut().expect("standard layout");
        f64::cholesky(l, uplo, slice).map_err(LinalgError::from_cholesky)?;
        // potrf's pivot test (`ajj <= 0`) lets NaNs through: a NaN or infinite entry would
        // otherwise "factor" into a NaN factor.
        if let Some(pivot) = (0..n).position(|i| !a[[i, i]].is_finite()) {
            return Err(LinalgError::NotPositiveDefinite { pivot });
        }
        Ok(Self { factor: a })
    }

    /// Dimension n.
    pub fn dim(&self) -> usize {
        self.factor.nrows()
    }

    /// The raw buffer: `U` in its upper triangle (the lower triangle holds leftovers).
    pub fn buffer(&self) -> ArrayView2<'_, f64> {
        self.factor.view()
    }

    /// `log det A = 2 Σ log U_ii`.
    pub fn logdet(&self) -> f64 {
        2.0 * self.factor.diag().iter().map(|d| d.ln()).sum::<f64>()
    }

    /// `A⁻¹` (LAPACK `potri`), exactly symmetric, in a new matrix.
    ///
    /// # Errors
    /// [`LinalgError::Lapack`] if `potri` fails (a singular factor).
    pub fn inverse(&self) -> Result<Array2<f64>, LinalgError> {
        self.clone().into_inverse()
    }

    /// `A⁻¹` computed in the factor's own buffer (no allocation).
    ///
    /// # Errors
    /// As [`Cholesky::inverse`].
    pub fn into_inverse(self) -> Result<Array2<f64>, LinalgError> {
        let mut a = self.factor;
        let n = a.nrows();
        if n == 0 {
            return Ok(a);
        }
        let (l, uplo) = layout(n);
        f64::inv_cholesky(l, uplo, a.as_slice_mut().expect("standard layout"))
            .map_err(LinalgError::from_cholesky)?;
        copy_upper_to_lower(a.view_mut());
        Ok(a)
    }

    /// Solves `A x = b` in place (`b` becomes `x`).
    ///
    /// # Errors
    /// [`LinalgError::DimensionMismatch`] if `b` has the wrong length.
    pub fn solve_inplace(&self, mut b: ArrayViewMut1<'_, f64>) -> Result<(), LinalgError> {
        let n = self.dim();
        if b.len() != n {
            return Err(LinalgError::DimensionMismatch {
                expected: n,
                found: b.len(),
            });
        }
        if n == 0 {
            return Ok(());
        }
        let (l, uplo) = layout(n);
        let a = self.factor.as_slice().expect("standard layout");
        match b.as_slice_mut() {
            Some(s) => f64::solve_cholesky(l, uplo, a, s),
            None => {
                let mut tmp = b.to_vec();
                let r = f64::solve_cholesky(l, uplo, a, &mut tmp);
                b.iter_mut().zip(tmp).for_each(|(d, s)| *d = s);
                r
            }
        }
        .map_err(LinalgError::from_cholesky)
    }
}

/// Copies the upper triangle onto the lower one (exact symmetry).
pub fn copy_upper_to_lower(mut a: ArrayViewMut2<'_, f64>) {
    let n = a.nrows();
    for i in 0..n {
        for j in 0..i {
            a[[i, j]] = a[[j, i]];
        }
    }
}

/// `log det A` of an SPD matrix, from its Cholesky factor.
///
/// # Errors
/// As [`Cholesky::factor`].
pub fn logdet_spd(a: ArrayView2<'_, f64>) -> Result<f64, LinalgError> {
    Ok(Cholesky::factor(a)?.logdet())
}

/// `A⁻¹` of an SPD matrix via Cholesky (`potrf` + `potri`), with `log det A`.
///
/// # Errors
/// As [`Cholesky::factor`].
pub fn inverse_spd(a: ArrayView2<'_, f64>) -> Result<(Array2<f64>, f64), LinalgError> {
    let c = Cholesky::factor(a)?;
    let logdet = c.logdet();
    Ok((c.into_inverse()?, logdet))
}

/// `out ← A V A` for n × n matrices, with `t` an n × n scratch (`t ← V A`): two BLAS products
/// (4n³ flops), in double or (for `f32`) single precision. The Kronecker products `(A ⊗ A) vec V` of the GLASSO Newton and adjoint
/// systems are this sandwich restricted to a set of entries.
///
/// Serial on purpose: splitting the columns over two rayon tasks (one BLAS thread each) was
/// measured on the project's 2-vCPU machines at 1.09× the serial time for n = 100 and 0.82–0.86×
/// for n = 200–500; the two vCPUs share their floating-point throughput (two independent
/// single-threaded processes each ran 1.4–1.6× slower than one alone).
///
/// # Panics
/// If the shapes differ (a programmer error).
pub fn sandwich<A: LinalgScalar>(
    a: ArrayView2<'_, A>,
    v: ArrayView2<'_, A>,
    mut t: ArrayViewMut2<'_, A>,
    mut out: ArrayViewMut2<'_, A>,
) {
    let n = a.nrows();
    assert!(
        a.dim() == (n, n) && v.dim() == (n, n) && t.dim() == (n, n) && out.dim() == (n, n),
        "sandwich needs four n × n matrices"
    );
    general_mat_mul(A::one(), &v, &a, A::zero(), &mut t);
    general_mat_mul(A::one(), &a, &t, A::zero(), &mut out);
}

/// Order from which [`sandwich_upper`] splits its second product into row bands.
const BANDED_SANDWICH_MIN: usize = 256;

/// Rows per band of [`sandwich_upper`]'s second product (at least).
const SANDWICH_BAND: usize = 128;

/// The upper triangle (`i ≤ j`) of `out ← A V A` for symmetric n × n `A` and `V`, with `t` an
/// n × n scratch (`t ← V A`). The strict lower triangle of `out` is left partly computed and
/// must not be read: `(A V A)_ij` for `i > j` is `out[[j, i]]`.
///
/// `A V A` is then symmetric, so its second product only needs the upper triangle: from
/// n = 256 on it runs by k bands of rows, band `[r₀, r₁)` times the columns `r₀..n` of `t`,
/// `2n³(k + 1)/(2k)` flops instead of `2n³` (3.1n³ in all instead of 4n³ for k = 8; OpenBLAS
/// 0.3.21 has no `gemmt`). Below 256 it is [`sandwich`].
///
/// # Panics
/// If the shapes differ (a programmer error).
pub fn sandwich_upper<A: LinalgScalar>(
    a: ArrayView2<'_, A>,
    v: ArrayView2<'_, A>,
    mut t: ArrayViewMut2<'_, A>,
    mut out: ArrayViewMut2<'_, A>,
) {
    let n = a.nrows();
    if n < BANDED_SANDWICH_MIN {
        sandwich(a, v, t, out);
        return;
    }
    assert!(
        a.dim() == (n, n) && v.dim() == (n, n) && t.dim() == (n, n) && out.dim() == (n, n),
        "sandwich_upper needs four n × n matrices"
    );
    general_mat_mul(A::one(), &v, &a, A::zero(), &mut t);
    let bands = (n / SANDWICH_BAND).clamp(1, 8);
    for b in 0..bands {
        let (r0, r1) = (b * n / bands, (b + 1) * n / bands);
        general_mat_mul(
            A::one(),
            &a.slice(s![r0..r1, ..]),
            &t.slice(s![.., r0..]),
            A::zero(),
            &mut out.slice_mut(s![r0..r1, r0..]),
        );
    }
}

/// Replaces `A` by `(A + Aᵀ)/2`.
///
/// # Panics
/// If `a` is not square (a programmer error).
pub fn symmetrize_inplace(mut a: ArrayViewMut2<'_, f64>) {
    assert_eq!(
        a.nrows(),
        a.ncols(),
        "symmetrize_inplace needs a square matrix"
    );
    let n = a.nrows();
    for i in 0..n {
        for j in 0..i {
            let m = 0.5 * (a[[i, j]] + a[[j, i]]);
            a[[i, j]] = m;
            a[[j, i]] = m;
        }
    }
}

/// Checks that `a` is square.
///
/// # Errors
/// [`LinalgError::NotSquare`].
pub fn check_square(a: ArrayView2<'_, f64>) -> Result<(), LinalgError> {
    if a.nrows() != a.ncols() {
        return Err(LinalgError::NotSquare {
            rows: a.nrows(),
            cols: a.ncols(),
        });
    }
    Ok(())
}

/// Checks that every entry is finite.
///
/// # Errors
/// [`LinalgError::NonFinite`] with the first offending position (row-major order).
pub fn check_finite(a: ArrayView2<'_, f64>) -> Result<(), LinalgError> {
    for ((row, col), v) in a.indexed_iter() {
        if !v.is_finite() {
            return Err(LinalgError::NonFinite { row, col });
        }
    }
    Ok(())
}

/// Checks that `a` is square, finite and symmetric: `|A_ij − A_ji| ≤ tol · max(1, max|A|)`.
///
/// # Errors
/// [`LinalgError::NotSquare`], [`LinalgError::NonFinite`] or [`LinalgError::NotSymmetric`]
/// (with the worst entry).
pub fn check_symmetric(a: ArrayView2<'_, f64>, tol: f64) -> Result<(), LinalgError> {
    check_square(a)?;
    check_finite(a)?;
    let scale = a.iter().fold(1.0_f64, |m, v| m.max(v.abs()));
    let allowed = tol * scale;
    let n = a.nrows();
    let mut worst = (0, 0, 0.0_f64);
    for i in 0..n {
        for j in 0..i {
            let d = (a[[i, j]] - a[[j, i]]).abs();
            if d > worst.2 {
                worst = (i, j, d);
            }
        }
    }
    if worst.2 > allowed {
        return Err(LinalgError::NotSymmetric {
            row: worst.0,
            col: worst.1,
            asymmetry: worst.2,
            tol: allowed,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::random_spd;
    use approx::assert_abs_diff_eq;
    use ndarray::{array, Array1};

    #[test]
    fn sandwich_matches_a_triple_loop() {
        for &(n, seed) in &[(1, 0), (5, 1), (33, 2)] {
            let a = random_spd(n, 10.0, seed);
            let v = Array2::from_shape_fn((n, n), |(i, j)| ((3 * i + 5 * j) % 7) as f64 - 3.0);
            let mut t = Array2::from_elem((n, n), f64::NAN);
            let mut out = Array2::from_elem((n, n), f64::NAN);
            sandwich(a.view(), v.view(), t.view_mut(), out.view_mut());
            for i in 0..n {
                for j in 0..n {
                    let mut r = 0.0;
                    for k in 0..n {
                        for l in 0..n {
                            r += a[[i, k]] * v[[k, l]] * a[[l, j]];
                        }
                    }
                    assert_abs_diff_eq!(out[[i, j]], r, epsilon = 1e-12 * (1.0 + r.abs()));
                }
            }
        }
    }

    /// The banded upper triangle equals the full product's, bands of unequal sizes included
    /// (n = 300: two bands of 150; n = 1037: eight of 129–130), in both precisions.
    #[test]
    fn sandwich_upper_matches_the_full_sandwich_on_the_upper_triangle() {
        for &(n, seed) in &[(40, 0), (300, 1), (1037, 2)] {
            let a = random_spd(n, 10.0, seed);
            let v =
                Array2::from_shape_fn((n, n), |(i, j)| (((i * j + 3 * (i + j)) % 7) as f64) - 3.0);
            let (mut t, mut full, mut upper) =
                (v.clone(), v.clone(), Array2::from_elem((n, n), f64::NAN));
            sandwich(a.view(), v.view(), t.view_mut(), full.view_mut());
            sandwich_upper(a.view(), v.view(), t.view_mut(), upper.view_mut());
            let scale = full.iter().fold(0.0_f64, |m, x| m.max(x.abs()));
            for i in 0..n {
                for j in i..n {
                    assert_abs_diff_eq!(upper[[i, j]], full[[i, j]], epsilon = 1e-12 * scale);
                }
            }
            let (a32, v32) = (a.mapv(|x| x as f32), v.mapv(|x| x as f32));
            let (mut t32, mut up32) = (v32.clone(), Array2::from_elem((n, n), f32::NAN));
            sandwich_upper(a32.view(), v32.view(), t32.view_mut(), up32.view_mut());
            for i in 0..n {
                for j in i..n {
                    let d = f64::from(up32[[i, j]]) - full[[i, j]];
                    assert!(d.abs() <= 1e-5 * scale, "f32 n={n} ({i},{j}) off by {d}");
                }
            }
        }
    }

    #[test]
    fn cholesky_logdet_inverse_match_dense_references() {
        for &(n, kappa, seed) in &[(1, 1.0, 0), (3, 10.0, 1), (17, 1e3, 2), (60, 1e5, 3)] {
            let a = random_spd(n, kappa, seed);
            let c = Cholesky::factor(a.view()).unwrap();
            // Reference log-det from the generator's eigenvalues is not exposed; use the
            // product of the pivots of an unpivoted LDLᵀ computed here in plain Rust.
            let mut m = a.clone();
            let mut logdet = 0.0;
            for k in 0..n {
                let piv = m[[k, k]];
                logdet += piv.ln();
                for i in k + 1..n {
                    let f = m[[i, k]] / piv;
                    for j in k + 1..n {
                        m[[i, j]] -= f * m[[k, j]];
                    }
                }
            }
            assert_abs_diff_eq!(c.logdet(), logdet, epsilon = 1e-10 * (1.0 + logdet.abs()));
            let inv = c.inverse().unwrap();
            let eye = Array2::<f64>::eye(n);
            let prod = a.dot(&inv);
            let err = (&prod - &eye).iter().fold(0.0_f64, |m, v| m.max(v.abs()));
            assert!(err <= 1e-13 * kappa * n as f64 + 1e-14, "n={n} err={err}");
            for i in 0..n {
                for j in 0..n {
                    assert_eq!(inv[[i, j]].to_bits(), inv[[j, i]].to_bits());
                }
            }
            let x_true = Array1::from_iter((0..n).map(|i| (i as f64 * 0.7).sin()));
            let mut b = a.dot(&x_true);
            c.solve_inplace(b.view_mut()).unwrap();
            let err = (&b - &x_true).iter().fold(0.0_f64, |m, v| m.max(v.abs()));
            assert!(err <= 1e-12 * kappa, "solve n={n} err={err}");
        }
    }

    #[test]
    fn not_positive_definite_reports_the_pivot() {
        let a = array![[4.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
        match Cholesky::factor(a.view()) {
            Err(LinalgError::NotPositiveDefinite { pivot }) => assert_eq!(pivot, 1),
            other => panic!("unexpected {other:?}"),
        }
        let b = array![[-1.0]];
        assert!(matches!(
            Cholesky::factor(b.view()),
            Err(LinalgError::NotPositiveDefinite { pivot: 0 })
        ));
        // NaN and infinite entries are refused, not factored into NaNs.
        let c = array![[4.0, 1.0, 0.0], [1.0, f64::NAN, 0.0], [0.0, 0.0, 1.0]];
        assert!(matches!(
            Cholesky::factor(c.view()),
            Err(LinalgError::NotPositiveDefinite { pivot: 1 })
        ));
        let d = array![[f64::INFINITY, 0.0], [0.0, 1.0]];
        assert!(Cholesky::factor(d.view()).is_err());
    }

    #[test]
    fn checks_report_their_variant() {
        let ns = Array2::<f64>::zeros((2, 3));
        assert!(matches!(
            check_square(ns.view()),
            Err(LinalgError::NotSquare { rows: 2, cols: 3 })
        ));
        let asym = array![[1.0, 2.0], [2.1, 1.0]];
        assert!(matches!(
            check_symmetric(asym.view(), 1e-8),
            Err(LinalgError::NotSymmetric { row: 1, col: 0, .. })
        ));
        let nan = array![[1.0, f64::NAN], [0.0, 1.0]];
        assert!(matches!(
            check_finite(nan.view()),
            Err(LinalgError::NonFinite { row: 0, col: 1 })
        ));
        let mut s = asym.clone();
        symmetrize_inplace(s.view_mut());
        check_symmetric(s.view(), 0.0).unwrap();
    }

    #[test]
    fn non_contiguous_input_is_handled() {
        let a = random_spd(6, 10.0, 9);
        let big = ndarray::concatenate![ndarray::Axis(1), a, a];
        let view = big.slice(ndarray::s![.., ..;2]).to_owned();
        let t = a.t();
        let c1 = Cholesky::factor(t).unwrap();
        let c2 = Cholesky::factor(a.view()).unwrap();
        assert_abs_diff_eq!(c1.logdet(), c2.logdet(), epsilon = 1e-12);
        assert_eq!(view.nrows(), 6);
    }
}
