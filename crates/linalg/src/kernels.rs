//! Level-1 kernels for the coordinate-descent inner loops (`dot`, `axpy`), with an AVX2 + FMA
//! code path chosen at run time, and the tiled transposition of square matrices
//! (`transpose_square`) shared by the sparse products of the pair systems.
//!
//! The coordinate methods (NewtonCd, Bcd) spend their time in length-p dot products and axpys
//! on rows of W: too short and too many for a BLAS call (its dispatch costs about as much as a
//! p = 100 axpy), and compiled for baseline x86-64 (SSE2, two lanes, no FMA) by default. On
//! CPUs with AVX2 and FMA (detected once; `is_x86_feature_detected!` caches the answer) the
//! same loops run four lanes wide with fused multiply-adds. Results differ from the baseline
//! path only by rounding (a fused multiply-add rounds once).
//!
//! The only `unsafe` in the workspace is the call into the `#[target_feature]` functions,
//! which is sound because it is guarded by the run-time feature test.

/// `⟨x, y⟩` over the common length, with independent partial sums (the order of the additions
/// is not the sequential one).
#[inline]
pub fn dot(x: &[f64], y: &[f64]) -> f64 {
    #[cfg(target_arch = "x86_64")]
    {
        if has_avx2_fma() {
            // SAFETY: the CPU supports AVX2 and FMA (checked just above).
            #[allow(unsafe_code)]
            return unsafe { dot_avx2(x, y) };
        }
    }
    dot_generic(x, y)
}

/// `y ← y + a x` over the common length.
#[inline]
pub fn axpy(a: f64, x: &[f64], y: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    {
        if has_avx2_fma() {
            // SAFETY: the CPU supports AVX2 and FMA (checked just above).
            #[allow(unsafe_code)]
            unsafe {
                axpy_avx2(a, x, y)
            };
            return;
        }
    }
    axpy_generic(a, x, y)
}

/// `dst ← srcᵀ` for square m × m row-major matrices, by 32 × 32 tiles (each tile's rows and
/// columns stay in cache).
///
/// # Panics
/// If either slice is shorter than m² (a programmer error).
pub fn transpose_square<T: Copy>(src: &[T], dst: &mut [T], m: usize) {
    const TILE: usize = 32;
    assert!(
        src.len() >= m * m && dst.len() >= m * m,
        "slices shorter than m²"
    );
    for i0 in (0..m).step_by(TILE) {
        for j0 in (0..m).step_by(TILE) {
            for i in i0..(i0 + TILE).min(m) {
                for j in j0..(j0 + TILE).min(m) {
                    dst[j * m + i] = src[i * m + j];
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[inline]
fn has_avx2_fma() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

#[inline(always)]
fn dot_generic(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len().min(y.len());
    let (x, y) = (&x[..n], &y[..n]);
    let mut acc = [0.0_f64; 8];
    let mut xc = x.chunks_exact(8);
    let mut yc = y.chunks_exact(8);
    for (a, b) in (&mut xc).zip(&mut yc) {
        for k in 0..8 {
            acc[k] += a[k] * b[k];
        }
    }
    let mut tail = 0.0;
    for (a, b) in xc.remainder().iter().zip(yc.remainder()) {
        tail += a * b;
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

#[inline(always)]
fn axpy_generic(a: f64, x: &[f64], y: &mut [f64]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn dot_avx2(x: &[f64], y: &[f64]) -> f64 {
    use std::arch::x86_64::{
        __m256d, _mm256_add_pd, _mm256_fmadd_pd, _mm256_loadu_pd, _mm256_setzero_pd,
        _mm256_storeu_pd,
    };
    let n = x.len().min(y.len());
    let (xp, yp) = (x.as_ptr(), y.as_ptr());
    let mut acc0: __m256d = _mm256_setzero_pd();
    let mut acc1: __m256d = _mm256_setzero_pd();
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: i + 8 ≤ n, so the eight elements from i are inside both slices; the loads
        // are unaligned.
        #[allow(unsafe_code)]
        let (a0, b0, a1, b1) = unsafe {
            (
                _mm256_loadu_pd(xp.add(i)),
                _mm256_loadu_pd(yp.add(i)),
                _mm256_loadu_pd(xp.add(i + 4)),
                _mm256_loadu_pd(yp.add(i + 4)),
            )
        };
        acc0 = _mm256_fmadd_pd(a0, b0, acc0);
        acc1 = _mm256_fmadd_pd(a1, b1, acc1);
        i += 8;
    }
    let mut lanes = [0.0_f64; 4];
    // SAFETY: `lanes` holds four f64; the store is unaligned.
    #[allow(unsafe_code)]
    unsafe {
        _mm256_storeu_pd(lanes.as_mut_ptr(), _mm256_add_pd(acc0, acc1))
    };
    let mut tail = 0.0_f64;
    for k in i..n {
        tail = x[k].mul_add(y[k], tail);
    }
    (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]) + tail
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn axpy_avx2(a: f64, x: &[f64], y: &mut [f64]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi = a.mul_add(*xi, *yi);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize) -> (Vec<f64>, Vec<f64>) {
        let x = (0..n).map(|i| ((i * 7 + 3) % 11) as f64 - 5.0).collect();
        let y = (0..n)
            .map(|i| ((i * 5 + 1) % 13) as f64 * 0.25 - 1.5)
            .collect();
        (x, y)
    }

    #[test]
    fn dot_and_axpy_match_the_sequential_loops_for_every_length() {
        // Small integers and quarters: every partial sum is exact, so any summation order
        // and fused or unfused multiply-adds give the same result bit for bit.
        for n in 0..40 {
            let (x, y) = data(n);
            // `+ 0.0` turns the −0.0 of an empty `sum` into +0.0.
            let expect: f64 = x.iter().zip(&y).map(|(a, b)| a * b).sum::<f64>() + 0.0;
            assert_eq!(dot(&x, &y).to_bits(), expect.to_bits(), "n = {n}");
            assert_eq!(dot_generic(&x, &y).to_bits(), expect.to_bits(), "n = {n}");
            let mut z = y.clone();
            axpy(-0.5, &x, &mut z);
            let mut z2 = y.clone();
            axpy_generic(-0.5, &x, &mut z2);
            for k in 0..n {
                let e = y[k] - 0.5 * x[k];
                assert_eq!(z[k].to_bits(), e.to_bits(), "n = {n}, k = {k}");
                assert_eq!(z2[k].to_bits(), e.to_bits(), "n = {n}, k = {k}");
            }
        }
    }

    #[test]
    fn transpose_square_transposes_across_tile_edges() {
        for m in [1, 31, 32, 45, 70] {
            let src: Vec<usize> = (0..m * m).collect();
            let mut dst = vec![0; m * m];
            transpose_square(&src, &mut dst, m);
            for i in 0..m {
                for j in 0..m {
                    assert_eq!(dst[j * m + i], src[i * m + j], "m = {m}");
                }
            }
        }
    }

    #[test]
    fn lengths_differ_uses_the_common_prefix() {
        let (x, y) = data(10);
        assert_eq!(dot(&x[..7], &y).to_bits(), dot(&x[..7], &y[..7]).to_bits());
        let mut z = y.clone();
        axpy(2.0, &x[..3], &mut z);
        assert_eq!(&z[3..], &y[3..]);
        assert!(z[..3] != y[..3]);
    }

    #[test]
    fn rounding_agrees_with_the_generic_path_to_a_few_ulps() {
        let n = 1001;
        let x: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin()).collect();
        let y: Vec<f64> = (0..n).map(|i| (i as f64 * 0.11).cos()).collect();
        let scale: f64 = x.iter().zip(&y).map(|(a, b)| (a * b).abs()).sum();
        assert!((dot(&x, &y) - dot_generic(&x, &y)).abs() <= 4.0 * f64::EPSILON * scale);
    }
}
