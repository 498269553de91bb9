//===- GpuInternal.h - What the GPU runtime's files share -------*- C++ -*-===//
//
// Private to runtime/gpu: CUDA error text, dtype mapping, chunk search, the
// profiling switches and the writer's hash pool, used by the session, its
// trace, its writer thread and its profiler (GpuSession.cpp, GpuTrace.cpp,
// GpuTraceWriter.cpp, GpuProfiler.cpp).
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_GPU_INTERNAL_H
#define GRETA_GPU_INTERNAL_H

#include "greta/gpu/GpuSession.h"

#include <cuda_runtime_api.h>

#include <chrono>
#include <cstdlib>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace greta::gpu {
inline std::string cudaMessage(const char *what, cudaError_t e) {
  return std::string(what) + ": " + cudaGetErrorName(e) + " (" +
         cudaGetErrorString(e) + ")";
}

inline greta_gpu_dtype gpuDType(rt::DType d) {
  switch (d) {
  case rt::DType::F16:
    return GRETA_GPU_F16;
  case rt::DType::BF16:
    return GRETA_GPU_BF16;
  default:
    return GRETA_GPU_F32;
  }
}

/// The first chunk (records, values, job tables) with room for `need` more.
template <typename C, typename N> inline C *withRoom(std::deque<C> &chunks, N need) {
  for (C &c : chunks)
    if (c.capacity - c.used >= need)
      return &c;
  return nullptr;
}

using Clock = std::chrono::steady_clock;
inline double msSince(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}
// GRETA_GPU_TRACE_PROFILE=1: one line per call on stderr with the host time
// the trace spent (a diagnostic for tracing overhead, not a feature).
// GRETA_GPU_OP_PROFILE=1: after each call, the compute stream's GPU time
// per kernel kind on stderr (events around every launch; a diagnostic).
inline bool opProfile() {
  static const bool on = [] {
    const char *v = std::getenv("GRETA_GPU_OP_PROFILE");
    return v && *v && std::string(v) != "0";
  }();
  return on;
}

inline bool traceProfile() {
  static const bool on = [] {
    const char *v = std::getenv("GRETA_GPU_TRACE_PROFILE");
    return v && *v && std::string(v) != "0";
  }();
  return on;
}

/// A few threads that hash the writer's host-hashed rows side by side (a
/// batch's rows are independent): the end of a call waits for the last
/// batch, whose logits rows take ~30 us each on one core.
class HashPool {
public:
  explicit HashPool(unsigned threads) {
    for (unsigned i = 0; i < threads; ++i)
      threads_.emplace_back([this] { loop(); });
  }
  ~HashPool() {
    {
      std::lock_guard<std::mutex> lock(m_);
      stop_ = true;
    }
    cv_.notify_all();
    for (std::thread &t : threads_)
      t.join();
  }
  /// Runs fn(0 .. count-1) on the pool and the calling thread; returns when
  /// every call has returned. One caller at a time. With `ready`, each
  /// thread polls it before its first item: the threads are woken now and
  /// start the moment the data lands (waking one costs ~50 us on a VM).
  void run(size_t count, const std::function<void(size_t)> &fn,
           const std::function<bool()> *ready = nullptr) {
    {
      std::lock_guard<std::mutex> lock(m_);
      fn_ = &fn;
      ready_ = ready;
      count_ = count;
      next_ = finished_ = 0;
    }
    cv_.notify_all();
    // Rows that have not landed yet (`ready`) are taken by the pool's
    // threads while the caller only watches, yielding its core: a woken
    // thread may run on its waker's core, and while the caller hashed a row
    // there the other thread waited (one of the three logits rows started
    // 50-78 us after they landed, "greta trace rows"; H100, session 8:
    // 2 of 12 runs against none).
    if (!ready || threads_.size() < count)
      work();
    else
      for (;;) {
        {
          std::lock_guard<std::mutex> lock(m_);
          if (finished_ == count_)
            break;
        }
        std::this_thread::yield();
      }
    std::unique_lock<std::mutex> lock(m_);
    doneCv_.wait(lock, [&] { return finished_ == count_; });
    fn_ = nullptr;
    ready_ = nullptr;
  }

private:
  void loop() {
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(m_);
        cv_.wait(lock, [&] { return stop_ || (fn_ && next_ < count_); });
        if (stop_)
          return;
      }
      work();
    }
  }
  // Takes items until none is left.
  void work() {
    bool waited = false;
    for (;;) {
      size_t i;
      const std::function<void(size_t)> *fn;
      const std::function<bool()> *ready;
      {
        std::lock_guard<std::mutex> lock(m_);
        if (!fn_ || next_ >= count_)
          return;
        i = next_++;
        fn = fn_;
        ready = ready_;
      }
      if (ready && !waited) {
        while (!(*ready)())
          std::this_thread::yield();
        waited = true;
      }
      (*fn)(i);
      std::lock_guard<std::mutex> lock(m_);
      if (++finished_ == count_)
        doneCv_.notify_all();
    }
  }
  std::vector<std::thread> threads_;
  std::mutex m_;
  std::condition_variable cv_, doneCv_;
  const std::function<void(size_t)> *fn_ = nullptr;
  const std::function<bool()> *ready_ = nullptr;
  size_t count_ = 0, next_ = 0, finished_ = 0;
  bool stop_ = false;
};
} // namespace greta::gpu

#endif // GRETA_GPU_INTERNAL_H
