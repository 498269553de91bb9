//===- CTraceWriter.cpp - The C API greta_trace_writer_* ---------*- C++
//-*-===//
//
// greta/trace_writer.h on the runtime's TraceWriter: the same filter, row
// digests (fillRowRecord, topFiveIds) and block frames as Session::trace,
// so a native engine's trace is the bytes GRETA writes for the same rows.
//
//===----------------------------------------------------------------------===//
#include "greta/trace_writer.h"

#include "greta/rt/Sha256.h"
#include "greta/rt/WeightsDigest.h"
#include "greta/rt/Filter.h"
#include "greta/rt/Session.h"
#include "greta/rt/Weights.h"


#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <set>
#include <string>
#include <vector>

using namespace greta::rt;

struct greta_trace_writer {
  std::string dir;
  std::unique_ptr<TraceWriter> writer;
  Filter filter;
  Payload payload = Payload::Hash;
  int64_t tokenCount = 0;
};

namespace {

thread_local std::string lastError;

/// Sets the thread's message; returns `result` (for `return fail(...)`).
template <typename T> T fail(std::string message, T result) {
  lastError = std::move(message);
  return result;
}

std::string str(const char *s) { return s ? s : ""; }

bool validDType(int d) { return d >= GRETA_TRACE_F32 && d <= GRETA_TRACE_BF16; }

std::string nowIso8601() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

/// The filter greta-bisect passes to an outside engine (docs/ENGINES.md).
bool filterFromEnv(Filter &f, std::string &error) {
  using Parse = bool (*)(const std::string &, Filter &, std::string &);
  const std::pair<const char *, Parse> vars[] = {
      {"GRETA_TRACE_LAYERS", Filter::parseLayers},
      {"GRETA_TRACE_STAGES", Filter::parseStages},
      {"GRETA_TRACE_POSITIONS", Filter::parsePositions},
      {"GRETA_TRACE_PAYLOAD", Filter::parsePayload}};
  for (auto [name, parse] : vars) {
    const char *v = std::getenv(name);
    std::string why;
    if (v && *v && !parse(v, f, why))
      return error = std::string(name) + "='" + v + "': " + why, false;
  }
  return true;
}

} // namespace

extern "C" {

const char *greta_trace_last_error(void) { return lastError.c_str(); }

greta_trace_writer *greta_trace_writer_open(const char *dir,
                                            const greta_trace_info *info) {
  const char *where = "greta_trace_writer_open: ";
  if (!dir || !*dir)
    return fail(std::string(where) + "no trace directory (dir is NULL or "
                                     "empty)",
                nullptr);
  if (!info)
    return fail(std::string(where) + "info is NULL", nullptr);
  std::string prefix = std::string(where) + "trace '" + dir + "': ";
  if (str(info->engine).empty())
    return fail(prefix + "info.engine is required (the engine's name)",
                nullptr);
  if (info->token_count <= 0)
    return fail(prefix + "info.token_count is " +
                    std::to_string(info->token_count) +
                    " (the prompt's token count, > 0)",
                nullptr);
  if (!info->prompt_ids)
    return fail(prefix + "info.prompt_ids is NULL", nullptr);
  for (auto [field, value] : {std::pair{"model_digest", info->model_digest},
                              {"weights_digest", info->weights_digest}})
    if (!str(value).empty() && !isHexDigest(value))
      return fail(prefix + "info." + field + " '" + value +
                      "' is not 64 lowercase hex digits",
                  nullptr);
  std::string dtype = str(info->dtype);
  if (!dtype.empty() && dtype != "f32" && dtype != "f64" && dtype != "f16" &&
      dtype != "bf16")
    return fail(prefix + "info.dtype '" + dtype +
                    "': expected f32, f64, f16 or bf16",
                nullptr);
  auto w = std::make_unique<greta_trace_writer>();
  w->dir = dir;
  w->tokenCount = info->token_count;
  Filter payloadOnly;
  std::string error;
  if (info->payload && !Filter::parsePayload(info->payload, payloadOnly, error))
    return fail(prefix + "info.payload: " + error, nullptr);
  if (payloadOnly.payload)
    w->payload = *payloadOnly.payload;
  if (!filterFromEnv(w->filter, error))
    return fail(prefix + error, nullptr);
  Manifest m;
  m.model = str(info->model);
  m.modelDigest = str(info->model_digest);
  m.weightsDigest = str(info->weights_digest);
  std::vector<uint8_t> ids(static_cast<size_t>(info->token_count) * 8);
  for (int64_t i = 0; i < info->token_count; ++i)
    for (int b = 0; b < 8; ++b)
      ids[i * 8 + b] = static_cast<uint8_t>(
          static_cast<uint64_t>(info->prompt_ids[i]) >> (8 * b));
  m.promptDigest = sha256Hex(ids.data(), ids.size());
  m.promptIds.assign(info->prompt_ids, info->prompt_ids + info->token_count);
  m.promptName = str(info->prompt_name);
  m.tokenCount = info->token_count;
  m.backend = str(info->engine) +
              (str(info->device).empty() ? "" : "/" + str(info->device));
  m.precision = dtype;
  m.toolVersion = str(info->engine) + (str(info->engine_version).empty()
                                           ? ""
                                           : " " + str(info->engine_version));
  m.filter = w->filter.str();
  m.createdAt = info->created_at ? info->created_at : nowIso8601();
  w->writer = TraceWriter::create(dir, m, info->overwrite != 0, error);
  if (!w->writer)
    return fail(std::string(where) + error, nullptr);
  return w.release();
}

int64_t greta_trace_writer_write(greta_trace_writer *w, const char *stage,
                                 int64_t layer, const int64_t *positions,
                                 int64_t rows, int64_t row_elems,
                                 greta_trace_dtype dtype, const void *data) {
  const char *where = "greta_trace_writer_write: ";
  if (!w)
    return fail(std::string(where) + "the writer is NULL", -1);
  std::string prefix = std::string(where) + "trace '" + w->dir + "': ";
  std::optional<Stage> s = stage ? parseStage(stage) : std::nullopt;
  if (!s)
    return fail(prefix + "unknown stage '" + str(stage) +
                    "' (GRETA's stage names: docs/TRACE_FORMAT.md)",
                -1);
  prefix += std::string(stage) + " layer " + std::to_string(layer) + ": ";
  if (layer < 0)
    return fail(prefix + "negative layer", -1);
  if (!validDType(dtype))
    return fail(prefix + "unknown dtype code " + std::to_string(dtype), -1);
  if (rows < 0 || row_elems <= 0)
    return fail(prefix + std::to_string(rows) + " rows of " +
                    std::to_string(row_elems) +
                    " elements (rows >= 0, row_elems > 0)",
                -1);
  if (rows > 0 && !data)
    return fail(prefix + "data is NULL", -1);
  std::vector<int64_t> pos(static_cast<size_t>(rows));
  for (int64_t i = 0; i < rows; ++i) {
    pos[i] = positions ? positions[i] : i;
    if (pos[i] < 0)
      return fail(prefix + "row " + std::to_string(i) + " has position " +
                      std::to_string(pos[i]) + " (positions are >= 0)",
                  -1);
  }
  // As Session::trace: the filter first, then the selected rows' digests as
  // one block.
  if (!w->filter.selects(*s, layer))
    return 0;
  Payload payload = w->filter.payload ? *w->filter.payload : w->payload;
  DType dt = static_cast<DType>(dtype);
  size_t rowBytes = static_cast<size_t>(row_elems) * dtypeSize(dt);
  bool isLogits = *s == Stage::Logits;
  std::vector<int64_t> selected;
  std::vector<BlockRow> entries;
  std::vector<int32_t> topIds;
  std::vector<uint8_t> values;
  const auto *base = static_cast<const uint8_t *>(data);
  Record r;
  for (int64_t i = 0; i < rows; ++i) {
    if (!w->filter.selectsPosition(pos[i], w->tokenCount))
      continue;
    const uint8_t *row = base + i * rowBytes;
    fillRowRecord(r, row, dt, row_elems, payload != Payload::Hash);
    selected.push_back(pos[i]);
    entries.push_back(toBlockRow(r));
    if (isLogits) {
      std::vector<int32_t> top = topFiveIds(row, dt, row_elems);
      top.resize(5, -1);
      topIds.insert(topIds.end(), top.begin(), top.end());
    }
    if (payload == Payload::Full)
      values.insert(values.end(), row, row + rowBytes);
  }
  if (selected.empty())
    return 0;
  RecordBlock b;
  b.stage = *s;
  b.layer = layer;
  b.dtype = dt;
  b.payload = payload;
  b.rowShape = {row_elems};
  b.n = static_cast<int64_t>(selected.size());
  b.positions = selected.data();
  b.rows = reinterpret_cast<const uint8_t *>(entries.data());
  b.topIds = isLogits ? topIds.data() : nullptr;
  b.topK = isLogits ? 5 : 0;
  b.values = values.data();
  std::string error;
  // A write error closes the TraceWriter (later calls fail with it); what
  // was written stays readable.
  if (!w->writer->appendBlock(b, error))
    return fail(prefix + error, -1);
  return b.n;
}

int greta_trace_writer_close(greta_trace_writer *w) {
  std::unique_ptr<greta_trace_writer> owned(w);
  if (!w)
    return fail(std::string("greta_trace_writer_close: the writer is NULL"),
                -1);
  std::string error;
  if (!w->writer->finish(error))
    return fail("greta_trace_writer_close: " + error, -1);
  return 0;
}

void greta_trace_writer_abandon(greta_trace_writer *w) {
  // The TraceWriter's destructor flushes what was appended and leaves the
  // manifest incomplete.
  delete w;
}

int greta_trace_weights_digest(const greta_trace_tensor *tensors, size_t n,
                               char out[65]) {
  const char *where = "greta_trace_weights_digest: ";
  if (!out || (n > 0 && !tensors))
    return fail(std::string(where) + (out ? "tensors" : "out") + " is NULL",
                -1);
  std::vector<TensorInfo> infos;
  std::set<std::string> names;
  for (size_t i = 0; i < n; ++i) {
    const greta_trace_tensor &t = tensors[i];
    std::string which = "tensor " + std::to_string(i);
    if (!t.name || !*t.name)
      return fail(std::string(where) + which + " has no name", -1);
    which += " '" + std::string(t.name) + "'";
    if (!names.insert(t.name).second)
      return fail(std::string(where) + which + " is given twice", -1);
    if (!validDType(t.dtype))
      return fail(std::string(where) + which + ": unknown dtype code " +
                      std::to_string(t.dtype),
                  -1);
    if (t.rank < 0 || t.rank > 8 || (t.rank > 0 && !t.shape))
      return fail(
          std::string(where) + which + ": rank " + std::to_string(t.rank) +
              (t.rank > 0 && !t.shape ? " with a NULL shape" : " (0 to 8)"),
          -1);
    TensorInfo info;
    info.name = t.name;
    info.dtype = static_cast<DType>(t.dtype);
    size_t count = 1;
    for (int64_t d = 0; d < t.rank; ++d) {
      if (t.shape[d] < 0)
        return fail(std::string(where) + which + ": dimension " +
                        std::to_string(d) + " is " + std::to_string(t.shape[d]),
                    -1);
      info.shape.push_back(t.shape[d]);
      count *= static_cast<size_t>(t.shape[d]);
    }
    if (count > 0 && !t.data)
      return fail(std::string(where) + which + ": data is NULL", -1);
    info.data = static_cast<const uint8_t *>(t.data);
    info.bytes = count * dtypeSize(info.dtype);
    infos.push_back(std::move(info));
  }
  // The digest greta-run writes (WeightsDigest.h), from the arrays.
  std::vector<std::pair<std::string, std::string>> digests;
  for (const TensorInfo &t : infos)
    digests.emplace_back(t.name, digestTensorHex(t));
  std::sort(digests.begin(), digests.end());
  std::string hex = combineTensorDigests(digests);
  std::copy(hex.begin(), hex.end(), out);
  out[64] = '\0';
  return 0;
}

} // extern "C"
