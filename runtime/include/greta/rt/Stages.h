//===- Stages.h - The residual-stream stages and their categories -*- C++ -*-===//
//
// The one table of stage names, execution order and root-cause categories.
// The names and categories are part of GRETA's interface (they come from the
// B3.61 study); the compiler, the runtime and greta-diff all read them here.
// Header-only and free of LLVM so the runtime-only build can use it.
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_RT_STAGES_H
#define GRETA_RT_STAGES_H

#include <cstdint>
#include <optional>
#include <string_view>

namespace greta::rt {

/// Stages in strict execution order inside a layer. `EmbedOut` happens once,
/// before layer 0 (it is tagged with layer 0); `Logits` once, after the last
/// layer (tagged with the last layer). The numeric value is the order key.
enum class Stage : uint8_t {
  EmbedOut = 0,
  ResidualPreAttn,
  AttnIn,
  QPreRope,
  KPreRope,
  QPostRope,
  KPostRope,
  AttnOut,
  ResidualPostAttn,
  FfnNormIn,
  MlpOut,
  ResidualPostMlp,
  Logits,
};
inline constexpr unsigned kNumStages = 13;

enum class Category : uint8_t {
  RoutingSelection = 0,
  AttnKernelInputs,
  AttentionMechanism,
  ResidualAdd,
  FfnNormPath,
  MlpOutput,
  Unknown,
};
inline constexpr unsigned kNumCategories = 7;

struct StageInfo {
  std::string_view name;
  Category category;
};

inline constexpr StageInfo kStageTable[kNumStages] = {
    {"embed_out", Category::RoutingSelection},
    {"residual_pre_attn", Category::RoutingSelection},
    {"attn_in", Category::AttnKernelInputs},
    {"q_pre_rope", Category::AttnKernelInputs},
    {"k_pre_rope", Category::AttnKernelInputs},
    {"q_post_rope", Category::AttentionMechanism},
    {"k_post_rope", Category::AttentionMechanism},
    {"attn_out", Category::AttentionMechanism},
    {"residual_post_attn", Category::ResidualAdd},
    {"ffn_norm_in", Category::FfnNormPath},
    {"mlp_out", Category::MlpOutput},
    {"residual_post_mlp", Category::ResidualAdd},
    {"logits", Category::Unknown},
};

inline constexpr std::string_view kCategoryNames[kNumCategories] = {
    "ROUTING/SELECTION", "ATTN_KERNEL_INPUTS", "ATTENTION_MECHANISM",
    "RESIDUAL_ADD",      "FFN_NORM_PATH",      "MLP_OUTPUT",
    "UNKNOWN"};

inline std::string_view stageName(Stage s) {
  return kStageTable[static_cast<unsigned>(s)].name;
}
inline Category stageCategory(Stage s) {
  return kStageTable[static_cast<unsigned>(s)].category;
}
inline std::string_view categoryName(Category c) {
  return kCategoryNames[static_cast<unsigned>(c)];
}
inline std::optional<Stage> parseStage(std::string_view name) {
  for (unsigned i = 0; i < kNumStages; ++i)
    if (kStageTable[i].name == name)
      return static_cast<Stage>(i);
  return std::nullopt;
}

/// A stable record id for (stage, layer): the same in every build and run,
/// so traces of different pipelines line up. 16 leaves room for new stages.
inline constexpr int64_t recordId(Stage s, int64_t layer) {
  return layer * 16 + static_cast<int64_t>(s);
}

/// Execution-order key of a record group: embed_out first, then layer by layer
/// in stage order, then logits.
inline constexpr int64_t executionOrderKey(Stage s, int64_t layer) {
  return recordId(s, layer);
}

} // namespace greta::rt

#endif // GRETA_RT_STAGES_H
