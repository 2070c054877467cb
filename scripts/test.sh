#!/usr/bin/env bash
# The README's test command: set up, check formatting and lints, run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
# One BLAS thread: the tests are small, and threads only fight over 2 cores.
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
