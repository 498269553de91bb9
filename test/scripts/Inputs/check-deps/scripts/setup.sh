#!/usr/bin/env bash
# A fixture of scripts/setup.sh for check-deps.test: only PACKAGES and
# --print-packages.
PACKAGES=(
  python3 python3-numpy # numpy (test/Inputs/helper.py)
  llvm-22-tools         # FileCheck
  llvm-22-dev           # llvm-readelf-22 (its llvm-22)
  clang-tools-22        # clang-offload-bundler-22
)
[ "${1:-}" = "--print-packages" ] && printf '%s\n' "${PACKAGES[@]}"
