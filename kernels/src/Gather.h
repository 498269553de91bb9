//===- Gather.h - Row gathers for host-hashed trace rows ------*- HIP -*-===//
//
// The copy of a few selected rows of several tensors into one staging
// buffer (greta_gpu_gather_rows), as a device function, so that other
// kernels can carry a gather in extra blocks of their own launch
// (greta_gpu_rms_norm_gather_*) instead of a launch of its own.
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_KERNELS_GATHER_H
#define GRETA_KERNELS_GATHER_H

#include "Common.h"

namespace greta::gpu {

/// Rows are copied in pieces of this many bytes, a block each: one block
/// per 64 KB logits row would be a chain of 32 dependent round trips to
/// memory (in pieces, the three logits rows of a 3-position trace take
/// 0.006-0.008 ms on an H100).
constexpr int64_t kGatherPieceBytes = 4096;

/// A launch's gather jobs, by value (a kernel parameter).
struct GatherJobs {
  greta_gpu_gather_job job[GRETA_GPU_MAX_GATHER_JOBS];
  int numJobs = 0;
  int64_t perJob = 0; ///< the largest n_sel: rows per job
  int64_t pieces = 0; ///< the longest row's pieces: slots per row
  uint8_t *dst = nullptr;
  __host__ __device__ int64_t slots() const {
    return numJobs * perJob * pieces;
  }
};

/// Checks `jobs` and packs them for a launch (the error names the bad job).
greta_gpu_status packGatherJobs(const greta_gpu_gather_job *jobs, int numJobs,
                                void *dDst, GatherJobs &out);

/// Copies piece `slot` of the gather (numbered job-major, then by selected
/// row, then by piece) with the calling block's threads: 16 bytes per
/// thread where source and destination allow it.
__device__ __forceinline__ void gatherRowSlot(const GatherJobs &g,
                                              int64_t slot) {
  if (slot >= g.slots())
    return;
  int64_t piece = slot % g.pieces, rowSlot = slot / g.pieces;
  const greta_gpu_gather_job &J = g.job[rowSlot / g.perJob];
  int64_t j = rowSlot % g.perJob;
  int64_t begin = piece * kGatherPieceBytes;
  if (j >= J.n_sel || begin >= J.row_bytes)
    return;
  int64_t len = J.row_bytes - begin < kGatherPieceBytes ? J.row_bytes - begin
                                                        : kGatherPieceBytes;
  int64_t row = J.d_row_index ? J.d_row_index[j] : j;
  const uint8_t *src =
      static_cast<const uint8_t *>(J.d_data) + row * J.ld_bytes + begin;
  uint8_t *out = g.dst + J.dst_offset + j * J.row_bytes + begin;
  if (((reinterpret_cast<uintptr_t>(src) | reinterpret_cast<uintptr_t>(out) |
        static_cast<uintptr_t>(len)) & 15) == 0) {
    for (int64_t i = threadIdx.x; i < len / 16; i += blockDim.x)
      reinterpret_cast<uint4 *>(out)[i] =
          reinterpret_cast<const uint4 *>(src)[i];
  } else {
    for (int64_t i = threadIdx.x; i < len; i += blockDim.x)
      out[i] = src[i];
  }
}

/// For kernels that may carry a gather: their launch has `slots()` blocks
/// more than their own work, before it, so that the copies start in the
/// launch's first wave instead of trailing it. gatherBlock returns true in
/// those blocks, after copying their piece (the block must then return
/// before any barrier); ownBlock is the block's index in the kernel's own
/// work.
struct NoGather {
  __host__ __device__ int64_t slots() const { return 0; }
};
__device__ __forceinline__ bool gatherBlock(const NoGather &) { return false; }
__device__ __forceinline__ int64_t ownBlock(const NoGather &) {
  return blockIdx.x;
}
__device__ __forceinline__ bool gatherBlock(const GatherJobs &g) {
  if (static_cast<int64_t>(blockIdx.x) >= g.slots())
    return false;
  gatherRowSlot(g, blockIdx.x);
  return true;
}
__device__ __forceinline__ int64_t ownBlock(const GatherJobs &g) {
  return blockIdx.x - g.slots();
}

} // namespace greta::gpu

#endif // GRETA_KERNELS_GATHER_H
