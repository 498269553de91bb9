//===- Generation.h - Where two runs' generated tokens part -----*- C++ -*-===//
//
// Generated tokens are compared before any tensor: the first step at which
// two runs (--generate) chose different tokens is a divergence of its own,
// and the tensors that can explain it lie at or before the position whose
// logits chose the token.
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_DIFF_GENERATION_H
#define GRETA_DIFF_GENERATION_H

#include "greta/rt/Trace.h"

#include <cstdint>
#include <optional>
#include <string>

namespace greta::diff {

struct GenerationDivergence {
  int64_t step = 0;     // 0: the first generated token
  int64_t position = 0; // the position whose logits chose it
  int64_t baseToken = 0, testToken = 0;
};

/// The first step at which BASE and TEST generated different tokens; nullopt
/// when either did not generate, or one's tokens are a prefix of the
/// other's (a shorter --generate). Both must have the same prompt length
/// (identity checks the prompt).
std::optional<GenerationDivergence> compareGeneration(const rt::Manifest &base,
                                                      const rt::Manifest &test);

/// "generation diverges at step s (position p): token A vs token B".
std::string describe(const GenerationDivergence &g);

} // namespace greta::diff

#endif // GRETA_DIFF_GENERATION_H
