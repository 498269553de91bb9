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

/// The stages. The numeric value is the stage byte of a record and part of
/// its record id, so it never changes: a new stage is appended (VProj came
/// after Logits), and executionOrderKey() gives the order inside a layer.
/// `EmbedOut` happens once, before layer 0 (it is tagged with layer 0);
/// `Logits` once, after the last layer (tagged with the last layer).
/// The KV-cache stages are recorded by the runtime's attention, not by a
/// traced IR value: `KCache`/`VCache` are the rows as stored (k after RoPE)
/// when written, `KCacheRead`/`VCacheRead` (with --trace-cache-reads) the
/// rows [0, p] a query at position p reads, as one record at p.
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
  VProj,
  RouterLogits,    // mixture of experts: the router's scores
  ExpertSelection, // the k expert ids in rank order and their k weights
  MoeOut,          // the routed experts' weighted sum
  KCache,          // the KV cache rows as written (k after RoPE)
  VCache,          // (the runtime's attention records the cache stages)
  KCacheRead,      // --trace-cache-reads: the rows a query reads
  VCacheRead,
};
inline constexpr unsigned kNumStages = 21;
/// Record ids are layer * kRecordIdStride + stage for the first 16 stages;
/// the later ones go on pages above 2^40 (recordId): every id compiled
/// before a stage was added stays what it was.
inline constexpr unsigned kRecordIdStride = 16;
inline constexpr unsigned kRecordIdPageShift = 40;
/// Order keys (executionOrderKey) leave room for every stage of a layer.
inline constexpr unsigned kExecutionOrderStride = 32;
static_assert(kNumStages <= kExecutionOrderStride,
              "a new stage needs room in the execution order key");

/// Stages only the runtime's KV cache records (never a traced IR value):
/// `--stages all` leaves them out, since engines without a cache trace
/// (the GPU, the HF recorder) never write them.
inline constexpr bool isCacheStage(Stage s) {
  return s == Stage::KCache || s == Stage::VCache || s == Stage::KCacheRead ||
         s == Stage::VCacheRead;
}

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
    {"v_proj", Category::AttnKernelInputs},
    {"router_logits", Category::RoutingSelection},
    {"expert_selection", Category::RoutingSelection},
    {"moe_out", Category::MlpOutput},
    {"k_cache", Category::AttentionMechanism},
    {"v_cache", Category::AttentionMechanism},
    {"k_cache_read", Category::AttentionMechanism},
    {"v_cache_read", Category::AttentionMechanism},
};

/// The stages in execution order inside a layer (embed_out first, logits
/// last): v_proj follows k_pre_rope, as HF computes q, k, v, then RoPE;
/// attention writes the cache rows, then reads them; a mixture of experts
/// routes (router_logits, expert_selection), combines the experts
/// (moe_out), then adds any shared expert (mlp_out).
inline constexpr Stage kExecutionOrder[kNumStages] = {
    Stage::EmbedOut,     Stage::ResidualPreAttn,  Stage::AttnIn,
    Stage::QPreRope,     Stage::KPreRope,         Stage::VProj,
    Stage::QPostRope,    Stage::KPostRope,        Stage::KCache,
    Stage::VCache,       Stage::KCacheRead,       Stage::VCacheRead,
    Stage::AttnOut,      Stage::ResidualPostAttn, Stage::FfnNormIn,
    Stage::RouterLogits, Stage::ExpertSelection,  Stage::MoeOut,
    Stage::MlpOut,       Stage::ResidualPostMlp,  Stage::Logits,
};

/// The rank of `s` in kExecutionOrder.
inline constexpr unsigned executionRank(Stage s) {
  for (unsigned i = 0; i < kNumStages; ++i)
    if (kExecutionOrder[i] == s)
      return i;
  return kNumStages;
}

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
/// so traces of different pipelines line up. It is not an order: v_proj's
/// id is above logits'.
inline constexpr int64_t recordId(Stage s, int64_t layer) {
  int64_t v = static_cast<int64_t>(s);
  return layer * 16 + v % kRecordIdStride +
         (v / kRecordIdStride << kRecordIdPageShift);
}

/// recordId's inverse: the stage and layer of a record id the compiled model
/// passes to the runtime; nullopt for an id no stage has.
struct RecordKey {
  Stage stage;
  int64_t layer;
};
inline constexpr std::optional<RecordKey> decodeRecordId(int64_t id) {
  if (id < 0)
    return std::nullopt;
  int64_t page = id >> kRecordIdPageShift;
  int64_t rest = id & ((int64_t(1) << kRecordIdPageShift) - 1);
  int64_t stage = page * kRecordIdStride + rest % kRecordIdStride;
  if (stage >= kNumStages)
    return std::nullopt;
  return RecordKey{static_cast<Stage>(stage), rest / kRecordIdStride};
}

/// Execution-order key of a record group: embed_out first, then layer by layer
/// in execution order (kExecutionOrder), then logits.
inline constexpr int64_t executionOrderKey(Stage s, int64_t layer) {
  return layer * kExecutionOrderStride + executionRank(s);
}

} // namespace greta::rt

#endif // GRETA_RT_STAGES_H
