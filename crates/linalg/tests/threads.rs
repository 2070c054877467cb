//! The BLAS thread guard. Its own test binary (process): changing OpenBLAS's thread count
//! while other tests compare BLAS results bit for bit would change their rounding.

#![cfg(feature = "openblas-system")]

use ho_linalg::{blas_threads, set_blas_threads, SingleThreadedBlas};

#[test]
fn guards_run_blas_on_one_thread_and_the_last_restores_the_count() {
    set_blas_threads(2);
    let before = blas_threads().unwrap();
    assert!(before >= 2, "OpenBLAS kept {before} threads");
    let outer = SingleThreadedBlas::new();
    assert_eq!(blas_threads(), Some(1));
    let inner = std::thread::spawn(|| {
        let g = SingleThreadedBlas::new();
        let n = blas_threads();
        drop(g);
        n
    })
    .join()
    .unwrap();
    assert_eq!(inner, Some(1));
    // The other thread's guard was not the last: still one thread.
    assert_eq!(blas_threads(), Some(1));
    drop(outer);
    assert_eq!(blas_threads(), Some(before));
}
