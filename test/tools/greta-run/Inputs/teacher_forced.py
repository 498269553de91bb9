"""Teacher forcing, checked record by record.

  teacher_forced.py prompt GEN Q.json   writes GEN's prompt ids followed by
                                        its generated ids but the last (the
                                        sequence GEN's decode steps fed)
  teacher_forced.py check GEN WHOLE     GEN: greta-run --generate N (prefill
                                        then decode); WHOLE: the prefill of
                                        that sequence in one call. Every
                                        record of GEN is in WHOLE with the
                                        same SHA-256, and WHOLE's greedy
                                        token at each decode step's position
                                        is GEN's generated token.
Exit 1 naming the first mismatch."""
import json
import os
import sys

# The greta_trace package of this checkout.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "..", "..", "python"))
import greta_trace  # noqa: E402


def manifest(d):
    with open(os.path.join(d, "manifest.json")) as f:
        return json.load(f)


if sys.argv[1] == "prompt":
    m = manifest(sys.argv[2])
    with open(sys.argv[3], "w") as f:
        json.dump(m["prompt_ids"] + m["generated_ids"][:-1], f)
    sys.exit(0)

gen, whole = greta_trace.read(sys.argv[2]), greta_trace.read(sys.argv[3])
ids = manifest(sys.argv[2])["generated_ids"]
n = manifest(sys.argv[2])["token_count"]
rows = {(r.stage, r.layer, r.position): r for r in whole.records}
decode = 0
for r in gen.records:
    w = rows.get((r.stage, r.layer, r.position))
    if w is None:
        sys.exit(f"{r.stage} layer {r.layer} position {r.position}: not in "
                 f"the whole prefill")
    if w.sha256 != r.sha256:
        sys.exit(f"{r.stage} layer {r.layer} position {r.position}: hashes "
                 f"differ (decode {r.sha256[:12]}, prefill {w.sha256[:12]})")
    decode += r.position >= n
for s, token in enumerate(ids):
    logits = [r for (st, _, p), r in rows.items()
              if st == "logits" and p == n - 1 + s]
    if not logits or logits[0].top5[0] != token:
        sys.exit(f"step {s}: the whole prefill's greedy token at position "
                 f"{n - 1 + s} is not the generated {token}")
print(f"{len(gen.records)} records ({decode} of decode steps) hash-identical "
      f"to the whole prefill; its greedy tokens at positions {n - 1}.."
      f"{n - 2 + len(ids)} are the {len(ids)} generated ids")
