//===- KVStagesTest.cpp - When a bisection traces k_cache and v_cache -----===//
//
// runtime/bisect/Config.cpp tracesKVCache: the KV-cache stages are traced
// when a side goes through the cache in several calls and every side writes
// them: the CPU always, the GPU (or an --so object, which may be a GPU one)
// only on its paged path, a run of several calls.
//
//===----------------------------------------------------------------------===//
#include "BisectInternal.h"

#include <gtest/gtest.h>

using namespace greta::bisect;

namespace {
bool traces(std::vector<std::string> base, std::vector<std::string> test) {
  Options o;
  o.base.flags = std::move(base);
  o.test.flags = std::move(test);
  return tracesKVCache(o);
}
} // namespace

TEST(KVStages, CpuSidesInSeveralCalls) {
  EXPECT_FALSE(traces({}, {}));
  EXPECT_TRUE(traces({}, {"--generate-from=30"}));
  EXPECT_TRUE(traces({"--generate=1"}, {"--generate=1"}));
}

TEST(KVStages, GpuSidesOnlyOnThePagedPath) {
  EXPECT_TRUE(traces({"--backend=gpu", "--generate-from=10"},
                     {"--backend=gpu", "--generate-from=10",
                      "--kernel=paged_kv_append=stale_page_bug"}));
  EXPECT_TRUE(traces({"--backend=gpu", "--generate=16"},
                     {"--backend=gpu", "--chunk=20"}));
  // A single-shot GPU side (one call) keeps the contiguous cache: no
  // k_cache records to compare.
  EXPECT_FALSE(traces({"--backend=gpu"}, {"--generate-from=10"}));
  EXPECT_FALSE(traces({"--backend=gpu", "--generate=1"}, {"--generate=4"}));
  EXPECT_TRUE(traces({"--so=a.so", "--generate-from=10"},
                     {"--so=b.so", "--generate-from=10"}));
  EXPECT_FALSE(traces({"--so=a.so"}, {"--so=b.so", "--generate-from=10"}));
}
