// Times the pieces of a 3-position trace's final batch on the compute
// stream, alone (no forward before it): gather of 3 logits rows (64 KB,
// f16), their copy to pinned memory, the top-5 of the 3 rows, the 60-byte
// copy of the ids; and the top-5 as the session runs it since session 7:
// each row split over blocks (scratch), the ids written straight to mapped
// pinned memory. Diagnostic for docs/PERFORMANCE.md
// (session 6), where the segment "top-5 and its copy" measured 0.08 ms at
// the end of a forward.
//   g++ -O2 -I runtime/include -I /usr/local/cuda/include final_batch_probe.cpp
//       -L build-dev/lib -lgreta_gpu_kernels -L /usr/local/cuda/lib64 -lcudart
#include "greta/gpu/Kernels.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <vector>

int main() {
  char desc[256];
  if (greta_gpu_init(0, desc, sizeof desc) != GRETA_GPU_OK)
    return std::printf("no GPU: %s\n", greta_gpu_last_error()), 1;
  std::printf("%s\n", desc);
  const int64_t rows = 827, cols = 32000;
  void *logits, *staging, *dTop5, *hStaging, *hTop5, *dSel;
  cudaMalloc(&logits, rows * cols * 2);
  { // random f16 values in [-2, 2) (bits built directly), ties included
    std::vector<uint16_t> h(rows * cols);
    uint32_t x = 12345;
    for (uint16_t &v : h) {
      x = x * 1664525u + 1013904223u;
      v = static_cast<uint16_t>(((x >> 16) & 0x83ffu) | 0x3800u);
    }
    cudaMemcpy(logits, h.data(), h.size() * 2, cudaMemcpyHostToDevice);
  }
  cudaMalloc(&staging, 3 * cols * 2);
  cudaMalloc(&dTop5, 3 * 5 * 4);
  cudaMalloc(&dSel, 3 * 8);
  cudaHostAlloc(&hStaging, 3 * cols * 2, 0);
  cudaHostAlloc(&hTop5, 3 * 5 * 4, 0);
  int64_t sel[3] = {0, rows / 2, rows - 1};
  cudaMemcpy(dSel, sel, sizeof sel, cudaMemcpyHostToDevice);
  cudaStream_t s;
  cudaStreamCreate(&s);
  greta_gpu_gather_job job{logits, cols * 2, cols * 2,
                           static_cast<const int64_t *>(dSel), 3, 0};
  void *hMapped = nullptr, *dMapped = nullptr, *dScratch = nullptr;
  cudaMalloc(&dScratch, greta_gpu_top5_scratch_bytes(3, cols));
  if (greta_gpu_host_alloc_mapped(&hMapped, &dMapped, 60) != GRETA_GPU_OK)
    return std::printf("mapped: %s\n", greta_gpu_last_error()), 1;
  cudaEvent_t ev[7];
  for (cudaEvent_t &e : ev)
    cudaEventCreate(&e);
  std::vector<float> t[6];
  for (int rep = 0; rep < 50; ++rep) {
    cudaEventRecord(ev[0], s);
    greta_gpu_gather_rows(&job, 1, staging, s);
    cudaEventRecord(ev[1], s);
    cudaMemcpyAsync(hStaging, staging, 3 * cols * 2, cudaMemcpyDeviceToHost, s);
    cudaEventRecord(ev[2], s);
    greta_gpu_top5_rows(logits, GRETA_GPU_F16, rows, cols, cols,
                        static_cast<const int64_t *>(dSel), 3,
                        static_cast<int32_t *>(dTop5), nullptr, s);
    cudaEventRecord(ev[3], s);
    cudaMemcpyAsync(hTop5, dTop5, 60, cudaMemcpyDeviceToHost, s);
    cudaEventRecord(ev[4], s);
    greta_gpu_top5_rows(logits, GRETA_GPU_F16, rows, cols, cols,
                        static_cast<const int64_t *>(dSel), 3,
                        static_cast<int32_t *>(dMapped), dScratch, s);
    cudaEventRecord(ev[5], s);
    cudaStreamSynchronize(s);
    if (std::equal(static_cast<int32_t *>(hMapped),
                   static_cast<int32_t *>(hMapped) + 15,
                   static_cast<int32_t *>(hTop5)) == false)
      return std::printf("mapped ids differ from the copied ids\n"), 1;
    for (int i = 0; i < 5; ++i) {
      float ms = 0;
      cudaEventElapsedTime(&ms, ev[i], ev[i + 1]);
      if (rep >= 5)
        t[i].push_back(ms);
    }
  }
  const char *names[5] = {"gather 3 x 64 KB", "copy to pinned 192 KB",
                          "top-5 kernel, 3 rows", "copy of the ids, 60 B",
                          "top-5 split, mapped"};
  for (int i = 0; i < 5; ++i) {
    std::sort(t[i].begin(), t[i].end());
    std::printf("%-24s median %.4f ms (min %.4f, max %.4f)\n", names[i],
                t[i][t[i].size() / 2], t[i].front(), t[i].back());
  }
  return 0;
}
