//===- greta-trace-gen.cpp - Synthetic traces for greta-diff tests --------===//
//
// Test-only: writes a trace through the runtime's TraceWriter with
// deterministic pseudo-random rows, optionally with a planted fault at
// (stage, layer, from-position) that propagates downstream the way a real
// fault does, growing noise (precision-like), rounding to f16/bf16, or an
// early stop (truncated trace). Not installed; lit and bench/ use it. With
// --blocks each (stage, layer) is written as block frames (appendBlock), the
// way the CPU and GPU runtimes write traced tensors. With --arrays SPEC it
// writes given rows as the runtime does (FromArrays.cpp).
//
//===----------------------------------------------------------------------===//
#include "greta/rt/Half.h"
#include "greta/rt/Sha256.h"
#include "greta/rt/Stages.h"
#include "greta/rt/Trace.h"
#include "greta/tools/CLI.h"

#include <CLI/CLI.hpp>

#include <cmath>
#include <cstring>
#include <iostream>
#include <set>
#include <sstream>

using namespace greta;
using rt::DType;
using rt::Stage;

/// FromArrays.cpp: the trace of the rows that `specPath` names.
int writeTraceFromArrays(const std::string &specPath, const std::string &out);

namespace {

uint64_t splitmix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
/// Uniform in [-1, 1), a pure function of its arguments.
double unit(uint64_t a, uint64_t b, uint64_t c) {
  uint64_t h = splitmix(splitmix(splitmix(a) ^ b) ^ c);
  return static_cast<double>(h >> 11) * (2.0 / 9007199254740992.0) - 1.0;
}

bool parseList(const std::string &spec, std::set<int64_t> &out) {
  std::stringstream ss(spec);
  std::string item;
  while (std::getline(ss, item, ',')) {
    auto dash = item.find('-');
    try {
      if (dash == std::string::npos) {
        out.insert(std::stoll(item));
      } else {
        int64_t lo = std::stoll(item.substr(0, dash)),
                hi = std::stoll(item.substr(dash + 1));
        for (int64_t v = lo; v <= hi; ++v)
          out.insert(v);
      }
    } catch (...) {
      return false;
    }
  }
  return !out.empty();
}

struct Plant {
  Stage stage = Stage::EmbedOut;
  int64_t layer = 0, from = 0, to = INT64_MAX;
  std::string kind = "scale";
  double magnitude = 1.01;
  bool only = false; // perturb just this record group, no propagation
};

bool parsePlant(const std::string &spec, Plant &p, std::string &error) {
  std::stringstream ss(spec);
  std::string kv;
  bool haveStage = false;
  while (ss >> kv) {
    auto eq = kv.find('=');
    std::string k = kv.substr(0, eq),
                v = eq == std::string::npos ? "" : kv.substr(eq + 1);
    try {
      if (k == "stage") {
        auto s = rt::parseStage(v);
        if (!s)
          return error = "unknown stage '" + v + "'", false;
        p.stage = *s;
        haveStage = true;
      } else if (k == "layer") {
        p.layer = std::stoll(v);
      } else if (k == "from") {
        p.from = std::stoll(v);
      } else if (k == "to") {
        p.to = std::stoll(v);
      } else if (k == "kind") {
        if (v != "scale" && v != "offset" && v != "nan" && v != "sparse")
          return error = "unknown kind '" + v + "'", false;
        p.kind = v;
      } else if (k == "magnitude") {
        p.magnitude = std::stod(v);
      } else if (k == "only") {
        p.only = true;
      } else {
        return error = "unknown --plant key '" + k + "'", false;
      }
    } catch (...) {
      return error = "bad value in '" + kv + "'", false;
    }
  }
  if (!haveStage)
    return error = "--plant needs stage=NAME", false;
  return true;
}

void putValue(DType d, double v, uint8_t *p) {
  switch (d) {
  case DType::F32: {
    float f = static_cast<float>(v);
    std::memcpy(p, &f, 4);
    return;
  }
  case DType::F64:
    std::memcpy(p, &v, 8);
    return;
  case DType::F16: {
    uint16_t h = rt::doubleToHalfBits(v);
    std::memcpy(p, &h, 2);
    return;
  }
  case DType::BF16: {
    uint16_t h = rt::doubleToBF16Bits(v);
    std::memcpy(p, &h, 2);
    return;
  }
  }
}

std::optional<DType> parseDType(const std::string &s) {
  for (DType d : {DType::F32, DType::F64, DType::F16, DType::BF16})
    if (rt::dtypeName(d) == s)
      return d;
  return std::nullopt;
}

int fail(const std::string &msg) {
  std::cerr << "greta-trace-gen: error: " << msg << "\n";
  return 2;
}

} // namespace

int main(int argc, char **argv) {
  CLI::App app{"greta-trace-gen: write a synthetic trace (test-only)"};
  std::string out, layersSpec = "0,1,2", stagesSpec = "all", positionsSpec,
                   dtypeStr = "f32", precision, payloadStr = "full",
                   promptName = "p_test", modelDigest = "model-digest-0",
                   weightsDigest = "weights-digest-0", promptDigest,
                   roundTo, backend = "cpu";
  std::vector<std::string> plantSpecs;
  int64_t tokens = 8, hidden = 16, stopAfter = -1;
  double noise = 0, scale = 1;
  uint64_t noiseSeed = 1;
  bool noFinish = false, blocks = false;
  uint32_t formatVersion = rt::kTraceFormatVersion;
  std::string arraysSpec;
  app.add_option("OUT", out, "trace directory to write")->required();
  app.add_option("--arrays", arraysSpec,
                 "write the rows that this JSON spec names as the runtime "
                 "does (FromArrays.cpp); every other option is ignored");
  app.add_option("--tokens", tokens, "token count of the prompt");
  app.add_option("--positions", positionsSpec,
                 "positions written, e.g. 0-7,12 (default: all)");
  app.add_option("--layers", layersSpec, "layers written, e.g. 0-3,8");
  app.add_option("--stages", stagesSpec, "stage names, comma separated, or all");
  app.add_option("--hidden", hidden, "elements per row");
  app.add_option("--dtype", dtypeStr, "f32 | f64 | f16 | bf16");
  app.add_option("--precision", precision,
                 "manifest precision (default: the dtype)");
  app.add_option("--payload", payloadStr, "hash | stats | full");
  app.add_option("--prompt-name", promptName, "manifest prompt name");
  app.add_option("--backend", backend, "manifest backend");
  app.add_option("--model-digest", modelDigest, "manifest model digest");
  app.add_option("--weights-digest", weightsDigest, "manifest weights digest");
  app.add_option("--prompt-digest", promptDigest,
                 "manifest prompt digest (default: derived from --tokens)");
  app.add_option("--scale", scale, "multiplies every value");
  app.add_option("--plant", plantSpecs,
                 "'stage=S layer=L from=P [to=Q] [kind=scale|offset|nan|sparse] "
                 "[magnitude=M] [only]': perturb (S, L) at positions P..Q and, "
                 "unless `only`, every later record at those positions");
  app.add_option("--noise", noise,
                 "relative noise on every value, growing with the layer "
                 "(x (layer+1)): precision-like differences");
  app.add_option("--noise-seed", noiseSeed, "seed of --noise");
  app.add_option("--round", roundTo,
                 "round every value to f16 or bf16 before storing");
  app.add_option("--stop-after", stopAfter,
                 "write this many records, then stop without finishing");
  app.add_flag("--no-finish", noFinish, "leave the trace unfinished");
  app.add_flag("--blocks", blocks,
               "write each (stage, layer) as block frames (appendBlock) "
               "instead of one record frame per row");
  app.add_option("--format-version", formatVersion,
                 "manifest format version to claim (tests of the reader)");
  greta::addVersionFlag(app, "greta-trace-gen");
  try {
    greta::parseArgs(app, argc, argv);
  } catch (const CLI::ParseError &e) {
    return app.exit(e);
  }
  if (!arraysSpec.empty())
    return writeTraceFromArrays(arraysSpec, out);

  auto dtype = parseDType(dtypeStr);
  if (!dtype)
    return fail("unknown --dtype '" + dtypeStr + "'");
  rt::Payload payload;
  if (payloadStr == "hash")
    payload = rt::Payload::Hash;
  else if (payloadStr == "stats")
    payload = rt::Payload::Stats;
  else if (payloadStr == "full")
    payload = rt::Payload::Full;
  else
    return fail("unknown --payload '" + payloadStr + "'");
  if (!roundTo.empty() && roundTo != "f16" && roundTo != "bf16")
    return fail("--round takes f16 or bf16");
  std::set<int64_t> layers, positions;
  if (!parseList(layersSpec, layers))
    return fail("bad --layers '" + layersSpec + "'");
  if (positionsSpec.empty()) {
    for (int64_t p = 0; p < tokens; ++p)
      positions.insert(p);
  } else if (!parseList(positionsSpec, positions)) {
    return fail("bad --positions '" + positionsSpec + "'");
  }
  std::vector<Stage> stages;
  if (stagesSpec == "all") {
    // A dense model's stages, as `--stages all` records them: synthetic
    // rows are no expert selection, and the KV-cache stages are named.
    for (Stage s : rt::kExecutionOrder)
      if (s != Stage::RouterLogits && s != Stage::ExpertSelection &&
          s != Stage::MoeOut && !rt::isCacheStage(s))
        stages.push_back(s);
  } else {
    std::stringstream ss(stagesSpec);
    std::string name;
    while (std::getline(ss, name, ',')) {
      auto s = rt::parseStage(name);
      if (!s)
        return fail("unknown stage '" + name + "'");
      stages.push_back(*s);
    }
  }
  std::vector<Plant> plants;
  for (const std::string &spec : plantSpecs) {
    Plant p;
    std::string err;
    if (!parsePlant(spec, p, err))
      return fail("--plant '" + spec + "': " + err);
    plants.push_back(p);
  }

  rt::Manifest m;
  m.formatVersion = formatVersion;
  m.model = "synthetic";
  m.modelDigest = modelDigest;
  m.weightsDigest = weightsDigest;
  m.promptDigest =
      promptDigest.empty() ? "prompt-" + std::to_string(tokens) : promptDigest;
  m.promptName = promptName;
  m.tokenCount = tokens;
  m.backend = backend;
  m.precision = precision.empty() ? dtypeStr : precision;
  m.toolVersion = "greta-trace-gen";
  std::string error;
  auto writer = rt::TraceWriter::create(out, m, /*overwrite=*/true, error);
  if (!writer)
    return fail(error);

  // Execution order: embed_out and logits only at the first/last layer.
  int64_t firstLayer = *layers.begin(), lastLayer = *layers.rbegin();
  std::vector<std::pair<Stage, int64_t>> groups;
  for (int64_t l : layers)
    for (Stage s : stages) {
      if (s == Stage::EmbedOut && l != firstLayer)
        continue;
      if (s == Stage::Logits && l != lastLayer)
        continue;
      groups.push_back({s, l});
    }
  std::stable_sort(groups.begin(), groups.end(), [](auto a, auto b) {
    return rt::executionOrderKey(a.first, a.second) <
           rt::executionOrderKey(b.first, b.second);
  });

  size_t es = rt::dtypeSize(*dtype);
  std::vector<double> row(hidden);
  int64_t written = 0;
  // --blocks: the rows of the current (stage, layer), written as one
  // RecordBlock (the writer splits it into frames as needed).
  std::vector<int64_t> blockPos;
  std::vector<rt::BlockRow> blockRows;
  std::vector<int32_t> blockIds;
  std::vector<uint8_t> blockValues;
  auto writeBlock = [&](Stage stage, int64_t layer) {
    if (blockPos.empty())
      return true;
    rt::RecordBlock b;
    b.stage = stage;
    b.layer = layer;
    b.dtype = *dtype;
    b.payload = payload;
    b.rowShape = {hidden};
    b.n = static_cast<int64_t>(blockPos.size());
    b.positions = blockPos.data();
    b.rows = reinterpret_cast<const uint8_t *>(blockRows.data());
    b.rowStride = sizeof(rt::BlockRow);
    if (stage == Stage::Logits) {
      b.topIds = blockIds.data();
      b.topK = 5;
    }
    b.values = blockValues.data();
    bool ok = writer->appendBlock(b, error);
    blockPos.clear();
    blockRows.clear();
    blockIds.clear();
    blockValues.clear();
    return ok;
  };
  for (auto [stage, layer] : groups) {
    int64_t key = rt::executionOrderKey(stage, layer);
    for (int64_t pos : positions) {
      if (stopAfter >= 0 && written == stopAfter) {
        std::string ferr;
        if (blocks && !writeBlock(stage, layer))
          return fail(error);
        writer->flush(ferr);
        return 0; // Truncated on purpose: never finish().
      }
      for (int64_t i = 0; i < hidden; ++i)
        row[i] = scale * unit(key, pos, i);
      for (const Plant &p : plants) {
        int64_t pk = rt::executionOrderKey(p.stage, p.layer);
        bool hit = pos >= p.from && pos <= p.to &&
                   (p.only ? key == pk : key >= pk);
        if (!hit)
          continue;
        for (int64_t i = 0; i < hidden; ++i) {
          if (p.kind == "scale")
            row[i] *= p.magnitude;
          else if (p.kind == "offset")
            row[i] += p.magnitude;
          else if (p.kind == "nan" && i == 0)
            row[i] = NAN;
          else if (p.kind == "sparse" && i == hidden / 2)
            row[i] += p.magnitude;
        }
      }
      if (noise != 0)
        for (int64_t i = 0; i < hidden; ++i)
          row[i] *= 1 + noise * (layer + 1) * unit(noiseSeed, key * 1000003 + pos, i);
      rt::Record r;
      r.stage = stage;
      r.layer = layer;
      r.position = pos;
      r.dtype = *dtype;
      r.shape = {hidden};
      r.payload = payload;
      std::vector<uint8_t> bytes(hidden * es);
      double mn = INFINITY, mx = -INFINITY, sum = 0, sq = 0;
      for (int64_t i = 0; i < hidden; ++i) {
        double v = row[i];
        if (roundTo == "f16")
          v = rt::roundToHalf(v);
        else if (roundTo == "bf16")
          v = rt::roundToBF16(v);
        putValue(*dtype, v, bytes.data() + i * es);
        r.nzCount += v != 0;
        if (std::isnan(v)) {
          ++r.nanCount;
          continue;
        }
        if (std::isinf(v))
          ++r.infCount;
        mn = std::min(mn, v);
        mx = std::max(mx, v);
        sum += v;
        sq += v * v;
      }
      r.sha256 = rt::sha256(bytes.data(), bytes.size());
      if (payload == rt::Payload::Hash)
        r.nanCount = r.infCount = 0;
      else
        r.fingerprint = {mn, mx, sum / hidden, std::sqrt(sq)};
      if (stage == Stage::Logits)
        r.top5 = {0, 1, 2, 3, 4};
      if (blocks) {
        blockRows.push_back(rt::toBlockRow(r));
        blockPos.push_back(pos);
        blockIds.insert(blockIds.end(), r.top5.begin(), r.top5.end());
        if (payload == rt::Payload::Full)
          blockValues.insert(blockValues.end(), bytes.begin(), bytes.end());
        ++written;
        continue;
      }
      if (payload == rt::Payload::Full)
        r.values = std::move(bytes);
      if (!writer->append(r, error))
        return fail(error);
      ++written;
    }
    if (blocks && !writeBlock(stage, layer))
      return fail(error);
  }
  if (!noFinish && !writer->finish(error))
    return fail(error);
  if (noFinish) {
    std::string ferr;
    writer->flush(ferr);
  }
  return 0;
}
