#!/bin/bash
# Bisects HF transformers against GRETA's CPU reference, with a planted bug
# in the HF model (examples/hf/README.md):
#   base: GRETA CPU f32, test: HF transformers fp32 on cuda with q's rotary
#   embedding wrong in layer BUG_LAYER from position BUG_FROM
#   (buggy_rope.py, run by greta-bisect --test-cmd through the HF recorder),
#   ref: GRETA CPU f64 (greta-diff's reference policy).
# A control run without the bug must give no divergence; the bugged run must
# name q_post_rope at layer BUG_LAYER, position BUG_FROM.
#
#   bash examples/hf/bisect_hf.sh --prepare   # here (LLVM): the AOT objects
#   bash examples/hf/bisect_hf.sh --check     # here: plumbing, no torch
#   bash examples/hf/bisect_hf.sh             # the GPU machine (torch,
#                                             # transformers 5; no LLVM)
# The device has no LLVM: GRETA's side runs the objects greta-compile made
# here, carried in $AOT (.device-carry/aot), with a runtime-only build
# (build-rt), as scripts/hf_refs/device.sh does. Writes $OUT/summary.txt,
# $OUT/bisect-{clean,bug}.md and .json.
set -u
cd "$(dirname "$0")/../.."
MODE=${1:-run}
PY=${PYTHON:-python3}
OUT=${OUT:-/tmp/hf-bisect-out}
WORK=${WORK:-/tmp/hf-bisect-work}
AOT=${AOT:-.device-carry/aot}
MODEL=llama-tiny
TOKENS=${TOKENS:-800}
BUG_LAYER=${BUG_LAYER:-3}
BUG_FROM=${BUG_FROM:-700}
export PYTHONPATH=$PWD/python${PYTHONPATH:+:$PYTHONPATH}
W=$WORK/m/$MODEL

# The commands, written once (eval'd; greta-bisect splits --test-cmd itself).
recorder() { # $1: the HF recorder, with or without the planted bug
  echo "$1 --model $W --prompt {prompt} --trace-dir {trace_dir} --device cuda --dtype float32 --greta-model models/$MODEL/model.mlir"
}
bisect() { # $1: name, $2: test command
  echo "build-rt/bin/greta-bisect --model models/$MODEL/model.mlir" \
    "--weights $W/model.safetensors --prompt $W/prompt_$TOKENS.json" \
    "--base '--so=$AOT/$MODEL-cpu_f32.so' --ref '--so=$AOT/$MODEL-cpu_f64.so'" \
    "--test-cmd '$2' --work-dir $WORK/bisect-$1"
}
CLEAN="$PY -m greta_trace.hf"
BUG="$PY examples/hf/buggy_rope.py --bug-layer $BUG_LAYER --bug-from $BUG_FROM"

case $MODE in
--prepare)
  mkdir -p "$AOT"
  for p in f32 f64; do
    ${GRETA_COMPILE:-build/bin/greta-compile} models/$MODEL/model.mlir --backend cpu --precision $p \
      -o "$AOT/$MODEL-cpu_$p.so" || exit 1
    echo "$AOT/$MODEL-cpu_$p.so: $(stat -c %s "$AOT/$MODEL-cpu_$p.so") bytes"
  done
  exit 0 ;;
--check)
  rc=0
  for f in models/$MODEL/config.json models/$MODEL/model.mlir \
           bench/gpu/gen_hf_model.py examples/hf/buggy_rope.py; do
    [ -f "$f" ] || { echo "missing $f"; rc=1; }
  done
  for p in f32 f64; do
    [ -f "$AOT/$MODEL-cpu_$p.so" ] || { echo "missing $AOT/$MODEL-cpu_$p.so (run --prepare)"; rc=1; }
  done
  prompt=$(mktemp --suffix=.json)
  $PY -c "import json; print(json.dumps(list(range(1, $TOKENS + 1))))" > "$prompt"
  plan=$(mktemp)
  GRETA_TRACE_LAYERS=$BUG_LAYER GRETA_TRACE_STAGES=q_post_rope GRETA_TRACE_POSITIONS=$BUG_FROM \
    $BUG --check --model models/$MODEL \
    --prompt "$prompt" > "$plan" 2>&1 || { cat "$plan"; rc=1; }
  echo "recorder plan (GRETA_TRACE_* of a scan step): $(grep -c ' recorded, ' "$plan") points recorded; $(tail -1 "$plan")"
  rm -f "$prompt" "$plan"
  echo "a real run: OUT=$OUT"
  echo "  cmake -S . -B build-rt -G Ninja -DGRETA_RUNTIME_ONLY=ON -DCMAKE_BUILD_TYPE=Release && ninja -C build-rt greta-run greta-diff greta-bisect"
  echo "  $PY bench/gpu/gen_hf_model.py --config models/$MODEL/config.json --out $W --dtype float32 --prompts $TOKENS"
  echo "  $(bisect clean "$(recorder "$CLEAN")")"
  echo "  $(bisect bug "$(recorder "$BUG")")"
  echo "bisect_hf.sh --check: $([ $rc = 0 ] && echo ok || echo FAILED)"
  exit $rc ;;
run) ;;
*) echo "usage: bisect_hf.sh [--prepare|--check]"; exit 2 ;;
esac

mkdir -p "$OUT"; rm -rf "$WORK"; mkdir -p "$WORK/m"
$PY -c "import torch, transformers; print('torch', torch.__version__, '| transformers', transformers.__version__, '| cuda', torch.cuda.is_available())"
{ cmake -S . -B build-rt -G Ninja -DGRETA_RUNTIME_ONLY=ON -DCMAKE_BUILD_TYPE=Release \
    && ninja -C build-rt greta-run greta-diff greta-bisect; } > "$WORK/build.log" 2>&1 \
  || { tail -20 "$WORK/build.log"; exit 1; }
$PY bench/gpu/gen_hf_model.py --config models/$MODEL/config.json --out "$W" \
  --dtype float32 --prompts $TOKENS 2>&1 | tail -1
SUMMARY=()
for name in clean bug; do
  cmd=$(bisect $name "$(recorder "$CLEAN")")
  [ $name = bug ] && cmd=$(bisect $name "$(recorder "$BUG")")
  echo "== $name: $cmd"
  start=$(date +%s)
  eval "$cmd --restart --format json -o $OUT/bisect-$name.json"
  rc=$?
  # The same work dir: the markdown report comes from the steps already run.
  eval "$cmd -q -o $OUT/bisect-$name.md"
  ff=$($PY -c "import json, sys; p = json.load(open(sys.argv[1]))['prompts'][0]; f = p['first_fail']; print('no divergence' if not f else f\"FIRST_FAIL {f['stage']} layer {f['layer']} position {f['position']} mae {f['mae']}\", '|', p['runs'], 'runs per config')" "$OUT/bisect-$name.json" 2>&1)
  SUMMARY+=("$name: greta-bisect exit $rc in $(( $(date +%s) - start )) s: $ff")
done
SUMMARY+=("expected: clean exit 0, no divergence; bug exit 1, FIRST_FAIL q_post_rope layer $BUG_LAYER position $BUG_FROM")
printf '%s\n' "${SUMMARY[@]}" | tee "$OUT/summary.txt"
