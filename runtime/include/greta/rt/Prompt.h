//===- Prompt.h - Reading prompts: token ids or text ------------*- C++ -*-===//
#ifndef GRETA_RT_PROMPT_H
#define GRETA_RT_PROMPT_H

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace greta::rt {
class Tokenizer;
struct Manifest;

/// A prompt file of token ids: a JSON array, or one id per line. Errors name
/// the file and the line (or JSON offset) of the first bad entry.
std::optional<std::vector<int64_t>> readPrompt(const std::string &path,
                                               std::string &error);

/// A prompt as the tools take it (--prompt, --prompt-text, --tokenizer).
struct PromptRequest {
  /// --prompt FILE: .txt and .md are text (the file's bytes, exactly); .json
  /// is an array of ids or {"text": "...", "add_special_tokens": bool};
  /// anything else is ids, one a line.
  std::string path;
  std::optional<std::string> text; // --prompt-text (instead of a file)
  /// --tokenizer: tokenizer.json, tokenizer.model or a directory holding
  /// one. Text needs it; with ids it names their tokens in reports.
  std::string tokenizer;
};

struct Prompt {
  std::vector<int64_t> ids;
  std::string name; // the file's stem, or "prompt-text"
  bool fromText = false;
  std::shared_ptr<const Tokenizer> tokenizer; // when --tokenizer was given
};

/// Reads and, for text, tokenizes (special tokens added as the tokenizer
/// adds them: BOS for Llama). Errors name the file or --prompt-text.
std::optional<Prompt> loadPrompt(const PromptRequest &request,
                                 std::string &error);

/// Records the prompt in a trace manifest: its ids, and the tokenizer's
/// source and digest when there is one.
void recordPrompt(const Prompt &prompt, Manifest &manifest);
} // namespace greta::rt

#endif
