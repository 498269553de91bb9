//===- TokenizerSentencePiece.cpp - tokenizer.model through libsentencepiece -*-
//C++ -*-===//
//
// A SentencePiece model is run by Debian's libsentencepiece, never
// re-implemented. What HF's slow LlamaTokenizer adds around it is done
// here: the text is split at the special pieces (control and unknown
// pieces, and tokenizer_config.json's added tokens) and each stretch is
// encoded on its own; BOS/EOS follow add_bos_token/add_eos_token (default:
// BOS only).
//
//===----------------------------------------------------------------------===//
#include "TokenizerInternal.h"

#include <nlohmann/json.hpp>
#include <sentencepiece_processor.h>

#include <set>

using namespace greta::rt;
using namespace greta::rt::tok;
using json = nlohmann::json;

namespace {
class SentencePieceTokenizer : public Tokenizer {
public:
  bool load(const std::string &bytes, const json &config, std::string &error);
  bool encode(std::string_view text, std::vector<int64_t> &ids,
              std::string &error, bool addSpecialTokens) const override;
  bool decode(const std::vector<int64_t> &ids, std::string &text,
              std::string &error, bool skipSpecialTokens) const override;
  std::string tokenBytes(int64_t id) const override;
  int64_t vocabSize() const override { return sp_.GetPieceSize(); }

private:
  bool isSpecial(int id) const {
    return sp_.IsControl(id) || sp_.IsUnknown(id) || extra_.count(id);
  }
  sentencepiece::SentencePieceProcessor sp_;
  TokenTrie specials_;
  std::vector<int64_t> specialIds_; // by trie index
  std::set<int> extra_;             // tokenizer_config.json's added tokens
  bool addBos_ = true, addEos_ = false;
};

bool SentencePieceTokenizer::load(const std::string &bytes, const json &config,
                                  std::string &error) {
  auto status = sp_.LoadFromSerializedProto(bytes);
  if (!status.ok()) {
    error = "not a SentencePiece model: " + status.ToString();
    return false;
  }
  int n = sp_.GetPieceSize();
  auto addSpecial = [&](int id) {
    std::string piece = sp_.IdToPiece(id);
    if (piece.empty())
      return;
    specials_.insert(piece, static_cast<int32_t>(specialIds_.size()));
    specialIds_.push_back(id);
  };
  for (int id = 0; id < n; ++id)
    if (sp_.IsControl(id) || sp_.IsUnknown(id))
      addSpecial(id);
  if (config.is_object()) {
    if (config.contains("added_tokens_decoder") &&
        config["added_tokens_decoder"].is_object())
      for (auto it = config["added_tokens_decoder"].begin();
           it != config["added_tokens_decoder"].end(); ++it) {
        int id = -1;
        try {
          id = std::stoi(it.key());
        } catch (const std::exception &) {
        }
        if (id < 0 || id >= n) {
          error = "tokenizer_config.json: added_tokens_decoder key '" +
                  it.key() + "' is not an id of the model (0.." +
                  std::to_string(n - 1) + ")";
          return false;
        }
        std::string content = it.value().value("content", "");
        if (content != sp_.IdToPiece(id)) {
          error = "tokenizer_config.json: added token " + it.key() + " '" +
                  content + "' is not the model's piece '" + sp_.IdToPiece(id) +
                  "'";
          return false;
        }
        if (!isSpecial(id)) {
          extra_.insert(id);
          addSpecial(id);
        }
      }
    if (config.contains("add_bos_token") &&
        config["add_bos_token"].is_boolean())
      addBos_ = config["add_bos_token"].get<bool>();
    if (config.contains("add_eos_token") &&
        config["add_eos_token"].is_boolean())
      addEos_ = config["add_eos_token"].get<bool>();
  }
  if (sp_.bos_id() >= 0)
    bos_ = sp_.bos_id();
  if (sp_.eos_id() >= 0)
    eos_ = {sp_.eos_id()};
  if ((addBos_ && !bos_) || (addEos_ && eos_.empty())) {
    error = std::string("tokenizer_config.json: add_") +
            (addBos_ && !bos_ ? "bos" : "eos") +
            "_token is true but the model has no such piece";
    return false;
  }
  return true;
}

bool SentencePieceTokenizer::encode(std::string_view text,
                                    std::vector<int64_t> &ids,
                                    std::string &error,
                                    bool addSpecialTokens) const {
  if (!checkUtf8(text, error))
    return false;
  if (addSpecialTokens && addBos_)
    ids.push_back(*bos_);
  std::vector<Section> sections;
  specials_.split(text, sections);
  std::vector<int> part;
  for (const Section &s : sections) {
    if (s.token >= 0) {
      ids.push_back(specialIds_[s.token]);
      continue;
    }
    part.clear();
    auto status = sp_.Encode(s.text, &part);
    if (!status.ok()) {
      error = "SentencePiece: " + status.ToString();
      return false;
    }
    ids.insert(ids.end(), part.begin(), part.end());
  }
  if (addSpecialTokens && addEos_)
    ids.push_back(eos_[0]);
  return true;
}

bool SentencePieceTokenizer::decode(const std::vector<int64_t> &ids,
                                    std::string &text, std::string &error,
                                    bool skipSpecialTokens) const {
  text.clear();
  std::vector<int> run;
  auto flush = [&] {
    if (run.empty())
      return true;
    std::string piece;
    auto status = sp_.Decode(run, &piece);
    if (!status.ok()) {
      error = "SentencePiece: " + status.ToString();
      return false;
    }
    text += piece;
    run.clear();
    return true;
  };
  for (int64_t id : ids) {
    if (id < 0 || id >= vocabSize()) {
      error = "token id " + std::to_string(id) +
              " is not in the vocabulary (ids 0.." +
              std::to_string(vocabSize() - 1) + ")";
      return false;
    }
    int i = static_cast<int>(id);
    if (!isSpecial(i)) {
      run.push_back(i);
      continue;
    }
    if (!flush())
      return false;
    if (!skipSpecialTokens)
      text += sp_.IdToPiece(i);
  }
  return flush();
}

std::string SentencePieceTokenizer::tokenBytes(int64_t id) const {
  if (id < 0 || id >= vocabSize())
    return "";
  std::string piece = sp_.IdToPiece(static_cast<int>(id));
  if (sp_.IsByte(static_cast<int>(id)) && piece.size() == 6)
    return std::string(
        1, static_cast<char>(std::stoi(piece.substr(3, 2), nullptr, 16)));
  if (isSpecial(static_cast<int>(id)))
    return piece;
  std::string out;
  for (size_t p = 0; p < piece.size();) {
    if (piece.compare(p, 3, "\xE2\x96\x81") == 0) { // U+2581
      out += ' ';
      p += 3;
    } else {
      out += piece[p++];
    }
  }
  return out;
}
} // namespace

std::unique_ptr<Tokenizer> greta::rt::tok::loadSentencePieceTokenizer(
    const std::string &path, const std::string &bytes,
    const std::string &configPath, const std::string &configText,
    std::string &error) {
  json config;
  if (!configText.empty()) {
    try {
      config = json::parse(configText);
    } catch (const json::exception &e) {
      error = configPath + ": invalid JSON: " + e.what();
      return nullptr;
    }
  }
  auto t = std::make_unique<SentencePieceTokenizer>();
  std::string why;
  if (!t->load(bytes, config, why)) {
    error = why.rfind("tokenizer_config.json: ", 0) == 0
                ? configPath + why.substr(why.find(':'))
                : path + ": " + why;
    return nullptr;
  }
  return t;
}
