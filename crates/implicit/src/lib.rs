#![doc = include_str!("../README.md")]

pub mod error;
pub mod glasso;
pub mod lasso;
pub mod ridge;
pub mod system;

pub use error::ImplicitError;
pub use glasso::{
    hypergradient, hypergradient_finite_diff, pair_gradient, ActiveSet, AdjointSolver, Criterion,
    GlassoSystem, HeldOutNll, HypergradOptions, Hypergradient, HypergradientEngine, Kernel, Method,
    PreconditionerKind, Reconstruction, RestrictedKronecker,
};
pub use system::{
    hypergradient_adjoint, hypergradient_from_adjoint, jacobian, jvp, AdjointSolution,
    FixedPointMap, FixedPointResidual, ImplicitOptions, ImplicitSystem, SolverChoice, Structure,
};
