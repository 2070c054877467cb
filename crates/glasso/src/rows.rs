//! Row-parallel passes over p × p matrices for the solvers' O(p²) bookkeeping (directions,
//! line-search trials, gaps, free sets), which otherwise run on one core between the parallel
//! BLAS and pair-kernel products.
//!
//! Rows are cut into fixed chunks of [`ROWS`], so sums are added in the same order whatever
//! the thread count: results do not depend on it. Every pass writes whole rows (both
//! triangles of a symmetric result from symmetric inputs) instead of mirroring the upper
//! triangle, whose column-strided writes dominated the serial loops: one line-search trial at
//! p = 1000 took 13.3 ms mirrored and serial, 2.2 ms by rows on two threads. Below
//! [`PARALLEL_ROWS`] rows the same chunks run on the calling thread.

use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

/// Rows per task.
const ROWS: usize = 16;

/// Matrices with fewer rows are passed over on the calling thread (the same chunks, so the
/// same sums): at p = 100 a pass takes microseconds, less than waking the pool (matrix tuning
/// at p = 100 took 499 ms instead of 435 with every pass parallel).
const PARALLEL_ROWS: usize = 256;

/// The smallest number of chunks per task for a matrix of `n` rows: no split below
/// [`PARALLEL_ROWS`] (rayon then runs the whole pass on the calling thread).
fn min_len(n: usize) -> usize {
    if n >= PARALLEL_ROWS {
        1
    } else {
        usize::MAX
    }
}

/// Calls `f(i, row_i)` for every row of the standard-layout `out`, in parallel.
pub(crate) fn for_each_row(out: &mut Array2<f64>, f: impl Fn(usize, &mut [f64]) + Sync) {
    let p = out.ncols();
    if p == 0 {
        return;
    }
    let data = out
        .as_slice_mut()
        .expect("rows are written into a standard-layout array");
    data.par_chunks_mut(ROWS * p)
        .enumerate()
        .with_min_len(min_len(p))
        .for_each(|(c, rows)| {
            for (r, row) in rows.chunks_exact_mut(p).enumerate() {
                f(c * ROWS + r, row);
            }
        });
}

/// Like [`for_each_row`] on two arrays of the same shape, returning `Σ_i f(i, …)` summed in a
/// fixed order.
pub(crate) fn for_each_row_pair_sum(
    a: &mut Array2<f64>,
    b: &mut Array2<f64>,
    f: impl Fn(usize, &mut [f64], &mut [f64]) -> f64 + Sync,
) -> f64 {
    let p = a.ncols();
    assert_eq!(a.dim(), b.dim(), "arrays of one shape");
    if p == 0 {
        return 0.0;
    }
    let (da, db) = (
        a.as_slice_mut().expect("standard layout"),
        b.as_slice_mut().expect("standard layout"),
    );
    let parts: Vec<f64> = da
        .par_chunks_mut(ROWS * p)
        .zip(db.par_chunks_mut(ROWS * p))
        .enumerate()
        .with_min_len(min_len(p))
        .map(|(c, (ra, rb))| {
            ra.chunks_exact_mut(p)
                .zip(rb.chunks_exact_mut(p))
                .enumerate()
                .map(|(r, (x, y))| f(c * ROWS + r, x, y))
                .sum::<f64>()
        })
        .collect();
    parts.iter().sum()
}

/// Like [`for_each_row`], returning `Σ_i f(i, row_i)` summed in a fixed order.
pub(crate) fn sum_rows_mut(
    out: &mut Array2<f64>,
    f: impl Fn(usize, &mut [f64]) -> f64 + Sync,
) -> f64 {
    let p = out.ncols();
    if p == 0 {
        return 0.0;
    }
    let data = out.as_slice_mut().expect("standard layout");
    let parts: Vec<f64> = data
        .par_chunks_mut(ROWS * p)
        .enumerate()
        .with_min_len(min_len(p))
        .map(|(c, rows)| {
            rows.chunks_exact_mut(p)
                .enumerate()
                .map(|(r, row)| f(c * ROWS + r, row))
                .sum::<f64>()
        })
        .collect();
    parts.iter().sum()
}

/// `Σ_i f(i)` over `0..n`, in parallel, summed in a fixed order.
pub(crate) fn sum_rows(n: usize, f: impl Fn(usize) -> f64 + Sync) -> f64 {
    let parts: Vec<f64> = (0..n.div_ceil(ROWS))
        .into_par_iter()
        .with_min_len(min_len(n))
        .map(|c| (c * ROWS..((c + 1) * ROWS).min(n)).map(&f).sum::<f64>())
        .collect();
    parts.iter().sum()
}

/// The concatenation of `f(i)` over `0..n` in order, computed in parallel.
pub(crate) fn collect_rows<T: Send>(n: usize, f: impl Fn(usize, &mut Vec<T>) + Sync) -> Vec<T> {
    let parts: Vec<Vec<T>> = (0..n.div_ceil(ROWS))
        .into_par_iter()
        .with_min_len(min_len(n))
        .map(|c| {
            let mut v = Vec::new();
            for i in c * ROWS..((c + 1) * ROWS).min(n) {
                f(i, &mut v);
            }
            v
        })
        .collect();
    let mut out = Vec::with_capacity(parts.iter().map(Vec::len).sum());
    for v in parts {
        out.extend(v);
    }
    out
}

/// `f(0) ∘ f(1) ∘ …` over `0..n` for an associative, commutative `op` with identity `id`
/// (`f64::max`, `f64::min`: the result does not depend on the grouping), in parallel.
fn fold_rows(n: usize, f: impl Fn(usize) -> f64 + Sync, id: f64, op: fn(f64, f64) -> f64) -> f64 {
    (0..n.div_ceil(ROWS))
        .into_par_iter()
        .with_min_len(min_len(n))
        .map(|c| (c * ROWS..((c + 1) * ROWS).min(n)).map(&f).fold(id, op))
        .reduce(|| id, op)
}

/// `max_i f(i)` over `0..n` (0 when n = 0; NaN is skipped like `f64::max` does), in
/// parallel.
pub(crate) fn max_rows(n: usize, f: impl Fn(usize) -> f64 + Sync) -> f64 {
    fold_rows(n, f, 0.0, f64::max)
}

/// `min_i f(i)` over `0..n` (+∞ when n = 0), in parallel.
pub(crate) fn min_rows(n: usize, f: impl Fn(usize) -> f64 + Sync) -> f64 {
    fold_rows(n, f, f64::INFINITY, f64::min)
}

/// `a` with its lower triangle replaced by the mirror of its upper one (exactly symmetric;
/// the solvers read the upper triangle of inputs that are symmetric only up to rounding).
pub(crate) fn mirrored_upper(a: ArrayView2<'_, f64>) -> Array2<f64> {
    let mut out = Array2::zeros(a.raw_dim());
    for_each_row(&mut out, |i, row| {
        for (j, v) in row.iter_mut().enumerate() {
            *v = if j < i { a[[j, i]] } else { a[[i, j]] };
        }
    });
    out
}

/// Copies the strict upper triangle of the square standard-layout `a` onto its lower one, by
/// tiles (both the reads and the writes stay within a few cache lines per row of a tile).
pub(crate) fn mirror_upper(a: &mut Array2<f64>) {
    const TILE: usize = 32;
    let p = a.nrows();
    assert_eq!(a.ncols(), p, "a square matrix");
    let d = a.as_slice_mut().expect("standard layout");
    for bi in (0..p).step_by(TILE) {
        for bj in (bi..p).step_by(TILE) {
            for i in bi..(bi + TILE).min(p) {
                for j in bj.max(i + 1)..(bj + TILE).min(p) {
                    d[j * p + i] = d[i * p + j];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_passes_match_serial_loops_and_do_not_depend_on_threads() {
        // Both sides of PARALLEL_ROWS.
        for n in [0, 1, 15, 16, 17, 50, 300] {
            let mut a = Array2::<f64>::zeros((n, n));
            let mut b = Array2::<f64>::zeros((n, n));
            for_each_row(&mut a, |i, row| {
                for (j, v) in row.iter_mut().enumerate() {
                    *v = (i * n + j) as f64;
                }
            });
            let want = Array2::from_shape_fn((n, n), |(i, j)| (i * n + j) as f64);
            assert_eq!(a, want);
            let s = for_each_row_pair_sum(&mut a, &mut b, |i, x, y| {
                y.copy_from_slice(x);
                0.1 * i as f64
            });
            assert_eq!(b, want);
            let serial: f64 = (0..n).map(|i| 0.1 * i as f64).sum();
            assert!((s - serial).abs() <= 1e-12 * serial.max(1.0));
            let one = rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .build()
                .unwrap();
            let f = |i: usize| 1.0 / (1.0 + i as f64);
            assert_eq!(
                sum_rows(n, f).to_bits(),
                one.install(|| sum_rows(n, f)).to_bits()
            );
            let pairs = collect_rows(n, |i, v| v.extend((i + 1..n).map(|j| (i, j))));
            let want: Vec<(usize, usize)> = (0..n)
                .flat_map(|i| (i + 1..n).map(move |j| (i, j)))
                .collect();
            assert_eq!(pairs, want);
            let m = max_rows(n, |i| (i as f64 - 7.0).abs());
            let want = (0..n).map(|i| (i as f64 - 7.0).abs()).fold(0.0, f64::max);
            assert_eq!(m.to_bits(), want.to_bits());
            let m = min_rows(n, |i| (i as f64 - 7.0).abs());
            let want = (0..n)
                .map(|i| (i as f64 - 7.0).abs())
                .fold(f64::INFINITY, f64::min);
            assert_eq!(m.to_bits(), want.to_bits());
            let asym = Array2::from_shape_fn((n, n), |(i, j)| (3 * i + j) as f64);
            let mut mirrored = asym.clone();
            mirror_upper(&mut mirrored);
            assert_eq!(mirrored, mirrored_upper(asym.view()));
            let sym = mirrored_upper(asym.view());
            for i in 0..n {
                for j in 0..n {
                    assert_eq!(sym[[i, j]].to_bits(), asym[[i.min(j), i.max(j)]].to_bits());
                }
            }
        }
    }
}
