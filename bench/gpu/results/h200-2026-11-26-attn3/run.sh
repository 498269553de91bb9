#!/usr/bin/env bash
# TEMPORARY device script for the attention exploration (not committed).
set -uo pipefail
OUT=${OUT:-$PWD/out}; mkdir -p "$OUT"
C=.device-carry/attn3
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/env.log"
cp $C/Trace.hip kernels/src/Trace.hip; cp $C/Elementwise.hip kernels/src/Elementwise.hip; cp $C/KernelTest.hip kernels/test/KernelTest.hip
t0=$(date +%s)
(cmake -S kernels -B build-gpu -G Ninja -DGRETA_GPU=cuda -DCMAKE_BUILD_TYPE=Release && ninja -C build-gpu) >"$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; exit 1; }
echo "build $(( $(date +%s) - t0 )) s"
cuobjdump -sass build-gpu/CMakeFiles/GretaGpuKernels.dir/src/Attention.hip.o > /tmp/sass.txt 2>&1
python3 - <<'PY'
import re, collections, os
txt = open('/tmp/sass.txt').read().split('Function : ')
keep = ['attnGqaKernelI6__halfLi64ELi4ELi2ELi3ELi%dE' % o for o in (0, 3, 9, 19, 25)]
out = open(os.environ.get('OUT', '.') + '/sass.txt', 'w')
for f in txt:
    for k in keep:
        if k in f.split('\n')[0]:
            ops = collections.Counter(re.findall(r'/\*[0-9a-f]{4,}\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_]*)', f))
            print(k, 'instrs', sum(ops.values()), {o: ops[o] for o in ('HMMA','LDSM','MUFU','FFMA','FMUL','FADD','FMNMX','F2FP','SHFL','LDL','STL','LDS','BAR','BRA')})
            out.write('Function : ' + f)
PY
gzip -f "$OUT/sass.txt"
PYTHONUNBUFFERED=1 python3 bench/gpu/attn_explore.py build-gpu/lib/libgreta_gpu_kernels.so > "$OUT/explore.log" 2>&1; echo "explore rc=$?"
sed -n '/^shape/,$p' "$OUT/explore.log"; grep -i -E "error|Traceback" "$OUT/explore.log" | head
for tt in ${TEST_TUNES:-3}; do
  t0=$(date +%s)
  GRETA_ATTN_TUNE=$tt ./build-gpu/bin/greta-gpu-kernel-test > "$OUT/test-tune$tt.log" 2>&1; echo "test(tune $tt) rc=$? in $(( $(date +%s) - t0 )) s"
  grep -E "^(FAIL|RESULT|seed)|checks," "$OUT/test-tune$tt.log" | head -20
done
if [ -n "${NCU_TUNES:-}" ]; then
  timeout 120 ncu --clock-control none -k regex:attnGqa --section ComputeWorkloadAnalysis --section WarpStateStats --section SchedulerStats --section InstructionStats python3 $C/ncu_drv.py build-gpu/lib/libgreta_gpu_kernels.so "$NCU_TUNES" > "$OUT/ncu.txt" 2>&1
  echo "ncu rc=$?"; grep -E "attnGqa|Issue Slots Busy|Executed Ipc A|Warp Cycles Per Issued|No Eligible|Pipe" "$OUT/ncu.txt" | head -40
fi
