//! The support `E` of a GLASSO solution and its vectorization (docs/implicit-diff.md §3).
//!
//! ```text
//! E = {(i, j) : Θ̂_ij ≠ 0}      ordered pairs, row-major order; always holds the diagonal
//! v ∈ R^|E|  ↔  V ∈ R^{p×p} with V_ij = v_(ij) on E and 0 elsewhere
//! s_(ij) = sign(Θ̂_ij)          (s_ii = +1 since Θ̂_ii > 0)
//! ```
//!
//! Θ̂ is symmetric, so `E` is a symmetric set: `(i, j) ∈ E ⇔ (j, i) ∈ E`.

use ndarray::{Array1, ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2};

/// Marker of an entry outside the support in [`ActiveSet::position`]'s table.
const NONE: usize = usize::MAX;

/// The support `E` of Θ̂ (ordered pairs in row-major order) with the signs `s`, stored by rows
/// (compressed sparse rows) with a p × p position table.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveSet {
    p: usize,
    row_ptr: Vec<usize>,
    rows: Vec<usize>,
    cols: Vec<usize>,
    signs: Vec<f64>,
    index: Vec<usize>,
}

impl ActiveSet {
    /// The support of `precision` (entries that are exactly nonzero) and its signs.
    ///
    /// # Panics
    /// If `precision` is not square (a programmer error; fits are always square).
    pub fn from_precision(precision: ArrayView2<'_, f64>) -> Self {
        let p = precision.nrows();
        assert_eq!(p, precision.ncols(), "Θ̂ must be square");
        Self::from_pattern(p, |i, j| {
            let t = precision[[i, j]];
            (t != 0.0).then(|| t.signum())
        })
    }

    /// The complement Z of the support: the ordered pairs where Θ̂ is exactly zero, in
    /// row-major order, with signs +1 (unused). Unlike a support it never holds the diagonal.
    pub fn complement(&self) -> Self {
        let p = self.p;
        Self::from_pattern(p, |i, j| (self.index[i * p + j] == NONE).then_some(1.0))
    }

    /// The pairs `(i, j)` (row-major) where `sign(i, j)` is `Some`, with that sign.
    fn from_pattern(p: usize, sign: impl Fn(usize, usize) -> Option<f64>) -> Self {
        let mut row_ptr = Vec::with_capacity(p + 1);
        let (mut rows, mut cols, mut signs) = (Vec::new(), Vec::new(), Vec::new());
        let mut index = vec![NONE; p * p];
        row_ptr.push(0);
        for i in 0..p {
            for j in 0..p {
                if let Some(s) = sign(i, j) {
                    index[i * p + j] = cols.len();
                    rows.push(i);
                    cols.push(j);
                    signs.push(s);
                }
            }
            row_ptr.push(cols.len());
        }
        Self {
            p,
            row_ptr,
            rows,
            cols,
            signs,
            index,
        }
    }

    /// p.
    pub fn dim(&self) -> usize {
        self.p
    }

    /// |E|, the number of ordered pairs.
    pub fn len(&self) -> usize {
        self.cols.len()
    }

    /// Whether E is empty (never for a GLASSO fit, which holds the diagonal).
    pub fn is_empty(&self) -> bool {
        self.cols.is_empty()
    }

    /// Whether E holds every pair (Θ̂ has no zero).
    pub fn is_full(&self) -> bool {
        self.len() == self.p * self.p
    }

    /// The position of `(i, j)` in the vectorization, `None` off the support.
    pub fn position(&self, i: usize, j: usize) -> Option<usize> {
        match self.index[i * self.p + j] {
            NONE => None,
            k => Some(k),
        }
    }

    /// The positions `start..end` of row `i`'s pairs.
    pub fn row_range(&self, i: usize) -> std::ops::Range<usize> {
        self.row_ptr[i]..self.row_ptr[i + 1]
    }

    /// The columns `j` with `(i, j) ∈ E`, sorted.
    pub fn row_cols(&self, i: usize) -> &[usize] {
        &self.cols[self.row_range(i)]
    }

    /// The row of every pair, in vector order.
    pub fn rows(&self) -> &[usize] {
        &self.rows
    }

    /// The column of every pair, in vector order.
    pub fn cols(&self) -> &[usize] {
        &self.cols
    }

    /// The signs `s_(ij) = sign(Θ̂_ij)`, in vector order.
    pub fn signs(&self) -> &[f64] {
        &self.signs
    }

    /// The pairs `(i, j)` in vector order.
    pub fn pairs(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.rows.iter().copied().zip(self.cols.iter().copied())
    }

    /// `out ← a_E` (the entries of a p × p matrix on the support).
    ///
    /// # Panics
    /// If the shapes do not match (a programmer error).
    pub fn gather(&self, a: ArrayView2<'_, f64>, mut out: ArrayViewMut1<'_, f64>) {
        debug_assert_eq!(out.len(), self.len());
        for (k, (i, j)) in self.pairs().enumerate() {
            out[k] = a[[i, j]];
        }
    }

    /// `a_E` as a new vector.
    pub fn gather_owned(&self, a: ArrayView2<'_, f64>) -> Array1<f64> {
        let mut out = Array1::zeros(self.len());
        self.gather(a, out.view_mut());
        out
    }

    /// `out ← V`: `v` on the support, 0 elsewhere.
    ///
    /// # Panics
    /// If the shapes do not match (a programmer error).
    pub fn scatter(&self, v: ArrayView1<'_, f64>, mut out: ArrayViewMut2<'_, f64>) {
        debug_assert_eq!(v.len(), self.len());
        out.fill(0.0);
        for (k, (i, j)) in self.pairs().enumerate() {
            out[[i, j]] = v[k];
        }
    }

    /// Moves a vector on the support `from` to this support (warm starts across supports):
    /// entries of pairs in both supports are kept, new pairs start at 0, dropped pairs are
    /// forgotten. `None` when the dimensions differ.
    pub fn remap_from(&self, from: &ActiveSet, v: ArrayView1<'_, f64>) -> Option<Array1<f64>> {
        if from.p != self.p || v.len() != from.len() {
            return None;
        }
        if from.cols == self.cols && from.row_ptr == self.row_ptr {
            return Some(v.to_owned());
        }
        Some(
            self.pairs()
                .map(|(i, j)| from.position(i, j).map_or(0.0, |k| v[k]))
                .collect(),
        )
    }

    /// The norm of the antisymmetric part of `v` (a vector on this set): `‖(v − vᵀ)/2‖`, over
    /// both orientations of every pair (a pair whose transpose is not in the set is skipped;
    /// supports of symmetric matrices and their complements have none).
    pub fn antisymmetric_norm(&self, v: ArrayView1<'_, f64>) -> f64 {
        debug_assert_eq!(v.len(), self.len());
        let mut sum = 0.0;
        for (k, (i, j)) in self.pairs().enumerate() {
            let l = self.index[j * self.p + i];
            if i < j && l != NONE {
                let half = 0.5 * (v[k] - v[l]);
                sum += 2.0 * half * half;
            }
        }
        sum.sqrt()
    }

    /// Replaces `v` (a vector on this set) by its symmetric part `(v + vᵀ)/2` (on the pairs
    /// whose transpose is in the set).
    pub fn symmetrize(&self, mut v: ArrayViewMut1<'_, f64>) {
        debug_assert_eq!(v.len(), self.len());
        for k in 0..self.len() {
            let (i, j) = (self.rows[k], self.cols[k]);
            let l = self.index[j * self.p + i];
            if i < j && l != NONE {
                let mean = 0.5 * (v[k] + v[l]);
                v[k] = mean;
                v[l] = mean;
            }
        }
    }

    /// Number of ordered pairs in exactly one of the two supports (p² when p differs).
    pub fn symmetric_difference(&self, other: &ActiveSet) -> usize {
        if self.p != other.p {
            return self.p.max(other.p).pow(2);
        }
        self.index
            .iter()
            .zip(&other.index)
            .filter(|(a, b)| (**a == NONE) != (**b == NONE))
            .count()
    }
}

/// The smallest off-support margin `min_{(k,l)∉E} Λ_kl − |W_kl − S_kl|`: how far the solution
/// is from a support change (strict complementarity holds when it is > 0;
/// docs/implicit-diff.md §8). `None` when E is full.
pub fn off_support_margin(
    active: &ActiveSet,
    covariance: ArrayView2<'_, f64>,
    emp_cov: ArrayView2<'_, f64>,
    lam: ArrayView2<'_, f64>,
) -> Option<f64> {
    let p = active.dim();
    let mut margin: Option<f64> = None;
    for i in 0..p {
        for j in 0..p {
            if active.position(i, j).is_none() {
                let m = lam[[i, j]] - (covariance[[i, j]] - emp_cov[[i, j]]).abs();
                margin = Some(margin.map_or(m, |v| v.min(m)));
            }
        }
    }
    margin
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;
    use ndarray::{array, Array2};

    #[test]
    fn vectorization_round_trips_and_remaps() {
        let theta = array![[2.0, -0.5, 0.0], [-0.5, 1.0, 0.3], [0.0, 0.3, 1.5]];
        let e = ActiveSet::from_precision(theta.view());
        assert_eq!(e.len(), 7);
        assert!(!e.is_full());
        assert_eq!(e.row_cols(0), &[0, 1]);
        assert_eq!(e.row_cols(1), &[0, 1, 2]);
        assert_eq!(e.position(0, 2), None);
        assert_eq!(e.position(2, 1), Some(5));
        assert_abs_diff_eq!(e.signs()[1], -1.0);
        let v = e.gather_owned(theta.view());
        let mut back = Array2::zeros((3, 3));
        e.scatter(v.view(), back.view_mut());
        assert_eq!(back, theta);
        let full = ActiveSet::from_precision(Array2::<f64>::ones((3, 3)).view());
        assert!(full.is_full());
        assert_eq!(full.symmetric_difference(&e), 2);
        let moved = full.remap_from(&e, v.view()).unwrap();
        assert_eq!(moved.len(), 9);
        assert_abs_diff_eq!(moved[2], 0.0);
        assert_abs_diff_eq!(moved[1], -0.5);
        let again = e.remap_from(&full, moved.view()).unwrap();
        assert_eq!(again, v);
    }

    #[test]
    fn margin_is_none_for_a_full_support() {
        let theta = array![[2.0, -0.5], [-0.5, 1.0]];
        let e = ActiveSet::from_precision(theta.view());
        let w = Array2::<f64>::eye(2);
        assert_eq!(off_support_margin(&e, w.view(), w.view(), w.view()), None);
        let diag = ActiveSet::from_precision(Array2::<f64>::eye(2).view());
        let s = array![[1.0, 0.3], [0.3, 1.0]];
        let lam = Array2::from_elem((2, 2), 0.5);
        let m = off_support_margin(&diag, w.view(), s.view(), lam.view()).unwrap();
        assert!((m - 0.2).abs() < 1e-15);
    }
}
