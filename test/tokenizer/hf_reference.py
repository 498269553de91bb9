#!/usr/bin/env python3
"""A third opinion: HF `tokenizers` (the Rust crate, from Python) on a
corpus, printing what reference.mjs prints.

  hf_reference.py TOKENIZER_DIR CORPUS.jsonl > OUT.jsonl

Each output line is {"ids", "plain", "decoded"} for one corpus line.
`decoded` applies transformers' clean_up_tokenization when
tokenizer_config.json asks for it, as GRETA and transformers do. Needs the
`tokenizers` package (not a Debian package: where pip or a GPU image has
it); check_reference.py --reference hf runs it.
"""
import json
import os
import sys


def clean_up(s):
    for a, b in ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","),
                 (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"), (" 's", "'s"),
                 (" 've", "'ve"), (" 're", "'re")):
        s = s.replace(a, b)
    return s


def reference_lines(tokenizer_dir, texts):
    """{"ids", "plain", "decoded"} for each text."""
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(os.path.join(tokenizer_dir, "tokenizer.json"))
    config = {}
    path = os.path.join(tokenizer_dir, "tokenizer_config.json")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    cleanup = config.get("clean_up_tokenization_spaces") is True
    out = []
    for text in texts:
        ids = tok.encode(text).ids
        plain = tok.encode(text, add_special_tokens=False).ids
        decoded = tok.decode(plain, skip_special_tokens=False)
        if cleanup:
            decoded = clean_up(decoded)
        out.append({"ids": ids, "plain": plain, "decoded": decoded})
    return out


def main():
    tokenizer_dir, corpus = sys.argv[1], sys.argv[2]
    with open(corpus, encoding="utf-8") as f:
        texts = [json.loads(l) for l in f if l.strip()]
    for line in reference_lines(tokenizer_dir, texts):
        sys.stdout.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()
