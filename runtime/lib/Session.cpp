//===- Session.cpp - Parameters, KV cache and tracing of a run --*- C++ -*-===//
#include "greta/rt/Session.h"
#include "greta/rt/Half.h"
#include "greta/rt/SelectionIds.h"
#include "greta/rt/Sha256.h"

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <type_traits>

using namespace greta::rt;

namespace {
std::atomic<Session *> currentSession{nullptr};

std::string shapeStr(const std::vector<int64_t> &shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

/// Top-5 ids by value, ties to the lower id; NaN ranks below everything.
template <typename T> std::vector<int32_t> topFive(const T *row, int64_t n) {
  auto better = [&](int64_t a, int64_t b) {
    T va = row[a], vb = row[b];
    bool na = std::isnan(va), nb = std::isnan(vb);
    if (na != nb)
      return nb;
    if (!na && va != vb)
      return va > vb;
    return a < b;
  };
  int64_t best[5];
  int k = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (k < 5) {
      best[k++] = i;
    } else if (better(i, best[4])) {
      best[4] = i;
    } else {
      continue;
    }
    for (int j = k - 1; j > 0 && better(best[j], best[j - 1]); --j)
      std::swap(best[j], best[j - 1]);
  }
  return std::vector<int32_t>(best, best + k);
}

template <typename T>
void fillRecord(Record &r, const T *row, int64_t n, bool stats, bool isLogits) {
  fillRowRecord(r, row, std::is_same_v<T, float> ? DType::F32 : DType::F64, n,
                stats);
  if (isLogits)
    r.top5 = topFive(row, n);
}

} // namespace

std::unique_ptr<Session> Session::create(const SafeTensors &weights,
                                         const std::vector<ParamSpec> &params,
                                         DType computeDType,
                                         std::string &error) {
  if (computeDType != DType::F32 && computeDType != DType::F64) {
    error = "the CPU computes in f32 or f64, not " +
            std::string(dtypeName(computeDType));
    return nullptr;
  }
  std::unique_ptr<Session> s(new Session());
  s->computeDType_ = computeDType;
  for (const ParamSpec &p : params) {
    const TensorInfo *t = weights.find(p.name);
    if (!t) {
      error = weights.path() + ": missing tensor '" + p.name +
              "' (the model expects shape " + shapeStr(p.shape) + ")";
      return nullptr;
    }
    if (t->shape != p.shape) {
      error = weights.path() + ": tensor '" + p.name + "' has shape " +
              shapeStr(t->shape) + " but the model expects " +
              shapeStr(p.shape);
      return nullptr;
    }
    size_t n = t->bytes / dtypeSize(t->dtype);
    std::vector<uint8_t> buf(n * dtypeSize(computeDType));
    if (computeDType == DType::F32)
      convertTensor(*t, reinterpret_cast<float *>(buf.data()));
    else
      convertTensor(*t, reinterpret_cast<double *>(buf.data()));
    s->params_[p.name] = std::move(buf);
    s->paramShapes_[p.name] = p.shape;
  }
  return s;
}

Session::~Session() {
  Session *self = this;
  currentSession.compare_exchange_strong(self, nullptr);
}

void Session::setCurrent(Session *s) { currentSession.store(s); }
Session *Session::current() { return currentSession.load(); }

void Session::setTrace(TraceWriter *writer, Filter filter, int64_t tokenCount) {
  writer_ = writer;
  front_.setFilter(std::move(filter), tokenCount);
  traceFailed_ = false;
  lastBlock_.reset();
}

void Session::setPositions(std::vector<int64_t> positions) {
  front_.setPositions(std::move(positions));
  lastBlock_.reset();
}

const void *Session::param(const char *name, int64_t rank,
                           const int64_t **shape) const {
  const std::vector<int64_t> *sh = paramShape(paramShapes_, name, rank);
  if (!sh)
    return nullptr;
  if (shape)
    *shape = sh->data();
  return params_.at(name ? name : "").data();
}

void Session::setPatch(int64_t recordId,
                       std::map<int64_t, std::vector<double>> rows) {
  front_.setPatch(recordId, std::move(rows));
}

int64_t Session::applyPatch(int64_t recordId, DType dtype, void *data,
                            int64_t rows, int64_t cols, int64_t rowStride) {
  std::string err;
  size_t rowBytes = static_cast<size_t>(rowStride) * dtypeSize(dtype);
  int64_t done = front_.patch(
      recordId, dtype, rows, cols,
      [&](int64_t i, std::vector<uint8_t> bytes) {
        std::memcpy(static_cast<uint8_t *>(data) + i * rowBytes, bytes.data(),
                    bytes.size());
        return true;
      },
      err);
  if (!err.empty())
    setError(err);
  return done;
}

void Session::trace(int64_t recordId, int64_t compiledPayload, DType dtype,
                    const void *data, int64_t rows, int64_t cols,
                    int64_t rowStride, bool repeat) {
  if (layerObserver_)
    if (std::optional<RecordKey> key = decodeRecordId(recordId))
      layerObserver_(key->layer);
  std::optional<LastBlock> previous = std::move(lastBlock_);
  lastBlock_.reset();
  if (!writer_ || traceFailed_)
    return;
  std::string err;
  std::optional<TraceFront::Call> call =
      front_.admit(recordId, compiledPayload, rows, err);
  if (!call) {
    if (!err.empty())
      setError(err);
    return;
  }
  if (dtype != DType::F32 && dtype != DType::F64) {
    setError("trace: rows must be f32 or f64 on the CPU");
    return;
  }
  Stage stage = call->stage;
  Payload payload = call->payload;
  bool stats = payload != Payload::Hash;
  bool isLogits = stage == Stage::Logits;
  // An expert selection row is [k ids, k weights]: its ids go in the
  // record's top ids too, so they are read at every payload.
  bool isSelection = stage == Stage::ExpertSelection && cols % 2 == 0;
  int topK = isLogits ? 5 : isSelection ? static_cast<int>(cols / 2) : 0;
  if (topK > 64) { // the format's limit of top ids a record
    setError("trace: expert_selection of " + std::to_string(topK) +
             " experts a token exceeds the 64 top ids a record holds");
    return;
  }
  size_t es = dtypeSize(dtype);
  size_t rowBytes = static_cast<size_t>(cols) * es;
  // The selected rows of the tensor become one record block (one frame, or a
  // few for a large full payload): the writer copies their entries. A
  // repeat of the previous block (the same bytes; the positions filter
  // selects the same rows within a call) takes its entries instead. The
  // logits' block also carries top-5 ids and is never one of a pair.
  LastBlock block{{data, dtype, rows, cols, rowStride, payload}, {}, {}, {}};
  std::vector<int32_t> topIds;
  const uint8_t *base = static_cast<const uint8_t *>(data);
  if (TraceFront::repeats(repeat, stage,
                          previous ? std::optional(previous->tensor)
                                   : std::nullopt,
                          block.tensor)) {
    block = std::move(*previous);
  } else {
    const std::vector<int64_t> &selected = front_.selectedRows();
    if (selected.empty())
      return;
    bool copyValues =
        payload == Payload::Full &&
        !(static_cast<int64_t>(selected.size()) == rows && rowStride == cols);
    block.entries.reserve(selected.size());
    block.positions.reserve(selected.size());
    if (copyValues)
      block.values.reserve(selected.size() * rowBytes);
    Record r;
    for (int64_t i : selected) {
      const uint8_t *row = base + i * rowStride * static_cast<int64_t>(es);
      r.nanCount = r.infCount = 0;
      r.fingerprint = {};
      r.top5.clear();
      if (dtype == DType::F32)
        fillRecord(r, reinterpret_cast<const float *>(row), cols, stats,
                   isLogits);
      else
        fillRecord(r, reinterpret_cast<const double *>(row), cols, stats,
                   isLogits);
      block.positions.push_back(front_.positions()[i]);
      block.entries.push_back(toBlockRow(r));
      if (isLogits) {
        r.top5.resize(5, -1); // fewer than 5 columns: padded
        topIds.insert(topIds.end(), r.top5.begin(), r.top5.end());
      }
      if (isSelection)
        for (int j = 0; j < topK; ++j)
          topIds.push_back(greta::rt::selectionId(row, dtype, j));
      if (copyValues)
        block.values.insert(block.values.end(), row, row + rowBytes);
    }
  }
  RecordBlock b;
  b.stage = stage;
  b.layer = call->layer;
  b.dtype = dtype;
  b.payload = payload;
  b.rowShape = {cols};
  b.n = static_cast<int64_t>(block.positions.size());
  b.positions = block.positions.data();
  b.rows = reinterpret_cast<const uint8_t *>(block.entries.data());
  b.rowStride = sizeof(BlockRow);
  b.topIds = topK ? topIds.data() : nullptr;
  b.topK = topK;
  // Every row, densely stored (no copied values): the tensor as it is.
  if (payload == Payload::Full)
    b.values = block.values.empty() ? base : block.values.data();
  if (!writer_->appendBlock(b, err)) {
    traceFailed_ = true;
    setError(err);
    return;
  }
  records_ += block.positions.size();
  if (!topK)
    lastBlock_ = std::move(block);
}

Session::KVSlot &Session::kvSlot(int64_t slot) { return kv_[slot]; }
void Session::resetKVCache() { kv_.clear(); }

void Session::traceCacheWrites(int64_t layer, DType dtype, const void *k,
                               const void *v, int64_t kvDim, int64_t first,
                               int64_t rows) {
  size_t es = dtypeSize(dtype);
  auto row = [&](const void *base, int64_t i) {
    return static_cast<const uint8_t *>(base) + i * kvDim * es;
  };
  trace(recordId(Stage::KCache, layer), 0, dtype, row(k, first), rows, kvDim,
        kvDim);
  trace(recordId(Stage::VCache, layer), 0, dtype, row(v, first), rows, kvDim,
        kvDim);
  lastBlock_.reset();
}

void Session::traceCacheReads(int64_t layer, DType dtype, const void *k,
                              const void *v, int64_t kvDim) {
  if (!traceCacheReads_ || !writer_ || traceFailed_)
    return;
  Payload payload = front_.filter().payload.value_or(Payload::Hash);
  for (auto [stage, base] :
       {std::pair{Stage::KCacheRead, k}, std::pair{Stage::VCacheRead, v}}) {
    if (!front_.filter().selects(stage, layer))
      continue;
    for (int64_t i : front_.selectedRows()) {
      // The query at p reads keys and values [0, p]: one record of them.
      int64_t p = front_.positions()[i], n = (p + 1) * kvDim;
      Record r;
      if (dtype == DType::F32)
        fillRecord(r, static_cast<const float *>(base), n,
                   payload != Payload::Hash, false);
      else
        fillRecord(r, static_cast<const double *>(base), n,
                   payload != Payload::Hash, false);
      BlockRow entry = toBlockRow(r);
      RecordBlock b;
      b.stage = stage;
      b.layer = layer;
      b.dtype = dtype;
      b.payload = payload;
      b.rowShape = {p + 1, kvDim};
      b.n = 1;
      b.positions = &p;
      b.rows = reinterpret_cast<const uint8_t *>(&entry);
      if (payload == Payload::Full)
        b.values = static_cast<const uint8_t *>(base);
      std::string err;
      if (!writer_->appendBlock(b, err)) {
        traceFailed_ = true;
        setError(err);
        return;
      }
      ++records_;
    }
  }
}

void Session::setError(std::string message) {
  if (error_.empty())
    error_ = std::move(message);
}

uint64_t Session::recordsWritten() const { return records_; }

bool Session::endCall() {
  if (!writer_ || traceFailed_)
    return !traceFailed_;
  std::string err;
  if (!writer_->flush(err)) {
    traceFailed_ = true;
    setError(err);
    return false;
  }
  return true;
}

std::optional<Patch> greta::rt::readPatch(const std::string &traceDir,
                                          const std::string &spec,
                                          std::string &error) {
  size_t colon = spec.find(':');
  std::optional<Stage> stage;
  int64_t layer = -1;
  if (colon != std::string::npos) {
    stage = parseStage(std::string_view(spec).substr(0, colon));
    std::string layerText = spec.substr(colon + 1);
    char *end = nullptr;
    long long v = layerText.empty() ? -1 : std::strtoll(layerText.c_str(), &end, 10);
    if (end && *end == '\0' && v >= 0)
      layer = v;
  }
  if (!stage || layer < 0) {
    error = "--patch '" + spec + "': expected STAGE:LAYER, e.g. mlp_out:6";
    return std::nullopt;
  }
  auto trace = readTrace(traceDir, error);
  if (!trace) {
    error = "--patch-from " + traceDir + ": " + error;
    return std::nullopt;
  }
  Patch patch;
  patch.recordId = recordId(*stage, layer);
  for (const Record &r : trace->records) {
    if (r.stage != *stage || r.layer != layer)
      continue;
    if (r.payload != Payload::Full) {
      error = "--patch-from " + traceDir + ": record " + spec +
              " has no values (trace it with --payload full)";
      return std::nullopt;
    }
    patch.dtype = r.dtype;
    patch.rows[r.position] = r.valuesAsDouble();
  }
  if (patch.rows.empty()) {
    error = "--patch-from " + traceDir + ": no record " + spec;
    return std::nullopt;
  }
  return patch;
}

namespace {
template <typename Load>
void rowStatistics(Record &r, int64_t n, bool stats, Load load) {
  int64_t nz = 0, nan = 0, inf = 0;
  double mn = INFINITY, mx = -INFINITY, sum = 0, sq = 0;
  for (int64_t i = 0; i < n; ++i) {
    double v = load(i);
    nz += v != 0;
    if (!stats)
      continue;
    if (std::isnan(v)) {
      ++nan;
    } else {
      inf += std::isinf(v);
      mn = v < mn ? v : mn;
      mx = v > mx ? v : mx;
    }
    sum += v;
    sq += v * v;
  }
  r.nzCount = nz;
  if (stats) {
    r.nanCount = nan;
    r.infCount = inf;
    // min/max skip NaN; mean and L2 propagate it (a NaN row must not look
    // healthy).
    r.fingerprint = {nan == n ? NAN : mn, nan == n ? NAN : mx,
                     n ? sum / static_cast<double>(n) : 0.0, std::sqrt(sq)};
  }
}
} // namespace

namespace {
/// Elements != 0 from the bits alone (NaN is non-zero, -0 is zero): the hash
/// payload needs no conversion, and the GPU writer counts thousands of host
/// rows per forward call (a conversion per element cost ~10 us a row).
template <typename U> int64_t nonZeroBits(const void *row, int64_t n) {
  // U(~U(0)): for 16 bits, ~U(0) alone is the int -1, whose shift keeps
  // the sign bit and made -0 count as non-zero.
  constexpr U magnitude = static_cast<U>(U(~U(0)) >> 1);
  const auto *p = static_cast<const uint8_t *>(row);
  int64_t nz = 0;
  for (int64_t i = 0; i < n; ++i) {
    U u;
    std::memcpy(&u, p + i * sizeof(U), sizeof(U));
    nz += (u & magnitude) != 0;
  }
  return nz;
}
} // namespace

void greta::rt::fillRowRecord(Record &r, const void *row, DType dtype,
                              int64_t n, bool stats) {
  size_t es = dtypeSize(dtype);
  r.sha256 = sha256(row, static_cast<size_t>(n) * es);
  if (!stats) {
    r.nzCount = es == 2   ? nonZeroBits<uint16_t>(row, n)
                : es == 4 ? nonZeroBits<uint32_t>(row, n)
                          : nonZeroBits<uint64_t>(row, n);
    r.nanCount = r.infCount = 0;
    r.fingerprint = {};
    return;
  }
  const auto *p = static_cast<const uint8_t *>(row);
  auto word = [&](int64_t i, auto v) {
    std::memcpy(&v, p + i * sizeof(v), sizeof(v));
    return v;
  };
  switch (dtype) {
  case DType::F32:
    return rowStatistics(r, n, stats,
                         [&](int64_t i) { return double(word(i, 0.0f)); });
  case DType::F64:
    return rowStatistics(r, n, stats, [&](int64_t i) { return word(i, 0.0); });
  case DType::F16:
    return rowStatistics(r, n, stats, [&](int64_t i) {
      return double(halfBitsToFloat(word(i, uint16_t())));
    });
  case DType::BF16:
    return rowStatistics(r, n, stats, [&](int64_t i) {
      return double(bf16BitsToFloat(word(i, uint16_t())));
    });
  }
}

std::vector<int32_t> greta::rt::topFiveIds(const void *row, DType dtype,
                                           int64_t n) {
  if (dtype == DType::F32)
    return topFive(static_cast<const float *>(row), n);
  if (dtype == DType::F64)
    return topFive(static_cast<const double *>(row), n);
  // f16 and bf16 widen to f32 exactly: the order is the same.
  std::vector<float> wide(static_cast<size_t>(n));
  const auto *bits = static_cast<const uint16_t *>(row);
  for (int64_t i = 0; i < n; ++i)
    wide[i] = dtype == DType::F16 ? halfBitsToFloat(bits[i])
                                  : bf16BitsToFloat(bits[i]);
  return topFive(wide.data(), n);
}
