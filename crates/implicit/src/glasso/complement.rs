//! The adjoint solve through the complement of the support (docs/implicit-diff.md §7b): for
//! dense supports, a small system on the zeros of Θ̂ instead of a large one on its nonzeros.
//!
//! ```text
//! A = W ⊗ W on all p² ordered entries,  B = A⁻¹ = Θ̂ ⊗ Θ̂,  Z = complement of E
//! (A_EE)⁻¹ = B_EE − B_EZ (B_ZZ)⁻¹ B_ZE           (inverse of a principal block)
//! M u = b:   y = (Θ̂ V_b Θ̂)_Z,   B_ZZ z = y,   u = (Θ̂ (V_b − V_z) Θ̂)_E
//! ```
//!
//! `V_b` is `b` scattered on E and `V_z` is `z` scattered on Z (zero elsewhere). Two dense
//! products `Θ̂ V Θ̂` and a CG solve with `B_ZZ = (Θ̂ ⊗ Θ̂)_{Z,Z}` (products by the sparse
//! kernel of [`RestrictedKronecker`] when Z is small) replace a CG solve with `M` whose every
//! iteration costs two dense products and two more for the preconditioner.
//!
//! Preconditioner of the Z system (`HypergradOptions::star_preconditioner`): the additive
//! Schwarz preconditioner over node stars (`ho_linalg::StarPreconditioner`; for every node,
//! the inverse of the block of `B_ZZ` on the pairs of Z that touch it), else Jacobi
//! `Θ̂_aa Θ̂_bb`. Its set-up costs about 20 single-precision products at p = 100 and it
//! divides the iterations by 2.5–3 (each refinement round below: ~45 → ~13); in matrix tuning
//! on the paper's data the hypergradients took 0.25 s instead of 0.36 s at p = 100, 1.59 s
//! instead of 1.96 s at p = 200 and 20.8 s instead of 26.5 s at p = 500 (medians of 9, 3 and
//! 1 interleaved runs). At the held-out optimum of the paper's data (E ≈ 55 % of the entries at
//! p = 100, ≈ 90 % at p = 200) Z is the smaller side. When Z holds more than half of the
//! off-diagonal entries (a sparse Θ̂ on the way to λ*, where the complement is chosen since
//! `HypergradOptions::complement_fraction` became 3.5), the stars are large and applying them
//! costs several products: Jacobi is used. At p = 500 on 71 % of the entries, the stars made
//! an iteration cost 23 ms, against ~9 ms with Jacobi (36 iterations instead of 33).
//!
//! Warm start: the full-space solution `x = A⁻¹ (b on E, c on Z)` with `x_Z = 0` has
//! `c = A_ZE u = −z`, so an approximate adjoint `u₀` (the previous one, remapped onto E)
//! gives `z₀ = −(W U₀ W)_Z`, one dense product — in single precision when the Z system is
//! solved to a relative residual of at least 1e-6 (the matrix stage's 5e-6): only a start.
//!
//! Recovery: `u = (Θ̂ V_b Θ̂)_E − (Θ̂ V_z Θ̂)_E` reuses the right-hand side's product; of
//! `Θ̂ V_z Θ̂` only the second factor is a BLAS product, the first (`V_z Θ̂`, |Z|·p
//! multiply-adds) is formed by rows from the nonzeros of V_z. Measured at p = 1000 (two
//! threads, medians of 9): the double-precision sandwich 39 ms, in single precision with its
//! conversions 28 ms; one BLAS product 19 ms, the rows of `V_z Θ̂` at 133 nonzeros per row
//! 14 ms: ~15 ms saved per matrix-stage hypergradient (of ~0.7 s).
//!
//! Symmetry: M commutes with the transposition of its ordered pairs, so for a symmetric b (the
//! gradient of a criterion) the solution u is symmetric, and so is z. When b's antisymmetric
//! part is below 1/100 of the residual target, the warm start z₀ and the recovered u are
//! replaced by their symmetric parts (a projection that cannot increase the error, and adds at
//! most that share of the target to the residual). Without it, the antisymmetric rounding of
//! the single-precision corrections on M (below) was carried from call to call by the warm
//! start and grew (relative size 1e-15, 7e-7, 1e-6, 5e-6 along matrix tuning at p = 1000),
//! until the symmetric refinement below refused the residual and every Z solve of the stage
//! ran in double-precision CG: at p = 1000, 50 iterations of 0.1 s instead of 52 of 0.03 s
//! (one replayed solve: 6.1 → 2.7 s).
//!
//! Mixed precision (`HypergradOptions::mixed_precision`): the Z system is solved by
//! iterative refinement: residuals in double precision, corrections by CG with
//! single-precision products (half the cost) to a relative residual of 1e-4 each, at most
//! three rounds, then double-precision CG if the target is still not met. With a symmetric
//! b and the node-star preconditioner, the single-precision products are the sparse pair
//! kernel `ho_linalg::PairSandwich` on the unordered pairs of Z, with symmetric corrections
//! (a residual with an antisymmetric part above 1e-6 of the right-hand side ends the
//! refinement), also when Z's double-precision products are dense: at 26 % of the pairs of
//! p = 1000 the kernel takes 28 ms against ~0.1 s for two single-precision BLAS products;
//! otherwise they are two BLAS products when Z's products are dense. The double-precision
//! products (the refinement's residuals, and CG if it falls short) of such a symmetric solve
//! use the same kernel in double precision: at p = 1000 on 48 000–71 000 pairs it takes
//! 19–23 ms, against 72–97 ms for the sparse kernel on the ordered entries and 32–39 ms for two
//! BLAS products (OpenBLAS's SkylakeX kernels); two replayed matrix-stage Z solves there took
//! 1.76–2.00 s instead of 1.86–1.98 s and 1.90–2.04 s instead of 2.18–2.31 s (two runs each). At p = 500 on the
//! paper's data (13–30 % of the pairs in Z) the sparse kernel took the hypergradients of
//! tune_paper from 24.3 to 20.7 s (single runs).
//! The Z system is solved to 1/20 of the requested residual (not below 1e-8, where CG may
//! stall), so that the recovered u usually passes the certificate without a finishing solve on
//! M. Measured on the paper's data at p = 100 (matrix tuning, 37 hypergradients, medians of 8
//! interleaved runs, Jacobi): single precision only for the first 1e-4 then double, 0.38 s;
//! refinement, 0.33 s (two rounds of ~45 single-precision iterations replace ~38 single + ~45
//! double).
//!
//! The answer is certified on the original system: the residual `‖M u − b‖` is recomputed
//! (one product with M). When it is above the tolerance (at p = 1000 in tuning it was 3–450×
//! the target: the Z residual amplified by `(W ⊗ W)_{E,Z}`, and the rounding of the two
//! products that recover u, ~eps·κ(Θ̂)² of b, which no tighter Z solve removes), the missing
//! digits are refined on M itself, with mixed precision and the Kronecker preconditioner:
//! residuals in double precision, corrections by CG with single-precision products of M and
//! of `(Θ̂ V Θ̂)_E` (half the cost of a double-precision iteration; the corrections only need
//! one to three digits); double-precision CG on `M` finishes if that falls short (its
//! iterations, and the refinement's, are added to the report). Measured in tune_paper at
//! p = 1000 (one BLAS thread, 57 failed certificates): 119 s in double-precision CG (457
//! iterations of 0.26 s), 110 s refined (801 iterations of 0.14 s: single precision's
//! attainable accuracy, ~1e-7·κ(M), is not far below the digits asked, so CG takes more
//! iterations).

use super::active::ActiveSet;
use super::hypergrad::HypergradOptions;
use super::operator::{jacobi_preconditioner, Kernel, RestrictedKronecker};
use super::system::PreconditionerKind;
use crate::ImplicitError;
use ho_linalg::kernels::axpy;
use ho_linalg::{
    pcg, refine, sandwich, CgOptions, Lane, LinearOperator, PairSandwich, RefineOptions,
    Refinement, SolveReport, StarPreconditioner, Status,
};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2};

/// Smallest relative residual of a Z solve whose warm start is computed in single precision.
const SINGLE_START_TOL: f64 = 1e-6;

/// The result of [`solve_by_complement`].
pub(crate) struct ComplementSolution {
    /// `u = M⁻¹ b` on E.
    pub u: Array1<f64>,
    /// Iterations of the Z solve plus those of the finishing CG on M (if any), and the
    /// recomputed residual `‖M u − b‖`.
    pub report: SolveReport,
    /// The residual on M of the recovered u over the requested one (before any finishing).
    pub certificate_ratio: f64,
}

/// Solves `M u = b`, `M = (W ⊗ W)_{E,E}`, through the complement Z of E (module docs).
/// `precondition_m` is the preconditioner of the finishing CG on M, when one is needed.
///
/// # Errors
/// [`ImplicitError::LinearSolveFailed`] when the finishing CG stops at its budget, and the
/// Krylov solvers' own failures.
pub(crate) fn solve_by_complement(
    precision: ArrayView2<'_, f64>,
    covariance: ArrayView2<'_, f64>,
    active: &ActiveSet,
    b: ArrayView1<'_, f64>,
    options: &HypergradOptions,
    precondition_m: Option<&dyn LinearOperator>,
    warm_u: Option<ArrayView1<'_, f64>>,
) -> Result<ComplementSolution, ImplicitError> {
    let cg = &options.cg;
    let p = active.dim();
    let zset = active.complement();
    let mut v = Array2::zeros((p, p));
    let mut t = Array2::zeros((p, p));
    let mut y = Array2::zeros((p, p));
    active.scatter(b, v.view_mut());
    sandwich(precision, v.view(), t.view_mut(), y.view_mut());
    // M commutes with transposition: for a symmetric b the solution is symmetric, and so are
    // its warm start and the recovered u, exactly (module docs, "Symmetry").
    let target = residual_target(cg, b);
    let symmetric = active.antisymmetric_norm(b) <= SYMMETRY_SHARE * target;
    let mut n_iter = 0;
    let mut u = if !zset.is_empty() {
        let rhs = zset.gather_owned(y.view());
        let jacobi = jacobi_preconditioner(precision, &zset)?;
        let sparse_enough = zset.len() as f64 <= STAR_MAX_SHARE * (p * (p - 1)) as f64;
        let star = if options.star_preconditioner
            && sparse_enough
            && StarPreconditioner::worthwhile(zset.len() / 2)
        {
            Some(SymmetricStar::new(precision, &zset)?)
        } else {
            None
        };
        let pre: &dyn LinearOperator = match &star {
            Some(star) => star,
            None => &jacobi,
        };
        let z_tol = (cg.rel_tol * options.complement_margin).max(cg.rel_tol.min(Z_MARGIN_FLOOR));
        let zcg = CgOptions {
            rel_tol: z_tol,
            // Below 1e-8 a Z system that cannot reach its target (CG's attainable residual
            // is about eps·κ) stops early and leaves the rest to the certificate on M.
            max_iter: if z_tol < 1e-8 {
                cg.max_iter.min(Z_TIGHT_MAX_ITER)
            } else {
                cg.max_iter
            },
            ..*cg
        };
        let mut z = Array1::zeros(zset.len());
        if let Some(u0) = warm_u {
            // z₀ = −(W U₀ W)_Z. For a Z solve to a loose tolerance (matrix tuning: 5e-6) in
            // single precision (28 ms instead of 39 at p = 1000, module docs): only a start,
            // which CG corrects to a residual far above its rounding (a start from the exact
            // solution rounded to single precision already costs CG ~8 iterations at 1e-10).
            // y keeps Θ̂ V_b Θ̂ for the recovery; v is free.
            if zcg.rel_tol >= SINGLE_START_TOL {
                let mut v32 = Array2::<f32>::zeros((p, p));
                for (&uk, (i, j)) in u0.iter().zip(active.pairs()) {
                    v32[[i, j]] = uk as f32;
                }
                let w32 = covariance.mapv(|x| x as f32);
                let mut t32 = Array2::<f32>::zeros((p, p));
                let mut y32 = Array2::<f32>::zeros((p, p));
                sandwich(w32.view(), v32.view(), t32.view_mut(), y32.view_mut());
                for (zk, (i, j)) in z.iter_mut().zip(zset.pairs()) {
                    *zk = -f64::from(y32[[i, j]]);
                }
            } else {
                let mut y0 = Array2::zeros((p, p));
                active.scatter(u0, v.view_mut());
                sandwich(covariance, v.view(), t.view_mut(), y0.view_mut());
                for (zk, (i, j)) in z.iter_mut().zip(zset.pairs()) {
                    *zk = -y0[[i, j]];
                }
            }
            if symmetric {
                zset.symmetrize(z.view_mut());
            }
        }
        // Double-precision products (residuals, CG): for a symmetric solve with node stars, the
        // sparse pair kernel on the unordered pairs, 3–4× faster than the ordered kernels at
        // p = 1000 (module docs); otherwise the ordered operator.
        // The operator on the ordered entries only where it is used (its pattern analysis is
        // a pass over Θ̂: ~7 ms at p = 1000).
        let (pairs64, ordered);
        let mut ordered_dense = false;
        let op64: &dyn LinearOperator = match &star {
            Some(star) if symmetric => {
                pairs64 = SymmetricPairs::<f64>::new(precision, star)?;
                &pairs64
            }
            _ => {
                ordered = RestrictedKronecker::new(precision, &zset, Kernel::Auto);
                ordered_dense = ordered.kernel() == Kernel::Dense;
                &ordered
            }
        };
        // Single-precision products: two BLAS products on the ordered entries, or the sparse
        // pair kernel on the unordered pairs (the right-hand side of a criterion is symmetric,
        // and so is the solution).
        let (dense32, pairs32);
        let single: Option<SingleProducts<'_>> = match (options.mixed_precision, &star) {
            (false, _) => None,
            (true, Some(star)) if symmetric => {
                pairs32 = SymmetricPairs::<f32>::new(precision, star)?;
                Some((&pairs32, Some(&star.positions)))
            }
            (true, _) if ordered_dense => {
                dense32 = SingleSandwich::new(precision, &zset);
                Some((&dense32, None))
            }
            (true, _) => None,
        };
        let converged = match single {
            Some((op32, symmetric)) => {
                let refined = refine_in_single_precision(
                    op64,
                    op32,
                    symmetric,
                    pre,
                    rhs.view(),
                    &mut z,
                    None,
                    &zcg,
                );
                n_iter += refined.n_iter;
                refined.converged
            }
            None => false,
        };
        if !converged {
            // Double-precision CG from the best point so far.
            n_iter += pcg(op64, Some(pre), rhs.view(), z.view_mut(), &zcg)?.n_iter;
        }
        recover(precision, active, &zset, y.view(), &z, &mut v, &mut t)
    } else {
        active.gather_owned(y.view())
    };
    if symmetric {
        active.symmetrize(u.view_mut());
    }
    let (report, certificate_ratio) = certify_on_m(
        precision,
        covariance,
        active,
        b,
        &mut u,
        options,
        precondition_m,
    )
    .map_err(|e| match e {
        // Count the Z iterations too.
        ImplicitError::LinearSolveFailed {
            residual_norm,
            n_iter: k,
        } => ImplicitError::LinearSolveFailed {
            residual_norm,
            n_iter: n_iter + k,
        },
        e => e,
    })?;
    Ok(ComplementSolution {
        u,
        report: SolveReport {
            n_iter: n_iter + report.n_iter,
            ..report
        },
        certificate_ratio,
    })
}

/// `u = (Θ̂ (V_b − V_z) Θ̂)_E = (Θ̂ V_b Θ̂)_E − (Θ̂ V_z Θ̂)_E` from the Z solution z, with
/// `yb = Θ̂ V_b Θ̂` (the right-hand side's product) reused: only `Θ̂ V_z Θ̂` is computed, its
/// first factor `V_z Θ̂` by rows from the |Z| nonzeros of V_z (|Z|·p multiply-adds instead of
/// p³; Z is the smaller side), its second by BLAS. `t` and `y` are scratch.
fn recover(
    precision: ArrayView2<'_, f64>,
    active: &ActiveSet,
    zset: &ActiveSet,
    yb: ArrayView2<'_, f64>,
    z: &Array1<f64>,
    t: &mut Array2<f64>,
    y: &mut Array2<f64>,
) -> Array1<f64> {
    // t = V_z Θ̂, row i = Σ_j z_ij Θ̂_j· over the Z pairs (i, j) of row i.
    sparse_rows_times(zset, z.view(), precision, t);
    ndarray::linalg::general_mat_mul(1.0, &precision, &t.view(), 0.0, y);
    let mut u = active.gather_owned(yb);
    for (uk, (i, j)) in u.iter_mut().zip(active.pairs()) {
        *uk -= y[[i, j]];
    }
    u
}

/// `out = V A` for V the p × p matrix with `v` on the ordered pairs of `set` (zero elsewhere)
/// and a dense p × p `a`: row i of the product is `Σ_j V_ij A_j·` over the pairs of row i.
fn sparse_rows_times(
    set: &ActiveSet,
    v: ArrayView1<'_, f64>,
    a: ArrayView2<'_, f64>,
    out: &mut Array2<f64>,
) {
    use rayon::prelude::*;
    let p = a.nrows();
    let data = out.as_slice_mut().expect("standard layout");
    // Rows on the rayon pool from p = 256 (each row is its own sum: the result does not depend
    // on it; below, waking the pool costs more than the rows).
    let min_len = if p >= 256 { 1 } else { usize::MAX };
    data.par_chunks_mut(p.max(1))
        .enumerate()
        .with_min_len(min_len)
        .for_each(|(i, row)| {
            row.fill(0.0);
            let range = set.row_range(i);
            for (&j, &vij) in set
                .row_cols(i)
                .iter()
                .zip(v.slice(ndarray::s![range]).iter())
            {
                if vij != 0.0 {
                    match a.row(j).as_slice() {
                        Some(aj) => axpy(vij, aj, row),
                        None => ndarray::ArrayViewMut1::from(&mut *row).scaled_add(vij, &a.row(j)),
                    }
                }
            }
        });
}

/// Certifies `u` on `M = (W ⊗ W)_{E,E}` itself: recomputes `‖M u − b‖` and, when it is above
/// the tolerance, improves u — first (with mixed precision and the Kronecker preconditioner)
/// by iterative refinement with single-precision products of M and of `(Θ̂ V Θ̂)_E` (residuals
/// in double precision; the missing digits are usually one or two, so one round of half-cost
/// iterations), then, if that falls short, by double-precision CG on M preconditioned by
/// `precondition_m`. Returns the iterations spent here and the final residual, and the
/// recomputed residual over the requested one (before any improvement).
///
/// # Errors
/// [`ImplicitError::LinearSolveFailed`] when the double-precision CG stops at its budget.
fn certify_on_m(
    precision: ArrayView2<'_, f64>,
    covariance: ArrayView2<'_, f64>,
    active: &ActiveSet,
    b: ArrayView1<'_, f64>,
    u: &mut Array1<f64>,
    options: &HypergradOptions,
    precondition_m: Option<&dyn LinearOperator>,
) -> Result<(SolveReport, f64), ImplicitError> {
    let cg = &options.cg;
    let m = RestrictedKronecker::new(covariance, active, Kernel::Auto);
    let mut r = Array1::zeros(active.len());
    m.apply(u.view(), r.view_mut());
    r.zip_mut_with(&b, |ri, &bi| *ri = bi - *ri);
    let residual_norm = r.dot(&r).sqrt();
    let target = residual_target(cg, b);
    let ratio = residual_norm / target;
    if residual_norm <= target {
        return Ok((
            SolveReport {
                n_iter: 0,
                residual_norm,
                status: Status::Converged,
            },
            ratio,
        ));
    }
    let mut n_iter = 0;
    if options.mixed_precision && options.preconditioner == PreconditionerKind::Kronecker {
        let m32 = SingleSandwich::new(covariance, active);
        let pre32 = SingleSandwich::new(precision, active);
        let refined = refine_in_single_precision(&m, &m32, None, &pre32, b, u, Some(r), cg);
        n_iter += refined.n_iter;
        if refined.converged {
            return Ok((
                SolveReport {
                    n_iter,
                    residual_norm: refined.residual_norm,
                    status: Status::Converged,
                },
                ratio,
            ));
        }
    }
    let report = pcg(&m, precondition_m, b, u.view_mut(), cg)?;
    if report.status != Status::Converged {
        return Err(ImplicitError::LinearSolveFailed {
            residual_norm: report.residual_norm,
            n_iter: n_iter + report.n_iter,
        });
    }
    Ok((
        SolveReport {
            n_iter: n_iter + report.n_iter,
            ..report
        },
        ratio,
    ))
}

/// Single-precision products of the Z system, and the positions of the orientations of each
/// unordered pair when they only take symmetric vectors ([`refine_in_single_precision`]).
type SingleProducts<'a> = (&'a dyn LinearOperator, Option<&'a [(usize, usize)]>);

/// Mixed-precision iterative refinement of `op z = rhs` from `z` (the Z system `B_ZZ z = c`,
/// or M itself in [`certify_on_m`]): rounds of single-precision CG (products by `op32`) on the
/// current residual (computed in double precision by `op`; `residual`, when the caller has
/// `rhs − op z` already, saves the first product), each to the relative residual
/// [`SINGLE_PRECISION_TOL`] or what the target still needs, until the double-precision
/// residual meets `target` or [`MAX_REFINEMENTS`] rounds. Returns the single-precision
/// iterations, whether the target was met and the last residual norm; a failed or non-finite
/// round is dropped and ends the refinement (double-precision CG then continues from `z`).
///
/// With `symmetric` (the positions of (a, b) and (b, a) of every unordered pair of Z) the
/// corrections are symmetric (`op32` only sees symmetric vectors, [`SymmetricPairs`]): each
/// residual is replaced by its symmetric part, whose norm is what meets the target; its
/// antisymmetric part is rounding of the right-hand side's products (the certificate on M
/// judges the result), unless it exceeds [`ANTISYMMETRIC_ROUNDING`] of the right-hand side,
/// which ends the refinement (a non-symmetric system; double-precision CG solves it).
///
/// Restarting CG on the residual loses its Krylov space (a round that only needs three digits
/// still takes ~40 iterations on the paper's data), but each round costs half as much per
/// iteration as double precision, and continuing in double from 1e-4 took ~45 iterations.
/// The loop is [`ho_linalg::refine`] (shared with DualPn's Newton systems), with the
/// symmetric projection as its residual hook.
#[allow(clippy::too_many_arguments)]
fn refine_in_single_precision(
    op: &dyn LinearOperator,
    op32: &dyn LinearOperator,
    symmetric: Option<&[(usize, usize)]>,
    pre: &dyn LinearOperator,
    rhs: ArrayView1<'_, f64>,
    z: &mut Array1<f64>,
    residual: Option<Array1<f64>>,
    target: &CgOptions,
) -> Refinement {
    let rhs_norm = rhs.dot(&rhs).sqrt();
    let options = RefineOptions {
        goal: (target.rel_tol * rhs_norm).max(target.abs_tol),
        round_tol: SINGLE_PRECISION_TOL,
        max_rounds: MAX_REFINEMENTS,
        round_max_iter: target.max_iter.min(SINGLE_PRECISION_MAX_ITER),
    };
    // Symmetric corrections: each residual is replaced by its symmetric part; an
    // antisymmetric part beyond rounding ends the refinement.
    let mut project = |r: &mut Array1<f64>| match symmetric {
        Some(positions) => {
            let mut anti = 0.0;
            for &(k, l) in positions {
                let (sym, half) = (0.5 * (r[k] + r[l]), 0.5 * (r[k] - r[l]));
                anti += 2.0 * half * half;
                r[k] = sym;
                r[l] = sym;
            }
            anti.sqrt() <= ANTISYMMETRIC_ROUNDING * rhs_norm
        }
        None => true,
    };
    refine(op, op32, pre, rhs, z, residual, &options, &mut project)
}

/// Antisymmetric part of a residual, relative to the right-hand side, up to which
/// [`refine_in_single_precision`] with symmetric corrections treats it as rounding. The
/// right-hand side `(Θ V_b Θ)_Z` of a symmetric `b`, computed by two BLAS products, had an
/// antisymmetric part of ~3e-10 of its norm at p = 200 on the paper's data: above half of a
/// 5e-10 target, which made an earlier rule (stop when the antisymmetric part exceeds half the
/// target) hand such solves to double-precision CG.
const ANTISYMMETRIC_ROUNDING: f64 = 1e-6;

/// The residual norm `M u = b` is solved to: `max(rel_tol·‖b‖, abs_tol)`.
fn residual_target(cg: &CgOptions, b: ArrayView1<'_, f64>) -> f64 {
    (cg.rel_tol * b.dot(&b).sqrt()).max(cg.abs_tol)
}

/// Share of the residual target up to which the antisymmetric part of b counts as rounding:
/// below it, the solution's antisymmetric part (`M⁻¹` of b's) is dropped, which adds at most
/// this share of the target to the residual.
const SYMMETRY_SHARE: f64 = 0.01;

/// Node stars precondition the Z system only when Z holds at most this share of the
/// off-diagonal entries (module docs, "Preconditioner of the Z system").
const STAR_MAX_SHARE: f64 = 0.5;

/// Rounds of [`refine_in_single_precision`]: each gains about four digits.
const MAX_REFINEMENTS: usize = 3;

/// Relative residual to which the Z system is first solved with single-precision products.
const SINGLE_PRECISION_TOL: f64 = 1e-4;

/// Iterations allowed to the single-precision phase (its attainable accuracy, ~1e-7·κ, may
/// be above 1e-4 on ill-conditioned systems; double precision continues from there anyway).
const SINGLE_PRECISION_MAX_ITER: usize = 100;

/// The margin (`HypergradOptions::complement_margin`) is only taken while the Z target stays
/// above this: CG's attainable relative residual is about eps·κ, and asking for less stalls
/// it until its iteration budget (in an early session a 1e-8 request made 5e-10 at p = 500
/// and quadrupled the time of the scalar stage; Z targets below 1e-8 now have their own
/// budget, [`Z_TIGHT_MAX_ITER`]).
///
/// At 1e-8 (the floor until the twenty-second session) the scalar stage's last
/// hypergradients, which ask for 1e-8 near λ*, could not take the adapted margin: at
/// p = 1000 their Z solves reached ~1e-8 in 0.35 s, missed the certificate on M by 16–31×,
/// and were finished on M by double-precision products of the large side (1.2–1.4 s each).
/// From 1e-10 the same Z solves take 11 iterations (0.35 s) and pass.
const Z_MARGIN_FLOOR: f64 = 1e-10;

/// Iteration budget of a Z solve whose target is below 1e-8 ([`Z_MARGIN_FLOOR`]): at
/// p = 1000 such solves took 7–11 iterations; a Z system that stalls above its target hands
/// over to the certificate on M after this many.
const Z_TIGHT_MAX_ITER: usize = 300;

/// [`StarPreconditioner`] of the Z system on the ordered entries of the symmetric set Z. On
/// symmetric vectors the ordered system is the unordered pair system with every entry twice:
/// the symmetric part of a residual, `(r_ab + r_ba) / 2`, is preconditioned as one unordered
/// pair and written back to both orientations. Its antisymmetric part (rounding, ~1e-7 of the
/// single-precision products) gets Jacobi (`Θ_aa Θ_bb`): without it the preconditioner is
/// singular there, CG cannot remove that part of the residual, and in matrix tuning on the
/// paper's data it broke down at a relative residual of ~5e-6 (target 5e-8).
struct SymmetricStar {
    star: StarPreconditioner,
    /// The unordered pairs a < b of Z.
    pairs: Vec<(usize, usize)>,
    /// Positions in Z of (a, b) and (b, a), for each unordered pair.
    positions: Vec<(usize, usize)>,
    /// `1 / (Θ_aa Θ_bb)` for each unordered pair.
    inv_diag: Vec<f64>,
    x: std::cell::RefCell<Array1<f64>>,
    y: std::cell::RefCell<Array1<f64>>,
}

impl SymmetricStar {
    fn new(precision: ArrayView2<'_, f64>, zset: &ActiveSet) -> Result<Self, ImplicitError> {
        let mut pairs = Vec::with_capacity(zset.len() / 2);
        let mut positions = Vec::with_capacity(zset.len() / 2);
        let mut inv_diag = Vec::with_capacity(zset.len() / 2);
        for (k, (i, j)) in zset.pairs().enumerate() {
            if i < j {
                let back = zset.position(j, i).expect("Z is a symmetric set");
                pairs.push((i, j));
                positions.push((k, back));
                inv_diag.push(1.0 / (precision[[i, i]] * precision[[j, j]]));
            }
        }
        let star = StarPreconditioner::new(precision, &pairs)?;
        let n = pairs.len();
        Ok(Self {
            star,
            pairs,
            positions,
            inv_diag,
            x: std::cell::RefCell::new(Array1::zeros(n)),
            y: std::cell::RefCell::new(Array1::zeros(n)),
        })
    }
}

impl LinearOperator for SymmetricStar {
    fn dim(&self) -> usize {
        2 * self.positions.len()
    }

    fn apply(&self, r: ArrayView1<'_, f64>, mut out: ndarray::ArrayViewMut1<'_, f64>) {
        let mut x = self.x.borrow_mut();
        let mut y = self.y.borrow_mut();
        for (xv, &(k, l)) in x.iter_mut().zip(&self.positions) {
            *xv = 0.5 * (r[k] + r[l]);
        }
        self.star.apply(x.view(), y.view_mut());
        for ((&yv, &(k, l)), &d) in y.iter().zip(&self.positions).zip(&self.inv_diag) {
            let anti = 0.5 * (r[k] - r[l]) * d;
            out[k] = yv + anti;
            out[l] = yv - anti;
        }
    }
}

/// `v ↦ (A V A)_Z` on symmetric vectors of the ordered entries of Z, by the sparse pair kernel
/// ([`PairSandwich`], in the precision `T`) on the unordered pairs: the symmetric part of `v`
/// is multiplied and the product written to both orientations (an antisymmetric `v` maps to
/// zero; it is only given symmetric vectors, or residuals whose antisymmetric part is
/// rounding).
struct SymmetricPairs<'a, T: Lane> {
    op: PairSandwich<T>,
    positions: &'a [(usize, usize)],
    x: std::cell::RefCell<Array1<f64>>,
    y: std::cell::RefCell<Array1<f64>>,
}

impl<'a, T: Lane> SymmetricPairs<'a, T> {
    fn new(a: ArrayView2<'_, f64>, star: &'a SymmetricStar) -> Result<Self, ImplicitError> {
        let n = star.pairs.len();
        Ok(Self {
            op: PairSandwich::new(a, &star.pairs)?,
            positions: &star.positions,
            x: std::cell::RefCell::new(Array1::zeros(n)),
            y: std::cell::RefCell::new(Array1::zeros(n)),
        })
    }
}

impl<T: Lane> LinearOperator for SymmetricPairs<'_, T> {
    fn dim(&self) -> usize {
        2 * self.positions.len()
    }

    fn apply(&self, v: ArrayView1<'_, f64>, mut out: ndarray::ArrayViewMut1<'_, f64>) {
        let mut x = self.x.borrow_mut();
        let mut y = self.y.borrow_mut();
        for (xv, &(k, l)) in x.iter_mut().zip(self.positions) {
            *xv = 0.5 * (v[k] + v[l]);
        }
        self.op.apply(x.view(), y.view_mut());
        for (&yv, &(k, l)) in y.iter().zip(self.positions) {
            out[k] = yv;
            out[l] = yv;
        }
    }
}

/// `v ↦ (A V A)_Z` with two single-precision BLAS products (the dense kernel of
/// [`RestrictedKronecker`] at half the cost, to relative accuracy ~1e-7·√p).
struct SingleSandwich<'a> {
    a: Array2<f32>,
    set: &'a ActiveSet,
    v: std::cell::RefCell<Array2<f32>>,
    t: std::cell::RefCell<Array2<f32>>,
    full: std::cell::RefCell<Array2<f32>>,
}

impl<'a> SingleSandwich<'a> {
    fn new(a: ArrayView2<'_, f64>, set: &'a ActiveSet) -> Self {
        let p = a.nrows();
        Self {
            a: a.mapv(|x| x as f32),
            set,
            v: std::cell::RefCell::new(Array2::zeros((p, p))),
            t: std::cell::RefCell::new(Array2::zeros((p, p))),
            full: std::cell::RefCell::new(Array2::zeros((p, p))),
        }
    }
}

impl LinearOperator for SingleSandwich<'_> {
    fn dim(&self) -> usize {
        self.set.len()
    }

    fn apply(&self, x: ArrayView1<'_, f64>, mut out: ndarray::ArrayViewMut1<'_, f64>) {
        let mut v = self.v.borrow_mut();
        let mut t = self.t.borrow_mut();
        let mut full = self.full.borrow_mut();
        // V is zero off the set (only its entries are ever written).
        for (k, (i, j)) in self.set.pairs().enumerate() {
            v[[i, j]] = x[k] as f32;
        }
        sandwich(self.a.view(), v.view(), t.view_mut(), full.view_mut());
        for (o, (i, j)) in out.iter_mut().zip(self.set.pairs()) {
            *o = f64::from(full[[i, j]]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::glasso::operator::kronecker_matrix;
    use ho_glasso::{GlassoProblem, GlassoSolver, Penalty};
    use ho_linalg::testing::random_spd;
    use ho_linalg::Cholesky;

    /// `M⁻¹ b` by a dense Cholesky factorization of `M = (W ⊗ W)_{E,E}`.
    fn exact_adjoint(w: &Array2<f64>, active: &ActiveSet, b: &Array1<f64>) -> Array1<f64> {
        let mut exact = b.clone();
        Cholesky::factor(kronecker_matrix(w.view(), active).view())
            .unwrap()
            .solve_inplace(exact.view_mut())
            .unwrap();
        exact
    }

    fn max_abs(v: &Array1<f64>) -> f64 {
        v.iter().fold(0.0_f64, |m, x| m.max(x.abs()))
    }

    fn opts(cg: CgOptions) -> HypergradOptions {
        HypergradOptions {
            cg,
            ..Default::default()
        }
    }

    /// [`solve_by_complement`] with the CG options `cg` (defaults otherwise) and no
    /// preconditioner for a finishing CG on M.
    fn solve(
        theta: &Array2<f64>,
        w: &Array2<f64>,
        active: &ActiveSet,
        b: &Array1<f64>,
        cg: CgOptions,
        warm_u: Option<ArrayView1<'_, f64>>,
    ) -> Result<ComplementSolution, ImplicitError> {
        solve_by_complement(
            theta.view(),
            w.view(),
            active,
            b.view(),
            &opts(cg),
            None,
            warm_u,
        )
    }

    /// The GLASSO solution (Θ, W) of `paper_data(40, n, 0.9, 3)` at 0.02·λ_max (the small
    /// penalties of tuning: far from diagonally dominant), its active set and a symmetric
    /// right-hand side on it, as the gradient of a criterion.
    fn small_penalty_solution(n: usize) -> (Array2<f64>, Array2<f64>, ActiveSet, Array1<f64>) {
        let data = ho_linalg::testing::paper_data(40, n, 0.9, 3);
        let s = ho_linalg::empirical_covariance(data.x.view(), false).unwrap();
        let lam = 0.02 * ho_glasso::lambda_max(s.view());
        let fit = ho_glasso::NewtonCd {
            options: ho_glasso::GlassoOptions {
                tol: 1e-12,
                ..Default::default()
            },
            ..Default::default()
        }
        .solve(&GlassoProblem::new(s.view(), Penalty::scalar(lam)), None)
        .unwrap();
        let active = ActiveSet::from_precision(fit.precision.view());
        let b: Array1<f64> = active
            .pairs()
            .map(|(i, j)| ((3 * i.min(j) + i.max(j)) % 7) as f64 - 3.0)
            .collect();
        (fit.precision, fit.covariance, active, b)
    }

    /// A precision matrix with a given fraction of exact zeros (symmetric, positive definite
    /// by diagonal dominance) and its inverse.
    fn sparse_pd(p: usize, keep: f64, seed: u64) -> (Array2<f64>, Array2<f64>) {
        let a = random_spd(p, 5.0, seed);
        let mut theta = a.clone();
        let mut h = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        for i in 0..p {
            for j in 0..i {
                h ^= h << 13;
                h ^= h >> 7;
                h ^= h << 17;
                if (h % 1000) as f64 / 1000.0 >= keep {
                    theta[[i, j]] = 0.0;
                    theta[[j, i]] = 0.0;
                }
            }
        }
        for i in 0..p {
            let off: f64 = (0..p)
                .filter(|&j| j != i)
                .map(|j| theta[[i, j]].abs())
                .sum();
            theta[[i, i]] = theta[[i, i]].max(off + 0.5);
        }
        let w = Cholesky::factor(theta.view()).unwrap().inverse().unwrap();
        (theta, w)
    }

    /// `solve_by_complement` converges and matches the dense Cholesky solve to 1e-8 (relative
    /// to its largest entry); returns its report.
    fn solve_to_the_dense_answer(
        theta: &Array2<f64>,
        w: &Array2<f64>,
        active: &ActiveSet,
        b: &Array1<f64>,
        options: &HypergradOptions,
    ) -> SolveReport {
        let exact = exact_adjoint(w, active, b);
        let scale = max_abs(&exact);
        let sol = solve_by_complement(
            theta.view(),
            w.view(),
            active,
            b.view(),
            options,
            None,
            None,
        )
        .unwrap();
        assert_eq!(sol.report.status, Status::Converged);
        let err = max_abs(&(&sol.u - &exact));
        assert!(
            err <= 1e-8 * scale,
            "mixed {}, star {}: {err:e} of {scale:e}",
            options.mixed_precision,
            options.star_preconditioner
        );
        sol.report
    }

    #[test]
    fn mixed_precision_matches_the_dense_solve() {
        // Z large enough for dense products, so that the first digits use single precision.
        let (theta, w) = sparse_pd(40, 0.4, 9);
        let active = ActiveSet::from_precision(theta.view());
        let zset = active.complement();
        assert_eq!(
            RestrictedKronecker::new(theta.view(), &zset, Kernel::Auto).kernel(),
            Kernel::Dense
        );
        let b: Array1<f64> = active
            .pairs()
            .map(|(i, j)| ((5 * i + 3 * j) % 13) as f64 - 6.0 + if i == j { 3.0 } else { 0.0 })
            .collect();
        let cg = CgOptions {
            rel_tol: 1e-10,
            abs_tol: 0.0,
            max_iter: 2000,
        };
        for mixed_precision in [true, false] {
            for star_preconditioner in [false, true] {
                let options = HypergradOptions {
                    cg,
                    mixed_precision,
                    star_preconditioner,
                    ..Default::default()
                };
                solve_to_the_dense_answer(&theta, &w, &active, &b, &options);
            }
        }
    }

    #[test]
    fn node_stars_cut_the_iterations_on_a_glasso_solution() {
        // A GLASSO solution at a small penalty (the regime of tuning): far from diagonally
        // dominant, where Jacobi leaves CG many iterations. (On strongly diagonally dominant
        // matrices, as those of `sparse_pd`, Jacobi is already near the best and node stars
        // may take a few more iterations.)
        let (theta, w, active, b) = small_penalty_solution(400);
        assert!(active.complement().len() > 200, "Z too small for the test");
        let iterations: Vec<usize> = [false, true]
            .into_iter()
            .map(|star_preconditioner| {
                let options = HypergradOptions {
                    mixed_precision: false,
                    star_preconditioner,
                    ..Default::default()
                };
                solve_to_the_dense_answer(&theta, &w, &active, &b, &options).n_iter
            })
            .collect();
        // Measured: 43 vs 23.
        assert!(
            5 * iterations[1] <= 3 * iterations[0],
            "Jacobi {} vs node stars {} iterations",
            iterations[0],
            iterations[1]
        );
    }

    #[test]
    fn symmetric_star_is_the_pair_preconditioner_on_both_orientations() {
        // On the ordered entries of Z: the symmetric part of r preconditioned as unordered
        // pairs (StarPreconditioner, checked against its definition in ho-linalg) and written
        // to both orientations, the antisymmetric part divided by Θ_aa Θ_bb.
        let (theta, _) = sparse_pd(25, 0.4, 6);
        let zset = ActiveSet::from_precision(theta.view()).complement();
        let op = SymmetricStar::new(theta.view(), &zset).unwrap();
        let pairs: Vec<(usize, usize)> = zset.pairs().filter(|&(i, j)| i < j).collect();
        let unordered = StarPreconditioner::new(theta.view(), &pairs)
            .unwrap()
            .to_dense();
        let r = Array1::from_shape_fn(zset.len(), |k| ((k * 7) % 5) as f64 - 1.7);
        let mut out = Array1::zeros(zset.len());
        op.apply(r.view(), out.view_mut());
        let sym: Array1<f64> = pairs
            .iter()
            .map(|&(i, j)| {
                let (k, l) = (zset.position(i, j).unwrap(), zset.position(j, i).unwrap());
                0.5 * (r[k] + r[l])
            })
            .collect();
        let z = unordered.dot(&sym);
        let zmax = max_abs(&z);
        for (q, &(i, j)) in pairs.iter().enumerate() {
            let (k, l) = (zset.position(i, j).unwrap(), zset.position(j, i).unwrap());
            let anti = 0.5 * (r[k] - r[l]) / (theta[[i, i]] * theta[[j, j]]);
            for (got, want) in [(out[k], z[q] + anti), (out[l], z[q] - anti)] {
                // The star blocks are single precision.
                assert!(
                    (got - want).abs() <= 1e-5 * zmax,
                    "({i}, {j}): {got} vs {want}"
                );
            }
        }
    }

    /// A preconditioner that counts its applications.
    struct Counting<'a> {
        inner: &'a dyn LinearOperator,
        calls: std::cell::Cell<usize>,
    }

    impl LinearOperator for Counting<'_> {
        fn dim(&self) -> usize {
            self.inner.dim()
        }
        fn apply(&self, x: ArrayView1<'_, f64>, out: ndarray::ArrayViewMut1<'_, f64>) {
            self.calls.set(self.calls.get() + 1);
            self.inner.apply(x, out);
        }
    }

    #[test]
    fn a_failed_certificate_is_refined_in_single_precision_before_any_double_cg_on_m() {
        // A GLASSO solution at a small penalty, and a u off the exact adjoint by ~1e-6: the
        // certificate at 1e-12 fails; the refinement with single-precision products must meet
        // it without double-precision CG on M (which, without mixed precision, has to run).
        let (theta, w, active, b) = small_penalty_solution(100);
        let exact = exact_adjoint(&w, &active, &b);
        let scale = max_abs(&exact);
        let kron = RestrictedKronecker::new(theta.view(), &active, Kernel::Dense);
        let cg = CgOptions {
            rel_tol: 1e-12,
            abs_tol: 0.0,
            max_iter: 500,
        };
        let mut double_cg_on_m = Vec::new();
        let certify =
            |u: &mut Array1<f64>, options: &HypergradOptions, m: Option<&dyn LinearOperator>| {
                certify_on_m(theta.view(), w.view(), &active, b.view(), u, options, m)
                    .unwrap()
                    .0
            };
        for mixed_precision in [false, true] {
            let counting = Counting {
                inner: &kron,
                calls: std::cell::Cell::new(0),
            };
            let options = HypergradOptions {
                cg,
                mixed_precision,
                ..Default::default()
            };
            let mut u = exact.mapv(|x| x + 1e-6 * scale * (x * 7.3).sin());
            let report = certify(&mut u, &options, Some(&counting));
            assert_eq!(report.status, Status::Converged);
            assert!(report.n_iter > 0);
            assert!(report.residual_norm <= 1e-12 * b.dot(&b).sqrt());
            let err = max_abs(&(&u - &exact));
            assert!(err <= 1e-9 * scale, "mixed {mixed_precision}: {err:e}");
            double_cg_on_m.push(counting.calls.get());
        }
        assert!(double_cg_on_m[0] > 0);
        assert_eq!(
            double_cg_on_m[1], 0,
            "double-precision CG ran after the refinement"
        );
        // An exact u passes at once.
        let mut u = exact.clone();
        let options = HypergradOptions {
            cg: CgOptions {
                rel_tol: 1e-9,
                ..cg
            },
            ..Default::default()
        };
        let report = certify(&mut u, &options, None);
        assert_eq!(report.n_iter, 0);
        assert_eq!(u, exact);
    }

    #[test]
    fn single_precision_sandwich_matches_the_double_one() {
        let (theta, _) = sparse_pd(30, 0.5, 4);
        let active = ActiveSet::from_precision(theta.view());
        let zset = active.complement();
        let x = Array1::from_shape_fn(zset.len(), |k| (k as f64 * 0.37).cos());
        let (mut y64, mut y32) = (Array1::zeros(zset.len()), Array1::zeros(zset.len()));
        RestrictedKronecker::new(theta.view(), &zset, Kernel::Dense)
            .apply(x.view(), y64.view_mut());
        SingleSandwich::new(theta.view(), &zset).apply(x.view(), y32.view_mut());
        let scale = max_abs(&y64);
        let err = max_abs(&(&y64 - &y32));
        assert!(err <= 1e-5 * scale && err > 0.0, "{err:e} of {scale:e}");
    }

    #[test]
    fn single_precision_refinement_reaches_a_double_precision_residual() {
        let (theta, _) = sparse_pd(40, 0.4, 9);
        let active = ActiveSet::from_precision(theta.view());
        let zset = active.complement();
        let op = RestrictedKronecker::new(theta.view(), &zset, Kernel::Dense);
        let pre = jacobi_preconditioner(theta.view(), &zset).unwrap();
        let rhs = Array1::from_shape_fn(zset.len(), |k| ((7 * k) % 11) as f64 - 5.0);
        let residual = |z: &Array1<f64>| {
            let mut r = Array1::zeros(z.len());
            op.apply(z.view(), r.view_mut());
            let res = &rhs - &r;
            res.dot(&res).sqrt() / rhs.dot(&rhs).sqrt()
        };
        // 1e-9 is beyond one single-precision solve (its products are exact to ~1e-7).
        for (rel_tol, max_iter) in [(1e-9, 500), (1e-3, 500)] {
            let target = CgOptions {
                rel_tol,
                abs_tol: 0.0,
                max_iter,
            };
            let mut z = Array1::zeros(zset.len());
            let op32 = SingleSandwich::new(theta.view(), &zset);
            let Refinement {
                n_iter, converged, ..
            } = refine_in_single_precision(
                &op,
                &op32,
                None,
                &pre,
                rhs.view(),
                &mut z,
                None,
                &target,
            );
            let rel = residual(&z);
            assert!(
                converged && n_iter > 0,
                "tol {rel_tol:e}: {n_iter} iterations, {rel:e}"
            );
            assert!(rel <= rel_tol, "tol {rel_tol:e}: residual {rel:e}");
        }
        // One round cannot reach 1e-9: the rounds are what gets there.
        let mut z = Array1::zeros(zset.len());
        let op32 = SingleSandwich::new(theta.view(), &zset);
        let once = CgOptions {
            rel_tol: SINGLE_PRECISION_TOL,
            abs_tol: 0.0,
            max_iter: 500,
        };
        pcg(&op32, Some(&pre), rhs.view(), z.view_mut(), &once).unwrap();
        assert!(residual(&z) > 1e-9, "{:e}", residual(&z));
    }

    #[test]
    fn symmetric_refinement_with_the_sparse_pair_kernel_reaches_double_precision() {
        // Z small enough for the sparse kernel; a symmetric right-hand side.
        let (theta, _) = sparse_pd(60, 0.85, 5);
        let zset = ActiveSet::from_precision(theta.view()).complement();
        let op = RestrictedKronecker::new(theta.view(), &zset, Kernel::Auto);
        assert_eq!(op.kernel(), Kernel::Sparse);
        let star = SymmetricStar::new(theta.view(), &zset).unwrap();
        let op32 = SymmetricPairs::<f32>::new(theta.view(), &star).unwrap();
        let rhs: Array1<f64> = zset
            .pairs()
            .map(|(i, j)| ((3 * i.min(j) + 5 * i.max(j)) % 11) as f64 - 5.0)
            .collect();
        // The single-precision products equal the double ones on symmetric vectors.
        let (mut y64, mut y32) = (Array1::zeros(zset.len()), Array1::zeros(zset.len()));
        op.apply(rhs.view(), y64.view_mut());
        op32.apply(rhs.view(), y32.view_mut());
        let err = max_abs(&(&y64 - &y32));
        assert!(err <= 1e-5 * max_abs(&y64) && err > 0.0, "{err:e}");
        let target = CgOptions {
            rel_tol: 1e-9,
            abs_tol: 0.0,
            max_iter: 500,
        };
        let refine = |rhs: &Array1<f64>| {
            let mut z = Array1::zeros(zset.len());
            let Refinement {
                n_iter, converged, ..
            } = refine_in_single_precision(
                &op,
                &op32,
                Some(&star.positions),
                &star,
                rhs.view(),
                &mut z,
                None,
                &target,
            );
            (z, n_iter, converged)
        };
        let (z, n_iter, converged) = refine(&rhs);
        let mut r = Array1::zeros(z.len());
        op.apply(z.view(), r.view_mut());
        let rel = max_abs(&(&rhs - &r)) / max_abs(&rhs);
        assert!(converged && n_iter > 0, "{n_iter} iterations, {rel:e}");
        assert!(rel <= 1e-9, "residual {rel:e}");
        // Rounding-sized antisymmetric parts (here ~3e-9 of the norm, above half the target)
        // are left alone...
        let nudged: Array1<f64> = zset
            .pairs()
            .zip(rhs.iter())
            .map(|((i, j), &v)| v + if i < j { 1e-8 } else { -1e-8 })
            .collect();
        let (_, _, converged) = refine(&nudged);
        assert!(converged);
        // ...but an antisymmetric right-hand side cannot be refined by symmetric corrections.
        let anti: Array1<f64> = zset
            .pairs()
            .map(|(i, j)| if i < j { 1.0 } else { -1.0 })
            .collect();
        let (_, n_iter, converged) = refine(&anti);
        assert!(!converged && n_iter == 0);
    }

    #[test]
    fn matches_the_dense_solve_at_every_density() {
        for &(p, keep, seed) in &[
            (8, 0.0, 1),
            (12, 0.3, 2),
            (15, 0.7, 3),
            (20, 0.95, 4),
            (9, 1.0, 5),
        ] {
            let (theta, w) = sparse_pd(p, keep, seed);
            let active = ActiveSet::from_precision(theta.view());
            let b: Array1<f64> = active
                .pairs()
                .map(|(i, j)| ((3 * i + 7 * j) % 11) as f64 - 5.0 + if i == j { 2.0 } else { 0.0 })
                .collect();
            let exact = exact_adjoint(&w, &active, &b);
            let cg = CgOptions {
                rel_tol: 1e-12,
                abs_tol: 0.0,
                max_iter: 1000,
            };
            let sol = solve(&theta, &w, &active, &b, cg, None).unwrap();
            let err = max_abs(&(&sol.u - &exact));
            let scale = max_abs(&exact);
            assert!(
                err <= 1e-8 * scale,
                "p {p} keep {keep}: error {err:e}, scale {scale:e}"
            );
            assert_eq!(sol.report.status, Status::Converged);
            assert!(sol.report.residual_norm <= 1e-12 * b.dot(&b).sqrt());
            if keep >= 1.0 {
                // E full: Z empty, u = (Θ V_b Θ)_E exactly, no iteration
                assert!(active.is_full());
                assert_eq!(sol.report.n_iter, 0);
            }
        }
    }

    #[test]
    fn an_inaccurate_z_solve_is_finished_on_m() {
        let (theta, w) = sparse_pd(14, 0.5, 9);
        let active = ActiveSet::from_precision(theta.view());
        let b = Array1::from_elem(active.len(), 1.0);
        // one CG iteration on Z cannot reach 1e-12: the CG on M must finish the job
        let loose = CgOptions {
            rel_tol: 1e-12,
            abs_tol: 0.0,
            max_iter: 1,
        };
        let r = solve(&theta, &w, &active, &b, loose, None);
        // the finishing CG shares the budget of 1 iteration and fails loudly, not silently
        assert!(matches!(r, Err(ImplicitError::LinearSolveFailed { .. })));
        let enough = CgOptions {
            max_iter: 500,
            ..loose
        };
        let sol = solve(&theta, &w, &active, &b, enough, None).unwrap();
        assert!(sol.report.residual_norm <= 1e-12 * b.dot(&b).sqrt());
    }

    #[test]
    fn a_warm_start_from_the_solution_needs_almost_no_iteration() {
        let (theta, w) = sparse_pd(16, 0.6, 11);
        let active = ActiveSet::from_precision(theta.view());
        let b: Array1<f64> = (0..active.len()).map(|k| (k % 5) as f64 - 2.0).collect();
        let cg = CgOptions {
            rel_tol: 1e-10,
            abs_tol: 0.0,
            max_iter: 1000,
        };
        let cold = solve(&theta, &w, &active, &b, cg, None).unwrap();
        let warm = solve(&theta, &w, &active, &b, cg, Some(cold.u.view())).unwrap();
        assert!(cold.report.n_iter >= 5, "{}", cold.report.n_iter);
        assert!(warm.report.n_iter <= 2, "{}", warm.report.n_iter);
        let diff = max_abs(&(&warm.u - &cold.u));
        assert!(diff <= 1e-8 * max_abs(&cold.u));
    }

    #[test]
    fn a_loose_solve_warm_started_in_single_precision_needs_almost_no_iteration() {
        // At 1e-4 the Z system is solved to 5e-6 and its warm start is computed in single
        // precision (SINGLE_START_TOL): from the solution, CG still has (almost) nothing to do.
        let (theta, w) = sparse_pd(16, 0.6, 11);
        let active = ActiveSet::from_precision(theta.view());
        let b: Array1<f64> = (0..active.len()).map(|k| (k % 5) as f64 - 2.0).collect();
        let exact = exact_adjoint(&w, &active, &b);
        let cg = CgOptions {
            rel_tol: 1e-4,
            abs_tol: 0.0,
            max_iter: 1000,
        };
        let cold = solve(&theta, &w, &active, &b, cg, None).unwrap();
        let warm = solve(&theta, &w, &active, &b, cg, Some(exact.view())).unwrap();
        assert!(cold.report.n_iter >= 3, "{}", cold.report.n_iter);
        assert!(warm.report.n_iter <= 1, "{}", warm.report.n_iter);
        assert!(warm.report.residual_norm <= 1e-4 * b.dot(&b).sqrt());
        assert!(max_abs(&(&warm.u - &exact)) <= 1e-5 * max_abs(&exact));
    }

    #[test]
    fn an_asymmetric_warm_start_gives_the_symmetric_answer_in_single_precision() {
        // In matrix tuning the previous adjoint, finished on M by non-symmetric single-precision
        // products, carried an antisymmetric part of ~1e-7 that grew along the calls (to
        // ~5e-6 at p = 1000); through the warm start it made the Z residual non-symmetric,
        // which ended the symmetric single-precision refinement and left the whole solve to
        // double-precision CG. The warm start and the answer are symmetrized instead.
        let (theta, w, active, b) = small_penalty_solution(400);
        assert!(active.antisymmetric_norm(b.view()) == 0.0);
        let exact = exact_adjoint(&w, &active, &b);
        // A symmetric warm start 1e-3 off the answer, and the same with an antisymmetric part.
        let near: Array1<f64> = exact
            .iter()
            .zip(active.pairs())
            .map(|(&x, (i, j))| x * (1.0 + 1e-3 * (((i + j) % 7) as f64 - 3.0)))
            .collect();
        let skew: Array1<f64> = near
            .iter()
            .zip(active.pairs())
            .map(|(&x, (i, j))| x + 1e-5 * max_abs(&exact) * (i as f64 - j as f64).signum())
            .collect();
        assert!(active.antisymmetric_norm(skew.view()) > 1e-6 * near.dot(&near).sqrt());
        let cg = CgOptions {
            rel_tol: 1e-8,
            abs_tol: 0.0,
            max_iter: 1000,
        };
        let from_near = solve(&theta, &w, &active, &b, cg, Some(near.view())).unwrap();
        let from_skew = solve(&theta, &w, &active, &b, cg, Some(skew.view())).unwrap();
        // The same path: the symmetric refinement, not double-precision CG after it broke off.
        assert_eq!(from_skew.report.n_iter, from_near.report.n_iter);
        for sol in [&from_near, &from_skew] {
            assert!(max_abs(&(&sol.u - &exact)) <= 1e-6 * max_abs(&exact));
            // Exactly symmetric when the certificate passed (a refinement on M would add
            // rounding-level antisymmetric corrections).
            assert!(sol.certificate_ratio <= 1.0, "{}", sol.certificate_ratio);
            let anti = active.antisymmetric_norm(sol.u.view());
            assert!(anti == 0.0, "{anti:e}");
        }
    }

    #[test]
    fn symmetrize_and_antisymmetric_norm_on_a_support() {
        let theta = ndarray::array![[2.0, 0.5, 0.0], [0.5, 2.0, -0.3], [0.0, -0.3, 2.0]];
        let active = ActiveSet::from_precision(theta.view());
        // Row-major: (0,0) (0,1) (1,0) (1,1) (1,2) (2,1) (2,2).
        let mut v = ndarray::array![1.0, 2.0, 4.0, 1.0, -1.0, 1.0, 3.0];
        let anti = (2.0_f64 * 1.0 + 2.0 * 1.0).sqrt();
        assert!((active.antisymmetric_norm(v.view()) - anti).abs() < 1e-15);
        active.symmetrize(v.view_mut());
        assert_eq!(v, ndarray::array![1.0, 3.0, 3.0, 1.0, 0.0, 0.0, 3.0]);
        assert!(active.antisymmetric_norm(v.view()) == 0.0);
    }
}
