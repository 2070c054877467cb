#![doc = include_str!("../README.md")]

pub mod blas_core;
pub mod covariance;
pub mod dense;
pub mod error;
pub mod io;
pub mod kernels;
pub mod krylov;
pub mod pair_sandwich;
pub mod pairs;
pub mod prox;
#[cfg(feature = "testing")]
pub mod testing;
pub mod threads;

pub use blas_core::{blas_core, restart_with_faster_blas};
pub use covariance::{correlation, empirical_covariance};
pub use dense::{
    check_finite, check_square, check_symmetric, logdet_spd, sandwich, sandwich_upper,
    symmetrize_inplace, Cholesky,
};
pub use error::LinalgError;
pub use krylov::{
    bicgstab, pcg, refine, Bicgstab, Cg, CgOptions, DenseCholeskySolver, JacobiPreconditioner,
    LinearOperator, LinearSolver, RefineOptions, Refinement, SolveReport, Status,
};
pub use pair_sandwich::{Lane, PairSandwich};
pub use pairs::StarPreconditioner;
pub use prox::{soft_threshold, soft_threshold_matrix, soft_threshold_scalar};
pub use threads::{blas_threads, set_blas_threads, SingleThreadedBlas};

/// Re-export of the ndarray version used throughout the workspace.
pub use ndarray;
