//! The error type of `ho-implicit`.

use ho_glasso::GlassoError;
use ho_linalg::LinalgError;

/// Everything that can go wrong when differentiating a solution map. Variants carry the numbers
/// that locate the problem; messages are lower-case one-liners.
#[derive(Debug, thiserror::Error)]
pub enum ImplicitError {
    /// The inner solution is not accurate enough to be differentiated: its relative duality
    /// gap exceeds the tolerance required (an inexact support gives a wrong hypergradient).
    #[error("inner problem not converged: relative duality gap {gap:e} exceeds {tol:e}")]
    InnerNotConverged {
        /// The fit's relative duality gap `gap / max(1, |Φ|)`.
        gap: f64,
        /// The tolerance required.
        tol: f64,
    },
    /// The linear solve of the implicit system did not reach its tolerance.
    #[error("linear solve failed: residual norm {residual_norm:e} after {n_iter} iterations")]
    LinearSolveFailed {
        /// `‖b − A x‖₂` at the returned iterate.
        residual_norm: f64,
        /// Iterations done.
        n_iter: usize,
    },
    /// Unrolled (forward iterative) differentiation did not converge within its budget.
    #[error(
        "unrolled differentiation not converged after {n_iter} iterations (last change {change:e})"
    )]
    UnrolledNotConverged {
        /// Iterations done.
        n_iter: usize,
        /// The last relative change of the iterates (Θ and its derivative).
        change: f64,
    },
    /// A dense reference was asked for a system beyond its size limit.
    #[error("system of size {size} exceeds the dense limit {limit}")]
    TooLarge {
        /// The size of the system (|E| for the Kronecker matrix).
        size: usize,
        /// The limit in force.
        limit: usize,
    },
    /// Two dimensions that must agree do not (fit vs problem, gradient vs system).
    #[error("dimension mismatch: expected {expected}, found {found}")]
    DimensionMismatch {
        /// The expected size.
        expected: usize,
        /// The size found.
        found: usize,
    },
    /// An option out of its allowed range.
    #[error("invalid value {value} for {name} (allowed: {range})")]
    InvalidOption {
        /// The option's name.
        name: &'static str,
        /// The value given.
        value: f64,
        /// The allowed range, in words.
        range: &'static str,
    },
    /// A finite difference crossed a kink: the support of the perturbed solution differs from
    /// the support at the base point.
    #[error("support changed under the finite-difference step: {n_changed} entries differ")]
    SupportChanged {
        /// Number of ordered entries whose membership in the support differs.
        n_changed: usize,
    },
    /// The criterion is not differentiable at this point (e.g. a norm at 0).
    #[error("{what} is not differentiable here (value {value:e})")]
    NotDifferentiable {
        /// The criterion.
        what: &'static str,
        /// Its value.
        value: f64,
    },
    /// A dense linear system that should be non-singular is (numerically) singular.
    #[error("singular system: zero pivot at index {pivot}")]
    Singular {
        /// 0-based index of the pivot.
        pivot: usize,
    },
    /// A lower-layer linear-algebra failure.
    #[error(transparent)]
    Linalg(#[from] LinalgError),
    /// A GLASSO solver failure (finite differences and unrolling re-solve the inner problem).
    #[error(transparent)]
    Glasso(#[from] GlassoError),
}

#[cfg(test)]
mod tests {
    const fn assert_send_sync<T: Send + Sync + 'static>() {}
    const _: () = assert_send_sync::<super::ImplicitError>();

    #[test]
    fn messages_are_one_line() {
        let e = super::ImplicitError::InnerNotConverged {
            gap: 1e-3,
            tol: 1e-8,
        };
        assert!(!e.to_string().contains('\n'));
    }
}
