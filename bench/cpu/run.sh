#!/usr/bin/env bash
# CPU prefill of llama-tiny, greta-run (JIT, f32) against PyTorch eager on the
# same weights and prompts, in the same run; and the cost of tracing 3
# positions x all stages x all layers. Prints a table of medians and ratios.
#   bench/cpu/run.sh [BUILD_DIR] [REPEAT]
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${1:-build}/bin
N=${2:-7}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
CFG=models/llama-tiny/config.json
MODEL=models/llama-tiny/model.mlir
$B/greta-translate --gen-random-weights $CFG --seed 0 -o "$T/w.safetensors"
PY=/usr/bin/python3

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
# One greta-run forward time (seconds) for a prompt and extra flags.
greta_once() {
  local p=$1; shift
  rm -rf "$T/trace"
  $B/greta-run $MODEL --weights "$T/w.safetensors" --prompt "$p" --cache-dir "$T/cache" --timing "$@" \
    | sed -n 's/.*forward \([0-9.]*\) s.*/\1/p'
}

printf "%-10s %7s | %12s %12s %8s | %12s %9s\n" prompt tokens "torch (s)" "greta (s)" speedup "traced (s)" overhead
for name in p6_len_16 p6_len_32; do
  P=models/prompts/$name.json
  n=$($PY -c "import json;print(len(json.load(open('$P'))))")
  # Warm the compiled-object cache, and check both agree on the top-5.
  gtop=$($B/greta-run $MODEL --weights "$T/w.safetensors" --prompt "$P" --cache-dir "$T/cache" | awk '/^ *[0-9]+\. token/ {print $3}' | head -5 | tr '\n' ' ')
  tout=$($PY bench/cpu/torch_llama.py $CFG "$T/w.safetensors" "$P" --repeat $N --threads 2)
  ttop=$(echo "$tout" | sed -n 's/^top5 //p')
  [ "$(echo $gtop)" = "$(echo $ttop)" ] || { echo "top-5 differ: greta [$gtop] torch [$ttop]" >&2; exit 1; }
  torch_s=$(echo "$tout" | sed -n 's/^forward_s //p' | median)
  # Untraced and traced runs alternate, so load from elsewhere hits both alike.
  : > "$T/plain"; : > "$T/traced"
  for i in $(seq $N); do
    greta_once "$P" >> "$T/plain"
    greta_once "$P" --trace-dir "$T/trace" --overwrite --positions 826,1652,last --payload hash >> "$T/traced"
  done
  greta_s=$(median < "$T/plain")
  traced_s=$(median < "$T/traced")
  awk -v n=$name -v k=$n -v t=$torch_s -v g=$greta_s -v tr=$traced_s 'BEGIN {
    printf "%-10s %7d | %12.4f %12.4f %7.2fx | %12.4f %8.1f%%\n", n, k, t, g, t/g, tr, 100*(tr-g)/g }'
done
echo "medians of $N runs; torch $($PY -c 'import torch;print(torch.__version__)') eager, 2 threads; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
