//===- Tokenizer.h - Text to token ids and back (HF, SentencePiece) -*- C++
//-*-===//
//
// A tokenizer loaded from what a checkpoint ships: an HF `tokenizer.json`
// (BPE: byte-level as in Llama-3/Qwen/GPT-2, or SentencePiece-style with byte
// fallback as in Llama-2/Mistral/TinyLlama), or a SentencePiece
// `tokenizer.model` (through libsentencepiece). `tokenizer_config.json` and
// `generation_config.json` beside it name BOS/EOS. A feature the loader does
// not implement is an error naming it, never a different tokenization
// (docs/TOKENIZERS.md lists what is supported).
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_RT_TOKENIZER_H
#define GRETA_RT_TOKENIZER_H

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace greta::rt {

class Tokenizer {
public:
  virtual ~Tokenizer();

  /// Loads `path`: a tokenizer.json, a tokenizer.model, or a directory
  /// holding one of them (tokenizer.json first, as HF's fast tokenizers do).
  /// tokenizer_config.json and generation_config.json in the same directory
  /// are read when present. Errors name the file and the problem.
  static std::unique_ptr<Tokenizer> load(const std::string &path,
                                         std::string &error);

  /// Appends the ids of `text` (UTF-8; anything else is an error naming the
  /// byte offset). Added tokens written in the text (`<s>`,
  /// `<|begin_of_text|>`) become their ids; `addSpecialTokens` adds what the
  /// post-processor (or, for a tokenizer.model, tokenizer_config.json's
  /// add_bos_token/add_eos_token) adds: BOS for Llama-2.
  virtual bool encode(std::string_view text, std::vector<int64_t> &ids,
                      std::string &error,
                      bool addSpecialTokens = true) const = 0;

  /// The text of `ids`, as HF's `decode` gives it (invalid UTF-8 becomes
  /// U+FFFD; tokenizer_config.json's clean_up_tokenization_spaces applies).
  /// An id outside the vocabulary is an error.
  virtual bool decode(const std::vector<int64_t> &ids, std::string &text,
                      std::string &error,
                      bool skipSpecialTokens = false) const = 0;

  /// The bytes one token stands for, for reports: ' the' for `▁the` or
  /// `Ġthe`, the raw byte for `<0xE3>` (possibly not UTF-8 on its own), the
  /// content of an added token. Empty for an id outside the vocabulary.
  virtual std::string tokenBytes(int64_t id) const = 0;

  /// Ids 0 .. vocabSize()-1 exist (added tokens included).
  virtual int64_t vocabSize() const = 0;

  /// SHA-256 (hex) over the files read (docs/TOKENIZERS.md): equal digests,
  /// equal tokenization.
  const std::string &digest() const { return digest_; }
  /// What was loaded, e.g. "dir/tokenizer.json".
  const std::string &source() const { return source_; }
  /// BOS and EOS as tokenizer_config.json / generation_config.json name them
  /// (generation_config.json's eos_token_id may list several).
  std::optional<int64_t> bosId() const { return bos_; }
  const std::vector<int64_t> &eosIds() const { return eos_; }

protected:
  std::string digest_, source_;
  std::optional<int64_t> bos_;
  std::vector<int64_t> eos_;
  friend struct TokenizerLoader;
};

/// `bytes` as a quoted token for reports: ' the', '\n', '<0xE3>' is shown as
/// '\xe3'; control characters and invalid UTF-8 are escaped.
std::string quoteToken(std::string_view bytes);

/// Checks that `text` is UTF-8; on failure `error` names the byte offset.
bool checkUtf8(std::string_view text, std::string &error);

} // namespace greta::rt

#endif // GRETA_RT_TOKENIZER_H
