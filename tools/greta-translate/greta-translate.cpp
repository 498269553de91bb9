//===- greta-translate.cpp - HF config to IR, weights, prompts --*- C++ -*-===//
//
// Five jobs, one per mode flag:
//   --import-hf-config <config.json> -o model.mlir
//   --gen-random-weights <config.json> --seed N [--dtype f32|f16|bf16]
//                        -o weights.safetensors
//   --gen-prompt --length N --vocab V --seed S -o prompt.json
//   --tokenize / --detokenize --tokenizer PATH [--input FILE] [--jsonl]
// Every bad input ends with a message naming the culprit and exit code 1
// (2 for --tokenize/--detokenize, as greta-run gives for a bad prompt).
//
//===----------------------------------------------------------------------===//
#include "greta/Dialect/Greta/IR/GretaDialect.h"
#include "greta/Target/HF/ImportCheckpoint.h"
#include "greta/Target/HF/ImportHFConfig.h"
#include "greta/rt/Tokenizer.h"
#include "greta/rt/Weights.h"
#include "greta/tools/LLVMVersion.h"

#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/OperationSupport.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/WithColor.h"

#include <nlohmann/json.hpp>

using namespace llvm;

namespace {
cl::OptionCategory modeCat("Modes (pick exactly one)");
cl::OptionCategory importCat("Import options (--import-hf-config)");
cl::OptionCategory
    genCat("Generation options (--gen-random-weights, --gen-prompt)");
cl::OptionCategory tokCat("Tokenizer options (--tokenize, --detokenize)");
cl::OptionCategory outCat("Output");

cl::opt<std::string> importConfig(
    "import-hf-config",
    cl::desc("Import an HF config.json (or a checkpoint directory's) as "
             "greta IR: the whole model, layers unrolled, stages tagged, "
             "parameters named as in HF's safetensors"),
    cl::value_desc("config.json|DIR"), cl::cat(modeCat));
cl::alias importHF("import-hf", cl::desc("Alias for --import-hf-config"),
                   cl::aliasopt(importConfig), cl::cat(modeCat));
cl::opt<std::string> weightsConfig(
    "gen-random-weights",
    cl::desc("Write deterministic random weights for the model of this "
             "config.json: normal(0, 0.02) matrices, ones for norms, zeros "
             "for biases; same names and shapes as the import"),
    cl::value_desc("config.json"), cl::cat(modeCat));
cl::opt<bool> genPrompt(
    "gen-prompt",
    cl::desc("Write a deterministic prompt (JSON array of token ids): id 1 "
             "(BOS) then ids drawn uniformly from [3, vocab)"),
    cl::cat(modeCat));
cl::opt<bool> tokenizeMode(
    "tokenize",
    cl::desc("Text to token ids: --input (UTF-8 text) to a JSON array of "
             "ids, the prompt format greta-run reads"),
    cl::cat(modeCat));
cl::opt<bool> detokenizeMode(
    "detokenize",
    cl::desc("Token ids to text: --input (a JSON array of ids, or one id a "
             "line) to the decoded text"),
    cl::cat(modeCat));

cl::opt<std::string> tokenizerPath(
    "tokenizer",
    cl::desc("tokenizer.json, tokenizer.model, or a directory holding one"),
    cl::value_desc("path"), cl::cat(tokCat));
cl::opt<std::string> inputFile("input",
                               cl::desc("Input file (default '-': stdin)"),
                               cl::value_desc("file"), cl::init("-"),
                               cl::cat(tokCat));
cl::opt<bool> jsonLines(
    "jsonl",
    cl::desc("One item a line, as JSON: --tokenize reads a JSON string and "
             "writes an array of ids; --detokenize the reverse"),
    cl::cat(tokCat));
cl::opt<bool> noSpecialTokens(
    "no-special-tokens",
    cl::desc("--tokenize: add no BOS/EOS; --detokenize: drop special tokens"),
    cl::cat(tokCat));

cl::opt<std::string> modelName(
    "model-name",
    cl::desc("Model name stored as module attribute greta.model (default: "
             "the config's _name_or_path, else its directory's name)"),
    cl::value_desc("name"), cl::cat(importCat));
cl::opt<bool> stripLocations(
    "strip-locations",
    cl::desc("Print the IR without the HF module-name locations"),
    cl::cat(importCat));

cl::opt<uint64_t> seed("seed", cl::desc("Seed of the generator (default 0)"),
                       cl::value_desc("N"), cl::init(0), cl::cat(genCat));
enum class WeightDType { F32, F16, BF16 };
cl::opt<WeightDType> dtype(
    "dtype", cl::desc("Storage type of the generated weights"),
    cl::values(clEnumValN(WeightDType::F32, "f32", "32-bit float (default)"),
               clEnumValN(WeightDType::F16, "f16", "IEEE half"),
               clEnumValN(WeightDType::BF16, "bf16", "bfloat16")),
    cl::init(WeightDType::F32), cl::cat(genCat));
cl::opt<int64_t> length("length", cl::desc("Prompt length in tokens (>= 1)"),
                        cl::value_desc("N"), cl::init(0), cl::cat(genCat));
cl::opt<int64_t> vocab("vocab",
                       cl::desc("Vocabulary size: ids lie in [0, V) (V >= 4)"),
                       cl::value_desc("V"), cl::init(0), cl::cat(genCat));

cl::opt<std::string>
    outputFile("o",
               cl::desc("Output file ('-' is stdout, not allowed for "
                        "--gen-random-weights)"),
               cl::value_desc("file"), cl::init("-"), cl::cat(outCat));

int fail(const Twine &msg) {
  WithColor::error(errs(), "greta-translate") << msg << "\n";
  return 1;
}

/// An option given to a mode that ignores it is an error, not a silent no-op.
bool rejectOptions(StringRef mode, ArrayRef<cl::Option *> options) {
  for (cl::Option *opt : options)
    if (opt->getNumOccurrences()) {
      fail("option '--" + opt->ArgStr + "' does not apply to --" + mode);
      return true;
    }
  return false;
}

/// Reads `path` into `sourceMgr` so diagnostics can quote the bad line.
const MemoryBuffer *readConfig(StringRef path, SourceMgr &sourceMgr) {
  std::string error;
  std::unique_ptr<MemoryBuffer> buffer = mlir::openInputFile(path, &error);
  if (!buffer) {
    fail("cannot read config '" + path + "': " + error);
    return nullptr;
  }
  unsigned id = sourceMgr.AddNewSourceBuffer(std::move(buffer), SMLoc());
  return sourceMgr.getMemoryBuffer(id);
}

int writeText(StringRef text) {
  std::string error;
  std::unique_ptr<ToolOutputFile> out =
      mlir::openOutputFile(outputFile, &error);
  if (!out)
    return fail("cannot write output '" + outputFile + "': " + error);
  out->os() << text;
  out->os().flush();
  if (out->os().has_error())
    return fail("cannot write output '" + outputFile +
                "': " + out->os().error().message());
  out->keep();
  return 0;
}

/// The ids as a JSON array, 16 a line (the committed prompts' layout).
std::string idsToJson(const std::vector<int64_t> &ids) {
  std::string text = "[";
  for (size_t i = 0; i < ids.size(); ++i) {
    text += (i % 16 == 0) ? "\n  " : " ";
    text += std::to_string(ids[i]);
    if (i + 1 < ids.size())
      text += ",";
  }
  text += "\n]\n";
  return text;
}

/// --tokenize and --detokenize: errors exit 2 and name the input line.
int tokenizerMode() {
  auto failTok = [](const Twine &msg) {
    fail(msg);
    return 2;
  };
  if (tokenizerPath.empty())
    return failTok(Twine("--") + (tokenizeMode ? "tokenize" : "detokenize") +
                   " needs --tokenizer PATH");
  std::string error;
  auto tokenizer = greta::rt::Tokenizer::load(tokenizerPath, error);
  if (!tokenizer)
    return failTok(error);
  std::string readError;
  std::unique_ptr<MemoryBuffer> buffer =
      mlir::openInputFile(inputFile, &readError);
  if (!buffer)
    return failTok("cannot read input '" + inputFile + "': " + readError);
  StringRef input = buffer->getBuffer();
  std::string name = inputFile == "-" ? "<stdin>" : inputFile.getValue();

  auto encodeOne = [&](StringRef text, std::vector<int64_t> &ids,
                       const Twine &where) {
    if (tokenizer->encode(std::string_view(text.data(), text.size()), ids,
                          error, !noSpecialTokens))
      return true;
    failTok(where + ": " + error);
    return false;
  };
  auto decodeOne = [&](const std::vector<int64_t> &ids, std::string &text,
                       const Twine &where) {
    if (tokenizer->decode(ids, text, error, noSpecialTokens))
      return true;
    failTok(where + ": " + error);
    return false;
  };
  auto parseIds = [&](const nlohmann::json &j, std::vector<int64_t> &ids,
                      const Twine &where) {
    if (!j.is_array()) {
      failTok(where + ": expected a JSON array of token ids");
      return false;
    }
    for (const nlohmann::json &v : j) {
      if (!v.is_number_integer()) {
        failTok(where + ": '" + v.dump() + "' is not a token id");
        return false;
      }
      ids.push_back(v.get<int64_t>());
    }
    return true;
  };

  std::string out;
  if (!jsonLines) {
    std::vector<int64_t> ids;
    if (tokenizeMode) {
      if (!encodeOne(input, ids, name))
        return 2;
      return writeText(idsToJson(ids)) ? 2 : 0;
    }
    nlohmann::json j =
        nlohmann::json::parse(input.begin(), input.end(), nullptr, false);
    if (j.is_discarded()) {
      // One id a line.
      SmallVector<StringRef> lines;
      input.split(lines, '\n', -1, false);
      for (size_t i = 0; i < lines.size(); ++i) {
        StringRef item = lines[i].trim();
        int64_t id;
        if (item.empty())
          continue;
        if (item.getAsInteger(10, id))
          return failTok(name + ":" + Twine(i + 1) + ": '" + item +
                         "' is not a token id");
        ids.push_back(id);
      }
    } else if (!parseIds(j, ids, name)) {
      return 2;
    }
    if (!decodeOne(ids, out, name))
      return 2;
    return writeText(out) ? 2 : 0;
  }

  SmallVector<StringRef> lines;
  input.split(lines, '\n', -1, false);
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string where = name + ":" + std::to_string(i + 1);
    nlohmann::json j =
        nlohmann::json::parse(lines[i].begin(), lines[i].end(), nullptr, false);
    if (j.is_discarded())
      return failTok(where + ": not a JSON value");
    if (tokenizeMode) {
      if (!j.is_string())
        return failTok(where + ": expected a JSON string");
      std::string text = j.get<std::string>();
      std::vector<int64_t> ids;
      if (!encodeOne(text, ids, where))
        return 2;
      out += nlohmann::json(ids).dump() + "\n";
    } else {
      std::vector<int64_t> ids;
      std::string text;
      if (!parseIds(j, ids, where) || !decodeOne(ids, text, where))
        return 2;
      // Decoded text may hold U+FFFD but is always UTF-8.
      out += nlohmann::json(text).dump() + "\n";
    }
  }
  return writeText(out) ? 2 : 0;
}

int importMode(mlir::MLIRContext &ctx) {
  SourceMgr sourceMgr;
  mlir::SourceMgrDiagnosticHandler handler(sourceMgr, &ctx);
  // A checkpoint directory: its config.json.
  std::string path = importConfig;
  if (greta::hf::isCheckpointDir(path))
    path += "/config.json";
  const MemoryBuffer *buffer = readConfig(path, sourceMgr);
  if (!buffer)
    return 1;
  mlir::OwningOpRef<mlir::ModuleOp> module = greta::hf::importHFConfig(
      buffer->getBuffer(), path, ctx, modelName);
  if (!module)
    return 1;
  std::string text;
  raw_string_ostream os(text);
  mlir::OpPrintingFlags flags;
  // Local scope prints each loc inline: `loc("model.layers.0.mlp.up_proj")`.
  if (!stripLocations)
    flags.enableDebugInfo(/*enable=*/true, /*prettyForm=*/false)
        .useLocalScope();
  module->print(os, flags);
  os << "\n";
  return writeText(text);
}

int weightsMode(mlir::MLIRContext &ctx) {
  if (outputFile == "-")
    return fail("--gen-random-weights needs -o <file.safetensors> "
                "(safetensors is binary, not for stdout)");
  SourceMgr sourceMgr;
  mlir::SourceMgrDiagnosticHandler handler(sourceMgr, &ctx);
  const MemoryBuffer *buffer = readConfig(weightsConfig, sourceMgr);
  if (!buffer)
    return 1;
  FailureOr<greta::hf::LlamaConfig> config =
      greta::hf::parseLlamaConfig(buffer->getBuffer(), weightsConfig, ctx);
  if (failed(config))
    return 1;
  std::vector<greta::rt::TensorToWrite> tensors;
  for (const greta::hf::ParamSpec &spec : greta::hf::getParamSpecs(*config))
    tensors.push_back(
        {spec.name, std::vector<int64_t>(spec.shape.begin(), spec.shape.end()),
         greta::hf::generateParamValues(spec, seed)});
  greta::rt::DType storage = dtype == WeightDType::F16 ? greta::rt::DType::F16
                             : dtype == WeightDType::BF16
                                 ? greta::rt::DType::BF16
                                 : greta::rt::DType::F32;
  std::string error;
  if (!greta::rt::writeSafeTensors(outputFile, tensors, storage, error))
    return fail("cannot write weights: " + error);
  return 0;
}

int promptMode() {
  if (length < 1)
    return fail("--gen-prompt needs --length N with N >= 1 (got " +
                Twine(length) + ")");
  if (vocab < 4)
    return fail("--gen-prompt needs --vocab V with V >= 4 (ids 0-2 are "
                "reserved for pad/BOS/EOS; got " +
                Twine(vocab) + ")");
  // 16 ids a line: diffs of committed prompts stay readable.
  return writeText(idsToJson(greta::hf::generatePrompt(length, vocab, seed)));
}
} // namespace

int main(int argc, char **argv) {
  InitLLVM y(argc, argv);
  cl::HideUnrelatedOptions({&modeCat, &importCat, &genCat, &tokCat, &outCat});
  ::greta::setLLVMToolVersionPrinter("greta-translate");
  cl::ParseCommandLineOptions(
      argc, argv,
      "GRETA translator: HF config.json to greta IR, deterministic random "
      "weights and prompts\n\n"
      "  greta-translate --import-hf-config config.json -o model.mlir\n"
      "  greta-translate --gen-random-weights config.json --seed N "
      "[--dtype f32|f16|bf16] -o weights.safetensors\n"
      "  greta-translate --gen-prompt --length N --vocab V --seed S "
      "-o prompt.json\n"
      "  greta-translate --tokenize --tokenizer DIR [--input text.txt] "
      "[-o ids.json]\n"
      "  greta-translate --detokenize --tokenizer DIR [--input ids.json]\n");

  int modes = !importConfig.empty() + !weightsConfig.empty() + genPrompt +
              tokenizeMode + detokenizeMode;
  if (modes != 1)
    return fail(Twine(modes ? "more than one mode given" : "no mode given") +
                ": pick exactly one of --import-hf-config, "
                "--gen-random-weights, --gen-prompt, --tokenize, --detokenize "
                "(see --help)");
  if (tokenizeMode || detokenizeMode)
    return rejectOptions(
               tokenizeMode ? "tokenize" : "detokenize",
               {&seed, &dtype, &length, &vocab, &modelName, &stripLocations})
               ? 2
               : tokenizerMode();

  // Only what the importer builds: keeps this tool independent of the
  // lowering libraries greta-opt links.
  mlir::DialectRegistry registry;
  registry.insert<mlir::greta::GretaDialect, mlir::func::FuncDialect,
                  mlir::tensor::TensorDialect>();
  mlir::MLIRContext ctx(registry);
  if (!importConfig.empty())
    return rejectOptions("import-hf-config",
                         {&seed, &dtype, &length, &vocab, &tokenizerPath,
                          &inputFile, &jsonLines, &noSpecialTokens})
               ? 1
               : importMode(ctx);
  if (!weightsConfig.empty())
    return rejectOptions("gen-random-weights",
                         {&length, &vocab, &modelName, &stripLocations,
                          &tokenizerPath, &inputFile, &jsonLines,
                          &noSpecialTokens})
               ? 1
               : weightsMode(ctx);
  return rejectOptions("gen-prompt",
                       {&dtype, &modelName, &stripLocations, &tokenizerPath,
                        &inputFile, &jsonLines, &noSpecialTokens})
             ? 1
             : promptMode();
}
