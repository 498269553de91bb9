#!/usr/bin/env bash
# The speed cost of the batch-invariant CPU kernels (GEMM and attention,
# commit 0a99608, docs/RUNTIME.md) against the kernels they replaced
# (OpenBLAS sgemm and the old attention): untraced llama-tiny f32 prefill by
# greta-run of BUILD_DIR against greta-run of the PEER commit, built in a
# temporary worktree (mostly ccache hits), on the same weights
# and prompts (827 and 1653 tokens), in the same run.
#   bench/cpu/invariance_cost.sh [BUILD_DIR (build)] [REPEAT (7)] [PEER (0a99608^)]
# PEER_BUILD=DIR uses a peer build directory made before instead.
# THREADS=N sets GRETA_NUM_THREADS, OMP_NUM_THREADS and OPENBLAS_NUM_THREADS
# (the peer's GEMM and attention threads are OpenBLAS's) for both; on a
# loaded machine, THREADS=1 keeps oversubscription out of the ratio.
# The two are interleaved run by run, so other jobs load both alike; the
# load average is printed with every pair. Prints the medians and the median
# of the per-run ratios greta / peer (cost = ratio - 1; issue #20: <= 15 %).
set -euo pipefail
cd "$(dirname "$0")/../.."
B=$(realpath "${1:-build}")/bin
GSRC=$(dirname "$(dirname "$B")") # the build's source tree: its model.mlir
N=${2:-7}
PEER=${3:-0a99608^}
T=$(mktemp -d)
cleanup() {
  if [ -d "$T/peer-tree" ]; then git worktree remove --force "$T/peer-tree" || true; fi
  rm -rf "$T"
}
trap cleanup EXIT
CFG=models/llama-tiny/config.json
MODEL=models/llama-tiny/model.mlir
PY=/usr/bin/python3
CPUS=$(nproc) # before OMP_NUM_THREADS is set: nproc honours it
if [ -n "${THREADS:-}" ]; then
  export GRETA_NUM_THREADS=$THREADS OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS
fi

if [ -n "${PEER_BUILD:-}" ]; then
  PB=$(realpath "$PEER_BUILD")/bin
  PSRC=$(dirname "$(realpath "$PEER_BUILD")")
else
  git worktree add --detach "$T/peer-tree" "$PEER" >/dev/null 2>&1
  PSRC=$T/peer-tree
  # ccache's base_dir (/work here) must cover the tree for cache hits.
  (cd "$PSRC" && cmake --preset default >/dev/null &&
    CCACHE_BASEDIR=$PSRC ninja -C build greta-run greta-translate >/dev/null)
  PB=$PSRC/build/bin
fi
peer_commit=$(git -C "$PSRC" rev-parse --short HEAD)
$B/greta-translate --gen-random-weights $CFG --seed 0 -o "$T/w.safetensors"

echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $CPUS CPUs available;" \
  "avx512f: $(grep -qw avx512f /proc/cpuinfo && echo yes || echo no), avx2: $(grep -qw avx2 /proc/cpuinfo && echo yes || echo no)"
echo "threads: ${THREADS:-default (the CPUs)}; environment: $(env | grep -E '^(OPENBLAS|GRETA|OMP)_' | sort | tr '\n' ' ')"
echo "greta: commit $(git -C "$GSRC" rev-parse --short HEAD) ($B); peer: commit $peer_commit ($PB, OpenBLAS $(basename "$(readlink -f "$(ldd "$PB/greta-run" | awk '/libopenblas/ {print $3}')")" 2>/dev/null || echo '?'))"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
# Each greta-run runs its own tree's model.mlir (the peer's has no v_proj
# stage tag; the computation is the same, the top-5 check below says so).
model() { if [ "$1" = "$B" ]; then echo "$GSRC/$MODEL"; else echo "$PSRC/$MODEL"; fi; }
# One forward time (seconds) of greta-run $1 on prompt $2; its own cache.
forward() {
  "$1/greta-run" "$(model "$1")" --weights "$T/w.safetensors" --prompt "$2" \
    --cache-dir "$T/cache-$3" --timing | sed -n 's/.*forward \([0-9.]*\) s.*/\1/p'
}
top5() {
  "$1/greta-run" "$(model "$1")" --weights "$T/w.safetensors" --prompt "$2" \
    --cache-dir "$T/cache-$3" | awk '/^ *[0-9]+\. token/ {print $3}' | head -5 | tr '\n' ' '
}

rows=()
for name in p6_len_16 p6_len_32; do
  P=models/prompts/$name.json
  n=$($PY -c "import json;print(len(json.load(open('$P'))))")
  # Warms both compiled-object caches; both must agree on the top-5.
  a=$(top5 "$PB" "$P" peer) b=$(top5 "$B" "$P" greta)
  [ "$a" = "$b" ] || { echo "top-5 differ: peer [$a] greta [$b]" >&2; exit 1; }
  : > "$T/peer"; : > "$T/greta"; : > "$T/load"
  for i in $(seq "$N"); do
    # Alternate which goes first, so neither always follows the other.
    if [ $((i % 2)) = 1 ]; then
      forward "$PB" "$P" peer >> "$T/peer"; forward "$B" "$P" greta >> "$T/greta"
    else
      forward "$B" "$P" greta >> "$T/greta"; forward "$PB" "$P" peer >> "$T/peer"
    fi
    cut -d' ' -f1 /proc/loadavg >> "$T/load"
    echo "  $name run $i: peer $(tail -1 "$T/peer") s, greta $(tail -1 "$T/greta") s, load $(tail -1 "$T/load")"
  done
  ratio=$(paste "$T/greta" "$T/peer" | awk '{print $1/$2}' | median)
  rows+=("$(awk -v n=$name -v k=$n -v p="$(median < "$T/peer")" -v g="$(median < "$T/greta")" \
    -v r="$ratio" -v l="$(sort -g "$T/load" | head -1)-$(sort -g "$T/load" | tail -1)" 'BEGIN {
    printf "| %s | %d | %.4f | %.4f | %.3f | %+.1f%% | %s |", n, k, p, g, r, 100*(r-1), l }')")
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| prompt | tokens | peer (s) | greta (s) | greta/peer | cost | load (1 min) |"
echo "|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo "medians of $N interleaved runs; greta/peer = median of the per-run ratios"
