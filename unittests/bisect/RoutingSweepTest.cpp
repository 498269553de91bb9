//===- RoutingSweepTest.cpp - Which layers the routing sweep traces -------===//
//
// runtime/bisect/RoutingSweep.cpp: a model's routed layers are read from its
// greta IR (the expert_selection tags) or its HF config as the importer
// builds them; a dense model has none, so its bisection runs no sweep.
//
//===----------------------------------------------------------------------===//
#include "greta/bisect/Bisect.h"
#include "runtime/TestUtil.h"

#include <gtest/gtest.h>

#include <sys/stat.h>

using namespace greta::bisect;

namespace {
/// routedLayers of a file (or of a checkpoint directory's config.json).
std::vector<int64_t> routedOf(const std::string &text, bool checkpoint) {
  TempDir dir;
  std::string model = dir.path() + (checkpoint ? "/ckpt" : "/model.mlir");
  if (checkpoint)
    mkdir(model.c_str(), 0755);
  writeFile(checkpoint ? model + "/config.json" : model, text);
  std::vector<int64_t> layers = {99};
  std::string error;
  EXPECT_TRUE(routedLayers(model, layers, error)) << error;
  return layers;
}
} // namespace

TEST(RoutingSweep, IRRoutersAndTheirAliases) {
  std::string ir =
      "#stage3 = #greta.stage<\"expert_selection\", 3>\n"
      "module attributes {greta.num_layers = 4 : i64} {\n"
      "  %1 = greta.moe_router %0 {greta.stages = "
      "[#greta.stage<\"expert_selection\", 1>], top_k = 2 : i64}\n"
      "  %2 = greta.moe_router %0 {greta.stages = "
      "[#greta.stage<\"router_logits\", 2>, #greta.stage<\"expert_selection\","
      "  1>]}\n"
      "}\n";
  EXPECT_EQ(routedOf(ir, false), (std::vector<int64_t>{1, 3}));
}

TEST(RoutingSweep, DenseIRHasNone) {
  std::string ir = "module attributes {greta.num_layers = 2 : i64} {\n"
                   "  %1 = greta.swiglu %0 {greta.stages = "
                   "[#greta.stage<\"mlp_out\", 0>]}\n}\n";
  EXPECT_TRUE(routedOf(ir, false).empty());
}

TEST(RoutingSweep, MixtralRoutesEveryLayer) {
  EXPECT_EQ(routedOf(R"({"model_type": "mixtral", "num_hidden_layers": 3,
                         "num_local_experts": 4, "decoder_sparse_step": 2,
                         "mlp_only_layers": [0]})",
                     true),
            (std::vector<int64_t>{0, 1, 2}));
}

TEST(RoutingSweep, QwenSparseStepAndMlpOnlyLayers) {
  // HF: layer l is sparse when (l + 1) % decoder_sparse_step == 0 and it is
  // not in mlp_only_layers.
  EXPECT_EQ(routedOf(R"({"model_type": "qwen2_moe", "num_hidden_layers": 6,
                         "num_experts": 4, "decoder_sparse_step": 2,
                         "mlp_only_layers": [3]})",
                     true),
            (std::vector<int64_t>{1, 5}));
  EXPECT_EQ(routedOf(R"({"model_type": "qwen3_moe", "num_hidden_layers": 2,
                         "num_local_experts": 4})",
                     true),
            (std::vector<int64_t>{0, 1}));
}

TEST(RoutingSweep, DenseConfigHasNone) {
  EXPECT_TRUE(
      routedOf(R"({"model_type": "llama", "num_hidden_layers": 2})", true)
          .empty());
  // A key of the wrong type is the importer's error to report, not a throw.
  EXPECT_TRUE(
      routedOf(R"({"model_type": 7, "num_hidden_layers": 2})", true).empty());
}

TEST(RoutingSweep, UnknownFamilyWithExpertsSweepsEveryLayer) {
  // Better a sweep of every layer than none for a family the list above
  // does not know (e.g. DeepSeek's n_routed_experts).
  EXPECT_EQ(routedOf(R"({"model_type": "deepseek_v3", "num_hidden_layers": 3,
                         "n_routed_experts": 8})",
                     true),
            (std::vector<int64_t>{0, 1, 2}));
  EXPECT_TRUE(routedOf(R"({"model_type": "phi3", "num_hidden_layers": 3,
                           "num_experts": 1})",
                       true)
                  .empty());
}

TEST(RoutingSweep, UnreadableModelIsAnError) {
  TempDir dir;
  std::vector<int64_t> layers;
  std::string error;
  EXPECT_FALSE(routedLayers(dir.path() + "/none.mlir", layers, error));
  EXPECT_EQ(error, "cannot read model " + dir.path() + "/none.mlir");
  writeFile(dir.path() + "/config.json", "[1, 2]");
  EXPECT_FALSE(routedLayers(dir.path(), layers, error));
  EXPECT_NE(error.find("config.json is not a JSON object"), std::string::npos)
      << error;
}

TEST(RoutingSweep, FlipJoinsTheSearch) {
  EXPECT_EQ(withPosition("255", 34), "255,34");
  EXPECT_EQ(withPosition("34,255", 34), "34,255");
  EXPECT_EQ(withPosition("all", 34), "all");
  EXPECT_EQ(withPosition("", 34), "34");
  EXPECT_EQ(layersThrough({0, 1, 2, 4, 8, 11}, 5),
            (std::vector<int64_t>{0, 1, 2, 4, 5}));
  EXPECT_EQ(layersThrough({0, 1, 2, 4, 8, 11}, 0), (std::vector<int64_t>{0}));
}
