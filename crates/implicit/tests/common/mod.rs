//! Shared test helpers: the GLASSO fixtures (read in place from ho-glasso's copy, see
//! crates/glasso/tests/fixtures/README.md) and seeded random problems.
#![allow(dead_code)]

use ho_glasso::{
    lambda_max, GlassoFit, GlassoOptions, GlassoProblem, GlassoSolver, NewtonCd, Penalty,
};
use ho_linalg::io::read_matrix;
use ho_linalg::{empirical_covariance, Cholesky, Status};
use ndarray::{s, Array2};
use std::path::PathBuf;

pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../glasso/tests/fixtures"
    ))
}

pub fn read(rel: &str) -> Array2<f64> {
    read_matrix(fixtures_dir().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// One GLASSO case of the manifest.
pub struct Case {
    pub id: String,
    pub dataset: String,
    pub p: usize,
    pub penalty: Penalty,
    pub json: serde_json::Value,
}

impl Case {
    pub fn s_train(&self) -> Array2<f64> {
        read(&format!("{}/S_train.csv", self.dataset))
    }
    pub fn s_val(&self) -> Array2<f64> {
        read(&format!("{}/S_val.csv", self.dataset))
    }
    pub fn theta(&self) -> Array2<f64> {
        read(self.json["files"]["theta"].as_str().unwrap())
    }
    pub fn grad(&self) -> Option<Array2<f64>> {
        self.json["files"]["grad"].as_str().map(read)
    }
    pub fn grad_pair(&self) -> Option<Array2<f64>> {
        self.json["files"]["grad_pair"].as_str().map(read)
    }
    pub fn f64(&self, key: &str) -> f64 {
        self.json[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{}: {key}", self.id))
    }
    pub fn opt_f64(&self, key: &str) -> Option<f64> {
        self.json[key].as_f64()
    }
    pub fn is_scalar(&self) -> bool {
        matches!(self.penalty, Penalty::Scalar { .. })
    }
    /// The fit of the stored Θ̂ (W by Cholesky; certificates recomputed).
    pub fn stored_fit(&self) -> GlassoFit {
        let theta = self.theta();
        let covariance = Cholesky::factor(theta.view())
            .and_then(Cholesky::into_inverse)
            .unwrap();
        let s = self.s_train();
        let lam = self.penalty.to_matrix(self.p);
        let objective = ho_glasso::objective(theta.view(), s.view(), lam.view()).unwrap();
        let dual_gap = ho_glasso::duality_gap(objective, covariance.view(), s.view(), lam.view());
        let kkt_residual =
            ho_glasso::kkt_residual(theta.view(), covariance.view(), s.view(), lam.view());
        GlassoFit {
            precision: theta,
            covariance,
            objective,
            log_det: None,
            dual_gap,
            kkt_residual,
            n_iter: 0,
            status: Status::Converged,
            n_blocks: 1,
        }
    }
}

pub fn manifest() -> serde_json::Value {
    let text = std::fs::read_to_string(fixtures_dir().join("manifest.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

pub fn cases() -> Vec<Case> {
    manifest()["glasso_cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let files = &c["files"];
            let penalty = if c["kind"] == "weighted" {
                Penalty::Matrix(read(files["penalty"].as_str().unwrap()))
            } else {
                Penalty::Scalar {
                    alpha: c["lambda"].as_f64().unwrap(),
                    penalize_diagonal: c["penalize_diagonal"].as_bool().unwrap(),
                }
            };
            Case {
                id: c["id"].as_str().unwrap().to_string(),
                dataset: c["dataset"].as_str().unwrap().to_string(),
                p: c["p"].as_u64().unwrap() as usize,
                penalty,
                json: c.clone(),
            }
        })
        .collect()
}

/// The tight NewtonCd of the end-to-end tests (tol 1e-12, kkt_tol 1e-10).
pub fn tight_solver() -> NewtonCd {
    NewtonCd {
        options: GlassoOptions {
            tol: 1e-12,
            kkt_tol: 1e-10,
            max_iter: 500,
            screening: true,
        },
        ..Default::default()
    }
}

pub fn max_abs(a: &Array2<f64>) -> f64 {
    a.iter().fold(0.0_f64, |m, v| m.max(v.abs()))
}

pub fn max_abs_diff(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    a.iter()
        .zip(b)
        .fold(0.0_f64, |m, (x, y)| m.max((x - y).abs()))
}

pub fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-300)
}

/// A seeded problem of the paper's recipe: `paper_data(p, n, 0.9, seed)`, S of the first
/// half of the rows and S_val of the second.
pub fn random_problem(p: usize, n: usize, seed: u64) -> (Array2<f64>, Array2<f64>) {
    let data = ho_linalg::testing::paper_data(p, n, 0.9, seed);
    let half = n / 2;
    let s = empirical_covariance(data.x.slice(s![..half, ..]), false).unwrap();
    let s_val = empirical_covariance(data.x.slice(s![half.., ..]), false).unwrap();
    (s, s_val)
}

/// Solves `Λ = ratio · λ_max · P` tightly.
pub fn solve_scalar(s: &Array2<f64>, ratio: f64, penalize_diagonal: bool) -> (GlassoFit, Penalty) {
    let penalty = Penalty::Scalar {
        alpha: ratio * lambda_max(s.view()),
        penalize_diagonal,
    };
    let fit = tight_solver()
        .solve(&GlassoProblem::new(s.view(), penalty.clone()), None)
        .unwrap();
    (fit, penalty)
}
