//===- TokenizerText.cpp - UTF-8, byte table, string map, patterns -*- C++
//-*-===//
//
// The text utilities the tokenizers share. Regular expressions are PCRE2's
// (8-bit, UTF + UCP, JIT where the platform has it): tokenizer.json patterns
// are written for Oniguruma, and the few escapes whose meaning differs are
// rewritten here, never re-implemented.
//
//===----------------------------------------------------------------------===//
#include "TokenizerInternal.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <nlohmann/json.hpp>

#include <cstring>
#include <functional>

using namespace greta::rt;
using namespace greta::rt::tok;
using json = nlohmann::json;

//===----------------------------------------------------------------------===//
// UTF-8
//===----------------------------------------------------------------------===//

namespace {
/// Length of the valid UTF-8 sequence at `i`, or 0 (Unicode 15, table 3-7).
size_t validSequenceAt(std::string_view s, size_t i) {
  auto byte = [&](size_t k) -> int {
    return i + k < s.size() ? static_cast<uint8_t>(s[i + k]) : -1;
  };
  int b0 = byte(0);
  if (b0 < 0x80)
    return 1;
  auto cont = [&](size_t k, int lo = 0x80, int hi = 0xBF) {
    int b = byte(k);
    return b >= lo && b <= hi;
  };
  if (b0 >= 0xC2 && b0 <= 0xDF)
    return cont(1) ? 2 : 0;
  if (b0 >= 0xE0 && b0 <= 0xEF) {
    int lo = b0 == 0xE0 ? 0xA0 : 0x80, hi = b0 == 0xED ? 0x9F : 0xBF;
    return cont(1, lo, hi) && cont(2) ? 3 : 0;
  }
  if (b0 >= 0xF0 && b0 <= 0xF4) {
    int lo = b0 == 0xF0 ? 0x90 : 0x80, hi = b0 == 0xF4 ? 0x8F : 0xBF;
    return cont(1, lo, hi) && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}

/// Bytes of the maximal subpart of an ill-formed sequence at `i` (>= 1):
/// the prefix of a valid sequence that is there, or the one bad byte.
size_t maximalSubpart(std::string_view s, size_t i) {
  uint8_t b0 = static_cast<uint8_t>(s[i]);
  size_t want = b0 >= 0xF0 ? 4 : b0 >= 0xE0 ? 3 : 2;
  if (b0 < 0xC2 || b0 > 0xF4)
    return 1;
  size_t n = 1;
  for (; n < want && i + n < s.size(); ++n) {
    uint8_t b = static_cast<uint8_t>(s[i + n]);
    int lo = 0x80, hi = 0xBF;
    if (n == 1) {
      lo = b0 == 0xE0 ? 0xA0 : b0 == 0xF0 ? 0x90 : 0x80;
      hi = b0 == 0xED ? 0x9F : b0 == 0xF4 ? 0x8F : 0xBF;
    }
    if (b < lo || b > hi)
      break;
  }
  return n;
}
} // namespace

bool greta::rt::checkUtf8(std::string_view text, std::string &error) {
  for (size_t i = 0; i < text.size();) {
    // ASCII runs dominate: skip them eight bytes at a time.
    while (i + 8 <= text.size()) {
      uint64_t w;
      std::memcpy(&w, text.data() + i, 8);
      if (w & 0x8080808080808080ull)
        break;
      i += 8;
    }
    if (i >= text.size())
      break;
    size_t n = validSequenceAt(text, i);
    if (!n) {
      char buf[96];
      std::snprintf(buf, sizeof buf,
                    "invalid UTF-8 at byte offset %zu (byte 0x%02x)", i,
                    static_cast<unsigned>(static_cast<uint8_t>(text[i])));
      error = buf;
      return false;
    }
    i += n;
  }
  return true;
}

char32_t greta::rt::tok::nextCodePoint(std::string_view s, size_t &i) {
  uint8_t b0 = static_cast<uint8_t>(s[i]);
  if (b0 < 0x80) {
    ++i;
    return b0;
  }
  size_t n = b0 >= 0xF0 ? 4 : b0 >= 0xE0 ? 3 : 2;
  char32_t cp = b0 & (0x7F >> n);
  for (size_t k = 1; k < n && i + k < s.size(); ++k)
    cp = (cp << 6) | (static_cast<uint8_t>(s[i + k]) & 0x3F);
  i += n;
  return cp;
}

void greta::rt::tok::appendUtf8(std::string &out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::string greta::rt::tok::lossyUtf8(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (size_t i = 0; i < bytes.size();) {
    if (size_t n = validSequenceAt(bytes, i)) {
      out.append(bytes.data() + i, n);
      i += n;
    } else {
      out += "\xEF\xBF\xBD"; // U+FFFD
      i += maximalSubpart(bytes, i);
    }
  }
  return out;
}

bool greta::rt::tok::isWhiteSpace(char32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 ||
         cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
         cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

namespace {
/// GPT-2's bytes_to_unicode(): printable Latin-1 bytes stand for
/// themselves, the other 68 for 256, 257, ... in byte order.
struct ByteTable {
  char32_t toCp[256];
  int fromCp[324];
  ByteTable() {
    std::fill(std::begin(fromCp), std::end(fromCp), -1);
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) ||
                       (b >= 0xAE && b <= 0xFF);
      toCp[b] = printable ? static_cast<char32_t>(b) : next++;
      fromCp[toCp[b]] = b;
    }
  }
};
const ByteTable &byteTable() {
  static const ByteTable table;
  return table;
}
} // namespace

char32_t greta::rt::tok::byteToCodePoint(uint8_t b) {
  return byteTable().toCp[b];
}

int greta::rt::tok::codePointToByte(char32_t cp) {
  return cp < 324 ? byteTable().fromCp[cp] : -1;
}

std::string greta::rt::quoteToken(std::string_view bytes) {
  std::string out = "'";
  for (size_t i = 0; i < bytes.size();) {
    size_t n = validSequenceAt(bytes, i);
    uint8_t b = static_cast<uint8_t>(bytes[i]);
    char buf[8];
    if (n == 0) {
      std::snprintf(buf, sizeof buf, "\\x%02x", b);
      out += buf;
      ++i;
      continue;
    }
    if (n == 1) {
      switch (b) {
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\'':
        out += "\\'";
        break;
      case '\\':
        out += "\\\\";
        break;
      default:
        if (b < 0x20 || b == 0x7F) {
          std::snprintf(buf, sizeof buf, "\\x%02x", b);
          out += buf;
        } else {
          out += static_cast<char>(b);
        }
      }
    } else {
      out.append(bytes.data() + i, n);
    }
    i += n;
  }
  return out + "'";
}

//===----------------------------------------------------------------------===//
// StringMap
//===----------------------------------------------------------------------===//

static uint64_t hashBytes(std::string_view s) {
  uint64_t h = std::hash<std::string_view>()(s);
  return h ? h : 1;
}

size_t StringMap::find(std::string_view key, uint64_t hash) const {
  size_t mask = slots_.size() - 1;
  for (size_t i = hash & mask;; i = (i + 1) & mask) {
    const Slot &s = slots_[i];
    if (s.value == kMissing)
      return i;
    if (s.hash == hash && s.keyLength == key.size() &&
        std::memcmp(arena_.data() + s.keyOffset, key.data(), key.size()) == 0)
      return i;
  }
}

void StringMap::grow() {
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(old.empty() ? 64 : old.size() * 2, Slot());
  size_t mask = slots_.size() - 1;
  for (const Slot &s : old) {
    if (s.value == kMissing)
      continue;
    size_t i = s.hash & mask;
    while (slots_[i].value != kMissing)
      i = (i + 1) & mask;
    slots_[i] = s;
  }
}

void StringMap::set(std::string_view key, uint32_t value) {
  if ((count_ + 1) * 2 > slots_.size())
    grow();
  uint64_t h = hashBytes(key);
  Slot &s = slots_[find(key, h)];
  if (s.value == kMissing) {
    s.hash = h;
    s.keyOffset = static_cast<uint32_t>(arena_.size());
    s.keyLength = static_cast<uint32_t>(key.size());
    arena_.append(key);
    ++count_;
  }
  s.value = value;
}

uint32_t StringMap::get(std::string_view key) const {
  if (slots_.empty())
    return kMissing;
  return slots_[find(key, hashBytes(key))].value;
}

//===----------------------------------------------------------------------===//
// TokenTrie
//===----------------------------------------------------------------------===//

void TokenTrie::insert(std::string_view s, int32_t token) {
  int32_t node = 0;
  for (char ch : s) {
    uint8_t b = static_cast<uint8_t>(ch);
    int32_t next = child(node, b);
    if (next < 0) {
      next = static_cast<int32_t>(nodes_.size());
      nodes_[node].kids.push_back({b, next});
      nodes_.emplace_back();
    }
    node = next;
  }
  nodes_[node].token = token;
  starts_[static_cast<uint8_t>(s[0])] = true;
}

int32_t TokenTrie::child(int32_t node, uint8_t b) const {
  for (auto &k : nodes_[node].kids)
    if (k.first == b)
      return k.second;
  return -1;
}

void TokenTrie::split(std::string_view text, std::vector<Section> &out) const {
  size_t start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (!starts_[static_cast<uint8_t>(text[i])])
      continue;
    int32_t node = 0, token = -1;
    size_t end = i;
    for (size_t j = i; j < text.size(); ++j) {
      node = child(node, static_cast<uint8_t>(text[j]));
      if (node < 0)
        break;
      if (nodes_[node].token >= 0) {
        token = nodes_[node].token;
        end = j + 1;
      }
    }
    if (token < 0)
      continue;
    if (i > start)
      out.push_back({text.substr(start, i - start), -1});
    out.push_back({text.substr(i, end - i), token});
    start = end;
    i = end - 1;
  }
  if (start < text.size())
    out.push_back({text.substr(start), -1});
}

//===----------------------------------------------------------------------===//
// Oniguruma -> PCRE2
//===----------------------------------------------------------------------===//

bool greta::rt::tok::translateOnigurumaPattern(std::string_view p,
                                               std::string &out,
                                               std::string &error) {
  out.clear();
  auto refuse = [&](const std::string &what) {
    error = "regex construct " + what + " is not supported";
    return false;
  };
  bool inClass = false;
  size_t classStart = 0; // index of the first item after '[' or '[^'
  for (size_t i = 0; i < p.size();) {
    char c = p[i];
    if (c == '\\') {
      if (i + 1 >= p.size())
        return refuse("'\\' at the end of the pattern");
      char d = p[i + 1];
      switch (d) {
      case 's':
        out += "\\p{White_Space}";
        break;
      case 'S':
        out += "\\P{White_Space}";
        break;
      case 'd':
        out += "\\p{Nd}";
        break;
      case 'D':
        out += "\\P{Nd}";
        break;
      case 'v':
        out += "\\x0B";
        break;
      case 'r':
      case 'n':
      case 't':
      case 'f':
      case 'e':
      case 'a':
        out += p.substr(i, 2);
        break;
      case 'p':
      case 'P': {
        size_t close = p.find('}', i);
        if (i + 2 >= p.size() || p[i + 2] != '{' || close == p.npos)
          return refuse("'\\" + std::string(1, d) + "' without {NAME}");
        out += p.substr(i, close + 1 - i);
        i = close + 1;
        continue;
      }
      case 'x': {
        size_t end = i + 2;
        if (end < p.size() && p[end] == '{') {
          end = p.find('}', end);
          if (end == p.npos)
            return refuse("unterminated '\\x{'");
          ++end;
        } else {
          while (end < p.size() && end < i + 4 &&
                 std::isxdigit(static_cast<unsigned char>(p[end])))
            ++end;
        }
        out += p.substr(i, end - i);
        i = end;
        continue;
      }
      case 'u': {
        if (i + 6 > p.size())
          return refuse("'\\u' without four hex digits");
        out += "\\x{" + std::string(p.substr(i + 2, 4)) + "}";
        i += 6;
        continue;
      }
      default:
        if (std::isalnum(static_cast<unsigned char>(d)))
          return refuse("'\\" + std::string(1, d) + "'");
        out += p.substr(i, 2); // an escaped literal: \. \- \[ \' ...
      }
      i += 2;
      continue;
    }
    if (inClass) {
      if (c == '[')
        return refuse(i + 1 < p.size() && p[i + 1] == ':'
                          ? "POSIX bracket '[:'"
                          : "nested character class '[' in a class");
      if (c == '&' && i + 1 < p.size() && p[i + 1] == '&')
        return refuse("class intersection '&&'");
      if (c == ']' && i > classStart)
        inClass = false;
      out += c;
      ++i;
      continue;
    }
    if (c == '[') {
      inClass = true;
      out += c;
      ++i;
      if (i < p.size() && p[i] == '^')
        out += p[i++];
      classStart = i;
      continue;
    }
    if (c == '(' && i + 1 < p.size() && p[i + 1] == '?') {
      std::string_view rest = p.substr(i + 2);
      static const char *const kGroups[] = {
          ":", "=", "!", "<=", "<!", ">", "i:", "i)"};
      bool known = false;
      for (const char *g : kGroups)
        if (rest.substr(0, std::strlen(g)) == g) {
          known = true;
          out += "(?";
          out += g;
          i += 2 + std::strlen(g);
          break;
        }
      if (!known)
        return refuse("group '(?" + std::string(rest.substr(0, 2)) + "'");
      continue;
    }
    if (c == '{' && i + 1 < p.size() && p[i + 1] == ',') {
      out += "{0"; // Oniguruma's {,n} is {0,n}; PCRE2 10.42 reads a literal
      ++i;
      continue;
    }
    out += c;
    ++i;
  }
  if (inClass)
    return refuse("unterminated character class");
  return true;
}

//===----------------------------------------------------------------------===//
// Pattern
//===----------------------------------------------------------------------===//

Pattern::~Pattern() {
  if (code_)
    pcre2_code_free(code_);
}

std::unique_ptr<Pattern> Pattern::literal(std::string text,
                                          std::string &error) {
  if (text.empty()) {
    error = "empty String pattern";
    return nullptr;
  }
  std::unique_ptr<Pattern> p(new Pattern());
  p->literal_ = std::move(text);
  return p;
}

std::unique_ptr<Pattern> Pattern::regex(std::string_view pattern,
                                        std::string &error) {
  std::string translated;
  if (!translateOnigurumaPattern(pattern, translated, error))
    return nullptr;
  int code = 0;
  PCRE2_SIZE offset = 0;
  pcre2_compile_context *ctx = pcre2_compile_context_create(nullptr);
  // '.' and the line anchors know \n only, as in Oniguruma.
  pcre2_set_newline(ctx, PCRE2_NEWLINE_LF);
  pcre2_code *re = pcre2_compile(
      reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
      PCRE2_UTF | PCRE2_UCP | PCRE2_MULTILINE, &code, &offset, ctx);
  pcre2_compile_context_free(ctx);
  if (!re) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(code, msg, sizeof msg);
    error = "PCRE2 cannot compile the regex (as '" + translated +
            "'): " + reinterpret_cast<char *>(msg) + " at offset " +
            std::to_string(offset);
    return nullptr;
  }
  std::unique_ptr<Pattern> p(new Pattern());
  p->code_ = re;
  // Without JIT (a platform PCRE2 has none for) the interpreter gives the
  // same matches, slower.
  p->jit_ = pcre2_jit_compile(re, PCRE2_JIT_COMPLETE) == 0;
  return p;
}

std::unique_ptr<Pattern>
Pattern::fromJson(const json &j, const std::string &what, std::string &error) {
  if (j.is_object() && j.size() == 1) {
    if (j.contains("String") && j["String"].is_string())
      if (auto p = literal(j["String"].get<std::string>(), error))
        return p;
    if (j.contains("Regex") && j["Regex"].is_string())
      if (auto p = regex(j["Regex"].get<std::string>(), error))
        return p;
    if (!error.empty()) {
      error = what + ": " + error;
      return nullptr;
    }
  }
  error = what + ": expected {\"String\": ...} or {\"Regex\": ...}, got " +
          j.dump().substr(0, 80);
  return nullptr;
}

Pattern::Finder::Finder(const Pattern &pattern) : pattern_(pattern) {
  if (!pattern.code_)
    return;
  matchData_ = pcre2_match_data_create_from_pattern(pattern.code_, nullptr);
}

Pattern::Finder::~Finder() {
  if (matchData_)
    pcre2_match_data_free(static_cast<pcre2_match_data *>(matchData_));
  if (matchContext_)
    pcre2_match_context_free(static_cast<pcre2_match_context *>(matchContext_));
  if (jitStack_)
    pcre2_jit_stack_free(static_cast<pcre2_jit_stack *>(jitStack_));
}

int Pattern::Finder::next(std::string_view subject, size_t start, size_t &begin,
                          size_t &end) {
  if (!pattern_.code_) {
    size_t at = subject.find(pattern_.literal_, start);
    if (at == subject.npos)
      return 0;
    begin = at;
    end = at + pattern_.literal_.size();
    return 1;
  }
  auto *md = static_cast<pcre2_match_data *>(matchData_);
  auto *s = reinterpret_cast<PCRE2_SPTR>(subject.data());
  while (start <= subject.size()) {
    // The subject was checked as UTF-8 once, on entry to encode().
    auto *mc = static_cast<pcre2_match_context *>(matchContext_);
    int rc = pattern_.jit_ ? pcre2_jit_match(pattern_.code_, s, subject.size(),
                                             start, PCRE2_NO_UTF_CHECK, md, mc)
                           : pcre2_match(pattern_.code_, s, subject.size(),
                                         start, PCRE2_NO_UTF_CHECK, md, mc);
    if (rc == PCRE2_ERROR_NOMATCH)
      return 0;
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT && !jitStack_) {
      // A long run that backtracks may need more than the default 32 KiB
      // of JIT stack: give it up to 256 MiB (reserved, used as needed).
      mc = pcre2_match_context_create(nullptr);
      auto *stack = pcre2_jit_stack_create(1 << 20, 256 << 20, nullptr);
      pcre2_jit_stack_assign(mc, nullptr, stack);
      matchContext_ = mc;
      jitStack_ = stack;
      continue;
    }
    if (rc < 0) {
      // A limit (match, depth, JIT stack): the split would be wrong, so it
      // is an error, never "no more matches".
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(rc, msg, sizeof msg);
      error_ = "PCRE2 match failed at byte offset " + std::to_string(start) +
               ": " + reinterpret_cast<char *>(msg);
      return -1;
    }
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    if (ov[1] > ov[0]) {
      begin = ov[0];
      end = ov[1];
      return 1;
    }
    // An empty match: look again one code point further.
    start = ov[0] + 1;
    while (start < subject.size() &&
           (static_cast<uint8_t>(subject[start]) & 0xC0) == 0x80)
      ++start;
  }
  return 0;
}
