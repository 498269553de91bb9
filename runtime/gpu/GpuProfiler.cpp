//===- GpuProfiler.cpp - GRETA_GPU_OP_PROFILE: GPU time per kernel *- C++ -*-===//
//
// Events around every launch of the compute stream and, after each call,
// one line on stderr with the GPU time per kernel kind (a diagnostic, not
// a feature).
//
//===----------------------------------------------------------------------===//
#include "greta/gpu/GpuSession.h"
#include "GpuInternal.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <utility>
#include <vector>

using namespace greta;
using namespace greta::gpu;

int GpuSession::opBegin(const char *name) {
  if (!opProfile())
    return -1;
  cudaEvent_t ev[2];
  for (cudaEvent_t &x : ev) {
    if (!opEventPool_.empty()) {
      x = static_cast<cudaEvent_t>(opEventPool_.back());
      opEventPool_.pop_back();
    } else if (cudaEventCreate(&x)) {
      return -1;
    }
  }
  cudaEventRecord(ev[0], static_cast<cudaStream_t>(stream_));
  opTimes_.push_back({name, ev[0], ev[1]});
  return static_cast<int>(opTimes_.size()) - 1;
}

void GpuSession::opEnd(int index) {
  if (index >= 0)
    cudaEventRecord(static_cast<cudaEvent_t>(opTimes_[index].end),
                    static_cast<cudaStream_t>(stream_));
}

void GpuSession::printOpProfile() {
  if (opTimes_.empty())
    return;
  std::map<std::string, std::pair<double, int>> byName;
  double total = 0;
  for (const OpTime &t : opTimes_) {
    float ms = 0;
    cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(t.begin),
                         static_cast<cudaEvent_t>(t.end));
    byName[t.name].first += ms;
    ++byName[t.name].second;
    total += ms;
    opEventPool_.push_back(t.begin);
    opEventPool_.push_back(t.end);
  }
  opTimes_.clear();
  std::vector<std::pair<std::string, std::pair<double, int>>> rows(
      byName.begin(), byName.end());
  std::sort(rows.begin(), rows.end(), [](const auto &a, const auto &b) {
    return a.second.first > b.second.first;
  });
  std::string line = "greta op profile: kernels " + std::to_string(total) +
                     " ms:";
  char buf[128];
  for (const auto &[name, v] : rows) {
    std::snprintf(buf, sizeof buf, " %s %.3f ms (%d, %.1f %%)", name.c_str(),
                  v.first, v.second, 100 * v.first / total);
    line += buf;
  }
  std::fprintf(stderr, "%s\n", line.c_str());
}

