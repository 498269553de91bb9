#!/bin/bash
# One device call on the GPU machine (torch, transformers 5.x; no LLVM):
#  1. scripts/hf_refs/make_refs.py: the HF reference checkpoints and
#     activations of every family -> $OUT/hf-refs.tar.gz (models/hf-refs/...,
#     to unpack at the repository root and commit);
#  2. the HF recorder (python -m greta_trace.hf) in fp32 on cuda and on the
#     CPU, on llama-tiny- and TinyLlama-1.1B-shaped random checkpoints
#     (bench/gpu/gen_hf_model.py), payload full at a few positions
#     -> $OUT/hf-traces.tar.gz, with HF cuda vs HF cpu compared by value;
#  3. when greta-compile'd CPU f32 objects are carried in $AOT
#     ($AOT/llama-tiny-cpu_f32.so, $AOT/tinyllama-1.1b-cpu_f32.so), GRETA's
#     CPU run of the same weights (a runtime-only build) and greta-diff
#     --policy tolerance against the HF cpu traces -> $OUT/greta-traces.tar.gz.
# Prints timings, and a summary table last. Everything under $OUT is at most
# 3 tar.gz files and summary.txt.
#   bash scripts/hf_refs/device.sh [--check]
# --check runs here, without torch: the plumbing (files, the family list and
# budget, the recorder's plan), and prints the commands of a real run.
set -u
cd "$(dirname "$0")/../.."
CHECK=0
[ "${1:-}" = "--check" ] && CHECK=1
PY=${PYTHON:-python3}
OUT=${OUT:-/tmp/hf-refs-out}
WORK=${WORK:-/tmp/hf-refs-work}
AOT=${AOT:-.device-carry/aot}
MODELS="llama-tiny tinyllama-1.1b"
PROMPT_LEN=64
declare -A POSITIONS=([llama-tiny]="0,17,40,last" [tinyllama-1.1b]="0,last")
export PYTHONPATH=$PWD/python${PYTHONPATH:+:$PYTHONPATH}
SUMMARY=()
note() { SUMMARY+=("$1"); }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

if [ $CHECK = 1 ]; then
  rc=0
  for f in scripts/hf_refs/make_refs.py bench/gpu/gen_hf_model.py \
           test/python/Inputs/tolerance_check.py; do
    [ -f "$f" ] || { echo "missing $f"; rc=1; }
  done
  for m in $MODELS; do
    for f in models/$m/config.json models/$m/model.mlir; do
      [ -f "$f" ] || { echo "missing $f"; rc=1; }
    done
    [ -n "${POSITIONS[$m]:-}" ] || { echo "no positions for $m"; rc=1; }
  done
  $PY scripts/hf_refs/make_refs.py --check || rc=1
  echo "families: $($PY scripts/hf_refs/make_refs.py --list)"
  for m in $MODELS; do
    plan=$(mktemp)
    $PY -m greta_trace.hf --check --model models/$m --prompt models/prompts/p0_short.json \
      --positions "${POSITIONS[$m]}" --payload full > "$plan" 2>&1 || { cat "$plan"; rc=1; }
    echo "recorder plan for $m: $(head -1 "$plan"); $(grep -c ' recorded, ' "$plan") points recorded"
    rm -f "$plan"
  done
  echo "a real run: OUT=$OUT; $PY scripts/hf_refs/make_refs.py --out $WORK/refs"
  for m in $MODELS; do
    echo "  $PY bench/gpu/gen_hf_model.py --config models/$m/config.json --out $WORK/m/$m --dtype float32 --prompts $PROMPT_LEN"
    for dev in cuda cpu; do
      echo "  $PY -m greta_trace.hf --model $WORK/m/$m --prompt $WORK/m/$m/prompt_$PROMPT_LEN.json --trace-dir $WORK/t/$m-hf-$dev --device $dev --dtype float32 --payload full --positions ${POSITIONS[$m]} --greta-model models/$m/model.mlir"
    done
    echo "  [if $AOT/$m-cpu_f32.so] greta-run-aot ... --trace-dir $WORK/t/$m-greta-cpu; greta-diff --policy tolerance"
  done
  echo "device.sh --check: $([ $rc = 0 ] && echo ok || echo FAILED)"
  exit $rc
fi

mkdir -p "$OUT"; rm -rf "$WORK"; mkdir -p "$WORK/m" "$WORK/t"
T0=$(now)
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | head -2
$PY -c "import sys, torch, transformers, numpy; print('python', sys.version.split()[0], '| torch', torch.__version__, '| transformers', transformers.__version__, '| numpy', numpy.__version__, '| cuda', torch.cuda.is_available())"

echo "== 1. HF reference checkpoints and activations"
t=$(now)
$PY scripts/hf_refs/make_refs.py --out "$WORK/refs" 2>&1 | tee "$WORK/refs.log" | grep -v "^  warnings.warn\|Warning:" | tail -40
rc=${PIPESTATUS[0]}
tar czf "$OUT/hf-refs.tar.gz" -C "$WORK/refs" models 2>/dev/null
note "refs: make_refs rc=$rc in $(since $t) s; $(grep -c ': ok (' "$WORK/refs.log") families ok; $(du -sb "$WORK/refs/models/hf-refs" | cut -f1) bytes; hf-refs.tar.gz $(stat -c %s "$OUT/hf-refs.tar.gz") bytes"

echo "== 2. the HF recorder, fp32, cuda and cpu"
for m in $MODELS; do
  t=$(now)
  $PY bench/gpu/gen_hf_model.py --config models/$m/config.json --out "$WORK/m/$m" \
    --dtype float32 --prompts $PROMPT_LEN 2>&1 | tail -1
  note "$m: checkpoint rc=${PIPESTATUS[0]} in $(since $t) s"
  for dev in cuda cpu; do
    t=$(now)
    $PY -m greta_trace.hf --model "$WORK/m/$m" --prompt "$WORK/m/$m/prompt_$PROMPT_LEN.json" \
      --trace-dir "$WORK/t/$m-hf-$dev" --device $dev --dtype float32 --payload full \
      --positions "${POSITIONS[$m]}" --greta-model models/$m/model.mlir > "$WORK/rec.log" 2>&1
    r=$?; tail -2 "$WORK/rec.log"
    note "$m: recorder $dev rc=$r in $(since $t) s: $(tail -1 "$WORK/rec.log" | cut -c1-90)"
  done
  $PY test/python/Inputs/tolerance_check.py "$WORK/t/$m-hf-cpu" "$WORK/t/$m-hf-cuda" > "$WORK/t/$m-hf-cpu-vs-cuda.txt" 2>&1
  r=$?; cat "$WORK/t/$m-hf-cpu-vs-cuda.txt"
  note "$m: HF fp32 cpu vs cuda (tolerance policy): rc=$r, $(tail -1 "$WORK/t/$m-hf-cpu-vs-cuda.txt")"
done

echo "== 3. GRETA CPU f32 on the same weights (objects in $AOT)"
if [ -f "$AOT/llama-tiny-cpu_f32.so" ] || [ -f "$AOT/tinyllama-1.1b-cpu_f32.so" ]; then
  t=$(now)
  # The runtime-only CPU build (CMakePresets.json "runtime-only").
  B=build-rt/bin
  { cmake -S . -B build-rt -G Ninja -DGRETA_RUNTIME_ONLY=ON -DCMAKE_BUILD_TYPE=Release \
      && ninja -C build-rt greta-run-aot greta-diff; } > "$WORK/build.log" 2>&1 \
    || tail -20 "$WORK/build.log"
  note "greta runtime-only build: $(since $t) s"
  for m in $MODELS; do
    [ -f "$AOT/$m-cpu_f32.so" ] || { note "$m: no $AOT/$m-cpu_f32.so"; continue; }
    t=$(now)
    $B/greta-run-aot "$AOT/$m-cpu_f32.so" --weights "$WORK/m/$m/model.safetensors" \
      --prompt "$WORK/m/$m/prompt_$PROMPT_LEN.json" --payload full \
      --positions "${POSITIONS[$m]}" --trace-dir "$WORK/t/$m-greta-cpu" > /dev/null 2> "$WORK/g.err"
    r=$?; tail -3 "$WORK/g.err"
    $B/greta-diff "$WORK/t/$m-greta-cpu" "$WORK/t/$m-hf-cpu" --policy tolerance > "$WORK/t/$m-greta-vs-hf-cpu.diff" 2>&1
    d=$?; head -12 "$WORK/t/$m-greta-vs-hf-cpu.diff"
    $PY test/python/Inputs/tolerance_check.py "$WORK/t/$m-greta-cpu" "$WORK/t/$m-hf-cpu" > "$WORK/t/$m-greta-vs-hf-cpu.txt" 2>&1
    cat "$WORK/t/$m-greta-vs-hf-cpu.txt"
    note "$m: GRETA cpu f32 rc=$r in $(since $t) s; greta-diff vs HF cpu rc=$d (0 = no divergence); $(tail -1 "$WORK/t/$m-greta-vs-hf-cpu.txt")"
  done
  tar czf "$OUT/greta-traces.tar.gz" -C "$WORK/t" $(cd "$WORK/t" && ls -d *-greta-* 2>/dev/null)
else
  echo "no $AOT/*-cpu_f32.so carried: GRETA's side is left to the lead (the HF traces carry the weights digest)"
  note "GRETA side: not run (no objects in $AOT)"
fi
tar czf "$OUT/hf-traces.tar.gz" -C "$WORK/t" $(cd "$WORK/t" && ls -d *-hf-* 2>/dev/null)

for f in "$OUT"/*; do
  [ "$(stat -c %s "$f")" -le 16777216 ] || note "TOO BIG to come back (16 MiB): $f"
done
echo "== summary ($(since $T0) s in all)"
{ grep -A40 "^HF references:" "$WORK/refs.log"; printf '%s\n' "${SUMMARY[@]}";
  ls -l "$OUT" | tail -n +2 | awk '{print "  " $5 " bytes  " $9}'; } | tee "$OUT/summary.txt"
