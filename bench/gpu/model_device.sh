#!/bin/bash
# One device call on the GPU host (no LLVM): build the runtime-only GPU
# configuration, make the random HF models there (gen_hf_model.py), then
#   check: llama-tiny trace/patch/driver checks, TinyLlama-1.1B-shaped GPU
#          f16/bf16 logits vs the CPU f32 run, greta-bisect CPU f32 vs GPU f16
#          with the CPU f64 reference (payload full), on both models;
#   bench: prefill_bench.py (GRETA vs HF sdpa fp16, tracing overhead);
#   profile: GRETA's and HF's kernel time by kind (prefill_bench --profile);
#   trace: the trace checks (--verify, subset vs every row, payloads) and
#          GRETA_GPU_TRACE_PROFILE lines per length;
#   kernels: the kernel test (--quick) alone.
# MODE may list several, comma-separated (check,profile); all = check,bench.
# Objects compiled ahead of time on the build machine are carried in
# $AOT (greta-compile MODEL --backend B --precision P -o $AOT/<model>-<B>_<P>.so).
#   bash bench/gpu/model_device.sh check|bench|profile|trace|all[,...] [LENGTHS]
set -u
. bench/gpu/build_dev.sh
MODE=${1:-all}; LENGTHS=${2:-827,1653,4096,16384}
[ "$MODE" = all ] && MODE=check,bench
has() { [[ ",$MODE," == *",$1,"* ]]; }
OUT=${OUT:-/tmp/greta-out}; mkdir -p "$OUT"
AOT=${AOT:-.device-carry/aot}; WORK=${WORK:-/tmp/greta-work}; M=$WORK/models; T=$WORK/traces
rm -rf $T; mkdir -p $T $M
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader | tee $OUT/gpu.txt
build_dev $T/build.log greta-run greta-run-aot greta-diff greta-bisect greta-gpu-kernel-test
B=build-dev/bin
t0=$(date +%s)
python3 bench/gpu/gen_hf_model.py --config models/llama-tiny/config.json --out $M/tiny --prompts 827 2>&1 | tail -1
python3 bench/gpu/gen_hf_model.py --config models/tinyllama-1.1b/config.json --out $M/1b \
  --prompts 64,827,$LENGTHS 2>&1 | tail -1
# The same model rounded to bf16: GPU bf16 vs CPU f32 on identical weights.
python3 bench/gpu/gen_hf_model.py --config models/tinyllama-1.1b/config.json --out $M/1b_bf16 \
  --dtype bfloat16 --prompts 827 2>&1 | tail -1
echo "models $(( $(date +%s) - t0 )) s"
relL2() { python3 - "$@" <<'PY'
import json, math, sys
def load(n): return [float.fromhex(h) for h in json.load(open(n))["last_logits_hex"]]
ref = load(sys.argv[1])
for n in sys.argv[2:]:
    x = load(n); d = json.load(open(n))
    e = math.sqrt(sum((p - q) ** 2 for p, q in zip(x, ref)) / sum(q * q for q in ref))
    print(f"  {n.split('/')[-1]:28s} relL2 vs {sys.argv[1].split('/')[-1]}: {e:.3e}  top5 "
          f"{[t['token'] for t in d['top5']]}  forward {d['timing']['forward_s']*1e3:.1f} ms")
PY
}
if has check || has kernels; then
  echo "== kernel test (--quick)"
  $B/greta-gpu-kernel-test --quick > $OUT/kernel-test.log 2>&1; echo "kernel test rc=$?"
  grep -E "^FAIL" $OUT/kernel-test.log | head -12
  echo "  $(grep -c '^ok' $OUT/kernel-test.log) ok, $(grep -c '^FAIL' $OUT/kernel-test.log) FAIL (top5: $(grep -c '^ok   top5' $OUT/kernel-test.log) ok, device job table: $(grep -c '^ok .*device job table' $OUT/kernel-test.log) ok)"
fi
if has check; then
  W=$M/tiny/model.safetensors; P=$M/tiny/prompt_827.json; S=$AOT/llama-tiny
  r() { $B/greta-run-aot "$@" --weights $W --prompt $P; }
  echo "== llama-tiny: batched trace, patch, driver"
  r $S-gpu_f16.so --payload full --trace-dir $T/full16 > /dev/null; echo "full16 rc=$?"
  PYTHONPATH=python python3 -m greta_trace $T/full16 --verify
  r $S-gpu_f16.so --positions 3,700,last --repeat 3 --timing --trace-dir $T/sub16 | grep -E "^trace|each"
  $B/greta-diff $T/full16 $T/sub16 --policy exact > $T/d.txt; echo "subset vs full exact rc=$?"
  r $S-gpu_f16.so --print-logits > $T/plain16.txt
  r $S-gpu_f16.so --print-logits --patch-from $T/full16 --patch mlp_out:6 > $T/self16.txt
  grep ^patched $T/self16.txt; grep -v ^patched $T/self16.txt | diff -q - $T/plain16.txt && echo "self-patch: logits unchanged"
  r $S-cpu_f32.so --payload full --layers 6 --stages mlp_out --trace-dir $T/cpu6 > /dev/null
  r $S-gpu_f16.so --print-logits --patch-from $T/cpu6 --patch mlp_out:6 > $T/cross16.txt
  diff -q $T/cross16.txt $T/self16.txt > /dev/null || echo "cross-patch (CPU f32 values): logits changed"
  for kind in json; do
    for cfg in cpu_f32 cpu_f64 gpu_f16 gpu_bf16; do
      r $S-$cfg.so --json --print-logits --timing > $T/tiny_$cfg.json || echo "FAIL $cfg"; done; done
  relL2 $T/tiny_cpu_f32.json $T/tiny_gpu_f16.json $T/tiny_gpu_bf16.json $T/tiny_cpu_f64.json
  for g in gpu_f16 gpu_bf16; do
    timeout 300 $B/greta-bisect --model models/llama-tiny/model.mlir --weights $W --prompt $P \
      --base "--so=$S-cpu_f32.so" --test "--so=$S-$g.so" --ref "--so=$S-cpu_f64.so" \
      --work-dir $T/bis_tiny_$g -q --format json -o $T/bisect_tiny_cpu_f32_vs_$g.json > /dev/null 2>$T/bis.err
    echo "bisect llama-tiny cpu_f32 vs $g (ref cpu_f64, payload full): rc=$? (0 = no divergence)"; tail -2 $T/bis.err
  done
  timeout 300 $B/greta-bisect --model models/llama-tiny/model.mlir --weights $W --prompt $P \
    --base "--so=$S-gpu_f16.so" --test "--so=$S-gpu_f16.so --kernel=attention=partial_tile_bug" \
    --confirm --work-dir $T/bis_conf -q --format json -o $OUT/bisect_confirm_attention.json > /dev/null 2>$T/bis.err
  echo "bisect good vs attention=partial_tile_bug --confirm: rc=$?"
  python3 -c "import json;d=json.load(open('$OUT/bisect_confirm_attention.json'));print(' ', d.get('first_fail'));print(' ', d['prompts'][0].get('confirmation'))"
  echo "== TinyLlama-1.1B-shaped (22 layers, hidden 2048, 32/4 heads, inter 5632, vocab 32000)"
  W=$M/1b/model.safetensors; S=$AOT/tinyllama-1.1b; P=$M/1b/prompt_827.json
  WB=$M/1b_bf16/model.safetensors
  j() { local name=$1 so=$2 w=$3; shift 3
    $B/greta-run-aot $S-$so.so --weights $w --prompt $P --json --print-logits --timing "$@" > $T/$name.json || echo "FAIL $name"; }
  j 1b_cpu_f32 cpu_f32 $W; j 1b_cpu_f64 cpu_f64 $W; j 1b_gpu_f16 gpu_f16 $W
  j 1b_gpu_f16_lazy gpu_f16 $W --kernel attention=lazy_rescale
  j 1b_bf16w_cpu_f32 cpu_f32 $WB; j 1b_bf16w_gpu_bf16 gpu_bf16 $WB
  echo "f16 weights:"; relL2 $T/1b_cpu_f32.json $T/1b_gpu_f16.json $T/1b_gpu_f16_lazy.json $T/1b_cpu_f64.json
  echo "vs the f64 reference:"; relL2 $T/1b_cpu_f64.json $T/1b_gpu_f16.json $T/1b_gpu_f16_lazy.json
  echo "bf16 weights:"; relL2 $T/1b_bf16w_cpu_f32.json $T/1b_bf16w_gpu_bf16.json
  echo "HF yardstick:"; python3 bench/gpu/hf_precision.py $M/1b $P float16 2>&1 | grep relL2
  python3 bench/gpu/hf_precision.py $M/1b_bf16 $P bfloat16 2>&1 | grep relL2
  GRETA_GPU_TRACE_PROFILE=1 $B/greta-run-aot $S-gpu_f16.so --weights $W --prompt $P --positions 0,413,last \
    --trace-dir $T/prof --repeat 3 --timing 2>&1 | grep -E "profile|each"
  $B/greta-run-aot $S-gpu_f16.so --weights $W --prompt $P --payload full --layers 0,21 --trace-dir $T/full1b > /dev/null
  PYTHONPATH=python python3 -m greta_trace $T/full1b --verify
  for cfg in "gpu_f16 $W cpu_f32 cpu_f64" "gpu_bf16 $WB cpu_f32 cpu_f64"; do
    set -- $cfg
    timeout 300 $B/greta-bisect --model models/tinyllama-1.1b/model.mlir --weights $2 --prompt $P \
      --base "--so=$S-$3.so" --test "--so=$S-$1.so" --ref "--so=$S-$4.so" \
      --work-dir $T/bis_1b_$1 -q --format json -o $OUT/bisect_1b_cpu_f32_vs_$1.json > /dev/null 2>$T/bis.err
    echo "bisect 1.1B cpu_f32 vs $1 (ref cpu_f64, payload full, weights $(basename $(dirname $2))): rc=$? (0 = no divergence)"
    tail -2 $T/bis.err
  done
fi
if has bench; then
  echo "== prefill bench"
  PYTHONUNBUFFERED=1 python3 bench/gpu/prefill_bench.py --runner $B/greta-run-aot \
    --so $AOT/tinyllama-1.1b-gpu_f16.so --model-dir $M/1b --lengths $LENGTHS --json $OUT/prefill.json
  PYTHONUNBUFFERED=1 python3 bench/gpu/prefill_bench.py --runner $B/greta-run-aot --no-trace --no-hf \
    --so $AOT/tinyllama-1.1b-gpu_f16.so --model-dir $M/1b --lengths 4096,16384 --kernel attention=lazy_rescale
fi
if has profile; then
  echo "== where the time goes (untraced prefill, f16)"
  PYTHONUNBUFFERED=1 python3 bench/gpu/prefill_bench.py --runner $B/greta-run-aot --profile \
    --so $AOT/tinyllama-1.1b-gpu_f16.so --model-dir $M/1b --lengths $LENGTHS
fi
if has trace; then
  echo "== trace checks"
  W=$M/1b/model.safetensors; S=$AOT/tinyllama-1.1b; P=$M/1b/prompt_827.json
  $B/greta-run-aot $S-gpu_f16.so --weights $W --prompt $P --payload full --layers 0,1,21 --trace-dir $T/tfull > /dev/null
  PYTHONPATH=python python3 -m greta_trace $T/tfull --verify
  $B/greta-run-aot $S-gpu_f16.so --weights $W --prompt $P --positions all --trace-dir $T/tall > /dev/null
  $B/greta-run-aot $S-gpu_f16.so --weights $W --prompt $P --positions 0,413,last --trace-dir $T/t3 > /dev/null
  $B/greta-run-aot $S-gpu_f16.so --weights $W --prompt $P --positions 0,413,last --payload stats \
    --trace-dir $T/t3s > /dev/null
  $B/greta-diff $T/tall $T/t3 --policy exact > $T/d.txt; echo "3 positions vs every row, exact: rc=$?"
  $B/greta-diff $T/tfull $T/tall --policy exact > $T/d2.txt; echo "full payload vs every row, exact: rc=$?"
  PYTHONPATH=python python3 -m greta_trace $T/t3s --verify 2>&1 | tail -1
  for L in ${LENGTHS//,/ }; do
    GRETA_GPU_TRACE_PROFILE=1 $B/greta-run-aot $S-gpu_f16.so --weights $W --prompt $M/1b/prompt_$L.json \
      --positions 0,$((L / 2)),last --trace-dir $T/prof --overwrite --repeat 3 --timing 2>&1 | grep -E "profile|each" | tail -2
  done
fi
