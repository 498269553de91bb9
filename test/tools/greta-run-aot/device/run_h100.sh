#!/bin/bash
# One device call (nvidia-h100-x1): build the runtime-only GPU configuration,
# run llama-tiny on p6_len_16 from the objects compiled ahead of time on the
# build machine (.device-carry/, see docs/GPU_BACKEND.md), compare logits,
# diff traces, bisect the two planted kernel bugs. Logs under $OUT.
set -u
OUT=${OUT:-/tmp/greta-out}; mkdir -p "$OUT"
C=.carry-gpu-aot; P=models/prompts/p6_len_16.json; M=models/llama-tiny/model.mlir
W=$C/w.safetensors; T=/tmp/greta-traces; rm -rf $T; mkdir -p $T
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $OUT/gpu.txt
{ cmake -S . -B build-dev -G Ninja -DGRETA_RUNTIME_ONLY=ON -DGRETA_GPU=cuda -DCMAKE_BUILD_TYPE=Release \
  && ninja -C build-dev greta-run-aot greta-diff greta-bisect; } > $OUT/build.log 2>&1 \
  || { tail -40 $OUT/build.log; exit 1; }
B=build-dev/bin
run() { local name=$1; shift; echo "== $name: $*" >> $OUT/runs.log
  $B/greta-run-aot "$@" --weights $W --prompt $P --json --print-logits --timing > $T/$name.json 2>> $OUT/runs.log
  echo "rc=$? $name" | tee -a $OUT/runs.log; }
run cpu_f32 $C/cpu_f32.so --trace-dir $T/cpu_f32 --payload stats
run cpu_f64 $C/cpu_f64.so --trace-dir $T/cpu_f64 --payload stats
run gpu_f16 $C/gpu_f16.so --trace-dir $T/gpu_f16 --payload stats
run gpu_bf16 $C/gpu_bf16.so --trace-dir $T/gpu_bf16 --payload stats
run gpu_f32 $C/gpu_f32.so --trace-dir $T/gpu_f32 --payload stats
run gpu_f16_untraced $C/gpu_f16.so
run gpu_f16_again $C/gpu_f16.so --trace-dir $T/gpu_f16_again --payload stats
python3 - $T <<'PY' | tee $OUT/logits.txt
import json, math, sys
T = sys.argv[1]
def load(n):
    try:
        d = json.load(open(f"{T}/{n}.json"))
    except Exception as e:
        return None, None
    return [float.fromhex(h) for h in d["last_logits_hex"]], d
ref, _ = load("cpu_f64")
cpu, _ = load("cpu_f32")
for n in ["cpu_f32", "gpu_f16", "gpu_bf16", "gpu_f32", "gpu_f16_untraced"]:
    x, d = load(n)
    if x is None: print(n, "NO RESULT"); continue
    def rel(a, b): return math.sqrt(sum((p-q)**2 for p, q in zip(a, b)) / sum(q*q for q in b))
    print(f"{n:18s} relL2 vs cpu_f32 {rel(x, cpu):.3e}  vs cpu_f64 {rel(x, ref):.3e}  top5 {[t['token'] for t in d['top5']]}  forward {d['timing']['forward_s']*1e3:.1f} ms  records {d['records']}")
PY
cmp $T/gpu_f16/records.bin $T/gpu_f16_again/records.bin && echo "gpu_f16 traces byte-identical across runs" | tee -a $OUT/logits.txt
for g in gpu_f16 gpu_bf16 gpu_f32; do
  $B/greta-diff $T/cpu_f32 $T/$g --ref $T/cpu_f64 --policy reference > $OUT/diff_$g.txt 2>&1; echo "greta-diff cpu_f32 vs $g (ref f64): rc=$?" | tee -a $OUT/summary.txt
  head -20 $OUT/diff_$g.txt
done
for bug in rope=fp16_angles attention=partial_tile_bug; do
  n=${bug%%=*}
  timeout 150 $B/greta-bisect --model $M --weights $W --prompt $P --greta-run $B/greta-run-aot --greta-diff $B/greta-diff \
    --base "--so=$C/gpu_f16.so" --test "--so=$C/gpu_f16.so --kernel=$bug" --work-dir /tmp/bisect_$n \
    --format json -o $OUT/bisect_$n.json > $OUT/bisect_$n.log 2>&1
  echo "greta-bisect gpu_f16 good vs $bug: rc=$?" | tee -a $OUT/summary.txt
  python3 -c "import json;d=json.load(open('$OUT/bisect_$n.json'));print(json.dumps(d.get('first_fail'),indent=None))" 2>&1 | tee -a $OUT/summary.txt
done
$B/greta-run-aot $C/gpu_f16.so --weights $W --prompt $P --kernel attention=nope > $OUT/err_variant.txt 2>&1; echo "unknown variant rc=$?" >> $OUT/summary.txt
CUDA_VISIBLE_DEVICES= $B/greta-run-aot $C/gpu_f16.so --weights $W --prompt $P > $OUT/err_nogpu.txt 2>&1; echo "no gpu rc=$?" >> $OUT/summary.txt
cat $OUT/err_variant.txt $OUT/err_nogpu.txt | head -6
cat $OUT/summary.txt
