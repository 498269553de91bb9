//===- TokenizerJson.cpp - HF tokenizer.json: pipeline and added tokens -*- C++
//-*-===//
//
// Loads an HF tokenizer.json into the pipeline the Rust `tokenizers` crate
// runs: split the text at added tokens (leftmost-longest), normalize each
// stretch between them, split it again at normalized added tokens,
// pre-tokenize, BPE each piece, then the post-processor's template (BOS).
// Decoding maps ids to token strings and runs the decoder chain.
//
//===----------------------------------------------------------------------===//
#include "TokenizerInternal.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <unordered_map>

using namespace greta::rt;
using namespace greta::rt::tok;
using json = nlohmann::json;

namespace {

//===----------------------------------------------------------------------===//
// Added tokens
//===----------------------------------------------------------------------===//

struct AddedToken {
  std::string content;
  int64_t id = 0;
  bool special = false, lstrip = false, rstrip = false, normalized = false;
};

std::string_view trimWhiteSpace(std::string_view s, bool left, bool right) {
  size_t b = 0, e = s.size();
  while (left && b < e) {
    size_t i = b;
    if (!isWhiteSpace(nextCodePoint(s, i)))
      break;
    b = i;
  }
  while (right && e > b) {
    size_t k = e - 1;
    while (k > b && (static_cast<uint8_t>(s[k]) & 0xC0) == 0x80)
      --k;
    size_t i = k;
    if (!isWhiteSpace(nextCodePoint(s, i)))
      break;
    e = k;
  }
  return s.substr(b, e - b);
}

//===----------------------------------------------------------------------===//
// The tokenizer
//===----------------------------------------------------------------------===//

class HfTokenizer : public Tokenizer {
public:
  bool encode(std::string_view text, std::vector<int64_t> &ids,
              std::string &error, bool addSpecialTokens) const override;
  bool decode(const std::vector<int64_t> &ids, std::string &text,
              std::string &error, bool skipSpecialTokens) const override;
  std::string tokenBytes(int64_t id) const override;
  int64_t vocabSize() const override { return vocabSize_; }

  bool load(const json &j, const json &config, std::string &error);

private:
  bool loadAddedTokens(const json &j, std::string &error);
  bool loadModel(const json &j, std::string &error);
  bool loadPostProcessor(const json &j, std::string &error);
  bool loadConfig(const json &config, std::string &error);
  void stripAround(std::vector<Section> &sections) const;
  bool encodeStretch(std::string_view text, size_t section,
                     std::vector<int64_t> &ids, std::string &error) const;
  std::optional<int64_t> idOf(const std::string &token) const;

  std::unique_ptr<Normalizer> normalizer_;
  std::unique_ptr<PreTokenizer> preTokenizer_;
  std::unique_ptr<BpeModel> model_;
  std::unique_ptr<Decoder> decoder_;
  std::vector<AddedToken> added_;
  std::unordered_map<int64_t, size_t> addedById_;
  TokenTrie raw_, normalizedTrie_;
  std::vector<int64_t> prefix_, suffix_; // the post-processor's template
  bool cleanUpSpaces_ = false;
  int64_t vocabSize_ = 0;
};

bool HfTokenizer::loadAddedTokens(const json &j, std::string &error) {
  if (!j.contains("added_tokens") || j["added_tokens"].is_null())
    return true;
  if (!j["added_tokens"].is_array()) {
    error = "'added_tokens' must be an array";
    return false;
  }
  for (const json &t : j["added_tokens"]) {
    AddedToken a;
    try {
      a.content = t.at("content").get<std::string>();
      a.id = t.at("id").get<int64_t>();
      a.special = t.value("special", false);
      a.lstrip = t.value("lstrip", false);
      a.rstrip = t.value("rstrip", false);
      a.normalized = t.value("normalized", !a.special);
      if (t.value("single_word", false)) {
        error = "added token '" + a.content +
                "': single_word true is not "
                "supported";
        return false;
      }
    } catch (const json::exception &e) {
      error = "added_tokens: entry " + t.dump().substr(0, 80) +
              " is malformed: " + e.what();
      return false;
    }
    if (a.content.empty() || a.id < 0 || a.id > 0x7fffffff) {
      error = "added token '" + a.content + "' (id " + std::to_string(a.id) +
              ") is empty or has an id outside [0, 2^31)";
      return false;
    }
    if (!checkUtf8(a.content, error)) {
      error = "added token id " + std::to_string(a.id) + ": " + error;
      return false;
    }
    addedById_[a.id] = added_.size();
    vocabSize_ = std::max(vocabSize_, a.id + 1);
    added_.push_back(std::move(a));
  }
  return true;
}

bool HfTokenizer::loadModel(const json &j, std::string &error) {
  if (!j.contains("model") || !j["model"].is_object()) {
    error = "no 'model' object";
    return false;
  }
  const json &m = j["model"];
  std::string type = m.contains("type") && m["type"].is_string()
                         ? m["type"].get<std::string>()
                         : "";
  if (type != "BPE") {
    error = type.empty() ? "model has no 'type' (GRETA supports BPE)"
                         : "model type '" + type +
                               "' is not supported (GRETA supports BPE)";
    return false;
  }
  BpeConfig c;
  try {
    if (m.contains("dropout") && !m["dropout"].is_null() &&
        m["dropout"].get<double>() != 0.0) {
      error = "model.dropout is not supported (BPE dropout is random)";
      return false;
    }
    for (const char *key : {"continuing_subword_prefix", "end_of_word_suffix"})
      if (m.contains(key) && !m[key].is_null() &&
          !m[key].get<std::string>().empty()) {
        error = std::string("model.") + key + " '" + m[key].get<std::string>() +
                "' is not supported";
        return false;
      }
    c.byteFallback = m.value("byte_fallback", false);
    c.ignoreMerges = m.value("ignore_merges", false);
    c.fuseUnk = m.value("fuse_unk", false);
    if (m.contains("unk_token") && !m["unk_token"].is_null())
      c.unkToken = m["unk_token"].get<std::string>();
    const json &vocab = m.at("vocab");
    if (!vocab.is_object()) {
      error = "model.vocab must be an object";
      return false;
    }
    c.vocab.reserve(vocab.size());
    for (auto it = vocab.begin(); it != vocab.end(); ++it)
      c.vocab.push_back({it.key(), it.value().get<int64_t>()});
    const json &merges = m.at("merges");
    c.merges.reserve(merges.size());
    for (const json &mg : merges) {
      if (mg.is_array() && mg.size() == 2) {
        c.merges.push_back(
            {mg[0].get<std::string>(), mg[1].get<std::string>()});
        continue;
      }
      std::string s = mg.get<std::string>();
      size_t space = s.find(' ');
      if (space == s.npos || s.find(' ', space + 1) != s.npos) {
        error = "model.merges[" + std::to_string(c.merges.size()) + "] '" + s +
                "' is not two tokens separated by one space";
        return false;
      }
      c.merges.push_back({s.substr(0, space), s.substr(space + 1)});
    }
  } catch (const json::exception &e) {
    error = std::string("model: ") + e.what();
    return false;
  }
  c.byteLevel = preTokenizer_ && preTokenizer_->isByteLevel();
  model_ = BpeModel::create(std::move(c), error);
  if (!model_)
    return false;
  vocabSize_ = std::max(vocabSize_, model_->maxId() + 1);
  return true;
}

std::optional<int64_t> HfTokenizer::idOf(const std::string &token) const {
  for (const AddedToken &a : added_)
    if (a.content == token)
      return a.id;
  for (int64_t id = 0; id <= model_->maxId(); ++id)
    if (const std::string *t = model_->token(id); t && *t == token)
      return id;
  return std::nullopt;
}

/// One template ("single") of TemplateProcessing: the ids before and after
/// the sequence. Others compose around what came before.
bool HfTokenizer::loadPostProcessor(const json &p, std::string &error) {
  if (p.is_null())
    return true;
  std::string type = p.value("type", "");
  if (type == "ByteLevel")
    return true; // it changes offsets only
  if (type == "Sequence") {
    for (const json &q : p.value("processors", json::array()))
      if (!loadPostProcessor(q, error))
        return false;
    return true;
  }
  if (type != "TemplateProcessing") {
    error = "post_processor type '" + type + "' is not supported";
    return false;
  }
  std::vector<int64_t> before, after;
  bool seenA = false;
  try {
    for (const json &item : p.at("single")) {
      if (item.contains("Sequence")) {
        if (item["Sequence"].value("id", "") != "A") {
          error = "post_processor: a single template may only hold "
                  "sequence A";
          return false;
        }
        seenA = true;
        continue;
      }
      std::string name = item.at("SpecialToken").at("id").get<std::string>();
      const json &special = p.at("special_tokens");
      if (!special.contains(name)) {
        error = "post_processor: special token '" + name +
                "' is not in special_tokens";
        return false;
      }
      for (const json &id : special[name].at("ids"))
        (seenA ? after : before).push_back(id.get<int64_t>());
    }
  } catch (const json::exception &e) {
    error = std::string("post_processor: ") + e.what();
    return false;
  }
  if (!seenA) {
    error = "post_processor: the single template has no sequence A";
    return false;
  }
  prefix_.insert(prefix_.begin(), before.begin(), before.end());
  suffix_.insert(suffix_.end(), after.begin(), after.end());
  return true;
}

/// tokenizer_config.json: BOS/EOS, clean_up_tokenization_spaces, and for
/// the Llama/Gemma tokenizer classes add_bos_token/add_eos_token, which
/// transformers turns into the template (update_post_processor).
bool HfTokenizer::loadConfig(const json &config, std::string &error) {
  if (!config.is_object())
    return true;
  auto tokenName = [](const json &v) -> std::optional<std::string> {
    if (v.is_string())
      return v.get<std::string>();
    if (v.is_object() && v.contains("content") && v["content"].is_string())
      return v["content"].get<std::string>();
    return std::nullopt;
  };
  std::optional<int64_t> bos, eos;
  for (auto [key, out] : {std::pair{"bos_token", &bos}, {"eos_token", &eos}})
    if (config.contains(key))
      if (auto name = tokenName(config[key])) {
        *out = idOf(*name);
        if (!*out) {
          error = std::string("tokenizer_config.json: ") + key + " '" + *name +
                  "' is not a token";
          return false;
        }
      }
  bos_ = bos;
  if (eos)
    eos_ = {*eos};
  if (config.contains("clean_up_tokenization_spaces") &&
      config["clean_up_tokenization_spaces"].is_boolean())
    cleanUpSpaces_ = config["clean_up_tokenization_spaces"].get<bool>();
  std::string cls = config.value("tokenizer_class", "");
  static const char *const kRebuilt[] = {
      "LlamaTokenizer",         "LlamaTokenizerFast", "CodeLlamaTokenizer",
      "CodeLlamaTokenizerFast", "GemmaTokenizer",     "GemmaTokenizerFast"};
  if (std::find(std::begin(kRebuilt), std::end(kRebuilt), cls) !=
      std::end(kRebuilt)) {
    bool addBos = config.value("add_bos_token", true);
    bool addEos = config.value("add_eos_token", false);
    if ((addBos && !bos) || (addEos && !eos)) {
      error = "tokenizer_config.json: add_" +
              std::string(addBos && !bos ? "bos" : "eos") +
              "_token is true but there is no such token";
      return false;
    }
    prefix_.clear();
    suffix_.clear();
    if (addBos)
      prefix_.push_back(*bos);
    if (addEos)
      suffix_.push_back(*eos);
  }
  return true;
}

bool HfTokenizer::load(const json &j, const json &config, std::string &error) {
  if (!j.is_object()) {
    error = "not a JSON object";
    return false;
  }
  for (const char *key : {"normalizer", "pre_tokenizer", "model"})
    if (!j.contains(key)) {
      error = std::string("no '") + key + "' field";
      return false;
    }
  if (j.contains("truncation") && !j["truncation"].is_null()) {
    error = "truncation is not supported (it would cut the prompt)";
    return false;
  }
  if (j.contains("padding") && j["padding"].is_object() &&
      j["padding"].contains("strategy") &&
      j["padding"]["strategy"].is_object()) {
    error = "padding to a fixed length is not supported";
    return false;
  }
  if (!j["normalizer"].is_null() &&
      !(normalizer_ = makeNormalizer(j["normalizer"], error)))
    return false;
  if (!j["pre_tokenizer"].is_null() &&
      !(preTokenizer_ = makePreTokenizer(j["pre_tokenizer"], error)))
    return false;
  if (!loadAddedTokens(j, error) || !loadModel(j, error))
    return false;
  auto addedContents = std::make_shared<std::vector<std::string>>();
  for (size_t i = 0; i < added_.size(); ++i) {
    AddedToken &a = added_[i];
    addedContents->push_back(a.content);
    if (!a.normalized || !normalizer_) {
      raw_.insert(a.content, static_cast<int32_t>(i));
      continue;
    }
    std::string n = a.content;
    if (!normalizer_->apply(n, error))
      return false;
    if (!n.empty())
      normalizedTrie_.insert(n, static_cast<int32_t>(i));
  }
  if (j.contains("decoder") && !j["decoder"].is_null() &&
      !(decoder_ = makeDecoder(j["decoder"], addedContents, error)))
    return false;
  if (j.contains("post_processor") &&
      !loadPostProcessor(j["post_processor"], error))
    return false;
  for (int64_t id : prefix_)
    if (id < 0 || id >= vocabSize_) {
      error = "post_processor: id " + std::to_string(id) +
              " is outside the vocabulary";
      return false;
    }
  return loadConfig(config, error);
}

void HfTokenizer::stripAround(std::vector<Section> &sections) const {
  for (size_t i = 0; i < sections.size(); ++i) {
    if (sections[i].token < 0)
      continue;
    const AddedToken &a = added_[sections[i].token];
    if (a.lstrip && i > 0 && sections[i - 1].token < 0)
      sections[i - 1].text = trimWhiteSpace(sections[i - 1].text, false, true);
    if (a.rstrip && i + 1 < sections.size() && sections[i + 1].token < 0)
      sections[i + 1].text = trimWhiteSpace(sections[i + 1].text, true, false);
  }
}

bool HfTokenizer::encodeStretch(std::string_view text, size_t section,
                                std::vector<int64_t> &ids,
                                std::string &error) const {
  std::vector<std::string_view> pieces;
  std::deque<std::string> store;
  if (preTokenizer_) {
    if (!preTokenizer_->split(text, section, pieces, store, error))
      return false;
  } else {
    pieces.push_back(text);
  }
  for (std::string_view p : pieces)
    if (!model_->encode(p, ids, error))
      return false;
  return true;
}

bool HfTokenizer::encode(std::string_view text, std::vector<int64_t> &ids,
                         std::string &error, bool addSpecialTokens) const {
  if (!checkUtf8(text, error))
    return false;
  if (addSpecialTokens)
    ids.insert(ids.end(), prefix_.begin(), prefix_.end());
  std::vector<Section> outer, inner;
  raw_.split(text, outer);
  stripAround(outer);
  std::string normalized;
  for (size_t s = 0; s < outer.size(); ++s) {
    if (outer[s].token >= 0) {
      ids.push_back(added_[outer[s].token].id);
      continue;
    }
    std::string_view body = outer[s].text;
    if (body.empty())
      continue;
    if (normalizer_) {
      normalized.assign(body);
      if (!normalizer_->apply(normalized, error))
        return false;
      body = normalized;
    }
    inner.clear();
    if (normalizedTrie_.empty())
      inner.push_back({body, -1});
    else
      normalizedTrie_.split(body, inner);
    stripAround(inner);
    for (const Section &sub : inner) {
      if (sub.token >= 0)
        ids.push_back(added_[sub.token].id);
      else if (!sub.text.empty() && !encodeStretch(sub.text, s, ids, error))
        return false;
    }
  }
  if (addSpecialTokens)
    ids.insert(ids.end(), suffix_.begin(), suffix_.end());
  return true;
}

/// transformers' clean_up_tokenization: drops the space before punctuation
/// and contractions.
std::string cleanUpTokenization(std::string s) {
  static const std::pair<const char *, const char *> kRules[] = {
      {" .", "."},     {" ?", "?"},     {" !", "!"},   {" ,", ","},
      {" ' ", "'"},    {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"},
      {" 've", "'ve"}, {" 're", "'re"}};
  for (auto [from, to] : kRules) {
    std::string out;
    size_t pos = 0, at, n = std::strlen(from);
    while ((at = s.find(from, pos)) != s.npos) {
      out.append(s, pos, at - pos);
      out += to;
      pos = at + n;
    }
    out.append(s, pos, s.npos);
    s = std::move(out);
  }
  return s;
}

bool HfTokenizer::decode(const std::vector<int64_t> &ids, std::string &text,
                         std::string &error, bool skipSpecialTokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int64_t id : ids) {
    auto added = addedById_.find(id);
    if (added != addedById_.end()) {
      if (!(skipSpecialTokens && added_[added->second].special))
        tokens.push_back(added_[added->second].content);
      continue;
    }
    const std::string *t = model_->token(id);
    if (!t) {
      error = "token id " + std::to_string(id) +
              " is not in the vocabulary (ids 0.." +
              std::to_string(vocabSize_ - 1) + ")";
      return false;
    }
    tokens.push_back(*t);
  }
  text.clear();
  if (decoder_) {
    decoder_->apply(tokens, DecodeMode::Text);
    for (const std::string &t : tokens)
      text += t;
  } else {
    for (size_t i = 0; i < tokens.size(); ++i)
      text += (i ? " " : "") + tokens[i];
  }
  if (cleanUpSpaces_)
    text = cleanUpTokenization(std::move(text));
  return true;
}

std::string HfTokenizer::tokenBytes(int64_t id) const {
  auto added = addedById_.find(id);
  if (added != addedById_.end())
    return added_[added->second].content;
  const std::string *t = model_->token(id);
  if (!t)
    return "";
  if (!decoder_)
    return *t;
  std::vector<std::string> tokens{*t};
  decoder_->apply(tokens, DecodeMode::TokenBytes);
  std::string out;
  for (const std::string &s : tokens)
    out += s;
  return out;
}
} // namespace

std::unique_ptr<Tokenizer> greta::rt::tok::loadHfTokenizer(
    const std::string &path, const std::string &text,
    const std::string &configPath, const std::string &configText,
    std::string &error) {
  auto parse = [&](const std::string &file, const std::string &s, json &out) {
    try {
      out = json::parse(s);
      return true;
    } catch (const json::parse_error &e) {
      error = file + ": invalid JSON (truncated or corrupt) at byte " +
              std::to_string(e.byte) + ": " + e.what();
    } catch (const json::exception &e) {
      error = file + ": invalid JSON: " + e.what();
    }
    return false;
  };
  json j, config;
  if (!parse(path, text, j))
    return nullptr;
  if (!configText.empty() && !parse(configPath, configText, config))
    return nullptr;
  auto t = std::make_unique<HfTokenizer>();
  std::string why;
  if (!t->load(j, config, why)) {
    bool fromConfig = why.rfind("tokenizer_config.json: ", 0) == 0;
    error =
        fromConfig ? configPath + why.substr(why.find(':')) : path + ": " + why;
    return nullptr;
  }
  return t;
}
