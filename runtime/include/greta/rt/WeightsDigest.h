//===- WeightsDigest.h - Weights identified by their values -----*- C++ -*-===//
//
// Two weight files are the same weights when their tensors hold the same
// values, whatever the storage: an f64 copy of f32 weights, or the exact f32
// widening of bf16 weights, has the same digest as the original, and a
// change is named by its tensor. Definitions (docs/TRACE_FORMAT.md,
// `weights_digest`):
//   tensor digest = SHA-256( u64 len(name) | name | u64 rank | i64 dims...
//                            | every value widened to f64 )
//   whole digest  = SHA-256( for each tensor, by name:
//                            u64 len(name) | name | 32-byte tensor digest )
// all integers and values little-endian. Both runners (greta-run and
// greta-run-aot) call digestWeightsCached().
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_RT_WEIGHTSDIGEST_H
#define GRETA_RT_WEIGHTSDIGEST_H

#include <string>
#include <utility>
#include <vector>

namespace greta::rt {

class SafeTensors;

struct WeightsDigest {
  std::string whole; // hex
  /// (tensor name, hex digest), sorted by name.
  std::vector<std::pair<std::string, std::string>> tensors;
};

struct TensorInfo;

/// The digest of one tensor's values (hex): SHA-256(u64 len(name) | name |
/// u64 rank | i64 dims | every value widened to f64), little endian.
std::string digestTensorHex(const TensorInfo &t);

/// Hashes every tensor of `weights`, on `threads` threads (0: one per core).
WeightsDigest digestWeights(const SafeTensors &weights, unsigned threads = 0);

/// The whole digest of per-tensor digests (sorted by name, hex); "" if one is
/// not 64 hex digits.
std::string combineTensorDigests(
    const std::vector<std::pair<std::string, std::string>> &tensors);

/// digestWeights() through a cache in `cacheDir` (already checked by
/// openCacheDir; "" for none), keyed by what a user cannot set: the file's
/// real path, device, inode, size, mtime and ctime (in nanoseconds) as
/// they were when `weights` was mapped. An edit in place changes the ctime
/// even when `touch -r` restores the mtime. A cache that cannot be written
/// costs only the next run's hashing: `warning` says why, the digest is
/// still returned.
WeightsDigest digestWeightsCached(const SafeTensors &weights,
                                  const std::string &cacheDir,
                                  std::string &warning);

} // namespace greta::rt

#endif // GRETA_RT_WEIGHTSDIGEST_H
