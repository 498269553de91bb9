//===- Tokenizer.cpp - Finding and loading a checkpoint's tokenizer -*- C++
//-*-===//
//
// Which file is the tokenizer (tokenizer.json first, then tokenizer.model),
// which files beside it are read, and the digest over them.
//
//===----------------------------------------------------------------------===//
#include "greta/rt/Tokenizer.h"

#include "greta/rt/Sha256.h"
#include "TokenizerInternal.h"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

using namespace greta::rt;
namespace fs = std::filesystem;
using json = nlohmann::json;

Tokenizer::~Tokenizer() = default;

namespace greta::rt {
/// Sets what only the loader knows: the source, the digest, and
/// generation_config.json's BOS/EOS.
struct TokenizerLoader {
  static void finish(Tokenizer &t, const std::string &source,
                     const std::string &digest,
                     const std::optional<int64_t> &bos,
                     const std::vector<int64_t> &eos) {
    t.source_ = source;
    t.digest_ = digest;
    if (bos)
      t.bos_ = bos;
    if (!eos.empty())
      t.eos_ = eos;
  }
};
} // namespace greta::rt

namespace {
bool readFile(const std::string &path, std::string &out, std::string &error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = path + ": cannot open (" + std::strerror(errno) + ")";
    return false;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) {
    error = path + ": read error";
    return false;
  }
  out = ss.str();
  return true;
}

/// generation_config.json's bos_token_id and eos_token_id (an id or a
/// list), checked against the vocabulary.
bool readGenerationConfig(const std::string &path, const std::string &text,
                          int64_t vocabSize, std::optional<int64_t> &bos,
                          std::vector<int64_t> &eos, std::string &error) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception &e) {
    error = path + ": invalid JSON: " + e.what();
    return false;
  }
  auto id = [&](const json &v, const char *key, int64_t &out) {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 ||
        v.get<int64_t>() >= vocabSize) {
      error = path + ": " + key + " " + v.dump() +
              " is not a token id of the tokenizer (0.." +
              std::to_string(vocabSize - 1) + ")";
      return false;
    }
    out = v.get<int64_t>();
    return true;
  };
  if (!j.is_object())
    return true;
  if (j.contains("bos_token_id") && !j["bos_token_id"].is_null()) {
    int64_t b;
    if (!id(j["bos_token_id"], "bos_token_id", b))
      return false;
    bos = b;
  }
  if (j.contains("eos_token_id") && !j["eos_token_id"].is_null()) {
    const json &e = j["eos_token_id"];
    for (const json &v : e.is_array() ? e : json::array({e})) {
      int64_t x;
      if (!id(v, "eos_token_id", x))
        return false;
      eos.push_back(x);
    }
  }
  return true;
}
} // namespace

std::unique_ptr<Tokenizer> Tokenizer::load(const std::string &path,
                                           std::string &error) {
  std::error_code ec;
  fs::path file = path;
  if (fs::is_directory(file, ec)) {
    if (fs::exists(file / "tokenizer.json", ec))
      file /= "tokenizer.json";
    else if (fs::exists(file / "tokenizer.model", ec))
      file /= "tokenizer.model";
    else {
      error = path + ": no tokenizer.json or tokenizer.model in this directory";
      return nullptr;
    }
  } else if (!fs::exists(file, ec)) {
    error = path + ": no such file or directory";
    return nullptr;
  }
  std::string name = file.filename().string();
  bool isJson = file.extension() == ".json";
  if (name == "tokenizer_config.json" || name == "generation_config.json" ||
      name == "config.json") {
    error = path + ": this is " + name +
            ", not a tokenizer: give tokenizer.json, tokenizer.model or "
            "their directory";
    return nullptr;
  }
  if (!isJson && file.extension() != ".model") {
    error = path + ": not a tokenizer (expected a tokenizer.json, a "
                   "tokenizer.model or a directory holding one)";
    return nullptr;
  }

  std::string source = file.string(), bytes;
  if (!readFile(source, bytes, error))
    return nullptr;
  fs::path dir = file.parent_path();
  std::string configPath = (dir / "tokenizer_config.json").string(), config;
  if (fs::exists(configPath, ec) && !readFile(configPath, config, error))
    return nullptr;

  std::unique_ptr<Tokenizer> t =
      isJson ? tok::loadHfTokenizer(source, bytes, configPath, config, error)
             : tok::loadSentencePieceTokenizer(source, bytes, configPath,
                                               config, error);
  if (!t)
    return nullptr;

  std::optional<int64_t> bos;
  std::vector<int64_t> eos;
  std::string genPath = (dir / "generation_config.json").string(), gen;
  if (fs::exists(genPath, ec) &&
      (!readFile(genPath, gen, error) ||
       !readGenerationConfig(genPath, gen, t->vocabSize(), bos, eos, error)))
    return nullptr;

  // The digest covers what decides the ids: the tokenizer file and
  // tokenizer_config.json, each framed by its name and size.
  std::string framed;
  auto frame = [&](const std::string &fileName, const std::string &content) {
    framed += fileName + '\0' + std::to_string(content.size()) + '\0';
    framed += sha256Hex(content.data(), content.size());
  };
  frame(name, bytes);
  if (!config.empty())
    frame("tokenizer_config.json", config);
  TokenizerLoader::finish(*t, source, sha256Hex(framed.data(), framed.size()),
                          bos, eos);
  return t;
}
