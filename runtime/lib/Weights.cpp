//===- Weights.cpp - safetensors: mmap, validation, writing -----*- C++ -*-===//
//
// Format (https://github.com/huggingface/safetensors): u64 LE header length N,
// N bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]}, ...,
// "__metadata__": {...}}, then the data; offsets are relative to the data.
//
//===----------------------------------------------------------------------===//
#include "greta/rt/Weights.h"
#include "greta/rt/Half.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <fcntl.h>
#include <limits>
#include <optional>
#include <set>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace greta::rt;
using json = nlohmann::json;

namespace {
std::optional<DType> parseDType(const std::string &s) {
  if (s == "F32")
    return DType::F32;
  if (s == "F64")
    return DType::F64;
  if (s == "F16")
    return DType::F16;
  if (s == "BF16")
    return DType::BF16;
  return std::nullopt;
}
const char *safetensorsDTypeName(DType d) {
  switch (d) {
  case DType::F32:
    return "F32";
  case DType::F64:
    return "F64";
  case DType::F16:
    return "F16";
  case DType::BF16:
    return "BF16";
  }
  return "?";
}

/// Product of `shape` times `elemSize`, or nullopt on overflow.
std::optional<uint64_t> byteSize(const std::vector<int64_t> &shape,
                                 size_t elemSize) {
  uint64_t n = elemSize;
  for (int64_t d : shape) {
    if (d < 0)
      return std::nullopt;
    if (d != 0 && n > std::numeric_limits<uint64_t>::max() / uint64_t(d))
      return std::nullopt;
    n *= uint64_t(d);
  }
  return n;
}

std::string shapeStr(const std::vector<int64_t> &shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

template <typename T> void convertImpl(const TensorInfo &t, T *out) {
  size_t n = t.bytes / dtypeSize(t.dtype);
  const uint8_t *p = t.data;
  // memcpy per element: tensor data in a safetensors file need not be aligned.
  switch (t.dtype) {
  case DType::F32:
    for (size_t i = 0; i < n; ++i) {
      float v;
      std::memcpy(&v, p + 4 * i, 4);
      out[i] = static_cast<T>(v);
    }
    break;
  case DType::F64:
    for (size_t i = 0; i < n; ++i) {
      double v;
      std::memcpy(&v, p + 8 * i, 8);
      out[i] = static_cast<T>(v);
    }
    break;
  case DType::F16:
  case DType::BF16:
    for (size_t i = 0; i < n; ++i) {
      uint16_t v;
      std::memcpy(&v, p + 2 * i, 2);
      out[i] = static_cast<T>(t.dtype == DType::F16 ? halfBitsToFloat(v)
                                                    : bf16BitsToFloat(v));
    }
    break;
  }
}
} // namespace

std::unique_ptr<SafeTensors> SafeTensors::open(const std::string &path,
                                               std::string &error) {
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
    return openCheckpointDir(path, error);
  if (path.size() > 11 && path.compare(path.size() - 11, 11, ".index.json") == 0)
    return openIndex(path, error);
  return openFile(path, error);
}

std::unique_ptr<SafeTensors> SafeTensors::openFile(const std::string &path,
                                                   std::string &error) {
  auto fail = [&](const std::string &msg) {
    error = path + ": " + msg;
    return nullptr;
  };
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return fail(std::string("cannot open: ") + std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    return fail(std::string("cannot stat: ") + std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return fail("not a regular file");
  }
  size_t size = static_cast<size_t>(st.st_size);
  if (size < 8) {
    ::close(fd);
    return fail("file is " + std::to_string(size) +
                " bytes, too small for a safetensors header (8-byte length)");
  }
  void *map = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  int mapErrno = errno;
  ::close(fd);
  if (map == MAP_FAILED)
    return fail(std::string("cannot mmap: ") + std::strerror(mapErrno));

  std::unique_ptr<SafeTensors> st_(new SafeTensors());
  st_->path_ = path;
  st_->map_ = map;
  st_->size_ = size;
  FileIdentity &id = st_->identity_;
  if (char *real = ::realpath(path.c_str(), nullptr)) {
    id.realPath = real;
    std::free(real);
  } else {
    id.realPath = path;
  }
  id.device = static_cast<uint64_t>(st.st_dev);
  id.inode = static_cast<uint64_t>(st.st_ino);
  id.size = static_cast<uint64_t>(st.st_size);
  id.mtimeNs = int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  id.ctimeNs = int64_t(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec;
  const uint8_t *base = static_cast<const uint8_t *>(map);

  uint64_t headerLen = 0;
  for (int i = 7; i >= 0; --i)
    headerLen = (headerLen << 8) | base[i];
  if (headerLen > size - 8)
    return fail("header length " + std::to_string(headerLen) +
                " exceeds the file size " + std::to_string(size) +
                " (truncated file?)");
  json header;
  try {
    header = json::parse(base + 8, base + 8 + headerLen);
  } catch (const json::exception &e) {
    // parse_error, and out_of_range for a number that overflows ("1e999").
    return fail(std::string("header is not valid JSON: ") + e.what());
  }
  if (!header.is_object())
    return fail("header is not a JSON object");

  const uint8_t *dataBase = base + 8 + headerLen;
  uint64_t dataSize = size - 8 - headerLen;
  std::vector<std::pair<std::pair<uint64_t, uint64_t>, std::string>> ranges;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string &name = it.key();
    if (name == "__metadata__")
      continue;
    const json &e = it.value();
    auto bad = [&](const std::string &msg) {
      return fail("tensor '" + name + "': " + msg);
    };
    if (!e.is_object())
      return bad("header entry is not an object");
    if (!e.contains("dtype") || !e["dtype"].is_string())
      return bad("missing or non-string 'dtype'");
    std::string dtypeStr = e["dtype"].get<std::string>();
    auto dtype = parseDType(dtypeStr);
    if (!dtype)
      return bad("unsupported dtype '" + dtypeStr +
                 "' (supported: F32, F64, F16, BF16)");
    if (!e.contains("shape") || !e["shape"].is_array())
      return bad("missing or non-array 'shape'");
    std::vector<int64_t> shape;
    for (const json &d : e["shape"]) {
      if (!d.is_number_integer() || d.get<int64_t>() < 0)
        return bad("shape entry " +
                   // dump() recurses: no deep structure in a message.
                   (d.is_structured() ? std::string(d.type_name()) : d.dump()) +
                   " is not a non-negative integer");
      shape.push_back(d.get<int64_t>());
    }
    if (!e.contains("data_offsets") || !e["data_offsets"].is_array() ||
        e["data_offsets"].size() != 2 ||
        !e["data_offsets"][0].is_number_unsigned() ||
        !e["data_offsets"][1].is_number_unsigned())
      return bad("'data_offsets' must be two non-negative integers");
    uint64_t begin = e["data_offsets"][0].get<uint64_t>();
    uint64_t end = e["data_offsets"][1].get<uint64_t>();
    if (begin > end)
      return bad("data_offsets [" + std::to_string(begin) + ", " +
                 std::to_string(end) + "] are reversed");
    if (end > dataSize)
      return bad("data_offsets [" + std::to_string(begin) + ", " +
                 std::to_string(end) + "] lie outside the data section (" +
                 std::to_string(dataSize) + " bytes; truncated file?)");
    auto expected = byteSize(shape, dtypeSize(*dtype));
    if (!expected)
      return bad("shape " + shapeStr(shape) + " overflows");
    if (*expected != end - begin)
      return bad("holds " + std::to_string(end - begin) + " bytes but " +
                 dtypeStr + " " + shapeStr(shape) + " needs " +
                 std::to_string(*expected));
    TensorInfo info;
    info.name = name;
    info.dtype = *dtype;
    info.shape = std::move(shape);
    info.data = dataBase + begin;
    info.bytes = end - begin;
    st_->tensors_.emplace(name, std::move(info));
    ranges.push_back({{begin, end}, name});
  }
  std::sort(ranges.begin(), ranges.end());
  uint64_t maxEnd = 0;
  const std::string *maxEndName = nullptr;
  for (const auto &r : ranges) {
    if (r.first.first == r.first.second)
      continue; // Empty tensors occupy no bytes.
    if (maxEndName && r.first.first < maxEnd)
      return fail("tensor '" + r.second + "' overlaps tensor '" + *maxEndName +
                  "' in the data section");
    if (r.first.second > maxEnd) {
      maxEnd = r.first.second;
      maxEndName = &r.second;
    }
  }
  return st_;
}

SafeTensors::~SafeTensors() {
  if (map_)
    munmap(map_, size_);
}

const TensorInfo *SafeTensors::find(const std::string &name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

std::string FileIdentity::str() const {
  return realPath + "|dev=" + std::to_string(device) +
         "|ino=" + std::to_string(inode) + "|size=" + std::to_string(size) +
         "|mtime_ns=" + std::to_string(mtimeNs) +
         "|ctime_ns=" + std::to_string(ctimeNs);
}

std::string SafeTensors::storedDTypes() const {
  std::set<std::string> names;
  for (const auto &[name, t] : tensors_)
    names.insert(std::string(dtypeName(t.dtype)));
  std::string out;
  for (const std::string &n : names)
    out += (out.empty() ? "" : "+") + n;
  return out;
}

std::unique_ptr<SafeTensors>
SafeTensors::openCheckpointDir(const std::string &dir, std::string &error) {
  // As transformers does: the single file when there is one, else the index.
  std::string single = dir + "/model.safetensors";
  std::string index = dir + "/model.safetensors.index.json";
  struct stat st;
  if (::stat(single.c_str(), &st) == 0)
    return openFile(single, error);
  if (::stat(index.c_str(), &st) == 0)
    return openIndex(index, error);
  error = dir + ": an HF checkpoint directory holds model.safetensors or "
                "model.safetensors.index.json and its shards; found neither";
  return nullptr;
}

std::unique_ptr<SafeTensors> SafeTensors::openIndex(const std::string &path,
                                                    std::string &error) {
  auto fail = [&](const std::string &msg) {
    error = path + ": " + msg;
    return nullptr;
  };
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return fail(std::string("cannot open: ") + std::strerror(errno));
  std::string text((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  // nlohmann keeps the last of two equal keys silently: the callback sees
  // every key of weight_map, so a tensor named twice is an error.
  std::string top, twice;
  std::set<std::string> seen;
  json::parser_callback_t cb = [&](int depth, json::parse_event_t event,
                                   json &parsed) {
    if (event == json::parse_event_t::key) {
      if (depth == 1)
        top = parsed.get<std::string>();
      else if (depth == 2 && top == "weight_map" &&
               !seen.insert(parsed.get<std::string>()).second && twice.empty())
        twice = parsed.get<std::string>();
    }
    return true;
  };
  json index;
  try {
    index = json::parse(text, cb);
  } catch (const json::exception &e) {
    return fail(std::string("not valid JSON: ") + e.what());
  }
  if (!twice.empty())
    return fail("'weight_map' names tensor '" + twice + "' twice");
  if (!index.is_object() || !index.contains("weight_map") ||
      !index["weight_map"].is_object())
    return fail("no 'weight_map' object (a model.safetensors.index.json maps "
                "each tensor to its shard)");
  std::string dir = path.substr(0, path.rfind('/') + 1);
  std::unique_ptr<SafeTensors> all(new SafeTensors());
  all->path_ = path;
  std::map<std::string, SafeTensors *> byFile;
  for (auto it = index["weight_map"].begin(); it != index["weight_map"].end();
       ++it) {
    if (!it.value().is_string())
      return fail("'weight_map' entry '" + it.key() +
                  "' is not a shard file name");
    std::string file = it.value().get<std::string>();
    if (file.empty() || file.find('/') != std::string::npos || file == "." ||
        file == "..")
      return fail("'weight_map' entry '" + it.key() + "' names '" + file +
                  "', not a file of the checkpoint directory");
    SafeTensors *shard = nullptr;
    auto found = byFile.find(file);
    if (found != byFile.end()) {
      shard = found->second;
    } else {
      std::string shardError;
      std::unique_ptr<SafeTensors> opened = openFile(dir + file, shardError);
      if (!opened)
        return fail("shard '" + file + "' of tensor '" + it.key() +
                    "': " + shardError);
      shard = opened.get();
      byFile[file] = shard;
      all->shards_.push_back(std::move(opened));
    }
    const TensorInfo *t = shard->find(it.key());
    if (!t)
      return fail("tensor '" + it.key() + "' is listed in shard '" + file +
                  "', which does not hold it (" + dir + file + ")");
    all->tensors_.emplace(it.key(), *t);
  }
  std::sort(all->shards_.begin(), all->shards_.end(),
            [](const auto &a, const auto &b) { return a->path_ < b->path_; });
  // The checkpoint's identity (the weights digest cache's key) is the
  // index's and every shard's: an edit of any file changes it.
  struct stat ist;
  if (::stat(path.c_str(), &ist) != 0)
    return fail(std::string("cannot stat: ") + std::strerror(errno));
  FileIdentity &id = all->identity_;
  char *real = ::realpath(path.c_str(), nullptr);
  id.realPath = real ? real : path;
  std::free(real);
  for (const auto &shard : all->shards_)
    id.realPath += "|" + shard->identity_.str();
  id.device = ist.st_dev;
  id.inode = ist.st_ino;
  id.size = ist.st_size;
  id.mtimeNs = int64_t(ist.st_mtim.tv_sec) * 1000000000 + ist.st_mtim.tv_nsec;
  id.ctimeNs = int64_t(ist.st_ctim.tv_sec) * 1000000000 + ist.st_ctim.tv_nsec;
  return all;
}

bool greta::rt::writeSafeTensors(const std::string &path,
                                 const std::vector<TensorToWrite> &tensors,
                                 DType dtype, std::string &error) {
  size_t es = dtypeSize(dtype);
  json header = json::object();
  uint64_t offset = 0;
  std::set<std::string> names;
  for (const TensorToWrite &t : tensors) {
    if (t.name.empty() || t.name == "__metadata__") {
      error = path + ": invalid tensor name '" + t.name + "'";
      return false;
    }
    if (!names.insert(t.name).second) {
      error = path + ": tensor '" + t.name + "' given twice";
      return false;
    }
    auto bytes = byteSize(t.shape, es);
    if (!bytes || *bytes != t.values.size() * es) {
      error = path + ": tensor '" + t.name + "' has " +
              std::to_string(t.values.size()) + " values for shape " +
              shapeStr(t.shape);
      return false;
    }
    header[t.name] = {{"dtype", safetensorsDTypeName(dtype)},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + *bytes}}};
    offset += *bytes;
  }
  header["__metadata__"] = {{"format", "pt"}};
  std::string text = header.dump();
  // Pad with spaces so the data starts 8-byte aligned (as the reference
  // implementation does).
  while ((8 + text.size()) % 8)
    text.push_back(' ');

  // Write next to the target and rename: a crash never leaves a half file
  // under the final name.
  std::string tmp = path + ".tmp." + std::to_string(getpid());
  FILE *f = std::fopen(tmp.c_str(), "wb");
  if (!f) {
    error = path + ": cannot create '" + tmp + "': " + std::strerror(errno);
    return false;
  }
  bool ok = true;
  auto put = [&](const void *p, size_t n) {
    if (ok && n && std::fwrite(p, 1, n, f) != n)
      ok = false;
  };
  uint8_t len[8];
  for (int i = 0; i < 8; ++i)
    len[i] = static_cast<uint8_t>(uint64_t(text.size()) >> (8 * i));
  put(len, 8);
  put(text.data(), text.size());
  std::vector<uint8_t> buf;
  for (const TensorToWrite &t : tensors) {
    buf.resize(t.values.size() * es);
    for (size_t i = 0; i < t.values.size(); ++i) {
      float v = t.values[i];
      uint8_t *dst = buf.data() + i * es;
      if (dtype == DType::F32) {
        std::memcpy(dst, &v, 4);
      } else if (dtype == DType::F64) {
        double d = v;
        std::memcpy(dst, &d, 8);
      } else {
        uint16_t h =
            dtype == DType::F16 ? doubleToHalfBits(v) : doubleToBF16Bits(v);
        std::memcpy(dst, &h, 2);
      }
    }
    put(buf.data(), buf.size());
  }
  int writeErrno = ok ? 0 : errno;
  if (std::fflush(f) != 0 && ok) {
    ok = false;
    writeErrno = errno;
  }
  if (std::fclose(f) != 0 && ok) {
    ok = false;
    writeErrno = errno;
  }
  if (!ok) {
    error = path + ": write failed: " + std::strerror(writeErrno);
    std::remove(tmp.c_str());
    return false;
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    error = path + ": cannot rename '" + tmp +
            "' into place: " + std::strerror(errno);
    std::remove(tmp.c_str());
    return false;
  }
  return true;
}

void greta::rt::convertTensor(const TensorInfo &t, float *out) {
  convertImpl(t, out);
}
void greta::rt::convertTensor(const TensorInfo &t, double *out) {
  convertImpl(t, out);
}
