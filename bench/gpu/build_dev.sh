# Sourced by the device scripts (bench/gpu/*_device.sh,
# scripts/hf_refs/gpu_device.sh), run from the repository root:
#   build_dev LOG TARGET...
# builds GRETA's runtime-only CUDA configuration (no LLVM: what the GPU host
# can build) into build-dev/ and prints how long it took; on failure, the
# log's last lines and exit 1.
build_dev() {
  local log=$1 start
  shift
  start=$(date +%s)
  { cmake -S . -B build-dev -G Ninja -DGRETA_RUNTIME_ONLY=ON -DGRETA_GPU=cuda \
      -DCMAKE_BUILD_TYPE=Release && ninja -C build-dev "$@"; } > "$log" 2>&1 \
    || { tail -40 "$log"; exit 1; }
  echo "build $(( $(date +%s) - start )) s"
}
