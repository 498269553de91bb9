#!/usr/bin/env bash
# Where a greta-run CPU forward spends its time: `perf record` (cpu-clock,
# so it works in VMs without hardware counters) over one run of llama-tiny
# with the compiled object cached, reported from the first kernel sample on:
# the forward, without start-up, JIT load and weight load.
#   bench/cpu/profile.sh [BUILD_DIR] [PROMPT (p6_len_16)] [ROWS (25)]
# Prints the share of each symbol (self time), then a summary by kind.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${1:-build}/bin
P=models/prompts/${2:-p6_len_16}.json
ROWS=${3:-25}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
command -v perf >/dev/null || { echo "profile.sh: perf not found (apt-get install linux-perf)" >&2; exit 2; }
$B/greta-translate --gen-random-weights models/llama-tiny/config.json --seed 0 -o "$T/w.safetensors"
run() { $B/greta-run models/llama-tiny/model.mlir --weights "$T/w.safetensors" --prompt "$P" --cache-dir "$T/cache" "$@"; }
run > /dev/null # compiles once, into the cache
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) CPUs;" \
  "environment: $(env | grep -E '^(OPENBLAS|GRETA|OMP)_' | sort | tr '\n' ' ')"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
perf record -q -e cpu-clock -F 4000 -g -o "$T/perf.data" -- \
  $B/greta-run models/llama-tiny/model.mlir --weights "$T/w.safetensors" \
  --prompt "$P" --cache-dir "$T/cache" --timing | grep timing
# The timestamps of the first and the last sample inside a CPU kernel.
read -r t0 t1 < <(perf script -i "$T/perf.data" -F time,ip,sym 2>/dev/null | awk '
  /^ *[0-9]+\.[0-9]+:/ { t = $1; sub(":", "", t); next }
  /_mlir_ciface_greta_cpu_|greta::rt::cpu::/ { if (!first) first = t; last = t }
  END { print first, last }')
[ -n "${t0:-}" ] || { echo "profile.sh: no kernel sample found" >&2; exit 2; }
perf report -i "$T/perf.data" --time "$t0,$t1" --no-children --sort dso,symbol \
  --stdio 2>/dev/null | grep -E '^ +[0-9.]+%' | sed 's/  */ /g; s/ - - *$//' \
  | cut -c1-110 > "$T/report" || true
echo "forward (samples from t=$t0 to $t1 s), self time by symbol:"
head -n "$ROWS" "$T/report"
# By kind: GEMM/attention arithmetic, packing, other kernels, the kernel
# (page faults, scheduling), thread hand-off, allocation and zeroing.
awk '{ p = $1; sub("%", "", p); s = $0
  if (s ~ /tileNT|tileNN|softmaxRow/) k = "GEMM and attention arithmetic"
  else if (s ~ /packPanel|causalAttention|gemmNT/) k = "packing and tiling"
  else if (s ~ /_mlir_ciface_greta_cpu|swigluRow|rope|rms_norm|greta::rt::cpu/) k = "other kernels"
  else if (s ~ /sha256|Sha256|SHA256|trace|Trace/) k = "tracing"
  else if (s ~ /\[k\]/) k = "OS kernel (page faults, scheduling)"
  else if (s ~ /sched_yield|futex|pthread_cond|ThreadPool|parallelFor/) k = "thread hand-off"
  else if (s ~ /memset|memcpy|memmove|malloc|free|munmap|greta_rt_alloc/) k = "memory (alloc, zero, copy)"
  else k = "other"
  sum[k] += p }
  END { for (k in sum) printf "  %6.2f%%  %s\n", sum[k], k }' "$T/report" | sort -rn
