#!/usr/bin/env bash
# greta-diff vs numpy on two ~1 GiB f32 traces, same files, same run.
#   bench/diff/run.sh [BUILD_DIR] [WORK_DIR]
#   PEER_BUILD=DIR bench/diff/run.sh ...   also time DIR's greta-diff (e.g. a
#                                          build of main), interleaved run by
#                                          run with BUILD_DIR's: an A/B on one
#                                          machine state
#   REPEAT=N (default 3): runs of each greta-diff; numpy runs 2.
# Scenario "all rows differ": TEST = BASE with 1e-6 relative noise on every
# row, so every row is compared numerically (the worst case). Scenario
# "planted fault": one fault at (mlp_out, layer 6, from position 1500), so
# most rows are skipped by their hash. Best run by read+compare, page cache
# warm for all. greta-diff reads records.bin through a reused buffer
# (pread); numpy_diff.py maps it (greta_trace).
set -euo pipefail
BUILD=${1:-build}
WORK=${2:-/tmp/greta-diff-bench}
REPEAT=${REPEAT:-3}
GEN="$BUILD/bin/greta-trace-gen"
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

TOOLS=("greta-diff=$BUILD/bin/greta-diff")
[ -n "${PEER_BUILD:-}" ] && TOOLS+=("peer=$PEER_BUILD/bin/greta-diff")

field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }
now() { date +%s.%N; }
# perf stat gives the process's CPU time (task-clock) and page faults: on a
# VM where new page-table entries are dear, wall time far above task-clock
# and many faults point at the mapping, not the work.
PERF=()
if command -v perf >/dev/null &&
   perf stat -x, -e task-clock,page-faults -o /dev/null true 2>/dev/null; then
  PERF=(perf stat -x, -e task-clock,page-faults -o "$WORK/.perf")
fi
# One run: prints "read compare bytes wall task_s faults".
once() {
  local line t0 t1 r c b task=- faults=-
  t0=$(now)
  # greta-diff prints its timing line on stderr, numpy_diff.py on stdout.
  line=$("${PERF[@]}" "$@" 2>&1 >/dev/null | grep -E 'read_s=' || true)
  t1=$(now)
  r=$(echo "$line" | field read_s); c=$(echo "$line" | field compare_s)
  b=$(echo "$line" | field bytes_compared)
  if [ ${#PERF[@]} -gt 0 ]; then
    task=$(awk -F, '$3=="task-clock"{printf "%.3f", $1/1000}' "$WORK/.perf")
    faults=$(awk -F, '$3=="page-faults"{print $1}' "$WORK/.perf")
  fi
  echo "$r $c $b $(awk "BEGIN{print $t1-$t0}") $task $faults"
}
declare -A BEST
keep() { # keep NAME "read compare bytes wall task faults" if faster
  local cur=${BEST[$1]:-} r c
  read -r r c _ <<<"$2"
  if [ -z "$cur" ] || awk -v a="$r" -v b="$c" -v cur="$cur" \
      'BEGIN{split(cur, x, " "); exit !(a + b < x[1] + x[2])}'; then
    BEST[$1]=$2
  fi
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "kernel: $(uname -r)"
hv=$( (dmesg 2>/dev/null || true) | grep -m1 -iE 'hypervisor detected|pvm-pv|running under' | sed 's/^\[[^]]*\] *//' || true)
[ -z "$hv" ] && grep -qw hypervisor /proc/cpuinfo && hv="a hypervisor (cpuinfo flag; dmesg not readable)"
echo "hypervisor: ${hv:-none seen}"
echo "transparent huge pages: $(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null || echo unknown)"
echo "trace size: $(stat -c %s "$WORK/base/records.bin") bytes per trace"
for t in "${TOOLS[@]}"; do
  echo "${t%%=*}: ${t#*=} ($(git -C "$(dirname "${t#*=}")" rev-parse --short HEAD 2>/dev/null || echo '?'))"
done
if [ ${#PERF[@]} -gt 0 ]; then
  echo "counters: perf stat (task-clock, page faults)"
else
  echo "counters: none (perf not usable)"
fi
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for scen in noise fault; do
  BEST=()
  for _ in $(seq "$REPEAT"); do
    for t in "${TOOLS[@]}"; do
      keep "${t%%=*}" "$(once "${t#*=}" "$WORK/base" "$WORK/$scen" --policy tolerance --format json --timing)"
    done
  done
  for _ in 1 2; do
    keep numpy "$(once "$PY" "$HERE/numpy_diff.py" "$WORK/base" "$WORK/$scen" --stderr)"
  done
  total_payload=$(( $(stat -c %s "$WORK/base/records.bin") + $(stat -c %s "$WORK/$scen/records.bin") ))
  # "total" is read+compare as each tool times itself; "wall" is the whole
  # process (startup, report; for numpy the interpreter and import); "task"
  # its CPU time on all threads.
  printf "\n| scenario | tool | read s | compare s | total s | wall s | task s | page faults | end-to-end GB/s (total) | end-to-end GB/s (wall) |\n"
  printf "|---|---|---|---|---|---|---|---|---|---|\n"
  for name in "${!BEST[@]}"; do echo "$name"; done | sort | while read -r name; do
    read -r r c b w task faults <<<"${BEST[$name]}"
    awk -v s="$scen" -v t="$name" -v r="$r" -v c="$c" -v w="$w" -v k="$task" -v f="$faults" -v tp="$total_payload" 'BEGIN{
      printf "| %s | %s | %.3f | %.3f | %.3f | %.3f | %s | %s | %.2f | %.2f |\n", s, t, r, c, r+c, w, k, f,
        tp/1e9/(r+c), tp/1e9/w }'
  done
  read -r nr nc _ nw _ <<<"${BEST[numpy]}"
  for name in greta-diff peer; do
    [ -n "${BEST[$name]:-}" ] || continue
    read -r gr gc _ gw _ <<<"${BEST[$name]}"
    awk -v t="$name" -v g="$gr" -v gc="$gc" -v gw="$gw" -v n="$nr" -v nc="$nc" -v nw="$nw" -v s="$scen" 'BEGIN{
      printf "| %s | numpy / %s | | | %.1fx | %.1fx | | | | |\n", s, t, (n+nc)/(g+gc), nw/gw }'
  done
  if [ -n "${BEST[peer]:-}" ]; then
    read -r gr gc _ gw _ <<<"${BEST[greta-diff]}"
    read -r pr pc _ pw _ <<<"${BEST[peer]}"
    awk -v g="$gr" -v gc="$gc" -v gw="$gw" -v p="$pr" -v pc="$pc" -v pw="$pw" -v s="$scen" 'BEGIN{
      printf "| %s | peer / greta-diff | | | %.2fx | %.2fx | | | | |\n", s, (p+pc)/(g+gc), pw/gw }'
  fi
done
rm -f "$WORK/.perf"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
