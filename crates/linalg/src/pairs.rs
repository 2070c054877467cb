//! A preconditioner for the pair systems of the GLASSO: `(Θ ⊗ Θ)_{P,P}` on a set P of
//! unordered pairs a < b.
//!
//! ```text
//! (M d)_(ab) = (Θ D Θ)_ab,   D symmetric, D_ab = D_ba = d_(ab) on P, 0 elsewhere
//! M_(ab),(cd) = Θ_ac Θ_bd + Θ_ad Θ_bc
//! ```
//!
//! DualPn's Newton systems (P = the dual's free set), ObnCg's Newton systems through the
//! complement of their free set and the hypergradient's Z system (P = the zeros of Θ̂) are of
//! this form. Jacobi (`diag M = Θ_aa Θ_bb + Θ_ab²`) leaves the strong coupling between pairs
//! that share a node: `M_(ab),(ad) = Θ_aa Θ_bd + Θ_ad Θ_ab`, of the size of Θ's off-diagonal
//! entries relative to its diagonal.
//!
//! [`StarPreconditioner`] is the additive Schwarz preconditioner over node stars: for every
//! node i, the block of M on the pairs of P that touch i (its star, a principal submatrix of
//! M, `Θ_ii Θ_{S,S} + θ_S θ_Sᵀ` with S the partners of i and `θ_S = Θ_{S,i}`) is inverted,
//! and
//!
//! ```text
//! K⁻¹ r = Σ_i E_i (M_{star i})⁻¹ E_iᵀ r
//! ```
//!
//! Every pair lies in two stars, so K⁻¹ is a sum of positive semidefinite terms that covers
//! every pair: symmetric positive definite. On a hypergradient Z system of matrix tuning on
//! the paper's data (p = 100, 2241 pairs, κ(Θ̂) = 107; computed offline from the dumped
//! system with exact block inverses) it brought the condition number of the preconditioned
//! matrix from 128 (Jacobi) to 12.9, and CG's iterations to the relative residuals
//! 1e-2 / 1e-4 / 5e-8 from 18 / 43 / 82 to 7 / 15 / 28. Whole stars matter: cutting them into
//! blocks of 32 pairs left 51 iterations to 5e-8, and reusing the blocks of the previous
//! tuning iterate (Θ̂ 1–3 % away) 48–57. On strongly diagonally dominant Θ, where Jacobi is
//! already near the best (κ ≈ 3), the stars can take a few more iterations than Jacobi.
//!
//! A star larger than [`MAX_BLOCK`] pairs is cut into blocks of at most that size (block
//! Jacobi inside the star), which bounds the set-up at `2|P|·MAX_BLOCK²` multiply-adds, the
//! storage at `2|P|·MAX_BLOCK` entries (callers keep Jacobi beyond 64 MB,
//! [`StarPreconditioner::worthwhile`]) and one application at as many multiply-adds.
//!
//! # References
//! B. Smith, P. Bjørstad, W. Gropp, *Domain Decomposition* (1996), ch. 1 (additive Schwarz).

use crate::error::LinalgError;
use crate::krylov::LinearOperator;
use ndarray::{ArrayView1, ArrayView2, ArrayViewMut1};
use std::cell::RefCell;

/// Largest block of [`StarPreconditioner`]: a star with more pairs is cut into blocks of at
/// most this size.
pub const MAX_BLOCK: usize = 64;

/// Largest storage (single-precision entries) for which [`StarPreconditioner::worthwhile`]
/// holds: 64 MB.
const MAX_STORAGE: usize = 1 << 24;

/// SIMD width (single-precision lanes of AVX) to which the blocks' rows are padded.
const LANES: usize = 8;

/// The additive Schwarz preconditioner over node stars of `(Θ ⊗ Θ)_{P,P}` (module docs).
///
/// The blocks, scaled to a unit diagonal in double precision, are inverted and applied in
/// single precision (the input of each block normalized by its largest entry, so that
/// nothing overflows or underflows whatever the units of Θ), as full rows padded to a multiple
/// of 8 entries: a preconditioner only shapes CG's search directions (the residuals stay those
/// of the operator), and full-width rows keep both the set-up (Gauss–Jordan: one
/// axpy of a whole row per row and pivot) and the application (one axpy of a row per pair)
/// free of the short-vector remainders and reduction chains of triangular factors (a
/// packed-triangle version took 2.3 ms to set up and 97 µs to apply on the system below).
/// Measured on the p = 100 system of the module docs (2241 pairs, stars of 45): set-up
/// 1.1–1.3 ms, application ~30 µs, against ~60 µs for one single-precision product `Θ V Θ`
/// (criterion `linalg/pair_preconditioner`: p = 100 set-up 1.09 ms, application 35 µs,
/// product 70 µs; p = 200 7.5 ms, 135 µs, 439 µs).
///
/// Threads: from [`PARALLEL_STORAGE`] entries, when the rayon pool has more than one thread,
/// the set-up and the application run as two tasks on the two halves of the nodes (the same
/// blocks and the same sums as one task: the result does not depend on the thread count).
#[derive(Debug, Clone)]
pub struct StarPreconditioner {
    /// Number of pairs.
    n: usize,
    /// Pair indices of every block, concatenated.
    idx: Vec<usize>,
    /// Block boundaries in `idx` (blocks + 1 entries).
    ptr: Vec<usize>,
    /// The inverses of the blocks scaled to a unit diagonal, `(D^-½ M_block D^-½)⁻¹`, k rows
    /// of `padded(k)` entries each (zero beyond k), concatenated.
    inverses: Vec<f32>,
    /// `D^-½` of each block entry (`1 / √M_qq`), in the order of `idx`.
    scales: Vec<f64>,
    /// Two-task applications: the first block of the second task (`ptr.len() − 1` when the
    /// application stays on one thread).
    split: usize,
    /// Offset of that block in `inverses`.
    split_offset: usize,
    /// Scratch: the second task's sums (two-task applications only).
    second: RefCell<Vec<f64>>,
}

/// Storage (entries of the inverses) from which the set-up and the application are split over
/// two rayon tasks when the pool has more than one thread: 2²⁰ entries, ~0.3 ms of
/// application and ~10 ms of set-up on one thread. Both are otherwise serial steps between
/// the parallel products of CG: on a hypergradient Z system of matrix tuning at p = 1000
/// (68 119 pairs, 8.7 million entries, two threads, medians of 60 applications) the
/// application took 1.1–1.4 ms instead of 2.3–2.6 ms and the set-up 46–52 ms instead of
/// 108–127 ms, next to ~17 ms for one single-precision product.
const PARALLEL_STORAGE: usize = 1 << 20;

/// The blocks of the stars of a range of nodes (see [`StarPreconditioner`]'s fields; their
/// inverses are written into a slice of the caller's).
struct Blocks {
    idx: Vec<usize>,
    /// Block ends in `idx` (no leading 0).
    ends: Vec<usize>,
    scales: Vec<f64>,
}

/// The stars of the pairs as `star[start[i]..start[i + 1]]` (pair indices touching node i).
struct Stars<'a> {
    pairs: &'a [(usize, usize)],
    star: Vec<usize>,
    start: Vec<usize>,
}

impl Stars<'_> {
    /// Entries of the inverses of the blocks of the nodes `nodes`.
    fn storage(&self, nodes: std::ops::Range<usize>) -> usize {
        nodes
            .flat_map(|i| self.star[self.start[i]..self.start[i + 1]].chunks(MAX_BLOCK))
            .map(|b| b.len() * padded(b.len()))
            .sum()
    }

    /// The scaled, inverted blocks of the stars of `nodes`, in node order (the set-up of
    /// [`StarPreconditioner::new`] for those nodes); the inverses go to `inverses`, zero on
    /// entry and of [`Stars::storage`] entries.
    fn blocks(
        &self,
        th: &[f64],
        p: usize,
        nodes: std::ops::Range<usize>,
        inverses: &mut [f32],
    ) -> Result<Blocks, LinalgError> {
        let pairs = self.pairs;
        let n = self.start[nodes.end] - self.start[nodes.start];
        let mut out = Blocks {
            idx: Vec::with_capacity(n),
            ends: Vec::new(),
            scales: Vec::with_capacity(n),
        };
        let mut offset = 0;
        let mut others = Vec::with_capacity(MAX_BLOCK);
        let mut ti = Vec::with_capacity(MAX_BLOCK);
        let mut row = vec![0.0_f32; MAX_BLOCK];
        for i in nodes {
            let tii = th[i * p + i];
            for block in self.star[self.start[i]..self.start[i + 1]].chunks(MAX_BLOCK) {
                let (k, kp) = (block.len(), padded(block.len()));
                others.clear();
                others.extend(block.iter().map(|&q| {
                    let (a, b) = pairs[q];
                    if a == i {
                        b
                    } else {
                        a
                    }
                }));
                ti.clear();
                ti.extend(others.iter().map(|&o| th[i * p + o]));
                // M_(i o_t),(i o_u) = Θ_ii Θ_{o_t o_u} + Θ_{i o_u} Θ_{o_t i}, scaled to a unit
                // diagonal in double precision before single precision: the scaled entries lie
                // in [−1, 1] whatever the units of Θ.
                let first = out.scales.len();
                for (t, (&ot, &tit)) in others.iter().zip(&ti).enumerate() {
                    let d = tii * th[ot * p + ot] + tit * tit;
                    if !(d > 0.0 && d.is_finite()) {
                        return Err(LinalgError::NotPositiveDefinite { pivot: block[t] });
                    }
                    out.scales.push(1.0 / d.sqrt());
                }
                let sc = &out.scales[first..];
                let a = &mut inverses[offset..offset + k * kp];
                offset += k * kp;
                for (t, &ot) in others.iter().enumerate() {
                    let th_ot = &th[ot * p..(ot + 1) * p];
                    let (tit, st) = (ti[t], sc[t]);
                    for u in 0..=t {
                        let v = ((tii * th_ot[others[u]] + ti[u] * tit) * st * sc[u]) as f32;
                        a[t * kp + u] = v;
                        a[u * kp + t] = v;
                    }
                }
                if !invert_spd_rows(a, k, kp, &mut row) {
                    // Keep the (unit) diagonal only.
                    a[..k * kp].fill(0.0);
                    for t in 0..k {
                        a[t * kp + t] = 1.0;
                    }
                }
                out.idx.extend_from_slice(block);
                out.ends.push(out.idx.len());
            }
        }
        Ok(out)
    }
}

/// `k` rounded up to a multiple of [`LANES`].
fn padded(k: usize) -> usize {
    k.div_ceil(LANES) * LANES
}

impl StarPreconditioner {
    /// Whether node stars may be set up for `n_pairs` pairs: their storage (at most
    /// `2·n_pairs·MAX_BLOCK` entries) stays within 64 MB.
    ///
    /// Stars cut into several blocks lose part of their effect, and a bound on the mean star
    /// was tried and rejected: on one cold hypergradient Z system at p = 500 (0.01·λ_max,
    /// 57 000 pairs, stars of ~230) CG took 69 iterations against Jacobi's 73 and 1.17 s
    /// against 0.84 s, but turning the stars off when the mean star exceeds one block made
    /// matrix tuning at p = 500 slower (two runs each: 87 and 95 s against 80 and 78 s).
    pub fn worthwhile(n_pairs: usize) -> bool {
        2 * n_pairs * MAX_BLOCK <= MAX_STORAGE
    }

    /// The preconditioner of `(Θ ⊗ Θ)_{P,P}` for the pairs `pairs` (a ≠ b, in any order) of
    /// the symmetric `theta`.
    ///
    /// A block whose elimination meets a non-positive pivot (Θ not numerically positive
    /// definite) is replaced by its diagonal.
    ///
    /// # Errors
    /// [`LinalgError::NotPositiveDefinite`] (with the index of the pair) when a diagonal entry
    /// `Θ_aa Θ_bb + Θ_ab²` is not positive and finite.
    ///
    /// # Panics
    /// If `theta` is not square or a pair has equal or out-of-range nodes (a programmer
    /// error).
    pub fn new(theta: ArrayView2<'_, f64>, pairs: &[(usize, usize)]) -> Result<Self, LinalgError> {
        let p = theta.nrows();
        assert_eq!(theta.ncols(), p, "Θ must be square");
        let theta = theta.as_standard_layout();
        let th = theta.as_slice().expect("standard layout");
        // The stars in compressed form: the pairs touching node i are star[start[i]..start[i + 1]].
        let mut start = vec![0usize; p + 1];
        for &(a, b) in pairs {
            assert!(
                a != b && a < p && b < p,
                "pair ({a}, {b}) of a {p} × {p} matrix"
            );
            start[a + 1] += 1;
            start[b + 1] += 1;
        }
        for i in 0..p {
            start[i + 1] += start[i];
        }
        let mut fill = start.clone();
        let mut star = vec![0usize; 2 * pairs.len()];
        for (k, &(a, b)) in pairs.iter().enumerate() {
            for node in [a, b] {
                star[fill[node]] = k;
                fill[node] += 1;
            }
        }
        let stars = Stars { pairs, star, start };
        let size = stars.storage(0..p);
        // Two tasks on the nodes, split where the storage of the blocks is halved (the
        // application costs one multiply-add per entry, the set-up k per entry of a block
        // of k pairs: the blocks of MAX_BLOCK pairs dominate both).
        let parallel = size >= PARALLEL_STORAGE && rayon::current_num_threads() > 1;
        // The first node of the second task and the storage of the first.
        let (mut mid, mut split_offset) = (p, size);
        if parallel {
            let mut acc = 0;
            for i in 0..p {
                acc += stars.storage(i..i + 1);
                if 2 * acc >= size {
                    (mid, split_offset) = (i + 1, acc);
                    break;
                }
            }
        }
        let mut inverses = vec![0.0_f32; size];
        let (head, tail) = if mid < p {
            let (first, second) = inverses.split_at_mut(split_offset);
            let (head, tail) = rayon::join(
                || stars.blocks(th, p, 0..mid, first),
                || stars.blocks(th, p, mid..p, second),
            );
            (head?, Some(tail?))
        } else {
            (stars.blocks(th, p, 0..p, &mut inverses)?, None)
        };
        let mut ptr = Vec::with_capacity(head.ends.len() + 2);
        ptr.push(0);
        ptr.extend_from_slice(&head.ends);
        let split = head.ends.len();
        let Blocks {
            mut idx,
            mut scales,
            ..
        } = head;
        if let Some(tail) = tail {
            let base = idx.len();
            ptr.extend(tail.ends.iter().map(|&e| base + e));
            idx.extend_from_slice(&tail.idx);
            scales.extend_from_slice(&tail.scales);
        }
        // Blocks on both sides of the split (only when the nodes were split).
        let two_tasks = split + 1 < ptr.len();
        Ok(Self {
            n: pairs.len(),
            split: if two_tasks { split } else { ptr.len() - 1 },
            split_offset,
            second: RefCell::new(if two_tasks {
                vec![0.0; pairs.len()]
            } else {
                Vec::new()
            }),
            idx,
            ptr,
            inverses,
            scales,
        })
    }
}

/// Replaces the k × k symmetric positive definite matrix `a` (k rows of `kp` entries, zero
/// beyond k) by its inverse; `false` at a non-positive or non-finite pivot.
/// `row` is scratch of length ≥ kp.
fn invert_spd_rows(a: &mut [f32], k: usize, kp: usize, row: &mut [f32]) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        if has_avx2_fma() {
            // SAFETY: the CPU supports AVX2 and FMA (checked just above).
            #[allow(unsafe_code)]
            return unsafe { invert_spd_rows_avx2(a, k, kp, row) };
        }
    }
    invert_spd_rows_sized::<false>(a, k, kp, row)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn invert_spd_rows_avx2(a: &mut [f32], k: usize, kp: usize, row: &mut [f32]) -> bool {
    invert_spd_rows_sized::<true>(a, k, kp, row)
}

/// Row lengths known at compile time: the row updates unroll completely.
#[inline(always)]
fn invert_spd_rows_sized<const AVX: bool>(
    a: &mut [f32],
    k: usize,
    kp: usize,
    row: &mut [f32],
) -> bool {
    match kp / LANES {
        1 => invert_spd_rows_body::<AVX, 1>(a, k, row),
        2 => invert_spd_rows_body::<AVX, 2>(a, k, row),
        3 => invert_spd_rows_body::<AVX, 3>(a, k, row),
        4 => invert_spd_rows_body::<AVX, 4>(a, k, row),
        5 => invert_spd_rows_body::<AVX, 5>(a, k, row),
        6 => invert_spd_rows_body::<AVX, 6>(a, k, row),
        7 => invert_spd_rows_body::<AVX, 7>(a, k, row),
        _ => invert_spd_rows_body::<AVX, 8>(a, k, row),
    }
}

/// The symmetric sweep (Gauss–Jordan elimination without pivoting, stable on symmetric
/// positive definite matrices, whose pivots are the positive diagonals of successive Schur
/// complements): for each pivot j with `d = a_jj` and `r` row j with `r_j = 0`, the rank-one
/// update `a_i −= (r_i / d) r` of every row i ≠ j, then `a_ij = a_ji ← r_i / d` and
/// `a_jj ← −1 / d`; after all pivots the matrix holds `−A⁻¹`, which is negated. k²·kp
/// multiply-adds on whole padded rows. With `AVX`, `r` stays in vector registers and a row
/// costs one load, one fused multiply-add and one store per eight entries: a row-by-row axpy
/// call spent most of its time in call and loop overhead (rows of k ≈ 45 entries), 5× slower.
/// `AVX` only from a function compiled with AVX2 and FMA, after the run-time check.
#[inline(always)]
fn invert_spd_rows_body<const AVX: bool, const CHUNKS: usize>(
    a: &mut [f32],
    k: usize,
    row: &mut [f32],
) -> bool {
    let kp = CHUNKS * LANES;
    assert!(a.len() >= k * kp && row.len() >= kp);
    let r = &mut row[..kp];
    for j in 0..k {
        let d = a[j * kp + j];
        if !(d > 0.0 && d.is_finite()) {
            return false;
        }
        let inv = 1.0 / d;
        r.copy_from_slice(&a[j * kp..(j + 1) * kp]);
        r[j] = 0.0;
        rank_one_rows::<AVX, CHUNKS>(a, k, j, r, inv);
        for (i, &ri) in r.iter().enumerate().take(k) {
            a[i * kp + j] = ri * inv;
            a[j * kp + i] = ri * inv;
        }
        a[j * kp + j] = -inv;
    }
    let mut finite = true;
    for v in &mut a[..k * kp] {
        *v = -*v;
        finite &= v.is_finite();
    }
    finite
}

/// `a_i −= (r_i · inv) r` for every row i < k except `skip` (rows of `CHUNKS · LANES` entries).
#[inline(always)]
fn rank_one_rows<const AVX: bool, const CHUNKS: usize>(
    a: &mut [f32],
    k: usize,
    skip: usize,
    r: &[f32],
    inv: f32,
) {
    let kp = CHUNKS * LANES;
    #[cfg(target_arch = "x86_64")]
    if AVX {
        // SAFETY: `AVX` is only set inside functions compiled with AVX2 and FMA, which are
        // only called after the run-time feature check.
        #[allow(unsafe_code)]
        unsafe {
            rank_one_rows_avx2::<CHUNKS>(a, k, skip, r, inv)
        };
        return;
    }
    for i in (0..k).filter(|&i| i != skip) {
        let f = -r[i] * inv;
        for (v, &rv) in a[i * kp..(i + 1) * kp].iter_mut().zip(r) {
            *v += f * rv;
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
fn rank_one_rows_avx2<const CHUNKS: usize>(
    a: &mut [f32],
    k: usize,
    skip: usize,
    r: &[f32],
    inv: f32,
) {
    use std::arch::x86_64::{
        __m256, _mm256_fmadd_ps, _mm256_loadu_ps, _mm256_set1_ps, _mm256_setzero_ps,
        _mm256_storeu_ps,
    };
    let kp = CHUNKS * LANES;
    assert!(a.len() >= k * kp && r.len() >= kp && k <= r.len());
    let mut rv: [__m256; CHUNKS] = [_mm256_setzero_ps(); CHUNKS];
    for (c, v) in rv.iter_mut().enumerate() {
        // SAFETY: c·8 + 8 ≤ kp ≤ r.len() (asserted); the load is unaligned.
        #[allow(unsafe_code)]
        unsafe {
            *v = _mm256_loadu_ps(r.as_ptr().add(c * LANES));
        }
    }
    let base = a.as_mut_ptr();
    for i in (0..k).filter(|&i| i != skip) {
        let f = _mm256_set1_ps(-r[i] * inv);
        for (c, &v) in rv.iter().enumerate() {
            // SAFETY: i < k, so i·kp + c·8 + 8 ≤ k·kp ≤ a.len() (asserted); unaligned.
            #[allow(unsafe_code)]
            unsafe {
                let p = base.add(i * kp + c * LANES);
                _mm256_storeu_ps(p, _mm256_fmadd_ps(f, v, _mm256_loadu_ps(p)));
            }
        }
    }
}

/// `y ← y + a x` over lengths that are multiples of [`LANES`]; with `AVX`, one fused
/// multiply-add per eight entries (the compiler did not vectorize the plain loop here).
#[inline(always)]
fn axpy_lanes<const AVX: bool>(a: f32, x: &[f32], y: &mut [f32]) {
    debug_assert!(x.len() >= y.len() && y.len().is_multiple_of(LANES));
    #[cfg(target_arch = "x86_64")]
    if AVX {
        // SAFETY: `AVX` is only set inside functions compiled with AVX2 and FMA, which are
        // only called after the run-time feature check.
        #[allow(unsafe_code)]
        unsafe {
            axpy_avx2(a, x, y)
        };
        return;
    }
    for (yc, xc) in y.chunks_exact_mut(LANES).zip(x.chunks_exact(LANES)) {
        for l in 0..LANES {
            yc[l] += a * xc[l];
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
fn axpy_avx2(a: f32, x: &[f32], y: &mut [f32]) {
    use std::arch::x86_64::{_mm256_fmadd_ps, _mm256_loadu_ps, _mm256_set1_ps, _mm256_storeu_ps};
    let av = _mm256_set1_ps(a);
    for (yc, xc) in y.chunks_exact_mut(LANES).zip(x.chunks_exact(LANES)) {
        // SAFETY: both chunks hold exactly eight f32; the loads and store are unaligned.
        #[allow(unsafe_code)]
        unsafe {
            let v = _mm256_fmadd_ps(
                av,
                _mm256_loadu_ps(xc.as_ptr()),
                _mm256_loadu_ps(yc.as_ptr()),
            );
            _mm256_storeu_ps(yc.as_mut_ptr(), v);
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[inline]
fn has_avx2_fma() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

/// The blocks `first..last` of a [`StarPreconditioner`]: `out ← Σ_blocks E D^-½ B⁻¹ D^-½ Eᵀ x`
/// (B the block scaled to a unit diagonal), added into `out` (zero on entry for the whole
/// sum). Per block, `y = D^-½ x` normalized by its largest entry in double precision (so that
/// single precision neither overflows nor underflows), `z = Σ_t y_t (B⁻¹)_t` (rows of the
/// symmetric inverse, no reduction), scaled back.
#[derive(Clone, Copy)]
struct BlockRange<'a> {
    idx: &'a [usize],
    ptr: &'a [usize],
    inverses: &'a [f32],
    scales: &'a [f64],
    /// Offset in `inverses` of the first block.
    offset: usize,
}

impl BlockRange<'_> {
    fn apply(self, x: &[f64], out: &mut [f64]) {
        #[cfg(target_arch = "x86_64")]
        {
            if has_avx2_fma() {
                // SAFETY: the CPU supports AVX2 and FMA (checked just above).
                #[allow(unsafe_code)]
                unsafe {
                    self.apply_avx2(x, out)
                };
                return;
            }
        }
        self.apply_body::<false>(x, out)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn apply_avx2(self, x: &[f64], out: &mut [f64]) {
        self.apply_body::<true>(x, out)
    }

    /// `AVX` as in [`invert_spd_rows_body`].
    #[inline(always)]
    fn apply_body<const AVX: bool>(self, x: &[f64], out: &mut [f64]) {
        let mut buf = [0.0_f32; MAX_BLOCK];
        let mut offset = self.offset;
        for w in self.ptr.windows(2) {
            let (block, sc) = (&self.idx[w[0]..w[1]], &self.scales[w[0]..w[1]]);
            let (k, kp) = (block.len(), padded(block.len()));
            let inv = &self.inverses[offset..offset + k * kp];
            offset += k * kp;
            let norm = block
                .iter()
                .zip(sc)
                .fold(0.0_f64, |m, (&q, &st)| m.max((x[q] * st).abs()));
            if !(norm > 0.0) {
                continue;
            }
            let z = &mut buf[..kp];
            z.fill(0.0);
            for ((&q, &st), r) in block.iter().zip(sc).zip(inv.chunks_exact(kp)) {
                axpy_lanes::<AVX>((x[q] * st / norm) as f32, r, z);
            }
            for ((&zt, &q), &st) in z.iter().zip(block).zip(sc) {
                out[q] += f64::from(zt) * st * norm;
            }
        }
    }
}

impl StarPreconditioner {
    /// The blocks `first..last`, whose inverses start at `offset`.
    fn range(&self, first: usize, last: usize, offset: usize) -> BlockRange<'_> {
        BlockRange {
            idx: &self.idx,
            ptr: &self.ptr[first..=last],
            inverses: &self.inverses,
            scales: &self.scales,
            offset,
        }
    }

    /// The application on slices. Every pair lies in exactly two blocks; with two tasks,
    /// each sums its blocks into its own vector and the two are added, which gives every
    /// pair the same sum `c₁ + c₂` as one pass (`(0 + c₁) + c₂`): the result does not depend
    /// on the thread count.
    fn apply_slices(&self, x: &[f64], out: &mut [f64]) {
        out.fill(0.0);
        let blocks = self.ptr.len() - 1;
        if self.split < blocks && rayon::current_num_threads() > 1 {
            let mut guard = self.second.borrow_mut();
            let second: &mut [f64] = &mut guard;
            second.fill(0.0);
            let head = self.range(0, self.split, 0);
            let tail = self.range(self.split, blocks, self.split_offset);
            rayon::join(|| head.apply(x, out), || tail.apply(x, second));
            for (o, &v) in out.iter_mut().zip(second.iter()) {
                *o += v;
            }
        } else {
            self.range(0, blocks, 0).apply(x, out);
        }
    }
}

impl LinearOperator for StarPreconditioner {
    fn dim(&self) -> usize {
        self.n
    }

    fn apply(&self, x: ArrayView1<'_, f64>, mut out: ArrayViewMut1<'_, f64>) {
        match (x.as_slice(), out.as_slice_mut()) {
            (Some(xs), Some(os)) => self.apply_slices(xs, os),
            // Strided vectors (never met by the CG of this workspace): through copies.
            _ => {
                let xs = x.to_vec();
                let mut os = vec![0.0; out.len()];
                self.apply_slices(&xs, &mut os);
                out.assign(&ArrayView1::from(&os));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dense::Cholesky;
    use crate::krylov::{pcg, CgOptions, JacobiPreconditioner};
    use ndarray::{Array1, Array2};

    /// A dense SPD matrix with off-diagonal entries of 10–40 % of the diagonal.
    fn theta(p: usize) -> Array2<f64> {
        let mut t = Array2::<f64>::zeros((p, p));
        for i in 0..p {
            for j in 0..p {
                t[[i, j]] = if i == j {
                    2.0 + 0.3 * (i as f64).sin()
                } else {
                    0.25 * ((i * 7 + j * 7 + i * j) as f64).cos()
                        / (1.0 + (i as f64 - j as f64).abs()).sqrt()
                };
            }
        }
        let tt = t.t().to_owned();
        t = (&t + &tt) * 0.5;
        for i in 0..p {
            t[[i, i]] += p as f64 * 0.05;
        }
        t
    }

    /// Every other pair (a < b) of a p × p matrix, and a few in reversed order.
    fn pairs(p: usize) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        for a in 0..p {
            for b in a + 1..p {
                if (a + 2 * b) % 3 != 0 {
                    out.push(if (a + b) % 5 == 0 { (b, a) } else { (a, b) });
                }
            }
        }
        out
    }

    /// `M_(ab),(cd) = Θ_ac Θ_bd + Θ_ad Θ_bc` from the definition.
    fn pair_matrix(t: &Array2<f64>, pairs: &[(usize, usize)]) -> Array2<f64> {
        Array2::from_shape_fn((pairs.len(), pairs.len()), |(x, y)| {
            let ((a, b), (c, d)) = (pairs[x], pairs[y]);
            t[[a, c]] * t[[b, d]] + t[[a, d]] * t[[b, c]]
        })
    }

    /// `Σ_blocks E (M_block)⁻¹ Eᵀ` built densely from the definition, blocks as documented.
    fn reference(t: &Array2<f64>, pairs: &[(usize, usize)], max_block: usize) -> Array2<f64> {
        let m = pair_matrix(t, pairs);
        let n = pairs.len();
        let mut k_inv = Array2::<f64>::zeros((n, n));
        for i in 0..t.nrows() {
            let star: Vec<usize> = (0..n)
                .filter(|&q| pairs[q].0 == i || pairs[q].1 == i)
                .collect();
            for block in star.chunks(max_block) {
                let sub = Array2::from_shape_fn((block.len(), block.len()), |(x, y)| {
                    m[[block[x], block[y]]]
                });
                let inv = Cholesky::factor(sub.view())
                    .unwrap()
                    .into_inverse()
                    .unwrap();
                for (x, &qx) in block.iter().enumerate() {
                    for (y, &qy) in block.iter().enumerate() {
                        k_inv[[qx, qy]] += inv[[x, y]];
                    }
                }
            }
        }
        k_inv
    }

    #[test]
    fn equals_the_sum_of_the_inverted_star_blocks() {
        // p = 12, every other pair: stars of ≤ 11 pairs (one block each). p = 100, every pair
        // of nodes 0 and 1 and a chain: stars of 99 pairs, cut into blocks of MAX_BLOCK.
        let mut wide: Vec<(usize, usize)> = (1..100).map(|b| (0, b)).collect();
        wide.extend((2..100).map(|b| (b, 1)));
        wide.extend((2..99).map(|a| (a, a + 1)));
        for (p, pr) in [(12, pairs(12)), (100, wide)] {
            let t = theta(p);
            let pre = StarPreconditioner::new(t.view(), &pr).unwrap();
            let dense = pre.to_dense();
            let want = reference(&t, &pr, MAX_BLOCK);
            let err = (&dense - &want).iter().fold(0.0_f64, |m, v| m.max(v.abs()));
            let scale = want.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
            assert!(
                err <= 1e-5 * scale,
                "p = {p}: max error {err:e} of {scale:e}"
            );
        }
    }

    #[test]
    fn two_task_set_up_and_application_equal_one_task_ones() {
        // p = 200, two pairs in three: stars of ~130 pairs, 2.6 million entries of inverses,
        // above the storage from which two tasks share the work.
        let t = theta(200);
        let pr = pairs(200);
        let x = Array1::from_shape_fn(pr.len(), |k| ((k * 37 % 11) as f64 - 5.0) / 3.0);
        let in_pool = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| {
                    let pre = StarPreconditioner::new(t.view(), &pr).unwrap();
                    let mut out = Array1::zeros(pr.len());
                    pre.apply(x.view(), out.view_mut());
                    (pre, out)
                })
        };
        let (one, y1) = in_pool(1);
        let (two, y2) = in_pool(2);
        assert!(one.inverses.len() >= PARALLEL_STORAGE);
        assert_eq!(one.split, one.ptr.len() - 1);
        assert!(two.split > 0 && two.split < two.ptr.len() - 1);
        assert_eq!(one.idx, two.idx);
        assert_eq!(one.ptr, two.ptr);
        assert_eq!(one.inverses, two.inverses);
        assert_eq!(one.scales, two.scales);
        // The same sums in the same order: identical (the one-task path is checked against
        // the definition above).
        assert_eq!(y1, y2);
        assert!(y2.iter().any(|&v| v != 0.0));
    }

    #[test]
    fn is_symmetric_positive_definite() {
        let t = theta(20);
        let pr = pairs(20);
        let dense = StarPreconditioner::new(t.view(), &pr).unwrap().to_dense();
        let asym = (&dense - &dense.t())
            .iter()
            .fold(0.0_f64, |m, v| m.max(v.abs()));
        let scale = dense.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        assert!(asym <= 1e-6 * scale, "asymmetry {asym:e}");
        assert!(Cholesky::factor(dense.view()).is_ok());
    }

    #[test]
    fn cuts_the_iterations_of_cg_against_jacobi() {
        // A dense precision matrix with κ = 100, as the GLASSO's at small penalties.
        let p = 40;
        let t = crate::testing::random_spd(p, 100.0, 3);
        let pr = pairs(p);
        let m = pair_matrix(&t, &pr);
        let b = Array1::from_shape_fn(pr.len(), |q| ((q * 13) as f64).sin());
        let opts = CgOptions {
            rel_tol: 1e-10,
            abs_tol: 0.0,
            max_iter: 1000,
        };
        let jacobi = JacobiPreconditioner::from_diagonal(m.diag()).unwrap();
        let star = StarPreconditioner::new(t.view(), &pr).unwrap();
        let mut xj = Array1::zeros(pr.len());
        let mut xs = Array1::zeros(pr.len());
        let rj = pcg(&m, Some(&jacobi), b.view(), xj.view_mut(), &opts).unwrap();
        let rs = pcg(&m, Some(&star), b.view(), xs.view_mut(), &opts).unwrap();
        let diff = (&xj - &xs).iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        assert!(diff <= 1e-7, "solutions differ by {diff:e}");
        assert!(
            2 * rs.n_iter <= rj.n_iter,
            "star {} vs Jacobi {} iterations",
            rs.n_iter,
            rj.n_iter
        );
    }

    #[test]
    fn does_not_depend_on_the_units_of_theta() {
        // Θ in units 1e-25 and 1e20 times the reference: M scales by c², K⁻¹ by 1/c². Without
        // the scaling to a unit diagonal the single-precision blocks would underflow (1e-50)
        // or overflow (1e40).
        let p = 15;
        let t = theta(p);
        let pr = pairs(p);
        let x = Array1::from_shape_fn(pr.len(), |q| ((q * 5) as f64).cos() * 1e-3);
        let mut want = Array1::zeros(pr.len());
        StarPreconditioner::new(t.view(), &pr)
            .unwrap()
            .apply(x.view(), want.view_mut());
        let scale = want.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        for c in [1e-25, 1e20] {
            let tc = &t * c;
            let mut got = Array1::zeros(pr.len());
            StarPreconditioner::new(tc.view(), &pr)
                .unwrap()
                .apply(x.view(), got.view_mut());
            let err = (&got * (c * c) - &want)
                .iter()
                .fold(0.0_f64, |m, v| m.max(v.abs()));
            assert!(err <= 1e-6 * scale, "c = {c:e}: error {err:e} of {scale:e}");
        }
    }

    #[test]
    fn stars_beyond_64_mb_are_not_worthwhile() {
        assert!(StarPreconditioner::worthwhile(131_072));
        assert!(!StarPreconditioner::worthwhile(131_073));
    }

    #[test]
    fn a_non_positive_diagonal_is_an_error() {
        let mut t = theta(6);
        t[[2, 2]] = 0.0;
        t[[2, 4]] = 0.0;
        t[[4, 2]] = 0.0;
        let err = StarPreconditioner::new(t.view(), &[(0, 1), (2, 4)]).unwrap_err();
        assert!(
            matches!(err, LinalgError::NotPositiveDefinite { pivot: 1 }),
            "{err:?}"
        );
    }
}
