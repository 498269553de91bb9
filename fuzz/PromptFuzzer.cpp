//===- PromptFuzzer.cpp - rt::readPrompt on arbitrary bytes ---------------===//
#include "FuzzUtil.h"
#include "greta/rt/Prompt.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const std::string path = greta::fuzz::scratchDir() + "/prompt.json";
  greta::fuzz::writeFile(path, data, size);
  std::string error;
  auto ids = greta::rt::readPrompt(path, error);
  if (!ids) {
    if (error.empty())
      __builtin_trap(); // a failure must always say why
    return 0;
  }
  if (ids->empty())
    __builtin_trap(); // documented: an empty prompt is an error
  for (int64_t id : *ids)
    if (id < 0)
      __builtin_trap(); // documented: ids are non-negative
  return 0;
}
