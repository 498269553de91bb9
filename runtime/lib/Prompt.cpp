//===- Prompt.cpp - Reading prompts (token ids) -----------------*- C++ -*-===//
#include "greta/rt/Prompt.h"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstdlib>
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
