//! The generic layer: an optimality condition `F(x, λ) = 0` (or a fixed point `x = T(x, λ)`),
//! given by its four Jacobian products, and the derivatives of its solution map `x̂(λ)`
//! (docs/implicit-diff.md §10).
//!
//! ```text
//! F(x̂(λ), λ) = 0   ⇒   ∂₁F · J + ∂₂F = 0,   J = ∂x̂/∂λ = −(∂₁F)⁻¹ ∂₂F      (n × m)
//! forward (JVP):   J t   = −(∂₁F)⁻¹ (∂₂F t)             one solve per direction t ∈ R^m
//! adjoint (VJP):   Jᵀ g  = −(∂₂F)ᵀ u,  (∂₁F)ᵀ u = g    one solve per output gradient g ∈ R^n
//! ```
//!
//! `n` = [`ImplicitSystem::n_active`] (the inner variable, restricted to its active set) and
//! `m` = [`ImplicitSystem::n_hyper`] (the hyperparameters). A hypergradient of an outer
//! criterion `L(λ) = C(x̂(λ))` is the VJP with `g = ∇C(x̂)`: one linear solve whatever `m`.
//!
//! The linear solver follows the system's [`Structure`]: preconditioned conjugate gradient for
//! a symmetric positive definite `∂₁F`, BiCGSTAB otherwise, or a dense factorization (Cholesky,
//! or LU with partial pivoting) as a reference for small systems ([`SolverChoice`]).

use crate::ImplicitError;
use ho_linalg::{
    bicgstab, pcg, CgOptions, DenseCholeskySolver, LinearOperator, LinearSolver, SolveReport,
    Status,
};
use ndarray::{Array1, Array2, ArrayView1, ArrayViewMut1};

/// The structure of `∂₁F`, which decides the Krylov method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Structure {
    /// `∂₁F` is symmetric positive definite: conjugate gradient, and `(∂₁F)ᵀ = ∂₁F`.
    SymmetricPositiveDefinite,
    /// Anything else (non-singular): BiCGSTAB.
    General,
}

/// An optimality condition `F(x, λ) = 0` at a solution `x̂`, restricted to its active set,
/// given by matrix-free Jacobian products (docs/implicit-diff.md §10).
///
/// Every product writes into `out` (overwritten, not accumulated) and must not allocate.
/// Vectors in `x`-space have length [`n_active`](Self::n_active), in `λ`-space
/// [`n_hyper`](Self::n_hyper).
///
/// # Panics
/// Implementations may panic on vectors of the wrong length (a programmer error).
pub trait ImplicitSystem {
    /// n, the dimension of the (active) inner variable.
    fn n_active(&self) -> usize;
    /// m, the number of hyperparameters.
    fn n_hyper(&self) -> usize;
    /// The structure of `∂₁F` (selects CG or BiCGSTAB).
    fn structure(&self) -> Structure;
    /// `out ← ∂₁F · v` (`v`, `out` in x-space).
    fn jvp_theta(&self, v: ArrayView1<'_, f64>, out: ArrayViewMut1<'_, f64>);
    /// `out ← (∂₁F)ᵀ · w` (`w`, `out` in x-space); equal to [`jvp_theta`](Self::jvp_theta)
    /// for a symmetric system.
    fn vjp_theta(&self, w: ArrayView1<'_, f64>, out: ArrayViewMut1<'_, f64>);
    /// `out ← ∂₂F · t` (`t` in λ-space, `out` in x-space).
    fn jvp_hyper(&self, t: ArrayView1<'_, f64>, out: ArrayViewMut1<'_, f64>);
    /// `out ← (∂₂F)ᵀ · w` (`w` in x-space, `out` in λ-space).
    fn vjp_hyper(&self, w: ArrayView1<'_, f64>, out: ArrayViewMut1<'_, f64>);
    /// A preconditioner `K⁻¹ ≈ (∂₁F)⁻¹`, symmetric positive definite when the system is (it
    /// is used for `∂₁F` and its transpose). `None` (the default) for none.
    fn preconditioner(&self) -> Option<&dyn LinearOperator> {
        None
    }
}

/// A fixed-point map `x = T(x, λ)` at a fixed point, given by its Jacobian products; the
/// implicit system is its residual `F = x − T(x, λ)` ([`FixedPointResidual`]):
///
/// ```text
/// ∂₁F = I − ∂₁T,   ∂₂F = −∂₂T
/// ```
pub trait FixedPointMap {
    /// n, the dimension of x.
    fn n_active(&self) -> usize;
    /// m, the number of hyperparameters.
    fn n_hyper(&self) -> usize;
    /// `out ← ∂₁T · v`.
    fn jvp_x(&self, v: ArrayView1<'_, f64>, out: ArrayViewMut1<'_, f64>);
    /// `out ← (∂₁T)ᵀ · w`.
    fn vjp_x(&self, w: ArrayView1<'_, f64>, out: ArrayViewMut1<'_, f64>);
    /// `out ← ∂₂T · t`.
    fn jvp_hyper(&self, t: ArrayView1<'_, f64>, out: ArrayViewMut1<'_, f64>);
    /// `out ← (∂₂T)ᵀ · w`.
    fn vjp_hyper(&self, w: ArrayView1<'_, f64>, out: ArrayViewMut1<'_, f64>);
}

/// The optimality condition `F(x, λ) = x − T(x, λ) = 0` of a [`FixedPointMap`]. Its `∂₁F` is
/// in general not symmetric ([`Structure::General`]: BiCGSTAB).
pub struct FixedPointResidual<'a> {
    /// The map T.
    pub map: &'a dyn FixedPointMap,
}

impl ImplicitSystem for FixedPointResidual<'_> {
    fn n_active(&self) -> usize {
        self.map.n_active()
    }
    fn n_hyper(&self) -> usize {
        self.map.n_hyper()
    }
    fn structure(&self) -> Structure {
        Structure::General
    }
    fn jvp_theta(&self, v: ArrayView1<'_, f64>, mut out: ArrayViewMut1<'_, f64>) {
        self.map.jvp_x(v, out.view_mut());
        out.zip_mut_with(&v, |o, &vi| *o = vi - *o);
    }
    fn vjp_theta(&self, w: ArrayView1<'_, f64>, mut out: ArrayViewMut1<'_, f64>) {
        self.map.vjp_x(w, out.view_mut());
        out.zip_mut_with(&w, |o, &wi| *o = wi - *o);
    }
    fn jvp_hyper(&self, t: ArrayView1<'_, f64>, mut out: ArrayViewMut1<'_, f64>) {
        self.map.jvp_hyper(t, out.view_mut());
        out.mapv_inplace(|o| -o);
    }
    fn vjp_hyper(&self, w: ArrayView1<'_, f64>, mut out: ArrayViewMut1<'_, f64>) {
        self.map.vjp_hyper(w, out.view_mut());
        out.mapv_inplace(|o| -o);
    }
}

/// `∂₁F` of a system as a [`LinearOperator`] (`x ↦ ∂₁F x`).
pub struct JacobianOperator<'a>(pub &'a dyn ImplicitSystem);

impl LinearOperator for JacobianOperator<'_> {
    fn dim(&self) -> usize {
        self.0.n_active()
    }
    fn apply(&self, x: ArrayView1<'_, f64>, out: ArrayViewMut1<'_, f64>) {
        self.0.jvp_theta(x, out);
    }
}

/// `(∂₁F)ᵀ` of a system as a [`LinearOperator`] (`w ↦ (∂₁F)ᵀ w`).
pub struct TransposedJacobianOperator<'a>(pub &'a dyn ImplicitSystem);

impl LinearOperator for TransposedJacobianOperator<'_> {
    fn dim(&self) -> usize {
        self.0.n_active()
    }
    fn apply(&self, x: ArrayView1<'_, f64>, out: ArrayViewMut1<'_, f64>) {
        self.0.vjp_theta(x, out);
    }
}

/// Which linear solver to use for `∂₁F` (or its transpose).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SolverChoice {
    /// CG for [`Structure::SymmetricPositiveDefinite`], BiCGSTAB otherwise.
    Auto,
    /// Preconditioned conjugate gradient (the system must be SPD).
    Cg,
    /// Preconditioned BiCGSTAB.
    Bicgstab,
    /// Materialize `∂₁F` (n products) and factor it: Cholesky when SPD, LU otherwise.
    /// Limited to `n ≤ dense_limit`.
    Dense,
}

/// Options of the generic solves.
///
/// | Name | Default | Meaning | Range |
/// |---|---|---|---|
/// | `solver` | [`SolverChoice::Auto`] | Krylov method or dense reference | |
/// | `cg` | rel_tol 1e-10, abs_tol 0, max_iter 2000 | Krylov tolerances and budget | see [`CgOptions`] |
/// | `precondition` | true | use [`ImplicitSystem::preconditioner`] | |
/// | `dense_limit` | 4000 | largest n for [`SolverChoice::Dense`] and [`jacobian`] | ≥ 1 |
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImplicitOptions {
    /// The solver.
    pub solver: SolverChoice,
    /// Tolerances of the Krylov solvers (the dense path ignores them).
    pub cg: CgOptions,
    /// Whether to use the system's preconditioner.
    pub precondition: bool,
    /// Size limit of the dense paths.
    pub dense_limit: usize,
}

impl Default for ImplicitOptions {
    fn default() -> Self {
        Self {
            solver: SolverChoice::Auto,
            cg: CgOptions {
                rel_tol: 1e-10,
                abs_tol: 0.0,
                max_iter: 2000,
            },
            precondition: true,
            dense_limit: 4000,
        }
    }
}

/// The result of an adjoint (VJP) computation.
#[derive(Debug, Clone)]
pub struct AdjointSolution {
    /// `Jᵀ g = −(∂₂F)ᵀ u` (length m): the hypergradient when `g = ∇C`.
    pub hypergrad: Array1<f64>,
    /// The adjoint `u`, solution of `(∂₁F)ᵀ u = g` (length n): keep it to warm-start the
    /// next solve.
    pub adjoint: Array1<f64>,
    /// What the linear solve did.
    pub report: SolveReport,
}

/// Solves `op · x = b` with the method of `options` (`x` holds the initial guess).
///
/// # Errors
/// [`ImplicitError::LinearSolveFailed`] when the Krylov method stops at its budget,
/// [`ImplicitError::TooLarge`] for a dense solve beyond `dense_limit`, and the solvers' own
/// failures (breakdown, singular matrix, dimension mismatch).
pub fn solve_linear(
    op: &dyn LinearOperator,
    precond: Option<&dyn LinearOperator>,
    structure: Structure,
    b: ArrayView1<'_, f64>,
    mut x: ArrayViewMut1<'_, f64>,
    options: &ImplicitOptions,
) -> Result<SolveReport, ImplicitError> {
    let precond = if options.precondition { precond } else { None };
    let report = match (options.solver, structure) {
        (SolverChoice::Auto, Structure::SymmetricPositiveDefinite) | (SolverChoice::Cg, _) => {
            pcg(op, precond, b, x, &options.cg)?
        }
        (SolverChoice::Auto, Structure::General) | (SolverChoice::Bicgstab, _) => {
            bicgstab(op, precond, b, x, &options.cg)?
        }
        (SolverChoice::Dense, _) => {
            let n = op.dim();
            if n > options.dense_limit {
                return Err(ImplicitError::TooLarge {
                    size: n,
                    limit: options.dense_limit,
                });
            }
            if structure == Structure::SymmetricPositiveDefinite {
                DenseCholeskySolver.solve(op, b, x)?
            } else {
                let a = op.to_dense();
                let sol = lu_solve(a, b.to_owned())?;
                x.assign(&sol);
                let mut r = Array1::zeros(n);
                op.apply(x.view(), r.view_mut());
                r -= &b;
                SolveReport {
                    n_iter: 0,
                    residual_norm: r.dot(&r).sqrt(),
                    status: Status::Converged,
                }
            }
        }
    };
    if report.status != Status::Converged {
        return Err(ImplicitError::LinearSolveFailed {
            residual_norm: report.residual_norm,
            n_iter: report.n_iter,
        });
    }
    Ok(report)
}

fn check_len(expected: usize, found: usize) -> Result<(), ImplicitError> {
    if expected != found {
        return Err(ImplicitError::DimensionMismatch { expected, found });
    }
    Ok(())
}

/// The adjoint (reverse-mode) derivative of the solution map: `Jᵀ g` with one solve of
/// `(∂₁F)ᵀ u = g`, started from `warm_start` (or 0). With `g = ∇C(x̂)` this is the
/// hypergradient `∇_λ C(x̂(λ))` (docs/implicit-diff.md §4).
///
/// # Errors
/// [`ImplicitError::DimensionMismatch`] for a `grad_theta` or warm start of the wrong
/// length, and the errors of [`solve_linear`].
pub fn hypergradient_adjoint(
    sys: &dyn ImplicitSystem,
    grad_theta: ArrayView1<'_, f64>,
    options: &ImplicitOptions,
    warm_start: Option<ArrayView1<'_, f64>>,
) -> Result<AdjointSolution, ImplicitError> {
    let n = sys.n_active();
    check_len(n, grad_theta.len())?;
    let mut u = match warm_start {
        Some(w) => {
            check_len(n, w.len())?;
            w.to_owned()
        }
        None => Array1::zeros(n),
    };
    let op = TransposedJacobianOperator(sys);
    let report = solve_linear(
        &op,
        sys.preconditioner(),
        sys.structure(),
        grad_theta,
        u.view_mut(),
        options,
    )?;
    Ok(AdjointSolution {
        hypergrad: hypergradient_from_adjoint(sys, u.view()),
        adjoint: u,
        report,
    })
}

/// `Jᵀ g = −(∂₂F)ᵀ u` from an adjoint `u` solving `(∂₁F)ᵀ u = g` (however it was solved).
pub fn hypergradient_from_adjoint(sys: &dyn ImplicitSystem, u: ArrayView1<'_, f64>) -> Array1<f64> {
    let mut hypergrad = Array1::zeros(sys.n_hyper());
    sys.vjp_hyper(u, hypergrad.view_mut());
    // 0 − v rather than −v: exact zeros stay +0 (no "-0" in written matrices)
    hypergrad.mapv_inplace(|v| 0.0 - v);
    hypergrad
}

/// The forward-mode derivative of the solution map along a hyperparameter direction `t`:
/// `J t = −(∂₁F)⁻¹ (∂₂F t)`, one solve (docs/implicit-diff.md §9).
///
/// # Errors
/// [`ImplicitError::DimensionMismatch`] for a `tangent` of the wrong length, and the errors of
/// [`solve_linear`].
pub fn jvp(
    sys: &dyn ImplicitSystem,
    tangent: ArrayView1<'_, f64>,
    options: &ImplicitOptions,
) -> Result<(Array1<f64>, SolveReport), ImplicitError> {
    let n = sys.n_active();
    check_len(sys.n_hyper(), tangent.len())?;
    let mut rhs = Array1::zeros(n);
    sys.jvp_hyper(tangent, rhs.view_mut());
    rhs.mapv_inplace(|v| -v);
    let mut d = Array1::zeros(n);
    let op = JacobianOperator(sys);
    let report = solve_linear(
        &op,
        sys.preconditioner(),
        sys.structure(),
        rhs.view(),
        d.view_mut(),
        options,
    )?;
    Ok((d, report))
}

/// The full Jacobian `J = −(∂₁F)⁻¹ ∂₂F` (n × m) by a dense factorization of the
/// materialized `∂₁F` (Cholesky when SPD, LU otherwise): for small systems and tests.
///
/// # Errors
/// [`ImplicitError::TooLarge`] when `n > options.dense_limit`, and factorization failures
/// ([`ImplicitError::Linalg`] not positive definite, [`ImplicitError::Singular`]).
pub fn jacobian(
    sys: &dyn ImplicitSystem,
    options: &ImplicitOptions,
) -> Result<Array2<f64>, ImplicitError> {
    let (n, m) = (sys.n_active(), sys.n_hyper());
    if n > options.dense_limit {
        return Err(ImplicitError::TooLarge {
            size: n,
            limit: options.dense_limit,
        });
    }
    let a = JacobianOperator(sys).to_dense();
    let mut rhs = Array2::zeros((n, m));
    let mut e = Array1::zeros(m);
    for k in 0..m {
        e[k] = 1.0;
        sys.jvp_hyper(e.view(), rhs.column_mut(k));
        e[k] = 0.0;
    }
    rhs.mapv_inplace(|v| -v);
    match sys.structure() {
        Structure::SymmetricPositiveDefinite => {
            let c = ho_linalg::Cholesky::factor(a.view())?;
            for mut col in rhs.columns_mut() {
                let mut tmp = col.to_owned();
                c.solve_inplace(tmp.view_mut())?;
                col.assign(&tmp);
            }
            Ok(rhs)
        }
        Structure::General => {
            let lu = Lu::factor(a)?;
            for mut col in rhs.columns_mut() {
                let mut tmp = col.to_owned();
                lu.solve_inplace(&mut tmp);
                col.assign(&tmp);
            }
            Ok(rhs)
        }
    }
}

/// Dense LU with partial pivoting (plain Rust, O(n³)): the non-symmetric reference.
struct Lu {
    lu: Array2<f64>,
    perm: Vec<usize>,
}

impl Lu {
    fn factor(mut a: Array2<f64>) -> Result<Self, ImplicitError> {
        let n = a.nrows();
        let mut perm: Vec<usize> = (0..n).collect();
        let scale = a.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        for k in 0..n {
            let (piv, pval) = (k..n)
                .map(|i| (i, a[[i, k]].abs()))
                .fold((k, -1.0), |b, c| if c.1 > b.1 { c } else { b });
            if !(pval > f64::EPSILON * scale * n as f64) {
                return Err(ImplicitError::Singular { pivot: k });
            }
            if piv != k {
                for j in 0..n {
                    a.swap([k, j], [piv, j]);
                }
                perm.swap(k, piv);
            }
            let d = a[[k, k]];
            for i in k + 1..n {
                let f = a[[i, k]] / d;
                a[[i, k]] = f;
                if f != 0.0 {
                    for j in k + 1..n {
                        let akj = a[[k, j]];
                        a[[i, j]] -= f * akj;
                    }
                }
            }
        }
        Ok(Self { lu: a, perm })
    }

    fn solve_inplace(&self, b: &mut Array1<f64>) {
        let n = self.lu.nrows();
        let pb: Vec<f64> = self.perm.iter().map(|&i| b[i]).collect();
        for (i, v) in pb.into_iter().enumerate() {
            b[i] = v;
        }
        for i in 0..n {
            let mut s = b[i];
            for j in 0..i {
                s -= self.lu[[i, j]] * b[j];
            }
            b[i] = s;
        }
        for i in (0..n).rev() {
            let mut s = b[i];
            for j in i + 1..n {
                s -= self.lu[[i, j]] * b[j];
            }
            b[i] = s / self.lu[[i, i]];
        }
    }
}

/// Solves the dense system `a x = b` by LU with partial pivoting.
fn lu_solve(a: Array2<f64>, mut b: Array1<f64>) -> Result<Array1<f64>, ImplicitError> {
    let lu = Lu::factor(a)?;
    lu.solve_inplace(&mut b);
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    /// F(x, λ) = A x − B λ with a non-symmetric A: J = A⁻¹ B.
    struct Affine {
        a: Array2<f64>,
        b: Array2<f64>,
        structure: Structure,
    }

    impl ImplicitSystem for Affine {
        fn n_active(&self) -> usize {
            self.a.nrows()
        }
        fn n_hyper(&self) -> usize {
            self.b.ncols()
        }
        fn structure(&self) -> Structure {
            self.structure
        }
        fn jvp_theta(&self, v: ArrayView1<'_, f64>, mut out: ArrayViewMut1<'_, f64>) {
            out.assign(&self.a.dot(&v));
        }
        fn vjp_theta(&self, w: ArrayView1<'_, f64>, mut out: ArrayViewMut1<'_, f64>) {
            out.assign(&self.a.t().dot(&w));
        }
        fn jvp_hyper(&self, t: ArrayView1<'_, f64>, mut out: ArrayViewMut1<'_, f64>) {
            out.assign(&(-self.b.dot(&t)));
        }
        fn vjp_hyper(&self, w: ArrayView1<'_, f64>, mut out: ArrayViewMut1<'_, f64>) {
            out.assign(&(-self.b.t().dot(&w)));
        }
    }

    #[test]
    fn every_solver_gives_the_same_derivatives_of_an_affine_map() {
        let a = array![[4.0, 1.0, 0.5], [-0.5, 3.0, 0.2], [0.3, -0.4, 2.0]];
        let b = array![[1.0, 0.0], [0.5, -1.0], [0.0, 2.0]];
        let sys = Affine {
            a: a.clone(),
            b: b.clone(),
            structure: Structure::General,
        };
        // J = A⁻¹ B by the LU reference
        let lu = Lu::factor(a.clone()).unwrap();
        let mut j_ref = Array2::zeros((3, 2));
        for k in 0..2 {
            let mut c = b.column(k).to_owned();
            lu.solve_inplace(&mut c);
            j_ref.column_mut(k).assign(&c);
        }
        let check = a.dot(&j_ref) - &b;
        assert!(check.iter().all(|v| v.abs() < 1e-14));
        let g = array![0.3, -1.0, 2.0];
        for solver in [
            SolverChoice::Auto,
            SolverChoice::Bicgstab,
            SolverChoice::Dense,
        ] {
            let options = ImplicitOptions {
                solver,
                cg: CgOptions {
                    rel_tol: 1e-14,
                    ..ImplicitOptions::default().cg
                },
                ..Default::default()
            };
            let j = jacobian(&sys, &options).unwrap();
            assert!((&j - &j_ref).iter().all(|v| v.abs() < 1e-13));
            let vjp = hypergradient_adjoint(&sys, g.view(), &options, None).unwrap();
            let want = j_ref.t().dot(&g);
            assert!((&vjp.hypergrad - &want).iter().all(|v| v.abs() < 1e-12));
            let t = array![0.7, -0.2];
            let (d, _) = jvp(&sys, t.view(), &options).unwrap();
            assert!((&d - &j_ref.dot(&t)).iter().all(|v| v.abs() < 1e-12));
        }
    }

    #[test]
    fn dimension_and_size_errors() {
        let sys = Affine {
            a: Array2::eye(3),
            b: Array2::zeros((3, 1)),
            structure: Structure::SymmetricPositiveDefinite,
        };
        let short = Array1::zeros(2);
        assert!(matches!(
            hypergradient_adjoint(&sys, short.view(), &ImplicitOptions::default(), None),
            Err(ImplicitError::DimensionMismatch {
                expected: 3,
                found: 2
            })
        ));
        let tiny = ImplicitOptions {
            dense_limit: 2,
            solver: SolverChoice::Dense,
            ..Default::default()
        };
        assert!(matches!(
            jacobian(&sys, &tiny),
            Err(ImplicitError::TooLarge { size: 3, limit: 2 })
        ));
        let g = Array1::ones(3);
        assert!(matches!(
            hypergradient_adjoint(&sys, g.view(), &tiny, None),
            Err(ImplicitError::TooLarge { size: 3, limit: 2 })
        ));
        let singular = Affine {
            a: array![[1.0, 2.0], [2.0, 4.0]],
            b: Array2::zeros((2, 1)),
            structure: Structure::General,
        };
        assert!(matches!(
            jacobian(&singular, &ImplicitOptions::default()),
            Err(ImplicitError::Singular { pivot: 1 })
        ));
    }

    #[test]
    fn a_krylov_budget_overrun_is_an_error() {
        let n = 30;
        let a = Array2::from_shape_fn((n, n), |(i, j)| {
            if i == j {
                1.0 + i as f64 * i as f64
            } else {
                0.0
            }
        });
        let sys = Affine {
            a,
            b: Array2::ones((n, 1)),
            structure: Structure::SymmetricPositiveDefinite,
        };
        let options = ImplicitOptions {
            cg: CgOptions {
                rel_tol: 1e-14,
                abs_tol: 0.0,
                max_iter: 2,
            },
            ..Default::default()
        };
        let g = Array1::ones(n);
        assert!(matches!(
            hypergradient_adjoint(&sys, g.view(), &options, None),
            Err(ImplicitError::LinearSolveFailed { n_iter: 2, .. })
        ));
    }
}
