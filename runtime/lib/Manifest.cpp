//===- Manifest.cpp - The trace's manifest.json -----------------*- C++ -*-===//
//
// The manifest to JSON and back, checked field by field
// (docs/TRACE_FORMAT.md); the writer seals it, the reader checks the seal.
//
//===----------------------------------------------------------------------===//
#include "TraceInternal.h"

#include <algorithm>

using namespace greta::rt;
using namespace greta::rt::detail;
using json = nlohmann::json;

//===----------------------------------------------------------------------===//
// Manifest
//===----------------------------------------------------------------------===//

namespace greta::rt::detail {

json manifestToJson(const Manifest &m, const ManifestSeal &seal) {
  json tensorDigests = json::object();
  for (const auto &[name, digest] : m.weightsTensorDigests)
    tensorDigests[name] = digest;
  json j{{"format", "greta-trace"},
         {"format_version", m.formatVersion},
         {"run_id", m.runId},
         {"model", m.model},
         {"model_digest", m.modelDigest},
         {"weights_digest", m.weightsDigest},
         {"weights_tensor_digests", std::move(tensorDigests)},
         {"weights_dtype", m.weightsDType},
         {"prompt_digest", m.promptDigest},
         {"prompt_name", m.promptName},
         {"token_count", m.tokenCount},
         {"prompt_ids", m.promptIds},
         {"tokenizer", m.tokenizer},
         {"tokenizer_digest", m.tokenizerDigest},
         {"backend", m.backend},
         {"precision", m.precision},
         {"pipeline", m.pipeline},
         {"tool_version", m.toolVersion},
         {"filter", m.filter},
         {"created_at", m.createdAt},
         {"complete", seal.complete},
         {"records", seal.records.value_or(0)}};
  if (seal.complete)
    j["records_digest"] = seal.recordsDigest;
  if (m.generatedIds) {
    j["generated_ids"] = *m.generatedIds;
    j["generation"] = m.generation;
  }
  return j;
}

/// JSON nesting allowed in manifest.json: the writer's is 1 level. Deeper
/// input is refused before anything recurses over it (a value dump()ed into
/// an error message overflowed the stack at 100000 levels).
constexpr int kMaxManifestDepth = 32;

/// The JSON text of a manifest, refused when nested deeper than
/// kMaxManifestDepth (nlohmann's parser itself does not recurse). `error`
/// completes "'<path>' ...".
bool parseManifestText(const std::vector<uint8_t> &bytes, json &out,
                       std::string &error) {
  bool tooDeep = false;
  json::parser_callback_t limit = [&](int depth, json::parse_event_t, json &) {
    if (depth > kMaxManifestDepth)
      tooDeep = true;
    return !tooDeep; // Keep nothing once too deep: the result is refused.
  };
  try {
    out = json::parse(bytes.begin(), bytes.end(), limit);
  } catch (const json::exception &e) { // parse_error, out_of_range (1e999)
    return error = std::string("is not valid JSON: ") + e.what(), false;
  }
  if (tooDeep)
    return error = "nests deeper than " + std::to_string(kMaxManifestDepth) +
                   " levels (a GRETA manifest is a flat object)",
           false;
  return true;
}

/// A short description of a JSON value for an error message: the value
/// itself when it is a scalar, else its type (never a recursive dump).
std::string describeJson(const json &v) {
  if (v.is_primitive()) {
    std::string s = v.dump();
    return s.size() > 64 ? s.substr(0, 64) + "..." : s;
  }
  return std::string("a JSON ") + v.type_name();
}

bool manifestFromJson(const json &j, Manifest &m, ManifestSeal &seal,
                      std::string &error) {
  try {
    if (!j.is_object())
      return error = "not a JSON object", false;
    if (!j.contains("format_version") ||
        !j["format_version"].is_number_unsigned())
      return error = "missing or invalid 'format_version'", false;
    // Read as u64 first: a huge version must be refused as newer, not
    // truncated to a small one.
    uint64_t version = j["format_version"].get<uint64_t>();
    if (version > kTraceFormatVersion)
      return error = "trace format version " + std::to_string(version) +
                     " is newer than this reader supports (version " +
                     std::to_string(kTraceFormatVersion) + "); update GRETA",
             false;
    m.formatVersion = static_cast<uint32_t>(version);
    if (m.formatVersion > kTraceFormatVersion)
      return error = "trace format version " + std::to_string(m.formatVersion) +
                     " is newer than this reader supports (version " +
                     std::to_string(kTraceFormatVersion) + "); update GRETA",
             false;
    if (m.formatVersion == 0)
      return error = "invalid format_version 0", false;
    auto str = [&](const char *key, std::string &out) {
      if (j.contains(key))
        out = j[key].get<std::string>();
    };
    str("model", m.model);
    str("model_digest", m.modelDigest);
    str("weights_digest", m.weightsDigest);
    str("weights_dtype", m.weightsDType);
    str("prompt_digest", m.promptDigest);
    str("prompt_name", m.promptName);
    str("backend", m.backend);
    str("precision", m.precision);
    str("pipeline", m.pipeline);
    str("tool_version", m.toolVersion);
    str("filter", m.filter);
    str("created_at", m.createdAt);
    str("run_id", m.runId);
    if (!m.runId.empty() && !isHexDigest(m.runId, 2 * kRunIdBytes))
      return error = "'run_id' must be 32 lowercase hex digits, got " +
                     describeJson(j["run_id"]),
             false;
    if (j.contains("weights_tensor_digests")) {
      const json &t = j["weights_tensor_digests"];
      if (!t.is_object())
        return error = "'weights_tensor_digests' must be an object", false;
      for (auto it = t.begin(); it != t.end(); ++it) // sorted by name
        m.weightsTensorDigests.push_back(
            {it.key(), it.value().get<std::string>()});
    }
    if (j.contains("token_count")) {
      const json &t = j["token_count"];
      if (!t.is_number_integer() || t.get<int64_t>() < 0)
        return error = "'token_count' must be a non-negative integer, got " +
                       describeJson(t),
               false;
      m.tokenCount = t.get<int64_t>();
    }
    str("tokenizer", m.tokenizer);
    str("tokenizer_digest", m.tokenizerDigest);
    if (j.contains("prompt_ids")) {
      const json &ids = j["prompt_ids"];
      bool valid = ids.is_array();
      for (size_t i = 0; valid && i < ids.size(); ++i) {
        valid = ids[i].is_number_integer() && ids[i].get<int64_t>() >= 0;
        if (valid)
          m.promptIds.push_back(ids[i].get<int64_t>());
      }
      if (!valid)
        return error = "'prompt_ids' must be an array of token ids, got " +
                       describeJson(ids),
               false;
    }
    if (j.contains("generated_ids")) {
      const json &ids = j["generated_ids"];
      bool valid = ids.is_array();
      m.generatedIds.emplace();
      for (size_t i = 0; valid && i < ids.size(); ++i) {
        valid = ids[i].is_number_integer() && ids[i].get<int64_t>() >= 0;
        if (valid)
          m.generatedIds->push_back(ids[i].get<int64_t>());
      }
      if (!valid)
        return error = "'generated_ids' must be an array of token ids, got " +
                       describeJson(ids),
               false;
    }
    str("generation", m.generation);
    seal.complete = j.value("complete", false);
    if (seal.complete && j.contains("records")) {
      const json &r = j["records"];
      if (!r.is_number_unsigned())
        return error = "'records' must be a non-negative integer, got " +
                       describeJson(r),
               false;
      seal.records = r.get<uint64_t>();
    }
    if (seal.complete && j.contains("records_digest")) {
      const json &d = j["records_digest"];
      if (!d.is_string() || !isHexDigest(d.get<std::string>(), 64))
        return error = "'records_digest' must be 64 lowercase hex digits, "
                       "got " +
                       describeJson(d),
               false;
      seal.recordsDigest = d.get<std::string>();
    }
  } catch (const json::exception &e) {
    return error = std::string("bad field: ") + e.what(), false;
  }
  return true;
}

} // namespace greta::rt::detail
