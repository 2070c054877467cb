//! `implicit/*`: hypergradients after the inner solve, on the paper's data recipe
//! (`paper_data(p, 20p, 0.9, 0)`, S = empirical covariance of the first half of the rows,
//! S_val of the second half), held-out criterion, λ ∈ {0.5, 0.1, 0.01}·λ_max, unpenalized
//! diagonal. The inner solve is done once, outside the timed closures.
//!
//! Groups (BenchmarkId = (`r{λ/λ_max}`, p)):
//!
//! - `implicit/adjoint_sparse`, `implicit/adjoint_dense`: the full hypergradient (scalar and
//!   matrix: criterion gradient, support, margin, one Kronecker-preconditioned CG solve) with
//!   the sparse O(|E| p) kernel or the dense two-gemm kernel; every p;
//! - `implicit/adjoint_jacobi`: the same with the Jacobi preconditioner (automatic kernel);
//! - `implicit/adjoint_complement`: the adjoint solved through the complement of the support
//!   (docs/implicit-diff.md §7b; the default's choice for dense supports), at 0.01·λ_max;
//! - `implicit/kronecker`: the paper's dense formula, `(W ⊗ W)_{E,E}` formed and factored,
//!   where |E| ≤ 4000 (p ≤ 500);
//! - `implicit/unrolled`: forward differentiation of fixed-step G-ISTA (scalar), p = 50;
//! - `implicit/newton_cd`, `implicit/obn_cg`: the inner solves themselves (cold start, relative
//!   gap 1e-10) at the same points, for the comparison "hypergradient after the solve costs
//!   less than the solve"; p ≤ 500, skipping the points where one solve takes more than
//!   ~10 s (NewtonCd: p = 500 at 0.01; ObnCg: p = 500 at 0.01).
//!
//! The fits come from NewtonCd where it is fast enough and elsewhere (p = 500 at 0.01,
//! p = 1000 at 0.1 and 0.01) from ObnCg warm-started along λ/λ_max = 0.1, 0.05, 0.02 (a cold
//! ObnCg solve takes ~50 s at p = 500 and more than 15 min at p = 1000 for 0.01), computed
//! lazily when a benchmark first needs them, so that a filter
//! (`cargo bench --bench implicit -- adjoint_sparse`) skips the others' setup.
//!
//! `HO_BENCH_P=50,100,200` restricts the sizes (default 50,100,200,500,1000). Record
//! `OPENBLAS_NUM_THREADS` with the results (printed).

use criterion::{criterion_group, BenchmarkId, Criterion};
use ho_glasso::{
    lambda_max, GlassoFit, GlassoOptions, GlassoProblem, GlassoSolver, NewtonCd, ObnCg, Penalty,
};
use ho_implicit::glasso::{
    hypergradient, AdjointSolver, HeldOutNll, HypergradOptions, Kernel, Method, PreconditionerKind,
};
use ho_linalg::empirical_covariance;
use ho_linalg::testing::paper_data;
use ndarray::{s, Array2};
use std::cell::RefCell;
use std::collections::HashMap;
use std::hint::black_box;
use std::rc::Rc;
use std::time::{Duration, Instant};

const RATIOS: [f64; 3] = [0.5, 0.1, 0.01];

fn env_list<T: std::str::FromStr>(key: &str, default: &str) -> Vec<T> {
    std::env::var(key)
        .unwrap_or_else(|_| default.to_string())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

fn fit_options() -> GlassoOptions {
    GlassoOptions {
        tol: 1e-10,
        ..Default::default()
    }
}

/// Whether one NewtonCd solve is fast enough to be timed (and to provide the fit).
fn newton_feasible(p: usize, ratio: f64) -> bool {
    p <= 200 || (p <= 500 && ratio >= 0.1) || ratio >= 0.5
}

/// Whether one ObnCg solve is fast enough to be timed.
fn obn_feasible(p: usize, ratio: f64) -> bool {
    p <= 200 || (p <= 500 && ratio >= 0.1) || ratio >= 0.5
}

struct Point {
    s: Array2<f64>,
    s_val: Array2<f64>,
    lambda: f64,
    fit: GlassoFit,
}

impl Point {
    fn problem(&self) -> GlassoProblem<'_> {
        GlassoProblem::new(self.s.view(), Penalty::scalar(self.lambda))
    }
}

/// `(S, S_val)` of one p.
type Data = Rc<(Array2<f64>, Array2<f64>)>;

/// Lazily computed data and fits, shared by the groups.
#[derive(Default)]
struct Points {
    data: RefCell<HashMap<usize, Data>>,
    fits: RefCell<HashMap<(usize, u64), Rc<Point>>>,
}

impl Points {
    fn data(&self, p: usize) -> Data {
        self.data
            .borrow_mut()
            .entry(p)
            .or_insert_with(|| {
                let n = 20 * p;
                let d = paper_data(p, n, 0.9, 0);
                let s = empirical_covariance(d.x.slice(s![..n / 2, ..]), false).unwrap();
                let s_val = empirical_covariance(d.x.slice(s![n / 2.., ..]), false).unwrap();
                Rc::new((s, s_val))
            })
            .clone()
    }

    fn get(&self, p: usize, ratio: f64) -> Rc<Point> {
        let key = (p, ratio.to_bits());
        if let Some(pt) = self.fits.borrow().get(&key) {
            return pt.clone();
        }
        let data = self.data(p);
        let (s, s_val) = (data.0.clone(), data.1.clone());
        let lambda = ratio * lambda_max(s.view());
        let problem = GlassoProblem::new(s.view(), Penalty::scalar(lambda));
        let t = Instant::now();
        let (fit, name) = if newton_feasible(p, ratio) {
            let solver = NewtonCd {
                options: fit_options(),
                ..Default::default()
            };
            (solver.solve(&problem, None).unwrap(), "newton-cd")
        } else {
            // ObnCg warm-started along λ/λ_max = 0.1, 0.05, 0.02, …, ratio (a cold ObnCg
            // solve takes ~50 s at p = 500 and more than 15 min at p = 1000 for 0.01)
            let solver = ObnCg {
                options: fit_options(),
                ..Default::default()
            };
            let mut warm = if ratio < 0.1 {
                Some(self.get(p, 0.1).fit.clone())
            } else {
                None
            };
            for r in [0.05, 0.02] {
                if r > ratio && warm.is_some() {
                    let step =
                        GlassoProblem::new(s.view(), Penalty::scalar(r * lambda_max(s.view())));
                    warm = Some(solver.solve(&step, warm.as_ref()).unwrap());
                }
            }
            let name = if warm.is_some() {
                "obn-cg (warm path)"
            } else {
                "obn-cg"
            };
            (solver.solve(&problem, warm.as_ref()).unwrap(), name)
        };
        eprintln!(
            "setup p={p} r={ratio}: {name} {:.3} s, rel gap {:.1e}, |E| = {}, blocks {}",
            t.elapsed().as_secs_f64(),
            fit.relative_gap(),
            fit.support_size(),
            fit.n_blocks
        );
        let pt = Rc::new(Point {
            s,
            s_val,
            lambda,
            fit,
        });
        self.fits.borrow_mut().insert(key, pt.clone());
        pt
    }
}

fn id(ratio: f64, p: usize) -> BenchmarkId {
    BenchmarkId::new(format!("r{ratio}"), p)
}

fn bench_hypergradient(
    c: &mut Criterion,
    points: &Points,
    sizes: &[usize],
    group: &str,
    options: HypergradOptions,
    include: impl Fn(usize, f64, &Points) -> bool,
) {
    let mut g = c.benchmark_group(format!("implicit/{group}"));
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for &p in sizes {
        for ratio in RATIOS {
            if !include(p, ratio, points) {
                continue;
            }
            g.bench_function(id(ratio, p), |b| {
                let pt = points.get(p, ratio);
                let problem = pt.problem();
                let crit = HeldOutNll::new(pt.s_val.clone());
                b.iter(|| black_box(hypergradient(&pt.fit, &problem, &crit, &options).unwrap()))
            });
        }
    }
    g.finish();
}

fn bench_inner(
    c: &mut Criterion,
    points: &Points,
    sizes: &[usize],
    group: &str,
    solver: &dyn GlassoSolver,
    feasible: fn(usize, f64) -> bool,
) {
    let mut g = c.benchmark_group(format!("implicit/{group}"));
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for &p in sizes {
        for ratio in RATIOS {
            if !feasible(p, ratio) {
                continue;
            }
            g.bench_function(id(ratio, p), |b| {
                let data = points.data(p);
                let lambda = ratio * lambda_max(data.0.view());
                let problem = GlassoProblem::new(data.0.view(), Penalty::scalar(lambda));
                b.iter(|| black_box(solver.solve(&problem, None).unwrap()))
            });
        }
    }
    g.finish();
}

fn implicit(c: &mut Criterion) {
    ho_benches::print_threads();
    let sizes: Vec<usize> = env_list("HO_BENCH_P", "50,100,200,500,1000");
    let points = Points::default();
    let adjoint = |kernel| HypergradOptions {
        kernel,
        adjoint_solver: AdjointSolver::Support,
        ..Default::default()
    };
    let all = |_: usize, _: f64, _: &Points| true;
    bench_hypergradient(
        c,
        &points,
        &sizes,
        "adjoint_sparse",
        adjoint(Kernel::Sparse),
        all,
    );
    bench_hypergradient(
        c,
        &points,
        &sizes,
        "adjoint_dense",
        adjoint(Kernel::Dense),
        all,
    );
    bench_hypergradient(
        c,
        &points,
        &sizes,
        "adjoint_jacobi",
        HypergradOptions {
            preconditioner: PreconditionerKind::Jacobi,
            adjoint_solver: AdjointSolver::Support,
            ..Default::default()
        },
        |p, _, _| p <= 500,
    );
    bench_hypergradient(
        c,
        &points,
        &sizes,
        "adjoint_complement",
        HypergradOptions {
            adjoint_solver: AdjointSolver::Complement,
            ..Default::default()
        },
        // Z is most of the matrix at 0.5 and 0.1·λ_max: the complement is for dense supports
        |_, ratio, _| ratio <= 0.01,
    );
    let kronecker = HypergradOptions {
        method: Method::DenseKronecker,
        ..Default::default()
    };
    let limit = kronecker.dense_limit;
    bench_hypergradient(
        c,
        &points,
        &sizes,
        "kronecker",
        kronecker,
        move |p, ratio, pts: &Points| {
            // decide from the support (fits at p ≤ 200 and at 0.5 are cheap)
            (p <= 200 || (p <= 500 && ratio >= 0.5))
                && pts.get(p, ratio).fit.support_size() <= limit
        },
    );
    bench_hypergradient(
        c,
        &points,
        &sizes,
        "unrolled",
        HypergradOptions {
            method: Method::Unrolled,
            ..Default::default()
        },
        |p, _, _| p <= 50,
    );
    let newton = NewtonCd {
        options: fit_options(),
        ..Default::default()
    };
    let inner_sizes: Vec<usize> = sizes.iter().copied().filter(|&p| p <= 500).collect();
    bench_inner(
        c,
        &points,
        &inner_sizes,
        "newton_cd",
        &newton,
        newton_feasible,
    );
    let obn = ObnCg {
        options: fit_options(),
        ..Default::default()
    };
    bench_inner(c, &points, &inner_sizes, "obn_cg", &obn, obn_feasible);
}

criterion_group!(benches, implicit);
fn main() {
    // OpenBLAS's fast kernels when its CPU detection failed (`ho_linalg::blas_core`).
    ho_linalg::restart_with_faster_blas();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
