#!/usr/bin/env bash
# GRETA set-up on Debian 12: installs what is missing (apt), builds, and runs
# the main job (the bisection demo on the CPU). Safe to run again: installs
# nothing twice and rebuilds incrementally.
#   scripts/setup.sh            install + build + demo
#   scripts/setup.sh --no-demo  install + build only (what scripts/test.sh uses)
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  cmake ninja-build ccache g++ git python3 python3-numpy
  llvm-22-dev libmlir-22-dev mlir-22-tools llvm-22-tools
  libssl-dev nlohmann-json3-dev libgtest-dev libcli11-dev zlib1g-dev
  # greta-kernel-bench compares the runtime's GEMM with OpenBLAS's.
  libopenblas-dev
  # AMD compile check of the GPU kernels (test/kernels/amd-compile.test):
  # Debian's ROCm 5.2 for gfx90a, clang/lld 22 for gfx942 (~107 MB download).
  hipcc libamdhip64-dev rocm-device-libs clang-22 lld-22 clang-tools-22
  # Only bench/cpu needs it: the PyTorch eager peer of the CPU prefill
  # benchmark (/usr/bin/python3, torch 1.13).
  python3-torch
  # bench/cpu/profile.sh: where a CPU forward spends its time (perf record).
  linux-perf
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

echo "== configuring and building (build/)"
[ -f build/build.ninja ] || cmake --preset default > /dev/null
ninja -C build

if [ "${1:-}" != "--no-demo" ]; then
  scripts/demo.sh
fi
