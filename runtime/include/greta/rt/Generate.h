//===- Generate.h - Chunk schedules, decode steps and token choice -*- C++
//-*-===//
//
// What a run does after (and while) it prefills: the --chunk schedule of
// forward calls over the prompt (`512,512,1`; --generate-from=P is P then
// one token a call), then --generate N decode steps through the KV cache,
// each choosing the next token greedily or by sampling (--sample --seed
// --temperature --top-p) and stopping at EOS unless --ignore-eos. LLVM-free
// and shared by every CPU runner.
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_RT_GENERATE_H
#define GRETA_RT_GENERATE_H

#include "greta/rt/Run.h"
#include "greta/rt/Session.h"

#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace greta::rt {

/// --chunk: "all" (or "" or "0"): the whole prompt in one call; "N": calls
/// of N tokens; "A,B,...,Z": one call of each size in turn, then calls of
/// Z until the prompt ends ("60,1": a prefill of 60 tokens, then one token
/// a call, as a decode). Every size is positive; the error names the item.
bool parseChunkSchedule(const std::string &spec, std::vector<int64_t> &sizes,
                        std::string &error);

/// The forward calls [begin, end) over `n` prompt tokens: `sizes` as
/// parseChunkSchedule gives it (empty: one call), and from `decodeFrom`
/// (>= 0, --generate-from) on one token a call whatever the schedule says.
std::vector<std::pair<int64_t, int64_t>>
chunkCalls(const std::vector<int64_t> &sizes, int64_t n, int64_t decodeFrom);

/// How the next token is chosen from a logits row.
struct Sampling {
  bool sample = false;      // --sample; greedy otherwise
  uint64_t seed = 0;        // --seed
  double temperature = 1.0; // --temperature (> 0)
  double topP = 1.0;        // --top-p, in (0, 1]
};

/// The next token: greedy is the highest logit, ties to the lower id, NaN
/// never chosen (all NaN: id 0). Sampling: softmax(logits / temperature)
/// in double, the smallest set of most likely tokens whose probability
/// reaches topP (nucleus), then one draw of `rng` (53 bits, uniform) over
/// it: the same seed gives the same tokens on every machine.
int64_t chooseToken(const std::vector<double> &logits, const Sampling &sampling,
                    std::mt19937_64 &rng);

/// --generate N after the prompt.
struct Generation {
  int64_t maxNewTokens = 0; // --generate N (0: prefill only)
  int64_t decodeFrom = -1;  // --generate-from=P (-1: none)
  bool ignoreEos = false;   // --ignore-eos
  std::vector<int64_t> eos; // the ids that stop generation (tokenizer's)
  Sampling sampling;
};

/// What a generating run produced.
struct Generated {
  std::vector<int64_t> ids; // the new tokens, in order (an EOS included)
  bool stoppedAtEos = false;
};

/// The flags that differ from their defaults, as greta-run-aot spells them.
void appendArgv(const DecodeFlags &flags, std::vector<std::string> &args);

/// Checks the flags and resolves them: the --chunk schedule, the generation
/// (without its EOS ids, which come from the tokenizer) and the planted
/// --kv-fault. The error names the flag.
bool parseDecodeFlags(const DecodeFlags &flags, std::vector<int64_t> &schedule,
                      Generation &generation, Session::KVFault &kvFault,
                      std::string &error);

/// What the GPU runner refuses: --kv-fault (the CPU cache's planted fault;
/// the error names the GPU's two planted kernel variants instead); a bad
/// --chunk as parseChunkSchedule says.
bool checkGpuDecodeFlags(const DecodeFlags &flags, std::string &error);

/// "greedy" or "sample seed=S temperature=T top_p=P" (the manifest's
/// `generation`).
std::string generationText(const Sampling &sampling);

/// One forward call of `ids` at positions [begin, begin + ids.size()):
/// `logits` gets the last row's logits; false with the error.
using ForwardCall =
    std::function<bool(const std::vector<int64_t> &ids, int64_t begin,
                       LastLogits &logits, std::string &error)>;

/// The one decode loop of every runner: the prompt in `schedule`'s calls
/// (chunkCalls), then each new token in a call of its own at its true
/// position (prompt length + step), chosen from the previous call's last
/// logits, stopping at EOS unless generation.ignoreEos. `beforeCall` (if
/// set) gets the call's index and the prefill's call count.
bool runDecode(const std::vector<int64_t> &prompt,
               const std::vector<int64_t> &schedule,
               const Generation &generation,
               const std::function<void(int64_t, int64_t)> &beforeCall,
               const ForwardCall &call, LastLogits &logits,
               Generated &generated, std::string &error);

/// The positions a run fills in the KV cache: the prompt's and those of
/// the fed generated tokens (the last one is chosen, not fed).
inline int64_t decodePositions(int64_t promptTokens, int64_t generate) {
  return promptTokens + (generate > 1 ? generate - 1 : 0);
}

/// The CPU run of `prompt` through `session` (current, holding the trace):
/// runDecode with the CPU's forward call. `forward` is
/// `_mlir_ciface_forward` computing in the session's dtype; `beforeCall`
/// (if set) gets the call's index and the prefill's call count. Fills the
/// last call's last logits, the calls and the generated ids; false with
/// the error on a failed call.
bool runCpu(void *forward, Session &session, const std::vector<int64_t> &prompt,
            const std::vector<int64_t> &schedule, const Generation &generation,
            const std::string &traceDir,
            const std::function<void(int64_t, int64_t)> &beforeCall,
            LastLogits &logits, int64_t &calls, Generated &generated,
            std::string &error);

/// A run's decoding, resolved from its flags and prompt.
struct DecodePlan {
  std::vector<int64_t> schedule;
  Generation generation;
  Session::KVFault kvFault;
};
/// parseDecodeFlags, the EOS ids of the prompt's tokenizer, and the
/// checks against the prompt: --generate-from within it, the prompt plus
/// the generated tokens within `maxPositions` (the model's limit, if
/// known). The error names the flag.
bool planDecode(const RunOptions &options, const Prompt &prompt,
                std::optional<int64_t> maxPositions, DecodePlan &plan,
                std::string &error);
/// The manifest of a generating run says so before the run (generated_ids
/// [] until the writer's finish, and how tokens are chosen).
void recordGeneration(const DecodePlan &plan, Manifest &manifest);
/// runCpu with the plan, the session set up for it (--trace-cache-reads,
/// --kv-fault), the result's logits, calls and generated tokens filled and
/// the tokens handed to `writer` (if any) for its manifest.
bool runCpuPlan(void *forward, Session &session, const RunOptions &options,
                const std::vector<int64_t> &prompt, const DecodePlan &plan,
                const std::function<void(int64_t, int64_t)> &beforeCall,
                RunResult &result, TraceWriter *writer, std::string &error);

} // namespace greta::rt

#endif // GRETA_RT_GENERATE_H
