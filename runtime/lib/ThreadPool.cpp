//===- ThreadPool.cpp - The CPU kernels' worker threads ---------*- C++ -*-===//
//
// Workers sleep on a condition variable between calls (no spinning: the
// machines GRETA runs on are often shared, and OpenBLAS's spinning pool
// showed up as sched_yield and kernel time in its profiles). A call opens a
// job, runs tasks itself, then closes the job and waits only for the workers
// that joined it: a worker that wakes late finds the job closed and sleeps
// again, so a slow wake-up never delays the caller.
//
//===----------------------------------------------------------------------===//
#include "ThreadPool.h"

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

namespace greta::rt {
namespace {

int envThreads(const char *name) {
  const char *v = std::getenv(name);
  if (!v || !*v)
    return 0;
  char *end = nullptr;
  long n = std::strtol(v, &end, 10);
  return *end == '\0' && n > 0 ? static_cast<int>(std::min(n, 1024L)) : 0;
}

thread_local bool inTask = false;

class Pool {
public:
  // Workers start on first use and are never joined (see pool()): they
  // sleep until the process exits.

  /// False when another caller holds the pool.
  bool run(int64_t tasks, int threads, const std::function<void(int64_t)> &fn) {
    std::unique_lock<std::mutex> call(callMutex_, std::try_to_lock);
    if (!call.owns_lock())
      return false;
    while (static_cast<int>(threads_.size()) < threads - 1) {
      int i = static_cast<int>(threads_.size());
      threads_.emplace_back([this, i] { work(i); });
    }
    {
      std::lock_guard<std::mutex> lk(m_);
      fn_ = &fn;
      tasks_ = tasks;
      next_.store(0);
      active_ = threads - 1;
      closed_ = false;
      ++generation_;
    }
    wake_.notify_all();
    runTasks();
    std::unique_lock<std::mutex> lk(m_);
    closed_ = true;
    done_.wait(lk, [&] { return running_ == 0; });
    fn_ = nullptr;
    return true;
  }

private:
  void runTasks() {
    inTask = true;
    for (int64_t t; (t = next_.fetch_add(1)) < tasks_;)
      (*fn_)(t);
    inTask = false;
  }
  void work(int index) {
    uint64_t seen = 0;
    std::unique_lock<std::mutex> lk(m_);
    for (;;) {
      wake_.wait(lk, [&] {
        return generation_ != seen && !closed_ && index < active_;
      });
      seen = generation_;
      ++running_;
      lk.unlock();
      runTasks();
      lk.lock();
      if (--running_ == 0 && closed_)
        done_.notify_all();
    }
  }

  std::vector<std::thread> threads_;
  std::mutex callMutex_, m_;
  std::condition_variable wake_, done_;
  const std::function<void(int64_t)> *fn_ = nullptr;
  int64_t tasks_ = 0;
  std::atomic<int64_t> next_{0};
  uint64_t generation_ = 0;
  int active_ = 0, running_ = 0;
  bool closed_ = true;
};

Pool &pool() {
  static Pool *p = new Pool; // never destroyed: workers may still sleep
  return *p;
}

std::atomic<int> forcedThreads{0};

} // namespace

int cpuThreads() {
  if (int forced = forcedThreads.load())
    return forced;
  static const int n = [] {
    for (const char *name :
         {"GRETA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"})
      if (int v = envThreads(name))
        return v;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
      return std::max(1, CPU_COUNT(&set));
    return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  }();
  return n;
}

void setCpuThreads(int n) { forcedThreads.store(std::max(0, n)); }

int threadsFor(double flops) {
  double worth = flops / 5e5;
  return static_cast<int>(std::clamp(worth, 1.0, double(cpuThreads())));
}

void parallelFor(int64_t tasks, int threads,
                 const std::function<void(int64_t)> &fn) {
  threads = static_cast<int>(std::min<int64_t>(threads, tasks));
  if (threads > 1 && !inTask && pool().run(tasks, threads, fn))
    return;
  for (int64_t t = 0; t < tasks; ++t)
    fn(t);
}

} // namespace greta::rt
