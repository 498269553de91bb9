"""Causality of a faulted run against a clean one (both traced with
--payload stats, every stage and position):

    causal_check.py PYTHON_DIR CLEAN_TRACE FAULTED_TRACE FROM

Prints how many records before position FROM differ from the clean run's
(by SHA-256) or count a NaN/inf, the earliest position with a non-finite
record, and per attn_out layer the first non-finite position. A fault
injected from FROM on must leave every earlier record untouched."""
import sys

sys.path.insert(0, sys.argv[1])
import greta_trace  # noqa: E402

clean = {(r.stage, r.layer, r.position): r
         for r in greta_trace.read(sys.argv[2]).records}
faulted = greta_trace.read(sys.argv[3]).records
start = int(sys.argv[4])

before = differ = nonfinite_before = 0
earliest = None
first_attn = {}
for r in faulted:
    bad = r.nan_count + r.inf_count > 0
    if bad and (earliest is None or r.position < earliest):
        earliest = r.position
    if r.stage == "attn_out" and bad:
        first_attn[r.layer] = min(first_attn.get(r.layer, r.position),
                                  r.position)
    if r.position >= start:
        continue
    before += 1
    c = clean.get((r.stage, r.layer, r.position))
    differ += c is None or c.sha256 != r.sha256
    nonfinite_before += bad
print(f"records before position {start}: {before}, differing from the clean "
      f"run {differ}, non-finite {nonfinite_before}")
print(f"earliest non-finite position: {earliest}")
for layer in sorted(first_attn):
    print(f"attn_out L{layer}: non-finite from position {first_attn[layer]}")
