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
  libssl-dev libopenblas-dev nlohmann-json3-dev libgtest-dev libcli11-dev zlib1g-dev
  # AMD compile check of the GPU kernels (test/kernels/amd-compile.test):
  # Debian's ROCm 5.2 for gfx90a, clang/lld 22 for gfx942 (~107 MB download).
  hipcc libamdhip64-dev rocm-device-libs clang-22 lld-22 clang-tools-22
  # libFuzzer and the sanitizer runtimes of the fuzz targets
  # (bench/fuzz/run.sh, -DGRETA_FUZZ=ON).
  libclang-rt-22-dev
  # The Python package (python/, test/python/): `pip install ./python` into a
  # venv offline (venv, setuptools and wheel build it), its plotting helper.
  python3-venv python3-setuptools python3-wheel python3-matplotlib
  # Headless browser of the HTML reports' lit tests (REQUIRES: chromium:
  # test/tools/greta-diff/html-browser.test, greta-bisect/html-browser.test).
  chromium
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
