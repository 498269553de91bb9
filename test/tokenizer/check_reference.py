#!/usr/bin/env python3
"""Tokenizes a corpus with GRETA and with the JavaScript reference and
compares, text by text.

  check_reference.py --npm NPM_DIR --tokenizer DIR --corpus C.jsonl
                     --translate BIN --name NAME [--min-bytes N]
                     [--reference js|hf|digests] [--digests FILE]
                     [--reference-output FILE] [--skip-chars 85,feff]

For every text: the ids of encode(text) (special tokens added) and of
encode(text) without special tokens must be identical; GRETA's decode of the
latter must equal the reference's decode; and decode(encode(text)) must be
the text wherever the reference's is. Prints one summary line; exits 1 on
any difference (the first few are shown, with the tokens around the first
differing position) and when the corpus holds fewer than --min-bytes.

--reference digests compares with hf_opinion.py's digests of HF
`tokenizers` (the section named --name of --digests FILE): one digest a
text, over its ids, its ids without special tokens and its decoding, so a
difference names the text, not the position. --reference-output FILE takes
the reference's lines from FILE (hf_opinion.py's outputs) instead of
running it.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_opinion  # noqa: E402


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, **kw)
    if r.returncode != 0:
        sys.exit("error: %s failed (exit %d):\n%s" % (
            " ".join(cmd[:3]), r.returncode, r.stderr.decode(errors="replace")))
    return r.stdout.decode()


def jsonl(text):
    return [json.loads(l) for l in text.split("\n") if l]


def first_difference(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


def compare_digests(name, texts, size, digests, ids, plain, decoded):
    if len(digests) != len(texts):
        sys.exit("error: %d texts but %d digests" % (len(texts), len(digests)))
    differ = [i for i in range(len(texts)) if hf_opinion.text_digest(
        ids[i], plain[i], decoded[i]) != digests[i]]
    print("%s: %d texts, %d bytes, %d tokens: %d mismatches with the "
          "reference's digests" % (name, len(texts), size,
                                   sum(map(len, ids)), len(differ)))
    for i in differ[:10]:
        print("  text %d (%r...): ids, ids without special tokens or decoding "
              "differ" % (i, texts[i][:60]))
    return 1 if differ else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--npm", required=True)
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--translate", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--min-bytes", type=int, default=0)
    ap.add_argument("--skip-chars", default="",
                    help="hex code points: texts holding one are left out "
                    "(a divergence of the reference docs/TOKENIZERS.md "
                    "names)")
    ap.add_argument("--digests", help="with --reference digests")
    ap.add_argument("--reference-output",
                    help="the reference's lines, written earlier")
    ap.add_argument("--reference", choices=("js", "hf", "digests"),
                    default="js",
                    help="js: @huggingface/tokenizers under node (the "
                    "default); hf: the tokenizers Python package "
                    "(hf_reference.py), where it is installed")
    args = ap.parse_args()
    here = os.path.dirname(os.path.abspath(__file__))
    lib = os.path.join(args.npm, "node_modules/@huggingface/tokenizers")
    if (args.reference == "js" and not os.path.isdir(lib)) or \
            not os.path.isdir(args.tokenizer):
        sys.exit("error: npm test data not found in %s (scripts/setup.sh "
                 "fetches it)" % args.npm)

    with open(args.corpus, encoding="utf-8") as f:
        texts = [json.loads(l) for l in f if l.strip()]
    skip = [chr(int(c, 16)) for c in args.skip_chars.split(",") if c]
    skipped = sum(1 for t in texts if any(c in t for c in skip))
    texts = [t for t in texts if not any(c in t for c in skip)]
    corpus = args.corpus
    if skipped:
        kept = tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False)
        kept.write("".join(json.dumps(t) + "\n" for t in texts))
        kept.close()
        corpus = kept.name
    size = sum(len(t.encode()) for t in texts)
    if size < args.min_bytes:
        sys.exit("error: the corpus holds %d bytes, fewer than %d" %
                 (size, args.min_bytes))

    if args.reference == "digests":
        if not args.digests or args.skip_chars:
            sys.exit("error: --reference digests needs --digests and takes "
                     "no --skip-chars")
        want_corpus, digests = hf_opinion.read_digests(args.digests,
                                                       args.name)
        if hf_opinion.file_sha256(args.corpus) != want_corpus:
            sys.exit("error: %s is not the corpus %s was made from (sha256 "
                     "%s); regenerate the digests (docs/TOKENIZERS.md)" %
                     (args.corpus, args.digests, want_corpus))
    elif args.reference_output:
        with open(args.reference_output, encoding="utf-8") as f:
            ref = jsonl(f.read())
    elif args.reference == "js":
        ref = jsonl(run(["node", os.path.join(here, "reference.mjs"),
                         args.npm, args.tokenizer, corpus]))
    else:
        ref = jsonl(run([sys.executable, os.path.join(here, "hf_reference.py"),
                         args.tokenizer, corpus]))
    tool = [args.translate, "--tokenizer", args.tokenizer, "--jsonl",
            "--input", corpus]
    ids = jsonl(run(tool + ["--tokenize"]))
    plain = jsonl(run(tool + ["--tokenize", "--no-special-tokens"]))
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl") as f:
        f.write("".join(json.dumps(p) + "\n" for p in plain))
        f.flush()
        decoded = jsonl(run([args.translate, "--tokenizer",
                             args.tokenizer, "--jsonl", "--input", f.name,
                             "--detokenize"]))
    if args.reference == "digests":
        return compare_digests(args.name, texts, size, digests, ids, plain,
                               decoded)
    if not (len(ref) == len(ids) == len(plain) == len(decoded) == len(texts)):
        sys.exit("error: %d texts, but %d reference lines and %d/%d/%d GRETA "
                 "lines" % (len(texts), len(ref), len(ids), len(plain),
                            len(decoded)))

    problems = []
    tokens = round_trips = ref_round_trips = 0
    for i, text in enumerate(texts):
        r = ref[i]
        tokens += len(r["ids"])
        for what, got, want in (("ids", ids[i], r["ids"]),
                                ("ids without special tokens", plain[i],
                                 r["plain"])):
            if got != want:
                k = first_difference(got, want)
                problems.append(
                    "text %d (%r...): %s differ at index %d: GRETA %s, "
                    "reference %s" % (i, text[:60], what, k,
                                      got[max(0, k - 3):k + 5],
                                      want[max(0, k - 3):k + 5]))
        if decoded[i] != r["decoded"]:
            k = first_difference(decoded[i], r["decoded"])
            problems.append("text %d: decode differs at char %d: GRETA %r, "
                            "reference %r" % (i, k, decoded[i][k:k + 20],
                                              r["decoded"][k:k + 20]))
        if r["decoded"] == text:
            ref_round_trips += 1
            if decoded[i] == text:
                round_trips += 1
            else:
                problems.append("text %d (%r...): decode(encode(text)) is "
                                "not the text, the reference's is" %
                                (i, text[:60]))

    print("%s: %d texts, %d bytes, %d tokens: %d mismatches; round trip "
          "%d/%d where the reference round-trips%s" % (
              args.name, len(texts), size, tokens, len(problems), round_trips,
              ref_round_trips,
              "; %d texts with %s left out" % (skipped, args.skip_chars)
              if skipped else ""))
    for p in problems[:10]:
        print("  " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
