#![doc = include_str!("../README.md")]

pub mod auto;
pub mod bcd;
pub mod dual_pn;
pub mod error;
pub mod fit;
pub mod gista;
pub mod newton_cd;
pub mod obn_cg;
pub mod path;
pub mod problem;
mod rows;
pub mod screening;
#[cfg(test)]
mod test_support;

pub use auto::Auto;
pub use bcd::Bcd;
pub use dual_pn::DualPn;
pub use error::GlassoError;
pub use fit::{
    cold_start, solve_screened, BlockOutcome, BlockSolver, BlockStart, GlassoFit, GlassoOptions,
    GlassoSolver,
};
pub use gista::Gista;
pub use ho_linalg::Status;
pub use newton_cd::NewtonCd;
pub use obn_cg::ObnCg;
pub use path::{lambda_path, solve_path};
pub use problem::{duality_gap, kkt_residual, lambda_max, objective, GlassoProblem, Penalty};

/// The solver names accepted by [`solver_from_name`] (and the CLI's `--solver`).
pub const SOLVER_NAMES: [&str; 6] = ["auto", "newton-cd", "obn-cg", "dual-pn", "bcd", "gista"];

/// A boxed solver from its name (`auto`, `newton-cd`, `obn-cg`, `dual-pn`, `bcd`,
/// `gista`) with the
/// shared options.
///
/// # Errors
/// [`GlassoError::InvalidOption`]-like [`GlassoError::UnknownSolver`] for another name.
#[allow(clippy::needless_update)] // solvers gain options over time
pub fn solver_from_name(
    name: &str,
    options: GlassoOptions,
) -> Result<Box<dyn GlassoSolver>, GlassoError> {
    Ok(match name {
        "auto" => Box::new(Auto {
            options,
            ..Default::default()
        }),
        "newton-cd" => Box::new(NewtonCd {
            options,
            ..Default::default()
        }),
        "obn-cg" => Box::new(ObnCg {
            options,
            ..Default::default()
        }),
        "dual-pn" => Box::new(DualPn {
            options,
            ..Default::default()
        }),
        "bcd" => Box::new(Bcd {
            options,
            ..Default::default()
        }),
        "gista" => Box::new(Gista {
            options,
            ..Default::default()
        }),
        _ => {
            return Err(GlassoError::UnknownSolver {
                name: name.to_string(),
            })
        }
    })
}
