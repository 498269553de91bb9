#!/bin/bash
# One device call on the GPU host (no LLVM): issue #24.5, GPU decode.
# Builds the runtime-only GPU configuration (greta-run, greta-run-aot, greta-diff,
# greta-bisect, greta-gpu-kernel-test), makes the random HF models there
# (gen_hf_model.py), then
#   kernels: greta-gpu-kernel-test --paged (paged append/gather/split-K
#            attention vs the host reference at block sizes 16/7/1, the
#            planted variants detected);
#   check:   llama-tiny and TinyLlama-1.1B: chunk-1 logits vs single-shot
#            prefill at block sizes 16/7/1; a clean --trace-cache-reads
#            run (every read equals its write); both planted paged-cache
#            bugs through greta-bisect (exact position, layer, stage; runs);
#   bench:   decode_bench.py: 128 tokens after prompts of 827, 4K and 16K
#            tokens, GRETA vs HF generate (sdpa, dynamic and static cache),
#            and the cost of tracing 3 prompt positions + every step's row.
# MODE may list several, comma-separated; all = kernels,check,bench.
# Objects compiled ahead of time on the build machine are carried in $AOT:
#   greta-compile models/llama-tiny/model.mlir --backend gpu --precision f16 \
#     -o .device-carry/aot/llama-tiny-gpu_f16.so
#   greta-compile models/tinyllama-1.1b/model.mlir --backend gpu --precision f16 \
#     -o .device-carry/aot/tinyllama-1.1b-gpu_f16.so
#   bash bench/gpu/decode_device.sh all|kernels|check|bench[,...] [LENGTHS]
set -u
cd "$(dirname "$0")/../.."
. bench/gpu/build_dev.sh
MODE=${1:-all}; LENGTHS=${2:-827,4096,16384}
[ "$MODE" = all ] && MODE=kernels,check,bench
has() { [[ ",$MODE," == *",$1,"* ]]; }
OUT=${OUT:-/tmp/greta-out}; mkdir -p "$OUT"
AOT=${AOT:-.device-carry/aot}; WORK=${WORK:-/tmp/greta-decode}; M=$WORK/models; T=$WORK/traces
rm -rf $T; mkdir -p $T $M
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader | tee $OUT/gpu.txt
build_dev $T/build.log greta-run greta-run-aot greta-diff greta-bisect greta-gpu-kernel-test
B=build-dev/bin
if has kernels; then
  echo "== kernel test --paged"
  $B/greta-gpu-kernel-test --paged --quick > $OUT/kernel-paged.log 2>&1; echo "kernel test rc=$?"
  grep -E "^FAIL" $OUT/kernel-paged.log | head -20
  echo "  $(grep -c '^ok' $OUT/kernel-paged.log) ok, $(grep -c '^FAIL' $OUT/kernel-paged.log) FAIL"
fi
if has check || has bench; then
  t0=$(date +%s)
  python3 bench/gpu/gen_hf_model.py --config models/llama-tiny/config.json --out $M/tiny --prompts 48 2>&1 | tail -1
  python3 bench/gpu/gen_hf_model.py --config models/tinyllama-1.1b/config.json --out $M/1b \
    --prompts 64,$LENGTHS 2>&1 | tail -1
  echo "models $(( $(date +%s) - t0 )) s"
fi
relL2() { python3 - "$@" <<'PY'
import json, math, sys
def load(n): return [float.fromhex(h) for h in json.load(open(n))["last_logits_hex"]]
ref = load(sys.argv[1])
for n in sys.argv[2:]:
    x = load(n)
    e = math.sqrt(sum((p - q) ** 2 for p, q in zip(x, ref)) / sum(q * q for q in ref))
    print(f"  {n.split('/')[-1]:24s} relL2 vs {sys.argv[1].split('/')[-1]}: {e:.3e}"
          f"{'' if e < 1e-2 else '  FAIL (>= 1e-2)'}")
PY
}
# The planted bugs on MODEL (SO, WEIGHTS, PROMPT): decoded one token a call
# from position 10, pages of 16: both must be found at position 16, layer 0
# (k_cache for the stale page, attn_out for the boundary).
bisect_bugs() { local name=$1 model=$2 so=$3 w=$4 p=$5 layers=$6 n=$7
  local steps=$(( n - 10 ))
  local bound=$(python3 -c "import math;print(math.ceil(math.log2($steps))+math.ceil(math.log2($layers))+4)")
  for bug in paged_kv_append=stale_page_bug:k_cache paged_attention=page_boundary_bug:attn_out; do
    local kern=${bug%%:*} stage=${bug##*:}
    timeout 600 $B/greta-bisect --model $model --weights $w --prompt $p \
      --base "--so=$so --generate-from=10" --test "--so=$so --generate-from=10 --kernel=$kern" \
      --work-dir $T/bis_${name}_${stage} -q --format json -o $OUT/bisect_${name}_${stage}.json > /dev/null 2>$T/bis.err
    echo "bisect $name good vs $kern: rc=$? (1 = divergence found)"; tail -2 $T/bis.err
    python3 test/tools/greta-bisect/Inputs/check_bisect.py $OUT/bisect_${name}_${stage}.json \
      --stage $stage --layer 0 --position 16 --max-runs $bound || echo "  FAIL (bound $bound runs)"
  done
}
if has check; then
  for m in tiny:llama-tiny:12:48 1b:tinyllama-1.1b:22:64; do
    IFS=: read key name layers n <<< "$m"
    S=$AOT/$name-gpu_f16.so W=$M/$key/model.safetensors P=$M/$key/prompt_$n.json
    echo "== $name: chunk-1 decode vs single-shot prefill"
    $B/greta-run-aot $S --weights $W --prompt $P --json --print-logits > $T/${key}_prefill.json
    for bs in 16 7 1; do
      $B/greta-run-aot $S --weights $W --prompt $P --json --print-logits --chunk 1 \
        --kv-block-size $bs > $T/${key}_c1_bs$bs.json || echo "FAIL chunk 1 bs $bs"
    done
    relL2 $T/${key}_prefill.json $T/${key}_c1_bs16.json $T/${key}_c1_bs7.json $T/${key}_c1_bs1.json
    python3 -c "import json,sys;l=lambda b:json.load(open('$T/${key}_c1_bs%d.json'%b))['last_logits_hex'];print('  block sizes 16/7/1 bit-identical:', l(16)==l(7)==l(1))"
    $B/greta-run-aot $S --weights $W --prompt $P --generate 6 --chunk 20,1 --kv-block-size 7 \
      --trace-cache-reads --stages k_cache,v_cache,k_cache_read,v_cache_read --payload full \
      --trace-dir $T/${key}_reads > /dev/null || echo "FAIL trace-cache-reads"
    echo "  clean --trace-cache-reads: $(PYTHONPATH=python python3 test/tools/greta-run/Inputs/cache_reads.py $T/${key}_reads 2>&1)"
    bisect_bugs $key models/$name/model.mlir $S $W $P $layers $n
  done
fi
if has bench; then
  echo "== decode bench (TinyLlama-1.1B shape, f16)"
  PYTHONUNBUFFERED=1 python3 bench/gpu/decode_bench.py --runner $B/greta-run-aot \
    --so $AOT/tinyllama-1.1b-gpu_f16.so --model-dir $M/1b --lengths $LENGTHS --new 128 \
    --json $OUT/decode.json 2>&1 | tee $OUT/decode.log | tail -12
fi
