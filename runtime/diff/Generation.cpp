//===- Generation.cpp - Where two runs' generated tokens part ------------===//
#include "greta/diff/Generation.h"

#include <algorithm>

using namespace greta;
using namespace greta::diff;

std::optional<GenerationDivergence>
greta::diff::compareGeneration(const rt::Manifest &base,
                               const rt::Manifest &test) {
  if (!base.generatedIds || !test.generatedIds ||
      base.tokenCount != test.tokenCount)
    return std::nullopt;
  const std::vector<int64_t> &b = *base.generatedIds, &t = *test.generatedIds;
  size_t n = std::min(b.size(), t.size());
  for (size_t s = 0; s < n; ++s)
    if (b[s] != t[s])
      return GenerationDivergence{static_cast<int64_t>(s),
                                  base.tokenCount - 1 + static_cast<int64_t>(s),
                                  b[s], t[s]};
  return std::nullopt;
}

std::string greta::diff::describe(const GenerationDivergence &g) {
  return "generation diverges at step " + std::to_string(g.step) +
         " (position " + std::to_string(g.position) + "): token " +
         std::to_string(g.baseToken) + " vs token " +
         std::to_string(g.testToken);
}
