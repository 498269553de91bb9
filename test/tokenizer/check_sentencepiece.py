#!/usr/bin/env python3
"""GRETA's tokenizer.model path against Debian's spm_encode/spm_decode.

  check_sentencepiece.py --model M.model --corpus C.jsonl --translate BIN

Every line of the corpus (split at newlines; spm_encode reads lines) that
holds no special piece (<s>, </s>, <unk>: GRETA splits them out, as HF's
slow tokenizer does, spm_encode does not) is encoded by both without
BOS/EOS and decoded back. Prints one summary line; exits 1 on a difference.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile


def run(cmd, data):
    r = subprocess.run(cmd, input=data, capture_output=True)
    if r.returncode:
        sys.exit("error: %s failed: %s" % (cmd[0], r.stderr.decode()))
    return r.stdout.decode()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--translate", required=True)
    args = ap.parse_args()
    lines = []
    with open(args.corpus, encoding="utf-8") as f:
        for text in (json.loads(l) for l in f if l.strip()):
            lines += [l for l in text.split("\n")
                      if l.strip() and "\r" not in l and
                      not any(s in l for s in ("<s>", "</s>", "<unk>"))]
    plain = "".join(l + "\n" for l in lines).encode()
    want = [[int(x) for x in l.split()] for l in
            run(["spm_encode", "--model", args.model, "--output_format=id"],
                plain).split("\n")[:len(lines)]]
    got = [json.loads(l) for l in run(
        [args.translate, "--tokenize", "--tokenizer", args.model, "--jsonl",
         "--no-special-tokens"],
        "".join(json.dumps(l) + "\n" for l in lines).encode()).split("\n")
        if l]
    decoded = [json.loads(l) for l in run(
        [args.translate, "--detokenize", "--tokenizer", args.model,
         "--jsonl"], "".join(json.dumps(g) + "\n" for g in got).encode()
        ).split("\n") if l]
    spm_decoded = run(["spm_decode", "--model", args.model,
                       "--input_format=id"],
                      "".join(" ".join(map(str, w)) + "\n"
                              for w in want).encode()).split("\n")
    bad = [i for i in range(len(lines))
           if got[i] != want[i] or decoded[i] != spm_decoded[i]]
    print("%s: %d lines, %d tokens: %d mismatches" % (
        os.path.basename(args.model), len(lines), sum(map(len, want)),
        len(bad)))
    for i in bad[:5]:
        print("  %r: GRETA %s %r, spm %s %r" % (lines[i][:60], got[i][:12],
              decoded[i][:40], want[i][:12], spm_decoded[i][:40]))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
