#!/usr/bin/env bash
# AMD compile check of the GPU kernel sources on a machine without an AMD GPU
# (the build machine / CI, Debian 12). A COMPILE CHECK ONLY: nothing is
# linked into a library and nothing runs on an AMD GPU.
#
#   gfx90a (MI200): Debian 12's ROCm 5.2 hipcc (clang 15), code object v4.
#   gfx942 (MI300): clang++-22 against the same ROCm 5.2 headers and device
#     libraries, code object v5. ROCm 5.2 predates gfx942 (unsupported
#     upstream): its device libraries stop at gfx940, so the missing
#     oclc_isa_version_942.bc is generated into the build dir from the 940
#     one (__oclc_ISA_version 9400 -> 9402), and the ROCm-5.2 libraries
#     clang 22 no longer links by itself (hip.bc, oclc_daz_opt_off.bc) are
#     named explicitly.
#
# Every object must carry a code object for the arch (fat binary listed with
# clang-offload-bundler, unbundled, ELF e_machine EM_AMDGPU with the arch in
# e_flags) and every kernel in it must be wave64.
#
#   kernels/scripts/amd_compile_check.sh [build-dir]      (default build-amd)
# Environment:
#   GRETA_AMD_SOURCES   space-separated files to check (default: every
#                       kernels/src/*.hip and kernels/test/*.hip)
#   GRETA_AMD_ARCHS     default "gfx90a gfx942"
#   GRETA_AMD_CXXFLAGS  extra flags for both compilers (e.g. -I<hipBLAS>)
# Exit 0: all checked (or skipped, with "amd_compile_check: skipped: ..."
# when a tool is missing); 1: a compile or code-object check failed.
# Gemm.hip needs hipBLAS headers, which Debian 12 does not package: it is
# reported "skipped (no hipBLAS headers)" unless they are found.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build-amd}
ARCHS=${GRETA_AMD_ARCHS:-gfx90a gfx942}
SOURCES=${GRETA_AMD_SOURCES:-"kernels/src/Runtime.hip kernels/src/Elementwise.hip kernels/src/Gemm.hip kernels/src/Trace.hip kernels/src/Top5.hip kernels/src/Family.hip kernels/src/Attention.hip kernels/src/Decode.hip kernels/test/GpuKernelCheck.hip kernels/test/ComputeChecks.hip kernels/test/TraceChecks.hip kernels/test/FamilyChecks.hip kernels/test/PagedChecks.hip"}
EXTRA=${GRETA_AMD_CXXFLAGS:-}
BITCODE=/usr/lib/x86_64-linux-gnu/amdgcn/bitcode
LLVM22=/usr/lib/llvm-22/bin

skip() { echo "amd_compile_check: skipped: $*"; exit 0; }
need_tool() { command -v "$1" >/dev/null 2>&1 || [ -x "$1" ] || skip "$1 not found ($2)"; }

[ -f /usr/include/hip/hip_runtime.h ] ||
  skip "no HIP headers (apt-get install libamdhip64-dev)"
[ -f "$BITCODE/ocml.bc" ] ||
  skip "no AMD device libraries in $BITCODE (apt-get install rocm-device-libs)"
for t in clang-offload-bundler-22 llvm-readelf-22 llvm-objcopy-22; do
  need_tool $t "apt-get install llvm-22"
done
for a in $ARCHS; do
  case $a in
  gfx90a) need_tool hipcc "apt-get install hipcc" ;;
  gfx942)
    need_tool clang++-22 "apt-get install clang-22"
    need_tool llvm-dis-22 "apt-get install llvm-22"
    need_tool llvm-as-22 "apt-get install llvm-22"
    # clang 22 links device code with its own lld (lld-22), not ld.lld-15.
    [ -x "$LLVM22/ld.lld" ] || skip "$LLVM22/ld.lld not found (apt-get install lld-22)"
    [ -f "$BITCODE/oclc_isa_version_940.bc" ] ||
      skip "no oclc_isa_version_940.bc to derive gfx942's from" ;;
  *) echo "amd_compile_check: unknown arch $a (gfx90a, gfx942)"; exit 1 ;;
  esac
done

mkdir -p "$BUILD"
COMMON=(-x hip -std=c++17 -O2 -fPIC -DGRETA_GPU_HIP=1 -Ikernels
        -Iruntime/include -Ikernels/src $EXTRA)

# gfx942 device-library dir: links to ROCm 5.2's bitcode plus the generated
# ISA-version library (never committed; rebuilt when missing).
devlibs_942() {
  local d="$BUILD/devlibs-gfx942"
  if [ ! -f "$d/oclc_isa_version_942.bc" ]; then
    rm -rf "$d" && mkdir -p "$d"
    for f in "$BITCODE"/*.bc; do ln -s "$f" "$d/"; done
    llvm-dis-22 "$BITCODE/oclc_isa_version_940.bc" -o - |
      sed 's/constant i32 9400,/constant i32 9402,/' |
      llvm-as-22 -o "$d/oclc_isa_version_942.bc"
    llvm-dis-22 "$d/oclc_isa_version_942.bc" -o - |
      grep -q 'constant i32 9402,' || {
      echo "amd_compile_check: could not make oclc_isa_version_942.bc"; exit 1; }
  fi
  echo "$d"
}

compile() { # arch src obj
  local arch=$1 src=$2 obj=$3
  case $arch in
  gfx90a)
    hipcc --offload-arch=gfx90a "${COMMON[@]}" -c "$src" -o "$obj" ;;
  gfx942)
    local d libs=()
    d=$(devlibs_942)
    for l in hip ocml ockl oclc_daz_opt_off oclc_unsafe_math_off \
             oclc_finite_only_off oclc_correctly_rounded_sqrt_on \
             oclc_wavefrontsize64_on oclc_isa_version_942 oclc_abi_version_500; do
      libs+=("--hip-device-lib=$l.bc")
    done
    # ROCm 5.2's headers test __AMDGCN_WAVEFRONT_SIZE, which clang 22 no
    # longer predefines; gfx942 is wave64.
    clang++-22 --offload-arch=gfx942 -mcode-object-version=5 \
      -D__AMDGCN_WAVEFRONT_SIZE=64 --rocm-path=/usr \
      --rocm-device-lib-path="$d" --hip-device-lib-path="$d" "${libs[@]}" \
      "${COMMON[@]}" -c "$src" -o "$obj" ;;
  esac
}

# Prints what the object holds, or the problem (status 1). Tool output is
# captured before it is searched (grep -q on a pipe + pipefail = SIGPIPE).
check_code_object() { # arch src obj
  local arch=$1 src=$2 obj=$3 list tgt co hdr notes n abi
  if ! llvm-objcopy-22 --dump-section ".hip_fatbin=$obj.fatbin" "$obj" 2>/dev/null; then
    if grep -q '__global__' "$src"; then
      echo "no .hip_fatbin section"; return 1
    fi
    echo "host code only (no kernels in the source)"; return 0
  fi
  list=$(clang-offload-bundler-22 --list --type=o --input="$obj.fatbin")
  tgt=$(grep -E "^hipv4-amdgcn-amd-amdhsa--$arch(:|$)" <<<"$list" | head -1 || true)
  [ -n "$tgt" ] || { echo "no $arch entry in the fat binary ($list)"; return 1; }
  co="$obj.$arch.co"
  clang-offload-bundler-22 --unbundle --type=o --input="$obj.fatbin" \
    --targets="$tgt" --output="$co"
  hdr=$(llvm-readelf-22 -h "$co")
  grep -qE 'Machine: +EM_AMDGPU' <<<"$hdr" || {
    echo "code object is not EM_AMDGPU"; return 1; }
  grep -qE "Flags: .*[ ,]$arch(,|\$)" <<<"$hdr" || {
    echo "code object e_flags do not name $arch"; return 1; }
  abi=$(sed -n 's/^ *ABI Version: *//p' <<<"$hdr")
  notes=$(llvm-readelf-22 --notes "$co")
  n=$(grep -c '^ *\.symbol:' <<<"$notes" || true)
  if grep '\.wavefront_size:' <<<"$notes" | grep -qv ': *64$'; then
    echo "a kernel is not wave64"; return 1
  fi
  # e_ident ABI version 2 = code object v4, 3 = v5.
  if [ "$n" -eq 0 ]; then
    echo "$tgt, code object v$((abi + 2)), no kernels (device data only)"
  else
    echo "$tgt, code object v$((abi + 2)), $n kernels, all wave64"
  fi
}

have_hipblas() {
  echo '#include <hipblas/hipblas.h>' |
    hipcc -x hip -E $EXTRA - >/dev/null 2>&1 ||
    echo '#include <hipblas/hipblas.h>' |
    clang++-22 -x hip --rocm-path=/usr -nogpulib -E $EXTRA - >/dev/null 2>&1
}

fail=0 checked=0
for arch in $ARCHS; do
  for src in $SOURCES; do
    name=$(basename "$src" .hip)
    if [ "$name" = Gemm ] && ! have_hipblas; then
      echo "amd_compile_check: $arch $name: skipped (no hipBLAS headers; Debian 12 packages no hipBLAS, ROCm >= 6 has it)"
      continue
    fi
    obj="$BUILD/$name.$arch.o"
    rm -f "$obj" "$obj".*
    if ! compile "$arch" "$src" "$obj" >"$obj.log" 2>&1; then
      echo "amd_compile_check: $arch $name: COMPILE FAILED ($obj.log):"
      grep -E 'error' "$obj.log" | head -20
      fail=1; continue
    fi
    if msg=$(check_code_object "$arch" "$src" "$obj"); then
      echo "amd_compile_check: $arch $name: ok: $msg"
      checked=$((checked + 1))
    else
      echo "amd_compile_check: $arch $name: BAD CODE OBJECT: $msg"; fail=1
    fi
  done
done
if [ $fail -ne 0 ]; then
  echo "amd_compile_check: FAILED"; exit 1
fi
echo "amd_compile_check: $checked objects compiled, code objects verified (compile check only; nothing ran on AMD)"
