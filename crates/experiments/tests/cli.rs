//! End-to-end tests of the `glasso-ho` binary: run it in a temporary folder and check its
//! JSON, its files, its exit codes and its one-line errors.

use ho_linalg::io::{read_matrix, write_matrix};
use ho_linalg::Cholesky;
use ndarray::Array2;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const FIT_KEYS: [&str; 9] = [
    "solver",
    "lambda",
    "objective",
    "dual_gap",
    "kkt_residual",
    "n_iter",
    "n_edges",
    "converged",
    "seconds",
];

fn glasso_ho(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_glasso-ho"))
        .current_dir(dir)
        .env("OPENBLAS_NUM_THREADS", "1")
        .args(args)
        .output()
        .expect("the binary runs")
}

fn stdout_json(out: &Output) -> serde_json::Value {
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    assert_eq!(text.lines().count(), 1, "stdout: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn stderr_text(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../glasso/tests/fixtures")
}

fn fixture(rel: &str) -> String {
    fixtures().join(rel).to_str().unwrap().to_string()
}

/// λ of one GLASSO case of the shared fixtures' manifest.
fn manifest_lambda(id: &str) -> f64 {
    let text = std::fs::read_to_string(fixtures().join("manifest.json")).unwrap();
    let m: serde_json::Value = serde_json::from_str(&text).unwrap();
    m["glasso_cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no case {id}"))["lambda"]
        .as_f64()
        .unwrap()
}

fn max_abs(a: &Array2<f64>) -> f64 {
    a.iter().fold(0.0_f64, |m, v| m.max(v.abs()))
}

fn rel_diff(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    max_abs(&(a - b)) / max_abs(b)
}

fn assert_fit_json(json: &serde_json::Value) {
    for key in FIT_KEYS {
        assert!(json.get(key).is_some(), "missing key {key} in {json}");
    }
    assert!(json["objective"].is_f64());
    assert!(json["n_iter"].is_u64());
    assert!(json["n_edges"].is_u64());
    assert!(json["seconds"].as_f64().unwrap() >= 0.0);
}

fn assert_symmetric_spd(theta: &Array2<f64>) {
    assert_eq!(theta.nrows(), theta.ncols());
    for i in 0..theta.nrows() {
        for j in 0..i {
            assert!(
                (theta[[i, j]] - theta[[j, i]]).abs() <= 1e-12 * max_abs(theta),
                "Θ not symmetric at ({i}, {j})"
            );
        }
    }
    assert!(Cholesky::factor(theta.view()).is_ok(), "Θ not SPD");
}

/// The files in `dir` (names), sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Exit code 2, exactly one line `glasso-ho: error: ...` on stderr, nothing on stdout, and no
/// new file in `dir`.
fn assert_usage_error(dir: &Path, args: &[&str]) -> String {
    let before = listing(dir);
    let out = glasso_ho(dir, args);
    let err = stderr_text(&out);
    assert_eq!(out.status.code(), Some(2), "{args:?}: stderr {err}");
    assert_eq!(err.lines().count(), 1, "{args:?}: stderr {err}");
    assert!(err.starts_with("glasso-ho: error: "), "{err}");
    assert!(out.stdout.is_empty(), "{args:?}");
    assert_eq!(listing(dir), before, "{args:?} left a file behind");
    err
}

#[test]
fn generate_then_fit_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let out = glasso_ho(
        dir,
        &[
            "generate",
            "--p",
            "15",
            "--n",
            "200",
            "--seed",
            "3",
            "--out",
            "X.csv",
            "--precision-out",
            "T.csv",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr_text(&out));
    let gen = stdout_json(&out);
    assert_eq!(gen["p"], 15);
    assert_eq!(gen["n"], 200);
    let x = read_matrix(dir.join("X.csv")).unwrap();
    assert_eq!(x.dim(), (200, 15));
    let truth = read_matrix(dir.join("T.csv")).unwrap();
    assert_symmetric_spd(&truth);

    // Same seed, same data.
    let again = glasso_ho(
        dir,
        &[
            "-q", "generate", "--p", "15", "--n", "200", "--seed", "3", "--out", "X2.npy",
        ],
    );
    assert_eq!(again.status.code(), Some(0));
    assert!(again.stderr.is_empty(), "--quiet must silence the logs");
    let x2 = read_matrix(dir.join("X2.npy")).unwrap();
    assert!(rel_diff(&x2, &x) == 0.0);

    for (input, ratio) in [("X.csv", "0.3"), ("X2.npy", "0.1")] {
        let out = glasso_ho(
            dir,
            &[
                "fit",
                "--data",
                input,
                "--lambda-ratio",
                ratio,
                "--solver",
                "newton-cd",
                "--out",
                "theta.csv",
            ],
        );
        assert_eq!(out.status.code(), Some(0), "{}", stderr_text(&out));
        let json = stdout_json(&out);
        assert_fit_json(&json);
        assert_eq!(json["solver"], "newton-cd");
        assert_eq!(json["converged"], true);
        assert!(json["lambda"].as_f64().unwrap() > 0.0);
        assert!(json["dual_gap"].as_f64().unwrap().abs() < 1e-6);
        assert!(json["relative_gap"].as_f64().unwrap() <= 1e-8);
        let theta = read_matrix(dir.join("theta.csv")).unwrap();
        assert_eq!(theta.dim(), (15, 15));
        assert_symmetric_spd(&theta);
        let edges = (0..15)
            .map(|i| (0..i).filter(|&j| theta[[i, j]] != 0.0).count())
            .sum::<usize>();
        assert_eq!(json["n_edges"].as_u64().unwrap() as usize, edges);
    }
}

#[test]
fn fit_cov_matches_reference_fixture() {
    let tmp = tempfile::tempdir().unwrap();
    let lambda = manifest_lambda("p10_n100_s2/scalar_offdiag_r0.50");
    let out = glasso_ho(
        tmp.path(),
        &[
            "fit",
            "--cov",
            &fixture("p10_n100_s2/S_train.csv"),
            "--lambda",
            &format!("{lambda:e}"),
            "--solver",
            "newton-cd",
            "--tol",
            "1e-12",
            "--out",
            "theta.npy",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr_text(&out));
    let json = stdout_json(&out);
    assert_fit_json(&json);
    assert_eq!(json["converged"], true);
    assert!((json["lambda"].as_f64().unwrap() - lambda).abs() <= 1e-15 * lambda);
    assert!(json["kkt_residual"].as_f64().unwrap() < 1e-8);
    let theta = read_matrix(tmp.path().join("theta.npy")).unwrap();
    let want = read_matrix(fixtures().join("p10_n100_s2/theta_scalar_offdiag_r0.50.csv")).unwrap();
    assert!(
        rel_diff(&theta, &want) <= 1e-7,
        "{}",
        rel_diff(&theta, &want)
    );
    assert_eq!(json["n_edges"], 1);
}

#[test]
fn fit_penalty_matrix_matches_reference_fixture() {
    let tmp = tempfile::tempdir().unwrap();
    let out = glasso_ho(
        tmp.path(),
        &[
            "fit",
            "--cov",
            &fixture("p10_n100_s2/S_train.csv"),
            "--penalty-matrix",
            &fixture("p10_n100_s2/penalty_weighted_posdiag.csv"),
            "--solver",
            "newton-cd",
            "--tol",
            "1e-12",
            "--out",
            "theta.csv",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr_text(&out));
    let json = stdout_json(&out);
    assert_fit_json(&json);
    assert!(json["lambda"].is_null());
    assert_eq!(json["converged"], true);
    let theta = read_matrix(tmp.path().join("theta.csv")).unwrap();
    let want = read_matrix(fixtures().join("p10_n100_s2/theta_weighted_posdiag.csv")).unwrap();
    assert!(
        rel_diff(&theta, &want) <= 1e-7,
        "{}",
        rel_diff(&theta, &want)
    );
}

#[test]
fn non_convergence_writes_the_fit_and_exits_1() {
    let tmp = tempfile::tempdir().unwrap();
    let out = glasso_ho(
        tmp.path(),
        &[
            "fit",
            "--cov",
            &fixture("p20_n200_s3/S_train.csv"),
            "--lambda-ratio",
            "0.05",
            "--solver",
            "newton-cd",
            "--max-iter",
            "1",
            "--tol",
            "1e-14",
            "--out",
            "theta.csv",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr_text(&out));
    let json = stdout_json(&out);
    assert_fit_json(&json);
    assert_eq!(json["converged"], false);
    let err = stderr_text(&out);
    let last = err.lines().last().unwrap();
    assert!(last.starts_with("glasso-ho: error: "), "{err}");
    assert!(last.contains("did not converge"), "{err}");
    assert_symmetric_spd(&read_matrix(tmp.path().join("theta.csv")).unwrap());
}

#[test]
fn help_and_version_exit_0() {
    let tmp = tempfile::tempdir().unwrap();
    for args in [
        &["--help"][..],
        &["fit", "--help"],
        &["generate", "-h"],
        &["--version"],
    ] {
        let out = glasso_ho(tmp.path(), args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(!out.stdout.is_empty());
    }
    let help = String::from_utf8(glasso_ho(tmp.path(), &["fit", "--help"]).stdout).unwrap();
    for flag in [
        "--data",
        "--cov",
        "--lambda",
        "--lambda-ratio",
        "--penalty-matrix",
        "--penalize-diagonal",
        "--assume-centered",
        "--solver",
        "--tol",
        "--max-iter",
        "--out",
    ] {
        assert!(help.contains(flag), "{flag} missing from fit --help");
    }
}

#[test]
fn bad_inputs_exit_2_with_one_line_and_no_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let write = |name: &str, text: &str| std::fs::write(dir.join(name), text).unwrap();
    let s = Array2::from_shape_fn((3, 3), |(i, j)| if i == j { 2.0 } else { 0.5 });
    write_matrix(dir.join("S.csv"), s.view()).unwrap();
    write("ragged.csv", "1,0.5,0\n0.5,1\n0,0,1\n");
    write("nan.csv", "1,0.5\nNaN,1\n");
    write("rect.csv", "1,0.5,0\n0.5,1,0\n");
    write("asym.csv", "1,0.5\n0.2,1\n");
    write("one_row.csv", "a,b,c\n1,2,3\n");
    write("L_neg.csv", "0,-1,0\n-1,0,0\n0,0,0\n");

    let fit = |input: &[&str], rest: &[&str]| -> Vec<String> {
        let mut v = vec!["fit".to_string()];
        v.extend(input.iter().map(|s| s.to_string()));
        v.extend(rest.iter().map(|s| s.to_string()));
        v.extend(["--solver", "newton-cd", "--out", "theta.csv"].map(String::from));
        v
    };
    let lam = ["--lambda", "0.1"];
    let cases: Vec<(&str, Vec<String>, &str)> = vec![
        (
            "missing file",
            fit(&["--cov", "nope.csv"], &lam),
            "nope.csv",
        ),
        ("ragged", fit(&["--cov", "ragged.csv"], &lam), "line 2"),
        ("nan", fit(&["--cov", "nan.csv"], &lam), "nan.csv"),
        (
            "non-square",
            fit(&["--cov", "rect.csv"], &lam),
            "not square",
        ),
        (
            "asymmetric",
            fit(&["--cov", "asym.csv"], &lam),
            "not symmetric",
        ),
        (
            "negative lambda",
            fit(&["--cov", "S.csv"], &["--lambda", "-0.1"]),
            "≥ 0",
        ),
        (
            "negative penalty matrix",
            fit(&["--cov", "S.csv"], &["--penalty-matrix", "L_neg.csv"]),
            "L_neg.csv",
        ),
        (
            "one sample",
            fit(&["--data", "one_row.csv"], &lam),
            "too few samples",
        ),
        (
            "unknown flag",
            fit(&["--cov", "S.csv"], &["--lambda", "0.1", "--frobnicate"]),
            "--frobnicate",
        ),
        (
            "lambda and matrix",
            fit(
                &["--cov", "S.csv"],
                &["--lambda", "0.1", "--penalty-matrix", "S.csv"],
            ),
            "cannot be used with",
        ),
        (
            "no penalty",
            fit(&["--cov", "S.csv"], &[]),
            "--lambda-ratio",
        ),
        (
            "bad tol",
            fit(&["--cov", "S.csv"], &["--lambda", "0.1", "--tol", "0"]),
            "--tol",
        ),
        (
            "bad max-iter",
            fit(&["--cov", "S.csv"], &["--lambda", "0.1", "--max-iter", "0"]),
            "--max-iter",
        ),
        (
            "bad output extension",
            vec![
                "fit",
                "--cov",
                "S.csv",
                "--lambda",
                "0.1",
                "--out",
                "theta.txt",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
            "extension",
        ),
        (
            "missing output folder",
            vec![
                "fit",
                "--cov",
                "S.csv",
                "--lambda",
                "0.1",
                "--out",
                "no/theta.csv",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
            "does not exist",
        ),
        (
            "unknown solver",
            vec![
                "fit",
                "--cov",
                "S.csv",
                "--lambda",
                "0.1",
                "--solver",
                "magic",
                "--out",
                "theta.csv",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
            "possible values",
        ),
        (
            "p zero",
            vec![
                "generate", "--p", "0", "--n", "10", "--seed", "1", "--out", "X.csv",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
            "--p",
        ),
        (
            "n zero",
            vec![
                "generate", "--p", "3", "--n", "0", "--seed", "1", "--out", "X.csv",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
            "--n",
        ),
        ("no command", vec![], "no command"),
    ];
    for (name, args, needle) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let err = assert_usage_error(dir, &args);
        assert!(err.contains(needle), "{name}: {err:?} lacks {needle:?}");
    }
}
