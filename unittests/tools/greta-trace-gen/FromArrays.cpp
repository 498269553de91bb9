//===- FromArrays.cpp - Given rows, written as the runtime writes them ----===//
//
// Test-only (greta-trace-gen --arrays SPEC): writes the trace that GRETA's
// runtime writes for rows given in files, so that another writer (the Python
// package's Writer, test/python/) can be compared with it byte for byte.
// SPEC (JSON) names the manifest fields, the runtime filter (greta-run's
// --layers/--stages/--positions/--payload strings) and the forward calls:
//
//   {"manifest": {"model": "m", "token_count": 8, "prompt_ids": [...], ...},
//    "filter": {"layers": "0-1", "positions": "2,last", ...},
//    "max_block_body_bytes": 4096,
//    "calls": [{"positions": [0, 1, ...],
//               "tensors": [{"stage": "mlp_out", "layer": 0, "dtype": "f32",
//                            "payload": "hash", "cols": 16,
//                            "file": "rows.bin", "frames": "session"}]}]}
//
// `file` (relative to SPEC) holds one row per position, little endian.
// frames "session" (the default; f32 or f64): Session::trace, the CPU
// runtime's path (filter, digests, top-5 of the logits, block frames).
// "block" and "records" (any dtype, no filter, no top-5): the rows' digests
// by fillRowRecord, written with appendBlock or one append per row.
//
//===----------------------------------------------------------------------===//
#include "greta/rt/Session.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <unistd.h>

using namespace greta;
using json = nlohmann::json;

namespace {

std::optional<rt::DType> dtypeNamed(const std::string &s) {
  for (rt::DType d :
       {rt::DType::F32, rt::DType::F64, rt::DType::F16, rt::DType::BF16})
    if (rt::dtypeName(d) == s)
      return d;
  return std::nullopt;
}

/// A session with no parameters: only its trace path is used. Session
/// wants a checkpoint, so an empty one is written and unlinked.
std::unique_ptr<rt::Session> traceOnlySession(std::string &error) {
  const char *tmpdir = std::getenv("TMPDIR");
  std::string path = std::string(tmpdir ? tmpdir : "/tmp") +
                     "/greta-trace-gen-" + std::to_string(::getpid()) +
                     ".safetensors";
  if (!rt::writeSafeTensors(path, {}, rt::DType::F32, error))
    return nullptr;
  auto weights = rt::SafeTensors::open(path, error);
  std::remove(path.c_str());
  if (!weights)
    return nullptr;
  return rt::Session::create(*weights, {}, rt::DType::F32, error);
}

bool readRows(const std::string &path, size_t bytes, std::vector<uint8_t> &out,
              std::string &error) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return error = "cannot open '" + path + "'", false;
  out.assign(std::istreambuf_iterator<char>(in), {});
  if (out.size() != bytes)
    return error = "'" + path + "' holds " + std::to_string(out.size()) +
                   " bytes, the tensor needs " + std::to_string(bytes),
           false;
  return true;
}

/// One tensor of a call, written by `frames`' path; false and `error`.
bool writeTensor(const json &t, const std::vector<int64_t> &positions,
                 const std::string &specDir, rt::Session &session,
                 rt::TraceWriter &writer, std::string &error) {
  std::string stageName = t.at("stage").get<std::string>();
  auto stage = rt::parseStage(stageName);
  auto dtype = dtypeNamed(t.value("dtype", "f32"));
  std::string payloadName = t.value("payload", "hash");
  rt::Filter payloadOnly;
  if (!stage || !dtype ||
      !rt::Filter::parsePayload(payloadName, payloadOnly, error))
    return error = "bad stage, dtype or payload in " + t.dump(), false;
  rt::Payload payload = *payloadOnly.payload;
  int64_t layer = t.at("layer").get<int64_t>();
  int64_t cols = t.at("cols").get<int64_t>(), rows = positions.size();
  size_t es = rt::dtypeSize(*dtype);
  std::vector<uint8_t> data;
  if (!readRows(specDir + "/" + t.at("file").get<std::string>(),
                rows * cols * es, data, error))
    return false;
  std::string frames = t.value("frames", "session");
  if (frames == "session") {
    session.trace(rt::recordId(*stage, layer), static_cast<int64_t>(payload),
                  *dtype, data.data(), rows, cols, cols);
    return session.error().empty() || (error = session.error(), false);
  }
  if (*stage == rt::Stage::Logits)
    return error = "logits (top-5 ids) are written by frames \"session\" only",
           false;
  std::vector<rt::BlockRow> entries;
  for (int64_t i = 0; i < rows; ++i) {
    rt::Record r;
    r.stage = *stage;
    r.layer = layer;
    r.position = positions[i];
    r.dtype = *dtype;
    r.payload = payload;
    r.shape = {cols};
    const uint8_t *row = data.data() + i * cols * es;
    rt::fillRowRecord(r, row, *dtype, cols, payload != rt::Payload::Hash);
    if (frames == "block") {
      entries.push_back(rt::toBlockRow(r));
      continue;
    }
    if (frames != "records")
      return error = "unknown frames '" + frames + "'", false;
    if (payload == rt::Payload::Full)
      r.values = std::vector<uint8_t>(row, row + cols * es);
    if (!writer.append(r, error))
      return false;
  }
  if (frames == "records")
    return true;
  rt::RecordBlock b;
  b.stage = *stage;
  b.layer = layer;
  b.dtype = *dtype;
  b.payload = payload;
  b.rowShape = {cols};
  b.n = rows;
  b.positions = positions.data();
  b.rows = reinterpret_cast<const uint8_t *>(entries.data());
  b.values = data.data();
  return writer.appendBlock(b, error);
}

} // namespace

int writeTraceFromArrays(const std::string &specPath, const std::string &out) {
  auto fail = [](const std::string &msg) {
    std::cerr << "greta-trace-gen: error: " << msg << "\n";
    return 2;
  };
  std::ifstream in(specPath);
  if (!in)
    return fail("cannot open '" + specPath + "'");
  std::string specDir = specPath.substr(0, specPath.find_last_of('/'));
  if (specDir == specPath)
    specDir = ".";
  std::string error;
  try {
    json spec = json::parse(in);
    const json &m = spec.value("manifest", json::object());
    rt::Manifest manifest;
    manifest.model = m.value("model", "");
    manifest.modelDigest = m.value("model_digest", "");
    manifest.weightsDigest = m.value("weights_digest", "");
    json tensorDigests = m.value("weights_tensor_digests", json::object());
    for (const auto &[name, digest] : tensorDigests.items())
      manifest.weightsTensorDigests.emplace_back(name,
                                                 digest.get<std::string>());
    manifest.weightsDType = m.value("weights_dtype", "");
    manifest.promptDigest = m.value("prompt_digest", "");
    manifest.promptName = m.value("prompt_name", "");
    manifest.tokenCount = m.value("token_count", int64_t(0));
    manifest.promptIds = m.value("prompt_ids", std::vector<int64_t>{});
    manifest.tokenizer = m.value("tokenizer", "");
    manifest.tokenizerDigest = m.value("tokenizer_digest", "");
    manifest.backend = m.value("backend", "");
    manifest.precision = m.value("precision", "");
    manifest.pipeline = m.value("pipeline", "");
    manifest.toolVersion = m.value("tool_version", "");
    manifest.createdAt = m.value("created_at", "");
    rt::Filter filter;
    const json &f = spec.value("filter", json::object());
    using Parse = bool (*)(const std::string &, rt::Filter &, std::string &);
    for (auto [key, parse] :
         {std::pair<const char *, Parse>{"layers", rt::Filter::parseLayers},
          {"stages", rt::Filter::parseStages},
          {"positions", rt::Filter::parsePositions},
          {"payload", rt::Filter::parsePayload}})
      // "" is not given, as for greta-run's flags.
      if (f.contains(key) && !f[key].get<std::string>().empty() &&
          !parse(f[key].get<std::string>(), filter, error))
        return fail(std::string("filter ") + key + ": " + error);
    manifest.filter = filter.str();
    auto session = traceOnlySession(error);
    if (!session)
      return fail(error);
    auto writer = rt::TraceWriter::create(out, manifest, true, error);
    if (!writer)
      return fail(error);
    if (spec.contains("max_block_body_bytes"))
      writer->setMaxBlockBodyBytes(spec["max_block_body_bytes"].get<size_t>());
    session->setTrace(writer.get(), filter, manifest.tokenCount);
    for (const json &call : spec.at("calls")) {
      auto positions = call.at("positions").get<std::vector<int64_t>>();
      session->setPositions(positions);
      for (const json &t : call.at("tensors"))
        if (!writeTensor(t, positions, specDir, *session, *writer, error))
          return fail(error);
      if (!session->endCall())
        return fail(session->error());
    }
    if (!writer->finish(error))
      return fail(error);
  } catch (const json::exception &e) {
    return fail("'" + specPath + "': " + e.what());
  }
  return 0;
}
