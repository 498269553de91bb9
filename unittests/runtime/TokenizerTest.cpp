//===- TokenizerTest.cpp - Tokenizer pieces: UTF-8, patterns, BPE -*- C++
//-*-===//
//
// The pieces under the tokenizers, each against what it must do. The whole
// tokenizers are checked against the JavaScript reference by lit
// (test/tokenizer).
//
//===----------------------------------------------------------------------===//
#include "greta/rt/Tokenizer.h"
#include "greta/rt/Prompt.h"

#include "TestUtil.h"
#include "TokenizerInternal.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <map>

using namespace greta::rt;
using namespace greta::rt::tok;
using json = nlohmann::json;

namespace {

TEST(TokenizerUtf8, ChecksAndNamesTheOffset) {
  std::string err;
  EXPECT_TRUE(checkUtf8(
      "plain ASCII, then caf\xC3\xA9 \xE4\xB8\xAD \xF0\x9F\x98\x80", err));
  struct Bad {
    std::string text;
    size_t offset;
  } bad[] = {{"ab\xFF", 2},
             {"\x80", 0},
             {"x\xC0\x80", 1},        // overlong
             {"\xED\xA0\x80", 0},     // a surrogate
             {"\xF4\x90\x80\x80", 0}, // above U+10FFFF
             {"12345678\xE4\xB8", 8}, // cut short, after the 8-byte fast path
             {"\xC3(", 0}};
  for (const Bad &b : bad) {
    EXPECT_FALSE(checkUtf8(b.text, err));
    EXPECT_NE(err.find("byte offset " + std::to_string(b.offset) + " "),
              std::string::npos)
        << err;
  }
}

TEST(TokenizerUtf8, LossyReplacesMaximalSubparts) {
  const std::string fffd = "\xEF\xBF\xBD";
  // A cut-short sequence is one U+FFFD; bytes that can start nothing are
  // one each (the WHATWG decoder's rule, and Rust's from_utf8_lossy).
  EXPECT_EQ(lossyUtf8("\xF0\x9F\x98"
                      "a"),
            fffd + "a");
  EXPECT_EQ(lossyUtf8("\xC0\x80"), fffd + fffd);
  EXPECT_EQ(lossyUtf8("\xED\xA0\x80"), fffd + fffd + fffd);
  EXPECT_EQ(lossyUtf8("ok \xE4\xB8\xAD"), "ok \xE4\xB8\xAD");
}

TEST(TokenizerUtf8, QuotesTokensForReports) {
  EXPECT_EQ(quoteToken(" the"), "' the'");
  EXPECT_EQ(quoteToken("\n\t'\\"), "'\\n\\t\\'\\\\'");
  EXPECT_EQ(quoteToken("\xE3"), "'\\xe3'");
  EXPECT_EQ(quoteToken("\xE4\xB8\xAD\x01"), "'\xE4\xB8\xAD\\x01'");
}

TEST(TokenizerUtf8, ByteTableIsGpt2s) {
  EXPECT_EQ(byteToCodePoint('a'), U'a');
  EXPECT_EQ(byteToCodePoint(' '), U'\u0120');  // "Ġ"
  EXPECT_EQ(byteToCodePoint('\n'), U'\u010A'); // "Ċ"
  for (int b = 0; b < 256; ++b)
    EXPECT_EQ(codePointToByte(byteToCodePoint(static_cast<uint8_t>(b))), b);
  EXPECT_EQ(codePointToByte(U'\u4E2D'), -1);
}

TEST(TokenizerMap, SetGetOverwriteGrow) {
  StringMap m;
  EXPECT_EQ(m.get("x"), StringMap::kMissing);
  for (uint32_t i = 0; i < 5000; ++i)
    m.set("key" + std::to_string(i), i);
  m.set("key7", 70);
  m.set("", 9);
  EXPECT_EQ(m.size(), 5001u);
  EXPECT_EQ(m.get("key4999"), 4999u);
  EXPECT_EQ(m.get("key7"), 70u);
  EXPECT_EQ(m.get(""), 9u);
  EXPECT_EQ(m.get("key5000"), StringMap::kMissing);
}

TEST(TokenizerTrie, LeftmostLongest) {
  TokenTrie t;
  t.insert("<s>", 0);
  t.insert("<s>x", 1);
  t.insert("s", 2);
  std::vector<Section> out;
  t.split("a<s>xs<s", out);
  std::vector<std::pair<std::string, int>> got;
  for (const Section &s : out)
    got.push_back({std::string(s.text), s.token});
  // "<s>x" is longer than "<s>"; the "s" inside "<s" is still a token.
  std::vector<std::pair<std::string, int>> want = {
      {"a", -1}, {"<s>x", 1}, {"s", 2}, {"<", -1}, {"s", 2}};
  EXPECT_EQ(got, want);
}

TEST(TokenizerPattern, OnigurumaEscapesRewritten) {
  std::string out, err;
  ASSERT_TRUE(translateOnigurumaPattern(
      "[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\s+(?!\\S)|\\d{,3}|(?i:'s)", out, err))
      << err;
  EXPECT_EQ(out, "[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{White_Space}+(?!\\P{"
                 "White_Space})|\\p{Nd}{0,3}|(?i:'s)");
  ASSERT_TRUE(translateOnigurumaPattern("\\v\\u2581\\.", out, err));
  EXPECT_EQ(out, "\\x0B\\x{2581}\\.");
}

TEST(TokenizerPattern, ConstructsReadDifferentlyAreRefused) {
  std::string out, err;
  for (const char *p : {"\\w+", "\\bx", "[[:alpha:]]", "[a-z&&[^q]]", "[a[bc]]",
                        "\\Gx", "(?m:.)", "\\h", "x\\"}) {
    EXPECT_FALSE(translateOnigurumaPattern(p, out, err)) << p;
    EXPECT_NE(err.find("is not supported"), std::string::npos) << err;
  }
}

TEST(TokenizerPattern, FinderSkipsEmptyMatchesAndLongRuns) {
  std::string err;
  auto re = Pattern::regex("\\s+(?!\\S)|\\s+|x*", err);
  ASSERT_TRUE(re) << err;
  // Two million spaces then a letter: one match up to the last space, which
  // the lookahead leaves to the second match (however deep the backtrack).
  std::string text(2000000, ' ');
  text += "y";
  Pattern::Finder f(*re);
  size_t b, e;
  ASSERT_EQ(f.next(text, 0, b, e), 1) << f.error();
  EXPECT_EQ(b, 0u);
  EXPECT_EQ(e, 1999999u);
  ASSERT_EQ(f.next(text, e, b, e), 1);
  EXPECT_EQ(e - b, 1u);
  // "x*" matches empty before "y": skipped, and nothing follows.
  EXPECT_EQ(f.next(text, e, b, e), 0);

  // A repeated group backtracks through a frame per repetition: more than
  // the default 32 KiB of JIT stack, which must grow, not end the matches.
  auto groups = Pattern::regex("(?:ab|cd)+", err);
  ASSERT_TRUE(groups) << err;
  std::string pairs;
  for (int i = 0; i < 200000; ++i)
    pairs += i % 3 ? "ab" : "cd";
  Pattern::Finder g(*groups);
  ASSERT_EQ(g.next(pairs, 0, b, e), 1) << g.error();
  EXPECT_EQ(e - b, pairs.size());
}

/// The BPE rule by its definition: merge the lowest-ranked adjacent pair,
/// leftmost first, until none has a rank.
std::vector<std::string>
naiveBpe(std::vector<std::string> word,
         const std::map<std::pair<std::string, std::string>, size_t> &ranks) {
  for (;;) {
    size_t best = word.size();
    size_t bestRank = SIZE_MAX;
    for (size_t i = 0; i + 1 < word.size(); ++i) {
      auto it = ranks.find({word[i], word[i + 1]});
      if (it != ranks.end() && it->second < bestRank) {
        bestRank = it->second;
        best = i;
      }
    }
    if (best == word.size())
      return word;
    word[best] += word[best + 1];
    word.erase(word.begin() + best + 1);
  }
}

TEST(TokenizerBpe, MatchesTheDefinitionOnShortAndLongWords) {
  // Merges over {a, b, c} in a fixed pseudo-random order: ties and
  // overlapping pairs ("a a" in "aaa") are common.
  BpeConfig c;
  std::map<std::string, int64_t> vocab;
  std::map<std::pair<std::string, std::string>, size_t> ranks;
  auto add = [&](const std::string &t) {
    if (!vocab.count(t))
      vocab[t] = static_cast<int64_t>(vocab.size());
  };
  for (const char *s : {"a", "b", "c"})
    add(s);
  std::vector<std::string> tokens = {"a", "b", "c"};
  Rng rng(7);
  while (c.merges.size() < 60) {
    std::string l = tokens[rng.u32() % tokens.size()];
    std::string r = tokens[rng.u32() % tokens.size()];
    if (ranks.count({l, r}) || (l + r).size() > 8)
      continue;
    ranks[{l, r}] = c.merges.size();
    c.merges.push_back({l, r});
    add(l + r);
    tokens.push_back(l + r);
  }
  for (auto &[t, id] : vocab)
    c.vocab.push_back({t, id});
  std::string error;
  auto model = BpeModel::create(c, error);
  ASSERT_TRUE(model) << error;
  // Lengths on both sides of the switch from scanning to a heap (64).
  for (size_t len : {1, 2, 3, 5, 17, 63, 64, 65, 66, 200, 1000}) {
    for (int rep = 0; rep < 20; ++rep) {
      std::string word;
      std::vector<std::string> chars;
      for (size_t i = 0; i < len; ++i) {
        char ch = "aab c"[rng.u32() % 5];
        ch = ch == ' ' ? 'c' : ch;
        word += ch;
        chars.push_back(std::string(1, ch));
      }
      std::vector<int64_t> ids;
      ASSERT_TRUE(model->encode(word, ids, error)) << error;
      std::vector<std::string> got;
      for (int64_t id : ids)
        got.push_back(*model->token(id));
      ASSERT_EQ(got, naiveBpe(chars, ranks)) << word;
      // The cache answers a second time with the same ids.
      std::vector<int64_t> again;
      ASSERT_TRUE(model->encode(word, again, error));
      EXPECT_EQ(again, ids);
    }
  }
}

TEST(TokenizerBpe, ByteFallbackUnkAndErrors) {
  BpeConfig c;
  c.vocab = {
      {"<unk>", 0}, {"a", 1}, {"<0xE4>", 2}, {"<0xB8>", 3}, {"<0xAD>", 4}};
  c.byteFallback = true;
  c.unkToken = "<unk>";
  c.fuseUnk = true;
  std::string error;
  auto model = BpeModel::create(c, error);
  ASSERT_TRUE(model) << error;
  std::vector<int64_t> ids;
  // 中 has all its bytes; é (C3 A9) has none: one unk for "éé" (fused).
  ASSERT_TRUE(model->encode("a\xE4\xB8\xAD\xC3\xA9\xC3\xA9"
                            "a",
                            ids, error));
  EXPECT_EQ(ids, (std::vector<int64_t>{1, 2, 3, 4, 0, 1}));

  c.unkToken.reset();
  model = BpeModel::create(c, error);
  ids.clear();
  EXPECT_FALSE(model->encode("a\xC3\xA9", ids, error));
  EXPECT_NE(error.find("no token for '\xC3\xA9'"), std::string::npos) << error;

  c.merges = {{"a", "zz"}};
  EXPECT_FALSE(BpeModel::create(c, error));
  EXPECT_EQ(error, "model.merges[0] 'a zz': 'zz' is not in the vocabulary");
}

/// A tokenizer.json around a small vocabulary, with `patch` merged in.
std::string writeTokenizer(const TempDir &dir, const json &patch) {
  json vocab = {{"<s>", 0}, {"a", 1}, {"b", 2}, {"\xC4\xA0", 3}, {"ab", 4}};
  json j = {
      {"version", "1.0"},
      {"added_tokens", json::array({{{"id", 0},
                                     {"content", "<s>"},
                                     {"special", true},
                                     {"normalized", false}}})},
      {"normalizer", nullptr},
      {"pre_tokenizer",
       {{"type", "ByteLevel"},
        {"add_prefix_space", false},
        {"use_regex", true}}},
      {"post_processor", nullptr},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model",
       {{"type", "BPE"}, {"vocab", vocab}, {"merges", json::array({"a b"})}}}};
  j.merge_patch(patch);
  return writeFile(dir.path() + "/tokenizer.json", j.dump());
}

TEST(TokenizerJson, ByteLevelEncodesAndDecodes) {
  TempDir dir;
  std::string path = writeTokenizer(dir, json::object());
  std::string error;
  auto t = Tokenizer::load(path, error);
  ASSERT_TRUE(t) << error;
  std::vector<int64_t> ids;
  ASSERT_TRUE(t->encode("ab<s>ab b", ids, error)) << error;
  EXPECT_EQ(ids, (std::vector<int64_t>{4, 0, 4, 3, 2}));
  std::string text;
  ASSERT_TRUE(t->decode(ids, text, error));
  EXPECT_EQ(text, "ab<s>ab b");
  ASSERT_TRUE(t->decode(ids, text, error, /*skipSpecialTokens=*/true));
  EXPECT_EQ(text, "abab b");
  EXPECT_EQ(t->tokenBytes(3), " ");
  EXPECT_FALSE(t->decode({5}, text, error));
  EXPECT_EQ(error, "token id 5 is not in the vocabulary (ids 0..4)");
  EXPECT_EQ(t->digest().size(), 64u);
  EXPECT_EQ(t->vocabSize(), 5);
}

TEST(TokenizerJson, UnsupportedFeaturesAreNamed) {
  struct Case {
    json patch;
    std::string message;
  } cases[] = {
      {{{"normalizer", {{"type", "Precompiled"}}}},
       "normalizer type 'Precompiled' is not supported"},
      {{{"pre_tokenizer",
         {{"type", "Split"},
          {"pattern", {{"Regex", "\\w+"}}},
          {"behavior", "Isolated"}}}},
       "pre_tokenizer 'Split': regex construct '\\w' is not supported"},
      {{{"pre_tokenizer",
         {{"type", "Split"},
          {"pattern", {{"String", " "}}},
          {"behavior", "MergedWithPrevious"}}}},
       "behavior 'MergedWithPrevious' is not supported"},
      {{{"pre_tokenizer", {{"type", "Whitespace"}}}},
       "pre_tokenizer type 'Whitespace' is not supported"},
      {{{"pre_tokenizer",
         {{"type", "Metaspace"},
          {"prepend_scheme", "first"},
          {"split", true}}}},
       "pre_tokenizer 'Metaspace': split true is not supported"},
      {{{"decoder", {{"type", "WordPiece"}}}},
       "decoder type 'WordPiece' is not supported"},
      {{{"post_processor", {{"type", "BertProcessing"}}}},
       "post_processor type 'BertProcessing' is not supported"},
      {{{"model", {{"type", "WordPiece"}}}},
       "model type 'WordPiece' is not supported (GRETA supports BPE)"},
      {{{"model", {{"dropout", 0.1}}}}, "model.dropout is not supported"},
      {{{"model", {{"continuing_subword_prefix", "##"}}}},
       "model.continuing_subword_prefix '##' is not supported"},
      {{{"truncation", {{"max_length", 8}}}}, "truncation is not supported"},
      {{{"added_tokens",
         json::array(
             {{{"id", 0}, {"content", "<s>"}, {"single_word", true}}})}},
       "added token '<s>': single_word true is not supported"},
  };
  for (const Case &c : cases) {
    TempDir dir;
    std::string path = writeTokenizer(dir, c.patch), error;
    EXPECT_FALSE(Tokenizer::load(path, error)) << c.message;
    EXPECT_NE(error.find(path + ": "), std::string::npos) << error;
    EXPECT_NE(error.find(c.message), std::string::npos) << error;
  }
}

TEST(TokenizerJson, MetaspaceFirstSectionOnly) {
  TempDir dir;
  // A merge patch: null removes the byte-level entries.
  json vocab = {{"<s>", 0}, {"\xE2\x96\x81", 1},   {"a", 2},
                {"b", 3},   {"\xC4\xA0", nullptr}, {"ab", nullptr}};
  std::string path = writeTokenizer(
      dir, {{"pre_tokenizer",
             {{"type", "Metaspace"},
              {"replacement", "\xE2\x96\x81"},
              {"prepend_scheme", "first"},
              {"split", false}}},
            {"decoder", {{"type", "Metaspace"}, {"prepend_scheme", "first"}}},
            {"model", {{"vocab", vocab}, {"merges", json::array()}}}});
  std::string error, text;
  auto t = Tokenizer::load(path, error);
  ASSERT_TRUE(t) << error;
  std::vector<int64_t> ids;
  // The first section gets the ▁; the one after <s> does not.
  ASSERT_TRUE(t->encode("a b<s>a", ids, error)) << error;
  EXPECT_EQ(ids, (std::vector<int64_t>{1, 2, 1, 3, 0, 2}));
  ASSERT_TRUE(t->decode({1, 2, 1, 3}, text, error));
  EXPECT_EQ(text, "a b");
  EXPECT_EQ(t->tokenBytes(1), " ");
}

TEST(TokenizerLoad, FindsTheFileAndReadsTheConfigs) {
  TempDir dir;
  writeTokenizer(dir, json::object());
  writeFile(dir.path() + "/tokenizer_config.json",
            R"({"bos_token": "<s>", "eos_token": {"content": "b"}})");
  writeFile(dir.path() + "/generation_config.json",
            R"({"eos_token_id": [2, 4]})");
  std::string error;
  auto t = Tokenizer::load(dir.path(), error);
  ASSERT_TRUE(t) << error;
  EXPECT_EQ(t->source(), dir.path() + "/tokenizer.json");
  EXPECT_EQ(t->bosId(), 0);
  EXPECT_EQ(t->eosIds(), (std::vector<int64_t>{2, 4}));
  // tokenizer_config.json is part of the digest.
  std::string before = t->digest();
  writeFile(dir.path() + "/tokenizer_config.json", R"({"bos_token": "<s>"})");
  auto t2 = Tokenizer::load(dir.path(), error);
  ASSERT_TRUE(t2) << error;
  EXPECT_NE(t2->digest(), before);

  writeFile(dir.path() + "/generation_config.json", R"({"eos_token_id": 9})");
  EXPECT_FALSE(Tokenizer::load(dir.path(), error));
  EXPECT_NE(error.find("generation_config.json: eos_token_id 9 is not a "
                       "token id of the tokenizer (0..4)"),
            std::string::npos)
      << error;
}

TEST(TokenizerPrompt, TextIdsAndObjects) {
  TempDir dir;
  writeTokenizer(dir, json::object());
  std::string error;
  auto p = loadPrompt({"", std::string("ab ab"), dir.path()}, error);
  ASSERT_TRUE(p) << error;
  EXPECT_EQ(p->ids, (std::vector<int64_t>{4, 3, 4}));
  EXPECT_TRUE(p->fromText);
  EXPECT_EQ(p->name, "prompt-text");
  std::string txt = writeFile(dir.path() + "/q.md", "b");
  p = loadPrompt({txt, std::nullopt, dir.path()}, error);
  ASSERT_TRUE(p) << error;
  EXPECT_EQ(p->ids, (std::vector<int64_t>{2}));
  EXPECT_EQ(p->name, "q");
  std::string obj =
      writeFile(dir.path() + "/o.json", R"({"text": "ab", "x": 1})");
  EXPECT_FALSE(loadPrompt({obj, std::nullopt, dir.path()}, error));
  EXPECT_NE(error.find("unknown field 'x'"), std::string::npos) << error;
  EXPECT_FALSE(readPrompt(obj, error));
  EXPECT_NE(error.find("give --tokenizer"), std::string::npos) << error;
  // Ids with a tokenizer: kept as they are, the tokenizer loaded for names.
  std::string ids = writeFile(dir.path() + "/i.json", "[4, 0]");
  p = loadPrompt({ids, std::nullopt, dir.path()}, error);
  ASSERT_TRUE(p) << error;
  EXPECT_EQ(p->ids, (std::vector<int64_t>{4, 0}));
  EXPECT_FALSE(p->fromText);
  ASSERT_TRUE(p->tokenizer);
}

} // namespace
