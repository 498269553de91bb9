//===- Prompt.cpp - Reading prompts: token ids or text ----------*- C++ -*-===//
#include "greta/rt/Prompt.h"
#include "greta/rt/Tokenizer.h"
#include "greta/rt/Trace.h"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

using namespace greta::rt;
using json = nlohmann::json;

namespace {
size_t lineOf(const std::string &text, size_t offset) {
  size_t line = 1;
  for (size_t i = 0; i < offset && i < text.size(); ++i)
    line += text[i] == '\n';
  return line;
}

/// Byte offset of the `index`-th element of the top-level JSON array in
/// `text` (already known to be valid JSON), for error messages.
size_t elementOffset(const std::string &text, size_t index) {
  auto skipSpace = [&](size_t i) {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t' ||
                               text[i] == '\r' || text[i] == '\n'))
      ++i;
    return i;
  };
  int depth = 0;
  bool inString = false;
  size_t seen = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (inString) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        inString = false;
      continue;
    }
    if (c == '"')
      inString = true;
    else if (c == '[' || c == '{') {
      if (++depth == 1 && index == 0)
        return skipSpace(i + 1);
    } else if (c == ']' || c == '}')
      --depth;
    else if (c == ',' && depth == 1 && ++seen == index)
      return skipSpace(i + 1);
  }
  return 0;
}
} // namespace

std::optional<std::vector<int64_t>>
greta::rt::readPrompt(const std::string &path, std::string &error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = path + ": cannot open prompt file";
    return std::nullopt;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  std::vector<int64_t> ids;

  size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && text[first] == '{') {
    error = path + ": a text prompt ({\"text\": ...}): give --tokenizer";
    return std::nullopt;
  }
  if (first != std::string::npos && text[first] == '[') {
    json j;
    try {
      j = json::parse(text);
    } catch (const json::parse_error &e) {
      error = path + ":" +
              std::to_string(lineOf(text, e.byte ? e.byte - 1 : 0)) +
              ": invalid JSON: " + e.what();
      return std::nullopt;
    } catch (const json::exception &e) {
      // Not a syntax error: a number out of range ("1e999"), ...
      error = path + ": invalid JSON: " + e.what();
      return std::nullopt;
    }
    for (size_t i = 0; i < j.size(); ++i) {
      const json &v = j[i];
      auto bad = [&](const std::string &why) {
        error = path + ":" +
                std::to_string(lineOf(text, elementOffset(text, i))) +
                ": token " + std::to_string(i) + " (" +
                // dump() recurses: a deeply nested element would overflow
                // the stack. Name a structured element's type instead.
                (v.is_structured() ? std::string(v.type_name()) : v.dump()) +
                ") " + why;
        return std::nullopt;
      };
      if (v.is_number_unsigned())
        ids.push_back(static_cast<int64_t>(v.get<uint64_t>()));
      else if (v.is_number_integer())
        return bad("is negative");
      else
        return bad("is not an integer token id");
      if (ids.back() < 0)
        return bad("does not fit in int64");
    }
  } else {
    std::istringstream lines(text);
    std::string line;
    size_t lineNo = 0;
    while (std::getline(lines, line)) {
      ++lineNo;
      size_t b = line.find_first_not_of(" \t\r");
      if (b == std::string::npos)
        continue;
      size_t e = line.find_last_not_of(" \t\r");
      std::string item = line.substr(b, e - b + 1);
      auto bad = [&](const std::string &why) {
        error = path + ":" + std::to_string(lineNo) + ": '" + item + "' " + why;
        return std::nullopt;
      };
      errno = 0;
      char *end = nullptr;
      long long v = std::strtoll(item.c_str(), &end, 10);
      if (end == item.c_str() || *end)
        return bad("is not a token id (expected one integer per line)");
      if (errno == ERANGE)
        return bad("does not fit in int64");
      if (v < 0)
        return bad("is negative");
      ids.push_back(v);
    }
  }
  if (ids.empty()) {
    error = path + ": the prompt holds no token ids";
    return std::nullopt;
  }
  return ids;
}

namespace {
bool readAll(const std::string &path, std::string &out, std::string &error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = path + ": cannot open prompt file";
    return false;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  out = ss.str();
  return true;
}

/// {"text": "...", "add_special_tokens": bool}; nullopt (no error) when the
/// file is not a JSON object.
std::optional<std::pair<std::string, bool>>
readTextObject(const std::string &path, const std::string &content,
               std::string &error) {
  size_t first = content.find_first_not_of(" \t\r\n");
  if (first == std::string::npos || content[first] != '{')
    return std::nullopt;
  json j = json::parse(content, nullptr, false);
  if (j.is_discarded()) {
    error = path + ": invalid JSON";
    return std::nullopt;
  }
  for (auto it = j.begin(); it != j.end(); ++it)
    if (it.key() != "text" && it.key() != "add_special_tokens") {
      error = path + ": unknown field '" + it.key() +
              "' (a text prompt holds \"text\" and optionally "
              "\"add_special_tokens\")";
      return std::nullopt;
    }
  if (!j.contains("text") || !j["text"].is_string()) {
    error = path + ": \"text\" must be a string";
    return std::nullopt;
  }
  bool add = true;
  if (j.contains("add_special_tokens")) {
    if (!j["add_special_tokens"].is_boolean()) {
      error = path + ": \"add_special_tokens\" must be true or false";
      return std::nullopt;
    }
    add = j["add_special_tokens"].get<bool>();
  }
  return std::pair{j["text"].get<std::string>(), add};
}
} // namespace

std::optional<Prompt> greta::rt::loadPrompt(const PromptRequest &request,
                                            std::string &error) {
  if (request.text && !request.path.empty()) {
    error = "give either --prompt FILE or --prompt-text TEXT, not both";
    return std::nullopt;
  }
  if (!request.text && request.path.empty()) {
    error = "no prompt: give --prompt FILE or --prompt-text TEXT";
    return std::nullopt;
  }
  Prompt p;
  if (!request.tokenizer.empty()) {
    p.tokenizer = Tokenizer::load(request.tokenizer, error);
    if (!p.tokenizer) {
      error = "--tokenizer " + error;
      return std::nullopt;
    }
  }
  std::string where = request.text ? "--prompt-text" : request.path;
  std::optional<std::string> text = request.text;
  bool addSpecial = true;
  if (!text) {
    namespace fs = std::filesystem;
    p.name = fs::path(request.path).stem().string();
    std::string ext = fs::path(request.path).extension().string();
    std::string content;
    if (ext == ".txt" || ext == ".md") {
      if (!readAll(request.path, content, error))
        return std::nullopt;
      text = std::move(content);
    } else if (ext == ".json") {
      if (!readAll(request.path, content, error))
        return std::nullopt;
      std::string objectError;
      auto object = readTextObject(request.path, content, objectError);
      if (!objectError.empty()) {
        error = objectError;
        return std::nullopt;
      }
      if (object) {
        text = std::move(object->first);
        addSpecial = object->second;
      }
    }
  } else {
    p.name = "prompt-text";
  }
  if (!text) {
    auto ids = readPrompt(request.path, error);
    if (!ids)
      return std::nullopt;
    p.ids = std::move(*ids);
    return p;
  }
  if (!p.tokenizer) {
    error = where + " is text: give --tokenizer (tokenizer.json, "
                    "tokenizer.model, or the checkpoint directory)";
    return std::nullopt;
  }
  p.fromText = true;
  if (!p.tokenizer->encode(*text, p.ids, error, addSpecial)) {
    error = where + ": " + error;
    return std::nullopt;
  }
  if (p.ids.empty()) {
    error = where + ": the text gives no tokens";
    return std::nullopt;
  }
  return p;
}

void greta::rt::recordPrompt(const Prompt &prompt, Manifest &manifest) {
  manifest.promptIds = prompt.ids;
  if (prompt.tokenizer) {
    manifest.tokenizer = prompt.tokenizer->source();
    manifest.tokenizerDigest = prompt.tokenizer->digest();
  }
}
