//===- Weights.h - safetensors, memory-mapped and validated -----*- C++ -*-===//
#ifndef GRETA_RT_WEIGHTS_H
#define GRETA_RT_WEIGHTS_H

#include "greta/rt/DType.h"

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace greta::rt {

struct TensorInfo {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  const uint8_t *data = nullptr; // into the mapping
  size_t bytes = 0;
};

/// What identifies a file on disk, as fstat(2) saw it when it was mapped.
/// The ctime cannot be set by a user (an edit in place changes it even when
/// `touch -r` restores the mtime).
struct FileIdentity {
  std::string realPath;
  uint64_t device = 0, inode = 0, size = 0;
  int64_t mtimeNs = 0, ctimeNs = 0;
  std::string str() const; // one line, for cache keys
};

/// A memory-mapped safetensors file, or an HF checkpoint: a directory with
/// model.safetensors, or model.safetensors.index.json and the shards it
/// names, each file mapped on its own (never read whole). open() validates
/// every header (JSON, offsets inside the file, sizes matching dtype x
/// shape, no overlap) and the index (a missing shard, a tensor absent from
/// its shard, a tensor named twice), and reports the first problem naming
/// the file and the tensor.
class SafeTensors {
public:
  /// `path`: a .safetensors file, a model.safetensors.index.json, or a
  /// checkpoint directory.
  static std::unique_ptr<SafeTensors> open(const std::string &path,
                                           std::string &error);
  ~SafeTensors();
  const TensorInfo *find(const std::string &name) const;
  const std::map<std::string, TensorInfo> &tensors() const { return tensors_; }
  const std::string &path() const { return path_; }
  /// The mapped file's identity (WeightsDigest.h keys its cache by it).
  const FileIdentity &identity() const { return identity_; }
  /// The dtypes stored on disk, "+"-joined in name order: "bf16", "f32+bf16".
  std::string storedDTypes() const;

private:
  SafeTensors() = default;
  static std::unique_ptr<SafeTensors> openFile(const std::string &path,
                                               std::string &error);
  static std::unique_ptr<SafeTensors> openIndex(const std::string &path,
                                                std::string &error);
  static std::unique_ptr<SafeTensors>
  openCheckpointDir(const std::string &dir, std::string &error);
  /// A sharded checkpoint's files; tensors_ points into their mappings.
  std::vector<std::unique_ptr<SafeTensors>> shards_;
  std::string path_;
  void *map_ = nullptr;
  size_t size_ = 0;
  std::map<std::string, TensorInfo> tensors_;
  FileIdentity identity_;
};

/// Writes a safetensors file (f32, f16 or bf16 data given as f32 values).
struct TensorToWrite {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> values;
};
bool writeSafeTensors(const std::string &path,
                      const std::vector<TensorToWrite> &tensors, DType dtype,
                      std::string &error);

/// Converts one tensor to f32 or f64 (from f32, f64, f16 or bf16).
void convertTensor(const TensorInfo &t, float *out);
void convertTensor(const TensorInfo &t, double *out);

} // namespace greta::rt

#endif // GRETA_RT_WEIGHTS_H
