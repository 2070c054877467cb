//! The empirical covariance of the fixtures' X equals their S (computed with numpy).

use ho_linalg::io::{read_data, read_matrix};
use ho_linalg::{empirical_covariance, logdet_spd, Cholesky};
use ndarray::s;
use std::path::PathBuf;

fn fixture(case: &str, file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(case)
        .join(file)
}

const CASES: [&str; 4] = ["p2_n20_s0", "p5_n50_s1", "p10_n100_s2", "p20_n200_s3"];

fn max_abs_diff(a: &ndarray::Array2<f64>, b: &ndarray::Array2<f64>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    a.iter().zip(b).fold(0.0, |m, (x, y)| m.max((x - y).abs()))
}

#[test]
fn empirical_covariance_matches_fixture_s_train_and_val() {
    for case in CASES {
        let x = read_data(fixture(case, "X.csv")).unwrap();
        let n = x.nrows();
        for (file, rows) in [
            ("S.csv", x.view()),
            ("S_train.csv", x.slice(s![..n / 2, ..])),
            ("S_val.csv", x.slice(s![n / 2.., ..])),
        ] {
            let want = read_matrix(fixture(case, file)).unwrap();
            let got = empirical_covariance(rows, false).unwrap();
            let scale = want.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
            let err = max_abs_diff(&got, &want);
            assert!(err <= 1e-13 * scale, "{case}/{file}: {err:e}");
        }
    }
}

#[test]
fn logdet_and_inverse_of_fixture_covariances() {
    for case in CASES {
        let s = read_matrix(fixture(case, "S.csv")).unwrap();
        let p = s.nrows();
        let c = Cholesky::factor(s.view()).unwrap();
        let inv = c.inverse().unwrap();
        let eye = ndarray::Array2::<f64>::eye(p);
        assert!(max_abs_diff(&s.dot(&inv), &eye) < 1e-10, "{case}");
        // log det S + log det S⁻¹ = 0
        let ld = logdet_spd(s.view()).unwrap();
        let ld_inv = logdet_spd(inv.view()).unwrap();
        assert!((ld + ld_inv).abs() < 1e-10 * (1.0 + ld.abs()), "{case}");
    }
}
