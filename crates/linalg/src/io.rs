//! Reading and writing matrices: CSV (comma-separated, no header, shortest round-trip `f64`
//! text) or `.npy` (2-D float64), chosen by the file extension. Data matrices may carry one
//! header row in CSV. Every write goes to a temporary file in the destination folder that is
//! renamed into place, so a failed run never leaves a partial file.
//!
//! Errors name the file and, for CSV, the 1-based line and column.

use crate::LinalgError;
use ndarray::{Array2, ArrayView2};
use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    Npy,
}

fn format_of(path: &Path) -> Result<Format, LinalgError> {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("csv") => Ok(Format::Csv),
        Some("npy") => Ok(Format::Npy),
        _ => Err(LinalgError::UnsupportedExtension {
            path: path.to_path_buf(),
        }),
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> LinalgError + '_ {
    move |source| LinalgError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads a matrix (`.csv` without header, or `.npy`). NaN and infinite entries are errors.
///
/// # Errors
/// [`LinalgError::Io`], [`LinalgError::EmptyFile`], [`LinalgError::RaggedRow`],
/// [`LinalgError::BadNumber`], [`LinalgError::NonFiniteInFile`], [`LinalgError::Npy`],
/// [`LinalgError::UnsupportedExtension`].
pub fn read_matrix(path: impl AsRef<Path>) -> Result<Array2<f64>, LinalgError> {
    let path = path.as_ref();
    match format_of(path)? {
        Format::Csv => read_csv(path, false),
        Format::Npy => read_npy(path),
    }
}

/// Reads a data matrix X (n × p, rows are samples): `.npy`, or `.csv` whose first row may be a
/// header (it is one when any of its fields is not a number).
///
/// # Errors
/// As [`read_matrix`].
pub fn read_data(path: impl AsRef<Path>) -> Result<Array2<f64>, LinalgError> {
    let path = path.as_ref();
    match format_of(path)? {
        Format::Csv => read_csv(path, true),
        Format::Npy => read_npy(path),
    }
}

fn read_csv(path: &Path, allow_header: bool) -> Result<Array2<f64>, LinalgError> {
    let text = fs::read_to_string(path).map_err(io_err(path))?;
    let mut values = Vec::new();
    let mut ncols = 0usize;
    let mut nrows = 0usize;
    let mut first = true;
    for (idx, raw) in text.lines().enumerate() {
        let line_no = idx + 1;
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if first {
            first = false;
            if allow_header && fields.iter().any(|f| f.parse::<f64>().is_err()) {
                ncols = fields.len();
                continue;
            }
        }
        if ncols == 0 {
            ncols = fields.len();
        } else if fields.len() != ncols {
            return Err(LinalgError::RaggedRow {
                path: path.to_path_buf(),
                line: line_no,
                expected: ncols,
                found: fields.len(),
            });
        }
        for (c, f) in fields.iter().enumerate() {
            let v: f64 = f.parse().map_err(|_| LinalgError::BadNumber {
                path: path.to_path_buf(),
                line: line_no,
                column: c + 1,
            })?;
            if !v.is_finite() {
                return Err(LinalgError::NonFiniteInFile {
                    path: path.to_path_buf(),
                    line: line_no,
                    column: c + 1,
                });
            }
            values.push(v);
        }
        nrows += 1;
    }
    if nrows == 0 {
        return Err(LinalgError::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    Ok(Array2::from_shape_vec((nrows, ncols), values).expect("rows checked equal"))
}

fn read_npy(path: &Path) -> Result<Array2<f64>, LinalgError> {
    let meta = fs::metadata(path).map_err(io_err(path))?;
    if meta.len() == 0 {
        return Err(LinalgError::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    let a: Array2<f64> = ndarray_npy::read_npy(path).map_err(|e| LinalgError::Npy {
        path: path.to_path_buf(),
        source: Box::new(e),
    })?;
    if a.is_empty() {
        return Err(LinalgError::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    if let Some(((r, c), _)) = a.indexed_iter().find(|(_, v)| !v.is_finite()) {
        return Err(LinalgError::NonFiniteInFile {
            path: path.to_path_buf(),
            line: r + 1,
            column: c + 1,
        });
    }
    Ok(a)
}

/// Formats one number as the shortest text that parses back to the same `f64` (plain
/// notation for moderate magnitudes, exponent notation otherwise).
pub fn format_f64(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 || (1e-4..1e15).contains(&a) {
        format!("{v}")
    } else {
        format!("{v:e}")
    }
}

/// Writes a matrix (`.csv`: one row a line, comma-separated, shortest round-trip numbers; or
/// `.npy`) atomically: a temporary file in the same folder, renamed into place.
///
/// # Errors
/// [`LinalgError::Io`], [`LinalgError::Npy`], [`LinalgError::UnsupportedExtension`].
pub fn write_matrix(path: impl AsRef<Path>, a: ArrayView2<'_, f64>) -> Result<(), LinalgError> {
    let path = path.as_ref();
    match format_of(path)? {
        Format::Csv => {
            let mut s = String::with_capacity(a.len() * 24);
            for row in a.rows() {
                for (j, v) in row.iter().enumerate() {
                    if j > 0 {
                        s.push(',');
                    }
                    s.push_str(&format_f64(*v));
                }
                s.push('\n');
            }
            write_atomic(path, s.as_bytes())
        }
        Format::Npy => {
            let tmp = temp_path(path);
            let owned = a.as_standard_layout();
            let r = ndarray_npy::write_npy(&tmp, &owned).map_err(|e| LinalgError::Npy {
                path: path.to_path_buf(),
                source: Box::new(e),
            });
            finish_atomic(path, &tmp, r)
        }
    }
}

/// Writes rows of text as CSV with a header (for traces and tables), atomically.
///
/// # Errors
/// [`LinalgError::Io`].
pub fn write_table(
    path: impl AsRef<Path>,
    header: &[&str],
    rows: &[Vec<f64>],
) -> Result<(), LinalgError> {
    let mut s = header.join(",");
    s.push('\n');
    for row in rows {
        for (j, v) in row.iter().enumerate() {
            if j > 0 {
                s.push(',');
            }
            let _ = write!(s, "{}", format_f64(*v));
        }
        s.push('\n');
    }
    write_atomic(path.as_ref(), s.as_bytes())
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

fn finish_atomic(
    path: &Path,
    tmp: &Path,
    result: Result<(), LinalgError>,
) -> Result<(), LinalgError> {
    match result.and_then(|()| fs::rename(tmp, path).map_err(io_err(path))) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = fs::remove_file(tmp);
            Err(e)
        }
    }
}

/// Writes `bytes` to `path` through a temporary file in the same folder, renamed into place.
///
/// # Errors
/// [`LinalgError::Io`].
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), LinalgError> {
    let tmp = temp_path(path);
    let r = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })()
    .map_err(io_err(path));
    finish_atomic(path, &tmp, r)
}
