//===- GenerateTest.cpp - Chunk schedules, decode steps, token choice ----===//
#include "greta/rt/Generate.h"
#include "TestUtil.h"
#include "greta/rt/CInterface.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <functional>
#include <limits>
#include <map>

using namespace greta::rt;

namespace {

TEST(Generate, ChunkScheduleParsesAllSizesAndNamesTheBadItem) {
  std::vector<int64_t> s;
  std::string err;
  for (const char *whole : {"", "all", "0"}) {
    ASSERT_TRUE(parseChunkSchedule(whole, s, err)) << whole;
    EXPECT_TRUE(s.empty());
  }
  ASSERT_TRUE(parseChunkSchedule("60,1", s, err));
  EXPECT_EQ(s, (std::vector<int64_t>{60, 1}));
  ASSERT_TRUE(parseChunkSchedule("512,512,1", s, err));
  EXPECT_EQ(s, (std::vector<int64_t>{512, 512, 1}));
  for (const char *bad : {"60,", "60,0", "-1", "x", "60,1a", "1,,2"}) {
    EXPECT_FALSE(parseChunkSchedule(bad, s, err)) << bad;
    EXPECT_NE(err.find(std::string("in '") + bad + "'"), std::string::npos)
        << err;
  }
}

TEST(Generate, ChunkCallsRepeatTheLastSizeAndDecodeFrom) {
  using Calls = std::vector<std::pair<int64_t, int64_t>>;
  EXPECT_EQ(chunkCalls({}, 5, -1), (Calls{{0, 5}}));
  EXPECT_EQ(chunkCalls({2}, 5, -1), (Calls{{0, 2}, {2, 4}, {4, 5}}));
  EXPECT_EQ(chunkCalls({3, 1}, 5, -1), (Calls{{0, 3}, {3, 4}, {4, 5}}));
  EXPECT_EQ(chunkCalls({2, 2, 1}, 6, -1),
            (Calls{{0, 2}, {2, 4}, {4, 5}, {5, 6}}));
  // --generate-from=3: the prefill's schedule up to 3, then one a call.
  EXPECT_EQ(chunkCalls({}, 5, 3), (Calls{{0, 3}, {3, 4}, {4, 5}}));
  EXPECT_EQ(chunkCalls({2}, 5, 3), (Calls{{0, 2}, {2, 3}, {3, 4}, {4, 5}}));
  EXPECT_EQ(chunkCalls({}, 3, 0), (Calls{{0, 1}, {1, 2}, {2, 3}}));
}

TEST(Generate, DecodeFlagsAreCheckedNamingTheFlag) {
  std::vector<int64_t> schedule;
  Generation g;
  Session::KVFault fault;
  std::string err;
  auto parse = [&](DecodeFlags f) {
    err.clear();
    return parseDecodeFlags(f, schedule, g, fault, err);
  };
  DecodeFlags f;
  f.chunk = "60,1";
  f.generate = 8;
  f.sample = true;
  f.seed = 3;
  f.topP = 0.9;
  f.kvFault = "3:41";
  ASSERT_TRUE(parse(f)) << err;
  EXPECT_EQ(schedule, (std::vector<int64_t>{60, 1}));
  EXPECT_EQ(g.maxNewTokens, 8);
  EXPECT_TRUE(g.sampling.sample);
  EXPECT_EQ(fault.layer, 3);
  EXPECT_EQ(fault.fromPosition, 41);
  EXPECT_EQ(generationText(g.sampling),
            "sample seed=3 temperature=1 top_p=0.9");
  std::vector<std::string> args;
  appendArgv(f, args);
  EXPECT_EQ(args, (std::vector<std::string>{"--chunk", "60,1", "--generate",
                                            "8", "--sample", "--seed", "3",
                                            "--top-p", "0.90000000000000002",
                                            "--kv-fault", "3:41"}));
  struct Bad {
    std::function<void(DecodeFlags &)> set;
    const char *flag;
  } bad[] = {{[](DecodeFlags &d) { d.chunk = "60,x"; }, "--chunk"},
             {[](DecodeFlags &d) { d.generate = -1; }, "--generate must"},
             {[](DecodeFlags &d) { d.generateFrom = -2; }, "--generate-from"},
             {[](DecodeFlags &d) { d.temperature = 0; }, "--temperature"},
             {[](DecodeFlags &d) { d.topP = 1.5; }, "--top-p"},
             {[](DecodeFlags &d) { d.sample = false; }, "add --sample"},
             {[](DecodeFlags &d) { d.kvFault = "3"; }, "--kv-fault"},
             {[](DecodeFlags &d) { d.kvFault = "3:0"; }, "--kv-fault"}};
  for (const Bad &b : bad) {
    DecodeFlags d = f;
    b.set(d);
    EXPECT_FALSE(parse(d)) << b.flag;
    EXPECT_NE(err.find(b.flag), std::string::npos) << err;
  }
  DecodeFlags noGen;
  noGen.sample = true;
  EXPECT_FALSE(parse(noGen));
  EXPECT_EQ(err, "--sample applies to --generate N");
}

TEST(Generate, TheGpuRefusesOnlyWhatItCannotDecode) {
  std::string err;
  DecodeFlags f;
  EXPECT_TRUE(checkGpuDecodeFlags(f, err)) << err;
  f.chunk = "60,1";
  f.generate = 4;
  f.generateFrom = 3;
  f.traceCacheReads = true;
  EXPECT_TRUE(checkGpuDecodeFlags(f, err)) << err;
  f.chunk = "60,x";
  EXPECT_FALSE(checkGpuDecodeFlags(f, err));
  EXPECT_EQ(err.rfind("--chunk: bad chunk size 'x'", 0), 0u) << err;
  f.chunk = "";
  f.kvFault = "1:3";
  EXPECT_FALSE(checkGpuDecodeFlags(f, err));
  // The error names the flag and the GPU's two planted variants.
  EXPECT_EQ(err.rfind("--kv-fault ", 0), 0u) << err;
  EXPECT_NE(err.find("paged_attention=page_boundary_bug"), std::string::npos);
  EXPECT_NE(err.find("paged_kv_append=stale_page_bug"), std::string::npos);
}

TEST(Generate, KvBlockSizeMustBePositive) {
  std::vector<int64_t> schedule;
  Generation g;
  Session::KVFault fault;
  std::string err;
  DecodeFlags f;
  EXPECT_EQ(f.kvBlockSize, 16);
  for (int64_t bad : {0, -3}) {
    f.kvBlockSize = bad;
    EXPECT_FALSE(parseDecodeFlags(f, schedule, g, fault, err));
    EXPECT_EQ(err, "--kv-block-size must be a positive number of positions "
                   "per KV cache page, got " +
                       std::to_string(bad));
  }
  f.kvBlockSize = 7;
  EXPECT_TRUE(parseDecodeFlags(f, schedule, g, fault, err)) << err;
  std::vector<std::string> argv;
  appendArgv(f, argv);
  EXPECT_EQ(argv, (std::vector<std::string>{"--kv-block-size", "7"}));
}

TEST(Generate, OneDecodeLoopForEveryForwardCall) {
  // A fake forward: logits favour token (begin + len) % 4, so greedy
  // decoding feeds back the position it is at.
  std::vector<std::pair<int64_t, int64_t>> calls;
  ForwardCall call = [&](const std::vector<int64_t> &ids, int64_t begin,
                         LastLogits &logits, std::string &) {
    calls.push_back({begin, static_cast<int64_t>(ids.size())});
    logits.values.assign(4, 0.0);
    logits.values[(begin + ids.size()) % 4] = 1.0;
    return true;
  };
  Generation g;
  g.maxNewTokens = 3;
  g.eos = {2};
  LastLogits logits;
  Generated out;
  std::string err;
  ASSERT_TRUE(runDecode({5, 6, 7, 8, 9}, {2, 1}, g, nullptr, call, logits,
                        out, err))
      << err;
  // Prefill 2,1,1,1 then decode at 5 (chose 1), 6 chose 2 = EOS: stop.
  EXPECT_EQ(calls, (std::vector<std::pair<int64_t, int64_t>>{
                       {0, 2}, {2, 1}, {3, 1}, {4, 1}, {5, 1}}));
  EXPECT_EQ(out.ids, (std::vector<int64_t>{1, 2}));
  EXPECT_TRUE(out.stoppedAtEos);
  EXPECT_EQ(decodePositions(5, 3), 7);
  EXPECT_EQ(decodePositions(5, 0), 5);
}

TEST(Generate, GreedyIsTheBestLogitTiesToTheLowerIdNeverNaN) {
  std::mt19937_64 rng(0);
  double nan = std::numeric_limits<double>::quiet_NaN();
  Sampling greedy;
  EXPECT_EQ(chooseToken({0.5, 2.0, 2.0, -1}, greedy, rng), 1);
  EXPECT_EQ(chooseToken({nan, 1.0, nan, 3.0}, greedy, rng), 3);
  EXPECT_EQ(chooseToken({nan, nan}, greedy, rng), 0);
}

TEST(Generate, SamplingIsSeededAndTopPCutsTheTail) {
  std::vector<double> logits{1.0, 0.5, 0.0, -0.5, -1.0, 0.25};
  Sampling s;
  s.sample = true;
  s.seed = 7;
  auto draw = [&](const Sampling &sampling, int n) {
    std::mt19937_64 rng(sampling.seed);
    std::vector<int64_t> ids;
    for (int i = 0; i < n; ++i)
      ids.push_back(chooseToken(logits, sampling, rng));
    return ids;
  };
  EXPECT_EQ(draw(s, 64), draw(s, 64));
  std::map<int64_t, int> seen;
  for (int64_t id : draw(s, 2000))
    ++seen[id];
  EXPECT_EQ(seen.size(), logits.size()); // every token can come
  EXPECT_GT(seen[0], seen[4]);
  // A tiny top-p keeps only the most likely token: greedy.
  s.topP = 1e-9;
  for (int64_t id : draw(s, 50))
    EXPECT_EQ(id, 0);
  // top-p 0.5 keeps tokens 0 and 1 (probabilities 0.36 + 0.22).
  s.topP = 0.5;
  std::map<int64_t, int> nucleus;
  for (int64_t id : draw(s, 500))
    ++nucleus[id];
  EXPECT_EQ(nucleus.size(), 2u);
  EXPECT_TRUE(nucleus.count(0) && nucleus.count(1));
  // A low temperature is nearly greedy; another seed, other draws.
  s.topP = 1.0;
  s.temperature = 1e-3;
  for (int64_t id : draw(s, 50))
    EXPECT_EQ(id, 0);
  s.temperature = 1.0;
  Sampling other = s;
  other.seed = 8;
  EXPECT_NE(draw(s, 64), draw(other, 64));
}

// A stand-in for a compiled model: the logits of a row put 1 on token
// (id + position) % vocab, and every call's positions are remembered.
constexpr int64_t kVocab = 11;
std::vector<std::vector<int64_t>> seenPositions, seenIds;
void fakeForward(GRETA_MEMREF(float, 2) * out, GRETA_MEMREF(int64_t, 1) * ids,
                 GRETA_MEMREF(int64_t, 1) * pos) {
  int64_t n = ids->sizes[0];
  float *data = static_cast<float *>(calloc(n * kVocab, sizeof(float)));
  std::vector<int64_t> p, i;
  for (int64_t r = 0; r < n; ++r) {
    int64_t id = ids->data[ids->offset + r], at = pos->data[pos->offset + r];
    data[r * kVocab + (id + at) % kVocab] = 1;
    p.push_back(at);
    i.push_back(id);
  }
  seenPositions.push_back(p);
  seenIds.push_back(i);
  *out = {data, data, 0, {n, kVocab}, {kVocab, 1}};
}

struct GenerateRun : ::testing::Test {
  TempDir dir;
  std::unique_ptr<SafeTensors> st;
  std::unique_ptr<Session> s;
  void SetUp() override {
    std::string err, path = dir.path() + "/w.safetensors";
    ASSERT_TRUE(writeSafeTensors(path, {}, DType::F32, err)) << err;
    st = SafeTensors::open(path, err);
    s = Session::create(*st, {}, DType::F32, err);
    ASSERT_TRUE(s) << err;
    seenPositions.clear();
    seenIds.clear();
  }
  bool run(const std::vector<int64_t> &schedule, const Generation &g,
           Generated &out, int64_t &calls, std::string &err) {
    LastLogits logits;
    calls = 0;
    return runCpu(reinterpret_cast<void *>(&fakeForward), *s, {3, 1, 4, 1, 5},
                  schedule, g, "", nullptr, logits, calls, out, err);
  }
};

TEST_F(GenerateRun, DecodeStepsFeedTheChosenTokenAtItsTruePosition) {
  Generation g;
  g.maxNewTokens = 4;
  Generated out;
  int64_t calls;
  std::string err;
  ASSERT_TRUE(run({2}, g, out, calls, err)) << err;
  // Prefill [0,2) [2,4) [4,5); the token after position p is (id + p) % 11.
  EXPECT_EQ(out.ids, (std::vector<int64_t>{9, 3, 9, 5}));
  EXPECT_EQ(calls, 3 + 3); // the 4th token is chosen, not fed
  EXPECT_EQ(seenPositions, (std::vector<std::vector<int64_t>>{
                               {0, 1}, {2, 3}, {4}, {5}, {6}, {7}}));
  EXPECT_EQ(seenIds.back(), (std::vector<int64_t>{9}));
  EXPECT_FALSE(out.stoppedAtEos);
}

TEST_F(GenerateRun, StopsAtEosUnlessIgnored) {
  Generation g;
  g.maxNewTokens = 4;
  g.eos = {3};
  Generated out;
  int64_t calls;
  std::string err;
  ASSERT_TRUE(run({}, g, out, calls, err)) << err;
  EXPECT_EQ(out.ids, (std::vector<int64_t>{9, 3}));
  EXPECT_TRUE(out.stoppedAtEos);
  EXPECT_EQ(calls, 2);
  g.ignoreEos = true;
  Generated all;
  ASSERT_TRUE(run({}, g, all, calls, err)) << err;
  EXPECT_EQ(all.ids, (std::vector<int64_t>{9, 3, 9, 5}));
}

TEST_F(GenerateRun, GenerateFromDecodesThePromptsOwnIds) {
  Generation g;
  g.decodeFrom = 2;
  Generated out;
  int64_t calls;
  std::string err;
  ASSERT_TRUE(run({}, g, out, calls, err)) << err;
  EXPECT_TRUE(out.ids.empty());
  EXPECT_EQ(seenIds,
            (std::vector<std::vector<int64_t>>{{3, 1}, {4}, {1}, {5}}));
}

} // namespace
