// The JavaScript reference (@huggingface/tokenizers, HF's Tokenizers.js) on
// a corpus: one JSON line in, one JSON line out.
//   node reference.mjs NPM_DIR TOKENIZER_DIR CORPUS.jsonl > OUT.jsonl
// Each input line is a JSON string; each output line is
//   {"ids": encode(text), "plain": encode(text, no special tokens),
//    "decoded": decode(plain)}
// With --bench, prints only {"bytes": N, "seconds": S} for encoding the
// whole corpus (one text per line) after one warm-up pass.
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
const tokenizer = new Tokenizer(read("tokenizer.json"), read("tokenizer_config.json"));

const texts = fs.readFileSync(corpusPath, "utf8").split("\n").filter((l) => l.length).map((l) => JSON.parse(l));

if (bench) {
  const bytes = texts.reduce((n, t) => n + Buffer.byteLength(t, "utf8"), 0);
  for (const t of texts) tokenizer.encode(t);
  const start = process.hrtime.bigint();
  for (const t of texts) tokenizer.encode(t);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  console.log(JSON.stringify({ bytes, seconds }));
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
