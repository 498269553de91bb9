#!/usr/bin/env python3
"""The HF recorder (python -m greta_trace.hf) with a planted RoPE bug.

    buggy_rope.py --bug-layer L --bug-from P [--bug-family llama] \\
        RECORDER ARGS (--model DIR --prompt P.json --trace-dir D ...)

Monkeypatches transformers' apply_rotary_pos_emb of the family's modeling
module: in decoder layer L (its L-th call in the forward pass), q is rotated
by the angles of position p - 1 instead of p for every position p >= P (an
off-by-one in the rotary table, from P on). k and every other layer are
untouched, so q_post_rope of layer L at position P is the first wrong
tensor. The recorder wraps the patched function, so it records what the
model used. Then runs the recorder with the remaining arguments; --check is
passed on (no torch needed).
"""
import argparse
import importlib
import os
import sys

sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                             "..", "..", "python"))
from greta_trace import hf  # noqa: E402


def plant(family, bug_layer, bug_from, num_layers):
    plant_in(importlib.import_module(
        f"transformers.models.{family}.modeling_{family}"),
        bug_layer, bug_from, num_layers)


def plant_in(mod, bug_layer, bug_from, num_layers):
    """Replaces mod.apply_rotary_pos_emb; returns the original."""
    original = mod.apply_rotary_pos_emb
    calls = {"n": 0}

    def apply_rotary_pos_emb(q, k, cos, sin, *args, **kwargs):
        q_embed, k_embed = original(q, k, cos, sin, *args, **kwargs)
        layer = calls["n"] % num_layers
        calls["n"] += 1
        seq = q.shape[-2]
        if layer != bug_layer or seq <= bug_from:
            return q_embed, k_embed
        # cos/sin: [batch, seq, head_dim]; shifted by one position from P on.
        cos_s, sin_s = _copy(cos), _copy(sin)
        cos_s[:, bug_from:] = cos[:, bug_from - 1:seq - 1]
        sin_s[:, bug_from:] = sin[:, bug_from - 1:seq - 1]
        wrong, _ = original(q, k, cos_s, sin_s, *args, **kwargs)
        q_embed = _copy(q_embed)
        q_embed[..., bug_from:, :] = wrong[..., bug_from:, :]
        return q_embed, k_embed

    mod.apply_rotary_pos_emb = apply_rotary_pos_emb
    return original


def _copy(t):
    """torch's clone(), or numpy's copy() (the test's stand-in)."""
    return t.clone() if hasattr(t, "clone") else t.copy()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bug-layer", type=int, required=True)
    ap.add_argument("--bug-from", type=int, required=True)
    ap.add_argument("--bug-family", default="llama")
    args, rest = ap.parse_known_args(argv)
    if args.bug_from < 1 or args.bug_layer < 0:
        ap.error("--bug-from must be >= 1 and --bug-layer >= 0")
    if "--check" not in rest:
        model = rest[rest.index("--model") + 1]
        layers = hf.read_config(model)["num_hidden_layers"]
        if args.bug_layer >= layers:
            ap.error(f"--bug-layer {args.bug_layer}: the model has {layers} "
                     f"layers")
        plant(args.bug_family, args.bug_layer, args.bug_from, layers)
    return hf.main(rest)


if __name__ == "__main__":
    sys.exit(main())
