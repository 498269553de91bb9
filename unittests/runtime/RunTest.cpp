//===- RunTest.cpp - The run library both runners share ---------*- C++ -*-===//
#include "greta/rt/Run.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstring>
#include <sstream>

using namespace greta::rt;

namespace {

// greta-run --backend gpu forwards its flags to greta-run-aot this way.
TEST(Run, ToArgvGivesEveryFlagThatDiffersFromItsDefault) {
  RunOptions o;
  EXPECT_TRUE(toArgv(o).empty());
  o.weights = "w.safetensors";
  o.prompt = "p.json";
  o.promptText = "hello";
  o.tokenizer = "tok";
  o.traceDir = "t";
  o.overwrite = true;
  o.layers = "0,2";
  o.stages = "attn_out";
  o.positions = "last";
  o.payload = "full";
  o.precision = "f16";
  o.backend = "gpu";
  o.decode.chunk = "4";
  o.cacheDir = "c";
  o.noCache = true;
  o.timing = o.json = o.printLogits = o.dryRun = true;
  o.patchFrom = "other";
  o.patch = "mlp_out:1";
  o.kernels = {"attention=a", "trace=b"};
  o.device = 1;
  o.repeat = 3;
  std::vector<std::string> want{"--weights",      "w.safetensors",
                                "--backend",      "gpu",
                                "--precision",    "f16",
                                "--prompt",       "p.json",
                                "--prompt-text",  "hello",
                                "--tokenizer",    "tok",
                                "--trace-dir",    "t",
                                "--layers",       "0,2",
                                "--stages",       "attn_out",
                                "--positions",    "last",
                                "--payload",      "full",
                                "--patch-from",   "other",
                                "--patch",        "mlp_out:1",
                                "--device",       "1",
                                "--repeat",       "3",
                                "--kernel",       "attention=a",
                                "--kernel",       "trace=b",
                                "--cache-dir",    "c",
                                "--no-cache",     "--overwrite",
                                "--timing",       "--json",
                                "--print-logits", "--dry-run",
                                "--chunk",        "4"};
  EXPECT_EQ(toArgv(o), want);
}

TEST(Run, ToArgvKeepsAnEmptyPromptTextAndDeviceZero) {
  RunOptions o;
  o.promptText = "";
  o.device = 0;
  EXPECT_EQ(toArgv(o),
            (std::vector<std::string>{"--prompt-text", "", "--device", "0"}));
}

TEST(Run, ParseRunFlagsNamesTheFlag) {
  RunOptions o;
  Filter f;
  std::string err;
  o.stages = "nope";
  EXPECT_FALSE(parseRunFlags(o, f, err));
  EXPECT_EQ(err.rfind("--stages: ", 0), 0u) << err;
  o.stages = "logits";
  o.decode.chunk = "-1";
  EXPECT_FALSE(parseRunFlags(o, f, err));
  EXPECT_EQ(err.rfind("--chunk: bad chunk size '-1'", 0), 0u) << err;
  // The GPU decodes a schedule too; it refuses only the CPU's --kv-fault.
  o.decode.chunk = "60,1";
  o.backend = "gpu";
  ASSERT_TRUE(parseRunFlags(o, f, err)) << err;
  o.decode.kvFault = "1:3";
  EXPECT_FALSE(parseRunFlags(o, f, err));
  EXPECT_EQ(err.rfind("--kv-fault plants a fault in the CPU's KV cache", 0),
            0u)
      << err;
  o.backend = "cpu";
  ASSERT_TRUE(parseRunFlags(o, f, err)) << err;
  o.decode.kvFault = "";
  o.decode.chunk = "";
  o.patchFrom = "t";
  EXPECT_FALSE(parseRunFlags(o, f, err));
  EXPECT_EQ(err, "--patch-from and --patch go together");
  o.patch = "mlp_out:0";
  o.layers = "1";
  ASSERT_TRUE(parseRunFlags(o, f, err)) << err;
  EXPECT_TRUE(f.selects(Stage::Logits, 1));
  EXPECT_FALSE(f.selects(Stage::Logits, 0));
}

TEST(Run, CheckAgainstModelNamesTheCulprit) {
  RunOptions o;
  o.prompt = "p.json";
  Prompt p;
  p.ids = {1, 2, 9};
  Filter f;
  std::string err;
  ModelLimits limits;
  EXPECT_TRUE(checkAgainstModel(o, p, limits, f, err)) << err;
  limits.vocabSize = 9;
  EXPECT_FALSE(checkAgainstModel(o, p, limits, f, err));
  EXPECT_EQ(err, "prompt p.json: token id 9 at position 2 is outside the "
                 "vocabulary (greta.vocab_size = 9)");
  limits.vocabSize = 10;
  limits.maxPositions = 2;
  EXPECT_FALSE(checkAgainstModel(o, p, limits, f, err));
  EXPECT_NE(err.find("has 3 tokens, more than"), std::string::npos) << err;
  limits.maxPositions.reset();
  limits.faultFromPositions = {3};
  limits.faultSource = "m.so";
  limits.faultNote = " (its --pass-pipeline)";
  EXPECT_FALSE(checkAgainstModel(o, p, limits, f, err));
  EXPECT_EQ(err, "m.so plants a fault from position 3 (its --pass-pipeline), "
                 "but prompt p.json has 3 tokens: the fault would perturb "
                 "nothing");
  limits.faultFromPositions = {2};
  limits.numLayers = 2;
  ASSERT_TRUE(Filter::parseLayers("2", f, err));
  EXPECT_FALSE(checkAgainstModel(o, p, limits, f, err));
  EXPECT_EQ(err, "--layers: layer 2 is out of range: the model has 2 layers");
}

LastLogits logitsOf(std::vector<float> v) {
  std::vector<uint8_t> bytes(v.size() * 4);
  std::memcpy(bytes.data(), v.data(), bytes.size());
  LastLogits l;
  l.set(DType::F32, std::move(bytes));
  return l;
}

TEST(Run, TopFiveIsTheTracesRanking) {
  LastLogits l = logitsOf({1, 3, NAN, 3, -1, 7, 0});
  auto best = topFive(l);
  ASSERT_EQ(best.size(), 5u);
  // Highest first, ties to the lower id, NaN last (not in the top 5 here).
  std::vector<int64_t> ids;
  for (auto [id, v] : best)
    ids.push_back(id);
  EXPECT_EQ(ids, (std::vector<int64_t>{5, 1, 3, 0, 6}));
  EXPECT_EQ(best[0].second, 7.0);
}

TEST(Run, ResultJsonHasTheFieldsOfBothRunners) {
  RunOptions o;
  o.json = o.timing = true;
  o.patchFrom = "other";
  o.patch = "mlp_out:0";
  o.repeat = 2;
  RunResult r;
  r.model = "m";
  r.precision = "f32";
  r.backend = "cpu";
  r.cache = "hit";
  r.tokens = 3;
  r.calls = 1;
  r.rowsPatched = 2;
  r.logits = logitsOf({0.5f, 2.0f});
  r.repeatSeconds = {0.1, 0.2};
  std::ostringstream os;
  std::string err;
  ASSERT_TRUE(printResult(os, r, o, err)) << err;
  auto j = nlohmann::json::parse(os.str());
  for (const char *key : {"model", "tokens", "position", "precision", "backend",
                          "calls", "cache", "top5", "last_logits_sha256",
                          "records", "trace_dir", "timing", "rows_patched"})
    EXPECT_TRUE(j.contains(key)) << key;
  EXPECT_FALSE(j.contains("device")); // the CPU has none
  EXPECT_EQ(j["position"], 2);
  EXPECT_EQ(j["top5"][0]["token"], 1);
  EXPECT_EQ(j["rows_patched"], 2);
  EXPECT_EQ(j["timing"]["forward_repeats_s"].size(), 2u);
  r.logits = LastLogits();
  EXPECT_FALSE(printResult(os, r, o, err));
  EXPECT_EQ(err, "the model returned no logits for the last position");
}

} // namespace
