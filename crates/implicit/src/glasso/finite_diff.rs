//! Central finite differences of `L(Λ) = C(Θ̂(Λ))` by re-solving the inner problem
//! (docs/implicit-diff.md §9): the slow, solver-independent reference.
//!
//! ```text
//! scalar λ:       dL/dλ = (L(λ e^h) − L(λ e^{−h})) / (2 h λ)                 (α = log λ)
//! pair k < l:     G_kl + G_lk = (L(Λ_kl e^{±h} on both entries) difference) / (2 h Λ_kl)
//! diagonal k:     G_kk = (L(Λ_kk e^{±h}) difference) / (2 h Λ_kk)
//! ```
//!
//! An entry with `Λ_kl = 0` cannot be moved down (a negative penalty is invalid); since
//! `Λ_kl |Θ_kl| = Λ_kl s_kl Θ_kl` near the solution (fixed sign), moving `Λ_kl` by `δ` is moving
//! `S_kl` by `δ s_kl`: such entries are differenced additively through S, with
//! `δ = h · max(max Λ, λ_max(S))`. Pairs off the support are not evaluated: with a positive
//! margin a small change of their penalty leaves Θ̂ unchanged, so their derivative is 0.
//! Every perturbed solve is warm-started from the fit and must have the fit's support
//! ([`ImplicitError::SupportChanged`] otherwise: the difference crossed a kink).

use super::active::ActiveSet;
use super::criterion::Criterion;
use crate::ImplicitError;
use ho_glasso::{
    lambda_max, GlassoFit, GlassoOptions, GlassoProblem, GlassoSolver, Penalty, Status,
};
use ndarray::{Array2, ArrayView2};

/// Options of the finite differences.
///
/// | Name | Default | Meaning | Range |
/// |---|---|---|---|
/// | `step` | 1e-5 | h, in log Λ (relative) | > 0 |
/// | `inner` | tol 1e-12, kkt_tol 1e-11, max_iter 500 | options of the default inner solver (NewtonCd) | |
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FiniteDiffOptions {
    /// The step h.
    pub step: f64,
    /// Options of the inner solver used by [`crate::glasso::hypergradient`] (NewtonCd).
    pub inner: GlassoOptions,
}

impl Default for FiniteDiffOptions {
    fn default() -> Self {
        Self {
            step: 1e-5,
            inner: GlassoOptions {
                tol: 1e-12,
                kkt_tol: 1e-11,
                max_iter: 500,
                screening: true,
            },
        }
    }
}

/// What the finite differences computed.
#[derive(Debug, Clone)]
pub struct FiniteDiffResult {
    /// dL/dλ (scalar penalty and scalar difference only).
    pub grad_lambda: Option<f64>,
    /// ∂L/∂Λ per entry (when asked, or for a matrix penalty).
    pub grad_matrix: Option<Array2<f64>>,
    /// Inner solves done.
    pub n_solves: usize,
    /// Inner iterations, summed.
    pub n_iter: usize,
    /// The largest relative duality gap of the perturbed solves.
    pub worst_gap: f64,
}

struct Evaluator<'a> {
    solver: &'a dyn GlassoSolver,
    criterion: &'a dyn Criterion,
    fit: &'a GlassoFit,
    active: ActiveSet,
    n_solves: usize,
    n_iter: usize,
    worst_gap: f64,
    tol: f64,
}

impl Evaluator<'_> {
    fn value(
        &mut self,
        emp_cov: ArrayView2<'_, f64>,
        penalty: Penalty,
    ) -> Result<f64, ImplicitError> {
        let problem = GlassoProblem::new(emp_cov, penalty);
        let fit = self.solver.solve(&problem, Some(self.fit))?;
        self.n_solves += 1;
        self.n_iter += fit.n_iter;
        let gap = fit.relative_gap();
        self.worst_gap = self.worst_gap.max(gap);
        if fit.status != Status::Converged {
            return Err(ImplicitError::InnerNotConverged { gap, tol: self.tol });
        }
        let n_changed =
            ActiveSet::from_precision(fit.precision.view()).symmetric_difference(&self.active);
        if n_changed > 0 {
            return Err(ImplicitError::SupportChanged { n_changed });
        }
        self.criterion
            .value(fit.precision.view(), fit.covariance.view())
    }
}

/// Central finite differences of the hypergradient at `fit` (see the module doc), re-solving
/// with `solver` (which should be run to a tight gap) warm-started from `fit`. The scalar
/// derivative is computed for a scalar penalty; the per-entry matrix when `full_matrix` or
/// for a matrix penalty (2 solves per symmetric pair of the support).
///
/// # Errors
/// [`ImplicitError::InvalidOption`] for a bad step or a zero scalar λ,
/// [`ImplicitError::SupportChanged`] when a perturbed solve has another support,
/// [`ImplicitError::InnerNotConverged`] when a perturbed solve stops before the solver's own
/// tolerance (reported with `options.inner.tol`), and the solver's and criterion's errors.
pub fn finite_difference(
    fit: &GlassoFit,
    problem: &GlassoProblem<'_>,
    criterion: &dyn Criterion,
    solver: &dyn GlassoSolver,
    options: &FiniteDiffOptions,
    full_matrix: bool,
) -> Result<FiniteDiffResult, ImplicitError> {
    let h = options.step;
    if !(h > 0.0 && h < 1.0) {
        return Err(ImplicitError::InvalidOption {
            name: "finite_diff.step",
            value: h,
            range: "(0, 1)",
        });
    }
    let lam = problem.validate()?;
    let p = problem.dim();
    let s = problem.emp_cov;
    let mut ev = Evaluator {
        solver,
        criterion,
        fit,
        active: ActiveSet::from_precision(fit.precision.view()),
        n_solves: 0,
        n_iter: 0,
        worst_gap: 0.0,
        tol: options.inner.tol,
    };
    let mut grad_lambda = None;
    if let Penalty::Scalar {
        alpha,
        penalize_diagonal,
    } = problem.penalty
    {
        if !(alpha > 0.0) {
            return Err(ImplicitError::InvalidOption {
                name: "lambda (finite differences in log λ)",
                value: alpha,
                range: "> 0",
            });
        }
        let at = |a: f64| Penalty::Scalar {
            alpha: a,
            penalize_diagonal,
        };
        let plus = ev.value(s, at(alpha * h.exp()))?;
        let minus = ev.value(s, at(alpha * (-h).exp()))?;
        grad_lambda = Some((plus - minus) / (2.0 * h * alpha));
    }
    let grad_matrix = if full_matrix || matches!(problem.penalty, Penalty::Matrix(_)) {
        let delta = h * lam
            .iter()
            .fold(lambda_max(s), |m, &v| m.max(v))
            .max(f64::MIN_POSITIVE);
        let mut g = Array2::<f64>::zeros((p, p));
        let mut s_pert = s.to_owned();
        let mut lam_pert = lam.clone();
        let pairs: Vec<(usize, usize)> = ev.active.pairs().filter(|(i, j)| i <= j).collect();
        for (k, l) in pairs {
            let base = lam[[k, l]];
            let sign = fit.precision[[k, l]].signum();
            let mut values = [0.0; 2];
            for (v, dir) in values.iter_mut().zip([1.0, -1.0]) {
                if base > 0.0 {
                    let moved = base * (dir * h).exp();
                    lam_pert[[k, l]] = moved;
                    lam_pert[[l, k]] = moved;
                } else {
                    s_pert[[k, l]] = s[[k, l]] + dir * delta * sign;
                    s_pert[[l, k]] = s[[l, k]] + dir * delta * sign;
                }
                *v = ev.value(s_pert.view(), Penalty::Matrix(lam_pert.clone()))?;
                lam_pert[[k, l]] = lam[[k, l]];
                lam_pert[[l, k]] = lam[[l, k]];
                s_pert[[k, l]] = s[[k, l]];
                s_pert[[l, k]] = s[[l, k]];
            }
            let d = if base > 0.0 {
                (values[0] - values[1]) / (2.0 * h * base)
            } else {
                (values[0] - values[1]) / (2.0 * delta)
            };
            if k == l {
                g[[k, k]] = d;
            } else {
                g[[k, l]] = 0.5 * d;
                g[[l, k]] = 0.5 * d;
            }
        }
        Some(g)
    } else {
        None
    };
    Ok(FiniteDiffResult {
        grad_lambda,
        grad_matrix,
        n_solves: ev.n_solves,
        n_iter: ev.n_iter,
        worst_gap: ev.worst_gap,
    })
}
