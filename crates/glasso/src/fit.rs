//! Results, the solver traits, shared options and the screened block driver.
//!
//! Every solver is a [`BlockSolver`]: it solves one dense block (S_b, Λ_b) from a start
//! (Θ₀, W₀ = Θ₀⁻¹). The driver [`solve_screened`] (used by the blanket [`GlassoSolver`]
//! implementation) validates the problem, splits it into the connected components of the
//! graph `{(k,l): |S_kl| > Λ_kl}` (exact screening, see [`crate::screening`]), solves isolated
//! nodes in closed form and the other blocks with the solver, and assembles the fit with its
//! global certificate. Objective and dual are separable over the blocks (off-block, `W = 0`
//! and `U = −S`), so the global gap is the sum of the block gaps. The blocks' objectives
//! may cancel in the sum, so blocks that each meet `tol` relative to their own objective
//! may miss it relative to the whole: those above their share are then solved again, warm,
//! to a tighter tolerance ([`BlockSolver::with_tol`]; [`solve_screened`]).

use crate::problem::{duality_gap, kkt_residual, objective_with_logdet, relative_gap};
use crate::screening::connected_components;
use crate::{GlassoError, GlassoProblem};
use ho_linalg::{Cholesky, Status};
use ndarray::{Array2, ArrayView2};

/// A solution of the GLASSO with its optimality certificate.
#[derive(Debug, Clone)]
pub struct GlassoFit {
    /// Θ̂ (p × p), exactly symmetric, with exact zeros off the support.
    pub precision: Array2<f64>,
    /// W = Θ̂⁻¹ (p × p), computed from Θ̂'s Cholesky factor, exactly symmetric.
    pub covariance: Array2<f64>,
    /// Φ(Θ̂).
    pub objective: f64,
    /// `log det Θ̂`, from the factorizations behind the certificate (`None` for a fit
    /// assembled by hand). A criterion reads it instead of factoring Θ̂ again
    /// (`ho_implicit`'s `Criterion::value_at`): ~7 ms per evaluation at p = 1000.
    pub log_det: Option<f64>,
    /// The duality gap of DESIGN.md §1 (absolute; see [`GlassoFit::relative_gap`]).
    pub dual_gap: f64,
    /// The KKT residual (max over entries).
    pub kkt_residual: f64,
    /// Iterations of the solver (summed over the blocks).
    pub n_iter: usize,
    /// Whether the tolerance was met.
    pub status: Status,
    /// Number of connected components (blocks) of the screening graph, isolated nodes included.
    pub n_blocks: usize,
}

impl GlassoFit {
    /// `dual_gap / max(1, |objective|)`.
    pub fn relative_gap(&self) -> f64 {
        relative_gap(self.dual_gap, self.objective)
    }

    /// Number of nonzero pairs k < l of Θ̂.
    pub fn n_edges(&self) -> usize {
        let p = self.precision.nrows();
        (0..p)
            .map(|i| (0..i).filter(|&j| self.precision[[i, j]] != 0.0).count())
            .sum()
    }

    /// |E|: ordered pairs (i, j) with Θ̂_ij ≠ 0, diagonal included.
    pub fn support_size(&self) -> usize {
        self.precision.iter().filter(|v| **v != 0.0).count()
    }
}

/// Options shared by every solver.
///
/// | Name | Default | Meaning | Range |
/// |---|---|---|---|
/// | `tol` | 1e-8 | stop when gap / max(1, \|Φ\|) ≤ tol | > 0 |
/// | `max_iter` | 200 | iterations per block (Newton steps, sweeps or proximal steps) | ≥ 1 |
/// | `kkt_tol` | ∞ | also require KKT residual ≤ kkt_tol (for exact supports) | > 0 |
/// | `screening` | true | split into connected components first (exact) | |
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GlassoOptions {
    /// Relative duality-gap tolerance.
    pub tol: f64,
    /// KKT-residual tolerance (max over entries), checked with the gap; `f64::INFINITY`
    /// (the default) stops on the gap alone. The gap is quadratic in the distance to Θ̂, the
    /// KKT residual linear: set both when the support must be exact (hypergradients).
    pub kkt_tol: f64,
    /// Iteration budget per block.
    pub max_iter: usize,
    /// Exact block screening.
    pub screening: bool,
}

impl Default for GlassoOptions {
    fn default() -> Self {
        Self {
            tol: 1e-8,
            kkt_tol: f64::INFINITY,
            max_iter: 200,
            screening: true,
        }
    }
}

impl GlassoOptions {
    /// The stopping test: relative gap ≤ `tol` and KKT residual ≤ `kkt_tol`.
    pub fn is_converged(&self, gap: f64, objective: f64, kkt: f64) -> bool {
        relative_gap(gap, objective) <= self.tol && kkt <= self.kkt_tol
    }

    /// Checks the ranges.
    ///
    /// # Errors
    /// [`GlassoError::InvalidOption`].
    pub fn validate(&self) -> Result<(), GlassoError> {
        if !(self.tol > 0.0 && self.tol.is_finite()) {
            return Err(GlassoError::InvalidOption {
                name: "tol",
                value: self.tol,
                range: "finite, > 0",
            });
        }
        if !(self.kkt_tol > 0.0) {
            return Err(GlassoError::InvalidOption {
                name: "kkt_tol",
                value: self.kkt_tol,
                range: "> 0 (∞ allowed)",
            });
        }
        if self.max_iter == 0 {
            return Err(GlassoError::InvalidOption {
                name: "max_iter",
                value: 0.0,
                range: "≥ 1",
            });
        }
        Ok(())
    }
}

/// A GLASSO solver (object safe: `&dyn GlassoSolver` swaps solvers at run time).
pub trait GlassoSolver {
    /// Short name (`"newton-cd"`, `"obn-cg"`, `"bcd"`, `"gista"`, `"auto"`).
    fn name(&self) -> &'static str;

    /// Solves the problem, from `warm_start` (an earlier fit of the same dimension) if given.
    /// Not reaching the tolerance is [`Status::MaxIter`] in the fit, not an error.
    ///
    /// # Errors
    /// Invalid inputs and options ([`GlassoError`] input variants), and numerical failures.
    fn solve(
        &self,
        problem: &GlassoProblem<'_>,
        warm_start: Option<&GlassoFit>,
    ) -> Result<GlassoFit, GlassoError>;
}

/// The starting point of a block solve: Θ₀ ≻ 0 and W₀ = Θ₀⁻¹.
#[derive(Debug, Clone)]
pub struct BlockStart {
    /// Θ₀.
    pub theta: Array2<f64>,
    /// W₀ = Θ₀⁻¹.
    pub covariance: Array2<f64>,
}

/// The result of a block solve, with its certificate on the block.
#[derive(Debug, Clone)]
pub struct BlockOutcome {
    /// Θ̂_b.
    pub theta: Array2<f64>,
    /// W_b = Θ̂_b⁻¹.
    pub covariance: Array2<f64>,
    /// Φ_b(Θ̂_b).
    pub objective: f64,
    /// `log det Θ̂_b`, the one in `objective`.
    pub logdet: f64,
    /// Duality gap on the block.
    pub dual_gap: f64,
    /// Iterations done.
    pub n_iter: usize,
}

/// A solver of one dense block; every such solver is a [`GlassoSolver`] through
/// [`solve_screened`].
pub trait BlockSolver {
    /// Short name.
    fn name(&self) -> &'static str;
    /// The shared options.
    fn options(&self) -> &GlassoOptions;
    /// Solves `min −log det Θ + ⟨S, Θ⟩ + Σ Λ_kl |Θ_kl|` on one block (p_b ≥ 2) from `start`,
    /// until the relative gap is ≤ `options().tol` or `options().max_iter` iterations.
    ///
    /// # Errors
    /// Numerical failures only (inputs are validated by the driver).
    fn solve_block(
        &self,
        emp_cov: ArrayView2<'_, f64>,
        lam: ArrayView2<'_, f64>,
        start: BlockStart,
    ) -> Result<BlockOutcome, GlassoError>;
    /// The same solver with the relative-gap tolerance `tol` ([`solve_screened`] tightens
    /// the blocks' tolerance when their objectives cancel in the sum; [`with_tol`]).
    fn with_tol(&self, tol: f64) -> Box<dyn BlockSolver>;
}

/// A copy of `solver` whose options (reached by `options`) have the relative-gap tolerance
/// `tol`: the body of every [`BlockSolver::with_tol`].
pub(crate) fn with_tol<S: BlockSolver + Clone + 'static>(
    solver: &S,
    tol: f64,
    options: impl FnOnce(&mut S) -> &mut GlassoOptions,
) -> Box<dyn BlockSolver> {
    let mut copy = solver.clone();
    options(&mut copy).tol = tol;
    Box::new(copy)
}

impl<T: BlockSolver> GlassoSolver for T {
    fn name(&self) -> &'static str {
        BlockSolver::name(self)
    }

    fn solve(
        &self,
        problem: &GlassoProblem<'_>,
        warm_start: Option<&GlassoFit>,
    ) -> Result<GlassoFit, GlassoError> {
        solve_screened(self, problem, warm_start)
    }
}

/// The cold start `Θ₀ = diag(1/(S_ii + Λ_ii))`, `W₀ = diag(S_ii + Λ_ii)`: the exact solution
/// when every off-diagonal `|S_kl| ≤ Λ_kl`.
pub fn cold_start(emp_cov: ArrayView2<'_, f64>, lam: ArrayView2<'_, f64>) -> BlockStart {
    let p = emp_cov.nrows();
    let mut theta = Array2::zeros((p, p));
    let mut covariance = Array2::zeros((p, p));
    for i in 0..p {
        let d = emp_cov[[i, i]] + lam[[i, i]];
        theta[[i, i]] = 1.0 / d;
        covariance[[i, i]] = d;
    }
    BlockStart { theta, covariance }
}

/// A start from a warm fit restricted to `idx`: Θ₀ = Θ_warm[idx, idx] (a principal
/// submatrix, hence SPD) and W₀ = Θ₀⁻¹ recomputed. When `idx` holds every node and the fit's
/// covariance is Θ_warm⁻¹ (the diagonal of `W Θ` within [`WARM_INVERSE_TOL`] of 1, as every
/// solver here returns it), that covariance is taken as it is: a Cholesky factorization and
/// an inverse saved per warm solve (~25 ms at p = 1000, where tuning makes ~40 of them).
/// Falls back to the cold start if the restriction is not numerically SPD.
fn warm_block_start(
    warm: &GlassoFit,
    idx: &[usize],
    emp_cov: ArrayView2<'_, f64>,
    lam: ArrayView2<'_, f64>,
) -> BlockStart {
    let p = warm.precision.nrows();
    if idx.len() == p && is_inverse_pair(warm.precision.view(), warm.covariance.view()) {
        return BlockStart {
            theta: warm.precision.clone(),
            covariance: warm.covariance.clone(),
        };
    }
    let theta = warm
        .precision
        .select(ndarray::Axis(0), idx)
        .select(ndarray::Axis(1), idx);
    match Cholesky::factor(theta.view()).and_then(Cholesky::into_inverse) {
        Ok(covariance) => BlockStart { theta, covariance },
        Err(_) => cold_start(emp_cov, lam),
    }
}

/// How far from 1 the diagonal of `W Θ` of a warm fit may be for W to be taken as Θ⁻¹
/// ([`warm_block_start`]). A computed inverse is off by ~κ·1e-16; a start only needs to be
/// close.
const WARM_INVERSE_TOL: f64 = 1e-8;

/// Whether `covariance` is `precision⁻¹` on the diagonal of their product (p dot products of
/// rows, the precision being symmetric; the off-diagonal is not checked: a warm start only
/// has to be close, and the solvers certify what they return). False for non-finite entries.
fn is_inverse_pair(precision: ArrayView2<'_, f64>, covariance: ArrayView2<'_, f64>) -> bool {
    precision.dim() == covariance.dim()
        && (0..precision.nrows()).all(|i| {
            let d = covariance.row(i).dot(&precision.row(i));
            (d - 1.0).abs() <= WARM_INVERSE_TOL
        })
}

/// The screened driver: validate, split into components, solve each, assemble, certify.
///
/// Each block is solved to the solver's `tol` relative to its own objective; when the sum of
/// the blocks' gaps misses `tol` relative to the whole objective (their objectives cancel),
/// the blocks that met their own tolerance but are above their share are solved again, warm,
/// to
/// `0.5·tol·max(1, |Φ|) / Σ_b max(1, |Φ_b|)` over the blocks of two nodes or more.
///
/// # Errors
/// Input validation errors, invalid options, and the block solver's failures.
pub fn solve_screened(
    solver: &(impl BlockSolver + ?Sized),
    problem: &GlassoProblem<'_>,
    warm_start: Option<&GlassoFit>,
) -> Result<GlassoFit, GlassoError> {
    let lam = problem.validate()?;
    let opts = solver.options();
    opts.validate()?;
    let s = problem.emp_cov;
    let p = problem.dim();
    if let Some(w) = warm_start {
        if w.precision.nrows() != p {
            return Err(GlassoError::WarmStartShape {
                expected: p,
                found: w.precision.nrows(),
            });
        }
    }
    let blocks = if opts.screening {
        connected_components(s, lam.view())
    } else {
        vec![(0..p).collect()]
    };
    let mut precision = Array2::zeros((p, p));
    let mut covariance = Array2::zeros((p, p));
    let (mut objective, mut gap, mut n_iter, mut log_det) = (0.0, 0.0, 0, 0.0);
    // The blocks of two nodes or more: their nodes, S_b, Λ_b and outcome.
    let mut solved = Vec::new();
    for idx in &blocks {
        if idx.len() == 1 {
            let i = idx[0];
            let d = s[[i, i]] + lam[[i, i]];
            precision[[i, i]] = 1.0 / d;
            covariance[[i, i]] = d;
            objective += d.ln() + 1.0;
            log_det -= d.ln();
            continue;
        }
        let (sb, lb) = if idx.len() == p {
            (s.to_owned(), lam.clone())
        } else {
            (
                s.select(ndarray::Axis(0), idx)
                    .select(ndarray::Axis(1), idx),
                lam.select(ndarray::Axis(0), idx)
                    .select(ndarray::Axis(1), idx),
            )
        };
        let start = match warm_start {
            Some(w) => warm_block_start(w, idx, sb.view(), lb.view()),
            None => cold_start(sb.view(), lb.view()),
        };
        let out = solver.solve_block(sb.view(), lb.view(), start)?;
        objective += out.objective;
        gap += out.dual_gap;
        n_iter += out.n_iter;
        solved.push((idx, sb, lb, out));
    }
    // Each block meets `tol` relative to its own objective; their sum may not, relative to
    // the whole objective, when the blocks' objectives have opposite signs (at p = 1000 on
    // the paper's data, seed 10, 0.1·λ_max, tol 1e-5: one block of ~800 nodes and 189
    // isolated nodes, relative gap 1.04e-5). The blocks whose gap is above their share are
    // then solved again, warm, to the tolerance that makes the sum meet it.
    if !(relative_gap(gap, objective) <= opts.tol) {
        let weights: f64 = solved
            .iter()
            .map(|(_, _, _, out)| out.objective.abs().max(1.0))
            .sum();
        let tol = 0.5 * opts.tol * objective.abs().max(1.0) / weights;
        if tol > 0.0 && tol.is_finite() {
            let tighter = solver.with_tol(tol);
            for (_, sb, lb, out) in &mut solved {
                // Only blocks that met their own tolerance: one that ran out of its budget
                // is reported as it is.
                let own = relative_gap(out.dual_gap, out.objective);
                if own > tol && own <= opts.tol {
                    let start = BlockStart {
                        theta: std::mem::take(&mut out.theta),
                        covariance: std::mem::take(&mut out.covariance),
                    };
                    let again = tighter.solve_block(sb.view(), lb.view(), start)?;
                    objective += again.objective - out.objective;
                    gap += again.dual_gap - out.dual_gap;
                    n_iter += again.n_iter;
                    *out = again;
                }
            }
        }
    }
    for (idx, _, _, out) in &solved {
        for (a, &i) in idx.iter().enumerate() {
            for (b, &j) in idx.iter().enumerate() {
                precision[[i, j]] = out.theta[[a, b]];
                covariance[[i, j]] = out.covariance[[a, b]];
            }
        }
        log_det += out.logdet;
    }
    let kkt = kkt_residual(precision.view(), covariance.view(), s, lam.view());
    let status = if opts.is_converged(gap, objective, kkt) {
        Status::Converged
    } else {
        Status::MaxIter
    };
    Ok(GlassoFit {
        precision,
        covariance,
        objective,
        log_det: Some(log_det),
        dual_gap: gap,
        kkt_residual: kkt,
        n_iter,
        status,
        n_blocks: blocks.len(),
    })
}

/// The certificate of a dense iterate.
#[derive(Debug, Clone, Copy)]
pub struct Certificate {
    /// Φ(Θ).
    pub objective: f64,
    /// `log det Θ`, as given.
    pub logdet: f64,
    /// The duality gap.
    pub gap: f64,
    /// The KKT residual.
    pub kkt: f64,
}

impl Certificate {
    /// Certificate of Θ from its log-det and `W = Θ⁻¹`. The gap (a Cholesky factorization of
    /// S + U) is only computed when the KKT test passes; otherwise it is `+∞`.
    pub fn of(
        theta: ArrayView2<'_, f64>,
        logdet: f64,
        covariance: ArrayView2<'_, f64>,
        emp_cov: ArrayView2<'_, f64>,
        lam: ArrayView2<'_, f64>,
        options: &GlassoOptions,
    ) -> Self {
        Self::against(theta, logdet, covariance, emp_cov, lam, options, None)
    }

    /// [`Certificate::of`] when the value `dual_value = log det(S + U) + p` of a dual-feasible
    /// point U (`|U| ≤ Λ` entrywise, `S + U ≻ 0`) is already known, such as a dual solver's
    /// iterate: by weak duality `Φ(Θ) − dual_value` bounds the suboptimality of Θ as well.
    /// That gap is kept when it meets the tolerance; otherwise the dual point `clip(W − S)`
    /// is formed too (one factorization) and the smaller of the two gaps is kept.
    ///
    /// The two can differ by orders of magnitude. For Θ recovered from a dual iterate (zeros
    /// set on the free pairs) the gap against that iterate is second order in the entries
    /// zeroed, while `clip(W − S)` moves every pair at a bound by the first-order change of W:
    /// in matrix tuning at p = 1000 a recovered primal at a dual gap of 1e-8 had 6e-14 against
    /// the iterate and 6e-6 against `clip(W − S)`.
    pub fn with_dual_value(
        theta: ArrayView2<'_, f64>,
        logdet: f64,
        covariance: ArrayView2<'_, f64>,
        emp_cov: ArrayView2<'_, f64>,
        lam: ArrayView2<'_, f64>,
        options: &GlassoOptions,
        dual_value: f64,
    ) -> Self {
        Self::against(
            theta,
            logdet,
            covariance,
            emp_cov,
            lam,
            options,
            Some(dual_value),
        )
    }

    fn against(
        theta: ArrayView2<'_, f64>,
        logdet: f64,
        covariance: ArrayView2<'_, f64>,
        emp_cov: ArrayView2<'_, f64>,
        lam: ArrayView2<'_, f64>,
        options: &GlassoOptions,
        dual_value: Option<f64>,
    ) -> Self {
        let objective = objective_with_logdet(theta, logdet, emp_cov, lam);
        let kkt = kkt_residual(theta, covariance, emp_cov, lam);
        let gap = if kkt > options.kkt_tol {
            f64::INFINITY
        } else {
            // A non-finite objective or dual value falls through to clip(W − S), whose gap
            // is then non-finite too (never a silent 0 from `max`).
            let known = dual_value
                .map(|d| objective - d)
                .filter(|g| g.is_finite())
                .map(|g| g.max(0.0));
            match known {
                Some(known) if relative_gap(known, objective) <= options.tol => known,
                Some(known) => known.min(duality_gap(objective, covariance, emp_cov, lam)),
                None => duality_gap(objective, covariance, emp_cov, lam),
            }
        };
        Self {
            objective,
            logdet,
            gap,
            kkt,
        }
    }

    /// Whether `options` are met.
    pub fn converged(&self, options: &GlassoOptions) -> bool {
        options.is_converged(self.gap, self.objective, self.kkt)
    }

    /// The final outcome of a block solve.
    pub fn outcome(
        self,
        theta: Array2<f64>,
        covariance: Array2<f64>,
        emp_cov: ArrayView2<'_, f64>,
        lam: ArrayView2<'_, f64>,
        n_iter: usize,
    ) -> BlockOutcome {
        let dual_gap = if self.gap.is_finite() {
            self.gap
        } else {
            duality_gap(self.objective, covariance.view(), emp_cov, lam)
        };
        BlockOutcome {
            theta,
            covariance,
            objective: self.objective,
            logdet: self.logdet,
            dual_gap,
            n_iter,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ho_linalg::testing::random_spd;

    fn fit_of(precision: Array2<f64>, covariance: Array2<f64>) -> GlassoFit {
        GlassoFit {
            precision,
            covariance,
            objective: 0.0,
            log_det: None,
            dual_gap: 0.0,
            kkt_residual: 0.0,
            n_iter: 0,
            status: Status::Converged,
            n_blocks: 1,
        }
    }

    #[test]
    fn a_warm_start_on_every_node_keeps_the_fits_own_inverse() {
        let p = 12;
        let theta = random_spd(p, 30.0, 3);
        let w = Cholesky::factor(theta.view())
            .and_then(Cholesky::into_inverse)
            .unwrap();
        let s = Array2::<f64>::eye(p);
        let lam = Array2::<f64>::zeros((p, p));
        let all: Vec<usize> = (0..p).collect();
        // The fit's covariance, taken as it is (a perturbation below the check is kept too).
        let mut near = w.clone();
        near[[0, 1]] += 1e-12;
        let start = warm_block_start(
            &fit_of(theta.clone(), near.clone()),
            &all,
            s.view(),
            lam.view(),
        );
        assert_eq!(start.covariance, near);
        assert_eq!(start.theta, theta);
        // A covariance that is not Θ⁻¹ (or not finite) is recomputed.
        for bad in [Array2::<f64>::eye(p), w.mapv(|v| v * (1.0 + 1e-6)), {
            let mut nan = w.clone();
            nan[[3, 3]] = f64::NAN;
            nan
        }] {
            let start = warm_block_start(&fit_of(theta.clone(), bad), &all, s.view(), lam.view());
            let err = (&start.covariance - &w)
                .iter()
                .fold(0.0_f64, |m, v| m.max(v.abs()));
            assert!(err <= 1e-10, "{err:e}");
        }
        // A block of some nodes: the inverse of the sub-block.
        let idx = [1, 4, 5, 9];
        let start = warm_block_start(
            &fit_of(theta.clone(), w.clone()),
            &idx,
            s.view(),
            lam.view(),
        );
        let sub = theta
            .select(ndarray::Axis(0), &idx)
            .select(ndarray::Axis(1), &idx);
        assert_eq!(start.theta, sub);
        let check = start.covariance.dot(&sub);
        let err = (&check - &Array2::<f64>::eye(4))
            .iter()
            .fold(0.0_f64, |m, v| m.max(v.abs()));
        assert!(err <= 1e-10, "{err:e}");
    }
}
