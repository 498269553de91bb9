//===- TokenizerStages.cpp - Normalizers, pre-tokenizers, decoders -*- C++
//-*-===//
//
// The tokenizer.json stages GRETA implements, each as the Rust `tokenizers`
// crate defines it (where the JavaScript reference agrees; where they differ
// docs/TOKENIZERS.md says which one is followed). Every other type, and every
// option that would change the result, is refused by name.
//
//===----------------------------------------------------------------------===//
#include "TokenizerInternal.h"

#include <nlohmann/json.hpp>
#include <unicode/bytestream.h>
#include <unicode/normalizer2.h>

using namespace greta::rt;
using namespace greta::rt::tok;
using json = nlohmann::json;

namespace {
std::string typeOf(const json &j) {
  if (j.is_object() && j.contains("type") && j["type"].is_string())
    return j["type"].get<std::string>();
  return "";
}

/// Reads an optional field of type T; a field of another type is an error.
template <typename T>
bool field(const json &j, const char *key, T &out, const std::string &what,
           std::string &error) {
  if (!j.contains(key) || j[key].is_null())
    return true;
  try {
    out = j[key].get<T>();
    return true;
  } catch (const json::exception &) {
    error = what + ": field '" + key + "' has the wrong type (" +
            j[key].dump().substr(0, 60) + ")";
    return false;
  }
}

bool unsupported(const std::string &what, const std::string &type,
                 std::string &error) {
  error = what + " type '" + type + "' is not supported";
  return false;
}

/// Replaces every non-overlapping match of `pattern`, left to right.
bool replaceAll(const Pattern &pattern, const std::string &content,
                std::string &text, std::string &error) {
  Pattern::Finder finder(pattern);
  std::string out;
  size_t pos = 0, b, e;
  int rc;
  bool any = false;
  while ((rc = finder.next(text, pos, b, e)) == 1) {
    out.append(text, pos, b - pos);
    out += content;
    pos = e;
    any = true;
  }
  if (rc < 0) {
    error = finder.error();
    return false;
  }
  if (any) {
    out.append(text, pos, text.npos);
    text = std::move(out);
  }
  return true;
}

//===----------------------------------------------------------------------===//
// Normalizers
//===----------------------------------------------------------------------===//

struct SequenceNormalizer : Normalizer {
  std::vector<std::unique_ptr<Normalizer>> stages;
  bool apply(std::string &text, std::string &error) const override {
    for (const auto &s : stages)
      if (!s->apply(text, error))
        return false;
    return true;
  }
};

struct PrependNormalizer : Normalizer {
  std::string prepend;
  bool apply(std::string &text, std::string &) const override {
    if (!text.empty()) // as the Rust crate: an empty text stays empty
      text.insert(0, prepend);
    return true;
  }
};

struct ReplaceNormalizer : Normalizer {
  std::unique_ptr<Pattern> pattern;
  std::string content;
  bool apply(std::string &text, std::string &error) const override {
    return replaceAll(*pattern, content, text, error);
  }
};

/// NFC, NFD, NFKC, NFKD through ICU (Debian's libicu).
struct UnicodeNormalizer : Normalizer {
  const icu::Normalizer2 *impl = nullptr;
  bool apply(std::string &text, std::string &error) const override {
    UErrorCode status = U_ZERO_ERROR;
    if (impl->isNormalizedUTF8(text, status) && U_SUCCESS(status))
      return true;
    status = U_ZERO_ERROR;
    std::string out;
    icu::StringByteSink<std::string> sink(&out,
                                          static_cast<int32_t>(text.size()));
    impl->normalizeUTF8(0, text, sink, nullptr, status);
    if (U_FAILURE(status)) {
      error = std::string("ICU normalization failed: ") + u_errorName(status);
      return false;
    }
    text = std::move(out);
    return true;
  }
};

bool buildNormalizer(const json &j, std::unique_ptr<Normalizer> &out,
                     std::string &error) {
  std::string type = typeOf(j);
  std::string what = "normalizer '" + type + "'";
  if (type == "Sequence") {
    auto seq = std::make_unique<SequenceNormalizer>();
    if (!j.contains("normalizers") || !j["normalizers"].is_array()) {
      error = what + ": 'normalizers' must be an array";
      return false;
    }
    for (const json &n : j["normalizers"]) {
      std::unique_ptr<Normalizer> stage;
      if (!buildNormalizer(n, stage, error))
        return false;
      seq->stages.push_back(std::move(stage));
    }
    out = std::move(seq);
    return true;
  }
  if (type == "Prepend") {
    auto p = std::make_unique<PrependNormalizer>();
    if (!j.contains("prepend") || !j["prepend"].is_string()) {
      error = what + ": 'prepend' must be a string";
      return false;
    }
    p->prepend = j["prepend"].get<std::string>();
    out = std::move(p);
    return true;
  }
  if (type == "Replace") {
    auto r = std::make_unique<ReplaceNormalizer>();
    if (!field(j, "content", r->content, what, error))
      return false;
    r->pattern = Pattern::fromJson(j.value("pattern", json()), what, error);
    if (!r->pattern)
      return false;
    out = std::move(r);
    return true;
  }
  if (type == "NFC" || type == "NFD" || type == "NFKC" || type == "NFKD") {
    UErrorCode status = U_ZERO_ERROR;
    auto u = std::make_unique<UnicodeNormalizer>();
    u->impl = type == "NFC"    ? icu::Normalizer2::getNFCInstance(status)
              : type == "NFD"  ? icu::Normalizer2::getNFDInstance(status)
              : type == "NFKC" ? icu::Normalizer2::getNFKCInstance(status)
                               : icu::Normalizer2::getNFKDInstance(status);
    if (U_FAILURE(status) || !u->impl) {
      error =
          what + ": ICU has no " + type + " data (" + u_errorName(status) + ")";
      return false;
    }
    out = std::move(u);
    return true;
  }
  return unsupported("normalizer", type, error);
}

//===----------------------------------------------------------------------===//
// Pre-tokenizers
//===----------------------------------------------------------------------===//

struct SequencePreTokenizer : PreTokenizer {
  std::vector<std::unique_ptr<PreTokenizer>> stages;
  bool split(std::string_view piece, size_t section,
             std::vector<std::string_view> &out, std::deque<std::string> &store,
             std::string &error) const override {
    std::vector<std::string_view> current{piece}, next;
    for (const auto &s : stages) {
      next.clear();
      for (std::string_view p : current)
        if (!s->split(p, section, next, store, error))
          return false;
      current.swap(next);
    }
    out.insert(out.end(), current.begin(), current.end());
    return true;
  }
  bool isByteLevel() const override {
    return !stages.empty() && stages.back()->isByteLevel();
  }
};

/// Split with behavior Isolated: every match and every stretch between two
/// matches is a piece.
struct SplitPreTokenizer : PreTokenizer {
  std::unique_ptr<Pattern> pattern;
  bool split(std::string_view piece, size_t, std::vector<std::string_view> &out,
             std::deque<std::string> &, std::string &error) const override {
    return isolate(*pattern, piece, out, error);
  }
  static bool isolate(const Pattern &pattern, std::string_view piece,
                      std::vector<std::string_view> &out, std::string &error) {
    Pattern::Finder finder(pattern);
    size_t pos = 0, b, e;
    int rc;
    while ((rc = finder.next(piece, pos, b, e)) == 1) {
      if (b > pos)
        out.push_back(piece.substr(pos, b - pos));
      out.push_back(piece.substr(b, e - b));
      pos = e;
    }
    if (rc < 0) {
      error = finder.error();
      return false;
    }
    if (pos < piece.size())
      out.push_back(piece.substr(pos));
    return true;
  }
};

/// ByteLevel: the byte-to-char mapping itself is left to the model (it reads
/// raw bytes); this stage adds the prefix space and, with use_regex, splits
/// with GPT-2's pattern.
struct ByteLevelPreTokenizer : PreTokenizer {
  bool addPrefixSpace = false;
  std::unique_ptr<Pattern> gpt2;
  bool split(std::string_view piece, size_t, std::vector<std::string_view> &out,
             std::deque<std::string> &store,
             std::string &error) const override {
    if (addPrefixSpace && (piece.empty() || piece[0] != ' '))
      piece = store.emplace_back(" " + std::string(piece));
    if (!gpt2) {
      out.push_back(piece);
      return true;
    }
    return SplitPreTokenizer::isolate(*gpt2, piece, out, error);
  }
  bool isByteLevel() const override { return true; }
};

/// Metaspace with split false: spaces become the replacement, which is also
/// prepended (prepend_scheme always, or first: the text's first section).
struct MetaspacePreTokenizer : PreTokenizer {
  std::string replacement;
  std::string scheme; // always | first | never
  bool split(std::string_view piece, size_t section,
             std::vector<std::string_view> &out, std::deque<std::string> &store,
             std::string &) const override {
    std::string s;
    s.reserve(piece.size() + replacement.size());
    for (char c : piece) {
      if (c == ' ')
        s += replacement;
      else
        s += c;
    }
    bool starts = s.compare(0, replacement.size(), replacement) == 0;
    if (!starts && (scheme == "always" || (scheme == "first" && section == 0)))
      s.insert(0, replacement);
    out.push_back(store.emplace_back(std::move(s)));
    return true;
  }
};

bool buildPreTokenizer(const json &j, std::unique_ptr<PreTokenizer> &out,
                       std::string &error) {
  std::string type = typeOf(j);
  std::string what = "pre_tokenizer '" + type + "'";
  if (type == "Sequence") {
    auto seq = std::make_unique<SequencePreTokenizer>();
    if (!j.contains("pretokenizers") || !j["pretokenizers"].is_array()) {
      error = what + ": 'pretokenizers' must be an array";
      return false;
    }
    for (const json &n : j["pretokenizers"]) {
      std::unique_ptr<PreTokenizer> stage;
      if (!buildPreTokenizer(n, stage, error))
        return false;
      // The model reads raw bytes, so nothing may look at the mapped chars.
      if (!seq->stages.empty() && seq->stages.back()->isByteLevel()) {
        error = what + ": a stage after ByteLevel is not supported";
        return false;
      }
      seq->stages.push_back(std::move(stage));
    }
    out = std::move(seq);
    return true;
  }
  if (type == "Split") {
    std::string behavior;
    bool invert = false;
    if (!field(j, "behavior", behavior, what, error) ||
        !field(j, "invert", invert, what, error))
      return false;
    if (behavior != "Isolated") {
      error = what + ": behavior '" + behavior + "' is not supported";
      return false;
    }
    if (invert) {
      error = what + ": invert true is not supported";
      return false;
    }
    auto s = std::make_unique<SplitPreTokenizer>();
    s->pattern = Pattern::fromJson(j.value("pattern", json()), what, error);
    if (!s->pattern)
      return false;
    out = std::move(s);
    return true;
  }
  if (type == "ByteLevel") {
    auto b = std::make_unique<ByteLevelPreTokenizer>();
    bool useRegex = true;
    if (!field(j, "add_prefix_space", b->addPrefixSpace, what, error) ||
        !field(j, "use_regex", useRegex, what, error))
      return false;
    if (useRegex) {
      b->gpt2 = Pattern::regex("'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| "
                               "?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
                               error);
      if (!b->gpt2)
        return false;
    }
    out = std::move(b);
    return true;
  }
  if (type == "Metaspace") {
    auto m = std::make_unique<MetaspacePreTokenizer>();
    m->replacement = "\xE2\x96\x81"; // U+2581
    m->scheme = "always";
    bool split = true;
    if (!field(j, "replacement", m->replacement, what, error) ||
        !field(j, "prepend_scheme", m->scheme, what, error) ||
        !field(j, "split", split, what, error))
      return false;
    if (j.contains("add_prefix_space") && !j.contains("prepend_scheme")) {
      bool add = true; // the format before prepend_scheme existed
      if (!field(j, "add_prefix_space", add, what, error))
        return false;
      m->scheme = add ? "always" : "never";
    }
    if (split) {
      error = what + ": split true is not supported";
      return false;
    }
    if (m->replacement.empty() ||
        (m->scheme != "always" && m->scheme != "first" &&
         m->scheme != "never")) {
      error = what + ": prepend_scheme '" + m->scheme + "' is not supported";
      return false;
    }
    out = std::move(m);
    return true;
  }
  return unsupported("pre_tokenizer", type, error);
}

//===----------------------------------------------------------------------===//
// Decoders
//===----------------------------------------------------------------------===//

struct SequenceDecoder : Decoder {
  std::vector<std::unique_ptr<Decoder>> stages;
  void apply(std::vector<std::string> &tokens, DecodeMode mode) const override {
    for (const auto &s : stages)
      s->apply(tokens, mode);
  }
};

/// GPT-2 chars back to bytes. A token with a char outside the table keeps
/// its UTF-8 (as the Rust crate does); added tokens pass through whole and
/// split the byte runs (as the JavaScript reference does).
struct ByteLevelDecoder : Decoder {
  std::shared_ptr<const std::vector<std::string>> addedTokens;
  void apply(std::vector<std::string> &tokens, DecodeMode mode) const override {
    std::vector<std::string> out;
    std::string bytes;
    bool open = false;
    auto flush = [&] {
      if (open)
        out.push_back(mode == DecodeMode::Text ? lossyUtf8(bytes) : bytes);
      bytes.clear();
      open = false;
    };
    for (const std::string &t : tokens) {
      if (addedTokens && std::find(addedTokens->begin(), addedTokens->end(),
                                   t) != addedTokens->end()) {
        flush();
        out.push_back(t);
        continue;
      }
      open = true;
      std::string mapped;
      bool all = true;
      for (size_t i = 0; i < t.size() && all;) {
        int b = codePointToByte(nextCodePoint(t, i));
        if (b < 0)
          all = false;
        else
          mapped += static_cast<char>(b);
      }
      bytes += all ? mapped : t;
    }
    flush();
    tokens = std::move(out);
  }
};

struct ReplaceDecoder : Decoder {
  std::unique_ptr<Pattern> pattern;
  std::string content;
  void apply(std::vector<std::string> &tokens, DecodeMode) const override {
    std::string unused;
    for (std::string &t : tokens)
      replaceAll(*pattern, content, t, unused); // a literal cannot fail
  }
};

/// Runs of <0xXX> tokens become their bytes; a run that is not UTF-8
/// becomes one U+FFFD per byte (the Rust crate's rule).
struct ByteFallbackDecoder : Decoder {
  static int byteOf(const std::string &t) {
    if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>' ||
        !std::isxdigit(static_cast<unsigned char>(t[3])) ||
        !std::isxdigit(static_cast<unsigned char>(t[4])))
      return -1;
    return std::stoi(t.substr(3, 2), nullptr, 16);
  }
  void apply(std::vector<std::string> &tokens, DecodeMode mode) const override {
    std::vector<std::string> out;
    std::string run;
    size_t runLength = 0;
    auto flush = [&] {
      if (!runLength)
        return;
      std::string unused;
      if (mode == DecodeMode::TokenBytes || checkUtf8(run, unused))
        out.push_back(run);
      else
        for (size_t k = 0; k < runLength; ++k)
          out.push_back("\xEF\xBF\xBD");
      run.clear();
      runLength = 0;
    };
    for (std::string &t : tokens) {
      int b = byteOf(t);
      if (b >= 0) {
        run += static_cast<char>(b);
        ++runLength;
      } else {
        flush();
        out.push_back(std::move(t));
      }
    }
    flush();
    tokens = std::move(out);
  }
};

struct FuseDecoder : Decoder {
  void apply(std::vector<std::string> &tokens, DecodeMode) const override {
    std::string all;
    for (const std::string &t : tokens)
      all += t;
    tokens.assign(1, std::move(all));
  }
};

/// Strips up to `start` leading and `stop` trailing `content` chars from
/// each token (Text mode only: a report shows the space).
struct StripDecoder : Decoder {
  std::string content; // one UTF-8 char
  size_t start = 0, stop = 0;
  void apply(std::vector<std::string> &tokens, DecodeMode mode) const override {
    if (mode != DecodeMode::Text)
      return;
    for (std::string &t : tokens) {
      size_t b = 0, e = t.size();
      for (size_t k = 0;
           k < start && t.compare(b, content.size(), content) == 0; ++k)
        b += content.size();
      for (size_t k = 0;
           k < stop && e >= b + content.size() &&
           t.compare(e - content.size(), content.size(), content) == 0;
           ++k)
        e -= content.size();
      t = t.substr(b, e - b);
    }
  }
};

struct MetaspaceDecoder : Decoder {
  std::string replacement;
  void apply(std::vector<std::string> &tokens, DecodeMode mode) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string &t = tokens[i];
      std::string s;
      for (size_t p = 0; p < t.size();) {
        if (t.compare(p, replacement.size(), replacement) == 0) {
          s += ' ';
          p += replacement.size();
        } else {
          s += t[p++];
        }
      }
      if (i == 0 && mode == DecodeMode::Text && !s.empty() && s[0] == ' ')
        s.erase(0, 1);
      t = std::move(s);
    }
  }
};

bool buildDecoder(const json &j,
                  const std::shared_ptr<const std::vector<std::string>> &added,
                  std::unique_ptr<Decoder> &out, std::string &error) {
  std::string type = typeOf(j);
  std::string what = "decoder '" + type + "'";
  if (type == "Sequence") {
    auto seq = std::make_unique<SequenceDecoder>();
    if (!j.contains("decoders") || !j["decoders"].is_array()) {
      error = what + ": 'decoders' must be an array";
      return false;
    }
    for (const json &n : j["decoders"]) {
      std::unique_ptr<Decoder> stage;
      if (!buildDecoder(n, added, stage, error))
        return false;
      seq->stages.push_back(std::move(stage));
    }
    out = std::move(seq);
    return true;
  }
  if (type == "ByteLevel") {
    auto b = std::make_unique<ByteLevelDecoder>();
    b->addedTokens = added;
    out = std::move(b);
    return true;
  }
  if (type == "Replace") {
    auto r = std::make_unique<ReplaceDecoder>();
    if (!field(j, "content", r->content, what, error))
      return false;
    r->pattern = Pattern::fromJson(j.value("pattern", json()), what, error);
    if (!r->pattern)
      return false;
    if (!r->pattern->isLiteral()) {
      error = what + ": a Regex pattern is not supported";
      return false;
    }
    out = std::move(r);
    return true;
  }
  if (type == "ByteFallback") {
    out = std::make_unique<ByteFallbackDecoder>();
    return true;
  }
  if (type == "Fuse") {
    out = std::make_unique<FuseDecoder>();
    return true;
  }
  if (type == "Strip") {
    auto s = std::make_unique<StripDecoder>();
    if (!field(j, "content", s->content, what, error) ||
        !field(j, "start", s->start, what, error) ||
        !field(j, "stop", s->stop, what, error))
      return false;
    size_t i = 0;
    if (s->content.empty() ||
        (nextCodePoint(s->content, i), i != s->content.size())) {
      error = what + ": 'content' must be one character";
      return false;
    }
    out = std::move(s);
    return true;
  }
  if (type == "Metaspace") {
    auto m = std::make_unique<MetaspaceDecoder>();
    m->replacement = "\xE2\x96\x81";
    std::string scheme = "always";
    if (!field(j, "replacement", m->replacement, what, error) ||
        !field(j, "prepend_scheme", scheme, what, error))
      return false;
    if (scheme == "never" || m->replacement.empty()) {
      error = what + ": prepend_scheme '" + scheme + "' is not supported";
      return false;
    }
    out = std::move(m);
    return true;
  }
  return unsupported("decoder", type, error);
}
} // namespace

std::unique_ptr<Normalizer> greta::rt::tok::makeNormalizer(const json &j,
                                                           std::string &error) {
  std::unique_ptr<Normalizer> n;
  if (!buildNormalizer(j, n, error))
    return nullptr;
  return n;
}

std::unique_ptr<PreTokenizer>
greta::rt::tok::makePreTokenizer(const json &j, std::string &error) {
  std::unique_ptr<PreTokenizer> p;
  if (!buildPreTokenizer(j, p, error))
    return nullptr;
  return p;
}

std::unique_ptr<Decoder> greta::rt::tok::makeDecoder(
    const json &j, std::shared_ptr<const std::vector<std::string>> added,
    std::string &error) {
  std::unique_ptr<Decoder> d;
  if (!buildDecoder(j, added, d, error))
    return nullptr;
  return d;
}
