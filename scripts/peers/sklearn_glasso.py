"""Side-by-side inner solves: scikit-learn's GraphicalLasso vs `glasso-ho fit` on the same data.

Run through scripts/peers/sklearn_glasso.sh (it makes the private virtual environment and the
data). Not part of the test command. For each data file and λ/λ_max it times scikit-learn at its
fastest tolerance setting that reaches a relative duality gap ≤ 1e-6 (the gap of DESIGN.md §1,
computed here on its output, as in shared/peer-baselines.md), median of `--reps` runs, and
prints one CSV row per point.
"""

import argparse
import sys
import time

import numpy as np
from sklearn.covariance import GraphicalLasso


def relative_gap(S, lam_off, theta):
    """Relative duality gap of DESIGN.md §1 for the unpenalized-diagonal scalar penalty."""
    p = S.shape[0]
    sign, logdet = np.linalg.slogdet(theta)
    if sign <= 0:
        return np.inf
    Lam = lam_off * (np.ones((p, p)) - np.eye(p))
    primal = -logdet + np.sum(S * theta) + np.sum(Lam * np.abs(theta))
    W = np.linalg.inv(theta)
    W = 0.5 * (W + W.T)
    U = np.clip(W - S, -Lam, Lam)
    sign, logdet_w = np.linalg.slogdet(S + U)
    dual = logdet_w + p if sign > 0 else -np.inf
    return (primal - dual) / max(1.0, abs(primal))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", nargs="+", required=True)
    ap.add_argument("--ratios", default="0.5,0.1,0.05")
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    print("p,lambda_ratio,sklearn_tol,sklearn_median_s,sklearn_gap")
    for path in args.data:
        X = np.loadtxt(path, delimiter=",")
        Xc = X - X.mean(axis=0)
        S = Xc.T @ Xc / X.shape[0]
        p = S.shape[0]
        off = np.abs(S - np.diag(np.diag(S)))
        lmax = off.max()
        for r in [float(v) for v in args.ratios.split(",")]:
            lam = r * lmax
            def run(tol):
                model = GraphicalLasso(
                    alpha=lam, tol=tol, enet_tol=tol, max_iter=100, covariance="precomputed"
                )
                t = time.perf_counter()
                model.fit(S)
                return time.perf_counter() - t, relative_gap(S, lam, model.precision_)

            # The loosest tolerance (scikit-learn's default first) that reaches gap ≤ 1e-6.
            for tol in [1e-4, 1e-6, 1e-8]:
                first, gap = run(tol)
                print(f"# p={p} r={r} tol={tol:g}: {first:.3g} s, gap {gap:.1e}", file=sys.stderr, flush=True)
                if gap <= 1e-6:
                    break
            times = [first] + [run(tol)[0] for _ in range(args.reps - 1)]
            print(f"{p},{r},{tol:g},{np.median(times):.6g},{gap:.2e}", flush=True)


if __name__ == "__main__":
    main()
