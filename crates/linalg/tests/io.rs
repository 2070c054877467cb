//! CSV and .npy round trips and every bad-file error.

use ho_linalg::io::{read_data, read_matrix, write_matrix};
use ho_linalg::testing::random_spd;
use ho_linalg::LinalgError;
use ndarray::{array, Array2};
use std::fs;

fn tricky() -> Array2<f64> {
    array![
        [0.1, -0.0, 1e-300, 5e-324],
        [1.0 / 3.0, -2.5e17, 123456789.0, f64::MAX],
        [f64::MIN_POSITIVE, -1e-5, 0.30000000000000004, 7.0]
    ]
}

fn bits_equal(a: &Array2<f64>, b: &Array2<f64>) -> bool {
    a.shape() == b.shape() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

#[test]
fn csv_and_npy_round_trips_are_bit_exact() {
    let dir = tempfile::tempdir().unwrap();
    for a in [tricky(), random_spd(13, 1e4, 1)] {
        for name in ["m.csv", "m.npy"] {
            let p = dir.path().join(name);
            write_matrix(&p, a.view()).unwrap();
            let b = read_matrix(&p).unwrap();
            assert!(bits_equal(&a, &b), "{name}");
        }
    }
    // no temporary file left behind
    let left: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(left.len(), 2);
}

#[test]
fn data_csv_may_have_a_header() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.csv");
    fs::write(&p, "a,b,c\n1,2,3\n4,5,6\n").unwrap();
    let x = read_data(&p).unwrap();
    assert_eq!(x, array![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]);
    // a matrix file may not
    assert!(matches!(
        read_matrix(&p),
        Err(LinalgError::BadNumber {
            line: 1,
            column: 1,
            ..
        })
    ));
}

#[test]
fn bad_files_give_their_variant() {
    let dir = tempfile::tempdir().unwrap();
    let w = |name: &str, text: &[u8]| {
        let p = dir.path().join(name);
        fs::write(&p, text).unwrap();
        p
    };
    assert!(matches!(
        read_matrix(dir.path().join("missing.csv")),
        Err(LinalgError::Io { .. })
    ));
    assert!(matches!(
        read_matrix(w("empty.csv", b"\n\n")),
        Err(LinalgError::EmptyFile { .. })
    ));
    assert!(matches!(
        read_matrix(w("ragged.csv", b"1,2\n3\n")),
        Err(LinalgError::RaggedRow {
            line: 2,
            expected: 2,
            found: 1,
            ..
        })
    ));
    assert!(matches!(
        read_matrix(w("bad.csv", b"1,2\n3,x\n")),
        Err(LinalgError::BadNumber {
            line: 2,
            column: 2,
            ..
        })
    ));
    assert!(matches!(
        read_matrix(w("nan.csv", b"1,NaN\n3,4\n")),
        Err(LinalgError::NonFiniteInFile {
            line: 1,
            column: 2,
            ..
        })
    ));
    assert!(matches!(
        read_matrix(w("inf.csv", b"1,2\n3,-inf\n")),
        Err(LinalgError::NonFiniteInFile {
            line: 2,
            column: 2,
            ..
        })
    ));
    assert!(matches!(
        read_matrix(w("m.txt", b"1")),
        Err(LinalgError::UnsupportedExtension { .. })
    ));
    assert!(matches!(
        read_matrix(w("garbage.npy", b"not an npy file at all")),
        Err(LinalgError::Npy { .. })
    ));
    assert!(matches!(
        read_matrix(w("empty.npy", b"")),
        Err(LinalgError::EmptyFile { .. })
    ));
    let nan_npy = dir.path().join("nan.npy");
    write_matrix(&nan_npy, array![[1.0, f64::NAN]].view()).unwrap();
    assert!(matches!(
        read_matrix(&nan_npy),
        Err(LinalgError::NonFiniteInFile {
            line: 1,
            column: 2,
            ..
        })
    ));
}

#[test]
fn failed_write_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("no_such_folder").join("m.csv");
    assert!(matches!(
        write_matrix(&p, array![[1.0]].view()),
        Err(LinalgError::Io { .. })
    ));
    assert!(!p.exists());
}
