//===- TokenizerUnavailable.cpp - A runtime built without tokenizers -*- C++
//-*-===//
//
// A runtime-only build (a GPU host) without PCRE2, ICU or libsentencepiece:
// token-id prompts work, text prompts are refused with what to install.
//
//===----------------------------------------------------------------------===//
#include "greta/rt/Tokenizer.h"

#include <cstdio>

using namespace greta::rt;

Tokenizer::~Tokenizer() = default;

std::unique_ptr<Tokenizer> Tokenizer::load(const std::string &path,
                                           std::string &error) {
  error = path + ": this GRETA was built without tokenizers (install "
                 "libpcre2-dev, libicu-dev and libsentencepiece-dev and "
                 "rebuild), so text prompts are not available; give token ids";
  return nullptr;
}

std::string greta::rt::quoteToken(std::string_view bytes) {
  return "'" + std::string(bytes) + "'";
}

bool greta::rt::checkUtf8(std::string_view, std::string &error) {
  error = "this GRETA was built without tokenizers";
  return false;
}
