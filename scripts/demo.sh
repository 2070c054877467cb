#!/usr/bin/env bash
# The demo: build glasso-ho, draw the paper's synthetic data (p = 100, n = 2000) into out/demo/
# and fit the Graphical Lasso at λ = 0.1 · λ_max, printing the JSON summaries.
# Environment: DEMO_SOLVER (default newton-cd), CARGO_TARGET_DIR (default target).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -x scripts/setup.sh ]; then
  scripts/setup.sh
fi
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"

cargo build --release -p ho-experiments
bin="${CARGO_TARGET_DIR:-target}/release/glasso-ho"
solver="${DEMO_SOLVER:-newton-cd}"

mkdir -p out/demo
echo "== generate: p = 100, n = 2000, seed 0" >&2
"$bin" generate --p 100 --n 2000 --seed 0 \
  --out out/demo/X.csv --precision-out out/demo/theta_true.csv
echo "== fit: λ = 0.1 · λ_max, solver $solver" >&2
"$bin" fit --data out/demo/X.csv --lambda-ratio 0.1 --solver "$solver" \
  --out out/demo/theta.csv
echo "== files in out/demo: X.csv (samples), theta_true.csv (Θ_true), theta.csv (Θ̂)" >&2
