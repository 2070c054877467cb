//! Shared helpers of the criterion benchmarks (inputs come from `ho_linalg::testing`).

/// Prints the thread counts the figures depend on: BLAS (`OPENBLAS_NUM_THREADS`) and the
/// rayon pool (`RAYON_NUM_THREADS`; the sparse pair kernel splits large products over two
/// of its threads, the K-fold objective runs its folds on it).
pub fn print_threads() {
    eprintln!(
        "BLAS threads {} (OPENBLAS_NUM_THREADS={}), rayon threads {} (RAYON_NUM_THREADS={})",
        ho_linalg::blas_threads().map_or_else(|| "unknown".into(), |n| n.to_string()),
        std::env::var("OPENBLAS_NUM_THREADS").unwrap_or_else(|_| "unset".into()),
        rayon::current_num_threads(),
        std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "unset".into())
    );
}
