#!/usr/bin/env bash
# Writes models/llama-tiny/tokenizer.model: a SentencePiece BPE of 8192
# pieces (llama-tiny's vocab_size; <unk>=0, <s>=1, </s>=2 as in Llama-2,
# byte fallback, no normalization), trained by Debian's spm_train on the
# license texts of /usr/share/common-licenses. It lets llama-tiny run on
# text prompts (docs/TOKENIZERS.md); it is committed, so this script only
# records how it was made.
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat /usr/share/common-licenses/* > "$tmp/train.txt"
spm_train --input="$tmp/train.txt" --model_prefix="$tmp/tokenizer" \
  --vocab_size=8192 --model_type=bpe --byte_fallback=true \
  --character_coverage=1.0 --normalization_rule_name=identity \
  --split_digits=true --num_threads=1 --max_sentence_length=100000 \
  --minloglevel=2
cp "$tmp/tokenizer.model" tokenizer.model
