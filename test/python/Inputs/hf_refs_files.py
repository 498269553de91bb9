"""Reference files for hf-refs.test, made from a good one: a copy with one
value moved (L1.mlp_out, position 3), malformed copies, another prompt, and
a trace whose identity --identity-from copies. Prints the error table of
the moved copy and rel_l2's edge cases.

  hf_refs_files.py ACTS OUTDIR
"""
import os
import sys

import numpy as np

from greta_trace import Writer, hf_refs, prompt_digest

src, out = sys.argv[1], sys.argv[2]
good, meta = hf_refs.read_safetensors(src)


def write(name, arrays, metadata=meta):
    hf_refs.write_safetensors(os.path.join(out, name), arrays, metadata)


moved = dict(good)
moved["L1.mlp_out"] = good["L1.mlp_out"].copy()
moved["L1.mlp_out"][3, 5] += 0.01
write("moved.safetensors", moved)
table = hf_refs.error_table(moved, good)
print("differs:", {k: v for k, v in table.items() if v["rel_l2"]})
print("rel_l2 edge cases:", hf_refs.rel_l2(np.zeros((2, 3)), np.zeros((2, 3))),
      hf_refs.rel_l2(np.ones((2, 3)), np.zeros((2, 3))))
sel = np.array([[1, 2, .6, .4], [0, 3, .5, .5]], np.float32)
flip = sel.copy()
flip[1, :2] = [3, 0]
print("selection:", hf_refs.error_table({"L0.expert_selection": flip},
                                        {"L0.expert_selection": sel}))

write("badkey.safetensors", dict(good, **{"L0.mlp": good["L0.attn_in"]}))
write("badshape.safetensors", dict(good, **{"L0.attn_in":
                                            good["L0.attn_in"][:5]}))
write("badlayer.safetensors", dict(good, **{"L7.attn_in":
                                            good["L0.attn_in"]}))
write("noprompt.safetensors", {k: v for k, v in good.items()
                               if k != "prompt_ids"})
other = dict(good, prompt_ids=good["prompt_ids"][::-1].copy())
write("otherprompt.safetensors", other)
with open(src, "rb") as f:
    data = f.read()
with open(os.path.join(out, "truncated.safetensors"), "wb") as f:
    f.write(data[:len(data) // 2])
with open(os.path.join(out, "badheader.safetensors"), "wb") as f:
    f.write((1 << 40).to_bytes(8, "little") + data[8:100])

ids = good["prompt_ids"].tolist()
with Writer(os.path.join(out, "ident"), token_count=len(ids),
            model_digest="m" * 64, weights_digest="w" * 64,
            prompt_digest=prompt_digest(ids)):
    pass
print("files written")
