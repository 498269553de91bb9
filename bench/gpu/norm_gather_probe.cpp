// Times an RMSNorm launch of the 1.1B model's shape (827 x 2048 f16) alone,
// with a 3-position trace's gather of one layer riding in it (13 tensors x 3
// rows of 4 KB, greta_gpu_rms_norm_gather_f16), and that gather alone.
// Diagnostic for docs/PERFORMANCE.md (session 7), where GRETA_GPU_OP_PROFILE
// showed the traced forward's 45 RMSNorm launches ~0.07 ms slower in all.
// Each figure is the mean over 200 back-to-back launches (events around the
// loop), the median of 9 such loops.
//   g++ -O2 -I runtime/include -I /usr/local/cuda/include norm_gather_probe.cpp
//       -L build-dev/lib -lgreta_gpu_kernels -L /usr/local/cuda/lib64 -lcudart
#include "greta/gpu/Kernels.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <vector>

int main() {
  char desc[256];
  if (greta_gpu_init(0, desc, sizeof desc) != GRETA_GPU_OK)
    return std::printf("no GPU: %s\n", greta_gpu_last_error()), 1;
  std::printf("%s\n", desc);
  const int64_t rows = 827, cols = 2048, tensors = 13;
  const size_t bytes = rows * cols * 2;
  void *in, *w, *out, *staging, *dSel;
  cudaMalloc(&in, bytes);
  cudaMalloc(&out, bytes);
  cudaMalloc(&w, cols * 2);
  cudaMemset(in, 0x3c, bytes);
  cudaMemset(w, 0x3c, cols * 2);
  cudaMalloc(&staging, tensors * 3 * cols * 2);
  cudaMalloc(&dSel, 3 * 8);
  int64_t sel[3] = {0, rows / 2, rows - 1};
  cudaMemcpy(dSel, sel, sizeof sel, cudaMemcpyHostToDevice);
  std::vector<void *> src(tensors);
  std::vector<greta_gpu_gather_job> jobs(tensors);
  for (int64_t t = 0; t < tensors; ++t) {
    cudaMalloc(&src[t], bytes);
    cudaMemset(src[t], 0x3c, bytes);
    jobs[t] = {src[t], cols * 2, cols * 2,
               static_cast<const int64_t *>(dSel), 3, t * 3 * cols * 2};
  }
  cudaStream_t s;
  cudaStreamCreate(&s);
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  auto time = [&](const char *name, const std::function<void()> &launch) {
    std::vector<float> t;
    for (int rep = 0; rep < 10; ++rep) {
      cudaEventRecord(a, s);
      for (int i = 0; i < 200; ++i)
        launch();
      cudaEventRecord(b, s);
      cudaEventSynchronize(b);
      float ms = 0;
      cudaEventElapsedTime(&ms, a, b);
      if (rep > 0)
        t.push_back(1e3f * ms / 200);
    }
    std::sort(t.begin(), t.end());
    std::printf("%-36s %.2f us a launch (min %.2f, max %.2f)\n", name,
                t[t.size() / 2], t.front(), t.back());
  };
  auto *x = static_cast<const greta_gpu_f16 *>(in);
  auto *wt = static_cast<const greta_gpu_f16 *>(w);
  auto *y = static_cast<greta_gpu_f16 *>(out);
  time("rms_norm 827 x 2048 f16", [&] {
    greta_gpu_rms_norm_f16(x, cols, wt, rows, cols, 1e-5f, y, cols, s);
  });
  time("rms_norm + gather 13 x 3 rows", [&] {
    greta_gpu_rms_norm_gather_f16(x, cols, wt, rows, cols, 1e-5f, y, cols,
                                  jobs.data(), tensors, staging, s);
  });
  time("gather 13 x 3 rows alone", [&] {
    greta_gpu_gather_rows(jobs.data(), tensors, staging, s);
  });
  time("rms_norm, then gather (2 launches)", [&] {
    greta_gpu_rms_norm_f16(x, cols, wt, rows, cols, 1e-5f, y, cols, s);
    greta_gpu_gather_rows(jobs.data(), tensors, staging, s);
  });
  return cudaGetLastError() == cudaSuccess ? 0 : 1;
}
