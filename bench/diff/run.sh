#!/usr/bin/env bash
# greta-diff vs numpy on two ~1 GiB f32 traces, same files, same run.
#   bench/diff/run.sh [BUILD_DIR] [WORK_DIR]
# Scenario "all rows differ": TEST = BASE with 1e-6 relative noise on every
# row, so every row is compared numerically (the worst case). Scenario
# "planted fault": one fault at (mlp_out, layer 6, from position 1500), so
# most rows are skipped by their hash. Best of 3 runs for greta-diff, 2 for
# numpy (page cache warm for both). Both map records.bin (no copy).
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
now() { date +%s.%N; }
best() { # best of N by in-process read+compare: prints "read compare bytes wall"
  local n=$1; shift
  local br= bc= bb= bw=
  for _ in $(seq "$n"); do
    local line t0 t1
    t0=$(now)
    # greta-diff prints its timing line on stderr, numpy_diff.py on stdout.
    line=$("$@" 2>&1 >/dev/null | grep -E 'read_s=' || true)
    t1=$(now)
    local r c b
    r=$(echo "$line" | field read_s); c=$(echo "$line" | field compare_s)
    b=$(echo "$line" | field bytes_compared)
    if [ -z "$br" ] || awk "BEGIN{exit !($r+$c < $br+$bc)}"; then
      br=$r; bc=$c; bb=$b; bw=$(awk "BEGIN{print $t1-$t0}")
    fi
  done
  echo "$br $bc $bb $bw"
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "trace size: $(du -sh "$WORK/base/records.bin" | cut -f1) per trace"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
# "total" is read+compare as each tool times itself; "wall" is the whole
# process (startup, report, unmapping; for numpy the interpreter and import).
printf "\n| scenario | tool | read s | compare s | total s | wall s | payload compared (GB) | compare GB/s | end-to-end GB/s (total) | end-to-end GB/s (wall) |\n"
printf "|---|---|---|---|---|---|---|---|---|---|\n"
for scen in noise fault; do
  total_payload=$(( $(stat -c %s "$WORK/base/records.bin") + $(stat -c %s "$WORK/$scen/records.bin") ))
  read -r gr gc gb gw < <(best 3 "$DIFF" "$WORK/base" "$WORK/$scen" --policy tolerance --format json --timing)
  read -r nr nc nb nw < <(best 2 "$PY" "$HERE/numpy_diff.py" "$WORK/base" "$WORK/$scen" --stderr)
  for tool in greta-diff numpy; do
    if [ $tool = greta-diff ]; then r=$gr; c=$gc; b=$gb; w=$gw; else r=$nr; c=$nc; b=$nb; w=$nw; fi
    awk -v s="$scen" -v t="$tool" -v r="$r" -v c="$c" -v b="$b" -v w="$w" -v tp="$total_payload" 'BEGIN{
      printf "| %s | %s | %.3f | %.3f | %.3f | %.3f | %.2f | %s | %.2f | %.2f |\n", s, t, r, c, r+c, w, b/1e9,
        (c > 0 && b > 0) ? sprintf("%.2f", b/1e9/c) : "-", tp/1e9/(r+c), tp/1e9/w }'
  done
  awk -v g="$gr" -v gc="$gc" -v gw="$gw" -v n="$nr" -v nc="$nc" -v nw="$nw" -v s="$scen" 'BEGIN{
    printf "| %s | ratio numpy/greta-diff | %.1fx | %s | %.1fx | %.1fx | | | | |\n", s, n/g,
      (gc > 0) ? sprintf("%.1fx", nc/gc) : "-", (n+nc)/(g+gc), nw/gw }'
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
