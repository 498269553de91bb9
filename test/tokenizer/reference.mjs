// The JavaScript reference (@huggingface/tokenizers, HF's Tokenizers.js) on
// a corpus: one JSON line in, one JSON line out.
//   node reference.mjs NPM_DIR TOKENIZER_DIR CORPUS.jsonl > OUT.jsonl
// Each input line is a JSON string; each output line is
//   {"ids": encode(text), "plain": encode(text, no special tokens),
//    "decoded": decode(plain)}
// With --bench, prints only {"bytes", "tokens", "load_s", "cold_s",
// "cold_cpu_s", "warm_s", "warm_cpu_s"}: the first pass over the corpus and
// the best of five more, as bench/tokenizer/run.sh reads them
// (greta-tokenizer-bench's fields).
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const args = process.argv.slice(2);
const bench = args[0] === "--bench";
if (bench) args.shift();
const [npmDir, tokenizerDir, corpusPath] = args;
if (!corpusPath) {
  console.error("usage: node reference.mjs [--bench] NPM_DIR TOKENIZER_DIR CORPUS.jsonl");
  process.exit(2);
}
const lib = path.join(npmDir, "node_modules/@huggingface/tokenizers/dist/tokenizers.mjs");
const { Tokenizer } = await import(pathToFileURL(lib).href);
const read = (name) => JSON.parse(fs.readFileSync(path.join(tokenizerDir, name), "utf8"));
const loadStart = process.hrtime.bigint();
const tokenizer = new Tokenizer(read("tokenizer.json"), read("tokenizer_config.json"));
const loadSeconds = Number(process.hrtime.bigint() - loadStart) / 1e9;

const texts = fs.readFileSync(corpusPath, "utf8").split("\n").filter((l) => l.length).map((l) => JSON.parse(l));

if (bench) {
  const bytes = texts.reduce((n, t) => n + Buffer.byteLength(t, "utf8"), 0);
  let tokens = 0;
  // Wall and CPU seconds (user + system of the whole process: under
  // taskset, one core's time).
  const pass = () => {
    const start = process.hrtime.bigint();
    const cpu = process.cpuUsage();
    tokens = 0;
    for (const t of texts) tokens += tokenizer.encode(t).ids.length;
    const used = process.cpuUsage(cpu);
    return [Number(process.hrtime.bigint() - start) / 1e9, (used.user + used.system) / 1e6];
  };
  const [cold, coldCpu] = pass();
  let warm = Infinity, warmCpu = Infinity;
  for (let r = 0; r < 5; ++r) {
    const [w, c] = pass();
    warm = Math.min(warm, w);
    warmCpu = Math.min(warmCpu, c);
  }
  console.log(JSON.stringify({ bytes, tokens, load_s: loadSeconds, cold_s: cold, cold_cpu_s: coldCpu,
                               warm_s: warm, warm_cpu_s: warmCpu }));
  process.exit(0);
}

const out = [];
for (const text of texts) {
  const ids = tokenizer.encode(text).ids;
  const plain = tokenizer.encode(text, { add_special_tokens: false }).ids;
  // decode() refuses an empty list.
  const decoded = plain.length ? tokenizer.decode(plain) : "";
  out.push(JSON.stringify({ ids, plain, decoded }));
}
process.stdout.write(out.join("\n") + "\n");
