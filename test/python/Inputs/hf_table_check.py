"""Properties of the HF stage table (greta_trace/hf_table.py): every family
lists every GRETA stage, in GRETA's execution order; names mean one stage
everywhere; stages GRETA lacks are recorded once greta_trace knows them
(one line); layouts and their errors."""
import numpy as np

from greta_trace import STAGES, format as fmt, hf_table as t

BASE = dict(hidden_size=32, num_attention_heads=4, num_key_value_heads=2,
            num_hidden_layers=3, vocab_size=256)
CONFIGS = {
    "llama": {}, "mistral": {}, "qwen2": {}, "qwen3": {"head_dim": 16},
    "gemma": {"head_dim": 16}, "phi3": {},
    "mixtral": {"num_local_experts": 4, "num_experts_per_tok": 2},
    "qwen3_moe": {"num_experts": 4, "num_experts_per_tok": 2,
                  "mlp_only_layers": [1]},
    "qwen2_moe": {"num_experts": 4, "num_experts_per_tok": 2,
                  "decoder_sparse_step": 2},
}
assert set(CONFIGS) == set(t.FAMILIES), "a family without a check"
assert set(t.ORDER) == set(t.NAME_TO_STAGE), "ORDER and the table differ"

for mt, extra in CONFIGS.items():
    config = dict(BASE, model_type=mt, **extra)
    points = t.all_points(config)
    stages = {p.stage for p, _ in points if t.recordable(p)}
    # The mixture-of-experts stages belong to MoE layers only.
    moe_stages = {"router_logits", "expert_selection", "moe_out"}
    # The KV-cache stages are a runtime cache's records, which the HF
    # recorder has none of (`--stages all` leaves them out).
    missing = set(STAGES) - stages - set(fmt.CACHE_STAGES) - (
        moe_stages if not any(t.is_moe_layer(config, l) for l in range(3))
        else set())
    # Execution order: the recorded stages of each layer follow GRETA's.
    for layer in range(3):
        names = [p.name for p in t.layer_points(config, layer)]
        assert names == sorted(names, key=t.ORDER.index), (mt, names)
    moe = [layer for layer in range(3) if t.is_moe_layer(config, layer)]
    statuses = sorted({f"{p.name}: {t.status(p)}" for p, _ in points
                       if t.status(p) != "recorded"})
    print(f"{mt}: {len(points)} points, missing stages {sorted(missing)}, "
          f"MoE layers {moe}; {'; '.join(statuses)}")

# One line: a stage the table has and greta_trace gains is recorded (as
# v_proj and router_logits were); one it loses is not.
v = t.POINT_BY_NAME["v_proj"]
print("v_proj recorded today:", t.recordable(v))
router = t.POINT_BY_NAME["router_logits"]
print("router_logits recorded today:", t.recordable(router))
fmt.STAGES.remove("router_logits")
try:
    print("router_logits recorded without the stage:", t.recordable(router))
finally:
    fmt.STAGES.insert(fmt.STAGE_TABLE.index(("router_logits",
                                             "ROUTING/SELECTION")),
                      "router_logits")

# Keys.
print(t.key(v, 3), t.key(t.POINT_BY_NAME["logits"], 3),
      t.parse_key("L12.q_post_rope", 20), t.parse_key("logits", 20),
      t.parse_key("embed_out", 20))
for bad in ("L1.mlp", "lm_head", "Lx.attn_in"):
    try:
        t.parse_key(bad, 2)
    except t.TableError as e:
        print(e)

# Layouts: heads [1, h, T, d] -> [T, h*d] (head h in columns h*d..);
# a router's (logits, scores, ids); a fused qkv's v columns.
dim = t.dims(dict(BASE, model_type="mixtral", num_local_experts=4,
                  num_experts_per_tok=2))
x = np.arange(4 * 3 * 8, dtype=np.float32).reshape(1, 4, 3, 8)
rows = t.extract(t.POINT_BY_NAME["q_post_rope"], x, dim, 3)
print("heads:", rows.shape, rows[2, 8:10].tolist(), "=",
      x[0, 1, 2, :2].tolist())
logits = np.zeros((3, 4), np.float32)
scores = np.array([[.7, .3], [.6, .4], [.5, .5]], np.float32)
ids = np.array([[2, 0], [1, 3], [3, 2]])
sel = t.extract(t.POINT_BY_NAME["expert_selection"], (logits, scores, ids),
                dim, 3)
print("selection:", sel.dtype, sel[1].tolist())
print("router_logits:", t.extract(t.POINT_BY_NAME["router_logits"],
                                  (logits, scores, ids), dim, 3).shape)
phi = t.FAMILIES["phi3"][0][[p.name for p in t.FAMILIES["phi3"][0]].index(
    "v_proj")]
qkv = np.arange(2 * 3 * 64, dtype=np.float32).reshape(2 * 3, 64)[None]
print("v_of_qkv:", t.extract(phi, qkv[:, :3], dict(dim, q=32, kv=16), 3
                             )[0, :2].tolist())
for what, args in [
        ("tensor for a router", (t.POINT_BY_NAME["router_logits"], logits)),
        ("short tuple", (t.POINT_BY_NAME["expert_selection"], (logits,))),
        ("heads rank", (t.POINT_BY_NAME["q_pre_rope"], x[0])),
        ("qkv width", (phi, qkv[:, :3, :60])),
        ("tokens", (t.POINT_BY_NAME["attn_out"], np.zeros((1, 4, 32))))]:
    try:
        t.extract(*args[:2], dict(dim, q=32, kv=16), 3, 1)
        print(what, "NOT REFUSED")
    except t.TableError as e:
        print(f"{what}: {e}")
try:
    t.dims({"model_type": "llama", "hidden_size": 8})
except t.TableError as e:
    print(e)
