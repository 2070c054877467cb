#!/usr/bin/env bash
# Installs what the build needs on a fresh Debian machine (run as root): the system OpenBLAS
# (BLAS + LAPACK for ndarray-linalg's `openblas-system`), pkg-config, and the DejaVu fonts
# that glasso-ho loads at run time to write the text of its PNG plots. Idempotent and quiet
# when everything is already there.
set -euo pipefail

missing=()
for pkg in libopenblas-dev pkg-config fonts-dejavu-core; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found: install the Rust toolchain (rustup) first" >&2
  exit 1
fi
