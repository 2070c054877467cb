//! Which kernels OpenBLAS runs, how long its idle threads spin, and a restart that sets both
//! before the library is loaded.
//!
//! The system OpenBLAS (built with `DYNAMIC_ARCH`) picks its kernels for the CPU once, when the
//! library is loaded. A CPU it does not know falls back to `Prescott`, SSE3 kernels that use a
//! quarter of an AVX-512 or half of an AVX2 vector. That happens on this project's Intel
//! machines (a Xeon with AVX-512 behind a generic model name, OpenBLAS 0.3.21): a p = 1000
//! product took 149 ms with `Prescott` against 38 ms with `SkylakeX` and 61 ms with `Haswell`
//! (`Θ V Θ`, two threads), and matrix tuning at p = 100 took 1.0 s instead of 0.78 s.
//!
//! After each call, OpenBLAS's worker threads spin (calling `sched_yield`) for 2²⁸ cycles,
//! ~0.1 s, before they sleep. The tuner alternates BLAS products with rayon's pair kernels and
//! serial passes every few milliseconds, so a worker spun through them, taking a core from
//! rayon's two workers: in a profile of matrix tuning at p = 1000 (two threads) the spinning
//! worker held 20 % of all samples. `OPENBLAS_THREAD_TIMEOUT` = 20 (2²⁰ cycles, ~0.4 ms:
//! back-to-back calls still find their workers awake) took `tune_paper 1000` from 65.4 and
//! 64.9 s to 58.7–59.9 s with 12, 16, 18 and 22 alike (interleaved runs, same build); at
//! p = 500 10.8–11.4 s → 10.7–11.0 s, at p = 100 and 200 within the noise (12 was slower
//! there: 0.44–0.58 s against 0.41–0.43 s at p = 100, every call waking a sleeping worker).
//!
//! Both settings can only be made before OpenBLAS is loaded, through the environment
//! variables `OPENBLAS_CORETYPE` and `OPENBLAS_THREAD_TIMEOUT`. [`restart_with_faster_blas`],
//! called first thing in `main`, re-executes the program with them set: the core type when
//! OpenBLAS fell back to a generic core on a CPU with AVX2 or AVX-512, the timeout when it runs
//! on more than one thread. A variable the user set is never changed, and the restarted
//! program finds both set, so it happens at most once. Nothing changes but the speed and the
//! rounding of BLAS results.

/// Generic cores OpenBLAS falls back to (lower case), none of which uses AVX2.
const GENERIC_CORES: [&str; 10] = [
    "prescott",
    "core2",
    "penryn",
    "dunnington",
    "nehalem",
    "atom",
    "katmai",
    "coppermine",
    "northwood",
    "banias",
];

/// The environment variable OpenBLAS reads its kernel family from when it is loaded.
pub const CORETYPE_VARIABLE: &str = "OPENBLAS_CORETYPE";

#[cfg(feature = "openblas-system")]
mod ffi {
    use std::ffi::CStr;
    use std::os::raw::c_char;

    extern "C" {
        fn openblas_get_corename() -> *const c_char;
    }

    pub(super) fn corename() -> Option<String> {
        // SAFETY: OpenBLAS returns a pointer to a static NUL-terminated string (or null).
        #[allow(unsafe_code)]
        let name = unsafe {
            let ptr = openblas_get_corename();
            if ptr.is_null() {
                return None;
            }
            CStr::from_ptr(ptr)
        };
        Some(name.to_string_lossy().into_owned())
    }
}

#[cfg(not(feature = "openblas-system"))]
mod ffi {
    pub(super) fn corename() -> Option<String> {
        None
    }
}

/// The kernel family OpenBLAS runs (`openblas_get_corename`, e.g. `Haswell`, `SkylakeX`,
/// `Zen`, `Prescott`), or `None` when the BLAS backend is not OpenBLAS.
pub fn blas_core() -> Option<String> {
    ffi::corename()
}

/// Whether `core` (as [`blas_core`] names it, any case) is one of the generic cores OpenBLAS
/// falls back to when it does not recognize the CPU, none of which uses AVX2.
pub fn is_generic_core(core: &str) -> bool {
    GENERIC_CORES.contains(&core.to_ascii_lowercase().as_str())
}

/// The widest kernel family this CPU runs: `SkylakeX` with AVX-512 (F, CD, DQ, BW, VL, as the
/// run-time detection of the standard library reports them, OS support included), `Haswell`
/// with AVX2 and FMA, else `None`.
pub fn widest_core() -> Option<&'static str> {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx512f")
            && has!("avx512cd")
            && has!("avx512dq")
            && has!("avx512bw")
            && has!("avx512vl")
        {
            return Some("SkylakeX");
        }
        if has!("avx2") && has!("fma") {
            return Some("Haswell");
        }
    }
    None
}

/// The `OPENBLAS_CORETYPE` worth setting: [`widest_core`] when OpenBLAS runs one of its
/// generic cores (its CPU detection failed) on a CPU with AVX2 or AVX-512; `None` when the
/// variable is set already, OpenBLAS detected the CPU, or the backend is not OpenBLAS.
pub fn suggested_core() -> Option<&'static str> {
    if std::env::var_os(CORETYPE_VARIABLE).is_some() {
        return None;
    }
    if is_generic_core(&blas_core()?) {
        widest_core()
    } else {
        None
    }
}

/// The environment variable OpenBLAS reads its idle threads' spinning time from when it is
/// loaded (`2^value` cycles, 4 to 30; 28 when unset).
pub const THREAD_TIMEOUT_VARIABLE: &str = "OPENBLAS_THREAD_TIMEOUT";

/// The `OPENBLAS_THREAD_TIMEOUT` set by [`restart_with_faster_blas`]: 2²⁰ cycles (module docs).
pub const THREAD_TIMEOUT: &str = "20";

/// The `OPENBLAS_THREAD_TIMEOUT` worth setting: [`THREAD_TIMEOUT`] when OpenBLAS runs on more
/// than one thread and the variable is unset; `None` otherwise (or when the backend is not
/// OpenBLAS).
pub fn suggested_thread_timeout() -> Option<&'static str> {
    if std::env::var_os(THREAD_TIMEOUT_VARIABLE).is_some() {
        return None;
    }
    (crate::threads::blas_threads()? > 1).then_some(THREAD_TIMEOUT)
}

/// When [`suggested_core`] or [`suggested_thread_timeout`] has a value, re-executes the
/// current program (same arguments, same environment plus `OPENBLAS_CORETYPE` and
/// `OPENBLAS_THREAD_TIMEOUT` as suggested) and never returns; otherwise, or if the restart
/// fails (the program then goes on with OpenBLAS as loaded), returns. Meant as the first
/// statement of a binary's `main`: the restart loses anything done before it. Unix only
/// (elsewhere it returns at once).
pub fn restart_with_faster_blas() {
    #[cfg(unix)]
    {
        let core = suggested_core();
        let timeout = suggested_thread_timeout();
        if core.is_none() && timeout.is_none() {
            return;
        }
        use std::os::unix::process::CommandExt;
        let mut args = std::env::args_os();
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        let mut command = std::process::Command::new(exe);
        if let Some(arg0) = args.next() {
            command.arg0(arg0);
        }
        command.args(args);
        if let Some(core) = core {
            command.env(CORETYPE_VARIABLE, core);
        }
        if let Some(timeout) = timeout {
            command.env(THREAD_TIMEOUT_VARIABLE, timeout);
        }
        // `exec` only returns on failure.
        let _failed = command.exec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backend_names_its_core() {
        let core = blas_core();
        #[cfg(feature = "openblas-system")]
        assert!(core.is_some_and(|c| !c.is_empty()));
        #[cfg(not(feature = "openblas-system"))]
        assert!(core.is_none());
    }

    #[test]
    fn a_suggestion_is_only_made_for_a_generic_core() {
        if let Some(core) = suggested_core() {
            assert!(widest_core() == Some(core));
            let running = blas_core().unwrap_or_default();
            assert!(is_generic_core(&running), "{running}");
            assert!(std::env::var_os(CORETYPE_VARIABLE).is_none());
        }
    }

    #[test]
    fn a_thread_timeout_is_only_suggested_when_unset_and_threaded() {
        if let Some(t) = suggested_thread_timeout() {
            assert_eq!(t, THREAD_TIMEOUT);
            assert!(std::env::var_os(THREAD_TIMEOUT_VARIABLE).is_none());
            assert!(crate::threads::blas_threads().is_some_and(|n| n > 1));
        }
        // OpenBLAS reads the value as an exponent in [4, 30].
        assert!((4..=30).contains(&THREAD_TIMEOUT.parse::<u32>().unwrap()));
    }
}
