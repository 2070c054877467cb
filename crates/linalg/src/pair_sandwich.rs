//! The sparse kernel of the GLASSO pair systems: `(A V A)_P` for a symmetric `V` supported on
//! a set P of unordered pairs, in single or double precision.
//!
//! ```text
//! V = Σ_{(a,b) ∈ P} x_ab (e_a e_bᵀ + e_b e_aᵀ),   (M x)_ab = (A V A)_ab,   (a, b) ∈ P
//! M_(ab),(cd) = A_ac A_bd + A_ad A_bc                (the same M as in `pairs`)
//! ```
//!
//! Two phases, `2|P|m + |P|m` multiply-adds for an m × m dense `A`:
//!
//! 1. `T = V A`, row by row: `T_r· = Σ_{b ∈ N(r)} x_rb A_b·` over the neighbours of r in P
//!    (P stored by rows in both orientations). The columns are cut into panels of 256 bytes
//!    (32 doubles or 64 singles) and `A` is kept packed panel by panel, so that a panel of
//!    `A` (m × 256 bytes: 256 KB at m = 1000) stays in the L2 cache while every row of T
//!    accumulates its panel in vector registers. Phase 2 reads T by columns: the rows are
//!    kept in a tile of 64 bytes' worth of rows (16 singles or 8 doubles) and the tile is
//!    written transposed, a cache line into each row of `Tᵀ`. (A separate tiled transpose
//!    after phase 1 was a serial pass over 2m² values between the two parallel phases: at
//!    m = 1000 on the 68 119 zeros of a matrix-tuning Θ̂, six interleaved runs of 60
//!    products, the median product went 18.1 → 16.4 ms in single precision and 30.5 →
//!    25.7 ms in double on two threads, 24.1–30.9 → 22.3–22.5 ms and 38.9–45.0 →
//!    37.7–38.0 ms on one.)
//! 2. `(A V A)_ab = ⟨(Tᵀ)_a·, A_b·⟩`, pairs visited by blocks of rows b (128 KB of `A`,
//!    kept in L2) and by their first node a within a block (`(Tᵀ)_a·` stays in L1). The dot
//!    products are written with AVX2 vectors: the compiler had vectorized the generic loop
//!    two lanes wide (`xmm` registers), a quarter of the width in single precision. Same
//!    partial sums added in the same order (a test checks the two paths bit for bit); on
//!    the 68 119 zeros above, two threads, five interleaved runs of 60 products, the median
//!    product went 17.0 → 10.9 ms in single precision and 24.6 → 22.8 ms in double.
//!
//! The point of the kernel is single precision: the products are bound by the memory traffic
//! of reading rows of `A`, and `f32` halves it. At m = 1000 with 13 % of the pairs
//! (benchmark `linalg/pair_sandwich`) single precision takes about half the time of double
//! precision, which is on par with the pair-by-pair axpy kernel the solvers use in double
//! precision. Products in single precision have a relative error of ~1e-7·√m; callers use
//! them only where a relative accuracy of 1e-4 is asked (CG corrections of an iterative
//! refinement, loose Newton forcing terms), with residuals in double precision.
//!
//! On CPUs with AVX2 and FMA (detected at run time) the loops are compiled for them; the
//! generic path computes the same sums in the same order (fused multiply-adds).
//!
//! Threads: when a product has at least 2²² multiply-adds (`3|P|m`, ~1 ms) and the rayon pool
//! has more than one thread, each phase runs as two tasks — phase 1 on the two halves of the
//! panels (the rows of `Tᵀ`), phase 2 on the two halves of the visiting order, into a
//! buffer scattered afterwards — computing the same sums in the same order, so the result
//! does not depend on the thread count (`RAYON_NUM_THREADS=1` keeps one thread).

use crate::error::LinalgError;
use crate::krylov::LinearOperator;
use ndarray::{ArrayView1, ArrayView2, ArrayViewMut1};
use rayon::prelude::*;
use std::cell::RefCell;

/// Bytes of a column panel of the packed `A`.
const PANEL_BYTES: usize = 256;

/// Bytes of a row of Tᵀ written at once by phase 1 (one cache line).
const TILE_BYTES: usize = 64;

/// Rows of T in a tile of phase 1 (`TILE_BYTES` of singles).
const TILE_ROWS: usize = TILE_BYTES / 4;

/// Multiply-adds of a product (`3|P|m`) from which each phase is split over two rayon tasks
/// (when the pool has more than one thread): ~1 ms of work, far above the cost of a join.
const PARALLEL_WORK: usize = 1 << 22;

mod private {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// The floating-point type of a [`PairSandwich`]: `f32` or `f64`.
pub trait Lane:
    Copy + Default + PartialEq + std::fmt::Debug + private::Sealed + Send + Sync + 'static
{
    /// `self` rounded to this type.
    fn from_f64(value: f64) -> Self;
    /// `self` as a double.
    fn to_f64(self) -> f64;
    /// `self · a + b`, rounded once.
    fn fma(self, a: Self, b: Self) -> Self;
    /// `self + other`.
    fn add(self, other: Self) -> Self;
    /// Phase 1 with this type's panel width.
    #[doc(hidden)]
    fn phase1(rows: RowsOfV<'_, Self>, panels: &[Self], m: usize, t: &mut [Self]);
    /// Phase 2 with this type's dot-product width.
    #[doc(hidden)]
    fn phase2(rows: &[Self], m: usize, pairs: &[(u32, u32, u32)], v: &[Self], out: &mut [f64]);
}

/// The pattern of `V` by rows (both orientations of every pair) and the values on it.
#[doc(hidden)]
#[derive(Clone, Copy)]
pub struct RowsOfV<'a, T> {
    ptr: &'a [usize],
    nbr: &'a [u32],
    values: &'a [T],
}

macro_rules! lane {
    ($t:ty, $panel:expr, $dot:expr, $phase2_avx2:ident) => {
        impl Lane for $t {
            #[inline(always)]
            fn from_f64(value: f64) -> Self {
                value as $t
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                f64::from(self)
            }
            #[inline(always)]
            fn fma(self, a: Self, b: Self) -> Self {
                self.mul_add(a, b)
            }
            #[inline(always)]
            fn add(self, other: Self) -> Self {
                self + other
            }
            fn phase1(rows: RowsOfV<'_, Self>, panels: &[Self], m: usize, t: &mut [Self]) {
                #[cfg(target_arch = "x86_64")]
                {
                    if has_avx2_fma() {
                        // SAFETY: the CPU supports AVX2 and FMA (checked just above).
                        #[allow(unsafe_code)]
                        unsafe {
                            phase1_avx2::<$t, $panel>(rows, panels, m, t)
                        };
                        return;
                    }
                }
                phase1_body::<$t, $panel>(rows, panels, m, t)
            }
            fn phase2(
                rows: &[Self],
                m: usize,
                pairs: &[(u32, u32, u32)],
                v: &[Self],
                out: &mut [f64],
            ) {
                #[cfg(target_arch = "x86_64")]
                {
                    if has_avx2_fma() {
                        // SAFETY: the CPU supports AVX2 and FMA (checked just above).
                        #[allow(unsafe_code)]
                        unsafe {
                            $phase2_avx2(rows, m, pairs, v, out)
                        };
                        return;
                    }
                }
                phase2_body::<$t, $dot>(rows, m, pairs, v, out)
            }
        }
    };
}

lane!(f64, { PANEL_BYTES / 8 }, 16, phase2_f64_avx2);
lane!(f32, { PANEL_BYTES / 4 }, 32, phase2_f32_avx2);

#[cfg(target_arch = "x86_64")]
#[inline]
fn has_avx2_fma() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn phase1_avx2<T: Lane, const W: usize>(rows: RowsOfV<'_, T>, panels: &[T], m: usize, t: &mut [T]) {
    phase1_body::<T, W>(rows, panels, m, t)
}

/// Phase 2 in single precision with explicit AVX2 vectors ([`dot_f32_avx2`]). Written out
/// because the compiler vectorized the generic [`dot`] two lanes wide (`xmm` registers, eight
/// bytes per load), a quarter of the AVX2 width.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn phase2_f32_avx2(rows: &[f32], m: usize, pairs: &[(u32, u32, u32)], v: &[f32], out: &mut [f64]) {
    for &(a, b, k) in pairs {
        let (a, b) = (a as usize, b as usize);
        out[k as usize] = f64::from(dot_f32_avx2(
            &v[a * m..(a + 1) * m],
            &rows[b * m..(b + 1) * m],
        ));
    }
}

/// Phase 2 in double precision with explicit AVX2 vectors ([`dot_f64_avx2`]; the generic
/// [`dot`] was vectorized two lanes wide, half the AVX2 width).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn phase2_f64_avx2(rows: &[f64], m: usize, pairs: &[(u32, u32, u32)], v: &[f64], out: &mut [f64]) {
    for &(a, b, k) in pairs {
        let (a, b) = (a as usize, b as usize);
        out[k as usize] = dot_f64_avx2(&v[a * m..(a + 1) * m], &rows[b * m..(b + 1) * m]);
    }
}

/// [`dot`]`::<f32, 32>` with four 8-lane accumulators (partial sum `8u + l` in lane l of
/// accumulator u), added in the same pairwise order: the same sums, bit for bit.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn dot_f32_avx2(x: &[f32], y: &[f32]) -> f32 {
    use std::arch::x86_64::{
        _mm256_add_ps, _mm256_castps256_ps128, _mm256_extractf128_ps, _mm256_fmadd_ps,
        _mm256_loadu_ps, _mm256_setzero_ps, _mm_add_ps, _mm_add_ss, _mm_cvtss_f32, _mm_movehl_ps,
        _mm_shuffle_ps,
    };
    let n = x.len().min(y.len());
    let (xp, yp) = (x.as_ptr(), y.as_ptr());
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    while i + 32 <= n {
        for (u, acc) in acc.iter_mut().enumerate() {
            // SAFETY: i + 32 ≤ n, so the eight entries from i + 8u are inside both slices;
            // the loads are unaligned.
            #[allow(unsafe_code)]
            let (a, b) = unsafe {
                (
                    _mm256_loadu_ps(xp.add(i + 8 * u)),
                    _mm256_loadu_ps(yp.add(i + 8 * u)),
                )
            };
            *acc = _mm256_fmadd_ps(a, b, *acc);
        }
        i += 32;
    }
    let mut tail = 0.0_f32;
    for k in i..n {
        tail = x[k].mul_add(y[k], tail);
    }
    // Partial sums k + 16, then k + 8 (accumulators 0 + 2, 1 + 3, then 0 + 1), then within
    // the vector: lanes l + 4, l + 2, l + 1.
    let v = _mm256_add_ps(_mm256_add_ps(acc[0], acc[2]), _mm256_add_ps(acc[1], acc[3]));
    let v4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let v2 = _mm_add_ps(v4, _mm_movehl_ps(v4, v4));
    let v1 = _mm_add_ss(v2, _mm_shuffle_ps::<1>(v2, v2));
    _mm_cvtss_f32(v1) + tail
}

/// [`dot`]`::<f64, 16>` with four 4-lane accumulators, added in the same pairwise order.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn dot_f64_avx2(x: &[f64], y: &[f64]) -> f64 {
    use std::arch::x86_64::{
        _mm256_add_pd, _mm256_castpd256_pd128, _mm256_extractf128_pd, _mm256_fmadd_pd,
        _mm256_loadu_pd, _mm256_setzero_pd, _mm_add_pd, _mm_add_sd, _mm_cvtsd_f64, _mm_unpackhi_pd,
    };
    let n = x.len().min(y.len());
    let (xp, yp) = (x.as_ptr(), y.as_ptr());
    let mut acc = [_mm256_setzero_pd(); 4];
    let mut i = 0;
    while i + 16 <= n {
        for (u, acc) in acc.iter_mut().enumerate() {
            // SAFETY: i + 16 ≤ n, so the four entries from i + 4u are inside both slices;
            // the loads are unaligned.
            #[allow(unsafe_code)]
            let (a, b) = unsafe {
                (
                    _mm256_loadu_pd(xp.add(i + 4 * u)),
                    _mm256_loadu_pd(yp.add(i + 4 * u)),
                )
            };
            *acc = _mm256_fmadd_pd(a, b, *acc);
        }
        i += 16;
    }
    let mut tail = 0.0_f64;
    for k in i..n {
        tail = x[k].mul_add(y[k], tail);
    }
    // Partial sums k + 8, then k + 4, then lanes l + 2, l + 1.
    let v = _mm256_add_pd(_mm256_add_pd(acc[0], acc[2]), _mm256_add_pd(acc[1], acc[3]));
    let v2 = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd::<1>(v));
    let v1 = _mm_add_sd(v2, _mm_unpackhi_pd(v2, v2));
    _mm_cvtsd_f64(v1) + tail
}

/// `Tᵀ` for `T = V A`, columns `j0 = jb·W …` of T (rows of Tᵀ, m entries each) for the
/// panels of W columns of `A` in `panels`; `tt` holds those rows of Tᵀ (at most `W` per
/// panel, fewer past column m). Rows r of T are accumulated in vector registers, a tile of
/// [`TILE_BYTES`] consecutive rows at a time, and the tile is written transposed: each row of
/// Tᵀ receives a whole cache line.
#[inline(always)]
fn phase1_body<T: Lane, const W: usize>(
    rows: RowsOfV<'_, T>,
    panels: &[T],
    m: usize,
    tt: &mut [T],
) {
    let tile_rows = (TILE_BYTES / std::mem::size_of::<T>()).clamp(1, TILE_ROWS);
    let mut tile = [[T::default(); W]; TILE_ROWS];
    let mut col = 0;
    for panel in panels.chunks_exact(m * W) {
        let w = W.min(tt.len() / m - col);
        let mut r0 = 0;
        while r0 < m {
            let rr = tile_rows.min(m - r0);
            for (i, row) in tile.iter_mut().take(rr).enumerate() {
                let r = r0 + i;
                let mut acc = [T::default(); W];
                let range = rows.ptr[r]..rows.ptr[r + 1];
                for (&b, &x) in rows.nbr[range.clone()].iter().zip(&rows.values[range]) {
                    let b = b as usize;
                    let a_row: &[T; W] = panel[b * W..(b + 1) * W]
                        .try_into()
                        .expect("panel rows have W entries");
                    for (acc, &a) in acc.iter_mut().zip(a_row) {
                        *acc = x.fma(a, *acc);
                    }
                }
                *row = acc;
            }
            for l in 0..w {
                let dst = &mut tt[(col + l) * m + r0..(col + l) * m + r0 + rr];
                for (d, row) in dst.iter_mut().zip(&tile) {
                    *d = row[l];
                }
            }
            r0 += rr;
        }
        col += w;
    }
}

/// `out[k] = ⟨v_a·, A_b·⟩` for each `(a, b, k)`.
#[inline(always)]
fn phase2_body<T: Lane, const D: usize>(
    rows: &[T],
    m: usize,
    pairs: &[(u32, u32, u32)],
    v: &[T],
    out: &mut [f64],
) {
    for &(a, b, k) in pairs {
        let (a, b) = (a as usize, b as usize);
        out[k as usize] = dot::<T, D>(&v[a * m..(a + 1) * m], &rows[b * m..(b + 1) * m]).to_f64();
    }
}

/// `⟨x, y⟩` with D independent partial sums, added pairwise.
#[inline(always)]
fn dot<T: Lane, const D: usize>(x: &[T], y: &[T]) -> T {
    let mut acc = [T::default(); D];
    let mut xc = x.chunks_exact(D);
    let mut yc = y.chunks_exact(D);
    for (xs, ys) in (&mut xc).zip(&mut yc) {
        for ((acc, &a), &b) in acc.iter_mut().zip(xs).zip(ys) {
            *acc = a.fma(b, *acc);
        }
    }
    let mut tail = T::default();
    for (&a, &b) in xc.remainder().iter().zip(yc.remainder()) {
        tail = a.fma(b, tail);
    }
    let mut width = D;
    while width > 1 {
        width /= 2;
        for l in 0..width {
            acc[l] = acc[l].add(acc[l + width]);
        }
    }
    acc[0].add(tail)
}

/// `x ↦ (A V A)_P` for unordered pairs P of an m × m symmetric `A`, with products in the
/// precision `T` (module docs). Inputs and outputs are double precision; the operator is
/// symmetric positive definite when `A` is.
pub struct PairSandwich<T: Lane> {
    m: usize,
    /// The pairs as (first, second, position in P), sorted by first node.
    sorted: Vec<(u32, u32, u32)>,
    /// V's pattern by rows: `ptr` (m + 1) into `nbr` (partner) and `slot` (pair index).
    ptr: Vec<usize>,
    nbr: Vec<u32>,
    slot: Vec<u32>,
    /// `A` packed in column panels of `PANEL_BYTES` (zero-padded past column m).
    panels: Vec<T>,
    /// `A` row-major.
    rows: Vec<T>,
    /// For the two-task products: `sorted` with positions local to each half of it.
    halves: Vec<(u32, u32, u32)>,
    scratch: RefCell<Scratch<T>>,
}

struct Scratch<T> {
    /// Values of V on its pattern by rows.
    values: Vec<T>,
    /// Tᵀ.
    v: Vec<T>,
    /// The products in the order of `halves` (two-task products only).
    buf: Vec<f64>,
}

impl<T: Lane> PairSandwich<T> {
    /// The operator for the symmetric `a` (m × m, only read) and the pairs `pairs` (each
    /// unordered pair once, in either orientation; the order fixes the order of the vectors).
    ///
    /// # Errors
    /// [`LinalgError::NotSquare`] if `a` is not square, [`LinalgError::DimensionMismatch`]
    /// for a node index ≥ m or a pair `(i, i)` (`expected` m, `found` the index).
    pub fn new(a: ArrayView2<'_, f64>, pairs: &[(usize, usize)]) -> Result<Self, LinalgError> {
        let (m, cols) = a.dim();
        if m != cols {
            return Err(LinalgError::NotSquare { rows: m, cols });
        }
        for &(i, j) in pairs {
            if i >= m || j >= m || i == j {
                return Err(LinalgError::DimensionMismatch {
                    expected: m,
                    found: if i == j { i } else { i.max(j) },
                });
            }
        }
        let mut ptr = vec![0usize; m + 1];
        for &(i, j) in pairs {
            ptr[i + 1] += 1;
            ptr[j + 1] += 1;
        }
        for r in 0..m {
            ptr[r + 1] += ptr[r];
        }
        let mut fill = ptr.clone();
        let mut nbr = vec![0u32; 2 * pairs.len()];
        let mut slot = vec![0u32; 2 * pairs.len()];
        for (k, &(i, j)) in pairs.iter().enumerate() {
            for (r, c) in [(i, j), (j, i)] {
                nbr[fill[r]] = c as u32;
                slot[fill[r]] = k as u32;
                fill[r] += 1;
            }
        }
        let mut sorted: Vec<(u32, u32, u32)> = pairs
            .iter()
            .enumerate()
            .map(|(k, &(i, j))| (i.min(j) as u32, i.max(j) as u32, k as u32))
            .collect();
        // Phase 2 reads `A_b·` for every pair: grouped by blocks of rows b of 128 KB (which
        // stay in L2), and by a within a block (`(Tᵀ)_a·` stays in L1 across its partners).
        // Measured against the order (a, b): −10 to −20 % at m = 500 and 1000, both
        // precisions (blocks of 64 KB to 256 KB within a few per cent of each other).
        let block = ((128 << 10) / (m.max(1) * std::mem::size_of::<T>())).max(1) as u32;
        let parallel = 3 * pairs.len() * m >= PARALLEL_WORK;
        // The set-up is redone for every Newton system of DualPn and twice per hypergradient:
        // at m = 1000 its sort and packing took ~6 ms on one core, beside products of ~10 ms;
        // the sort and the conversions by rows run on the rayon pool when the products do
        // (the same result with any thread count: keys are distinct).
        if parallel {
            sorted.par_sort_unstable_by_key(|&(a, b, _)| (b / block, a, b));
        } else {
            sorted.sort_unstable_by_key(|&(a, b, _)| (b / block, a, b));
        }
        let width = PANEL_BYTES / std::mem::size_of::<T>();
        let n_panels = m.div_ceil(width);
        let mut panels = vec![T::default(); n_panels * m * width];
        let mut rows = vec![T::default(); m * m];
        // Panel jb holds A[r, jb·width..(jb + 1)·width] at row r (zero past column m).
        let pack = |jb: usize, panel: &mut [T]| {
            let lo = jb * width;
            let hi = (lo + width).min(m);
            for (r, out) in panel.chunks_exact_mut(width).enumerate() {
                let src = a.row(r);
                for (o, j) in out.iter_mut().zip(lo..hi) {
                    *o = T::from_f64(src[j]);
                }
            }
        };
        let convert = |r: usize, out: &mut [T]| {
            for (o, &x) in out.iter_mut().zip(a.row(r).iter()) {
                *o = T::from_f64(x);
            }
        };
        if m > 0 {
            if parallel {
                panels
                    .par_chunks_mut(m * width)
                    .enumerate()
                    .for_each(|(jb, panel)| pack(jb, panel));
                rows.par_chunks_mut(m)
                    .enumerate()
                    .for_each(|(r, out)| convert(r, out));
            } else {
                for (jb, panel) in panels.chunks_exact_mut(m * width).enumerate() {
                    pack(jb, panel);
                }
                for (r, out) in rows.chunks_exact_mut(m).enumerate() {
                    convert(r, out);
                }
            }
        }
        let half = sorted.len() / 2;
        let halves: Vec<(u32, u32, u32)> = if parallel {
            sorted
                .iter()
                .enumerate()
                .map(|(q, &(a, b, _))| (a, b, (if q < half { q } else { q - half }) as u32))
                .collect()
        } else {
            Vec::new()
        };
        Ok(Self {
            m,
            sorted,
            ptr,
            nbr,
            slot,
            panels,
            rows,
            scratch: RefCell::new(Scratch {
                values: vec![T::default(); 2 * pairs.len()],
                v: vec![T::default(); m * m],
                buf: vec![0.0; if parallel { halves.len() } else { 0 }],
            }),
            halves,
        })
    }
}

impl<T: Lane> LinearOperator for PairSandwich<T> {
    fn dim(&self) -> usize {
        self.sorted.len()
    }

    fn apply(&self, x: ArrayView1<'_, f64>, mut out: ArrayViewMut1<'_, f64>) {
        debug_assert_eq!(x.len(), self.dim());
        let mut scratch = self.scratch.borrow_mut();
        let Scratch { values, v, buf } = &mut *scratch;
        for (value, &k) in values.iter_mut().zip(&self.slot) {
            *value = T::from_f64(x[k as usize]);
        }
        let rows = RowsOfV {
            ptr: &self.ptr,
            nbr: &self.nbr,
            values,
        };
        let m = self.m;
        if !self.halves.is_empty() && rayon::current_num_threads() > 1 {
            // Two tasks: the panels of A (rows of Tᵀ) halved, then the pairs halved.
            let width = PANEL_BYTES / std::mem::size_of::<T>();
            let first_panels = m.div_ceil(width) / 2;
            let (v1, v2) = v.split_at_mut(first_panels * width * m);
            let (a1, a2) = self.panels.split_at(first_panels * width * m);
            rayon::join(|| T::phase1(rows, a1, m, v1), || T::phase1(rows, a2, m, v2));
            let half = self.halves.len() / 2;
            let (b1, b2) = buf.split_at_mut(half);
            let (p1, p2) = self.halves.split_at(half);
            let (a_rows, v) = (&self.rows[..], &v[..]);
            rayon::join(
                || T::phase2(a_rows, m, p1, v, b1),
                || T::phase2(a_rows, m, p2, v, b2),
            );
            for (&value, &(_, _, k)) in buf.iter().zip(&self.sorted) {
                out[k as usize] = value;
            }
            return;
        }
        T::phase1(rows, &self.panels, m, v);
        match out.as_slice_mut() {
            Some(out) => T::phase2(&self.rows, self.m, &self.sorted, v, out),
            None => {
                let mut buf = vec![0.0; self.sorted.len()];
                T::phase2(&self.rows, self.m, &self.sorted, v, &mut buf);
                out.assign(&ArrayView1::from(&buf));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::random_spd;
    use ndarray::Array1;

    /// `(A V A)_P` from its definition, pair by pair.
    fn by_definition(a: ArrayView2<'_, f64>, pairs: &[(usize, usize)], x: &[f64]) -> Vec<f64> {
        pairs
            .iter()
            .map(|&(i, j)| {
                pairs
                    .iter()
                    .zip(x)
                    .map(|(&(c, d), &xv)| xv * (a[[i, c]] * a[[j, d]] + a[[i, d]] * a[[j, c]]))
                    .sum()
            })
            .collect()
    }

    fn some_pairs(m: usize, every: usize) -> Vec<(usize, usize)> {
        let mut pairs = Vec::new();
        for i in 0..m {
            for j in i + 1..m {
                if (i * 7 + j * 3) % every == 0 {
                    // Both orientations occur among the inputs.
                    pairs.push(if (i + j) % 2 == 0 { (i, j) } else { (j, i) });
                }
            }
        }
        pairs
    }

    fn check<T: Lane>(m: usize, rel_tol: f64) {
        let a = random_spd(m, 50.0, 3);
        let pairs = some_pairs(m, 5);
        let x: Vec<f64> = (0..pairs.len())
            .map(|k| ((k * 37 % 11) as f64 - 5.0) / 3.0)
            .collect();
        let want = by_definition(a.view(), &pairs, &x);
        let op = PairSandwich::<T>::new(a.view(), &pairs).unwrap();
        let mut got = Array1::zeros(pairs.len());
        op.apply(ArrayView1::from(&x), got.view_mut());
        let scale = want.iter().fold(0.0_f64, |s, v| s.max(v.abs()));
        for (k, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                (g - w).abs() <= rel_tol * scale,
                "m = {m}, pair {k}: {g} vs {w} (scale {scale})"
            );
        }
        // A second application reuses the scratch and gives the same answer.
        let mut again = Array1::zeros(pairs.len());
        op.apply(ArrayView1::from(&x), again.view_mut());
        assert_eq!(got, again);
    }

    #[test]
    fn products_match_the_definition_in_both_precisions() {
        // m below, at and across the panel widths (32 doubles, 64 singles).
        for m in [5, 32, 64, 70, 131] {
            check::<f64>(m, 1e-12);
            check::<f32>(m, 2e-6);
        }
    }

    /// `(A V A)_P` for `x`, computed in a pool of `threads` threads by an operator large enough
    /// for two tasks.
    fn in_pool<T: Lane>(
        threads: usize,
        a: &ndarray::Array2<f64>,
        pairs: &[(usize, usize)],
        x: &[f64],
    ) -> Array1<f64> {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| {
                let op = PairSandwich::<T>::new(a.view(), pairs).unwrap();
                assert!(!op.halves.is_empty());
                let mut out = Array1::zeros(pairs.len());
                op.apply(ArrayView1::from(x), out.view_mut());
                out
            })
    }

    #[test]
    fn two_task_products_equal_one_task_products_and_the_definition() {
        let m = 260;
        let a = random_spd(m, 50.0, 4);
        let pairs = some_pairs(m, 5);
        assert!(3 * pairs.len() * m >= PARALLEL_WORK);
        let x: Vec<f64> = (0..pairs.len())
            .map(|k| ((k * 37 % 11) as f64 - 5.0) / 3.0)
            .collect();
        let want = by_definition(a.view(), &pairs, &x);
        let scale = want.iter().fold(0.0_f64, |s, v| s.max(v.abs()));
        let two64 = in_pool::<f64>(2, &a, &pairs, &x);
        // The same sums in the same order: identical.
        assert_eq!(in_pool::<f64>(1, &a, &pairs, &x), two64);
        assert_eq!(
            in_pool::<f32>(1, &a, &pairs, &x),
            in_pool::<f32>(2, &a, &pairs, &x)
        );
        for (g, w) in two64.iter().zip(&want) {
            assert!((g - w).abs() <= 1e-12 * scale, "{g} vs {w}");
        }
    }

    /// Phase 2 of `T` through the dispatch (AVX2 where the CPU has it) and through the
    /// generic body: the same sums in the same order, so equal bit for bit.
    fn phase2_paths_agree<T: Lane>(dot_width: usize) {
        for m in [1, 15, 16, 31, 32, 33, 70, 131] {
            let a = random_spd(m, 50.0, 5);
            let rows: Vec<T> = a.iter().map(|&x| T::from_f64(x)).collect();
            let v: Vec<T> = (0..m * m)
                .map(|k| T::from_f64(((k * 29 % 13) as f64 - 6.0) / 7.0))
                .collect();
            let pairs: Vec<(u32, u32, u32)> = (0..m * m)
                .step_by(3)
                .enumerate()
                .map(|(k, q)| ((q / m) as u32, (q % m) as u32, k as u32))
                .collect();
            let mut dispatched = vec![0.0; pairs.len()];
            let mut generic = vec![0.0; pairs.len()];
            T::phase2(&rows, m, &pairs, &v, &mut dispatched);
            match dot_width {
                16 => phase2_body::<T, 16>(&rows, m, &pairs, &v, &mut generic),
                _ => phase2_body::<T, 32>(&rows, m, &pairs, &v, &mut generic),
            }
            assert_eq!(dispatched, generic, "m = {m}");
        }
    }

    #[test]
    fn vectorized_phase_two_equals_the_generic_one_bit_for_bit() {
        phase2_paths_agree::<f64>(16);
        phase2_paths_agree::<f32>(32);
    }

    #[test]
    fn strided_output_and_empty_pattern() {
        let a = random_spd(9, 10.0, 1);
        let pairs = [(0, 3), (8, 2), (4, 5)];
        let op = PairSandwich::<f32>::new(a.view(), &pairs).unwrap();
        let x = [1.0, -2.0, 0.5];
        let mut wide = Array1::<f64>::zeros(6);
        op.apply(ArrayView1::from(&x), wide.slice_mut(ndarray::s![..;2]));
        let want = by_definition(a.view(), &pairs, &x);
        for (g, w) in wide.iter().step_by(2).zip(&want) {
            assert!((g - w).abs() <= 1e-5 * w.abs().max(1.0));
        }
        let empty = PairSandwich::<f64>::new(a.view(), &[]).unwrap();
        assert_eq!(empty.dim(), 0);
        empty.apply(ArrayView1::from(&[] as &[f64]), Array1::zeros(0).view_mut());
    }

    #[test]
    fn bad_pairs_and_shapes_are_errors() {
        let a = random_spd(4, 10.0, 1);
        assert!(matches!(
            PairSandwich::<f64>::new(a.view(), &[(1, 1)]),
            Err(LinalgError::DimensionMismatch { found: 1, .. })
        ));
        assert!(matches!(
            PairSandwich::<f32>::new(a.view(), &[(0, 4)]),
            Err(LinalgError::DimensionMismatch {
                expected: 4,
                found: 4
            })
        ));
        let rect = ndarray::Array2::<f64>::zeros((3, 4));
        assert!(matches!(
            PairSandwich::<f64>::new(rect.view(), &[]),
            Err(LinalgError::NotSquare { rows: 3, cols: 4 })
        ));
    }
}
