#!/usr/bin/env bash
# CPU prefill of llama-tiny, greta-run (JIT, f32) against PyTorch eager on the
# same weights and prompts, in the same run; and the cost of tracing 3
# positions x all stages x all layers. Prints what the numbers depend on
# (CPU, threads, OPENBLAS_* / GRETA_* / OMP_* environment, versions, load),
# then a table of medians and ratios.
#   bench/cpu/run.sh [BUILD_DIR] [REPEAT]
# The three are interleaved run by run (torch, greta, greta traced), so load
# from other jobs hits all alike; each torch process times one forward after
# a warm-up, each greta-run one forward from a cached compiled object.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${1:-build}/bin
N=${2:-7}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
CFG=models/llama-tiny/config.json
MODEL=models/llama-tiny/model.mlir
PY=/usr/bin/python3
$B/greta-translate --gen-random-weights $CFG --seed 0 -o "$T/w.safetensors"

echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) CPUs available;" \
  "avx512f: $(grep -qw avx512f /proc/cpuinfo && echo yes || echo no), avx2: $(grep -qw avx2 /proc/cpuinfo && echo yes || echo no)"
echo "environment: $(env | grep -E '^(OPENBLAS|GRETA|OMP|MKL)_' | sort | tr '\n' ' ')"
echo "threads: greta-run ${GRETA_NUM_THREADS:-${OMP_NUM_THREADS:-${OPENBLAS_NUM_THREADS:-$(nproc) (CPUs)}}}, torch 2"
echo "greta: commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $($B/greta-run --version 2>&1 | head -1)"
echo "torch: $($PY -c 'import torch;print(torch.__version__)' 2>&1) eager ($PY)"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
# One greta-run forward time (seconds) for a prompt and extra flags.
greta_once() {
  local p=$1; shift
  rm -rf "$T/trace"
  $B/greta-run $MODEL --weights "$T/w.safetensors" --prompt "$p" --cache-dir "$T/cache" --timing "$@" \
    | sed -n 's/.*forward \([0-9.]*\) s.*/\1/p'
}

rows=()
for name in p6_len_16 p6_len_32; do
  P=models/prompts/$name.json
  n=$($PY -c "import json;print(len(json.load(open('$P'))))")
  # Warm the compiled-object cache, and check both agree on the top-5.
  gtop=$($B/greta-run $MODEL --weights "$T/w.safetensors" --prompt "$P" --cache-dir "$T/cache" | awk '/^ *[0-9]+\. token/ {print $3}' | head -5 | tr '\n' ' ')
  ttop=$($PY bench/cpu/torch_llama.py $CFG "$T/w.safetensors" "$P" --repeat 1 --threads 2 | sed -n 's/^top5 //p')
  [ "$(echo $gtop)" = "$(echo $ttop)" ] || { echo "top-5 differ: greta [$gtop] torch [$ttop]" >&2; exit 1; }
  : > "$T/torch"; : > "$T/plain"; : > "$T/traced"
  for i in $(seq $N); do
    $PY bench/cpu/torch_llama.py $CFG "$T/w.safetensors" "$P" --repeat 1 --threads 2 \
      | sed -n 's/^forward_s //p' >> "$T/torch"
    greta_once "$P" >> "$T/plain"
    greta_once "$P" --trace-dir "$T/trace" --overwrite --positions 826,1652,last --payload hash >> "$T/traced"
  done
  # Ratio run by run (torch_i / greta_i), then its median.
  ratio=$(paste "$T/torch" "$T/plain" | awk '{print $1/$2}' | median)
  rows+=("$(awk -v n=$name -v k=$n -v t="$(median < "$T/torch")" -v g="$(median < "$T/plain")" \
    -v r="$ratio" -v tr="$(median < "$T/traced")" 'BEGIN {
    printf "%-10s %7d | %12.4f %12.4f %7.2fx | %12.4f %8.1f%%", n, k, t, g, r, tr, 100*(tr-g)/g }')")
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
printf "%-10s %7s | %12s %12s %8s | %12s %9s\n" prompt tokens "torch (s)" "greta (s)" speedup "traced (s)" overhead
printf '%s\n' "${rows[@]}"
echo "medians of $N interleaved runs; speedup = median of the per-run ratios torch/greta"
