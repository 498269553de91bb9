#!/usr/bin/env python3
"""The seed's prompts as text, and a long-context family, from one text.

  gen_text_prompts.py --tokenizer LLAMA2_DIR --translate greta-translate \\
                      --out-dir DIR [--long]

Source: source/keepers-year.txt, written for GRETA and dedicated to the
public domain. Token counts are under the Llama-2 tokenizer (BOS included),
as the seed's id prompts count them:

  p0_short.txt    5 tokens     the text's first 4 tokens
  p6_len_16.txt   827 tokens   checkpoint position 826 is its last token
  p6_len_32.txt   1653 tokens  position 1652 last; p6_len_16 is its prefix

Each is cut at a token boundary and written without a trailing newline, so
the ids are exactly the first N of the whole text's. With --long it also
writes long_4k.txt, long_16k.txt and long_32k.txt (4096, 16384 and 32768
tokens): the text's paragraphs, part after part, one sentence (the needle)
placed half-way, and a question about it at the end.
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SHORT = {"p0_short": 5, "p6_len_16": 827, "p6_len_32": 1653}
LONG = {"long_4k": 4096, "long_16k": 16384, "long_32k": 32768}
NEEDLE = ("In the margin beside this paragraph Ansel wrote, in pencil, that "
          "the combination of the storeroom lock was 4719.")
QUESTION = ("\n\nQuestion: According to the notes in the margin of the "
            "notebook, what was the combination of the storeroom lock?\n"
            "Answer:")


class Tokenizer:
    """greta-translate --tokenize/--detokenize, many texts per call."""

    def __init__(self, translate, path):
        self.cmd = [translate, "--tokenizer", path, "--jsonl"]

    def _run(self, mode, items, extra=()):
        r = subprocess.run(self.cmd + [mode] + list(extra),
                           input="".join(json.dumps(i) + "\n" for i in items),
                           capture_output=True, text=True)
        if r.returncode:
            sys.exit("error: greta-translate %s failed: %s" % (mode, r.stderr))
        return [json.loads(l) for l in r.stdout.split("\n") if l]

    def encode(self, texts):
        return self._run("--tokenize", texts)

    def decode(self, ids):
        return self._run("--detokenize", ids, ["--no-special-tokens"])


def prefix_of(tok, text, ids, n):
    """The text of the first n tokens (BOS included): its ids are ids[:n]."""
    prefix = tok.decode([ids[1:n]])[0]
    if not text.startswith(prefix) or tok.encode([prefix])[0] != ids[:n]:
        sys.exit("error: no text gives exactly the first %d tokens" % n)
    return prefix


def long_prompt(tok, paragraphs, target):
    """Parts of the text until `target` tokens, the needle half-way, the
    question last."""
    body, part = [], 0
    while True:
        part += 1
        body.append("Part %d" % part)
        body += paragraphs
        # About four characters a token: enough text, with some to spare.
        if sum(len(p) + 2 for p in body) > 4.4 * target:
            break
    body.insert(len(body) // 2, NEEDLE)
    doc = "\n\n".join(body)
    ids = tok.encode([doc])[0]
    # Cut the document at a token boundary so that, question included,
    # exactly `target` tokens remain; the joint may merge, so adjust.
    n = target - (len(tok.encode([QUESTION])[0]) - 1)
    for _ in range(8):
        head = tok.decode([ids[1:n]])[0]
        text = head + QUESTION
        got = len(tok.encode([text])[0])
        if got == target:
            if NEEDLE not in text:
                sys.exit("error: the needle was cut off")
            return text
        n += target - got
    sys.exit("error: cannot reach exactly %d tokens" % target)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tokenizer", required=True,
                    help="the Llama-2 tokenizer (tokenizer.json or its dir)")
    ap.add_argument("--translate", required=True, help="greta-translate")
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--long", action="store_true",
                    help="also write the long-context family")
    args = ap.parse_args()
    tok = Tokenizer(args.translate, args.tokenizer)
    with open(os.path.join(HERE, "source", "keepers-year.txt"),
              encoding="utf-8") as f:
        text = f.read()
    os.makedirs(args.out_dir, exist_ok=True)
    ids = tok.encode([text])[0]
    outputs = {name: prefix_of(tok, text, ids, n) for name, n in SHORT.items()}
    if args.long:
        paragraphs = [p for p in text.split("\n\n") if p.strip()]
        for name, n in LONG.items():
            outputs[name] = long_prompt(tok, paragraphs, n)
    for name, content in outputs.items():
        with open(os.path.join(args.out_dir, name + ".txt"), "w",
                  encoding="utf-8", newline="") as f:
            f.write(content)


if __name__ == "__main__":
    main()
