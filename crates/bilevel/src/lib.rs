#![doc = include_str!("../README.md")]

pub mod error;
pub mod objective;
pub mod split;
pub mod tuner;

pub use error::BilevelError;
pub use ho_implicit::{Criterion, HeldOutNll, Reconstruction};
pub use objective::{
    inner_options, inner_options_with_tol, AdaptiveAdjoint, BilevelObjective, BilevelStats, Fold,
    Parametrization, INNER_TOL,
};
pub use split::{holdout, k_fold, FoldCov};
pub use tuner::{
    is_normal_end, CriterionKind, GlassoTuner, OptimizerKind, StageReport, Tuned, TunerOptions,
    TunerTraceRow, Validation,
};
