//===- RunCLI.cpp - The run flags on a CLI11 command line -----------------===//
#include "greta/tools/RunCLI.h"

void greta::addRunOptions(CLI::App &app, rt::RunOptions &o) {
  app.add_option("--weights", o.weights, "safetensors file")->required();
  auto *promptOpt = app.add_option(
      "--prompt", o.prompt,
      "token ids (JSON array or one per line), text (.txt, .md) or "
      "{\"text\": ...} (.json); text needs --tokenizer");
  app.add_option("--prompt-text", o.promptText,
                 "the prompt as text (instead of --prompt); needs --tokenizer")
      ->excludes(promptOpt);
  app.add_option("--tokenizer", o.tokenizer,
                 "tokenizer.json, tokenizer.model or the checkpoint "
                 "directory: tokenizes a text prompt; with ids, names their "
                 "tokens in the output");
  app.add_option("--trace-dir", o.traceDir, "write a trace here");
  app.add_flag("--overwrite", o.overwrite, "replace a trace in --trace-dir");
  app.add_option("--layers", o.layers, "layers to record");
  app.add_option("--stages", o.stages, "stages to record");
  app.add_option("--positions", o.positions, "positions to record");
  app.add_option("--payload", o.payload, "hash, stats or full");
  app.add_option("--precision", o.precision,
                 "must match the object's (it is compiled in)");
  app.add_option("--backend", o.backend,
                 "must match the object's (it is compiled in)");
  app.add_option("--chunk", o.decode.chunk,
                 "prefill in chunks: all, N or a schedule N,M,... whose last "
                 "size repeats");
  app.add_option("--generate", o.decode.generate,
                 "decode N new tokens after the prompt");
  app.add_option("--generate-from", o.decode.generateFrom,
                 "decode the prompt's tokens one a call from P on");
  app.add_flag("--ignore-eos", o.decode.ignoreEos, "--generate past an EOS");
  app.add_flag("--sample", o.decode.sample, "--generate draws each token");
  app.add_option("--seed", o.decode.seed, "--sample's seed");
  app.add_option("--temperature", o.decode.temperature,
                 "--sample's temperature");
  app.add_option("--top-p", o.decode.topP, "--sample's nucleus");
  app.add_flag("--trace-cache-reads", o.decode.traceCacheReads,
               "record the KV-cache rows each query reads");
  app.add_option("--kv-fault", o.decode.kvFault,
                 "LAYER:FROM[:stale|:overwrite]: a planted KV-cache bug (the "
                 "CPU only)");
  app.add_option("--kv-block-size", o.decode.kvBlockSize,
                 "positions per page of the GPU's paged KV cache (16), used "
                 "by chunked prefill and decode steps");
  app.add_option("--kernel", o.kernels,
                 "GPU kernel variant op=name (repeatable), e.g. "
                 "attention=partial_tile_bug or trace=split_schedule; an "
                 "unknown one lists the known");
  // Unset without the flag: only an explicit --device reaches the runner.
  app.add_option_function<int>(
      "--device", [&o](const int &device) { o.device = device; },
      "GPU index (default 0)");
  app.add_flag("--timing", o.timing, "print weight-load and forward times");
  app.add_flag("--json", o.json, "print the result as JSON");
  app.add_flag("--print-logits", o.printLogits,
               "print every logit of the last position as a hex float");
  app.add_option("--patch-from", o.patchFrom,
                 "Causal test (greta-bisect --confirm): replace the tensor "
                 "named by --patch with its values from this trace (written "
                 "with --payload full); on the GPU the values are converted "
                 "to the storage type");
  app.add_option("--patch", o.patch,
                 "The tensor --patch-from replaces: STAGE:LAYER, e.g. "
                 "mlp_out:6");
  app.add_option("--repeat", o.repeat,
                 "Run the prompt N times in this process (benchmarks: the "
                 "first N-1 are warm-ups; on the GPU they compute the trace "
                 "without writing it, on the CPU they trace nothing); "
                 "--timing prints each forward time");
  app.add_flag("--dry-run", o.dryRun,
               "check the object, weights, prompt and every option, then stop "
               "before the forward: exit 0 if the run would start");
  app.add_option("--cache-dir", o.cacheDir,
                 "where the weights digest is cached (default "
                 "$XDG_CACHE_HOME/greta or ~/.cache/greta; nothing is "
                 "compiled)");
  app.add_flag("--no-cache", o.noCache,
               "hash the weights again instead of using the cache");
}
