"""examples/hf/buggy_rope.py's planted bug on the numpy stand-in of an HF
Llama (test/python/Inputs/hf_fake.py), through greta_trace.hf's capture:
prints, for q and k before and after RoPE, the (layer, positions) whose rows
differ from a clean run. Only q_post_rope of the bug's layer, from its
position on, may.

  buggy_rope_fake.py BUG_LAYER BUG_FROM
"""
import os
import sys

import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
src = os.path.join(here, "..", "..", "..")
sys.path.insert(0, os.path.join(src, "test", "python", "Inputs"))
sys.path.insert(0, os.path.join(src, "examples", "hf"))
import buggy_rope  # noqa: E402
import hf_fake  # noqa: E402

from greta_trace import hf, hf_table  # noqa: E402

bug_layer, bug_from = int(sys.argv[1]), int(sys.argv[2])
T, LAYERS = 8, 3
CONFIG = dict(model_type="llama", hidden_size=32, num_attention_heads=4,
              num_key_value_heads=2, head_dim=16, num_hidden_layers=LAYERS,
              intermediate_size=24, vocab_size=256)


def run():
    model = hf_fake.CausalLM(CONFIG)
    got = {}

    def sink(p, layer, rows):
        got[hf_table.key(p, layer)] = np.array(rows, dtype=np.float32)

    with hf.Capture(model, CONFIG, T, sink, None) as cap:
        model([1, 7, 3, 200, 9, 42, 5, 11][:T])
        cap.check()
    return got


clean = run()
original = buggy_rope.plant_in(hf_fake, bug_layer, bug_from, LAYERS)
try:
    bugged = run()
finally:
    hf_fake.apply_rotary_pos_emb = original
for stage in ("q_pre_rope", "k_pre_rope", "q_post_rope", "k_post_rope"):
    for layer in range(LAYERS):
        key = f"L{layer}.{stage}"
        diff = np.nonzero(np.any(clean[key] != bugged[key], axis=1))[0]
        if len(diff):
            print(f"{stage} layer {layer}: rows differ at positions "
                  f"{diff.tolist()}")
print(f"done: {sum(1 for k in clean)} points compared")
