#!/usr/bin/env bash
# Side-by-side inner solves, scikit-learn's GraphicalLasso vs `glasso-ho fit`, on the same data
# and the same machine in one run. Not part of the test command.
#
#   scripts/peers/sklearn_glasso.sh [P ...]        (default: 100 200 500)
#
# Makes a private virtual environment outside the repository (~/.cache/glasso-ho-peers/venv),
# generates the paper's data (n = 20p, seed 42) with `glasso-ho generate`, and prints two CSV
# tables (scikit-learn at its fastest tolerance reaching a relative gap ≤ 1e-6, median of 3;
# glasso-ho auto at gap 1e-8, median of 3). OPENBLAS_NUM_THREADS=1 for both.
set -euo pipefail
cd "$(dirname "$0")/../.."
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
sizes=("${@:-100 200 500}")
read -r -a sizes <<<"${sizes[*]}"
venv="${HOME}/.cache/glasso-ho-peers/venv"
if [[ ! -x "$venv/bin/python" ]]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet scikit-learn numpy
fi
cargo build --release --quiet -p ho-experiments
bin=target/release/glasso-ho
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
files=()
for p in "${sizes[@]}"; do
  "$bin" generate --quiet --p "$p" --n $((20 * p)) --seed 42 --out "$work/x$p.csv"
  files+=("$work/x$p.csv")
done
ratios=0.5,0.1,0.05
"$venv/bin/python" scripts/peers/sklearn_glasso.py --data "${files[@]}" --ratios "$ratios"
echo "p,lambda_ratio,glasso_ho_median_s,glasso_ho_gap"
for p in "${sizes[@]}"; do
  for r in ${ratios//,/ }; do
    times=()
    for _ in 1 2 3; do
      json=$("$bin" fit --quiet --data "$work/x$p.csv" --lambda-ratio "$r" --out "$work/theta.csv")
      times+=("$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["seconds"])' "$json")")
      gap=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(d.get("relative_gap", d.get("dual_gap")))' "$json")
    done
    median=$(printf '%s\n' "${times[@]}" | sort -g | sed -n 2p)
    echo "$p,$r,$median,$gap"
  done
done
