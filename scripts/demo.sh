#!/usr/bin/env bash
# The demo: set up, build glasso-ho (release) and run `glasso-ho demo`: the paper's synthetic
# setup (p = 100, n = 2000, seed 0, half the rows validate), tuning the scalar λ and then the
# full penalty matrix Λ by hypergradient descent (L-BFGS). A table goes to stderr, the JSON
# summary to stdout, the CSVs and plots to out/demo/ (or the folder given as $1).
# Environment: CARGO_TARGET_DIR (default target), OPENBLAS_NUM_THREADS (default 1).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -x scripts/setup.sh ]; then
  scripts/setup.sh
fi
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"

cargo build --release -p ho-experiments
bin="${CARGO_TARGET_DIR:-target}/release/glasso-ho"
out="${1:-out/demo}"

"$bin" demo --out-dir "$out"
echo "== files in $out: criterion.png, penalty.png, precision.png (plots); trace.csv," >&2
echo "   penalty.csv, precision_scalar.csv, precision_matrix.csv, theta_true.csv, summary.json" >&2
