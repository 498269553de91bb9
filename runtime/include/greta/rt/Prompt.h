//===- Prompt.h - Reading prompts (token ids) -------------------*- C++ -*-===//
#ifndef GRETA_RT_PROMPT_H
#define GRETA_RT_PROMPT_H

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace greta::rt {
/// A prompt file: a JSON array of token ids, or one id per line. Errors name
/// the file and the line (or JSON offset) of the first bad entry.
std::optional<std::vector<int64_t>> readPrompt(const std::string &path,
                                               std::string &error);
} // namespace greta::rt

#endif
