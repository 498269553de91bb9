//===- FilterPromptTest.cpp - Filter specs and prompt files -----*- C++ -*-===//
#include "greta/rt/Filter.h"
#include "greta/rt/Prompt.h"

#include "TestUtil.h"

#include <gtest/gtest.h>

using namespace greta::rt;

namespace {

TEST(Filter, DefaultsSelectEverything) {
  Filter f;
  EXPECT_TRUE(f.selects(Stage::Logits, 11));
  EXPECT_TRUE(f.selectsPosition(0, 5));
  EXPECT_EQ(f.str(), "layers=all stages=all positions=all payload=compiled");
}

TEST(Filter, GoodSpecs) {
  Filter f;
  std::string err;
  ASSERT_TRUE(Filter::parseLayers("0,1, 4-6", f, err)) << err;
  EXPECT_EQ(*f.layers, (std::set<int64_t>{0, 1, 4, 5, 6}));
  EXPECT_TRUE(f.selects(Stage::AttnOut, 5));
  EXPECT_FALSE(f.selects(Stage::AttnOut, 3));
  ASSERT_TRUE(Filter::parseStages("attn_out,logits", f, err)) << err;
  EXPECT_TRUE(f.selects(Stage::AttnOut, 0));
  EXPECT_FALSE(f.selects(Stage::MlpOut, 0));
  ASSERT_TRUE(Filter::parsePositions("826,700-702,last", f, err)) << err;
  EXPECT_TRUE(f.selectsPosition(826, 1653));
  EXPECT_TRUE(f.selectsPosition(701, 1653));
  EXPECT_FALSE(f.selectsPosition(703, 1653));
  EXPECT_TRUE(f.selectsPosition(1652, 1653));
  EXPECT_FALSE(f.selectsPosition(1651, 1653));
  ASSERT_TRUE(Filter::parsePayload("stats", f, err)) << err;
  EXPECT_EQ(f.payload, Payload::Stats);
  EXPECT_EQ(f.str(), "layers=0,1,4,5,6 stages=attn_out,logits "
                     "positions=826,700-702,last payload=stats");
  ASSERT_TRUE(Filter::parsePositions("last", f, err));
  EXPECT_FALSE(f.positionRanges);
  EXPECT_TRUE(f.selectsPosition(4, 5));
  EXPECT_FALSE(f.selectsPosition(3, 5));
  ASSERT_TRUE(Filter::parsePositions("3,all", f, err));
  EXPECT_TRUE(f.selectsPosition(1, 5));
  ASSERT_TRUE(Filter::parseLayers("all", f, err));
  EXPECT_FALSE(f.layers);
  ASSERT_TRUE(Filter::parseStages("all", f, err));
  EXPECT_FALSE(f.stages);
}

TEST(Filter, BadSpecsNameTheItem) {
  Filter f;
  std::string err;
  EXPECT_FALSE(Filter::parseLayers("0,x", f, err));
  EXPECT_EQ(err, "bad layer 'x' in '0,x': expected N, A-B, or all");
  EXPECT_FALSE(Filter::parseLayers("5-2", f, err));
  EXPECT_NE(err.find("'5-2'"), std::string::npos) << err;
  EXPECT_NE(err.find("start is after end"), std::string::npos) << err;
  EXPECT_FALSE(Filter::parseLayers("-1", f, err));
  EXPECT_NE(err.find("'-1'"), std::string::npos) << err;
  EXPECT_FALSE(Filter::parseLayers("1,,2", f, err));
  EXPECT_NE(err.find("''"), std::string::npos) << err;
  EXPECT_FALSE(Filter::parseStages("attn_out,atn_in", f, err));
  EXPECT_NE(err.find("unknown stage 'atn_in'"), std::string::npos) << err;
  EXPECT_NE(err.find("attn_in"), std::string::npos) << err;
  EXPECT_FALSE(Filter::parsePositions("826,lst", f, err));
  EXPECT_NE(err.find("bad position 'lst'"), std::string::npos) << err;
  EXPECT_FALSE(Filter::parsePositions("1-2-3", f, err));
  EXPECT_NE(err.find("'1-2-3'"), std::string::npos) << err;
  EXPECT_FALSE(Filter::parsePayload("values", f, err));
  EXPECT_EQ(err, "unknown payload 'values': expected hash, stats or full");
  EXPECT_FALSE(Filter::parseLayers("99999999999999999999", f, err));
}

TEST(Prompt, JsonAndLines) {
  TempDir tmp;
  std::string err;
  auto ids =
      readPrompt(writeFile(tmp.path() + "/a.json", "[1, 2,\n 30000]\n"), err);
  ASSERT_TRUE(ids) << err;
  EXPECT_EQ(*ids, (std::vector<int64_t>{1, 2, 30000}));
  ids = readPrompt(writeFile(tmp.path() + "/b.txt", "5\n\n 6 \r\n7"), err);
  ASSERT_TRUE(ids) << err;
  EXPECT_EQ(*ids, (std::vector<int64_t>{5, 6, 7}));
}

TEST(Prompt, ErrorsNameFileAndLine) {
  TempDir tmp;
  std::string err;
  std::string p = tmp.path() + "/p.json";
  auto expectErr = [&](const std::string &text, const std::string &want) {
    writeFile(p, text);
    EXPECT_FALSE(readPrompt(p, err)) << text;
    EXPECT_NE(err.find(want), std::string::npos)
        << "'" << want << "' not in: " << err;
  };
  expectErr("[1,\n2,\n-3]", p + ":3: token 2 (-3) is negative");
  expectErr("[1,\n2.5]", p + ":2: token 1 (2.5) is not an integer");
  expectErr("[1,\n\"a\"]", p + ":2: token 1 (\"a\") is not an integer");
  expectErr("[1,\n2,\n", p + ":3: invalid JSON");
  expectErr("[]", p + ": the prompt holds no token ids");
  expectErr("1\n2\n-3\n", p + ":3: '-3' is negative");
  expectErr("1\n2 3\n", p + ":2: '2 3' is not a token id");
  expectErr("1\nabc\n", p + ":2: 'abc' is not a token id");
  expectErr("99999999999999999999999\n", p + ":1:");
  expectErr("\n\n", p + ": the prompt holds no token ids");
  EXPECT_FALSE(readPrompt(tmp.path() + "/missing.json", err));
  EXPECT_NE(err.find("missing.json: cannot open"), std::string::npos) << err;
}

} // namespace
