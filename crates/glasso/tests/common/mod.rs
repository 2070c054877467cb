//! Loading the reference fixtures (see tests/fixtures/README.md).
#![allow(dead_code)]

use ho_glasso::Penalty;
use ho_linalg::io::read_matrix;
use ndarray::Array2;
use std::path::PathBuf;

pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
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
    pub theta_file: String,
    pub grad_file: Option<String>,
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
        read(&self.theta_file)
    }
    pub fn f64(&self, key: &str) -> f64 {
        self.json[key].as_f64().unwrap_or_else(|| panic!("{key}"))
    }
}

pub fn cases() -> Vec<Case> {
    let text = std::fs::read_to_string(fixtures_dir().join("manifest.json")).unwrap();
    let m: serde_json::Value = serde_json::from_str(&text).unwrap();
    m["glasso_cases"]
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
                theta_file: files["theta"].as_str().unwrap().to_string(),
                grad_file: files["grad"].as_str().map(str::to_string),
                json: c.clone(),
            }
        })
        .collect()
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
