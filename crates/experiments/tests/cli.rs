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

// ---------------------------------------------------------------------------------------
// hypergrad, tune, experiment

const HYPERGRAD_KEYS: [&str; 7] = [
    "value",
    "grad_lambda",
    "grad_log_lambda",
    "support_size",
    "margin",
    "dual_gap",
    "seconds",
];

const TUNE_KEYS: [&str; 16] = [
    "lambda",
    "criterion",
    "n_outer",
    "n_inner_solves",
    "seconds",
    "optimizer",
    "weighted",
    "lambda_max",
    "lambda_ratio",
    "scalar_criterion",
    "inner_seconds",
    "hypergrad_seconds",
    "termination",
    "n_edges",
    "min_margin",
    "max_relative_gap",
];

/// One GLASSO case of the fixtures' manifest.
fn manifest_case(id: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(fixtures().join("manifest.json")).unwrap();
    let m: serde_json::Value = serde_json::from_str(&text).unwrap();
    m["glasso_cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no case {id}"))
        .clone()
}

fn rel_err(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-300)
}

fn f64_of(json: &serde_json::Value, key: &str) -> f64 {
    json[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number in {json}"))
}

#[test]
fn hypergrad_matches_reference_fixture() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let train = fixture("p10_n100_s2/S_train.csv");
    let val = fixture("p10_n100_s2/S_val.csv");
    for (ratio, method) in [("0.50", "adjoint"), ("0.10", "dense"), ("0.20", "forward")] {
        let case = manifest_case(&format!("p10_n100_s2/scalar_offdiag_r{ratio}"));
        let lambda = f64_of(&case, "lambda");
        let out = glasso_ho(
            dir,
            &[
                "hypergrad",
                "--train",
                &train,
                "--val",
                &val,
                "--lambda",
                &format!("{lambda:e}"),
                "--method",
                method,
                "--out-grad",
                "G.csv",
            ],
        );
        assert_eq!(out.status.code(), Some(0), "{}", stderr_text(&out));
        let json = stdout_json(&out);
        for key in HYPERGRAD_KEYS {
            assert!(json.get(key).is_some(), "missing {key} in {json}");
        }
        assert_eq!(json["method"], method);
        let tol = 1e-6;
        assert!(rel_err(f64_of(&json, "value"), f64_of(&case, "criterion_value")) < tol);
        let g = f64_of(&json, "grad_lambda");
        assert!(
            rel_err(g, f64_of(&case, "dL_dlambda")) < tol,
            "r{ratio} {method}: {g} vs {}",
            case["dL_dlambda"]
        );
        assert!(rel_err(f64_of(&json, "grad_log_lambda"), f64_of(&case, "dL_dalpha")) < tol);
        assert_eq!(json["support_size"], case["support_size"]);
        assert!(rel_err(f64_of(&json, "margin"), f64_of(&case, "min_margin")) < 1e-6);
        assert!(f64_of(&json, "dual_gap").abs() < 1e-8);
        let grad = read_matrix(dir.join("G.csv")).unwrap();
        let want =
            read_matrix(fixtures().join(format!("p10_n100_s2/grad_scalar_offdiag_r{ratio}.csv")))
                .unwrap();
        assert!(rel_diff(&grad, &want) < tol, "{}", rel_diff(&grad, &want));
    }

    // Reconstruction criterion.
    let case = manifest_case("p10_n100_s2/scalar_offdiag_r0.50");
    let out = glasso_ho(
        dir,
        &[
            "hypergrad",
            "--train",
            &train,
            "--val",
            &val,
            "--lambda",
            &format!("{:e}", f64_of(&case, "lambda")),
            "--criterion",
            "reconstruction",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr_text(&out));
    let json = stdout_json(&out);
    let rec = &case["reconstruction"];
    assert!(rel_err(f64_of(&json, "value"), f64_of(rec, "value")) < 1e-6);
    assert!(rel_err(f64_of(&json, "grad_lambda"), f64_of(rec, "dL_dlambda")) < 1e-6);

    // A penalty matrix: no scalar derivative, the matrix in --out-grad.
    let case = manifest_case("p10_n100_s2/weighted_zerodiag");
    let out = glasso_ho(
        dir,
        &[
            "hypergrad",
            "--train",
            &train,
            "--val",
            &val,
            "--penalty-matrix",
            &fixture("p10_n100_s2/penalty_weighted_zerodiag.csv"),
            "--out-grad",
            "G.npy",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr_text(&out));
    let json = stdout_json(&out);
    assert!(json["grad_lambda"].is_null() && json["grad_log_lambda"].is_null());
    assert!(rel_err(f64_of(&json, "value"), f64_of(&case, "criterion_value")) < 1e-6);
    let grad = read_matrix(dir.join("G.npy")).unwrap();
    let want = read_matrix(fixtures().join("p10_n100_s2/grad_weighted_zerodiag.csv")).unwrap();
    assert!(rel_diff(&grad, &want) < 1e-6, "{}", rel_diff(&grad, &want));
}

/// Writes the paper's data (p, n) as X.csv and its 50/50 covariances as S_train/S_val.
fn small_problem(dir: &Path, p: usize, n: usize, seed: u64) {
    let data = ho_linalg::testing::paper_data(p, n, 0.9, seed);
    write_matrix(dir.join("X.csv"), data.x.view()).unwrap();
    let half = n / 2;
    let s_train =
        ho_linalg::empirical_covariance(data.x.slice(ndarray::s![..half, ..]), false).unwrap();
    let s_val =
        ho_linalg::empirical_covariance(data.x.slice(ndarray::s![half.., ..]), false).unwrap();
    write_matrix(dir.join("S_train.csv"), s_train.view()).unwrap();
    write_matrix(dir.join("S_val.csv"), s_val.view()).unwrap();
}

/// Non-empty PNG (by signature).
fn assert_png(path: &Path) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(bytes.len() > 1000, "{} is too small", path.display());
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}", path.display());
}

fn assert_tune_output(dir: &Path, json: &serde_json::Value, p: usize) {
    for key in TUNE_KEYS {
        assert!(json.get(key).is_some(), "missing {key} in {json}");
    }
    let lambda = f64_of(json, "lambda");
    let lmax = f64_of(json, "lambda_max");
    assert!(
        lambda > 0.0 && lambda <= lmax * (1.0 + 1e-12),
        "λ = {lambda}, λ_max {lmax}"
    );
    assert!(lambda >= lmax * (-12.0f64).exp() * (1.0 - 1e-9));
    assert!(json["n_inner_solves"].as_u64().unwrap() >= 1);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(&report, json, "report.json differs from stdout");
    let theta = read_matrix(dir.join("precision.csv")).unwrap();
    assert_eq!(theta.dim(), (p, p));
    assert_symmetric_spd(&theta);
    let lam = read_matrix(dir.join("penalty.csv")).unwrap();
    assert_eq!(lam.dim(), (p, p));
    let trace = std::fs::read_to_string(dir.join("trace.csv")).unwrap();
    let mut lines = trace.lines();
    assert_eq!(
        lines.next(),
        Some("stage,iteration,seconds,value,lambda_or_norm,grad_norm")
    );
    assert!(lines.count() >= 2, "{trace}");
    for png in ["criterion.png", "penalty.png", "precision.png"] {
        assert_png(&dir.join(png));
    }
}

#[test]
fn tune_train_val_and_kfold_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    small_problem(dir, 8, 160, 4);
    let out = glasso_ho(
        dir,
        &[
            "tune",
            "--train",
            "S_train.csv",
            "--val",
            "S_val.csv",
            "--out-dir",
            "run1",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr_text(&out));
    let json = stdout_json(&out);
    assert_tune_output(&dir.join("run1"), &json, 8);
    assert_eq!(json["optimizer"], "lbfgs");
    assert_eq!(json["weighted"], false);
    assert_eq!(json["validation"], "given");
    // stderr is not a terminal here: a few log lines, no progress bar.
    let err = stderr_text(&out);
    assert!(err.lines().count() <= 6, "{err}");
    assert!(!err.contains('\r'));

    // The same folder again replaces the earlier run; --quiet silences stderr.
    let out = glasso_ho(
        dir,
        &[
            "-q",
            "tune",
            "--data",
            "X.csv",
            "--folds",
            "3",
            "--optimizer",
            "armijo",
            "--max-iter",
            "15",
            "--out-dir",
            "run1",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr_text(&out));
    assert!(out.stderr.is_empty());
    let json = stdout_json(&out);
    assert_tune_output(&dir.join("run1"), &json, 8);
    assert_eq!(json["validation"], "3-fold");
    assert_eq!(json["optimizer"], "armijo");
    // No staging folder left behind.
    assert_eq!(
        listing(dir),
        ["S_train.csv", "S_val.csv", "X.csv", "run1"].map(String::from)
    );
}

#[test]
fn tune_weighted_small() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    small_problem(dir, 8, 160, 5);
    std::fs::create_dir(dir.join("empty")).unwrap();
    let out = glasso_ho(
        dir,
        &[
            "-q",
            "tune",
            "--train",
            "S_train.csv",
            "--val",
            "S_val.csv",
            "--weighted",
            "--max-iter",
            "20",
            "--out-dir",
            "empty",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr_text(&out));
    let json = stdout_json(&out);
    assert_tune_output(&dir.join("empty"), &json, 8);
    assert_eq!(json["weighted"], true);
    assert!(json["matrix_termination"].is_string());
    // The matrix stage starts at λ* and does not end worse.
    assert!(f64_of(&json, "criterion") <= f64_of(&json, "scalar_criterion") + 1e-9);
    let trace = std::fs::read_to_string(dir.join("empty/trace.csv")).unwrap();
    assert!(trace.lines().any(|l| l.starts_with("matrix,")));
    let lam = read_matrix(dir.join("empty/penalty.csv")).unwrap();
    for i in 0..8 {
        assert!(lam[[i, i]].abs() < 1e-300, "unpenalized diagonal");
        for j in 0..i {
            assert!((lam[[i, j]] - lam[[j, i]]).abs() <= 1e-12 * lam[[i, j]].abs());
        }
    }
}

#[test]
fn tune_bad_inputs_exit_2_and_create_no_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    small_problem(dir, 5, 40, 6);
    std::fs::write(dir.join("asym.csv"), "1,0.5\n0.2,1\n").unwrap();
    std::fs::write(dir.join("sym2.csv"), "1,0.5\n0.5,1\n").unwrap();
    std::fs::create_dir(dir.join("full")).unwrap();
    std::fs::write(dir.join("full/keep.txt"), "x").unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--data", "nope.csv"], "nope.csv"),
        (vec!["--data", "X.csv", "--folds", "1"], "--folds"),
        (
            vec!["--data", "X.csv", "--val-fraction", "1.5"],
            "--val-fraction",
        ),
        (
            vec!["--data", "X.csv", "--optimizer", "newton"],
            "possible values",
        ),
        (
            vec![
                "--data",
                "X.csv",
                "--train",
                "S_train.csv",
                "--val",
                "S_val.csv",
            ],
            "cannot be used with",
        ),
        (
            vec!["--train", "asym.csv", "--val", "S_val.csv"],
            "not symmetric",
        ),
        (
            vec!["--train", "S_train.csv", "--val", "sym2.csv"],
            "dimension",
        ),
        (vec!["--train", "S_train.csv"], "--val"),
        (vec!["--data", "X.csv", "--max-iter", "0"], "--max-iter"),
    ];
    for (flags, needle) in cases {
        let mut args = vec!["tune"];
        args.extend(flags.iter().copied());
        args.extend(["--out-dir", "out"]);
        let err = assert_usage_error(dir, &args);
        assert!(err.contains(needle), "{flags:?}: {err:?} lacks {needle:?}");
        assert!(!dir.join("out").exists());
    }
    // A non-empty folder that is not an earlier run is refused.
    let err = assert_usage_error(dir, &["tune", "--data", "X.csv", "--out-dir", "full"]);
    assert!(err.contains("not empty"), "{err}");
    assert_eq!(listing(&dir.join("full")), ["keep.txt"]);
    // hypergrad: bad method, negative λ, missing file.
    let t = "S_train.csv";
    for (args, needle) in [
        (
            vec![
                "hypergrad",
                "--train",
                t,
                "--val",
                t,
                "--lambda",
                "0.1",
                "--method",
                "magic",
            ],
            "possible values",
        ),
        (
            vec!["hypergrad", "--train", t, "--val", t, "--lambda", "-1"],
            "≥ 0",
        ),
        (
            vec![
                "hypergrad",
                "--train",
                "no.csv",
                "--val",
                t,
                "--lambda",
                "0.1",
            ],
            "no.csv",
        ),
        (
            vec!["experiment", "fig9", "--out-dir", "figs"],
            "possible values",
        ),
    ] {
        let err = assert_usage_error(dir, &args);
        assert!(err.contains(needle), "{args:?}: {err:?} lacks {needle:?}");
    }
}

#[test]
fn experiment_fig1_quick() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let out = glasso_ho(
        dir,
        &[
            "-q",
            "experiment",
            "fig1",
            "--p",
            "6",
            "--quick",
            "--out-dir",
            "figs",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr_text(&out));
    let json = stdout_json(&out);
    assert_eq!(json["experiment"], "fig1");
    assert_png(&dir.join("figs/fig1.png"));
    let text = std::fs::read_to_string(dir.join("figs/fig1.csv")).unwrap();
    assert_eq!(
        text.lines().next(),
        Some("lambda,lambda_ratio,heldout,oracle_error,n_edges")
    );
    assert_eq!(text.lines().count(), 21);
    let it = std::fs::read_to_string(dir.join("figs/fig1_iterates.csv")).unwrap();
    assert!(it.lines().any(|l| l.starts_with("gd,scalar,")));
    assert!(it.lines().any(|l| l.starts_with("lbfgs,scalar,")));
    assert_eq!(
        listing(&dir.join("figs")),
        ["fig1.csv", "fig1.png", "fig1_iterates.csv"].map(String::from)
    );
}

#[test]
fn experiment_solvers_quick() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let out = glasso_ho(
        dir,
        &[
            "-q",
            "experiment",
            "solvers",
            "--quick",
            "--out-dir",
            "figs",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr_text(&out));
    assert_png(&dir.join("figs/solvers.png"));
    let text = std::fs::read_to_string(dir.join("figs/solvers.csv")).unwrap();
    // 2 sizes × 4 regimes × 6 solvers (none over the time budget at p ≤ 50); a converged
    // row is certified to the default relative gap, and the default solver always converges
    assert_eq!(text.lines().count(), 1 + 2 * 4 * 6, "{text}");
    for line in text.lines().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields.len(), 10, "{line}");
        let gap: f64 = fields[8].parse().unwrap();
        let converged: bool = fields[9].parse().unwrap();
        if fields[0] == "auto" {
            assert!(converged, "{line}");
        }
        if converged {
            assert!(gap <= 1e-8, "{line}");
        }
    }
}

#[test]
fn the_program_restarts_on_openblas_fast_kernels_when_its_cpu_detection_fails() {
    // With OPENBLAS_VERBOSE=2, OpenBLAS prints `Core: <name>` on stderr when it is loaded:
    // once, or twice when the program restarted itself (ho_linalg::blas_core): with
    // OPENBLAS_CORETYPE when the first load fell back to a generic core, and with
    // OPENBLAS_THREAD_TIMEOUT when BLAS is threaded (the same core twice).
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_glasso-ho"))
        .current_dir(dir.path())
        .env_remove("OPENBLAS_CORETYPE")
        .env("OPENBLAS_VERBOSE", "2")
        .arg("--version")
        .output()
        .expect("the binary runs");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("glasso-ho "));
    let stderr = stderr_text(&out);
    let cores: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Core: "))
        .collect();
    assert!(!cores.is_empty() && cores.len() <= 2, "{stderr}");
    if cores.len() == 2 && !ho_linalg::blas_core::is_generic_core(cores[0]) {
        assert_eq!(
            cores[0], cores[1],
            "a restart for the thread timeout keeps the core"
        );
    }
    if let Some(widest) = ho_linalg::blas_core::widest_core() {
        let last = cores[cores.len() - 1];
        assert!(
            !ho_linalg::blas_core::is_generic_core(last),
            "{widest} CPU on {stderr}"
        );
        if cores.len() == 2 && ho_linalg::blas_core::is_generic_core(cores[0]) {
            assert_eq!(cores[1], widest);
        }
    }
}
