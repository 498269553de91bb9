#!/usr/bin/env bash
# greta-diff vs numpy on two ~1 GiB f32 traces, same files, same run.
#   bench/diff/run.sh [BUILD_DIR] [WORK_DIR]
# Scenario "all rows differ": TEST = BASE with 1e-6 relative noise on every
# row, so every row is compared numerically (the worst case). Scenario
# "planted fault": one fault at (mlp_out, layer 6, from position 1500), so
# most rows are skipped by their hash. Best of 3 runs for greta-diff, 2 for
# numpy (page cache warm for both).
set -euo pipefail
BUILD=${1:-build-df}
WORK=${2:-/tmp/greta-diff-bench}
GEN="$BUILD/bin/greta-trace-gen"
DIFF="$BUILD/bin/greta-diff"
HERE=$(cd "$(dirname "$0")" && pwd)
# Debian's numpy lives with the system python (python3-numpy).
PY=${PYTHON:-/usr/bin/python3}
SHAPE=(--tokens 2048 --layers 0-7 --hidden 4096
       --stages residual_pre_attn,attn_out,mlp_out,residual_post_mlp)
mkdir -p "$WORK"
[ -f "$WORK/base/manifest.json" ] || "$GEN" "$WORK/base" "${SHAPE[@]}"
[ -f "$WORK/noise/manifest.json" ] || "$GEN" "$WORK/noise" "${SHAPE[@]}" --noise 1e-6
[ -f "$WORK/fault/manifest.json" ] || "$GEN" "$WORK/fault" "${SHAPE[@]}" \
  --plant "stage=mlp_out layer=6 from=1500 kind=scale magnitude=1.01"

field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }
best() { # best of N: prints "read compare bytes"
  local n=$1; shift
  local br= bc= bb=
  for _ in $(seq "$n"); do
    local line
    # greta-diff prints its timing line on stderr, numpy_diff.py on stdout.
    line=$("$@" 2>&1 >/dev/null | grep -E 'read_s=' || true)
    local r c b
    r=$(echo "$line" | field read_s); c=$(echo "$line" | field compare_s)
    b=$(echo "$line" | field bytes_compared)
    if [ -z "$br" ] || awk "BEGIN{exit !($r+$c < $br+$bc)}"; then
      br=$r; bc=$c; bb=$b
    fi
  done
  echo "$br $bc $bb"
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "trace size: $(du -sh "$WORK/base/records.bin" | cut -f1) per trace"
printf "\n| scenario | tool | read s | compare s | total s | payload compared (GB) | compare GB/s | end-to-end GB/s |\n"
printf "|---|---|---|---|---|---|---|---|\n"
for scen in noise fault; do
  total_payload=$(( $(stat -c %s "$WORK/base/records.bin") + $(stat -c %s "$WORK/$scen/records.bin") ))
  read -r gr gc gb < <(best 3 "$DIFF" "$WORK/base" "$WORK/$scen" --policy tolerance --format json --timing)
  read -r nr nc nb < <(best 2 "$PY" "$HERE/numpy_diff.py" "$WORK/base" "$WORK/$scen" --stderr)
  for tool in greta-diff numpy; do
    if [ $tool = greta-diff ]; then r=$gr; c=$gc; b=$gb; else r=$nr; c=$nc; b=$nb; fi
    awk -v s="$scen" -v t="$tool" -v r="$r" -v c="$c" -v b="$b" -v tp="$total_payload" 'BEGIN{
      printf "| %s | %s | %.2f | %.3f | %.2f | %.2f | %s | %.2f |\n", s, t, r, c, r+c, b/1e9,
        (c > 0 && b > 0) ? sprintf("%.2f", b/1e9/c) : "-", tp/1e9/(r+c) }'
  done
  awk -v g="$gr" -v gc="$gc" -v n="$nr" -v nc="$nc" -v s="$scen" 'BEGIN{
    printf "| %s | ratio numpy/greta-diff | | %s | %.1fx | | | |\n", s,
      (gc > 0) ? sprintf("%.1fx", nc/gc) : "-", (n+nc)/(g+gc) }'
done
