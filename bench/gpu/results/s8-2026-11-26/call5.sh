#!/bin/bash
# Session 8, call 5: the one-thread SHA-256 kernel (every-row batches) with
# three adds per round as IMADs on the FMA pipe (switch GRETA_EXP_SHA_FMA=1).
set -u
cd "$(dirname "$0")"
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
NEW=$(cd ../aot-new && pwd)
M=/tmp/greta-models; BD=/tmp/build-dev
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader | tee $OUT/gpu.txt
t0=$(date +%s)
{ cmake -S . -B $BD -G Ninja -DGRETA_RUNTIME_ONLY=ON -DGRETA_GPU=cuda -DCMAKE_BUILD_TYPE=Release && ninja -C $BD greta-run-aot greta-diff greta-gpu-kernel-test; } > $OUT/build.log 2>&1 || { tail -30 $OUT/build.log; exit 1; }
echo "build $(( $(date +%s) - t0 )) s"
/usr/local/cuda/bin/cuobjdump -sass $BD/kernels/CMakeFiles/GretaGpuKernels.dir/src/Trace.hip.o > $OUT/sass.txt 2>&1
python3 - $OUT/sass.txt <<'PY'
import re, collections, sys
cur = None; counts = {}
for line in open(sys.argv[1]):
    m = re.search(r'Function : (\S+)', line)
    if m: cur = m.group(1); counts[cur] = collections.Counter(); continue
    if cur:
        m = re.search(r'/\*[0-9a-f]{4}\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9]*)', line)
        if m: counts[cur][m.group(1)] += 1
for f, c in counts.items():
    if 'sha256RowsKernel' in f and 'PK' in f:
        print(f[:60], sum(c.values()), dict(c.most_common(7)))
PY
for v in "" 1; do GRETA_EXP_SHA_FMA=$v $BD/bin/greta-gpu-kernel-test --quick > $OUT/kt.log 2>&1; echo "kernel test fma='$v': rc=$? $(tail -1 $OUT/kt.log)"; done
[ -f $M/1b/prompt_1653.json ] || python3 bench/gpu/gen_hf_model.py --config models/tinyllama-1.1b/config.json --out $M/1b --prompts 827,1653 2>&1 | tail -1
R=$BD/bin/greta-run-aot; SO=$NEW/tinyllama-1.1b-gpu_f16.so
T=/tmp/tr; rm -rf $T; mkdir -p $T
for L in 827 1653; do
  for v in plain fma; do
    env $([ $v = fma ] && echo GRETA_EXP_SHA_FMA=1) $R $SO --weights $M/1b/model.safetensors --prompt $M/1b/prompt_$L.json --positions all --trace-dir $T/$v --overwrite 2>&1 | grep "^trace:"
  done
  cmp $T/plain/records.bin $T/fma/records.bin && echo "every row $L: records.bin identical"
done
python3 bench/gpu/trace_overhead_ab.py --so $SO --model-dir $M/1b --lengths 827,1653 --rounds 8 --repeat 6 --positions all \
  --config plain=$R --config fma=$R:GRETA_EXP_SHA_FMA=1 --json $OUT/ab.json
