//! Hypergradients of `L(Λ) = C(Θ̂(Λ))` at a GLASSO fit, by five methods behind one interface
//! (docs/implicit-diff.md §4–§9; the validity condition in §8).
//!
//! ```text
//! adjoint (default):  M u = g_E,  g = ∇C(Θ̂),  M = (W ⊗ W)_{E,E}
//!                     ∂L/∂Λ_kl = −s_kl u_kl on E, 0 off E;  dL/dλ = Σ_kl P_kl ∂L/∂Λ_kl
//! log parametrization: dL/d(log λ) = λ dL/dλ,  dL/d(log Λ_kl) = Λ_kl ∂L/∂Λ_kl
//! symmetric pairs:     dL/dΛ_{k<l} = G_kl + G_lk,  diagonal G_ii       (pair_gradient)
//! ```

use super::active::{off_support_margin, ActiveSet};
use super::complement::solve_by_complement;
use super::criterion::Criterion;
use super::finite_diff::{finite_difference, FiniteDiffOptions};
use super::operator::{kronecker_matrix, Kernel};
use super::system::{GlassoSystem, PreconditionerKind};
use super::unrolled::{unrolled_gista, UnrolledOptions};
use crate::system::{
    hypergradient_adjoint, hypergradient_from_adjoint, jvp, ImplicitOptions, ImplicitSystem,
    SolverChoice,
};
use crate::ImplicitError;
use ho_glasso::{GlassoFit, GlassoProblem, GlassoSolver, NewtonCd, Penalty};
use ho_linalg::{CgOptions, Cholesky, SolveReport, Status};
use ndarray::{Array1, Array2, ArrayView2};
use std::time::Instant;

/// How the hypergradient is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// One CG solve with `M` (matrix-free, preconditioned, warm-startable): the scalar and the
    /// full matrix hypergradient at once. The method to use.
    Adjoint,
    /// Forward mode: one CG solve per direction (the scalar λ; or one per symmetric pair of the
    /// support for the matrix).
    Forward,
    /// The paper's dense formula: `(W ⊗ W)_{E,E}` formed (O(|E|²) memory) and factored by
    /// Cholesky; refused above `dense_limit`.
    DenseKronecker,
    /// Forward iterative differentiation of fixed-step G-ISTA from the cold start.
    Unrolled,
    /// Central finite differences in log Λ, re-solving with NewtonCd.
    FiniteDiff,
}

impl Method {
    /// All methods, in declaration order.
    pub const ALL: [Method; 5] = [
        Method::Adjoint,
        Method::Forward,
        Method::DenseKronecker,
        Method::Unrolled,
        Method::FiniteDiff,
    ];

    /// The name used on the command line: `adjoint`, `forward`, `dense`, `unrolled`,
    /// `finite-diff`.
    pub fn name(self) -> &'static str {
        match self {
            Method::Adjoint => "adjoint",
            Method::Forward => "forward",
            Method::DenseKronecker => "dense",
            Method::Unrolled => "unrolled",
            Method::FiniteDiff => "finite-diff",
        }
    }

    /// The method of a command-line name (see [`Method::name`]).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// How [`Method::Adjoint`] solves `M u = g_E`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdjointSolver {
    /// [`AdjointSolver::Complement`] when the zeros of Θ̂ number at most
    /// `complement_fraction · |E|`, else [`AdjointSolver::Support`].
    Auto,
    /// Preconditioned CG on `M` itself (|E| unknowns), warm-started from the previous adjoint.
    Support,
    /// Through the complement Z of the support: CG on `(Θ̂ ⊗ Θ̂)_{Z,Z}` (|Z| unknowns, cheap
    /// sparse products when Z is small) between two dense products, certified on `M`
    /// (docs/implicit-diff.md §7b).
    Complement,
}

/// Options of [`hypergradient`].
///
/// | Name | Default | Meaning | Range |
/// |---|---|---|---|
/// | `method` | [`Method::Adjoint`] | how to differentiate | |
/// | `gap_tol` | 1e-8 | largest relative duality gap of the fit accepted | > 0 |
/// | `preconditioner` | [`PreconditionerKind::Kronecker`] | CG preconditioner (adjoint, forward) | |
/// | `kernel` | [`Kernel::Auto`] | kernel of the products with `M` | |
/// | `cg` | rel_tol 1e-10, abs_tol 0, max_iter 2000 | CG tolerances | see [`CgOptions`] |
/// | `dense_limit` | 4000 | largest \|E\| for [`Method::DenseKronecker`] | ≥ 1 |
/// | `adjoint_solver` | [`AdjointSolver::Auto`] | how the adjoint system is solved | |
/// | `complement_fraction` | 3.5 | Auto uses the complement when \|Z\| ≤ this · \|E\| (E at least 22 % of the entries) | ≥ 0 |
/// | `complement_margin` | 0.05 | complement solve: the Z system is solved to this fraction of the requested relative residual ([`HypergradientEngine`] adapts it) | (0, 1] |
/// | `mixed_precision` | true | complement solve: refinement rounds (each to 1e-4) with single-precision products, residuals, the rest and the certificate in double | |
/// | `star_preconditioner` | true | complement solve: CG on Z preconditioned by node stars (additive Schwarz) instead of Jacobi | |
/// | `full_matrix` | false | per-entry matrix also for a scalar penalty with Forward, Unrolled, FiniteDiff | |
/// | `unrolled` | [`UnrolledOptions::default`] | for [`Method::Unrolled`] | |
/// | `finite_diff` | [`FiniteDiffOptions::default`] | for [`Method::FiniteDiff`] | |
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HypergradOptions {
    /// The method.
    pub method: Method,
    /// Required inner accuracy: [`ImplicitError::InnerNotConverged`] when
    /// `fit.relative_gap() > gap_tol`.
    pub gap_tol: f64,
    /// The CG preconditioner.
    pub preconditioner: PreconditionerKind,
    /// The kernel of `M v`.
    pub kernel: Kernel,
    /// CG tolerances and budget.
    pub cg: CgOptions,
    /// Size limit of the dense Kronecker matrix.
    pub dense_limit: usize,
    /// How the adjoint system is solved.
    pub adjoint_solver: AdjointSolver,
    /// [`AdjointSolver::Auto`]'s switch: the complement when `|Z| ≤ complement_fraction·|E|`.
    /// With a dense E both sides need dense products: an iteration on M costs four
    /// double-precision products (M and the Kronecker preconditioner), one on Z two
    /// single-precision ones (Jacobi-preconditioned when Z is dense). With E on 25–29 % of
    /// the entries (the scalar stage's first trials of tune_paper): at p = 1000, 22 iterations
    /// of 247 ms on M (5.4 s) against 35 of 31 ms on Z (1.4 s); at p = 500, 0.52 s against
    /// 0.31 s. 3.5 instead of 2 (and no stars on dense Z systems): the scalar stage's
    /// hypergradients 10.9 → 7.4 s at p = 1000, 1.80 → 1.55 s at p = 500, 0.21 → 0.18 s at
    /// p = 200, same λ*.
    pub complement_fraction: f64,
    /// The complement solve asks of the Z system this fraction of the requested relative
    /// residual: the residual of the recovered u on M is the Z residual amplified by
    /// `(W ⊗ W)_{E,Z}` (10–13× on the paper's data at p = 100, 20–100× at p = 500–1000), and a
    /// finishing solve on M costs more per iteration than the Z system (two dense products
    /// and two for its preconditioner). [`HypergradientEngine`] adapts it to the
    /// amplification it observes.
    pub complement_margin: f64,
    /// Whether the complement solve refines with single-precision products (dense BLAS
    /// products, or the sparse pair kernel with the node-star preconditioner), each round to
    /// the relative residual 1e-4; residuals, the rest of the solve and the certification on
    /// M stay in double precision.
    pub mixed_precision: bool,
    /// Whether the complement solve preconditions its CG on Z by the additive Schwarz
    /// preconditioner over node stars (`ho_linalg::StarPreconditioner`) instead of Jacobi:
    /// on the paper's data at p = 100, 2.5–3× fewer iterations for a set-up of about 20
    /// single-precision products (docs/implicit-diff.md §7b).
    pub star_preconditioner: bool,
    /// Whether Forward, Unrolled and FiniteDiff also compute the matrix for a scalar penalty
    /// (one solve or run per symmetric pair of the support). Adjoint and DenseKronecker
    /// always do; every method does for a matrix penalty.
    pub full_matrix: bool,
    /// Options of the unrolled method.
    pub unrolled: UnrolledOptions,
    /// Options of the finite differences.
    pub finite_diff: FiniteDiffOptions,
}

impl Default for HypergradOptions {
    fn default() -> Self {
        Self {
            method: Method::Adjoint,
            gap_tol: 1e-8,
            preconditioner: PreconditionerKind::Kronecker,
            kernel: Kernel::Auto,
            cg: ImplicitOptions::default().cg,
            dense_limit: 4000,
            adjoint_solver: AdjointSolver::Auto,
            complement_fraction: 3.5,
            complement_margin: 0.05,
            mixed_precision: true,
            star_preconditioner: true,
            full_matrix: false,
            unrolled: UnrolledOptions::default(),
            finite_diff: FiniteDiffOptions::default(),
        }
    }
}

impl HypergradOptions {
    fn validate(&self) -> Result<(), ImplicitError> {
        if !(self.gap_tol > 0.0) {
            return Err(ImplicitError::InvalidOption {
                name: "gap_tol",
                value: self.gap_tol,
                range: "> 0",
            });
        }
        if !(self.complement_fraction >= 0.0) {
            return Err(ImplicitError::InvalidOption {
                name: "complement_fraction",
                value: self.complement_fraction,
                range: "≥ 0",
            });
        }
        if !(self.complement_margin > 0.0 && self.complement_margin <= 1.0) {
            return Err(ImplicitError::InvalidOption {
                name: "complement_margin",
                value: self.complement_margin,
                range: "(0, 1]",
            });
        }
        if self.dense_limit == 0 {
            return Err(ImplicitError::InvalidOption {
                name: "dense_limit",
                value: 0.0,
                range: "≥ 1",
            });
        }
        Ok(())
    }

    fn implicit(&self) -> ImplicitOptions {
        ImplicitOptions {
            solver: SolverChoice::Cg,
            cg: self.cg,
            precondition: self.preconditioner != PreconditionerKind::None,
            dense_limit: self.dense_limit,
        }
    }
}

/// A hypergradient at a fit, with its diagnostics (the fields of `glasso-ho hypergrad`).
#[derive(Debug, Clone)]
pub struct Hypergradient {
    /// `C(Θ̂)`, the criterion at the fit.
    pub value: f64,
    /// `dL/dλ` along the pattern P (scalar penalty only).
    pub grad_lambda: Option<f64>,
    /// `dL/d(log λ) = λ dL/dλ` (scalar penalty only).
    pub grad_log_lambda: Option<f64>,
    /// `G_kl = ∂L/∂Λ_kl` (p × p, every ordered entry an independent parameter, symmetric, 0
    /// off the support). Always present for Adjoint and DenseKronecker and for a matrix
    /// penalty; for Forward, Unrolled and FiniteDiff on a scalar penalty only with
    /// `full_matrix`.
    pub grad_matrix: Option<Array2<f64>>,
    /// |E|, ordered pairs with Θ̂_ij ≠ 0 (diagonal included).
    pub support_size: usize,
    /// `min_{(k,l)∉E} Λ_kl − |W_kl − S_kl|`, `None` when E is full.
    pub margin: Option<f64>,
    /// The fit's duality gap (absolute).
    pub dual_gap: f64,
    /// The method used.
    pub method: Method,
    /// Through the complement: the residual on M of the adjoint recovered from the Z solve
    /// over the requested one, before any finishing solve on M (above 1: one was needed).
    /// `None` for the other solvers and methods.
    pub certificate_ratio: Option<f64>,
    /// The linear solve: CG iterations and residual ‖M u − g_E‖ (Adjoint; through the
    /// complement: the iterations on Z plus any finishing ones on M, and the residual
    /// recomputed on M; Forward: summed
    /// iterations, largest residual; DenseKronecker: 0 iterations and the residual of the
    /// factored solve; Unrolled: G-ISTA iterations and the last relative change;
    /// FiniteDiff: inner iterations and the largest relative gap of the re-solves).
    pub report: SolveReport,
    /// Wall-clock seconds of the hypergradient (the inner solve excluded).
    pub seconds: f64,
}

impl Hypergradient {
    /// `Λ ⊙ G`: the gradient in the log parametrization `Λ_kl = e^{α_kl}`.
    pub fn grad_log_matrix(&self, lam: ArrayView2<'_, f64>) -> Option<Array2<f64>> {
        self.grad_matrix.as_ref().map(|g| g * &lam)
    }

    /// The gradient with one parameter per symmetric pair ([`pair_gradient`]).
    pub fn grad_pairs(&self) -> Option<Array2<f64>> {
        self.grad_matrix.as_ref().map(|g| pair_gradient(g.view()))
    }
}

/// One parameter per symmetric pair (`Λ_kl = Λ_lk = t`): `G_kl + G_lk` off the diagonal (in
/// both positions), `G_ii` on it; the format of the fixtures' `gradpair_*.csv`.
pub fn pair_gradient(g: ArrayView2<'_, f64>) -> Array2<f64> {
    let p = g.nrows();
    Array2::from_shape_fn((p, p), |(i, j)| {
        if i == j {
            g[[i, i]]
        } else {
            g[[i, j]] + g[[j, i]]
        }
    })
}

/// `Σ_kl P_kl G_kl` for `P = 11ᵀ − I` or `11ᵀ`.
pub fn pattern_sum(g: ArrayView2<'_, f64>, penalize_diagonal: bool) -> f64 {
    g.indexed_iter()
        .filter(|((i, j), _)| penalize_diagonal || i != j)
        .map(|(_, v)| *v)
        .sum()
}

/// The hypergradient at `fit` (a solution of `problem`) of `criterion`, by `options.method`.
///
/// # Errors
/// [`ImplicitError::InnerNotConverged`] when `fit.relative_gap() > options.gap_tol`;
/// [`ImplicitError::DimensionMismatch`] when the fit, S and Λ disagree in size (the problem is
/// otherwise not re-validated: the fit is its solution); [`ImplicitError::LinearSolveFailed`],
/// [`ImplicitError::TooLarge`], [`ImplicitError::UnrolledNotConverged`],
/// [`ImplicitError::SupportChanged`] from the methods.
pub fn hypergradient(
    fit: &GlassoFit,
    problem: &GlassoProblem<'_>,
    criterion: &dyn Criterion,
    options: &HypergradOptions,
) -> Result<Hypergradient, ImplicitError> {
    compute(fit, problem, criterion, options, None, None).map(|(h, _)| h)
}

/// [`hypergradient`] by finite differences with the given inner `solver` (instead of the
/// NewtonCd of `options.finite_diff.inner`); `options.method` is ignored.
///
/// # Errors
/// As [`hypergradient`].
pub fn hypergradient_finite_diff(
    fit: &GlassoFit,
    problem: &GlassoProblem<'_>,
    criterion: &dyn Criterion,
    solver: &dyn GlassoSolver,
    options: &HypergradOptions,
) -> Result<Hypergradient, ImplicitError> {
    let options = HypergradOptions {
        method: Method::FiniteDiff,
        ..*options
    };
    compute(fit, problem, criterion, &options, None, Some(solver)).map(|(h, _)| h)
}

/// Stateful hypergradients: keeps the last adjoint `u` and its support, and warm-starts the
/// next [`Method::Adjoint`] solve from it (remapped onto the new support; pairs new to the
/// support start at 0). Use one engine per sequence of nearby penalties (an outer loop).
///
/// It also adapts the complement solve's margin to the amplification it observes: after a
/// solve through the complement whose certificate ratio on M was r with the margin m, the
/// next margin is `m · 0.3 / r` when r > 1 (missed) or r < 0.3 (more than needed), kept in
/// `[complement_margin / 50, complement_margin]` (the option is the largest). The
/// amplification of the Z residual on M grows with p on the paper's data (certificates
/// missed by 1–3× at p = 500 and 2–5× at p = 1000 in matrix tuning with the margin 0.05,
/// each miss finished by 2–8 iterations on M of four dense products): a tighter Z solve
/// costs a few more sparse iterations instead.
#[derive(Debug, Clone)]
pub struct HypergradientEngine {
    /// The options of every call.
    pub options: HypergradOptions,
    previous: Option<(ActiveSet, Array1<f64>)>,
    margin: Option<f64>,
}

/// The certificate ratio the adapted complement margin aims at.
const CERTIFICATE_AIM: f64 = 0.3;

/// The smallest adapted complement margin, relative to the option.
const MARGIN_RANGE: f64 = 50.0;

impl HypergradientEngine {
    /// An engine without a warm start yet.
    pub fn new(options: HypergradOptions) -> Self {
        Self {
            options,
            previous: None,
            margin: None,
        }
    }

    /// The complement margin of the next solve (see the type's documentation).
    pub fn complement_margin(&self) -> f64 {
        self.margin.unwrap_or(self.options.complement_margin)
    }

    /// [`hypergradient`] with the warm start, which is then replaced by this call's adjoint.
    ///
    /// # Errors
    /// As [`hypergradient`]; the warm start is kept on error.
    pub fn hypergradient(
        &mut self,
        fit: &GlassoFit,
        problem: &GlassoProblem<'_>,
        criterion: &dyn Criterion,
    ) -> Result<Hypergradient, ImplicitError> {
        let options = HypergradOptions {
            complement_margin: self.complement_margin(),
            ..self.options
        };
        let (h, adjoint) = compute(
            fit,
            problem,
            criterion,
            &options,
            self.previous.as_ref(),
            None,
        )?;
        if let Some(state) = adjoint {
            self.previous = Some(state);
        }
        // A passed certificate above the aim keeps the margin (hysteresis).
        if let Some(r) = h
            .certificate_ratio
            .filter(|&r| !(CERTIFICATE_AIM..=1.0).contains(&r) && !r.is_nan())
        {
            let largest = self.options.complement_margin;
            let next = options.complement_margin * CERTIFICATE_AIM / r;
            self.margin = Some(if next.is_finite() {
                next.clamp(largest / MARGIN_RANGE, largest)
            } else {
                largest
            });
        }
        Ok(h)
    }

    /// Forgets the warm start.
    pub fn reset(&mut self) {
        self.previous = None;
    }

    /// Whether a warm start is held.
    pub fn has_warm_start(&self) -> bool {
        self.previous.is_some()
    }
}

/// What one method produced.
struct Partial {
    grad_lambda: Option<f64>,
    grad_matrix: Option<Array2<f64>>,
    report: SolveReport,
    adjoint: Option<Array1<f64>>,
    certificate_ratio: Option<f64>,
}

/// The prepared quantities every method uses.
struct Context<'a, 'b> {
    fit: &'a GlassoFit,
    problem: &'a GlassoProblem<'b>,
    lam: Array2<f64>,
    active: ActiveSet,
    grad_theta: Array2<f64>,
    /// `Some(penalize_diagonal)` for a scalar penalty.
    scalar: Option<bool>,
}

impl Context<'_, '_> {
    fn p(&self) -> usize {
        self.active.dim()
    }

    fn system(&self, options: &HypergradOptions) -> Result<GlassoSystem<'_>, ImplicitError> {
        GlassoSystem::new(
            self.fit.precision.view(),
            self.fit.covariance.view(),
            &self.active,
            options.kernel,
            options.preconditioner,
        )
    }

    /// `P` flattened (p² entries, row-major).
    fn pattern(&self, penalize_diagonal: bool) -> Array1<f64> {
        let p = self.p();
        Array1::from_shape_fn(p * p, |k| {
            if penalize_diagonal || k / p != k % p {
                1.0
            } else {
                0.0
            }
        })
    }

    /// The symmetric pairs `(k ≤ l)` of the support.
    fn pairs(&self) -> Vec<(usize, usize)> {
        self.active.pairs().filter(|(i, j)| i <= j).collect()
    }

    /// Writes the pair derivative `d = G_kl + G_lk` (or `G_kk`) into G.
    fn set_pair(g: &mut Array2<f64>, (k, l): (usize, usize), d: f64) {
        if k == l {
            g[[k, k]] = d;
        } else {
            g[[k, l]] = 0.5 * d;
            g[[l, k]] = 0.5 * d;
        }
    }

    fn wants_matrix(&self, options: &HypergradOptions) -> bool {
        options.full_matrix || self.scalar.is_none()
    }
}

fn reshape(v: Array1<f64>, p: usize) -> Result<Array2<f64>, ImplicitError> {
    let found = v.len();
    v.into_shape_with_order((p, p))
        .map_err(|_| ImplicitError::DimensionMismatch {
            expected: p * p,
            found,
        })
}

fn adjoint(
    ctx: &Context<'_, '_>,
    options: &HypergradOptions,
    warm: Option<&(ActiveSet, Array1<f64>)>,
) -> Result<Partial, ImplicitError> {
    let sys = ctx.system(options)?;
    let g_e = ctx.active.gather_owned(ctx.grad_theta.view());
    let n_zero = ctx.p() * ctx.p() - ctx.active.len();
    let complement = match options.adjoint_solver {
        AdjointSolver::Support => false,
        AdjointSolver::Complement => true,
        AdjointSolver::Auto => {
            n_zero as f64 <= options.complement_fraction * ctx.active.len() as f64
        }
    };
    let start = warm.and_then(|(a, u)| ctx.active.remap_from(a, u.view()));
    let (hypergrad, adjoint, report, certificate_ratio) = if complement {
        let precond = if options.preconditioner == PreconditionerKind::None {
            None
        } else {
            sys.preconditioner()
        };
        let sol = solve_by_complement(
            ctx.fit.precision.view(),
            ctx.fit.covariance.view(),
            &ctx.active,
            g_e.view(),
            options,
            precond,
            start.as_ref().map(|u| u.view()),
        )?;
        (
            hypergradient_from_adjoint(&sys, sol.u.view()),
            sol.u,
            sol.report,
            Some(sol.certificate_ratio),
        )
    } else {
        let sol = hypergradient_adjoint(
            &sys,
            g_e.view(),
            &options.implicit(),
            start.as_ref().map(|u| u.view()),
        )?;
        (sol.hypergrad, sol.adjoint, sol.report, None)
    };
    Ok(Partial {
        grad_lambda: None,
        grad_matrix: Some(reshape(hypergrad, ctx.p())?),
        report,
        adjoint: Some(adjoint),
        certificate_ratio,
    })
}

fn forward(ctx: &Context<'_, '_>, options: &HypergradOptions) -> Result<Partial, ImplicitError> {
    let sys = ctx.system(options)?;
    let g_e = ctx.active.gather_owned(ctx.grad_theta.view());
    let implicit = options.implicit();
    let mut total = SolveReport {
        n_iter: 0,
        residual_norm: 0.0,
        status: Status::Converged,
    };
    let mut add = |r: SolveReport| {
        total.n_iter += r.n_iter;
        total.residual_norm = total.residual_norm.max(r.residual_norm);
    };
    let mut grad_lambda = None;
    if let (Some(penalize_diagonal), false) = (ctx.scalar, options.full_matrix) {
        let (d, r) = jvp(&sys, ctx.pattern(penalize_diagonal).view(), &implicit)?;
        add(r);
        grad_lambda = Some(g_e.dot(&d));
    }
    let grad_matrix = if ctx.wants_matrix(options) {
        let p = ctx.p();
        let mut g = Array2::zeros((p, p));
        let mut t = Array1::zeros(p * p);
        for (k, l) in ctx.pairs() {
            t[k * p + l] = 1.0;
            t[l * p + k] = 1.0;
            let (d, r) = jvp(&sys, t.view(), &implicit)?;
            add(r);
            t[k * p + l] = 0.0;
            t[l * p + k] = 0.0;
            Context::set_pair(&mut g, (k, l), g_e.dot(&d));
        }
        Some(g)
    } else {
        None
    };
    Ok(Partial {
        grad_lambda,
        grad_matrix,
        report: total,
        adjoint: None,
        certificate_ratio: None,
    })
}

fn dense_kronecker(
    ctx: &Context<'_, '_>,
    options: &HypergradOptions,
) -> Result<Partial, ImplicitError> {
    let n = ctx.active.len();
    if n > options.dense_limit {
        return Err(ImplicitError::TooLarge {
            size: n,
            limit: options.dense_limit,
        });
    }
    let k = kronecker_matrix(ctx.fit.covariance.view(), &ctx.active);
    let chol = Cholesky::factor(k.view())?;
    let g_e = ctx.active.gather_owned(ctx.grad_theta.view());
    let mut u = g_e.clone();
    chol.solve_inplace(u.view_mut())?;
    let r = k.dot(&u) - &g_e;
    let p = ctx.p();
    let signs = ctx.active.signs();
    let mut g = Array2::zeros((p, p));
    for (pos, (i, j)) in ctx.active.pairs().enumerate() {
        g[[i, j]] = 0.0 - signs[pos] * u[pos];
    }
    // The scalar derivative by the paper's forward formula: K vec(J)_E = −(P ⊙ s)_E.
    let grad_lambda = match ctx.scalar {
        Some(penalize_diagonal) => {
            let mut j: Array1<f64> = ctx
                .active
                .pairs()
                .zip(signs)
                .map(|((a, b), &s)| if penalize_diagonal || a != b { -s } else { 0.0 })
                .collect();
            chol.solve_inplace(j.view_mut())?;
            Some(g_e.dot(&j))
        }
        None => None,
    };
    Ok(Partial {
        grad_lambda,
        grad_matrix: Some(g),
        report: SolveReport {
            n_iter: 0,
            residual_norm: r.dot(&r).sqrt(),
            status: Status::Converged,
        },
        adjoint: None,
        certificate_ratio: None,
    })
}

fn unrolled(ctx: &Context<'_, '_>, options: &HypergradOptions) -> Result<Partial, ImplicitError> {
    let p = ctx.p();
    let scalar_only = matches!((ctx.scalar, options.full_matrix), (Some(_), false));
    let pairs = if scalar_only { Vec::new() } else { ctx.pairs() };
    let mut directions: Vec<Array2<f64>> = Vec::new();
    if let Some(pd) = ctx.scalar.filter(|_| scalar_only) {
        directions.push(reshape(ctx.pattern(pd), p)?);
    }
    for &(k, l) in &pairs {
        let mut d = Array2::zeros((p, p));
        d[[k, l]] = 1.0;
        d[[l, k]] = 1.0;
        directions.push(d);
    }
    let run = unrolled_gista(
        ctx.problem.emp_cov,
        ctx.lam.view(),
        &directions,
        Some(ctx.fit.covariance.view()),
        &options.unrolled,
    )?;
    let inner = |j: &Array2<f64>| -> f64 { (&ctx.grad_theta * j).sum() };
    let (grad_lambda, grad_matrix) = if scalar_only {
        (Some(inner(&run.tangents[0])), None)
    } else {
        let mut g = Array2::zeros((p, p));
        for (&pair, j) in pairs.iter().zip(&run.tangents) {
            Context::set_pair(&mut g, pair, inner(j));
        }
        (None, Some(g))
    };
    Ok(Partial {
        grad_lambda,
        grad_matrix,
        report: SolveReport {
            n_iter: run.n_iter,
            residual_norm: run.change,
            status: Status::Converged,
        },
        adjoint: None,
        certificate_ratio: None,
    })
}

fn finite_diff(
    ctx: &Context<'_, '_>,
    criterion: &dyn Criterion,
    options: &HypergradOptions,
    solver: Option<&dyn GlassoSolver>,
) -> Result<Partial, ImplicitError> {
    let default_solver = NewtonCd {
        options: options.finite_diff.inner,
        ..Default::default()
    };
    let solver = solver.unwrap_or(&default_solver);
    let r = finite_difference(
        ctx.fit,
        ctx.problem,
        criterion,
        solver,
        &options.finite_diff,
        options.full_matrix,
    )?;
    Ok(Partial {
        grad_lambda: r.grad_lambda,
        grad_matrix: r.grad_matrix,
        report: SolveReport {
            n_iter: r.n_iter,
            residual_norm: r.worst_gap,
            status: Status::Converged,
        },
        adjoint: None,
        certificate_ratio: None,
    })
}

type WithAdjoint = (Hypergradient, Option<(ActiveSet, Array1<f64>)>);

fn compute(
    fit: &GlassoFit,
    problem: &GlassoProblem<'_>,
    criterion: &dyn Criterion,
    options: &HypergradOptions,
    warm: Option<&(ActiveSet, Array1<f64>)>,
    fd_solver: Option<&dyn GlassoSolver>,
) -> Result<WithAdjoint, ImplicitError> {
    let start = Instant::now();
    options.validate()?;
    let gap = fit.relative_gap();
    if !(gap <= options.gap_tol) {
        return Err(ImplicitError::InnerNotConverged {
            gap,
            tol: options.gap_tol,
        });
    }
    // The fit was computed from a validated problem: check only that they match (a full
    // validation costs ~10 ms at p = 1000, a quarter of a sparse hypergradient there).
    let p = problem.dim();
    let penalty_dim = match &problem.penalty {
        Penalty::Matrix(m) if m.nrows() != p => m.nrows(),
        Penalty::Matrix(m) => m.ncols(),
        Penalty::Scalar { .. } => p,
    };
    let lam = problem.penalty.to_matrix(p);
    for found in [
        problem.emp_cov.ncols(),
        penalty_dim,
        fit.precision.nrows(),
        fit.precision.ncols(),
        fit.covariance.nrows(),
        fit.covariance.ncols(),
    ] {
        if found != p {
            return Err(ImplicitError::DimensionMismatch { expected: p, found });
        }
    }
    let (value, grad_theta) = criterion.value_and_grad_at(fit)?;
    let active = ActiveSet::from_precision(fit.precision.view());
    let margin = off_support_margin(&active, fit.covariance.view(), problem.emp_cov, lam.view());
    let scalar = match problem.penalty {
        Penalty::Scalar {
            penalize_diagonal, ..
        } => Some(penalize_diagonal),
        Penalty::Matrix(_) => None,
    };
    let ctx = Context {
        fit,
        problem,
        lam,
        active,
        grad_theta,
        scalar,
    };
    let partial = match options.method {
        Method::Adjoint => adjoint(&ctx, options, warm)?,
        Method::Forward => forward(&ctx, options)?,
        Method::DenseKronecker => dense_kronecker(&ctx, options)?,
        Method::Unrolled => unrolled(&ctx, options)?,
        Method::FiniteDiff => finite_diff(&ctx, criterion, options, fd_solver)?,
    };
    let grad_lambda = match (scalar, partial.grad_lambda, &partial.grad_matrix) {
        (Some(_), Some(d), _) => Some(d),
        (Some(pd), None, Some(g)) => Some(pattern_sum(g.view(), pd)),
        _ => None,
    };
    let grad_log_lambda = grad_lambda.zip(problem.penalty.alpha()).map(|(d, a)| a * d);
    let support_size = ctx.active.len();
    let adjoint_state = partial.adjoint.map(|u| (ctx.active, u));
    Ok((
        Hypergradient {
            value,
            grad_lambda,
            grad_log_lambda,
            grad_matrix: partial.grad_matrix,
            support_size,
            margin,
            dual_gap: fit.dual_gap,
            method: options.method,
            certificate_ratio: partial.certificate_ratio,
            report: partial.report,
            seconds: start.elapsed().as_secs_f64(),
        },
        adjoint_state,
    ))
}
