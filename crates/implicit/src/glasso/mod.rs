//! The GLASSO instance: hypergradients of `L(Λ) = C(Θ̂(Λ))` at a fit (docs/implicit-diff.md).
//!
//! - [`ActiveSet`]: the support E of Θ̂ (ordered pairs, diagonal included) and the signs;
//! - [`RestrictedKronecker`]: `M = (W ⊗ W)_{E,E}` (and the Kronecker preconditioner
//!   `(Θ̂ ⊗ Θ̂)_{E,E}`) applied matrix-free by a sparse or a dense kernel;
//! - [`GlassoSystem`]: the optimality condition as an [`ImplicitSystem`](crate::ImplicitSystem);
//! - [`Criterion`]s: held-out NLL, reconstruction, oracle;
//! - [`hypergradient`], [`HypergradientEngine`] (warm starts), with five [`Method`]s.

pub mod active;
mod complement;
pub mod criterion;
pub mod finite_diff;
pub mod hypergrad;
pub mod operator;
pub mod system;
pub mod unrolled;

pub use active::{off_support_margin, ActiveSet};
pub use criterion::{logdet_blockwise, Criterion, HeldOutNll, Oracle, Reconstruction};
pub use finite_diff::{finite_difference, FiniteDiffOptions, FiniteDiffResult};
pub use hypergrad::{
    hypergradient, hypergradient_finite_diff, pair_gradient, pattern_sum, AdjointSolver,
    HypergradOptions, Hypergradient, HypergradientEngine, Method,
};
pub use operator::{jacobi_preconditioner, kronecker_matrix, Kernel, RestrictedKronecker};
pub use system::{GlassoSystem, PreconditionerKind};
pub use unrolled::{unrolled_gista, UnrolledOptions, UnrolledRun};
