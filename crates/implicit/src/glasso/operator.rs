//! The support-restricted Kronecker operator `v ↦ (A V A)_E` applied matrix-free
//! (docs/implicit-diff.md §6 and §7).
//!
//! ```text
//! M = (W ⊗ W)_{E,E}:   (M v)_(ij) = (W V W)_ij = Σ_{(k,l)∈E} W_ik W_jl v_(kl),   (i,j) ∈ E
//! K = (Θ ⊗ Θ)_{E,E}:   the Kronecker preconditioner, K = M⁻¹ exactly when E is full
//! diag(M)_(ij) = W_ii W_jj                                       (the Jacobi preconditioner)
//! ```
//!
//! Both are symmetric positive definite (principal submatrices of the SPD `A ⊗ A`). Two
//! kernels compute `(A V A)_E`, chosen by their cost unless forced ([`Kernel`]):
//!
//! - **sparse**, O(|E| p) for a dense `A` (less when `A` has zeros, e.g. `A = Θ̂` or a
//!   block-diagonal `W`): `T = V A` row by row (`T_k· = Σ_{l:(k,l)∈E} v_kl A_l·`, axpys), then
//!   for every `(i, j) ∈ E`, `(A T)_ij = Σ_k A_ik T_kj` over the nonzeros of `A_i·` (when this
//!   second phase costs more than 4p², as contiguous dot products `A_i· · (Tᵀ)_j·` on a
//!   transposed copy of T);
//! - **dense**, two BLAS products `T = V A`, `A T` (4p³ flops at BLAS speed) and a gather.
//!
//! Neither forms the p² × p² Kronecker matrix; an application allocates nothing (the scratch
//! lives in the operator behind a `RefCell`).

use super::active::ActiveSet;
use ho_linalg::kernels::{axpy, dot, transpose_square};
use ho_linalg::{sandwich, JacobiPreconditioner, LinalgError, LinearOperator};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut1};
use std::cell::RefCell;

/// Which kernel applies `(A V A)_E`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// The cheaper of the two by the cost model of [`RestrictedKronecker::costs`].
    Auto,
    /// The sparse O(|E|·nnz) kernel.
    Sparse,
    /// Two dense BLAS products.
    Dense,
}

/// How many scalar sparse-kernel multiply-adds cost as much as one BLAS flop of the dense
/// kernel, measured on the project's machines with `benches/benches/implicit.rs`
/// (`implicit/adjoint_sparse` vs `implicit/adjoint_dense`).
pub const BLAS_SPEEDUP: f64 = 9.0;

/// `v ↦ (A V A)_E` for a symmetric p × p matrix `A` (W for `M`, Θ̂ for the Kronecker
/// preconditioner) and a support `E`: an |E| × |E| symmetric operator, positive definite when
/// `A` is.
pub struct RestrictedKronecker<'a> {
    a: ArrayView2<'a, f64>,
    active: &'a ActiveSet,
    /// Nonzero columns of each row of `A` (CSR).
    a_ptr: Vec<usize>,
    a_cols: Vec<usize>,
    /// Per row k of T: how many entries the scatter writes (Σ_{l∈E_k} nnz(A_l·)).
    touched: Vec<usize>,
    /// Whether the sparse kernel's second phase reads a transposed copy of T (contiguous dot
    /// products, BLAS `ddot`) instead of gathering from the rows of T.
    transposed_gather: bool,
    kernel: Kernel,
    sparse_cost: f64,
    dense_cost: f64,
    scratch: RefCell<Scratch>,
}

struct Scratch {
    /// T = V A (p × p).
    t: Array2<f64>,
    /// V for the dense kernel (zero off E, always).
    v: Array2<f64>,
    /// A T for the dense kernel.
    full: Array2<f64>,
    /// Tᵀ for the sparse kernel's transposed gather.
    tt: Array2<f64>,
    /// The output when the caller's is not contiguous.
    out: Array1<f64>,
}

impl<'a> RestrictedKronecker<'a> {
    /// The operator `(A V A)_E` with the kernel `kernel` (`Auto` picks by cost).
    ///
    /// # Panics
    /// If `a` is not p × p with p = `active.dim()` (a programmer error).
    pub fn new(a: ArrayView2<'a, f64>, active: &'a ActiveSet, kernel: Kernel) -> Self {
        let p = active.dim();
        assert_eq!(a.dim(), (p, p), "A must be p × p");
        // The pattern of A by rows; a row with at least p/3 nonzeros is treated as dense (its
        // contiguous axpys and dot products beat indexed access to the nonzeros).
        let mut a_ptr = Vec::with_capacity(p + 1);
        let mut a_cols = Vec::new();
        a_ptr.push(0);
        for i in 0..p {
            let start = a_cols.len();
            for j in 0..p {
                if a[[i, j]] != 0.0 {
                    a_cols.push(j);
                }
            }
            if 3 * (a_cols.len() - start) >= p {
                a_cols.truncate(start);
                a_cols.extend(0..p);
            }
            a_ptr.push(a_cols.len());
        }
        let nnz = |l: usize| a_ptr[l + 1] - a_ptr[l];
        let touched: Vec<usize> = (0..p)
            .map(|k| active.row_cols(k).iter().map(|&l| nnz(l)).sum())
            .collect();
        let gather: usize = (0..p).map(|i| nnz(i) * active.row_cols(i).len()).sum();
        let sparse_cost = (touched.iter().sum::<usize>() + gather) as f64;
        let pf = p as f64;
        let dense_cost = 4.0 * pf * pf * pf / BLAS_SPEEDUP + 3.0 * pf * pf;
        let kernel = match kernel {
            Kernel::Auto if sparse_cost <= dense_cost => Kernel::Sparse,
            Kernel::Auto => Kernel::Dense,
            k => k,
        };
        let dense_scratch = if kernel == Kernel::Dense {
            (p, p)
        } else {
            (0, 0)
        };
        // The transposition costs p² moves: worth it when the gather phase over the dense rows
        // of A (where it turns into contiguous dot products) is much larger.
        let dense_gather: usize = (0..p)
            .filter(|&i| nnz(i) == p)
            .map(|i| p * active.row_cols(i).len())
            .sum();
        let transposed_gather = kernel == Kernel::Sparse && dense_gather > 4 * p * p;
        let tt_shape = if transposed_gather { (p, p) } else { (0, 0) };
        Self {
            a,
            active,
            a_ptr,
            a_cols,
            touched,
            transposed_gather,
            kernel,
            sparse_cost,
            dense_cost,
            scratch: RefCell::new(Scratch {
                t: Array2::zeros((p, p)),
                v: Array2::zeros(dense_scratch),
                full: Array2::zeros(dense_scratch),
                tt: Array2::zeros(tt_shape),
                out: Array1::zeros(active.len()),
            }),
        }
    }

    /// The kernel in use (`Sparse` or `Dense`, never `Auto`).
    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// The cost model `(sparse, dense)`: multiply-adds of the sparse kernel, and
    /// `4p³ / BLAS_SPEEDUP + 3p²` for the dense one.
    pub fn costs(&self) -> (f64, f64) {
        (self.sparse_cost, self.dense_cost)
    }

    /// The support.
    pub fn active(&self) -> &ActiveSet {
        self.active
    }

    /// The diagonal `A_ii A_jj` for `(i, j) ∈ E`.
    pub fn diagonal(&self) -> Array1<f64> {
        self.active
            .pairs()
            .map(|(i, j)| self.a[[i, i]] * self.a[[j, j]])
            .collect()
    }

    #[cfg(test)]
    fn transposed_gather(&self) -> bool {
        self.transposed_gather
    }

    fn a_row(&self, l: usize) -> &[usize] {
        &self.a_cols[self.a_ptr[l]..self.a_ptr[l + 1]]
    }

    /// The sparse kernel into a contiguous `out`, with `t` (p × p) as scratch.
    fn apply_sparse(
        &self,
        x: ArrayView1<'_, f64>,
        out: &mut [f64],
        t: &mut Array2<f64>,
        tt: &mut Array2<f64>,
    ) {
        let p = self.active.dim();
        let cols = self.active.cols();
        let a = &self.a;
        // T = V A, row by row: T_k· = Σ_{l ∈ E_k} v_kl A_l·
        for k in 0..p {
            let mut t_row = t.row_mut(k);
            let t_row = t_row.as_slice_mut().expect("standard layout");
            if self.touched[k] * 4 >= p {
                t_row.fill(0.0);
            }
            for pos in self.active.row_range(k) {
                let c = x[pos];
                if c == 0.0 {
                    continue;
                }
                let l = cols[pos];
                let pattern = self.a_row(l);
                match a.row(l).as_slice() {
                    Some(ar) if pattern.len() == p => axpy(c, ar, t_row),
                    Some(ar) => {
                        for &m in pattern {
                            t_row[m] += c * ar[m];
                        }
                    }
                    None => {
                        for &m in pattern {
                            t_row[m] += c * a[[l, m]];
                        }
                    }
                }
            }
        }
        // (A T)_ij for (i, j) ∈ E: Σ_k A_ik T_kj over the nonzeros of A_i·
        if self.transposed_gather {
            transpose_square(
                t.as_slice().expect("standard layout"),
                tt.as_slice_mut().expect("standard layout"),
                p,
            );
            for i in 0..p {
                let a_i = a.row(i);
                let pattern = self.a_row(i);
                let dense_a = pattern.len() == p;
                for pos in self.active.row_range(i) {
                    let tt_j = tt.row(cols[pos]);
                    out[pos] = match (dense_a, a_i.as_slice(), tt_j.as_slice()) {
                        (true, Some(ai), Some(tj)) => dot(ai, tj),
                        (true, _, _) => a_i.dot(&tt_j),
                        (false, Some(ai), Some(tj)) => pattern.iter().map(|&k| ai[k] * tj[k]).sum(),
                        _ => pattern.iter().map(|&k| a_i[k] * tt_j[k]).sum(),
                    };
                }
            }
        } else {
            out.fill(0.0);
            for i in 0..p {
                let range = self.active.row_range(i);
                let row_cols = &cols[range.clone()];
                let out_i = &mut out[range];
                let full_row = row_cols.len() == p;
                for &k in self.a_row(i) {
                    let w = a[[i, k]];
                    if w == 0.0 {
                        continue;
                    }
                    let t_row = t.row(k);
                    let t_row = t_row.as_slice().expect("standard layout");
                    if full_row {
                        axpy(w, t_row, out_i);
                    } else {
                        for (o, &j) in out_i.iter_mut().zip(row_cols) {
                            *o += w * t_row[j];
                        }
                    }
                }
            }
        }
        // Clear the sparse rows of T (dense rows are cleared before their next use).
        for k in 0..p {
            if self.touched[k] * 4 >= p {
                continue;
            }
            for pos in self.active.row_range(k) {
                let l = cols[pos];
                for &m in self.a_row(l) {
                    t[[k, m]] = 0.0;
                }
            }
        }
    }

    /// The dense kernel: `v` is the p × p scratch holding x on E (zero elsewhere).
    fn apply_dense(
        &self,
        x: ArrayView1<'_, f64>,
        out: &mut [f64],
        v: &mut Array2<f64>,
        t: &mut Array2<f64>,
        full: &mut Array2<f64>,
    ) {
        // V carries x on E and zeros elsewhere (entries off E are never written).
        for (k, (i, j)) in self.active.pairs().enumerate() {
            v[[i, j]] = x[k];
        }
        sandwich(self.a.view(), v.view(), t.view_mut(), full.view_mut());
        for (k, (i, j)) in self.active.pairs().enumerate() {
            out[k] = full[[i, j]];
        }
    }
}

impl LinearOperator for RestrictedKronecker<'_> {
    fn dim(&self) -> usize {
        self.active.len()
    }

    fn apply(&self, x: ArrayView1<'_, f64>, mut out: ArrayViewMut1<'_, f64>) {
        debug_assert_eq!(x.len(), self.dim());
        debug_assert_eq!(out.len(), self.dim());
        let mut guard = self.scratch.borrow_mut();
        let Scratch {
            t,
            v,
            full,
            tt,
            out: buf,
        } = &mut *guard;
        let contiguous = out.as_slice_mut().is_some();
        let target: &mut [f64] = match out.as_slice_mut() {
            Some(o) => o,
            None => buf.as_slice_mut().expect("owned vector"),
        };
        match self.kernel {
            Kernel::Dense => self.apply_dense(x, target, v, t, full),
            _ => self.apply_sparse(x, target, t, tt),
        }
        if !contiguous {
            out.assign(buf);
        }
    }
}

/// The explicit `(A ⊗ A)_{E,E}` (|E| × |E|, entry `((i,j),(k,l)) = A_ik A_jl`): the dense
/// reference of the paper, O(|E|²) memory.
pub fn kronecker_matrix(a: ArrayView2<'_, f64>, active: &ActiveSet) -> Array2<f64> {
    let n = active.len();
    let (rows, cols) = (active.rows(), active.cols());
    Array2::from_shape_fn((n, n), |(r, c)| {
        a[[rows[r], rows[c]]] * a[[cols[r], cols[c]]]
    })
}

/// The Jacobi preconditioner of `M = (W ⊗ W)_{E,E}`: `diag(M)_(ij) = W_ii W_jj`.
///
/// # Errors
/// [`LinalgError::NotPositiveDefinite`] if a diagonal entry of W is not positive.
pub fn jacobi_preconditioner(
    covariance: ArrayView2<'_, f64>,
    active: &ActiveSet,
) -> Result<JacobiPreconditioner, LinalgError> {
    let d: Array1<f64> = active
        .pairs()
        .map(|(i, j)| covariance[[i, i]] * covariance[[j, j]])
        .collect();
    JacobiPreconditioner::from_diagonal(d.view())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ho_linalg::testing::random_spd;

    fn sparse_precision(p: usize, seed: u64) -> Array2<f64> {
        // a banded SPD matrix: diagonal dominant, bandwidth 1 and one long-range pair
        let mut t = Array2::<f64>::zeros((p, p));
        for i in 0..p {
            t[[i, i]] = 2.0 + (i as f64 + seed as f64).sin().abs();
            if i + 1 < p {
                t[[i, i + 1]] = -0.4;
                t[[i + 1, i]] = -0.4;
            }
        }
        t[[0, p - 1]] = 0.3;
        t[[p - 1, 0]] = 0.3;
        t
    }

    #[test]
    fn both_kernels_materialize_to_the_explicit_kronecker_matrix() {
        let mut transposed = 0;
        for (p, seed) in [(1, 0), (4, 1), (9, 2), (9, 3)] {
            let theta = if p == 1 {
                Array2::from_elem((1, 1), 2.0)
            } else if seed == 3 {
                random_spd(p, 5.0, 17)
            } else {
                sparse_precision(p, seed)
            };
            let e = ActiveSet::from_precision(theta.view());
            let w = random_spd(p, 10.0, seed);
            for a in [w.view(), theta.view()] {
                let want = kronecker_matrix(a, &e);
                for kernel in [Kernel::Sparse, Kernel::Dense] {
                    let op = RestrictedKronecker::new(a, &e, kernel);
                    assert_eq!(op.kernel(), kernel);
                    transposed += usize::from(op.transposed_gather());
                    let got = op.to_dense();
                    let err = (&got - &want).iter().fold(0.0_f64, |m, v| m.max(v.abs()));
                    assert!(err < 1e-13, "p={p} {kernel:?} err={err}");
                    // repeated application gives the same result (the scratch is cleaned)
                    let again = op.to_dense();
                    assert_eq!(got, again);
                }
            }
        }
        assert!(transposed > 0, "the transposed gather must be exercised");
    }
}
