//===- ThreadPool.h - The CPU kernels' worker threads -----------*- C++ -*-===//
//
// One process-wide pool the CPU kernels split their work over. Callers split
// work so that every output element is computed whole by one task, in an
// order fixed by the element alone: which thread runs a task, and how many
// threads there are, never changes a result (docs/RUNTIME.md, "Batch
// invariance").
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_RT_THREADPOOL_H
#define GRETA_RT_THREADPOOL_H

#include <cstdint>
#include <functional>

namespace greta::rt {

/// Threads the CPU kernels use: GRETA_NUM_THREADS, else OMP_NUM_THREADS,
/// else OPENBLAS_NUM_THREADS (what the runtime honoured when its GEMMs were
/// OpenBLAS's), else the CPUs this process may run on. Read once.
int cpuThreads();
/// Tests: use `n` threads from now on (0: back to the default).
void setCpuThreads(int n);

/// Runs fn(task) for every task in [0, tasks) on up to `threads` threads, the
/// caller being one of them, and returns when all are done. Tasks are taken
/// in ascending order by whichever thread is free. A call made from inside a
/// task, or while another thread's call holds the pool, runs its tasks on
/// the calling thread alone.
void parallelFor(int64_t tasks, int threads,
                 const std::function<void(int64_t)> &fn);

/// How many threads work of about `flops` multiply-adds is worth: waking a
/// thread costs about as much as 50k of them.
int threadsFor(double flops);

} // namespace greta::rt

#endif
