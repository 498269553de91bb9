//===- TokenizerInternal.h - Pieces of the tokenizers -----------*- C++ -*-===//
//
// Internal to the runtime. The HF pipeline (tokenizer.json) is normalizer ->
// pre-tokenizer -> model -> post-processor, and decoder for the way back;
// each stage is one of the types here, built from its JSON object by
// TokenizerJson.cpp. Text is UTF-8 bytes throughout: a byte-level BPE works
// on raw bytes (its vocabulary is mapped back from GPT-2's byte-to-char
// table at load), so no stage copies a piece it does not change.
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_RT_LIB_TOKENIZERINTERNAL_H
#define GRETA_RT_LIB_TOKENIZERINTERNAL_H

#include "greta/rt/Tokenizer.h"

#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

typedef struct pcre2_real_code_8 pcre2_code_8;

namespace greta::rt::tok {

//===----------------------------------------------------------------------===//
// UTF-8 (TokenizerText.cpp)
//===----------------------------------------------------------------------===//

/// Decodes the code point at `i` of valid UTF-8 and advances `i`.
char32_t nextCodePoint(std::string_view s, size_t &i);
void appendUtf8(std::string &out, char32_t cp);
/// `bytes` with each maximal invalid subsequence replaced by U+FFFD, as
/// Rust's String::from_utf8_lossy and the WHATWG decoder do.
std::string lossyUtf8(std::string_view bytes);
/// Unicode White_Space (what Rust's char::is_whitespace and Oniguruma's \s
/// match).
bool isWhiteSpace(char32_t cp);
/// GPT-2's byte-to-char table: byte b is written as code point
/// byteToCodePoint(b) in a byte-level vocabulary.
char32_t byteToCodePoint(uint8_t b);
/// The inverse: -1 for a code point that stands for no byte.
int codePointToByte(char32_t cp);

//===----------------------------------------------------------------------===//
// Added tokens: leftmost-longest matching (TokenizerText.cpp)
//===----------------------------------------------------------------------===//

/// A stretch of text, or an added token (token >= 0: the index the caller
/// gave insert()).
struct Section {
  std::string_view text;
  int32_t token = -1;
};

/// Leftmost-longest matching of a set of strings over bytes: a trie walked
/// from each position whose byte can start one.
class TokenTrie {
public:
  void insert(std::string_view s, int32_t token);
  bool empty() const { return nodes_.size() == 1; }
  /// Appends the sections of `text`: stretches between matches, and matches.
  void split(std::string_view text, std::vector<Section> &out) const;

private:
  int32_t child(int32_t node, uint8_t b) const;
  struct Node {
    std::vector<std::pair<uint8_t, int32_t>> kids;
    int32_t token = -1;
  };
  std::vector<Node> nodes_{1};
  bool starts_[256] = {};
};

//===----------------------------------------------------------------------===//
// Byte string -> uint32 map (open addressing, keys in one arena)
//===----------------------------------------------------------------------===//

class StringMap {
public:
  static constexpr uint32_t kMissing = ~0u;
  /// Inserts or overwrites.
  void set(std::string_view key, uint32_t value);
  uint32_t get(std::string_view key) const;
  size_t size() const { return count_; }

private:
  struct Slot {
    uint64_t hash = 0;
    uint32_t keyOffset = 0, keyLength = 0;
    uint32_t value = kMissing; // kMissing: empty slot
  };
  size_t find(std::string_view key, uint64_t hash) const;
  void grow();
  std::vector<Slot> slots_;
  std::string arena_;
  size_t count_ = 0;
};

//===----------------------------------------------------------------------===//
// Patterns: a literal string, or a regex compiled by PCRE2 (UTF, UCP, JIT)
//===----------------------------------------------------------------------===//

/// tokenizer.json's {"String": s} or {"Regex": r}. A regex is written for
/// Oniguruma (the Rust crate's engine): the escapes whose meaning differs in
/// PCRE2 are rewritten and the constructs PCRE2 would read differently are
/// refused (translateOnigurumaPattern).
class Pattern {
public:
  ~Pattern();
  static std::unique_ptr<Pattern> literal(std::string text, std::string &error);
  static std::unique_ptr<Pattern> regex(std::string_view pattern,
                                        std::string &error);
  /// From the JSON object; `what` names it in errors.
  static std::unique_ptr<Pattern> fromJson(const nlohmann::json &j,
                                           const std::string &what,
                                           std::string &error);
  bool isLiteral() const { return code_ == nullptr; }

  /// Iterates over the non-empty matches in one subject (valid UTF-8).
  class Finder {
  public:
    explicit Finder(const Pattern &pattern);
    ~Finder();
    Finder(const Finder &) = delete;
    Finder &operator=(const Finder &) = delete;
    /// The first non-empty match at or after `start`: returns 1 and sets
    /// [begin, end); 0 when there is none; -1 when PCRE2 failed (a limit),
    /// error() says why.
    int next(std::string_view subject, size_t start, size_t &begin,
             size_t &end);
    const std::string &error() const { return error_; }

  private:
    const Pattern &pattern_;
    void *matchData_ = nullptr, *matchContext_ = nullptr, *jitStack_ = nullptr;
    std::string error_;
  };

private:
  Pattern() = default;
  std::string literal_;
  pcre2_code_8 *code_ = nullptr;
  bool jit_ = false;
};

/// Rewrites an Oniguruma pattern for PCRE2, or fails naming the construct:
/// \s -> White_Space, \d -> Nd, \v -> VT, \uHHHH -> \x{HHHH}, {,n} -> {0,n};
/// \w, \b, \h, \A, \z, \G, POSIX brackets, nested classes, && and inline
/// flags other than i are refused.
bool translateOnigurumaPattern(std::string_view pattern, std::string &out,
                               std::string &error);

//===----------------------------------------------------------------------===//
// Pipeline stages (TokenizerStages.cpp)
//===----------------------------------------------------------------------===//

struct Normalizer {
  virtual ~Normalizer() = default;
  virtual bool apply(std::string &text, std::string &error) const = 0;
};

/// A pre-tokenizer splits (and may rewrite) one piece. Rewritten pieces live
/// in `store`, whose elements never move.
struct PreTokenizer {
  virtual ~PreTokenizer() = default;
  /// `sectionIndex`: which section of the text (split at added tokens) the
  /// piece comes from; Metaspace's prepend_scheme "first" reads it.
  virtual bool split(std::string_view piece, size_t sectionIndex,
                     std::vector<std::string_view> &out,
                     std::deque<std::string> &store,
                     std::string &error) const = 0;
  /// True for the ByteLevel pre-tokenizer: the model then reads raw bytes.
  virtual bool isByteLevel() const { return false; }
};

/// Decoding works on token strings as the vocabulary writes them.
enum class DecodeMode {
  Text,       // as HF decode(): stripping, invalid UTF-8 -> U+FFFD
  TokenBytes, // one token for a report: no stripping, raw bytes kept
};
struct Decoder {
  virtual ~Decoder() = default;
  virtual void apply(std::vector<std::string> &tokens,
                     DecodeMode mode) const = 0;
};

/// Stages from their tokenizer.json objects (TokenizerStages.cpp). An
/// unsupported type or option is an error naming it.
std::unique_ptr<Normalizer> makeNormalizer(const nlohmann::json &j,
                                           std::string &error);
std::unique_ptr<PreTokenizer> makePreTokenizer(const nlohmann::json &j,
                                               std::string &error);
/// `addedTokens`: contents the ByteLevel decoder passes through unchanged.
std::unique_ptr<Decoder>
makeDecoder(const nlohmann::json &j,
            std::shared_ptr<const std::vector<std::string>> addedTokens,
            std::string &error);

//===----------------------------------------------------------------------===//
// BPE (TokenizerBpe.cpp)
//===----------------------------------------------------------------------===//

struct BpeConfig {
  /// Vocabulary as tokenizer.json writes it (byte-level: GPT-2 chars).
  std::vector<std::pair<std::string, int64_t>> vocab;
  std::vector<std::pair<std::string, std::string>> merges;
  bool byteLevel = false; // pieces are raw bytes; map the vocabulary back
  bool byteFallback = false;
  bool ignoreMerges = false;
  bool fuseUnk = false;
  std::optional<std::string> unkToken;
};

class BpeModel {
public:
  static std::unique_ptr<BpeModel> create(BpeConfig config, std::string &error);
  /// Appends the ids of one pre-tokenized piece.
  bool encode(std::string_view piece, std::vector<int64_t> &ids,
              std::string &error) const;
  /// The token as the vocabulary writes it; nullptr if `id` has none.
  const std::string *token(int64_t id) const;
  int64_t maxId() const { return static_cast<int64_t>(tokens_.size()) - 1; }

private:
  struct Merge {
    uint32_t rank, merged;
  };
  bool mergeWord(std::string_view piece, std::vector<int64_t> &ids,
                 std::string &error) const;
  bool initialSymbols(std::string_view piece, std::vector<uint32_t> &syms,
                      std::string &error) const;
  const Merge *findMerge(uint32_t left, uint32_t right) const;

  bool byteLevel_ = false, byteFallback_ = false, ignoreMerges_ = false,
       fuseUnk_ = false;
  uint32_t unkId_ = StringMap::kMissing;
  std::vector<std::string> tokens_; // id -> token, as written
  StringMap ids_;                   // piece bytes -> id
  uint32_t byteIds_[256];           // byte-level: byte -> id; else <0xXX>
  // Merges: open addressing on (left << 32 | right).
  std::vector<uint64_t> mergeKeys_;
  std::vector<Merge> mergeValues_;
  uint64_t mergeMask_ = 0;
  // Words already merged: piece bytes -> [offset, length) in cacheIds_.
  // Filled up to a fixed size, then left as is (the result never depends
  // on it). Guarded for concurrent encode() calls.
  mutable StringMap cache_;
  mutable std::vector<uint32_t> cacheIds_;
  mutable std::vector<std::pair<uint32_t, uint32_t>> cacheSpans_;
  mutable std::mutex cacheMutex_;
};

//===----------------------------------------------------------------------===//
// Tokenizers
//===----------------------------------------------------------------------===//

/// tokenizer.json (TokenizerJson.cpp). `config` is tokenizer_config.json's
/// text or empty.
std::unique_ptr<Tokenizer> loadHfTokenizer(const std::string &path,
                                           const std::string &json,
                                           const std::string &configPath,
                                           const std::string &config,
                                           std::string &error);
/// tokenizer.model (TokenizerSentencePiece.cpp).
std::unique_ptr<Tokenizer>
loadSentencePieceTokenizer(const std::string &path, const std::string &bytes,
                           const std::string &configPath,
                           const std::string &config, std::string &error);

} // namespace greta::rt::tok

#endif // GRETA_RT_LIB_TOKENIZERINTERNAL_H
