//! The weighted GLASSO problem, its objective and its optimality certificates.
//!
//! ```text
//! minimize over Θ ≻ 0:   Φ(Θ) = −log det Θ + ⟨S, Θ⟩ + Σ_{k,l} Λ_kl |Θ_kl|
//! optimality (W = Θ⁻¹):  W_kl − S_kl = Λ_kl sign(Θ_kl) on the support, |W_kl − S_kl| ≤ Λ_kl off it
//! dual:                  maximize log det(S + U) + p  over |U_kl| ≤ Λ_kl
//! duality gap at Θ:      U = clip(Θ⁻¹ − S, −Λ, Λ);  gap = Φ(Θ) − log det(S + U) − p  (if S + U ≻ 0)
//! ```
//!
//! The sum runs over all ordered pairs (each off-diagonal pair counted twice, as in
//! scikit-learn). A scalar penalty is `Λ = α P` with `P = 11ᵀ − I` (diagonal not penalized,
//! the default) or `P = 11ᵀ`.

use crate::GlassoError;
use ho_linalg::Cholesky;
use ndarray::{Array2, ArrayView2};

/// The penalty: one scalar on a pattern, or a full symmetric matrix.
#[derive(Debug, Clone, PartialEq)]
pub enum Penalty {
    /// `Λ = alpha · P`, `P = 11ᵀ − I` or `11ᵀ` when `penalize_diagonal`.
    Scalar {
        /// The scalar λ ≥ 0.
        alpha: f64,
        /// Whether the diagonal is penalized too.
        penalize_diagonal: bool,
    },
    /// A symmetric matrix `Λ` with nonnegative entries.
    Matrix(Array2<f64>),
}

impl Penalty {
    /// The scalar penalty with an unpenalized diagonal (the default convention).
    pub fn scalar(alpha: f64) -> Self {
        Penalty::Scalar {
            alpha,
            penalize_diagonal: false,
        }
    }

    /// The dense p × p matrix `Λ`.
    pub fn to_matrix(&self, p: usize) -> Array2<f64> {
        match self {
            Penalty::Scalar {
                alpha,
                penalize_diagonal,
            } => {
                let mut l = Array2::from_elem((p, p), *alpha);
                if !penalize_diagonal {
                    l.diag_mut().fill(0.0);
                }
                l
            }
            Penalty::Matrix(m) => m.clone(),
        }
    }

    /// The scalar λ, if this is a scalar penalty.
    pub fn alpha(&self) -> Option<f64> {
        match self {
            Penalty::Scalar { alpha, .. } => Some(*alpha),
            Penalty::Matrix(_) => None,
        }
    }
}

/// One GLASSO instance: the empirical covariance `S` (p × p) and the penalty.
#[derive(Debug, Clone)]
pub struct GlassoProblem<'a> {
    /// `S`, symmetric positive semi-definite in practice (only symmetry is required).
    pub emp_cov: ArrayView2<'a, f64>,
    /// The penalty `Λ`.
    pub penalty: Penalty,
}

/// Relative tolerance of the symmetry checks on S and Λ.
pub const SYMMETRY_TOL: f64 = 1e-10;

impl<'a> GlassoProblem<'a> {
    /// A problem with a scalar penalty.
    pub fn new(emp_cov: ArrayView2<'a, f64>, penalty: Penalty) -> Self {
        Self { emp_cov, penalty }
    }

    /// p.
    pub fn dim(&self) -> usize {
        self.emp_cov.nrows()
    }

    /// Checks the problem and returns the dense penalty matrix `Λ`.
    ///
    /// # Errors
    /// Every [`GlassoError`] input variant: shape, NaN/inf, asymmetry (relative 1e-10),
    /// negative penalty, and `S_ii + Λ_ii ≤ 0` (unbounded).
    pub fn validate(&self) -> Result<Array2<f64>, GlassoError> {
        let s = self.emp_cov;
        let (rows, cols) = s.dim();
        if rows != cols {
            return Err(GlassoError::NotSquare { rows, cols });
        }
        if rows == 0 {
            return Err(GlassoError::Empty);
        }
        check_matrix(s, "covariance")?;
        let p = rows;
        if let Penalty::Scalar { alpha, .. } = self.penalty {
            if !(alpha >= 0.0 && alpha.is_finite()) {
                return Err(GlassoError::InvalidPenalty {
                    value: alpha,
                    row: 0,
                    col: 0,
                });
            }
        }
        if let Penalty::Matrix(m) = &self.penalty {
            if m.nrows() != p || m.ncols() != p {
                return Err(GlassoError::PenaltyShape {
                    expected: p,
                    found: if m.nrows() != p { m.nrows() } else { m.ncols() },
                });
            }
        }
        let lam = self.penalty.to_matrix(p);
        check_matrix(lam.view(), "penalty")?;
        if let Some(((row, col), &value)) = lam.indexed_iter().find(|(_, v)| !(**v >= 0.0)) {
            return Err(GlassoError::InvalidPenalty { value, row, col });
        }
        for i in 0..p {
            let value = s[[i, i]] + lam[[i, i]];
            if !(value > 0.0) {
                return Err(GlassoError::Unbounded { index: i, value });
            }
        }
        Ok(lam)
    }
}

fn check_matrix(a: ArrayView2<'_, f64>, what: &'static str) -> Result<(), GlassoError> {
    if let Some(((row, col), _)) = a.indexed_iter().find(|(_, v)| !v.is_finite()) {
        return Err(GlassoError::NonFinite { what, row, col });
    }
    let scale = a.iter().fold(1.0_f64, |m, v| m.max(v.abs()));
    let p = a.nrows();
    for i in 0..p {
        for j in 0..i {
            let asymmetry = (a[[i, j]] - a[[j, i]]).abs();
            if asymmetry > SYMMETRY_TOL * scale {
                return Err(GlassoError::NotSymmetric {
                    what,
                    row: i,
                    col: j,
                    asymmetry,
                });
            }
        }
    }
    Ok(())
}

/// `λ_max = max_{i≠j} |S_ij|`: for a scalar penalty with an unpenalized diagonal, every
/// `λ ≥ λ_max` gives the diagonal solution `Θ = diag(1/S_ii)`. 0 when p = 1.
pub fn lambda_max(emp_cov: ArrayView2<'_, f64>) -> f64 {
    let mut m = 0.0_f64;
    for ((i, j), v) in emp_cov.indexed_iter() {
        if i != j {
            m = m.max(v.abs());
        }
    }
    m
}

/// `Σ_kl Λ_kl |Θ_kl|`.
pub fn penalty_value(theta: ArrayView2<'_, f64>, lam: ArrayView2<'_, f64>) -> f64 {
    theta.iter().zip(lam.iter()).map(|(t, l)| l * t.abs()).sum()
}

/// `⟨A, B⟩ = Σ_kl A_kl B_kl`.
pub fn frobenius_inner(a: ArrayView2<'_, f64>, b: ArrayView2<'_, f64>) -> f64 {
    a.iter().zip(b.iter()).map(|(x, y)| x * y).sum()
}

/// `Φ(Θ) = −log det Θ + ⟨S, Θ⟩ + Σ Λ_kl |Θ_kl|`, given `log det Θ`.
pub fn objective_with_logdet(
    theta: ArrayView2<'_, f64>,
    logdet: f64,
    emp_cov: ArrayView2<'_, f64>,
    lam: ArrayView2<'_, f64>,
) -> f64 {
    -logdet + frobenius_inner(emp_cov, theta) + penalty_value(theta, lam)
}

/// `Φ(Θ)`, with `log det Θ` from a Cholesky factorization.
///
/// # Errors
/// [`GlassoError::Linalg`] with `NotPositiveDefinite` when Θ is not SPD.
pub fn objective(
    theta: ArrayView2<'_, f64>,
    emp_cov: ArrayView2<'_, f64>,
    lam: ArrayView2<'_, f64>,
) -> Result<f64, GlassoError> {
    let logdet = Cholesky::factor(theta)?.logdet();
    Ok(objective_with_logdet(theta, logdet, emp_cov, lam))
}

/// The duality gap of DESIGN.md §1 at Θ with `W = Θ⁻¹`, given `Φ(Θ)`: with
/// `U = clip(W − S, −Λ, Λ)`, `gap = Φ(Θ) − log det(S + U) − p`. `+∞` when `S + U` is not
/// positive definite (the dual point is infeasible).
pub fn duality_gap(
    objective: f64,
    covariance: ArrayView2<'_, f64>,
    emp_cov: ArrayView2<'_, f64>,
    lam: ArrayView2<'_, f64>,
) -> f64 {
    let p = emp_cov.nrows();
    let mut su = Array2::zeros((p, p));
    ndarray::Zip::from(&mut su)
        .and(covariance)
        .and(emp_cov)
        .and(lam)
        .for_each(|o, &w, &s, &l| *o = s + (w - s).clamp(-l, l));
    match Cholesky::factor_inplace(su) {
        Ok(c) => objective - c.logdet() - p as f64,
        Err(_) => f64::INFINITY,
    }
}

/// The KKT residual: the largest distance of `(W − S)_kl` to `Λ_kl ∂|Θ_kl|`, i.e.
/// `|W − S − Λ sign Θ|` on the support and `max(0, |W − S| − Λ)` off it.
pub fn kkt_residual(
    theta: ArrayView2<'_, f64>,
    covariance: ArrayView2<'_, f64>,
    emp_cov: ArrayView2<'_, f64>,
    lam: ArrayView2<'_, f64>,
) -> f64 {
    let dim = theta.dim();
    assert!(
        covariance.dim() == dim && emp_cov.dim() == dim && lam.dim() == dim,
        "kkt_residual: matrices of different shapes"
    );
    // By rows in parallel (an O(p²) pass after every solve and certificate).
    crate::rows::max_rows(theta.nrows(), |i| {
        let rows = theta.row(i).into_iter().zip(covariance.row(i));
        rows.zip(emp_cov.row(i).into_iter().zip(lam.row(i)))
            .map(|((&t, &w), (&s, &l))| {
                let g = w - s;
                if t > 0.0 {
                    (g - l).abs()
                } else if t < 0.0 {
                    (g + l).abs()
                } else {
                    (g.abs() - l).max(0.0)
                }
            })
            .fold(0.0, f64::max)
    })
}

/// Relative gap `gap / max(1, |Φ|)`, the quantity the solvers stop on.
pub fn relative_gap(gap: f64, objective: f64) -> f64 {
    gap / objective.abs().max(1.0)
}
