"""Drives greta_trace.hf.Capture over the numpy stand-in of HF models
(hf_fake.py): every table point is seen once with the right layout and
meaning, the filter's choice is honoured, and what breaks the table fails
with a message naming it. Then writes the values as a reference file and
converts it to a trace.

  hf_capture.py OUTDIR
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import hf_fake  # noqa: E402

from greta_trace import Filter, hf, hf_refs, hf_table, read  # noqa: E402

out = sys.argv[1]
T = 6
ids = [1, 7, 3, 200, 9, 42][:T]
LLAMA = dict(model_type="llama", hidden_size=32, num_attention_heads=4,
             num_key_value_heads=2, head_dim=16, num_hidden_layers=2,
             intermediate_size=24, vocab_size=256)
PHI3 = dict(LLAMA, model_type="phi3", head_dim=None)
MIXTRAL = dict(LLAMA, model_type="mixtral", num_local_experts=4,
               num_experts_per_tok=2)


def capture(config, want=None, table=None, **fake):
    """Runs the stand-in of `config` with the hooks the table gives for
    `table` (default the same config)."""
    model = hf_fake.CausalLM(config, **fake)
    table = table or config
    got = {}

    def sink(p, layer, rows):
        got[hf_table.key(p, layer)] = np.array(rows, dtype=np.float32)

    with hf.Capture(model, table, T, sink, want) as cap:
        logits = model(ids)
        cap.check()
    assert hf_fake.apply_rotary_pos_emb.__name__ == "apply_rotary_pos_emb"
    assert hf_fake.apply_rotary_pos_emb is hf_fake._ROPE, "not restored"
    return model, got, logits


for config in (LLAMA, PHI3, MIXTRAL):
    model, got, logits = capture(config)
    name = config["model_type"]
    print(f"{name}: {len(got)} points, logits equal: "
          f"{np.array_equal(got['logits'], logits[0])}")
    # q_pre_rope is q_proj's output row for row (head h = columns h*d..).
    if name == "llama":
        q = model.model.layers[1].self_attn.q_proj(
            model.model.layers[1].input_layernorm(got["L1.residual_pre_attn"]))
        print(f"{name}: L1 q_pre_rope = q_proj(attn_in): "
              f"{np.allclose(got['L1.q_pre_rope'], q, atol=1e-6)}")
    acts = {hf_table.parse_key(k, 2): v for k, v in got.items()}
    d = hf_table.dims(config)["head_dim"]
    checks = hf_refs.meaning_checks(acts, 2, {"inv_freq": hf_fake.inv_freq(
        dict(config, head_dim=d)), "attention_scaling": 1.0}, d)
    bad = [c for c in checks if not c[2]]
    print(f"{name}: {len(checks)} meaning checks, {len(bad)} fail "
          f"{bad[:2]}")
    if name == "mixtral":
        sel = got["L0.expert_selection"]
        print(f"mixtral: expert_selection {list(sel.shape)}, weights sum "
              f"to 1: {np.allclose(sel[:, 2:].sum(1), 1)}")
        # A wrong router id is caught by the meaning check.
        acts[("expert_selection", 1)] = acts[("expert_selection", 1)].copy()
        acts[("expert_selection", 1)][4, 0] = 3 - acts[
            ("expert_selection", 1)][4, 0]
        checks = hf_refs.meaning_checks(acts, 2)
        print("mixtral planted:", [c[0] for c in checks if not c[2]])

# The recorder's choice: stages the filter selects and greta_trace knows.
filt = Filter(layers="1", stages="attn_out,q_post_rope,logits")
_, got, _ = capture(LLAMA, hf.wanted(filt))
print("filtered:", sorted(got))
_, got, _ = capture(MIXTRAL, hf.wanted(Filter()))
print("mixtral recorded:", sorted({k.split(".")[-1] for k in got}))

# What breaks the table fails loudly.
for what, run in [
        ("rope not through the module",
         lambda: capture(LLAMA, rope_via_module=False)),
        ("unknown family",
         lambda: capture(dict(LLAMA, model_type="gpt2"))),
        ("wrong width",
         lambda: capture(LLAMA, table=dict(LLAMA, num_key_value_heads=4))),
        ("missing module",
         lambda: capture(LLAMA, table=PHI3)),
        ("layer count",
         lambda: capture(LLAMA, table=dict(LLAMA, num_hidden_layers=3)))]:
    try:
        run()
        print(f"{what}: NOT REFUSED")
    except (hf.HFError, hf_table.TableError, AssertionError, ValueError) as e:
        print(f"{what}: {type(e).__name__}: {e}")
print("restored:", hf_fake.apply_rotary_pos_emb is hf_fake._ROPE)

# A reference file of the llama run, then its trace.
_, got, _ = capture(LLAMA)
got["prompt_ids"] = np.array(ids, dtype=np.int64)
path = os.path.join(out, "acts.safetensors")
hf_refs.write_safetensors(path, got, {"num_hidden_layers": 2,
                                      "family": "fake-llama"})
back, meta = hf_refs.read_safetensors(path)
print("round trip:", all(np.array_equal(back[k], got[k]) for k in got),
      meta)
rows, left = hf_refs.convert(path, os.path.join(out, "trace"), Filter())
t = read(os.path.join(out, "trace"))
same = all(np.array_equal(t.values(s, lay)[1],
                          got[hf_table.key(hf_table.POINT_BY_NAME[s], lay)])
           for s, lay in [("attn_in", 0), ("k_post_rope", 1), ("logits", 1),
                          ("embed_out", 0)])
print(f"trace: {rows} rows, {len(t)} records, values equal: {same}, "
      f"left out: {left}")
