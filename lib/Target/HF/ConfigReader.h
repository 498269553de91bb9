//===- ConfigReader.h - Typed, located reads of config.json -----*- C++ -*-===//
//
// Internal to lib/Target/HF. llvm::json gives the line and column of syntax
// errors; for a key that is present but wrong we find its line and column in
// the text, so every diagnostic points at the culprit:
// `config.json:4:3: error: key ...`. One reader per JSON object (the
// top level, `rope_scaling`, ...).
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_LIB_TARGET_HF_CONFIGREADER_H
#define GRETA_LIB_TARGET_HF_CONFIGREADER_H

#include "greta/Target/HF/LlamaConfig.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Location.h"
#include "mlir/IR/MLIRContext.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>
#include <optional>
#include <string>
#include <vector>

namespace greta::hf::detail {
using llvm::StringRef;
namespace json = llvm::json;

/// Reads typed keys of the top-level object, emitting located errors.
class ConfigReader {
public:
  /// `objBegin` is the offset of the object's '{' in `text`.
  ConfigReader(StringRef text, StringRef fileName, mlir::MLIRContext &ctx,
               const json::Object &obj, size_t objBegin)
      : text(text), fileName(fileName), ctx(ctx), obj(obj), objBegin(objBegin) {
  }

  /// Offset of the last `"key":` directly inside this object (the one
  /// json::parse keeps, as Python's json does), or npos. Keys of nested
  /// objects and strings that merely contain the key do not count.
  size_t keyOffset(StringRef key) const {
    size_t found = StringRef::npos;
    int depth = 0;
    for (size_t i = objBegin; i < text.size(); ++i) {
      char ch = text[i];
      if (ch == '"') {
        size_t start = i++;
        while (i < text.size() && text[i] != '"')
          i += text[i] == '\\' ? 2 : 1;
        if (depth != 1 || text.slice(start + 1, i) != key)
          continue;
        size_t after = text.find_first_not_of(" \t\r\n", i + 1);
        if (after != StringRef::npos && text[after] == ':')
          found = start;
      } else if (ch == '{' || ch == '[') {
        ++depth;
      } else if ((ch == '}' || ch == ']') && --depth == 0) {
        break;
      }
    }
    return found;
  }

  /// Offset of the value of `key` (npos when absent).
  size_t valueOffset(StringRef key) const {
    size_t k = keyOffset(key);
    if (k == StringRef::npos)
      return k;
    size_t colon = text.find(':', k + key.size() + 2);
    return text.find_first_not_of(" \t\r\n", colon + 1);
  }

  /// Location of `"key":` in the text (the object's start when absent).
  mlir::Location locOf(StringRef key) const {
    size_t k = keyOffset(key);
    return locAtOffset(k == StringRef::npos ? objBegin : k);
  }

  mlir::InFlightDiagnostic error(StringRef key) const {
    return mlir::emitError(locOf(key));
  }

  /// The value of `key`, or null when absent or JSON null.
  const json::Value *get(StringRef key) const {
    const json::Value *v = obj.get(key);
    if (!v || v->kind() == json::Value::Null)
      return nullptr;
    return v;
  }

  mlir::FailureOr<int64_t> getInt(StringRef key,
                                  std::optional<int64_t> dflt = {}) const {
    const json::Value *v = get(key);
    if (!v) {
      if (dflt)
        return *dflt;
      return missing(key, "a positive integer");
    }
    std::optional<int64_t> i = v->getAsInteger();
    if (!i)
      return wrongType(key, "an integer", *v);
    if (*i <= 0) {
      error(key) << "key '" << key << "' must be positive, got " << *i;
      return mlir::failure();
    }
    return *i;
  }

  mlir::FailureOr<double> getNumber(StringRef key,
                                    std::optional<double> dflt = {}) const {
    const json::Value *v = get(key);
    if (!v) {
      if (dflt)
        return *dflt;
      return missing(key, "a positive number");
    }
    std::optional<double> d = v->getAsNumber();
    if (!d)
      return wrongType(key, "a number", *v);
    if (!(*d > 0) || !std::isfinite(*d)) {
      error(key) << "key '" << key << "' must be a positive number, got " << *d;
      return mlir::failure();
    }
    return *d;
  }

  mlir::FailureOr<bool> getBool(StringRef key, bool dflt) const {
    const json::Value *v = get(key);
    if (!v)
      return dflt;
    std::optional<bool> b = v->getAsBoolean();
    if (!b)
      return wrongType(key, "a boolean", *v);
    return *b;
  }

  /// An optional string key; "" when absent.
  mlir::FailureOr<std::string> getString(StringRef key) const {
    const json::Value *v = get(key);
    if (!v)
      return std::string();
    std::optional<StringRef> s = v->getAsString();
    if (!s)
      return wrongType(key, "a string", *v);
    return s->str();
  }

  mlir::LogicalResult missing(StringRef key, StringRef expected) const {
    mlir::emitError(locAtOffset(objBegin))
        << "missing required key '" << key << "' (" << expected << ")";
    return mlir::failure();
  }

  mlir::LogicalResult wrongType(StringRef key, StringRef expected,
                                const json::Value &got) const {
    std::string shown;
    llvm::raw_string_ostream os(shown);
    os << got;
    if (shown.size() > 40)
      shown = shown.substr(0, 37) + "...";
    error(key) << "key '" << key << "' must be " << expected << ", got "
               << kindName(got) << " " << shown;
    return mlir::failure();
  }

  static StringRef kindName(const json::Value &v) {
    switch (v.kind()) {
    case json::Value::Null:
      return "null";
    case json::Value::Boolean:
      return "boolean";
    case json::Value::Number:
      return "number";
    case json::Value::String:
      return "string";
    case json::Value::Array:
      return "array";
    case json::Value::Object:
      return "object";
    }
    return "value";
  }

  mlir::Location locAtOffset(size_t offset) const {
    StringRef before = text.take_front(offset);
    unsigned line = 1 + before.count('\n');
    size_t lineStart = before.rfind('\n');
    unsigned col =
        offset - (lineStart == StringRef::npos ? 0 : lineStart + 1) + 1;
    return mlir::FileLineColLoc::get(&ctx, fileName, line, col);
  }

  /// The value of `key` as written, JSON null included (nullptr if absent).
  const json::Value *raw(StringRef key) const { return obj.get(key); }

  /// A non-negative integer (0 allowed), `dflt` when absent or null.
  mlir::FailureOr<int64_t> getNonNegativeInt(StringRef key,
                                             int64_t dflt) const {
    const json::Value *v = get(key);
    if (!v)
      return dflt;
    std::optional<int64_t> i = v->getAsInteger();
    if (!i)
      return wrongType(key, "an integer", *v);
    if (*i < 0) {
      error(key) << "key '" << key << "' must not be negative, got " << *i;
      return mlir::failure();
    }
    return *i;
  }

  /// A reader of the object under `key` (which the caller checked is one).
  ConfigReader nested(StringRef key, const json::Object &child) const {
    return ConfigReader(text, fileName, ctx, child, valueOffset(key));
  }

  /// An optional number of any sign (NaN and inf refused); nullopt when
  /// absent or null.
  mlir::FailureOr<std::optional<double>> getOptionalNumber(StringRef key) const {
    const json::Value *v = get(key);
    if (!v)
      return std::optional<double>();
    std::optional<double> d = v->getAsNumber();
    if (!d)
      return wrongType(key, "a number", *v);
    if (!std::isfinite(*d)) {
      error(key) << "key '" << key << "' must be finite, got " << *d;
      return mlir::failure();
    }
    return std::optional<double>(*d);
  }

  /// An array of exactly `count` positive finite numbers.
  mlir::FailureOr<std::vector<double>> getNumberArray(StringRef key,
                                                      size_t count) const {
    const json::Value *v = get(key);
    if (!v) {
      mlir::emitError(locAtOffset(objBegin))
          << "missing required key '" << key << "' (an array of " << count
          << " positive numbers)";
      return mlir::failure();
    }
    const json::Array *a = v->getAsArray();
    if (!a)
      return wrongType(key, "an array of numbers", *v);
    if (a->size() != count) {
      error(key) << "key '" << key << "' has " << a->size()
                 << " numbers, expected " << count
                 << " (one per rotated pair: head_dim / 2)";
      return mlir::failure();
    }
    std::vector<double> out;
    for (const json::Value &e : *a) {
      std::optional<double> d = e.getAsNumber();
      if (!d || !std::isfinite(*d) || !(*d > 0)) {
        std::string shown;
        llvm::raw_string_ostream(shown) << e;
        error(key) << "key '" << key << "' entry " << out.size()
                   << " must be a positive number, got " << shown;
        return mlir::failure();
      }
      out.push_back(*d);
    }
    return out;
  }

  /// Every key of this object, for refusing the ones a family does not know.
  std::vector<std::string> keys() const {
    std::vector<std::string> out;
    for (const auto &kv : obj)
      out.push_back(kv.first.str());
    return out;
  }

private:
  StringRef text, fileName;
  mlir::MLIRContext &ctx;
  const json::Object &obj;
  size_t objBegin;
};

/// Reads the RoPE keys of `r` (the top-level object) into `c`: rope_theta,
/// rope_scaling or rope_parameters (RopeScaling.cpp). Needs c.headDim and
/// c.maxPositionEmbeddings.
mlir::LogicalResult parseRope(const ConfigReader &r, LlamaConfig &c);

/// The mixture-of-experts keys of Mixtral, Qwen2-MoE and Qwen3-MoE into
/// c.moe (MoEConfig.cpp); nothing for the dense families.
mlir::LogicalResult parseMoE(const ConfigReader &r, LlamaConfig &c);

} // namespace greta::hf::detail

#endif // GRETA_LIB_TARGET_HF_CONFIGREADER_H
