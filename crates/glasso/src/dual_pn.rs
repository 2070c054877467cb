//! `DualPn`: a two-metric projected Newton method on the GLASSO dual, the solver for the
//! dense regime (small penalties, Θ̂ nearly dense).
//!
//! # Algorithm
//! The dual of the weighted GLASSO (DESIGN.md §1) is a box-constrained smooth problem:
//!
//! ```text
//! minimize over U = Uᵀ, |U_kl| ≤ Λ_kl:   h(U) = −log det(S + U)
//! ∇h = −Θ,  ∇²h = Θ ⊗ Θ,                  W = S + U,  Θ = W⁻¹
//! optimality:  U_kl = Λ_kl sign(Θ_kl) where Θ_kl ≠ 0,   Θ_kl = 0 where |U_kl| < Λ_kl
//! ```
//!
//! Since Θ_ii > 0, the diagonal is always at its upper bound, `U_ii = Λ_ii`, and is fixed (an
//! unpenalized diagonal gives `W_ii = S_ii`); so are the off-diagonal pairs with `Λ_kl = 0`.
//! In the dense regime the interior (free) set of the dual — the zeros of Θ̂ — is the smaller
//! part, and the two-metric projection of Bertsekas solves a Newton system only there. At the
//! iterate U (Θ = (S + U)⁻¹), for the pairs k < l with Λ_kl > 0:
//!
//! ```text
//! active A:  U_kl = Λ_kl and Θ_kl > 0,   or   U_kl = −Λ_kl and Θ_kl < 0   (gradient points out)
//! free Z:    every other pair (interior, or at a bound with the gradient pointing in)
//! (Θ ⊗ Θ)_{Z,Z} d_Z = Θ_Z      i.e.  (Θ D Θ)_Z = Θ_Z,  D symmetric, supported on Z, D_A = 0
//! ```
//!
//! (Bertsekas' ε-active rule with ε = 0: a positive ε, which snaps near-bound interior pairs
//! onto the bound, made the free set oscillate and cost 2–3× more steps on the paper's data.)
//! The Newton system only involves Θ restricted to the m nodes touched by Z. It is solved by a
//! dense Cholesky factorization of the |Z| × |Z| matrix `M_{(ab),(cd)} = Θ_ac Θ_bd + Θ_ad Θ_bc`
//! when |Z| ≤ `dense_max`, otherwise by Jacobi-preconditioned CG (`diag M = Θ_aa Θ_bb + Θ_ab²`)
//! to the relative residual `η = min(0.1, gap_rel)` (quadratic convergence; when `tol` is
//! loose, the last step only as tight as the hand-over gap needs, `η = target / (4 gap_rel)`),
//! whose products
//! cost O(|Z| m) (the sparse pair kernel [`PairSandwich`]: `T = D Θ` by panels, then one dot
//! product per free pair) or, when Z holds more than m²/8 pairs, two BLAS products of size m —
//! in single precision when the forcing term is ≥ 1e-4 (`mixed_precision`): their relative
//! error (~1e-7·√m) is far below what is asked of the direction, and everything that decides
//! (line search, gap, stopping, the polish's certificate) stays in double precision, so only
//! the speed can change (BLAS products: −22 to −27 % inner time in matrix tuning at p = 100
//! and 200, same tuned criterion to 8 digits; at p = 500 the dense steps of tune_paper took
//! 5.6 s instead of 9.1 s — an earlier measurement there had found them slower and limited
//! single-precision BLAS products to 256 nodes until 2026-11-26; the sparse kernel in single
//! precision and its panel layout: inner time of tune_paper at p = 500 50.2 → 36.3 s). A
//! single-precision CG that does not reach the forcing term within 60 iterations hands over
//! to double precision for the rest of the solve. Below 1e-4 the system is solved by
//! iterative refinement ([`ho_linalg::refine`]): residuals in double precision, corrections by
//! single-precision CG to 1e-4 each (at most three), then double-precision CG if that falls
//! short (and for the rest of the solve). Once phase 2 of the sparse kernel was vectorized, a
//! single-precision product cost half a double one (10.9 against 22.8 ms on 68 000 pairs at
//! m = 1000), and the steps of replayed p = 1000 solves that took the refinement went
//! 1.17 → 0.63 s, 0.81 → 0.57 s and 0.87 → 0.59 s; a cold-ish scalar-stage solve 4.96 → 3.36 s.
//! The step `U(α) = P(U + α D)`,
//! α = 1, ½, … (P the projection onto the box, applied to the pair so that U stays exactly
//! symmetric) is accepted when `S + U(α) ≻ 0` (Cholesky) and
//! `h(U(α)) ≤ h(U) − σ max(0, ⟨Θ, U(α) − U⟩)`, σ = 1e-4; Θ is then `potri` of that factor.
//! When the accepted point's relative duality gap is larger than the current one's, the next
//! two halvings are tried too, and of the points that pass the test the one with the smallest
//! gap is kept. Far from the solution a full step that decreases h can throw the dual point
//! off: after matrix-tuning steps at p = 1000, a warm start's gap of 1.8 went to 21 after the
//! first full step (2.8 with a quarter step; that solve took 7 Newton steps instead of 10),
//! and side by side the matrix stage's 33 solves took 273 Newton steps instead of 319
//! (117.7 s instead of 141.9 s; whole tuning 238.1 → 203.6 s, two threads), p = 500 37.7 →
//! 33.5 s; at p = 100 within noise (medians of 8, 0.653 vs 0.672 s).
//!
//! Start: `U₀ = Λ ⊙ sign(Θ₀)` on the support of the start Θ₀ (a warm start's active set, also
//! when Λ changed) and `U₀ = clip(W₀ − S, −Λ, Λ)` off it. Large increases: if `S + U₀` is not
//! positive definite because Λ grew on the support (a matrix-tuning step that multiplies
//! entries by up to e¹⁰), the start is the warm start's dual point projected into the new box,
//! `clip(W₀ − S, −Λ, Λ)` everywhere, which is W₀ − S itself where Λ only grew: the grown pairs
//! start interior (free) instead of at bounds that no longer fit, and S + U = W₀ ≻ 0. Before,
//! such starts fell through to the anchors below and began with every pair free: in
//! tune_paper at p = 1000 two such solves took 99 and 96 s, from the projected point 59 and
//! 52 s (replayed from the same warm starts, two threads), and the whole run 783 → 662 s (side
//! by side, same criterion). Large decreases: if that point is not positive definite either
//! (the penalty shrank), U₀ is pulled toward the warm start's dual point
//! scaled into the new box, `diag(Λ) + c·(W₀ − S)_off` with the largest c ≤ 1 that fits —
//! positive definite as a convex combination of W₀ and `S + diag(Λ)`, and for a scalar penalty
//! c = λ/λ₀, which keeps the support of Θ₀ at its bounds, out of the free set — then toward
//! `U = diag(Λ)` and toward `−clip(S, −Λ, Λ)` (which makes `S + U` the soft-thresholded S,
//! positive definite on a singular S when Λ is large enough). Before the scaled anchor, the
//! fallback was `diag(Λ)`, which made every pair interior, hence free: in tune_paper at
//! p = 1000 the scalar stage's solve after its first long step took 43 s (eleven Newton steps
//! on dense free sets, the first on all 499 500 pairs) and 16.5 s with it.
//!
//! Tangent start. When the start is `Λ ⊙ sign(Θ₀)` on the support E₀ of a warm start (Θ₀,
//! W₀), W moves by `ΔU = Λ ⊙ sign(Θ₀) − (W₀ − S)` on E₀ (for a converged warm start, the
//! change of the penalty with the signs of Θ₀), while its zeros Z₀ keep `W₀ − S`. To first
//! order, keeping `Θ_{Z₀} = 0` asks W to move on Z₀ by D with
//! `(Θ₀ D Θ₀)_{Z₀} = −(Θ₀ ΔU Θ₀)_{Z₀}`, a system of the Newton steps' form at Θ₀, solved
//! loosely (forcing term 0.1: two dense products for the right-hand side and ~10 CG
//! iterations); the start becomes `clip(W₀ − S + D, −Λ, Λ)` on Z₀ when that point is positive
//! definite and has the smaller dual objective h. The tangent of the solution path, where the
//! first Newton step from `Λ ⊙ sign(Θ₀)` linearizes at a point already thrown off by ΔU: after
//! matrix-tuning steps at p = 1000, h − h* went from 0.21 to 0.026 (and from 0.32 to 0.056),
//! and five replayed solves took 30 Newton steps instead of 40.
//!
//! Primal recovery. The dual iterate certifies itself cheaply: Θ = (S + U)⁻¹ is primal
//! feasible, and its gap is
//!
//! ```text
//! Φ(Θ) − (log det(S + U) + p) = Σ_kl (Λ_kl |Θ_kl| − U_kl Θ_kl) ≥ 0
//! ```
//!
//! Once the relative dual gap is within 100× of the hand-over gap below, each iterate's
//! recovered primal (Θ set to exactly 0 on the free set) is certified (KKT residual, then the
//! duality gap of the primal): when it already meets `tol` and `kkt_tol`, the solve ends
//! there. With `certify_against_iterate` (off by default; on in the tuner), so is the last
//! iterate at the hand-over, and the gap is taken against the iterate's own dual point U
//! first (`Φ(Θ_rec) − (p − h)`, second order in the zeroed entries), and only then against
//! the polish's `clip(W_rec − S)` of DESIGN.md §1, which loses the first-order change of W on
//! every pair at a bound: replayed at p = 1000, the matrix stage's 33 solves (tol 1e-7) took
//! 194 Newton steps instead of 213, and eleven scalar-stage solves (tol 1e-10) 18.1 s
//! instead of 23.5 s, most of their polishing steps saved. The dual gap can be much larger than the recovered
//! primal's: in matrix tuning, pairs whose penalty reached the upper bound of the outer
//! problem (Λ_kl = e²·λ_max ≈ 10, 10⁵·λ* at p = 1000) count `Λ_kl |Θ_kl|` on entries that recovery
//! sets to zero. There the primal met the tolerances one Newton step before the dual gap did
//! in four of five replayed solves (each check: one Cholesky factorization and inverse).
//!
//! Once its relative value is ≤ `polish_gap` (or 0.1·`tol` if larger; 1000× smaller when
//! at most 1/8 of the pairs are free, where a dual step costs a fraction of a polish step —
//! at p = 1000 in matrix tuning two more dual steps of 0.2 s replaced 3–10 polish steps of
//! ~1.2 s), or the step budget or the line search runs out, the support `E` = complement of the free set Z is read off the dual, Θ is set to
//! exactly 0 on Z, and the primal is polished by [`ObnCg`] from that start (Θ's Cholesky
//! factor gives W): with the right support this is a smooth Newton method on E with fixed
//! signs, which usually stops at once (the recovered pair already meets the tolerances) or
//! after one step; if the support was not right, ObnCg is a complete solver. Its Newton step
//! goes through the complement of its free set, here the dual's free set (a system of the
//! same form as the dual's, [`PairSystem`]): a polishing step costs about one dual step (at
//! p = 500 it cost 1.3 s through CG on the support, ~0.1 s through the complement). When the
//! polish has not converged after `polish_max_iter` Newton steps, or its line search fails,
//! the dual phase runs again from the polish's last point to a 1000× smaller gap and the
//! primal is recovered and polished again; after that second round, [`Bcd`] finishes. In
//! matrix tuning at p = 1000 (penalty entries spread over decades) the hand-over support was
//! off by pairs whose tiny Λ_kl hides them from the dual gap, and the orthant steps of the
//! polish crawled (once 197 steps, 100 s, ending unconverged); Bcd alone then needed ~190
//! sweeps of ~1 s and still missed the gap, while the second dual round (two steps) gave a
//! primal that certified at once.
//!
//! # Stopping
//! Relative duality gap ≤ `tol` and KKT residual ≤ `kkt_tol` on the polished primal pair (the
//! certificate of ObnCg or Bcd), or `max_iter` iterations (dual and primal Newton steps and
//! Bcd sweeps together).
//!
//! # Errors
//! [`GlassoError::NumericalFailure`] when no dual start with `S + U ≻ 0` is found (singular S
//! with an unpenalized diagonal and a penalty too small to make any box point feasible), and
//! those of [`ObnCg`].
//!
//! # References
//! D. P. Bertsekas, *Projected Newton methods for optimization problems with simple
//! constraints*, SIAM J. Control Optim. 20 (1982). D. Kim, S. Sra, I. S. Dhillon, *Tackling
//! box-constrained optimization via a new projected quasi-Newton approach*, SIAM J. Sci.
//! Comput. 32 (2010). O. Banerjee, L. El Ghaoui, A. d'Aspremont, *Model selection through
//! sparse maximum likelihood estimation*, JMLR 9 (2008) (the dual). F. Oztoprak et al.,
//! NeurIPS 2012 (the polisher).

use crate::fit::Certificate;
use crate::obn_cg::ObnCg;
use crate::problem::kkt_residual;
use crate::rows;
use crate::{Bcd, BlockOutcome, BlockSolver, BlockStart, GlassoError, GlassoOptions};
use ho_linalg::{
    pcg, refine, sandwich_upper, CgOptions, Cholesky, JacobiPreconditioner, LinearOperator,
    PairSandwich, RefineOptions, StarPreconditioner, Status,
};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut1};
use std::cell::{Cell, RefCell};

/// Two-metric projected Newton on the dual, then a primal polish (the dense-regime solver).
///
/// | Name | Default | Meaning | Range |
/// |---|---|---|---|
/// | `options` | [`GlassoOptions::default`] | tolerance, iteration budget (dual + polish), screening | |
/// | `polish_gap` | 1e-9 | relative dual gap (or 0.1·`tol` if larger) at which the primal is recovered and polished | > 0 |
/// | `max_cg_iter` | 200 | CG iterations per dual Newton step | ≥ 1 |
/// | `dense_max` | 400 | free pairs up to which the Newton system is factored densely | ≥ 0 |
/// | `mixed_precision` | true | single-precision products in CG steps whose forcing term is ≥ 1e-4 | |
/// | `polish_max_iter` | 10 | Newton steps of each primal polish before a tighter dual round (then block coordinate descent) takes over | ≥ 0 |
/// | `star_eta` | 3e-3 | CG forcing terms up to which the Newton systems are preconditioned by node stars instead of Jacobi (0: never) | ≥ 0 |
/// | `certify_against_iterate` | false | certify the recovered primal against the dual iterate (reported gap `Φ(Θ) − (p − h)`) instead of `clip(W − S)` only | |
#[derive(Debug, Clone)]
pub struct DualPn {
    /// Shared options.
    pub options: GlassoOptions,
    /// Relative dual gap at which the dual phase hands over to the primal polish.
    pub polish_gap: f64,
    /// CG iterations per dual Newton step.
    pub max_cg_iter: usize,
    /// Largest free set solved by a dense Cholesky factorization.
    pub dense_max: usize,
    /// Whether the dense kernel computes its products in single precision when the Newton
    /// system only has to be solved loosely (forcing term ≥ 1e-4).
    pub mixed_precision: bool,
    /// Newton steps of each primal polish (ObnCg) after which, if it has not converged, a
    /// tighter dual phase and a new recovery follow (after the second round, block coordinate
    /// descent, [`Bcd`], finishes from the last point).
    pub polish_max_iter: usize,
    /// CG forcing terms up to which the Newton systems are preconditioned by the additive
    /// Schwarz preconditioner over node stars ([`StarPreconditioner`]) instead of Jacobi: 2.5–3×
    /// fewer iterations for a set-up of ~20 products, which pays on the tight solves only
    /// (docs/solvers.md: in matrix tuning at p = 100, stars at every step made the inner
    /// solves 0.75 s instead of 0.55 s; 3e-3, 1e-2 and 3e-2 were within noise of each other).
    pub star_eta: f64,
    /// Whether the recovered primal is certified against the dual iterate U first
    /// ([`Certificate::with_dual_value`]: `Φ(Θ_rec) − (p − h)`, a valid bound by weak
    /// duality), also at the hand-over, with the last Newton step of a loose tolerance aimed at
    /// `tol` itself. Much tighter than the gap against `clip(W_rec − S)` that DESIGN.md §1
    /// defines (6e-14 against 6e-6 in matrix tuning at p = 1000), so the solves end one Newton
    /// step earlier, but the reported gap is then not the one recomputed from (Θ, W): off by
    /// default, on for the tuner's inner solves (`ho_bilevel`), whose final fit is certified
    /// the default way.
    pub certify_against_iterate: bool,
}

impl Default for DualPn {
    fn default() -> Self {
        Self {
            options: GlassoOptions::default(),
            polish_gap: 1e-9,
            max_cg_iter: PairSystem::default().max_cg_iter,
            dense_max: PairSystem::default().dense_max,
            mixed_precision: true,
            polish_max_iter: 10,
            star_eta: PairSystem::default().star_eta,
            certify_against_iterate: false,
        }
    }
}

/// Smallest CG forcing term at which the products may be computed in single precision: their
/// relative error (~1e-7·√m) is then far below the accuracy asked of the Newton direction.
const SINGLE_PRECISION_FORCING: f64 = 1e-4;

/// Dual phases (each followed by a primal recovery and a polish) before Bcd finishes.
const DUAL_ROUNDS: usize = 2;

/// With few free pairs the dual phase hands over at this fraction of `polish_at`.
const SPARSE_DUAL_FACTOR: f64 = 1e-3;

/// Each further dual phase hands over at this fraction of the previous relative gap...
const DUAL_ROUND_FACTOR: f64 = 1e-3;

/// ...but not below this relative gap (the rounding of the dual objective at p ≈ 1000).
const MIN_POLISH_GAP: f64 = 1e-14;

/// Single-precision corrections of a Newton system whose forcing term is below
/// [`SINGLE_PRECISION_FORCING`] before double-precision CG takes over.
const REFINEMENT_ROUNDS: usize = 3;

/// CG iterations allowed to a single-precision solve before double precision takes over.
const SINGLE_PRECISION_MAX_ITER: usize = 60;

/// Armijo constant.
const SIGMA: f64 = 1e-4;
/// Maximum step halvings.
const MAX_HALVINGS: usize = 50;

/// Halvings the line search also tries when its accepted point increased the relative gap
/// ([`line_search`]).
const GAP_TRIALS: usize = 2;

/// CG forcing term of the tangent correction of a warm start ([`DualPn::tangent_start`]).
const TANGENT_FORCING: f64 = 0.1;

/// The dual phase certifies the recovered primal once its relative gap is below this multiple
/// of the hand-over gap ([`DualPn::certify`]).
const CERTIFY_FACTOR: f64 = 100.0;

/// A dual iterate: U (symmetric, in the box), Θ = (S + U)⁻¹ and h = −log det(S + U).
pub(crate) struct DualIterate {
    pub u: Array2<f64>,
    pub theta: Array2<f64>,
    pub h: f64,
}

/// A dual start whose Θ is not computed yet: U, the Cholesky factor of S + U and h. The
/// dual phase compares its two starts (the bounds start and its tangent correction) by h,
/// which the factor gives, and inverts only the one it keeps (`potri`, two thirds of the
/// cost of a dual point: ~12 ms at p = 1000).
pub(crate) struct DualCandidate {
    pub u: Array2<f64>,
    pub h: f64,
    theta: Lazy,
}

/// Θ of a [`DualCandidate`]: the factor of S + U, or Θ itself when already computed.
enum Lazy {
    Factor(Cholesky),
    Inverse(Array2<f64>),
}

impl DualCandidate {
    /// Factors S + U; U back if it is not positive definite or h is not finite.
    fn of(s: ArrayView2<'_, f64>, u: Array2<f64>) -> Result<Self, Array2<f64>> {
        let w = &s + &u;
        Self::factored(u, w)
    }

    /// [`DualCandidate::of`] with `w = S + U` already formed.
    fn factored(u: Array2<f64>, w: Array2<f64>) -> Result<Self, Array2<f64>> {
        match Cholesky::factor_inplace(w) {
            Ok(factor) if (-factor.logdet()).is_finite() => Ok(Self {
                u,
                h: -factor.logdet(),
                theta: Lazy::Factor(factor),
            }),
            _ => Err(u),
        }
    }

    /// The iterate with Θ = (S + U)⁻¹; `None` if the inverse fails or is not finite.
    fn into_iterate(self) -> Option<DualIterate> {
        let theta = match self.theta {
            Lazy::Factor(factor) => {
                let theta = factor.into_inverse().ok()?;
                theta.iter().all(|v| v.is_finite()).then_some(theta)?
            }
            Lazy::Inverse(theta) => theta,
        };
        Some(DualIterate {
            u: self.u,
            theta,
            h: self.h,
        })
    }
}

impl From<DualIterate> for DualCandidate {
    fn from(it: DualIterate) -> Self {
        Self {
            u: it.u,
            h: it.h,
            theta: Lazy::Inverse(it.theta),
        }
    }
}

/// The result of the dual phase: the last iterate, its free pairs, the steps taken, and the
/// recovered primal when it already met the tolerances ([`DualPn::certify`]).
pub(crate) struct DualPhase {
    pub it: DualIterate,
    pub free: Vec<(usize, usize)>,
    pub n_iter: usize,
    pub certified: Option<BlockOutcome>,
}

/// Which candidate [`dual_start`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StartKind {
    /// `Λ ⊙ sign(Θ₀)` on the support of Θ₀, `clip(W₀ − S, −Λ, Λ)` off it.
    Bounds,
    /// The warm start's dual point projected into the box, or a point pulled toward an anchor.
    Fallback,
}

/// Factors S + U; `None` if it is not positive definite.
fn dual_point(s: ArrayView2<'_, f64>, u: Array2<f64>) -> Option<DualIterate> {
    dual_point_if(s, u, |_| true)
}

/// [`dual_point`] when `accept(h)`; `None` before the inverse (two thirds of the cost) when
/// not (a line-search trial that fails the sufficient-decrease test).
fn dual_point_if(
    s: ArrayView2<'_, f64>,
    u: Array2<f64>,
    accept: impl Fn(f64) -> bool,
) -> Option<DualIterate> {
    let w = &s + &u;
    dual_point_of(u, w, accept)
}

/// [`dual_point_if`] with `w = S + U` already formed.
fn dual_point_of(
    u: Array2<f64>,
    w: Array2<f64>,
    accept: impl Fn(f64) -> bool,
) -> Option<DualIterate> {
    DualCandidate::factored(u, w)
        .ok()
        .filter(|c| accept(c.h))
        .and_then(DualCandidate::into_iterate)
}

/// `U₀ = Λ ⊙ sign(Θ₀)` on the support of Θ₀, `clip(W₀ − S, −Λ, Λ)` off it, `U_ii = Λ_ii`:
/// the bounds start of [`dual_start`] (upper triangle by rows in parallel, mirrored).
fn bounds_start(
    s: ArrayView2<'_, f64>,
    lam: ArrayView2<'_, f64>,
    theta0: ArrayView2<'_, f64>,
    w0: ArrayView2<'_, f64>,
) -> Array2<f64> {
    let p = s.nrows();
    let mut u0 = Array2::<f64>::zeros((p, p));
    rows::for_each_row(&mut u0, |i, ur| {
        ur[i] = lam[[i, i]];
        for j in i + 1..p {
            let l = lam[[i, j]];
            // On the support of Θ₀ the bound on the side of its sign (the warm start's
            // active set, also when Λ changed); elsewhere clip(W₀ − S).
            ur[j] = if theta0[[i, j]] != 0.0 {
                l * theta0[[i, j]].signum()
            } else {
                (w0[[i, j]] - s[[i, j]]).clamp(-l, l)
            };
        }
    });
    rows::mirror_upper(&mut u0);
    u0
}

/// [`dual_start`] with the bounds start not inverted yet ([`DualCandidate`]): the dual phase
/// may replace it by its tangent correction. Any other start is [`dual_start`]'s.
fn dual_start_lazy(
    s: ArrayView2<'_, f64>,
    lam: ArrayView2<'_, f64>,
    theta0: ArrayView2<'_, f64>,
    w0: ArrayView2<'_, f64>,
) -> Result<(DualCandidate, StartKind), GlassoError> {
    match DualCandidate::of(s, bounds_start(s, lam, theta0, w0)) {
        Ok(c) => Ok((c, StartKind::Bounds)),
        Err(u0) => Ok((
            fallback_start(s, lam, theta0, w0, u0)?.into(),
            StartKind::Fallback,
        )),
    }
}

/// The dual start: `U₀ = Λ ⊙ sign(Θ₀)` on the support of Θ₀, `U₀ = clip(W₀ − S, −Λ, Λ)` off
/// it (upper triangle, mirrored), `U_ii = Λ_ii`; if `S + U₀` is not positive definite, the
/// warm start's dual point projected into the new box, `clip(W₀ − S, −Λ, Λ)` (positive
/// definite when Λ grew on the support of Θ₀ and shrank nowhere: it is then W₀ − S, whose
/// grown pairs start interior, hence free); if neither, U₀ pulled toward three anchors in
/// turn until it is:
///
/// 1. the warm start's dual point scaled into the box, `U = diag(Λ) + c·(W₀ − S)_off` with
///    the largest `c ≤ 1` that keeps `|U| ≤ Λ`: `S + U = c·W₀ + (1 − c)(S + diag(Λ))` (for an
///    unchanged diagonal) is positive definite when `S + diag(Λ)` is, and after a scalar
///    penalty went from λ₀ to λ < λ₀, `c = λ/λ₀` and the support of Θ₀ is exactly at its new
///    bounds (its pairs stay out of the free set);
/// 2. `U = diag(Λ)`;
/// 3. the soft-thresholding point `U = diag(Λ) − clip(S_off, −Λ, Λ)`.
fn dual_start(
    s: ArrayView2<'_, f64>,
    lam: ArrayView2<'_, f64>,
    theta0: ArrayView2<'_, f64>,
    w0: ArrayView2<'_, f64>,
) -> Result<(DualIterate, StartKind), GlassoError> {
    let u0 = bounds_start(s, lam, theta0, w0);
    if let Some(it) = dual_point(s, u0.clone()) {
        return Ok((it, StartKind::Bounds));
    }
    Ok((fallback_start(s, lam, theta0, w0, u0)?, StartKind::Fallback))
}

/// [`dual_start`]'s starts after the bounds start `u0` (not positive definite): the warm
/// start's projected dual point, then the anchors.
fn fallback_start(
    s: ArrayView2<'_, f64>,
    lam: ArrayView2<'_, f64>,
    theta0: ArrayView2<'_, f64>,
    w0: ArrayView2<'_, f64>,
    u0: Array2<f64>,
) -> Result<DualIterate, GlassoError> {
    let p = s.nrows();
    let mut diag = Array2::<f64>::zeros((p, p));
    let mut soft = Array2::<f64>::zeros((p, p));
    // The upper triangles by rows in parallel, then mirrored (the inputs are read on the upper
    // triangle only, as they are symmetric only up to rounding).
    let scale = 1.0_f64.min(rows::min_rows(p, |i| {
        let mut scale = 1.0_f64;
        for j in i + 1..p {
            let (l, old) = (lam[[i, j]], w0[[i, j]] - s[[i, j]]);
            if old.abs() > l {
                scale = scale.min(l / old.abs());
            }
        }
        scale
    }));
    rows::for_each_row(&mut soft, |i, sr| {
        sr[i] = lam[[i, i]];
        for j in i + 1..p {
            sr[j] = -s[[i, j]].clamp(-lam[[i, j]], lam[[i, j]]);
        }
    });
    rows::mirror_upper(&mut soft);
    for i in 0..p {
        diag[[i, i]] = lam[[i, i]];
    }
    // The warm start's dual point projected into the new box (U₀ already is, off the support
    // of Θ₀): where Λ only grew on that support, S + U is W₀ itself (positive definite), and
    // those pairs start interior instead of at bounds that no longer fit (module docs, "Large
    // increases").
    let mut projected = u0.clone();
    for i in 0..p {
        for j in i + 1..p {
            if theta0[[i, j]] != 0.0 {
                let l = lam[[i, j]];
                let v = (w0[[i, j]] - s[[i, j]]).clamp(-l, l);
                projected[[i, j]] = v;
                projected[[j, i]] = v;
            }
        }
    }
    if let Some(it) = dual_point(s, projected) {
        return Ok(it);
    }
    let mut scaled = diag.clone();
    if scale.is_finite() && scale > 0.0 {
        for i in 0..p {
            for j in 0..p {
                let l = lam[[i, j]];
                if i != j {
                    let v = scale * (w0[[i, j]] - s[[i, j]]);
                    // The support of Θ₀ at its bound when it is there up to rounding (an
                    // interior pair would be free).
                    scaled[[i, j]] = if theta0[[i, j]] != 0.0 && v.abs() >= (1.0 - 1e-6) * l {
                        l * theta0[[i, j]].signum()
                    } else {
                        v.clamp(-l, l)
                    };
                }
            }
        }
    }
    for anchor in [&scaled, &diag, &soft] {
        let mut t = 0.5;
        for _ in 0..12 {
            let u = anchor + &((&u0 - anchor) * t);
            if let Some(it) = dual_point(s, u) {
                return Ok(it);
            }
            t *= 0.5;
        }
        if let Some(it) = dual_point(s, anchor.clone()) {
            return Ok(it);
        }
    }
    Err(GlassoError::NumericalFailure {
        solver: "dual-pn",
        iteration: 0,
        reason: "no dual start with S + U positive definite",
    })
}

/// Θ = (S + U)⁻¹ of the dual iterate with exact zeros on the free pairs.
fn recovered_primal(it: &DualIterate, free: &[(usize, usize)]) -> Array2<f64> {
    let mut theta = it.theta.clone();
    for &(i, j) in free {
        theta[[i, j]] = 0.0;
        theta[[j, i]] = 0.0;
    }
    theta
}

/// `Σ_kl (Λ_kl |Θ_kl| − U_kl Θ_kl)`: the duality gap between Θ = (S + U)⁻¹ and U.
fn dual_gap(it: &DualIterate, lam: ArrayView2<'_, f64>) -> f64 {
    let g = rows::sum_rows(lam.nrows(), |i| {
        it.theta
            .row(i)
            .iter()
            .zip(it.u.row(i))
            .zip(lam.row(i))
            .map(|((&t, &u), &l)| l * t.abs() - u * t)
            .sum::<f64>()
    });
    g.max(0.0)
}

/// The duality gap relative to the primal objective `Φ(Θ) = p − h + gap`.
fn relative_dual_gap(it: &DualIterate, lam: ArrayView2<'_, f64>) -> f64 {
    let gap = dual_gap(it, lam);
    gap / (it.u.nrows() as f64 - it.h + gap).abs().max(1.0)
}

/// The free pairs k < l: every pair with `Λ_kl > 0` except those at a bound whose gradient
/// points out of the box (`U_kl = Λ_kl, Θ_kl > 0` or `U_kl = −Λ_kl, Θ_kl < 0`).
fn free_pairs(it: &DualIterate, lam: ArrayView2<'_, f64>, free: &mut Vec<(usize, usize)>) {
    let p = lam.nrows();
    *free = rows::collect_rows(p, |i, out| {
        let (t, u, l) = (it.theta.row(i), it.u.row(i), lam.row(i));
        for j in i + 1..p {
            let l = l[j];
            if l > 0.0 {
                let (t, v) = (t[j], u[j]);
                let active = (v >= l && t > 0.0) || (v <= -l && t < 0.0);
                if !active {
                    out.push((i, j));
                }
            }
        }
    });
}

/// `d ↦ (Θ_R D Θ_R)_Z` on the free pairs (local node indices), D symmetric with `d` on Z.
struct FreeHessian<'a> {
    theta: ArrayView2<'a, f64>,
    pairs: &'a [(usize, usize)],
    /// Row-major offsets `(a·m + b, b·m + a)` of each pair, `a < b` (dense kernel: the
    /// scatter and gather around the products index flat slices; the gather reads the upper
    /// triangle, all that [`sandwich_upper`] computes).
    offsets: Vec<(usize, usize)>,
    t: RefCell<Array2<f64>>,
    v: RefCell<Array2<f64>>,
    /// The product Θ V Θ (dense kernel only).
    full: RefCell<Array2<f64>>,
    /// Θ in single precision, with V, T and Θ V Θ buffers, when the products may be
    /// computed in single precision (dense kernel, loose forcing term).
    single: Option<Single>,
    /// The sparse kernel in double precision (built when first needed).
    sparse: Option<PairSandwich<f64>>,
    /// The sparse kernel in single precision (loose forcing term).
    sparse_single: Option<PairSandwich<f32>>,
}

/// Single-precision buffers of [`FreeHessian`]'s dense kernel.
struct Single {
    theta: Array2<f32>,
    v: RefCell<Array2<f32>>,
    t: RefCell<Array2<f32>>,
    full: RefCell<Array2<f32>>,
}

impl<'a> FreeHessian<'a> {
    /// The operator on `pairs` (local node indices of the m × m `theta`), by the dense kernel
    /// or the sparse one ([`PairSandwich`]), in single precision when `single`.
    ///
    /// # Errors
    /// [`GlassoError::Linalg`] for a pair out of range or on the diagonal (a programmer error).
    fn new(
        theta: ArrayView2<'a, f64>,
        pairs: &'a [(usize, usize)],
        dense: bool,
        single: bool,
    ) -> Result<Self, GlassoError> {
        let m = theta.nrows();
        let scratch = if dense { (m, m) } else { (0, 0) };
        Ok(Self {
            theta,
            pairs,
            offsets: if dense {
                pairs
                    .iter()
                    .map(|&(a, b)| {
                        let (lo, hi) = (a.min(b), a.max(b));
                        (lo * m + hi, hi * m + lo)
                    })
                    .collect()
            } else {
                Vec::new()
            },
            t: RefCell::new(Array2::zeros(scratch)),
            v: RefCell::new(Array2::zeros(scratch)),
            full: RefCell::new(Array2::zeros(scratch)),
            single: (dense && single).then(|| Single {
                theta: theta.mapv(|v| v as f32),
                v: RefCell::new(Array2::zeros((m, m))),
                t: RefCell::new(Array2::zeros((m, m))),
                full: RefCell::new(Array2::zeros((m, m))),
            }),
            sparse: if dense || single {
                None
            } else {
                Some(PairSandwich::new(theta, pairs)?)
            },
            sparse_single: if !dense && single {
                Some(PairSandwich::new(theta, pairs)?)
            } else {
                None
            },
        })
    }

    /// Whether the products are computed in single precision.
    fn is_single(&self) -> bool {
        self.single.is_some() || self.sparse_single.is_some()
    }

    /// Switches to double-precision products.
    fn switch_to_double(&mut self) -> Result<(), GlassoError> {
        self.single = None;
        if self.sparse_single.take().is_some() {
            self.sparse = Some(PairSandwich::new(self.theta, self.pairs)?);
        }
        Ok(())
    }
}

impl LinearOperator for FreeHessian<'_> {
    fn dim(&self) -> usize {
        self.pairs.len()
    }

    fn apply(&self, x: ArrayView1<'_, f64>, mut out: ArrayViewMut1<'_, f64>) {
        if let Some(op) = &self.sparse_single {
            op.apply(x, out);
        } else if let Some(op) = &self.sparse {
            op.apply(x, out);
        } else if let Some(sp) = &self.single {
            let mut v = sp.v.borrow_mut();
            let mut t = sp.t.borrow_mut();
            let mut full = sp.full.borrow_mut();
            let vs = v.as_slice_mut().expect("standard layout");
            vs.fill(0.0);
            for (&(ab, ba), &d) in self.offsets.iter().zip(x.iter()) {
                let d = d as f32;
                vs[ab] = d;
                vs[ba] = d;
            }
            sandwich_upper(sp.theta.view(), v.view(), t.view_mut(), full.view_mut());
            let fs = full.as_slice().expect("standard layout");
            for (o, &(ab, _)) in out.iter_mut().zip(&self.offsets) {
                *o = f64::from(fs[ab]);
            }
        } else {
            let mut t = self.t.borrow_mut();
            let mut v = self.v.borrow_mut();
            let vs = v.as_slice_mut().expect("standard layout");
            vs.fill(0.0);
            for (&(ab, ba), &d) in self.offsets.iter().zip(x.iter()) {
                vs[ab] = d;
                vs[ba] = d;
            }
            let mut full = self.full.borrow_mut();
            sandwich_upper(self.theta.view(), v.view(), t.view_mut(), full.view_mut());
            let fs = full.as_slice().expect("standard layout");
            for (o, &(ab, _)) in out.iter_mut().zip(&self.offsets) {
                *o = fs[ab];
            }
        }
    }
}

/// `A[nodes, nodes]` in standard layout.
fn restrict(a: ArrayView2<'_, f64>, nodes: &[usize]) -> Array2<f64> {
    let m = nodes.len();
    let mut out = Array2::zeros((m, m));
    rows::for_each_row(&mut out, |i, row| {
        let src = a.row(nodes[i]);
        for (v, &k) in row.iter_mut().zip(nodes) {
            *v = src[k];
        }
    });
    out
}

/// A linear system `(Θ D Θ)_P = c` on a set P of pairs k < l (D symmetric, supported on P):
/// the principal block `(Θ ⊗ Θ)_{P,P}` of the dual Hessian. DualPn's Newton systems (P = the
/// dual's free set) and ObnCg's Newton systems through the complement of their free set are
/// of this form.
///
/// Solved by a dense Cholesky factorization of the |P| × |P| matrix
/// `M_{(ab),(cd)} = Θ_ac Θ_bd + Θ_ad Θ_bc` when |P| ≤ `dense_max`, otherwise by
/// preconditioned CG to the relative residual `eta` (products by the sparse kernel or two
/// BLAS products on the nodes touched by P, single precision under the conditions of
/// [`DualPn::mixed_precision`]); a CG breakdown returns the preconditioned right-hand side.
/// The preconditioner is Jacobi, or the additive Schwarz preconditioner over node stars
/// ([`StarPreconditioner`]) when `eta ≤ star_eta`, or at any forcing term when the one of
/// the previous step is cached for the same pair set: its set-up (about 1 ms for 2 200 pairs at
/// p = 100, ~20 single-precision products) pays when CG needs more than ~25 Jacobi
/// iterations, and it cuts them 2.5–3× (module docs of `ho_linalg::pairs`).
pub(crate) struct PairSystem {
    /// Largest |P| factored densely.
    pub dense_max: usize,
    /// CG iteration budget.
    pub max_cg_iter: usize,
    /// Forcing terms up to which CG is preconditioned by node stars rather than Jacobi.
    pub star_eta: f64,
}

impl Default for PairSystem {
    /// DualPn's defaults.
    fn default() -> Self {
        Self {
            dense_max: 400,
            max_cg_iter: 200,
            star_eta: 3e-3,
        }
    }
}

/// The star preconditioner of the last pair system solved with one, and its pair set
/// ([`PairSystem::solve`]).
#[derive(Default)]
pub(crate) struct StarCache {
    free: Vec<(usize, usize)>,
    star: Option<StarPreconditioner>,
}

/// The position in `old` of each pair of `new` (`None` for a pair new to the set) when the
/// two sets differ by at most 1 % of `old` (pairs dropped plus pairs added; both lists in the
/// scan order of [`free_pairs`]); `None` otherwise.
fn kept_positions(old: &[(usize, usize)], new: &[(usize, usize)]) -> Option<Vec<Option<usize>>> {
    let budget = old.len() / 100;
    let mut positions = Vec::with_capacity(new.len());
    let (mut q, mut kept) = (0, 0);
    for pair in new {
        while q < old.len() && old[q] < *pair {
            q += 1;
        }
        if q < old.len() && old[q] == *pair {
            positions.push(Some(q));
            kept += 1;
            q += 1;
        } else {
            positions.push(None);
            if positions.len() - kept > budget {
                return None;
            }
        }
    }
    let changed = (old.len() - kept) + (new.len() - kept);
    (changed <= budget).then_some(positions)
}

/// A preconditioner on a set of pairs carried to a nearby set: the pairs kept are scattered to
/// their old positions (zero elsewhere), the preconditioner is applied and the result gathered
/// back (a principal submatrix of a positive definite operator); the pairs new to the set
/// are preconditioned by Jacobi (`1/diag`).
struct Restricted<'a> {
    inner: &'a StarPreconditioner,
    positions: Vec<Option<usize>>,
    diag: ArrayView1<'a, f64>,
    full: RefCell<(Array1<f64>, Array1<f64>)>,
}

impl<'a> Restricted<'a> {
    fn new(
        inner: &'a StarPreconditioner,
        positions: Vec<Option<usize>>,
        diag: ArrayView1<'a, f64>,
    ) -> Self {
        let n = inner.dim();
        Self {
            inner,
            positions,
            diag,
            full: RefCell::new((Array1::zeros(n), Array1::zeros(n))),
        }
    }
}

impl LinearOperator for Restricted<'_> {
    fn dim(&self) -> usize {
        self.positions.len()
    }

    fn apply(&self, x: ArrayView1<'_, f64>, mut out: ArrayViewMut1<'_, f64>) {
        let mut full = self.full.borrow_mut();
        let (input, output) = &mut *full;
        input.fill(0.0);
        for (&q, &v) in self.positions.iter().zip(x.iter()) {
            if let Some(q) = q {
                input[q] = v;
            }
        }
        self.inner.apply(input.view(), output.view_mut());
        for (((o, &q), &v), &d) in out
            .iter_mut()
            .zip(&self.positions)
            .zip(x.iter())
            .zip(self.diag.iter())
        {
            *o = match q {
                Some(q) => output[q],
                None => v / d,
            };
        }
    }
}

impl PairSystem {
    /// The solution on P (in the order of `free`) for the right-hand side `rhs`.
    ///
    /// `cache` keeps the star preconditioner of the last system solved with one: when the
    /// next system has the same pair set, or one that differs from it by at most 1 % of its
    /// pairs, it is reused (built at the previous Θ, carried to the new set) instead of being
    /// set up again.
    pub(crate) fn solve(
        &self,
        theta: ArrayView2<'_, f64>,
        free: &[(usize, usize)],
        rhs: Array1<f64>,
        eta: f64,
        single_ok: &Cell<bool>,
        cache: Option<&mut StarCache>,
    ) -> Result<Array1<f64>, GlassoError> {
        let nz = free.len();
        if nz <= self.dense_max {
            let mut m = Array2::<f64>::zeros((nz, nz));
            for (x, &(a, b)) in free.iter().enumerate() {
                for (y, &(c, d)) in free.iter().enumerate().skip(x) {
                    let v = theta[[a, c]] * theta[[b, d]] + theta[[a, d]] * theta[[b, c]];
                    m[[x, y]] = v;
                    m[[y, x]] = v;
                }
            }
            if let Ok(chol) = Cholesky::factor_inplace(m) {
                let mut sol = rhs.clone();
                if chol.solve_inplace(sol.view_mut()).is_ok() && sol.iter().all(|v| v.is_finite()) {
                    return Ok(sol);
                }
            }
        }
        // Restrict Θ to the nodes touched by Z.
        let p = theta.nrows();
        let mut local = vec![usize::MAX; p];
        let mut nodes = Vec::new();
        let mut pairs = Vec::with_capacity(nz);
        for &(i, j) in free {
            for k in [i, j] {
                if local[k] == usize::MAX {
                    local[k] = nodes.len();
                    nodes.push(k);
                }
            }
            pairs.push((local[i], local[j]));
        }
        let m = nodes.len();
        let th_r = restrict(theta, &nodes);
        // Measured at p = 200: the sparse kernel and two BLAS products cost the same at
        // |Z| ≈ m²/8 (a quarter of the pairs).
        let dense = 8 * nz > m * m;
        let mut op = FreeHessian::new(
            th_r.view(),
            &pairs,
            dense,
            single_ok.get() && eta >= SINGLE_PRECISION_FORCING,
        )?;
        let diag: Array1<f64> = free
            .iter()
            .map(|&(i, j)| theta[[i, i]] * theta[[j, j]] + theta[[i, j]] * theta[[i, j]])
            .collect();
        let jacobi = JacobiPreconditioner::from_diagonal(diag.view())?;
        let (built, subset);
        // A star preconditioner already set up for this pair set, or for a set that differs
        // from it by at most 1 % of its pairs (the free sets of the late Newton steps of a
        // solve lose or gain a few pairs), is used at any forcing term (it costs nothing more
        // than Jacobi per iteration), carried to the new set ([`Restricted`]).
        let kept = match &cache {
            Some(c) if c.star.is_some() => kept_positions(&c.free, free),
            _ => None,
        };
        let star: Option<&dyn LinearOperator> = match kept {
            Some(positions) => {
                let cache = cache.expect("kept positions come from a cache");
                let star = cache.star.as_ref().expect("checked above");
                if positions.len() == cache.free.len() && positions.iter().all(Option::is_some) {
                    Some(star)
                } else {
                    subset = Restricted::new(star, positions, diag.view());
                    Some(&subset)
                }
            }
            None if eta <= self.star_eta && StarPreconditioner::worthwhile(nz) => match cache {
                Some(cache) => {
                    cache.star = Some(StarPreconditioner::new(th_r.view(), &pairs)?);
                    cache.free = free.to_vec();
                    cache.star.as_ref().map(|s| s as &dyn LinearOperator)
                }
                None => {
                    built = StarPreconditioner::new(th_r.view(), &pairs)?;
                    Some(&built)
                }
            },
            None => None,
        };
        let pre: &dyn LinearOperator = match star {
            Some(star) => star,
            None => &jacobi,
        };
        let cg = |op: &FreeHessian<'_>, sol: &mut Array1<f64>, max_iter: usize| {
            let res = pcg(
                op,
                Some(pre),
                rhs.view(),
                sol.view_mut(),
                &CgOptions {
                    rel_tol: eta,
                    abs_tol: 0.0,
                    max_iter,
                },
            );
            let finite = sol.iter().all(|v| v.is_finite());
            (res, finite)
        };
        // Start from the preconditioned right-hand side.
        let mut start = Array1::zeros(nz);
        pre.apply(rhs.view(), start.view_mut());
        let mut sol = start.clone();
        if !op.is_single() && single_ok.get() {
            // A tight forcing term: iterative refinement, residuals in double precision and
            // corrections by single-precision CG (module docs); double-precision CG finishes
            // from there if it falls short, for this step and the rest of the solve.
            let cheap = FreeHessian::new(th_r.view(), &pairs, dense, true)?;
            let options = RefineOptions {
                goal: eta * rhs.dot(&rhs).sqrt(),
                round_tol: SINGLE_PRECISION_FORCING,
                max_rounds: REFINEMENT_ROUNDS,
                round_max_iter: self.max_cg_iter.min(SINGLE_PRECISION_MAX_ITER),
            };
            let done = refine(
                &op,
                &cheap,
                pre,
                rhs.view(),
                &mut sol,
                None,
                &options,
                &mut |_| true,
            );
            if done.converged {
                return Ok(sol);
            }
            single_ok.set(false);
        }
        if op.is_single() {
            // Single precision first; if CG does not reach η within a small budget (its
            // attainable accuracy, ~1e-7·κ, is above η on ill-conditioned systems), double
            // precision takes over from there, for this step and the rest of the solve.
            let budget = self.max_cg_iter.min(SINGLE_PRECISION_MAX_ITER);
            let (res, finite) = cg(&op, &mut sol, budget);
            if finite && matches!(&res, Ok(r) if r.status == Status::Converged) {
                return Ok(sol);
            }
            single_ok.set(false);
            op.switch_to_double()?;
            if !finite {
                sol.assign(&start);
            }
        }
        let (res, finite) = cg(&op, &mut sol, self.max_cg_iter);
        if res.is_err() || !finite {
            sol = start;
        }
        Ok(sol)
    }
}

impl DualPn {
    /// The Newton direction on the free pairs: solves `(Θ D Θ)_Z = Θ_Z`.
    fn newton_free(
        &self,
        theta: ArrayView2<'_, f64>,
        free: &[(usize, usize)],
        eta: f64,
        single_ok: &Cell<bool>,
        cache: &mut StarCache,
    ) -> Result<Array1<f64>, GlassoError> {
        let rhs: Array1<f64> = free.iter().map(|&(i, j)| theta[[i, j]]).collect();
        let system = self.pair_system();
        system.solve(theta, free, rhs, eta, single_ok, Some(cache))
    }

    /// The forcing term of a Newton step at relative dual gap `rel` with hand-over gap
    /// `target` (comments in [`DualPn::dual_phase`]).
    fn forcing_term(&self, rel: f64, target: f64) -> f64 {
        let loose = 0.1 * self.options.tol >= self.polish_gap;
        let aim = if self.certify_against_iterate {
            target.max(self.options.tol)
        } else {
            target
        };
        if loose && rel * rel <= 0.25 * aim {
            (0.25 * aim / rel).clamp(rel, 0.1)
        } else {
            rel.clamp(1e-10, 0.1)
        }
    }

    /// The pair systems of this solver's Newton steps (and of its tangent start).
    fn pair_system(&self) -> PairSystem {
        PairSystem {
            dense_max: self.dense_max,
            max_cg_iter: self.max_cg_iter,
            star_eta: self.star_eta,
        }
    }

    /// The relative dual gap at which the first dual phase hands over to the polish:
    /// `polish_gap`, or 0.1·`tol` if larger (a loose tolerance needs no tight dual: the
    /// recovered primal's gap is about the dual's).
    pub(crate) fn polish_at(&self) -> f64 {
        self.polish_gap.max(0.1 * self.options.tol)
    }

    /// The tangent correction of a warm start (module docs, "Start"): `plain` is the start
    /// `Λ ⊙ sign(Θ₀)` on the support E₀ of Θ₀ and `clip(W₀ − S, −Λ, Λ)` on its zeros Z₀; on
    /// Z₀ it is replaced by `clip(W₀ − S + D, −Λ, Λ)`, D the first-order change that keeps
    /// `Θ_{Z₀} = 0` when W moves by `ΔU = plain.U − (W₀ − S)` on E₀:
    /// `(Θ₀ D Θ₀)_{Z₀} = −(Θ₀ ΔU Θ₀)_{Z₀}`, solved like a Newton system to the forcing term
    /// [`TANGENT_FORCING`]. `None` when there is nothing to correct (a diagonal Θ₀, no zero
    /// pair, or ΔU = 0) or when the corrected point is not positive definite.
    fn tangent_start(
        &self,
        s: ArrayView2<'_, f64>,
        lam: ArrayView2<'_, f64>,
        theta0: ArrayView2<'_, f64>,
        w0: ArrayView2<'_, f64>,
        plain_u: &Array2<f64>,
    ) -> Result<Option<DualCandidate>, GlassoError> {
        let p = s.nrows();
        let mut du = Array2::<f64>::zeros((p, p));
        // ΔU's upper triangle by rows in parallel (the count of its nonzeros returned), then
        // mirrored; the zero pairs in order.
        let moved = rows::sum_rows_mut(&mut du, |i, row| {
            let mut moved = 0.0;
            for j in i + 1..p {
                if theta0[[i, j]] != 0.0 {
                    let d = plain_u[[i, j]] - (w0[[i, j]] - s[[i, j]]);
                    row[j] = d;
                    if d != 0.0 {
                        moved += 1.0;
                    }
                }
            }
            moved
        }) > 0.0;
        rows::mirror_upper(&mut du);
        let zeros = rows::collect_rows(p, |i, out| {
            for j in i + 1..p {
                if theta0[[i, j]] == 0.0 && lam[[i, j]] > 0.0 {
                    out.push((i, j));
                }
            }
        });
        if !moved || zeros.is_empty() {
            return Ok(None);
        }
        // The right-hand side of a system solved to the forcing term 0.1: in single precision
        // with mixed precision on (at p = 1000 two BLAS products of 20 ms instead of 39).
        let rhs: Array1<f64> = if self.mixed_precision {
            let (th32, du32) = (theta0.mapv(|v| v as f32), du.mapv(|v| v as f32));
            let mut t = Array2::<f32>::zeros((p, p));
            let mut y = Array2::<f32>::zeros((p, p));
            sandwich_upper(th32.view(), du32.view(), t.view_mut(), y.view_mut());
            zeros.iter().map(|&(i, j)| -f64::from(y[[i, j]])).collect()
        } else {
            let mut t = Array2::<f64>::zeros((p, p));
            let mut y = Array2::<f64>::zeros((p, p));
            sandwich_upper(theta0, du.view(), t.view_mut(), y.view_mut());
            zeros.iter().map(|&(i, j)| -y[[i, j]]).collect()
        };
        let system = self.pair_system();
        let single_ok = Cell::new(self.mixed_precision);
        let d = system.solve(theta0, &zeros, rhs, TANGENT_FORCING, &single_ok, None)?;
        let mut u = plain_u.clone();
        for (&(i, j), &dv) in zeros.iter().zip(d.iter()) {
            let l = lam[[i, j]];
            let v = (w0[[i, j]] - s[[i, j]] + dv).clamp(-l, l);
            u[[i, j]] = v;
            u[[j, i]] = v;
        }
        Ok(DualCandidate::of(s, u).ok())
    }

    /// The primal recovered from the dual iterate (Θ = (S + U)⁻¹ set to exactly 0 on the free
    /// pairs), with its covariance, when it is positive definite and meets the tolerances:
    /// the dual phase can then stop before its hand-over gap. In matrix tuning at p = 1000 the
    /// dual gap is inflated by pairs whose penalty sits at the upper bound (Λ_kl |Θ_kl| with
    /// Λ_kl ≈ 10 on entries that recovery sets to zero), and the recovered primal met the
    /// tolerances one or two Newton steps before the dual gap did.
    ///
    /// The gap is measured against the iterate's own dual point U first
    /// ([`Certificate::with_dual_value`], `D(U) = p − h`): `Φ(Θ_rec) − D(U)` is
    /// `Σ_E (Λ_kl |Θ_kl| − U_kl Θ_kl)` plus a term of second order in the zeroed entries, where
    /// the polish's dual point `clip(W_rec − S)` loses the first-order change of W on every
    /// pair at a bound. In replays of 33 matrix-stage solves at p = 1000 (tol 1e-7) that
    /// certificate failed at dual gaps of ~1e-8 (6e-6 against 6e-14), and the solves took 213
    /// Newton steps instead of 194.
    fn certify(
        &self,
        s: ArrayView2<'_, f64>,
        lam: ArrayView2<'_, f64>,
        it: &DualIterate,
        free: &[(usize, usize)],
        n_iter: usize,
    ) -> Option<BlockOutcome> {
        let theta = recovered_primal(it, free);
        let chol = Cholesky::factor(theta.view()).ok()?;
        let logdet = chol.logdet();
        let covariance = chol.into_inverse().ok()?;
        let cert = if self.certify_against_iterate {
            // Against the iterate's own dual point first: D(U) = log det(S + U) + p = p − h.
            Certificate::with_dual_value(
                theta.view(),
                logdet,
                covariance.view(),
                s,
                lam,
                &self.options,
                s.nrows() as f64 - it.h,
            )
        } else {
            Certificate::of(
                theta.view(),
                logdet,
                covariance.view(),
                s,
                lam,
                &self.options,
            )
        };
        cert.converged(&self.options)
            .then(|| cert.outcome(theta, covariance, s, lam, n_iter))
    }

    /// The dual phase: projected Newton steps until the relative dual gap is ≤ `polish_at`,
    /// or the recovered primal meets the tolerances (checked once the gap is within
    /// [`CERTIFY_FACTOR`] of that target, [`DualPn::certify`]), or `max_iter` steps; `trace`
    /// receives h at every accepted iterate (the start included).
    pub(crate) fn dual_phase(
        &self,
        s: ArrayView2<'_, f64>,
        lam: ArrayView2<'_, f64>,
        start: &BlockStart,
        polish_at: f64,
        trace: &mut Vec<f64>,
    ) -> Result<DualPhase, GlassoError> {
        let p = s.nrows();
        let (theta0, w0) = (start.theta.view(), start.covariance.view());
        let (plain, kind) = dual_start_lazy(s, lam, theta0, w0)?;
        let (mut chosen, mut other) = (plain, None);
        if kind == StartKind::Bounds {
            // An acceleration only: if its pair system fails, the start stays as it is.
            if let Ok(Some(tangent)) = self.tangent_start(s, lam, theta0, w0, &chosen.u) {
                if tangent.h < chosen.h {
                    other = Some(std::mem::replace(&mut chosen, tangent));
                }
            }
        }
        // Only the start kept is inverted; should its inverse fail, the other one, then the
        // eager chain of starts.
        let mut it = match chosen.into_iterate() {
            Some(it) => it,
            None => match other.and_then(DualCandidate::into_iterate) {
                Some(it) => it,
                None => dual_start(s, lam, theta0, w0)?.0,
            },
        };
        let mut free = Vec::new();
        let mut certified;
        let mut dir = Array2::<f64>::zeros((p, p));
        let mut n_iter = 0;
        let single_ok = Cell::new(self.mixed_precision);
        let mut stars = StarCache::default();
        // Λ with its lower triangle mirrored from the upper one (the direction and the line
        // search write whole rows; Λ is symmetric only up to rounding, 1e-10 relative).
        let lam_sym = rows::mirrored_upper(lam);
        trace.push(it.h);
        loop {
            free_pairs(&it, lam, &mut free);
            let rel = relative_dual_gap(&it, lam);
            // With few free pairs (the sparse regime of the pair system) a dual step costs a
            // small fraction of a polish step (dense products on all p nodes): the dual goes
            // further. Measured in matrix tuning at p = 1000 (16 000 free pairs of 500 000, tol
            // 1e-7): handing over at 1e-8 left the polish 3–10 Newton steps (4–12 s per solve);
            // at 1e-11 two dual steps (0.2 s each) gave a primal that certified at once.
            let target = if 8 * free.len() <= p * (p - 1) / 2 {
                (polish_at * SPARSE_DUAL_FACTOR).max(MIN_POLISH_GAP)
            } else {
                polish_at
            };
            if rel <= target || n_iter >= self.options.max_iter {
                // The polish would first certify this recovered primal against the dual point
                // clip(W − S); against U it often passes already (replayed scalar-stage
                // solves at p = 1000, tol 1e-10: 23.5 → 18.1 s, the polish's steps saved).
                certified = self
                    .certify_against_iterate
                    .then(|| self.certify(s, lam, &it, &free, n_iter))
                    .flatten();
                break;
            }
            if rel <= CERTIFY_FACTOR * polish_at {
                certified = self.certify(s, lam, &it, &free, n_iter);
                if certified.is_some() {
                    break;
                }
            }
            // Direction: bounds on the active pairs, Newton on the free ones (whole rows from
            // the exactly symmetric Θ, U and mirrored Λ: a symmetric direction).
            let th = &it.theta;
            rows::for_each_row(&mut dir, |i, row| {
                let (t, u, l) = (th.row(i), it.u.row(i), lam_sym.row(i));
                for (j, d) in row.iter_mut().enumerate() {
                    let l = l[j];
                    *d = if l > 0.0 && j != i {
                        l * t[j].signum() - u[j]
                    } else {
                        0.0
                    };
                }
            });
            // Inexact Newton with forcing term ∝ the gap (∝ ‖Θ_Z‖): quadratic convergence. The
            // next gap is about rel·(rel + η); at a loose tolerance, once rel² alone is below
            // the aim, η only has to bring rel·η there: a tighter solve would be wasted (−10 %
            // inner time in matrix tuning at p = 100, tol 1e-7). The aim is `tol` itself (or
            // the hand-over gap if larger): the recovered primal is certified against the
            // iterate's dual point, whose gap follows the dual's. (Aimed at the sparse
            // hand-over gap, 1e-11 at tol 1e-7, the last step of most matrix-stage solves at
            // p = 1000 was a mixed-precision refinement to η ≈ 3e-6; aimed at `tol`, 27
            // replayed solves took the same 143 Newton steps with 2 055 CG iterations instead
            // of 2 299, and every recovered primal certified.) At a tight tolerance the
            // overshoot of a full-precision last step is what lets the recovered primal meet
            // the KKT tolerance without a polishing step (5 of 6 warm solves of the scalar
            // stage at tol 1e-10 skipped it, none with the loose η: +30 % time; with the
            // certificate against U, eleven replayed scalar-stage solves took 60 Newton steps
            // instead of 49 with the loose η, in the same time).
            let eta = self.forcing_term(rel, target);
            let d_free = self.newton_free(th.view(), &free, eta, &single_ok, &mut stars)?;
            for (&(i, j), &d) in free.iter().zip(d_free.iter()) {
                dir[[i, j]] = d;
                dir[[j, i]] = d;
            }
            n_iter += 1;
            match line_search(&it, dir.view(), s, lam_sym.view(), rel, GAP_TRIALS) {
                Some(next) => {
                    it = next;
                    trace.push(it.h);
                }
                None => {
                    free_pairs(&it, lam, &mut free);
                    certified = self
                        .certify_against_iterate
                        .then(|| self.certify(s, lam, &it, &free, n_iter))
                        .flatten();
                    break;
                }
            }
        }
        Ok(DualPhase {
            it,
            free,
            n_iter,
            certified,
        })
    }
}

/// Backtracking along the projection arc `U(α) = P(U + α D)`; `None` if no step is accepted.
///
/// Gap safeguard: when the accepted point's relative duality gap is larger than the current
/// one's (`current_gap`, the dual phase's stopping measure at `it`), the next `gap_trials` halvings ([`GAP_TRIALS`] in the solver) are tried as well, and of the points that pass the
/// sufficient-decrease test the one with the smallest relative gap is kept (each trial is a
/// Cholesky factorization and an inverse). Far from the solution a full Newton step that
/// decreases h can move the dual point far off: after a matrix-tuning step at p = 1000, the
/// warm start's gap of 1.8 became 21 after the first full step, 2.8 with a quarter step, and
/// the solve took 7 Newton steps instead of 10 (module docs).
fn line_search(
    it: &DualIterate,
    dir: ArrayView2<'_, f64>,
    s: ArrayView2<'_, f64>,
    lam: ArrayView2<'_, f64>,
    current_gap: f64,
    gap_trials: usize,
) -> Option<DualIterate> {
    let p = s.nrows();
    let allowance = 16.0 * f64::EPSILON * it.h.abs().max(1.0);
    // The point at α if it passes the sufficient-decrease test: U(α) and S + U(α) by whole
    // rows (`dir` and Λ symmetric, so U(α) is), and the first-order change
    // `lin = ⟨Θ, U(α) − U⟩` over the off-diagonal entries (the diagonal does not move).
    let trial = |alpha: f64| -> Option<DualIterate> {
        let mut u = Array2::zeros((p, p));
        let mut w = Array2::zeros((p, p));
        let lin = rows::for_each_row_pair_sum(&mut u, &mut w, |i, ur, wr| {
            let mut lin = 0.0;
            let rows = it.u.row(i).into_iter().zip(dir.row(i)).zip(lam.row(i));
            let rest = it.theta.row(i).into_iter().zip(s.row(i));
            for ((((&u0, &d), &l), (&t, &sv)), (uv, wv)) in
                rows.zip(rest).zip(ur.iter_mut().zip(wr.iter_mut()))
            {
                let v = if d != 0.0 {
                    let v = (u0 + alpha * d).clamp(-l, l);
                    lin += t * (v - u0);
                    v
                } else {
                    u0
                };
                *uv = v;
                *wv = sv + v;
            }
            lin
        });
        dual_point_of(u, w, |h| h <= it.h - SIGMA * lin.max(0.0) + allowance)
    };
    let mut alpha = 1.0;
    for _ in 0..MAX_HALVINGS {
        if let Some(next) = trial(alpha) {
            let mut best_gap = relative_dual_gap(&next, lam);
            if best_gap <= current_gap {
                return Some(next);
            }
            let mut best = next;
            for _ in 0..gap_trials {
                alpha *= 0.5;
                if let Some(shorter) = trial(alpha) {
                    let gap = relative_dual_gap(&shorter, lam);
                    if gap < best_gap {
                        (best, best_gap) = (shorter, gap);
                    }
                }
            }
            return Some(best);
        }
        alpha *= 0.5;
    }
    None
}

impl BlockSolver for DualPn {
    fn name(&self) -> &'static str {
        "dual-pn"
    }

    fn options(&self) -> &GlassoOptions {
        &self.options
    }

    fn with_tol(&self, tol: f64) -> Box<dyn BlockSolver> {
        crate::fit::with_tol(self, tol, |s| &mut s.options)
    }

    fn solve_block(
        &self,
        s: ArrayView2<'_, f64>,
        lam: ArrayView2<'_, f64>,
        start: BlockStart,
    ) -> Result<BlockOutcome, GlassoError> {
        if self.max_cg_iter == 0 {
            return Err(GlassoError::InvalidOption {
                name: "max_cg_iter",
                value: 0.0,
                range: "≥ 1",
            });
        }
        if !(self.polish_gap > 0.0) {
            return Err(GlassoError::InvalidOption {
                name: "polish_gap",
                value: self.polish_gap,
                range: "> 0",
            });
        }
        if !(self.star_eta >= 0.0) {
            return Err(GlassoError::InvalidOption {
                name: "star_eta",
                value: self.star_eta,
                range: "≥ 0",
            });
        }
        let mut trace = Vec::new();
        let mut start = start;
        let mut used = 0;
        let mut polish_at = self.polish_at();
        for _ in 0..DUAL_ROUNDS {
            // The rounds share the iteration budget.
            let round = DualPn {
                options: GlassoOptions {
                    max_iter: self.options.max_iter.saturating_sub(used),
                    ..self.options
                },
                ..self.clone()
            };
            let phase = round.dual_phase(s, lam, &start, polish_at, &mut trace)?;
            used += phase.n_iter;
            if let Some(mut out) = phase.certified {
                out.n_iter = used;
                return Ok(out);
            }
            let DualPhase { it, free, .. } = phase;
            // Primal recovery: exact zeros on the dual's free set.
            let theta = recovered_primal(&it, &free);
            let polish_start = match Cholesky::factor(theta.view()).and_then(Cholesky::into_inverse)
            {
                Ok(covariance) => BlockStart { theta, covariance },
                Err(_) => {
                    // Zeroing broke positive definiteness: polish from the dense dual primal.
                    let w = &s + &it.u;
                    let covariance = w.clone();
                    let theta = Cholesky::factor_inplace(w)?.into_inverse()?;
                    BlockStart { theta, covariance }
                }
            };
            let budget = self.options.max_iter.saturating_sub(used);
            let polisher = ObnCg {
                options: GlassoOptions {
                    max_iter: budget.min(self.polish_max_iter),
                    ..self.options
                },
                ..Default::default()
            };
            let fallback_start = BlockStart {
                theta: polish_start.theta.clone(),
                covariance: polish_start.covariance.clone(),
            };
            start = match polisher.solve_block(s, lam, polish_start) {
                Ok(mut out) => {
                    out.n_iter += used;
                    let kkt = kkt_residual(out.theta.view(), out.covariance.view(), s, lam);
                    if self.options.is_converged(out.dual_gap, out.objective, kkt)
                        || out.n_iter >= self.options.max_iter
                    {
                        return Ok(out);
                    }
                    used = out.n_iter;
                    BlockStart {
                        theta: out.theta,
                        covariance: out.covariance,
                    }
                }
                Err(GlassoError::NumericalFailure { .. }) => fallback_start,
                Err(e) => return Err(e),
            };
            // The polish stalled: the recovered support was off (with penalty entries spread
            // over decades, pairs with tiny Λ_kl barely show in the dual gap). The dual's
            // projected Newton steps are cheap next to the polish's at large p (a sparse
            // system on the zeros instead of dense products): a tighter dual, then a new
            // recovery.
            polish_at = (polish_at * DUAL_ROUND_FACTOR).max(MIN_POLISH_GAP);
        }
        // The polish's Newton steps stalled (entries hovering around zero keep leaving their
        // orthant) or failed: block coordinate descent, linearly convergent and robust,
        // finishes from there.
        let mut out = Bcd {
            options: GlassoOptions {
                max_iter: self.options.max_iter.saturating_sub(used),
                ..self.options
            },
            ..Default::default()
        }
        .solve_block(s, lam, start)?;
        out.n_iter += used;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::pairs_where;
    use crate::{lambda_max, GlassoProblem, GlassoSolver, Penalty, Status};
    use ho_linalg::empirical_covariance;
    use ho_linalg::testing::{paper_data, random_penalty};

    fn tight() -> GlassoOptions {
        GlassoOptions {
            tol: 1e-12,
            kkt_tol: 1e-10,
            max_iter: 500,
            screening: true,
        }
    }

    /// The cold solution of `solver` at the scalar penalty `lam0` (the warm start of the
    /// tests that then move the penalty).
    fn solved_at(solver: &DualPn, s: &Array2<f64>, lam0: f64) -> crate::GlassoFit {
        solver
            .solve(&GlassoProblem::new(s.view(), Penalty::scalar(lam0)), None)
            .unwrap()
    }

    fn data(p: usize, seed: u64) -> Array2<f64> {
        let d = paper_data(p, 10 * p, 0.9, seed);
        empirical_covariance(d.x.view(), false).unwrap()
    }

    /// Same support as NewtonCd's tight solution and entries within 1e-7.
    fn assert_matches_newton_cd(fit: &crate::GlassoFit, problem: &GlassoProblem<'_>) {
        let reference = crate::NewtonCd {
            options: tight(),
            ..Default::default()
        }
        .solve(problem, None)
        .unwrap();
        for (a, b) in fit.precision.iter().zip(reference.precision.iter()) {
            assert_eq!(*a != 0.0, *b != 0.0);
            assert!((a - b).abs() <= 1e-7 * b.abs().max(1.0));
        }
    }

    #[test]
    #[allow(clippy::float_cmp)] // exact bounds and exact symmetry are the point
    fn a_warm_start_from_a_larger_penalty_keeps_its_support_at_the_new_bounds() {
        // A warm start at λ₀ = 0.5 (support (0, 1) and (2, 3) at the bound, the other pairs
        // interior) for λ = 0.1. `U₀` (support at ±λ, the rest of W₀ − S clipped) is not
        // positive definite here (found by a random search over p = 6); the start must hold
        // the support at ±λ with the sign of Θ₀ (not interior, hence free), stay in the box
        // and have S + U ≻ 0.
        let s: Array2<f64> = ndarray::arr2(&[
            [0.566735, -0.406338, 0.184828, -0.606053, 0.20232, -0.227996],
            [-0.406338, 2.095874, 0.355037, 1.27338, -0.346025, 0.398861],
            [0.184828, 0.355037, 0.752539, -0.153101, -0.527957, -0.58945],
            [-0.606053, 1.27338, -0.153101, 1.430076, -0.727835, 0.197914],
            [0.20232, -0.346025, -0.527957, -0.727835, 1.757756, 0.984697],
            [-0.227996, 0.398861, -0.58945, 0.197914, 0.984697, 1.188502],
        ]);
        let u_old: Array2<f64> = ndarray::arr2(&[
            [0.0, -0.5, -0.421339, -0.080942, 0.14559, 0.216521],
            [-0.5, 0.0, 0.090028, 0.300635, 0.01151, 0.112531],
            [-0.421339, 0.090028, 0.0, 0.5, 0.496791, 0.471007],
            [-0.080942, 0.300635, 0.5, 0.0, -0.032389, 0.029164],
            [0.14559, 0.01151, 0.496791, -0.032389, 0.0, -0.290342],
            [0.216521, 0.112531, 0.471007, 0.029164, -0.290342, 0.0],
        ]);
        let p = 6;
        let w0 = &s + &u_old;
        let support = [(0, 1), (2, 3)];
        // Θ₀: only its pattern and signs are read (the sign of U on the support).
        let mut theta0 = Array2::<f64>::eye(p);
        for &(i, j) in &support {
            theta0[[i, j]] = u_old[[i, j]].signum();
            theta0[[j, i]] = u_old[[i, j]].signum();
        }
        let lam = Array2::from_shape_fn((p, p), |(i, j)| if i == j { 0.0 } else { 0.1 });
        let mut u0 = Array2::<f64>::zeros((p, p));
        for i in 0..p {
            for j in 0..p {
                if i != j {
                    u0[[i, j]] = if theta0[[i, j]] != 0.0 {
                        0.1 * theta0[[i, j]].signum()
                    } else {
                        u_old[[i, j]].clamp(-0.1, 0.1)
                    };
                }
            }
        }
        assert!(dual_point(s.view(), w0.clone()).is_some(), "W₀ ≻ 0");
        assert!(
            dual_point(s.view(), u0).is_none(),
            "S + U₀ is positive definite"
        );
        let (it, _) = dual_start(s.view(), lam.view(), theta0.view(), w0.view()).unwrap();
        for i in 0..p {
            for j in 0..p {
                assert!(it.u[[i, j]].abs() <= lam[[i, j]]);
                assert_eq!(it.u[[i, j]], it.u[[j, i]]);
            }
        }
        for &(i, j) in &support {
            assert_eq!(it.u[[i, j]], 0.1 * u_old[[i, j]].signum(), "({i}, {j})");
        }
        assert!(it.theta.iter().all(|v| v.is_finite()));
    }

    #[test]
    #[allow(clippy::float_cmp)] // the start must be the old dual point itself
    fn a_warm_start_for_a_grown_penalty_starts_from_its_own_dual_point() {
        // The solution at λ = 0.02·λ_max, then every other pair of its support penalized 50×
        // more (a matrix-tuning step). `Λ ⊙ sign(Θ₀)` on the old support is then far from
        // positive definite; the projected old dual point is W₀ − S itself, with the grown
        // pairs interior.
        let p = 30;
        let s = data(p, 3);
        let lmax = lambda_max(s.view());
        let solver = DualPn {
            options: tight(),
            ..Default::default()
        };
        let lam0 = 0.02 * lmax;
        let old = solved_at(&solver, &s, lam0);
        let mut lam = Array2::from_shape_fn((p, p), |(i, j)| if i == j { 0.0 } else { lam0 });
        let mut grown = Vec::new();
        for i in 0..p {
            for j in i + 1..p {
                if old.precision[[i, j]] != 0.0 && (i + j) % 2 == 0 {
                    lam[[i, j]] = 50.0 * lam0;
                    lam[[j, i]] = 50.0 * lam0;
                    grown.push((i, j));
                }
            }
        }
        assert!(grown.len() > p, "{} grown pairs", grown.len());
        let (theta0, w0) = (old.precision.view(), old.covariance.view());
        let at_bounds = Array2::from_shape_fn((p, p), |(i, j)| {
            if i == j {
                0.0
            } else if theta0[[i, j]] != 0.0 {
                lam[[i, j]] * theta0[[i, j]].signum()
            } else {
                (w0[[i, j]] - s[[i, j]]).clamp(-lam[[i, j]], lam[[i, j]])
            }
        });
        assert!(
            dual_point(s.view(), at_bounds).is_none(),
            "S + Λ ⊙ sign(Θ₀) is positive definite: the test does not reach the fallback"
        );
        let (it, kind) = dual_start(s.view(), lam.view(), theta0, w0).unwrap();
        assert_eq!(kind, StartKind::Fallback);
        for i in 0..p {
            for j in 0..p {
                if i != j {
                    let expected = (w0[[i, j]] - s[[i, j]]).clamp(-lam[[i, j]], lam[[i, j]]);
                    assert_eq!(it.u[[i, j]], expected, "({i}, {j})");
                }
            }
        }
        for &(i, j) in &grown {
            assert!(it.u[[i, j]].abs() < lam[[i, j]], "({i}, {j}) not interior");
        }
        // And the solve from there is the solution.
        let problem = GlassoProblem::new(s.view(), Penalty::Matrix(lam.clone()));
        let warm = solver.solve(&problem, Some(&old)).unwrap();
        assert_eq!(warm.status, Status::Converged);
        assert_matches_newton_cd(&warm, &problem);
    }

    #[test]
    fn weighted_penalized_diagonal_matches_newton_cd() {
        let p = 30;
        let s = data(p, 3);
        let lmax = lambda_max(s.view());
        let mut lam = random_penalty(p, 0.01 * lmax, 0.2 * lmax, 7);
        for i in 0..p {
            lam[[i, i]] = 0.05 * lmax * (1.0 + i as f64 / p as f64);
        }
        assert!(lam.diag().iter().all(|&v| v > 0.0));
        let problem = GlassoProblem::new(s.view(), Penalty::Matrix(lam));
        let solver = DualPn {
            options: tight(),
            ..Default::default()
        };
        let fit = solver.solve(&problem, None).unwrap();
        assert_eq!(fit.status, Status::Converged);
        assert_matches_newton_cd(&fit, &problem);
        assert!(fit.dual_gap.abs() <= 1e-10 * fit.objective.abs().max(1.0));
        assert!(fit.kkt_residual <= 1e-9);
        let wt = fit.covariance.dot(&fit.precision);
        let eye = Array2::<f64>::eye(p);
        assert!(wt
            .iter()
            .zip(eye.iter())
            .all(|(a, b)| (a - b).abs() <= 1e-10));
    }

    #[test]
    fn a_polish_that_does_not_converge_is_finished_by_block_coordinate_descent() {
        let p = 30;
        let s = data(p, 5);
        let lam = 0.01 * lambda_max(s.view());
        let problem = GlassoProblem::new(s.view(), Penalty::scalar(lam));
        // Hand over at once and allow the polish no Newton step: only the fallback can
        // converge.
        let solver = DualPn {
            options: tight(),
            polish_gap: 0.5,
            polish_max_iter: 0,
            ..Default::default()
        };
        let fit = solver.solve(&problem, None).unwrap();
        assert_eq!(fit.status, Status::Converged);
        assert!(fit.relative_gap() <= 1e-12 && fit.kkt_residual <= 1e-10);
        assert_matches_newton_cd(&fit, &problem);
    }

    #[test]
    fn warm_start_from_the_solution_takes_at_most_one_iteration() {
        let p = 40;
        let s = data(p, 1);
        let lmax = lambda_max(s.view());
        let solver = DualPn {
            options: tight(),
            ..Default::default()
        };
        for ratio in [0.2, 0.02, 0.005] {
            let problem = GlassoProblem::new(s.view(), Penalty::scalar(ratio * lmax));
            let cold = solver.solve(&problem, None).unwrap();
            assert_eq!(cold.status, Status::Converged);
            let warm = solver.solve(&problem, Some(&cold)).unwrap();
            assert_eq!(warm.status, Status::Converged);
            assert!(
                warm.n_iter <= 1,
                "ratio {ratio}: {} iterations",
                warm.n_iter
            );
            for (a, b) in warm.precision.iter().zip(cold.precision.iter()) {
                assert_eq!(*a != 0.0, *b != 0.0);
            }
        }
    }

    #[test]
    fn the_line_search_keeps_a_shorter_step_when_the_full_one_increases_the_gap() {
        // Matrix-tuning steps: the solution at 0.005·λ_max, then every pair's penalty multiplied
        // by e^z, z in [−3, 3] (a fixed pseudo-random pattern per seed), and the first
        // projected Newton direction from the warm start, as in the dual phase. (At p = 40 or
        // with z in [−2, 2] the full step decreased the gap in every case; here it raised it,
        // ~0.21 → 0.25–0.28, and a shorter step gave ~0.15.)
        let p = 80;
        let s = data(p, 5);
        let lam0 = 0.005 * lambda_max(s.view());
        let solver = DualPn {
            options: tight(),
            ..Default::default()
        };
        let old = solved_at(&solver, &s, lam0);
        let mut engaged = 0;
        for seed in 0..8 {
            let lam = perturbed(p, lam0, seed, 3.0);
            let (it, _) = dual_start(
                s.view(),
                lam.view(),
                old.precision.view(),
                old.covariance.view(),
            )
            .unwrap();
            let mut free = Vec::new();
            free_pairs(&it, lam.view(), &mut free);
            let mut dir = Array2::from_shape_fn((p, p), |(i, j)| {
                if i == j {
                    0.0
                } else {
                    lam[[i, j]] * it.theta[[i, j]].signum() - it.u[[i, j]]
                }
            });
            let d_free = solver
                .newton_free(
                    it.theta.view(),
                    &free,
                    0.1,
                    &Cell::new(false),
                    &mut StarCache::default(),
                )
                .unwrap();
            for (&(i, j), &d) in free.iter().zip(d_free.iter()) {
                dir[[i, j]] = d;
                dir[[j, i]] = d;
            }
            let before = relative_dual_gap(&it, lam.view());
            let search =
                |trials| line_search(&it, dir.view(), s.view(), lam.view(), before, trials);
            let (plain, guarded) = (search(0).unwrap(), search(GAP_TRIALS).unwrap());
            assert!(guarded.h < it.h, "no decrease");
            let (full, kept) = (
                relative_dual_gap(&plain, lam.view()),
                relative_dual_gap(&guarded, lam.view()),
            );
            assert!(kept <= full, "seed {seed}: {kept:e} > {full:e}");
            if kept < full {
                // Only when the plain step increased the gap.
                assert!(full > before, "seed {seed}: {full:e} <= {before:e}");
                engaged += 1;
            } else {
                assert_eq!(guarded.h.to_bits(), plain.h.to_bits());
            }
        }
        assert!(engaged >= 4, "the safeguard engaged {engaged} times in 8");
    }

    /// A matrix-tuning step from a scalar penalty `lam0`: every pair's penalty times e^z, z in
    /// [−spread, spread] (a fixed pseudo-random pattern per seed), the diagonal unpenalized.
    fn perturbed(p: usize, lam0: f64, seed: u64, spread: f64) -> Array2<f64> {
        Array2::from_shape_fn((p, p), |(i, j)| {
            if i == j {
                return 0.0;
            }
            let (a, b) = (i.min(j) as f64, i.max(j) as f64);
            let h = ((seed as f64 * 12.9898 + a * 78.233 + b * 37.719).sin() * 43758.5453)
                .fract()
                .abs();
            lam0 * (spread * (2.0 * h - 1.0)).exp()
        })
    }

    /// [`perturbed`] with spread 3 from `old`'s penalty `lam0`, and, as in matrix tuning, some
    /// zeros of `old` at the outer problem's upper bound e²·λ_max: they inflate the dual gap
    /// (Λ_kl |Θ_kl| on entries that recovery sets to zero).
    fn step_to_the_outer_bound(
        old: &crate::GlassoFit,
        lam0: f64,
        lmax: f64,
        seed: u64,
    ) -> Array2<f64> {
        let p = old.precision.nrows();
        let mut lam = perturbed(p, lam0, seed, 3.0);
        for i in 0..p {
            for j in 0..p {
                if i != j
                    && old.precision[[i, j]] == 0.0
                    && (i + j + seed as usize).is_multiple_of(3)
                {
                    lam[[i, j]] = 2f64.exp() * lmax;
                }
            }
        }
        lam
    }

    /// The warm block start of a fit.
    fn start_at(fit: &crate::GlassoFit) -> BlockStart {
        BlockStart {
            theta: fit.precision.clone(),
            covariance: fit.covariance.clone(),
        }
    }

    #[test]
    fn the_lazy_start_is_the_eager_one_inverted_on_demand() {
        // Warm starts for grown and shrunk penalties: the bounds start (lazy), and the
        // fallback of a large increase (eager, carried as it is).
        let p = 40;
        let s = data(p, 9);
        let lam0 = 0.05 * lambda_max(s.view());
        let solver = DualPn {
            options: tight(),
            ..Default::default()
        };
        let old = solved_at(&solver, &s, lam0);
        let (theta0, w0) = (old.precision.view(), old.covariance.view());
        let mut kinds = Vec::new();
        for factor in [1.5, 0.9, 10.0] {
            let lam =
                Array2::from_shape_fn((p, p), |(i, j)| if i == j { 0.0 } else { factor * lam0 });
            let (eager, kind) = dual_start(s.view(), lam.view(), theta0, w0).unwrap();
            let (lazy, lazy_kind) = dual_start_lazy(s.view(), lam.view(), theta0, w0).unwrap();
            assert_eq!(kind, lazy_kind, "factor {factor}");
            assert_eq!(lazy.h.to_bits(), eager.h.to_bits(), "factor {factor}");
            let it = lazy.into_iterate().expect("an invertible start");
            for (a, b) in [(&it.u, &eager.u), (&it.theta, &eager.theta)] {
                assert!(a
                    .iter()
                    .zip(b.iter())
                    .all(|(x, y)| x.to_bits() == y.to_bits()));
            }
            kinds.push(kind);
        }
        assert!(kinds.contains(&StartKind::Bounds) && kinds.contains(&StartKind::Fallback));
    }

    #[test]
    fn the_tangent_start_is_closer_to_the_dual_optimum_than_the_bounds_start() {
        const RATIO: f64 = 0.5;
        let p = 60;
        let s = data(p, 4);
        let lam0 = 0.01 * lambda_max(s.view());
        let solver = DualPn {
            options: tight(),
            ..Default::default()
        };
        let old = solved_at(&solver, &s, lam0);
        let (theta0, w0) = (old.precision.view(), old.covariance.view());
        for seed in 0..4 {
            let lam = perturbed(p, lam0, seed, 0.5);
            let (plain, kind) = dual_start(s.view(), lam.view(), theta0, w0).unwrap();
            assert_eq!(kind, StartKind::Bounds);
            let tangent = solver
                .tangent_start(s.view(), lam.view(), theta0, w0, &plain.u)
                .unwrap()
                .expect("a positive definite tangent start");
            for i in 0..p {
                for j in 0..p {
                    let u = tangent.u[[i, j]];
                    assert!(u.abs() <= lam[[i, j]], "({i}, {j}) out of the box");
                    assert_eq!(u.to_bits(), tangent.u[[j, i]].to_bits());
                    if theta0[[i, j]] != 0.0 {
                        assert_eq!(u.to_bits(), plain.u[[i, j]].to_bits(), "({i}, {j})");
                    }
                }
            }
            let problem = GlassoProblem::new(s.view(), Penalty::Matrix(lam.clone()));
            let fit = solver.solve(&problem, Some(&old)).unwrap();
            assert_matches_newton_cd(&fit, &problem);
            // h* = −log det W* = log det Θ*.
            let h_star = Cholesky::factor(fit.precision.view()).unwrap().logdet();
            let (to_plain, to_tangent) = (plain.h - h_star, tangent.h - h_star);
            assert!(
                to_tangent >= -1e-9 && to_tangent < RATIO * to_plain,
                "seed {seed}: h − h* = {to_tangent:e} from the tangent, {to_plain:e} from the bounds"
            );
        }
    }

    #[test]
    fn the_dual_phase_stops_once_the_recovered_primal_is_certified() {
        let p = 60;
        let s = data(p, 6);
        let lmax = lambda_max(s.view());
        let lam0 = 0.01 * lmax;
        let options = GlassoOptions {
            tol: 1e-6,
            kkt_tol: 1e-5,
            ..tight()
        };
        let solver = DualPn {
            options,
            ..Default::default()
        };
        let old = solved_at(&solver, &s, lam0);
        let mut early = 0;
        for seed in 0..8 {
            let lam = step_to_the_outer_bound(&old, lam0, lmax, seed);
            let start = start_at(&old);
            let phase = solver
                .dual_phase(
                    s.view(),
                    lam.view(),
                    &start,
                    solver.polish_at(),
                    &mut Vec::new(),
                )
                .unwrap();
            let rel = relative_dual_gap(&phase.it, lam.view());
            let Some(out) = phase.certified else {
                continue;
            };
            if rel > solver.polish_at() {
                early += 1;
            }
            // The certified primal meets the tolerances and is the solution.
            let kkt = kkt_residual(
                out.theta.view(),
                out.covariance.view(),
                s.view(),
                lam.view(),
            );
            assert!(kkt <= options.kkt_tol, "seed {seed}: KKT {kkt:e}");
            assert!(out.dual_gap <= options.tol * out.objective.abs().max(1.0));
            let problem = GlassoProblem::new(s.view(), Penalty::Matrix(lam.clone()));
            let reference = crate::NewtonCd {
                options: tight(),
                ..Default::default()
            }
            .solve(&problem, None)
            .unwrap();
            for (a, b) in out.theta.iter().zip(reference.precision.iter()) {
                assert_eq!(*a != 0.0, *b != 0.0, "seed {seed}: support");
                assert!(
                    (a - b).abs() <= 1e-4 * b.abs().max(1.0),
                    "seed {seed}: {a} vs {b}"
                );
            }
        }
        assert!(
            early >= 3,
            "{early} dual phases of 8 stopped before their hand-over gap"
        );
    }

    #[test]
    fn a_recovered_primal_is_certified_against_the_iterates_own_dual_point() {
        let p = 60;
        let s = data(p, 6);
        let lmax = lambda_max(s.view());
        let lam0 = 0.01 * lmax;
        let options = GlassoOptions {
            tol: 1e-9,
            kkt_tol: 1e-6,
            ..tight()
        };
        let old = solved_at(
            &DualPn {
                options,
                ..Default::default()
            },
            &s,
            lam0,
        );
        let (mut tighter, mut only_new) = (0, 0);
        for seed in 0..6 {
            let lam = step_to_the_outer_bound(&old, lam0, lmax, seed);
            let problem = GlassoProblem::new(s.view(), Penalty::Matrix(lam.clone()));
            let optimum = crate::NewtonCd {
                options: GlassoOptions {
                    tol: 1e-13,
                    kkt_tol: 1e-11,
                    ..tight()
                },
                ..Default::default()
            }
            .solve(&problem, None)
            .unwrap()
            .objective;
            let start = start_at(&old);
            // The iterates after 1, 2, … Newton steps (the step budget stops the phase).
            for steps in 6..11 {
                let solver = DualPn {
                    options: GlassoOptions {
                        max_iter: steps,
                        ..options
                    },
                    certify_against_iterate: true,
                    ..Default::default()
                };
                let phase = solver
                    .dual_phase(s.view(), lam.view(), &start, 1e-16, &mut Vec::new())
                    .unwrap();
                let theta = recovered_primal(&phase.it, &phase.free);
                let Ok(chol) = Cholesky::factor(theta.view()) else {
                    continue;
                };
                let logdet = chol.logdet();
                let w = chol.into_inverse().unwrap();
                let known = p as f64 - phase.it.h;
                let new = Certificate::with_dual_value(
                    theta.view(),
                    logdet,
                    w.view(),
                    s.view(),
                    lam.view(),
                    &options,
                    known,
                );
                let old_cert = Certificate::of(
                    theta.view(),
                    logdet,
                    w.view(),
                    s.view(),
                    lam.view(),
                    &options,
                );
                // A non-finite dual value is ignored, never a silent gap of 0.
                let nan = Certificate::with_dual_value(
                    theta.view(),
                    logdet,
                    w.view(),
                    s.view(),
                    lam.view(),
                    &options,
                    f64::NAN,
                );
                assert_eq!(nan.gap.to_bits(), old_cert.gap.to_bits());
                if !new.gap.is_finite() {
                    assert!(!old_cert.gap.is_finite());
                    continue;
                }
                // A valid certificate: Φ(Θ_rec) − Φ* ≤ gap (weak duality), and no looser than
                // the polish's.
                let slack = 1e-12 * optimum.abs().max(1.0);
                assert!(
                    new.objective - optimum <= new.gap + slack,
                    "seed {seed}, {steps} steps: suboptimality {:e} > gap {:e}",
                    new.objective - optimum,
                    new.gap
                );
                // The iterate's gap is kept once it meets the tolerance, else the smaller one.
                assert!(new.gap <= old_cert.gap.max(options.tol * new.objective.abs().max(1.0)));
                // Above rounding, the gap against U is the tighter one.
                if old_cert.gap > 1e-12 * new.objective.abs() && new.gap < 0.1 * old_cert.gap {
                    tighter += 1;
                }
                // The solver's own certificate accepts what the polish's would refuse.
                if new.converged(&options) && !old_cert.converged(&options) {
                    only_new += 1;
                    assert!(solver
                        .certify(s.view(), lam.view(), &phase.it, &phase.free, steps)
                        .is_some());
                }
            }
        }
        assert!(tighter >= 4, "{tighter} certificates 10× tighter");
        assert!(
            only_new >= 3,
            "{only_new} iterates certified only against U"
        );
    }

    #[test]
    fn the_hand_over_point_is_certified_before_any_polish() {
        // Warm solves of a scalar path at a tight tolerance, as in the tuner's scalar stage.
        let p = 60;
        let s = data(p, 8);
        let lmax = lambda_max(s.view());
        let solver = DualPn {
            options: tight(),
            certify_against_iterate: true,
            ..Default::default()
        };
        let mut at_hand_over = 0;
        for (from, to) in [
            (0.2, 0.1),
            (0.1, 0.05),
            (0.05, 0.03),
            (0.03, 0.02),
            (0.3, 0.2),
        ] {
            let old = solved_at(&solver, &s, from * lmax);
            let lam = Array2::from_shape_fn((p, p), |(i, j)| if i == j { 0.0 } else { to * lmax });
            let start = start_at(&old);
            let phase = solver
                .dual_phase(
                    s.view(),
                    lam.view(),
                    &start,
                    solver.polish_at(),
                    &mut Vec::new(),
                )
                .unwrap();
            let rel = relative_dual_gap(&phase.it, lam.view());
            if let Some(out) = phase.certified {
                at_hand_over += usize::from(rel <= solver.polish_at());
                let kkt = kkt_residual(
                    out.theta.view(),
                    out.covariance.view(),
                    s.view(),
                    lam.view(),
                );
                assert!(kkt <= solver.options.kkt_tol);
                assert!(
                    out.dual_gap <= solver.options.tol * out.objective.abs().max(1.0),
                    "gap {:e}",
                    out.dual_gap
                );
            }
        }
        assert!(
            at_hand_over >= 1,
            "{at_hand_over} of 5 dual phases certified at their hand-over gap"
        );
    }

    #[test]
    fn a_loose_tolerance_aims_the_last_newton_step_at_the_tolerance() {
        let solver = DualPn {
            options: GlassoOptions {
                tol: 1e-7,
                ..GlassoOptions::default()
            },
            certify_against_iterate: true,
            ..Default::default()
        };
        // Matrix tuning at p = 1000: a sparse free set's hand-over gap of 1e-11, a dual gap
        // of 3e-6. rel·η ≤ tol/4 asks for η ≈ 8e-3: single-precision CG, no
        // refinement to η = rel.
        let target = solver.polish_at() * SPARSE_DUAL_FACTOR;
        let eta = solver.forcing_term(3e-6, target);
        assert!(
            eta > 1e-3 && 3e-6 * eta <= 0.25 * 1e-7 * (1.0 + 1e-12),
            "η = {eta:e}"
        );
        // Farther away, quadratic convergence: η = rel.
        assert_eq!(
            solver.forcing_term(1e-3, target).to_bits(),
            1e-3_f64.to_bits()
        );
        assert_eq!(
            solver.forcing_term(0.5, target).to_bits(),
            0.1_f64.to_bits()
        );
        // Certified against clip(W − S) only, the aim stays the hand-over gap: η = rel.
        let default = DualPn {
            certify_against_iterate: false,
            ..solver.clone()
        };
        assert_eq!(
            default.forcing_term(3e-6, target).to_bits(),
            3e-6_f64.to_bits()
        );
        // A tight tolerance keeps η = rel to the end (KKT of the recovered primal).
        let tight = DualPn {
            options: GlassoOptions {
                tol: 1e-10,
                ..GlassoOptions::default()
            },
            certify_against_iterate: true,
            ..Default::default()
        };
        assert_eq!(
            tight.forcing_term(3e-6, tight.polish_at()).to_bits(),
            3e-6_f64.to_bits()
        );
    }

    #[test]
    fn dual_objective_decreases_monotonically() {
        let p = 50;
        let s = data(p, 2);
        let lmax = lambda_max(s.view());
        let lam = Penalty::scalar(0.01 * lmax).to_matrix(p);
        let solver = DualPn {
            options: tight(),
            polish_gap: 1e-14,
            ..Default::default()
        };
        let start = crate::cold_start(s.view(), lam.view());
        let mut trace = Vec::new();
        let phase = solver
            .dual_phase(s.view(), lam.view(), &start, solver.polish_at(), &mut trace)
            .unwrap();
        assert!(phase.n_iter >= 2, "{} steps", phase.n_iter);
        assert_eq!(trace.len(), phase.n_iter + 1);
        for w in trace.windows(2) {
            assert!(w[1] <= w[0] + 1e-12 * w[0].abs(), "h went up: {w:?}");
        }
        // U stays exactly symmetric and in the box.
        let u = &phase.it.u;
        for i in 0..p {
            for j in 0..p {
                assert_eq!(u[[i, j]].to_bits(), u[[j, i]].to_bits());
                assert!(u[[i, j]].abs() <= lam[[i, j]]);
            }
        }
    }

    #[test]
    fn with_few_free_pairs_the_dual_phase_goes_past_the_hand_over_gap() {
        let p = 40;
        let s = data(p, 3);
        let lmax = lambda_max(s.view());
        let pairs = p * (p - 1) / 2;
        for (ratio, sparse) in [(2e-3, true), (0.1, false)] {
            let lam = Penalty::scalar(ratio * lmax).to_matrix(p);
            let solver = DualPn {
                options: GlassoOptions {
                    tol: 1e-7,
                    ..tight()
                },
                ..Default::default()
            };
            let start = crate::cold_start(s.view(), lam.view());
            let phase = solver
                .dual_phase(
                    s.view(),
                    lam.view(),
                    &start,
                    solver.polish_at(),
                    &mut Vec::new(),
                )
                .unwrap();
            assert_eq!(
                8 * phase.free.len() <= pairs,
                sparse,
                "ratio {ratio}: {} free",
                phase.free.len()
            );
            let gap = dual_gap(&phase.it, lam.view());
            let rel = gap / (p as f64 - phase.it.h + gap).abs().max(1.0);
            let target = if sparse {
                solver.polish_at() * SPARSE_DUAL_FACTOR
            } else {
                solver.polish_at()
            };
            assert!(rel <= target, "ratio {ratio}: {rel:e} > {target:e}");
        }
    }

    #[test]
    fn single_precision_products_match_double_to_single_accuracy() {
        let m = 40;
        let theta = ho_linalg::testing::random_spd(m, 100.0, 5);
        let pairs = pairs_where(m, |i, j| (i + 2 * j) % 3 != 0);
        // Both kernels: two dense products, and the sparse pair kernel.
        for dense in [true, false] {
            let make =
                |single: bool| FreeHessian::new(theta.view(), &pairs, dense, single).unwrap();
            let x = Array1::from_shape_fn(pairs.len(), |k| (k as f64 * 0.61).sin());
            let (mut y64, mut y32) = (Array1::zeros(pairs.len()), Array1::zeros(pairs.len()));
            make(false).apply(x.view(), y64.view_mut());
            let mut op = make(true);
            assert!(op.is_single());
            op.apply(x.view(), y32.view_mut());
            let scale = y64.iter().fold(0.0f64, |a, v| a.max(v.abs()));
            let err = (&y64 - &y32).iter().fold(0.0f64, |a, v| a.max(v.abs()));
            assert!(err <= 1e-5 * scale, "dense {dense}: error {err} of {scale}");
            assert!(
                err > 0.0,
                "dense {dense}: the single-precision path was not taken"
            );
            // After the hand-over the products are the double-precision ones.
            op.switch_to_double().unwrap();
            assert!(!op.is_single());
            op.apply(x.view(), y32.view_mut());
            let err = (&y64 - &y32).iter().fold(0.0f64, |a, v| a.max(v.abs()));
            assert!(
                err <= 1e-12 * scale,
                "dense {dense}: after the hand-over {err}"
            );
        }
    }

    #[test]
    fn sparse_and_dense_kernels_give_the_same_products() {
        let m = 23;
        let theta = ho_linalg::testing::random_spd(m, 50.0, 9);
        // A sparse pattern: node 9 in no pair, node 4 paired with every later node.
        let pairs = pairs_where(m, |i, j| {
            (i == 4 || (i * 7 + j * 3) % 11 == 0) && i != 9 && j != 9
        });
        let x = Array1::from_shape_fn(pairs.len(), |k| (k as f64 * 1.3).cos());
        let (mut sparse, mut dense) = (Array1::zeros(pairs.len()), Array1::zeros(pairs.len()));
        FreeHessian::new(theta.view(), &pairs, false, false)
            .unwrap()
            .apply(x.view(), sparse.view_mut());
        FreeHessian::new(theta.view(), &pairs, true, false)
            .unwrap()
            .apply(x.view(), dense.view_mut());
        // The reference from its definition: (Θ D Θ)_ab with D symmetric.
        let mut d = Array2::<f64>::zeros((m, m));
        for (&(a, b), &v) in pairs.iter().zip(x.iter()) {
            d[[a, b]] = v;
            d[[b, a]] = v;
        }
        let full = theta.dot(&d).dot(&theta);
        let scale = full.iter().fold(0.0f64, |a, v| a.max(v.abs()));
        for (k, &(a, b)) in pairs.iter().enumerate() {
            assert!(
                (sparse[k] - full[[a, b]]).abs() <= 1e-12 * scale,
                "sparse at {k}"
            );
            assert!(
                (dense[k] - full[[a, b]]).abs() <= 1e-12 * scale,
                "dense at {k}"
            );
        }
        // Applying twice gives the same result (the scratch rows are cleared).
        let mut again = Array1::zeros(pairs.len());
        let op = FreeHessian::new(theta.view(), &pairs, false, false).unwrap();
        op.apply(x.view(), again.view_mut());
        op.apply(x.view(), again.view_mut());
        assert!((&again - &sparse).iter().all(|v| v.abs() <= 1e-12 * scale));
    }

    #[test]
    fn single_precision_hands_over_to_double_when_it_cannot_reach_the_forcing_term() {
        // All pairs (the dense kernel) and a fifth of them (the sparse kernel).
        hands_over_on(30, &pairs_where(30, |_, _| true), 1e4, 1e-4);
        hands_over_on(60, &pairs_where(60, |i, j| (i * 3 + j) % 5 == 0), 1e7, 1e-4);
    }

    #[test]
    fn tight_forcing_terms_are_refined_in_single_precision_or_handed_over_to_double() {
        // η below SINGLE_PRECISION_FORCING: double-precision residuals, single-precision
        // corrections; when those cannot reach 1e-4 per round, double-precision CG.
        hands_over_on(30, &pairs_where(30, |_, _| true), 1e4, 1e-9);
        hands_over_on(60, &pairs_where(60, |i, j| (i * 3 + j) % 5 == 0), 1e7, 1e-9);
    }

    fn hands_over_on(m: usize, pairs: &[(usize, usize)], ill: f64, eta: f64) {
        let solver = DualPn {
            dense_max: 0,
            max_cg_iter: 5000,
            ..Default::default()
        };
        // Well conditioned: single precision reaches η (by refinement below 1e-4). Ill
        // conditioned (κ(Θ) = `ill`, so κ(Θ ⊗ Θ) ~ ill²): it cannot, and double precision
        // finishes the step.
        for (kappa, single_stays) in [(10.0, true), (ill, false)] {
            let theta = ho_linalg::testing::random_spd(m, kappa, 11);
            let single_ok = Cell::new(true);
            let d = solver
                .newton_free(
                    theta.view(),
                    pairs,
                    eta,
                    &single_ok,
                    &mut StarCache::default(),
                )
                .unwrap();
            assert_eq!(single_ok.get(), single_stays, "κ = {kappa}");
            // The residual of the direction, in double precision.
            let op = FreeHessian::new(theta.view(), pairs, true, false).unwrap();
            let rhs: Array1<f64> = pairs.iter().map(|&(i, j)| theta[[i, j]]).collect();
            let mut md = Array1::zeros(pairs.len());
            op.apply(d.view(), md.view_mut());
            let res = (&md - &rhs).mapv(|v| v * v).sum().sqrt();
            let norm = rhs.mapv(|v| v * v).sum().sqrt();
            assert!(
                res <= 2.0 * eta * norm,
                "κ = {kappa}: residual {res:e} of {norm:e}"
            );
        }
    }

    #[test]
    fn mixed_precision_reaches_the_same_solution() {
        // Dense regime, every Newton system by CG with the dense kernel.
        let p = 50;
        let s = data(p, 8);
        let lmax = lambda_max(s.view());
        let problem = GlassoProblem::new(s.view(), Penalty::scalar(0.01 * lmax));
        let solve = |mixed_precision: bool| {
            DualPn {
                options: tight(),
                dense_max: 0,
                mixed_precision,
                ..Default::default()
            }
            .solve(&problem, None)
            .unwrap()
        };
        let (mixed, double) = (solve(true), solve(false));
        for fit in [&mixed, &double] {
            assert_eq!(fit.status, Status::Converged);
            assert!(fit.dual_gap.abs() <= 1e-12 * fit.objective.abs().max(1.0));
        }
        for (a, b) in mixed.precision.iter().zip(double.precision.iter()) {
            assert_eq!(*a != 0.0, *b != 0.0);
            assert!((a - b).abs() <= 1e-8 * b.abs().max(1.0), "{a} vs {b}");
        }
    }

    #[test]
    fn star_preconditioned_systems_meet_the_forcing_term() {
        // Half of the pairs of a dense precision matrix (κ = 100), the dense kernel, double
        // precision: the solution meets η against M built from its definition, with Jacobi
        // and with node stars alike.
        let m = 40;
        let theta = ho_linalg::testing::random_spd(m, 100.0, 4);
        let pairs = pairs_where(m, |i, j| (i + 3 * j) % 2 == 0);
        let rhs = Array1::from_shape_fn(pairs.len(), |k| (k as f64 * 0.7).sin());
        let dense = Array2::from_shape_fn((pairs.len(), pairs.len()), |(x, y)| {
            let ((a, b), (c, d)) = (pairs[x], pairs[y]);
            theta[[a, c]] * theta[[b, d]] + theta[[a, d]] * theta[[b, c]]
        });
        let eta = 1e-9;
        for star_eta in [0.0, 1.0] {
            let system = PairSystem {
                dense_max: 0,
                star_eta,
                ..Default::default()
            };
            let sol = system
                .solve(
                    theta.view(),
                    &pairs,
                    rhs.clone(),
                    eta,
                    &Cell::new(false),
                    None,
                )
                .unwrap();
            let res = &dense.dot(&sol) - &rhs;
            let rel = res.dot(&res).sqrt() / rhs.dot(&rhs).sqrt();
            assert!(rel <= eta, "star_eta {star_eta}: relative residual {rel:e}");
        }
    }

    #[test]
    fn a_cached_star_is_carried_to_a_nearby_pair_set() {
        let m = 40;
        let theta = ho_linalg::testing::random_spd(m, 100.0, 6);
        let old = pairs_where(m, |i, j| (i + 2 * j) % 3 == 0);
        assert!(old.len() >= 200);
        // Drop the first pair and add one that was not there: two changes, within 1 %.
        let added = (0..m)
            .flat_map(|i| (i + 1..m).map(move |j| (i, j)))
            .find(|pair| !old.contains(pair))
            .unwrap();
        let mut new: Vec<(usize, usize)> = old[1..].to_vec();
        new.push(added);
        new.sort_unstable();
        let positions = kept_positions(&old, &new).unwrap();
        assert_eq!(positions.iter().filter(|q| q.is_none()).count(), 1);
        for (pair, q) in new.iter().zip(&positions) {
            assert_eq!(q.map(|q| old[q]), (*pair != added).then_some(*pair));
        }
        assert_eq!(
            kept_positions(&old, &old).unwrap(),
            (0..old.len()).map(Some).collect::<Vec<_>>()
        );
        // More than 1 % changed: not carried.
        let shrunk = &old[..old.len() / 2];
        assert!(kept_positions(&old, shrunk).is_none());
        // The carried operator: the star on the kept pairs (zero elsewhere), Jacobi on the new.
        let star = StarPreconditioner::new(theta.view(), &old).unwrap();
        let diag: Array1<f64> = new
            .iter()
            .map(|&(i, j)| theta[[i, i]] * theta[[j, j]] + theta[[i, j]] * theta[[i, j]])
            .collect();
        let carried = Restricted::new(&star, positions.clone(), diag.view());
        let x = Array1::from_shape_fn(new.len(), |k| (k as f64 * 0.37).sin());
        let mut got = Array1::zeros(new.len());
        carried.apply(x.view(), got.view_mut());
        let mut full = Array1::zeros(old.len());
        for (&q, &v) in positions.iter().zip(x.iter()) {
            if let Some(q) = q {
                full[q] = v;
            }
        }
        let mut full_out = Array1::zeros(old.len());
        star.apply(full.view(), full_out.view_mut());
        for (k, q) in positions.iter().enumerate() {
            let want = match q {
                Some(q) => full_out[*q],
                None => x[k] / diag[k],
            };
            assert_eq!(got[k].to_bits(), want.to_bits(), "pair {k}");
        }
        // Positive definite: xᵀ K x > 0.
        assert!(x.dot(&got) > 0.0);
    }

    #[test]
    fn star_preconditioned_newton_steps_reach_the_same_solution() {
        // Every Newton system by CG (dense_max 0), with node stars at every forcing term or
        // never; both certified and equal to NewtonCd's solution.
        let p = 50;
        let s = data(p, 8);
        let lmax = lambda_max(s.view());
        let problem = GlassoProblem::new(s.view(), Penalty::scalar(0.01 * lmax));
        for star_eta in [0.0, 1.0] {
            let fit = DualPn {
                options: tight(),
                dense_max: 0,
                star_eta,
                ..Default::default()
            }
            .solve(&problem, None)
            .unwrap();
            assert_eq!(fit.status, Status::Converged);
            assert!(fit.dual_gap.abs() <= 1e-12 * fit.objective.abs().max(1.0));
            assert_matches_newton_cd(&fit, &problem);
        }
        let bad = DualPn {
            star_eta: f64::NAN,
            ..Default::default()
        }
        .solve(&problem, None);
        assert!(matches!(
            bad,
            Err(GlassoError::InvalidOption {
                name: "star_eta",
                ..
            })
        ));
    }

    #[test]
    fn singular_covariance_still_solves() {
        // n < p: S is singular; the unpenalized diagonal needs an off-diagonal start.
        let p = 30;
        let d = paper_data(p, 20, 0.9, 4);
        let s = empirical_covariance(d.x.view(), false).unwrap();
        let lmax = lambda_max(s.view());
        let problem = GlassoProblem::new(s.view(), Penalty::scalar(0.3 * lmax));
        let fit = DualPn {
            options: tight(),
            ..Default::default()
        }
        .solve(&problem, None)
        .unwrap();
        assert_eq!(fit.status, Status::Converged);
    }
}
