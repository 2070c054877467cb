//! Exact block screening (Witten, Friedman and Simon 2011; Mazumder and Hastie 2012).
//!
//! ```text
//! graph:  k — l  iff  k ≠ l and |S_kl| > Λ_kl
//! ```
//!
//! The connected components of this graph are exactly the diagonal blocks of Θ̂ (after a
//! permutation): Θ̂ is zero between components, so each component is solved on its own and an
//! isolated node i has the closed form `Θ̂_ii = 1/(S_ii + Λ_ii)`.

use ndarray::ArrayView2;

/// The connected components of `{(k,l): k ≠ l, |S_kl| > Λ_kl}`, each a sorted list of indices,
/// ordered by their smallest index. O(p²) time (union–find).
pub fn connected_components(
    emp_cov: ArrayView2<'_, f64>,
    lam: ArrayView2<'_, f64>,
) -> Vec<Vec<usize>> {
    let p = emp_cov.nrows();
    let mut parent: Vec<usize> = (0..p).collect();
    fn find(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    for i in 0..p {
        for j in 0..i {
            // Both (i,j) and (j,i): Λ may differ by rounding; an edge in either direction counts.
            if emp_cov[[i, j]].abs() > lam[[i, j]] || emp_cov[[j, i]].abs() > lam[[j, i]] {
                let (a, b) = (find(&mut parent, i), find(&mut parent, j));
                if a != b {
                    parent[a.max(b)] = a.min(b);
                }
            }
        }
    }
    let mut label = vec![usize::MAX; p];
    let mut comps: Vec<Vec<usize>> = Vec::new();
    for i in 0..p {
        let r = find(&mut parent, i);
        if label[r] == usize::MAX {
            label[r] = comps.len();
            comps.push(Vec::new());
        }
        comps[label[r]].push(i);
    }
    comps
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn components_of_a_small_graph() {
        let s = array![
            [1.0, 0.5, 0.0, 0.0],
            [0.5, 1.0, 0.0, 0.1],
            [0.0, 0.0, 1.0, 0.0],
            [0.0, 0.1, 0.0, 1.0]
        ];
        let lam = ndarray::Array2::from_elem((4, 4), 0.2);
        assert_eq!(
            connected_components(s.view(), lam.view()),
            vec![vec![0, 1], vec![2], vec![3]]
        );
        let lam = ndarray::Array2::from_elem((4, 4), 0.05);
        assert_eq!(
            connected_components(s.view(), lam.view()),
            vec![vec![0, 1, 3], vec![2]]
        );
        let lam = ndarray::Array2::from_elem((4, 4), 0.6);
        assert_eq!(connected_components(s.view(), lam.view()).len(), 4);
    }
}
