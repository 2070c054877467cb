//! The OpenBLAS thread count: read it, and lower it to one around work that calls BLAS from
//! several threads at once.
//!
//! OpenBLAS and rayon each default to all cores. When rayon tasks (the folds of K-fold
//! cross-validation) each call a multi-threaded BLAS, the two pools oversubscribe the cores:
//! measured on 2 cores, `glasso-ho tune --folds 5 --weighted` at p = 100 took 3.5–6.0 s with two
//! BLAS threads against 1.0–1.2 s with one. [`SingleThreadedBlas`] is the guard such work holds:
//! while one exists, OpenBLAS runs on the calling thread; the last one dropped restores the
//! previous count. The count is process-wide; guards taken from several threads share it
//! through a counter, and BLAS calls made elsewhere in the process meanwhile run on one thread
//! too (correct, only slower, and rounded as on one thread).
//!
//! Without the `openblas-system` feature the backend is unknown: [`blas_threads`] returns
//! `None` and the guard does nothing.

use std::sync::{Mutex, PoisonError};

#[cfg(feature = "openblas-system")]
mod ffi {
    use std::os::raw::c_int;

    extern "C" {
        fn openblas_get_num_threads() -> c_int;
        fn openblas_set_num_threads(num_threads: c_int);
    }

    pub(super) fn get() -> Option<usize> {
        // SAFETY: reads OpenBLAS's global thread count; no arguments, no preconditions.
        #[allow(unsafe_code)]
        let n = unsafe { openblas_get_num_threads() };
        Some(usize::try_from(n).unwrap_or(1).max(1))
    }

    pub(super) fn set(n: usize) {
        let n = c_int::try_from(n).unwrap_or(c_int::MAX);
        // SAFETY: sets OpenBLAS's global thread count (any positive value is valid; OpenBLAS
        // clamps it to its maximum).
        #[allow(unsafe_code)]
        unsafe {
            openblas_set_num_threads(n);
        }
    }
}

#[cfg(not(feature = "openblas-system"))]
mod ffi {
    pub(super) fn get() -> Option<usize> {
        None
    }

    pub(super) fn set(_n: usize) {}
}

/// The number of threads OpenBLAS runs a call on (`OPENBLAS_NUM_THREADS`, all cores when
/// unset), or `None` when the BLAS backend is not OpenBLAS.
pub fn blas_threads() -> Option<usize> {
    ffi::get()
}

/// Sets the number of threads OpenBLAS runs a call on (process-wide, as
/// `OPENBLAS_NUM_THREADS` at start-up; values below 1 count as 1). Does nothing when the
/// backend is not OpenBLAS. Results of BLAS calls may differ in rounding between thread
/// counts.
pub fn set_blas_threads(n: usize) {
    ffi::set(n.max(1));
}

/// Guards alive, and the count to restore when the last one is dropped.
static GUARDS: Mutex<(usize, usize)> = Mutex::new((0, 1));

/// While alive, OpenBLAS runs every call on the calling thread (see the module docs).
#[must_use = "the BLAS thread count is restored when the guard is dropped"]
pub struct SingleThreadedBlas {
    _private: (),
}

impl SingleThreadedBlas {
    /// Lowers the OpenBLAS thread count to one, remembering it if no other guard is alive.
    pub fn new() -> Self {
        let mut g = GUARDS.lock().unwrap_or_else(PoisonError::into_inner);
        if g.0 == 0 {
            g.1 = ffi::get().unwrap_or(1);
            if g.1 > 1 {
                ffi::set(1);
            }
        }
        g.0 += 1;
        Self { _private: () }
    }
}

impl Default for SingleThreadedBlas {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for SingleThreadedBlas {
    fn drop(&mut self) {
        let mut g = GUARDS.lock().unwrap_or_else(PoisonError::into_inner);
        g.0 -= 1;
        if g.0 == 0 && g.1 > 1 {
            ffi::set(g.1);
        }
    }
}
