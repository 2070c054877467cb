//! `ObnCg`: orthant-based Newton with conjugate gradient (Oztoprak, Nocedal, Rennie, Olsen,
//! NeurIPS 2012), the dense-regime solver.
//!
//! # Algorithm
//! At the iterate Θ (W = Θ⁻¹, G = S − W), with the minimum-norm subgradient
//!
//! ```text
//! g_kl = G_kl + Λ_kl sign(Θ_kl)        if Θ_kl ≠ 0
//! g_kl = ST(G_kl, Λ_kl)                if Θ_kl = 0
//! ```
//!
//! the free set `F = {Θ_kl ≠ 0} ∪ {|G_kl| > Λ_kl}` and the orthant `z = sign(Θ)` (or `−sign(g)`
//! where Θ_kl = 0), the Newton direction solves, on F,
//!
//! ```text
//! (W ⊗ W)_{F,F} d = −g_F          i.e.  (W D W)_F = −g_F
//! ```
//!
//! to a relative residual `η = min(0.5, (‖g‖_F / (1 + ‖S‖_F))^½)` (inexact Newton,
//! superlinear), in one of two ways:
//!
//! - **on F** (most pairs outside F, the sparse regime): preconditioned CG, each product
//!   costing two dense matrix products (BLAS), preconditioned by `V ↦ (Θ V Θ)_F`, the exact
//!   inverse when F is full;
//! - **through the complement** Z of F (at most `complement_fraction` of the off-diagonal pairs
//!   outside F, the dense regime). With A = W ⊗ W and A⁻¹ = Θ ⊗ Θ, the inverse of the principal
//!   block is `(A_FF)⁻¹ = (Θ⊗Θ)_FF − (Θ⊗Θ)_FZ ((Θ⊗Θ)_ZZ)⁻¹ (Θ⊗Θ)_ZF`, so with R = −g on F:
//!
//!   ```text
//!   C = Θ R Θ,   solve (Θ Y Θ)_Z = C_Z  (Y supported on Z),   D = (Θ (R − Y) Θ)_F
//!   ```
//!
//!   two dense products and a system on the |Z| pairs — the dual Hessian block that DualPn
//!   solves (sparse kernel when Z is small, Jacobi-preconditioned CG to 0.1·η). At p = 500,
//!   0.01·λ_max (Z ≈ 47 % of the pairs) a cold solve took 8.5 s instead of 16.5 s, at
//!   0.001·λ_max 13.7 s instead of 88 s; in the sparse regime (0.1·λ_max, Z ≈ 90 %) CG on F
//!   stays faster (0.63 vs 0.92 s), hence the default fraction 0.5.
//!
//! The step is projected on the orthant: `Θ⁺ = P_z(Θ + α D)` (entries leaving their orthant
//! are set to 0), α = 1, ½, …, accepted when Θ⁺ ≻ 0 (Cholesky) and
//! `Φ(Θ⁺) ≤ Φ(Θ) + σ ⟨g, Θ⁺ − Θ⟩` up to the rounding of Φ (16 ε (|Φ| + |⟨S, Θ⁺⟩|)). When
//! the predicted change of Φ for the full step is itself below that rounding (in absolute
//! value: a predicted increase is never taken), Φ cannot judge the step and the full step is
//! taken (if Θ⁺ ≻ 0): near the solution of large problems the computed change of Φ is noise,
//! and backtracking on it stalled the polish of DualPn at p = 500 for 24 steps (38 s). When
//! the projected full step clipped entries and is rejected, the point where only the clipped
//! nonzero entries are set to zero is tried before backtracking: entries of size ~1e-12 on the
//! wrong side of zero otherwise stalled the polish at p = 1000 (every projected step predicted
//! an increase outside them and was cut to α ≈ 1e-8); at zero, the next step picks their
//! orthant from the soft-thresholded gradient. W is recomputed from the accepted factor.
//!
//! # Stopping
//! Relative duality gap ≤ `tol` and KKT residual ≤ `kkt_tol`, checked before each step, or
//! `max_iter` Newton steps.
//!
//! # Errors
//! [`GlassoError::NumericalFailure`] when no step along the direction is accepted.
//!
//! # References
//! F. Oztoprak, J. Nocedal, S. Rennie, P. A. Olsen, *Newton-like methods for sparse inverse
//! covariance estimation*, NeurIPS 2012.

use crate::dual_pn::PairSystem;
use crate::fit::Certificate;
use crate::newton_cd::Iterate;
use crate::problem::{frobenius_inner, penalty_value};
use crate::{BlockOutcome, BlockSolver, BlockStart, GlassoError, GlassoOptions};
use ho_linalg::prox::soft_threshold_scalar;
use ho_linalg::{pcg, sandwich, CgOptions, Cholesky, LinearOperator};
use ndarray::linalg::general_mat_mul;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2, Zip};
use std::cell::{Cell, RefCell};

/// Relative residual of the complement's system, as a fraction of the forcing term.
const COMPLEMENT_ETA: f64 = 0.1;

/// Orthant-based Newton–CG (the dense-regime solver).
///
/// | Name | Default | Meaning | Range |
/// |---|---|---|---|
/// | `options` | [`GlassoOptions::default`] | tolerance, Newton-step budget, screening | |
/// | `max_cg_iter` | 50 | CG iterations per Newton step (on F) | ≥ 1 |
/// | `complement_fraction` | 0.5 | the Newton step goes through the complement of F when at most this fraction of the off-diagonal pairs is outside F | [0, 1]; < 0 never |
#[derive(Debug, Clone)]
pub struct ObnCg {
    /// Shared options.
    pub options: GlassoOptions,
    /// CG iterations per Newton step.
    pub max_cg_iter: usize,
    /// Largest fraction of off-diagonal pairs fixed at zero (outside F) for which the Newton
    /// system is solved through the complement of F.
    pub complement_fraction: f64,
}

impl Default for ObnCg {
    fn default() -> Self {
        Self {
            options: GlassoOptions::default(),
            max_cg_iter: 50,
            complement_fraction: 0.5,
        }
    }
}

/// `V ↦ (A V A) ⊙ mask` on p × p matrices flattened row-major (A = W for the Hessian, Θ for
/// the preconditioner). Two BLAS products per application, no allocation.
pub(crate) struct MaskedSandwich<'a> {
    pub a: ArrayView2<'a, f64>,
    pub mask: ArrayView2<'a, f64>,
    pub scratch: RefCell<Array2<f64>>,
}

impl<'a> MaskedSandwich<'a> {
    pub(crate) fn new(a: ArrayView2<'a, f64>, mask: ArrayView2<'a, f64>) -> Self {
        let p = a.nrows();
        Self {
            a,
            mask,
            scratch: RefCell::new(Array2::zeros((p, p))),
        }
    }
}

impl LinearOperator for MaskedSandwich<'_> {
    fn dim(&self) -> usize {
        self.a.len()
    }

    fn apply(&self, x: ArrayView1<'_, f64>, out: ArrayViewMut1<'_, f64>) {
        let p = self.a.nrows();
        let v = x.into_shape_with_order((p, p)).expect("p² vector");
        let mut out = out.into_shape_with_order((p, p)).expect("p² vector");
        let mut t = self.scratch.borrow_mut();
        general_mat_mul(1.0, &self.a, &v, 0.0, &mut *t);
        general_mat_mul(1.0, &*t, &self.a, 0.0, &mut out);
        Zip::from(&mut out)
            .and(&self.mask)
            .for_each(|o, &m| *o *= m);
    }
}

impl BlockSolver for ObnCg {
    fn name(&self) -> &'static str {
        "obn-cg"
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
        if self.complement_fraction.is_nan() {
            return Err(GlassoError::InvalidOption {
                name: "complement_fraction",
                value: self.complement_fraction,
                range: "[0, 1], or < 0 for never",
            });
        }
        let p = s.nrows();
        let s_norm = frobenius_norm(s);
        let mut it = Iterate::from_start(start)?;
        let mut g = Array2::<f64>::zeros((p, p));
        let mut z = Array2::<f64>::zeros((p, p));
        let mut mask = Array2::<f64>::zeros((p, p));
        let mut neg_g = Array2::<f64>::zeros((p, p));
        let mut d = Array2::<f64>::zeros((p, p));
        let mut fixed = Vec::new();
        let mut scratch = (Array2::<f64>::zeros((p, p)), Array2::<f64>::zeros((p, p)));
        let single_ok = Cell::new(true);
        let mut n_iter = 0;
        loop {
            let cert = Certificate::of(
                it.theta.view(),
                it.logdet,
                it.w.view(),
                s,
                lam,
                &self.options,
            );
            if cert.converged(&self.options) || n_iter >= self.options.max_iter {
                return Ok(cert.outcome(it.theta, it.w, s, lam, n_iter));
            }
            let f = cert.objective;
            // pseudo-gradient, free set, orthant
            for i in 0..p {
                for j in 0..p {
                    let (t, l) = (it.theta[[i, j]], lam[[i, j]]);
                    let grad = s[[i, j]] - it.w[[i, j]];
                    if t != 0.0 {
                        z[[i, j]] = t.signum();
                        g[[i, j]] = grad + l * t.signum();
                        mask[[i, j]] = 1.0;
                    } else {
                        let gg = soft_threshold_scalar(grad, l);
                        g[[i, j]] = gg;
                        z[[i, j]] = -gg.signum();
                        mask[[i, j]] = if gg != 0.0 { 1.0 } else { 0.0 };
                    }
                }
            }
            let g_norm = frobenius_norm(g.view());
            Zip::from(&mut neg_g).and(&g).for_each(|n, &v| *n = -v);
            let eta = (g_norm / (1.0 + s_norm)).sqrt().clamp(1e-12, 0.5);
            fixed_pairs(mask.view(), &mut fixed);
            if fixed.len() as f64 <= self.complement_fraction * (p * (p - 1) / 2) as f64 {
                let sys = NewtonSystem {
                    neg_g: neg_g.view(),
                    mask: mask.view(),
                    fixed: &fixed,
                    single_ok: &single_ok,
                };
                self.direction_by_complement(&it, &sys, eta, &mut scratch, d.view_mut())?;
            } else {
                self.direction_by_cg(&it, &neg_g, mask.view(), eta, d.view_mut());
            }
            // The BLAS products leave D symmetric only to rounding; Θ must stay exactly symmetric.
            ho_linalg::symmetrize_inplace(d.view_mut());
            n_iter += 1;
            let d_max = d.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
            let t_max = it.theta.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
            if d_max <= 4.0 * f64::EPSILON * t_max {
                return Ok(cert.outcome(it.theta, it.w, s, lam, n_iter));
            }
            match orthant_line_search(&it, d.view(), z.view(), mask.view(), g.view(), f, s, lam)? {
                Some(next) => it = next,
                None => {
                    return Err(GlassoError::NumericalFailure {
                        solver: "obn-cg",
                        iteration: n_iter,
                        reason: "line search found no positive definite decrease",
                    })
                }
            }
        }
    }
}

impl ObnCg {
    /// The Newton direction by CG on F: `(W D W)_F = −g_F`, preconditioned by
    /// `V ↦ (Θ V Θ)_F`; on a breakdown, the preconditioned gradient.
    fn direction_by_cg(
        &self,
        it: &Iterate,
        neg_g: &Array2<f64>,
        mask: ArrayView2<'_, f64>,
        eta: f64,
        mut d: ArrayViewMut2<'_, f64>,
    ) {
        let p = it.theta.nrows();
        let hess = MaskedSandwich::new(it.w.view(), mask);
        let pre = MaskedSandwich::new(it.theta.view(), mask);
        d.fill(0.0);
        let mut flat_d = d.into_shape_with_order(p * p).expect("contiguous");
        let cg = pcg(
            &hess,
            Some(&pre),
            flat(neg_g, p),
            flat_d.view_mut(),
            &CgOptions {
                rel_tol: eta,
                abs_tol: 0.0,
                max_iter: self.max_cg_iter,
            },
        );
        if cg.is_err() {
            // Breakdown (rounding near the optimum): use the preconditioned gradient.
            pre.apply(flat(neg_g, p), flat_d);
        }
    }

    /// The same Newton direction through the complement Z of F (module docs):
    /// `C = Θ R Θ` with R = −g on F, solve `(Θ Y Θ)_Z = C_Z` for Y on Z, then
    /// `D = (Θ (R − Y) Θ)_F`.
    ///
    /// D is a difference, and near the solution its two terms can nearly cancel: the Z
    /// solve's error (relative residual 0.1·η) then becomes a large relative error of D. When
    /// ‖D‖ < 0.1·‖C‖ the Newton residual `‖(W D W)_F + g_F‖` is computed (two products); while
    /// it is above η‖g_F‖, D is recomputed with the Z system solved tighter by the factor
    /// still missing (halved), at most [`COMPLEMENT_RESOLVES`] times. (Correcting D by the same
    /// formula on the residual, iterative refinement, diverged in a test where the
    /// amplification exceeded 1/(0.1·η).)
    fn direction_by_complement(
        &self,
        it: &Iterate,
        sys: &NewtonSystem<'_>,
        eta: f64,
        scratch: &mut (Array2<f64>, Array2<f64>),
        mut d: ArrayViewMut2<'_, f64>,
    ) -> Result<(), GlassoError> {
        let NewtonSystem {
            neg_g, mask, fixed, ..
        } = *sys;
        let target = eta * frobenius_norm(neg_g);
        let mut z_eta = COMPLEMENT_ETA * eta;
        for pass in 0..=COMPLEMENT_RESOLVES {
            let c_norm = sys.complement_pass(it.theta.view(), z_eta, scratch, d.view_mut())?;
            let cancelled = frobenius_norm(d.view()) < COMPLEMENT_ETA * c_norm;
            if fixed.is_empty()
                || (pass == 0 && !cancelled)
                || pass == COMPLEMENT_RESOLVES
                || z_eta <= MIN_COMPLEMENT_ETA
            {
                break;
            }
            // The Newton residual −g_F − (W D W)_F, in the scratch the next pass overwrites.
            let (t, r) = &mut *scratch;
            sandwich(it.w.view(), d.view(), t.view_mut(), r.view_mut());
            Zip::from(&mut *r)
                .and(neg_g)
                .and(mask)
                .for_each(|ri, &ng, &m| *ri = (ng - *ri) * m);
            let r_norm = frobenius_norm(r.view());
            if !(r_norm > target) {
                break;
            }
            z_eta = (0.5 * z_eta * target / r_norm).max(MIN_COMPLEMENT_ETA);
        }
        Ok(())
    }
}

/// The Newton system `(W D W)_F = −g_F` of an ObnCg step: `−g` (zero off F), the mask of F
/// and the off-diagonal pairs outside F.
#[derive(Clone, Copy)]
struct NewtonSystem<'a> {
    neg_g: ArrayView2<'a, f64>,
    mask: ArrayView2<'a, f64>,
    fixed: &'a [(usize, usize)],
    /// Whether the pair systems may still use single-precision products.
    single_ok: &'a Cell<bool>,
}

impl NewtonSystem<'_> {
    /// One pass of the complement formula, the Z system solved to the relative residual
    /// `z_eta`; returns ‖C‖ = ‖Θ R Θ‖, the scale of D's error.
    fn complement_pass(
        &self,
        theta: ArrayView2<'_, f64>,
        z_eta: f64,
        scratch: &mut (Array2<f64>, Array2<f64>),
        mut d: ArrayViewMut2<'_, f64>,
    ) -> Result<f64, GlassoError> {
        let NewtonSystem {
            neg_g,
            mask,
            fixed,
            single_ok,
        } = *self;
        let (t, v) = scratch;
        sandwich(theta, neg_g, t.view_mut(), d.view_mut());
        let c_norm = frobenius_norm(d.view());
        if !fixed.is_empty() {
            let rhs: Array1<f64> = fixed.iter().map(|&(i, j)| d[[i, j]]).collect();
            let y = PairSystem::default().solve(theta, fixed, rhs, z_eta, single_ok, None)?;
            v.assign(&neg_g);
            for (&(i, j), &yk) in fixed.iter().zip(y.iter()) {
                v[[i, j]] = -yk;
                v[[j, i]] = -yk;
            }
            sandwich(theta, v.view(), t.view_mut(), d.view_mut());
        }
        Zip::from(&mut d).and(mask).for_each(|o, &m| *o *= m);
        Ok(c_norm)
    }
}

/// Recomputations of a complement direction whose terms cancelled (see
/// `ObnCg::direction_by_complement`).
const COMPLEMENT_RESOLVES: usize = 3;

/// Tightest relative residual asked of the complement's Z system (CG's attainable accuracy
/// is about eps·κ).
const MIN_COMPLEMENT_ETA: f64 = 1e-13;

fn frobenius_norm(a: ArrayView2<'_, f64>) -> f64 {
    frobenius_inner(a, a).sqrt()
}

/// The off-diagonal pairs k < l outside the free set (mask 0).
fn fixed_pairs(mask: ArrayView2<'_, f64>, fixed: &mut Vec<(usize, usize)>) {
    let p = mask.nrows();
    fixed.clear();
    for i in 0..p {
        for j in i + 1..p {
            if mask[[i, j]] == 0.0 {
                fixed.push((i, j));
            }
        }
    }
}

fn flat(a: &Array2<f64>, p: usize) -> ArrayView1<'_, f64> {
    a.view().into_shape_with_order(p * p).expect("contiguous")
}

/// Backtracking along `d` with the orthant projection; `None` if no step is accepted.
///
/// When the projected full step clips entries (the Newton step wants them across zero) and is
/// rejected, the point where only those entries are set to zero is tried once before
/// backtracking. Measured at p = 1000 (λ ≈ 4e-5·λ_max, tuning): twelve entries of size
/// ~1e-12 on the wrong side of zero were clipped back at every step, every projected step
/// predicted an increase of Φ outside those entries, the steps were cut to α ≈ 1e-8, and the
/// polish stalled for its whole budget. Set to zero, such entries get their orthant from the
/// soft-thresholded gradient at the next step.
#[allow(clippy::too_many_arguments)]
fn orthant_line_search(
    it: &Iterate,
    d: ArrayView2<'_, f64>,
    z: ArrayView2<'_, f64>,
    mask: ArrayView2<'_, f64>,
    g: ArrayView2<'_, f64>,
    f: f64,
    s: ArrayView2<'_, f64>,
    lam: ArrayView2<'_, f64>,
) -> Result<Option<Iterate>, GlassoError> {
    let p = it.theta.nrows();
    let mut cand = Array2::<f64>::zeros((p, p));
    let mut alpha = 1.0;
    for trial in 0..50 {
        let mut decrease = 0.0;
        let mut clipped = false;
        Zip::from(&mut cand)
            .and(&it.theta)
            .and(d)
            .and(z)
            .and(mask)
            .and(g)
            .for_each(|c, &t, &dd, &zz, &m, &gg| {
                let mut v = t + alpha * dd * m;
                if m != 0.0 && v * zz < 0.0 {
                    v = 0.0;
                    clipped = true;
                }
                decrease += gg * (v - t);
                *c = v;
            });
        // A full step whose predicted change of Φ is below the rounding of Φ (in absolute
        // value) cannot be judged by Φ (near the solution of large problems its computed
        // change is noise, and backtracking on noise stalled the convergence at p = 500): it
        // is taken as long as Θ⁺ ≻ 0; the certificate at the next iterate judges it.
        if let Some(next) = accept(&cand, decrease, trial == 0, f, s, lam)? {
            return Ok(Some(next));
        }
        if trial == 0 && clipped {
            // Only the clipped entries move, to zero: for an entry on the wrong side of zero
            // this is a descent move at first order (its pseudo-gradient has its sign), and
            // from zero the next step picks its orthant from the soft-thresholded gradient.
            let (mut decrease, mut snapped) = (0.0, false);
            Zip::from(&mut cand)
                .and(&it.theta)
                .and(d)
                .and(z)
                .and(mask)
                .and(g)
                .for_each(|c, &t, &dd, &zz, &m, &gg| {
                    *c = if t != 0.0 && m != 0.0 && (t + dd * m) * zz < 0.0 {
                        decrease -= gg * t;
                        snapped = true;
                        0.0
                    } else {
                        t
                    };
                });
            if snapped {
                if let Some(next) = accept(&cand, decrease, true, f, s, lam)? {
                    return Ok(Some(next));
                }
            }
        }
        alpha *= 0.5;
    }
    Ok(None)
}

/// The iterate at `cand` if `Θ⁺ = cand ≻ 0` and `Φ(Θ⁺) ≤ Φ + σ·min(decrease, 0)` up to the
/// rounding of Φ (or, with `take_unresolvable`, when the predicted decrease is itself below
/// that rounding).
fn accept(
    cand: &Array2<f64>,
    decrease: f64,
    take_unresolvable: bool,
    f: f64,
    s: ArrayView2<'_, f64>,
    lam: ArrayView2<'_, f64>,
) -> Result<Option<Iterate>, GlassoError> {
    const SIGMA: f64 = 1e-4;
    let Ok(chol) = Cholesky::factor(cand.view()) else {
        return Ok(None);
    };
    let logdet = chol.logdet();
    let lin = frobenius_inner(s, cand.view());
    let f_new = -logdet + lin + penalty_value(cand.view(), lam);
    let allowance = 16.0 * f64::EPSILON * (f.abs() + lin.abs());
    let unresolvable = take_unresolvable && decrease.abs() <= allowance;
    if f_new.is_finite() && (unresolvable || f_new <= f + SIGMA * decrease.min(0.0) + allowance) {
        let w = chol.into_inverse()?;
        return Ok(Some(Iterate {
            theta: cand.clone(),
            w,
            logdet,
        }));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{assert_certified, pairs_where, problem, tight};
    use crate::{lambda_max, GlassoProblem, GlassoSolver, Penalty, Status};

    /// Θ ≻ 0 with W = Θ⁻¹, a free mask (diagonal in F, every third off-diagonal pair out),
    /// and a symmetric right-hand side −g supported on F.
    fn newton_system(p: usize) -> (Iterate, Array2<f64>, Array2<f64>) {
        let (s, _) = problem(p, 4 * p, 0.1, 3);
        let w = &s + &(Array2::<f64>::eye(p) * 0.1);
        let theta = Cholesky::factor(w.view()).unwrap().into_inverse().unwrap();
        let mut mask = Array2::<f64>::ones((p, p));
        let mut neg_g = Array2::<f64>::zeros((p, p));
        for i in 0..p {
            for j in i..p {
                if i != j && (3 * i + 5 * j) % 3 == 0 {
                    mask[[i, j]] = 0.0;
                    mask[[j, i]] = 0.0;
                } else {
                    let v = ((i * p + j) as f64).sin() + s[[i, j]];
                    neg_g[[i, j]] = v;
                    neg_g[[j, i]] = v;
                }
            }
        }
        let it = Iterate {
            theta,
            w,
            logdet: 0.0,
        };
        (it, mask, neg_g)
    }

    fn max_abs(a: &Array2<f64>) -> f64 {
        a.iter().fold(0.0_f64, |m, v| m.max(v.abs()))
    }

    #[test]
    fn complement_direction_solves_the_newton_system_on_f() {
        let p = 12;
        let (it, mask, neg_g) = newton_system(p);
        let mut fixed = Vec::new();
        fixed_pairs(mask.view(), &mut fixed);
        assert!(!fixed.is_empty() && fixed.len() < p * (p - 1) / 2);
        let solver = ObnCg::default();
        let mut scratch = (Array2::zeros((p, p)), Array2::zeros((p, p)));
        let mut d = Array2::zeros((p, p));
        let single_ok = Cell::new(false);
        let sys = NewtonSystem {
            neg_g: neg_g.view(),
            mask: mask.view(),
            fixed: &fixed,
            single_ok: &single_ok,
        };
        solver
            .direction_by_complement(&it, &sys, 1e-14, &mut scratch, d.view_mut())
            .unwrap();
        // (W D W)_F = −g_F and D = 0 off F.
        let wdw = it.w.dot(&d).dot(&it.w);
        let residual = (&wdw * &mask) - &neg_g;
        assert!(
            max_abs(&residual) <= 1e-10 * max_abs(&neg_g),
            "{:e}",
            max_abs(&residual)
        );
        assert!(
            max_abs(&(&d * &(1.0 - &mask))) <= 0.0,
            "D is not zero off F"
        );
        // The same direction as CG on F.
        let mut d_cg = Array2::zeros((p, p));
        ObnCg {
            max_cg_iter: 500,
            ..Default::default()
        }
        .direction_by_cg(&it, &neg_g, mask.view(), 1e-14, d_cg.view_mut());
        assert!(
            max_abs(&(&d - &d_cg)) <= 1e-8 * max_abs(&d),
            "{:e}",
            max_abs(&(&d - &d_cg))
        );
    }

    #[test]
    fn a_complement_direction_whose_terms_cancel_is_recomputed_to_the_forcing_term() {
        // A Newton system whose solution D = (u uᵀ)_F (u the top eigenvector of an
        // ill-conditioned W) is small next to C = Θ R Θ: D = (Θ (R − Y) Θ)_F cancels, and one
        // pass with the Z system at 0.1·η misses the forcing term.
        let p = 90;
        let (start, mask, _) = newton_system(p);
        let w = &start.w + &(Array2::<f64>::eye(p) * (1e-3 - 0.1));
        let theta = Cholesky::factor(w.view()).unwrap().into_inverse().unwrap();
        let it = Iterate {
            theta,
            w,
            logdet: 0.0,
        };
        let mut fixed = Vec::new();
        fixed_pairs(mask.view(), &mut fixed);
        // More pairs than the dense factorization takes: the Z system is solved by CG.
        assert!(fixed.len() > PairSystem::default().dense_max);
        let mut u = Array1::<f64>::ones(p);
        for _ in 0..300 {
            u = it.w.dot(&u);
            u /= u.dot(&u).sqrt();
        }
        let d_true = Array2::from_shape_fn((p, p), |(i, j)| u[i] * u[j] * mask[[i, j]]);
        let neg_g = &it.w.dot(&d_true).dot(&it.w) * &mask;
        let neg_g = (&neg_g + &neg_g.t()) * 0.5;
        let residual = |d: &Array2<f64>| {
            let wdw = it.w.dot(d).dot(&it.w);
            frobenius_norm(((&wdw * &mask) - &neg_g).view())
        };
        let g_norm = frobenius_norm(neg_g.view());
        let mut scratch = (Array2::zeros((p, p)), Array2::zeros((p, p)));
        let single_ok = Cell::new(false);
        let sys = NewtonSystem {
            neg_g: neg_g.view(),
            mask: mask.view(),
            fixed: &fixed,
            single_ok: &single_ok,
        };
        let direction = |eta: f64, scratch: &mut (Array2<f64>, Array2<f64>)| {
            let mut d = Array2::zeros((p, p));
            ObnCg::default()
                .direction_by_complement(&it, &sys, eta, scratch, d.view_mut())
                .unwrap();
            d
        };
        let eta = 0.3;
        let mut once = Array2::zeros((p, p));
        let c_norm = sys
            .complement_pass(
                it.theta.view(),
                COMPLEMENT_ETA * eta,
                &mut scratch,
                once.view_mut(),
            )
            .unwrap();
        assert!(
            frobenius_norm(once.view()) < COMPLEMENT_ETA * c_norm,
            "no cancellation"
        );
        assert!(
            residual(&once) > eta * g_norm,
            "one pass meets η: {:e}",
            residual(&once)
        );
        let d = direction(eta, &mut scratch);
        assert!(
            residual(&d) <= eta * g_norm,
            "{:e} > {:e}",
            residual(&d),
            eta * g_norm
        );
        // Tight: the exact solution.
        let d = direction(1e-9, &mut scratch);
        let err = max_abs(&(&d - &d_true));
        assert!(err <= 1e-5 * max_abs(&d_true), "{err:e}");
    }

    #[test]
    fn entries_whose_newton_step_crosses_zero_do_not_stall_the_polish() {
        // Start at the solution with its smallest nonzero off-diagonal entries replaced by
        // tiny values of the wrong sign: the Newton step takes them back across zero, which
        // the orthant projection alone clips at every step.
        let p = 30;
        let (s, lam) = problem(p, 10 * p, 0.01, 7);
        let problem = GlassoProblem::new(s.view(), Penalty::Matrix(lam.clone()));
        let reference = ObnCg {
            options: tight(100),
            ..Default::default()
        }
        .solve(&problem, None)
        .unwrap();
        let mut theta = reference.precision.clone();
        let mut entries = pairs_where(p, |i, j| theta[[i, j]] != 0.0);
        entries.sort_by(|a, b| theta[[a.0, a.1]].abs().total_cmp(&theta[[b.0, b.1]].abs()));
        for &(i, j) in entries.iter().take(4) {
            let v = -1e-12 * theta[[i, j]].signum();
            theta[[i, j]] = v;
            theta[[j, i]] = v;
        }
        let covariance = Cholesky::factor(theta.view())
            .and_then(Cholesky::into_inverse)
            .unwrap();
        let out = ObnCg {
            options: tight(20),
            ..Default::default()
        }
        .solve_block(s.view(), lam.view(), BlockStart { theta, covariance })
        .unwrap();
        assert_certified(&out, &s, &lam);
        assert!(out.n_iter <= 5, "{} Newton steps", out.n_iter);
        let diff = max_abs(&(&out.theta - &reference.precision));
        assert!(diff <= 1e-8 * max_abs(&reference.precision), "{diff:e}");
    }

    #[test]
    fn complement_and_cg_newton_steps_reach_the_same_certified_solution() {
        let p = 30;
        for r in [0.3, 0.05, 0.01] {
            let (s, _) = problem(p, 10 * p, r, 7);
            let lam = r * lambda_max(s.view());
            let problem = GlassoProblem::new(s.view(), Penalty::scalar(lam));
            let fits: Vec<_> = [1.0, -1.0]
                .iter()
                .map(|&complement_fraction| {
                    let solver = ObnCg {
                        options: tight(100),
                        complement_fraction,
                        ..Default::default()
                    };
                    let fit = solver.solve(&problem, None).unwrap();
                    assert_eq!(fit.status, Status::Converged, "r = {r}");
                    assert!(fit.relative_gap() <= 1e-12 && fit.kkt_residual <= 1e-10);
                    fit
                })
                .collect();
            let diff = max_abs(&(&fits[0].precision - &fits[1].precision));
            assert!(
                diff <= 1e-8 * max_abs(&fits[1].precision),
                "r = {r}: {diff:e}"
            );
            assert_eq!(fits[0].n_edges(), fits[1].n_edges(), "r = {r}");
        }
    }
}
