"""The one table from HF transformers (5.x) modules to GRETA stages.

Each model family (HF `model_type`) lists its *points*: where a value is
taken in HF's forward pass and which GRETA stage it is, with GRETA's meaning
(lib/Target/HF/ImportHFConfig.cpp tags the same values in the greta IR):

  embed_out          what enters the residual stream (layer 0's input; for
                     Gemma already scaled by sqrt(hidden))
  residual_pre_attn  a decoder layer's input
  attn_in            input_layernorm's output
  q/k_pre_rope       the q/k that RoPE receives ([heads*head_dim] a token,
                     HF's head order: head h is columns h*d..(h+1)*d, the
                     q_proj output's order); for Qwen3 after q_norm/k_norm
  q/k_post_rope      RoPE's result, same layout
  v_proj             the value projection (kv_heads*head_dim)
  attn_out           o_proj's output
  residual_post_attn the residual plus attn_out (post_attention_layernorm's
                     input)
  ffn_norm_in        post_attention_layernorm's output (the MLP's input)
  router_logits      the router's scores (MoE)
  expert_selection   the k expert ids in rank order, then their k weights,
                     as floats (MoE)
  moe_out            the routed experts' weighted sum (before any shared
                     expert is added)
  mlp_out            the layer's MLP (or MoE block) output
  residual_post_mlp  the decoder layer's output
  logits             lm_head's output (tagged with the last layer)

Points whose stage is None are kept in the reference activations only
(scripts/hf_refs): they help a GRETA implementer, and no trace holds them.
A point whose stage greta_trace.STAGES does not know yet (v_proj,
router_logits, expert_selection, moe_out) is in the table but recorded
only once the stage table has it, so adding a stage is one line there.

Everything here is plain Python: the hooks (greta_trace.hf) feed torch
tensors through `extract`, the tests feed numpy arrays.
"""
from collections import namedtuple

from .format import STAGES

# name:   the activation's name (a key "L<layer>.<name>", or "<name>" for
#         the model-level points)
# stage:  the GRETA stage, or None (reference only)
# scope:  "layer" (path relative to model.layers[l]), "first" / "last"
#         (path relative to the *ForCausalLM; tagged layer 0 / the last)
# source: "in"   the module's first tensor input (a forward pre-hook)
#         "out"  the module's output (a forward hook)
#         "rope" the attention's apply_rotary_pos_emb: path is q_in, k_in,
#                q_out or k_out
# path:   the module, "" for the decoder layer itself
# pick:   None (a tensor), "first" (a tensor, or a tuple's first item),
#         an int (that item of a tuple), "v_of_qkv" (the v columns of a
#         fused qkv_proj), "selection" (ids then weights of a router's
#         (logits, scores, indices))
# layout: "tokens" ([..., tokens, width] -> [tokens, width]) or "heads"
#         ([1, heads, tokens, head_dim] -> [tokens, heads*head_dim])
# width:  a key of dims(): the columns the value must have
Point = namedtuple("Point", "name stage scope source path pick layout width")


def _p(name, stage, scope, source, path, width, pick=None, layout="tokens"):
    return Point(name, stage, scope, source, path, pick, layout, width)


_EMBED = _p("embed_out", "embed_out", "first", "in", "model.layers.0",
            "hidden")
_FINAL_NORM = _p("final_norm", None, "last", "out", "model.norm", "hidden")
_LOGITS = _p("logits", "logits", "last", "out", "lm_head", "vocab")

_ATTN = [
    _p("residual_pre_attn", "residual_pre_attn", "layer", "in", "",
       "hidden"),
    _p("attn_in", "attn_in", "layer", "out", "input_layernorm", "hidden"),
    _p("q_pre_rope", "q_pre_rope", "layer", "rope", "q_in", "q",
       layout="heads"),
    _p("k_pre_rope", "k_pre_rope", "layer", "rope", "k_in", "kv",
       layout="heads"),
    _p("v_proj", "v_proj", "layer", "out", "self_attn.v_proj", "kv"),
    _p("q_post_rope", "q_post_rope", "layer", "rope", "q_out", "q",
       layout="heads"),
    _p("k_post_rope", "k_post_rope", "layer", "rope", "k_out", "kv",
       layout="heads"),
    _p("attn_out", "attn_out", "layer", "out", "self_attn.o_proj", "hidden"),
    _p("residual_post_attn", "residual_post_attn", "layer", "in",
       "post_attention_layernorm", "hidden"),
    _p("ffn_norm_in", "ffn_norm_in", "layer", "out",
       "post_attention_layernorm", "hidden"),
]
_MLP_OUT = _p("mlp_out", "mlp_out", "layer", "out", "mlp", "hidden")
_LAYER_OUT = _p("residual_post_mlp", "residual_post_mlp", "layer", "out", "",
                "hidden", pick="first")
# Transformers 5 routers return (router_logits, top-k scores, top-k ids).
_MOE = [
    _p("router_logits", "router_logits", "layer", "out", "mlp.gate",
       "experts", pick=0),
    _p("expert_selection", "expert_selection", "layer", "out", "mlp.gate",
       "2topk", pick="selection"),
    _p("moe_out", "moe_out", "layer", "out", "mlp.experts", "hidden"),
]
# Qwen3's q/k before their per-head RMSNorm (q_pre_rope is after it).
_QK_PROJ = [
    _p("q_proj", None, "layer", "out", "self_attn.q_proj", "q"),
    _p("k_proj", None, "layer", "out", "self_attn.k_proj", "kv"),
]
_SHARED_EXPERT = [
    _p("shared_expert", None, "layer", "out", "mlp.shared_expert", "hidden"),
    _p("shared_expert_gate", None, "layer", "out", "mlp.shared_expert_gate",
       "one"),
]


def _layer(attn=_ATTN, before_attn=(), moe=(), after_moe=()):
    """A decoder layer's points in execution order."""
    attn = list(attn)
    i = [p.name for p in attn].index("q_pre_rope")
    return attn[:i] + list(before_attn) + attn[i:] + list(moe) + \
        list(after_moe) + [_MLP_OUT, _LAYER_OUT]


def _replace(points, **by_name):
    return [by_name.get(p.name, p) for p in points]


# Phi-3 fuses q, k and v into qkv_proj (and gate/up into gate_up_proj,
# which no point needs).
_PHI3_ATTN = _replace(_ATTN, v_proj=_p(
    "v_proj", "v_proj", "layer", "out", "self_attn.qkv_proj", "kv",
    pick="v_of_qkv"))

# model_type -> (points of a decoder layer, points of an MoE layer or None)
FAMILIES = {
    "llama": (_layer(), None),
    "mistral": (_layer(), None),
    "qwen2": (_layer(), None),
    "qwen3": (_layer(before_attn=_QK_PROJ), None),
    "gemma": (_layer(), None),
    "phi3": (_layer(attn=_PHI3_ATTN), None),
    "mixtral": (None, _layer(moe=_MOE)),
    "qwen3_moe": (_layer(before_attn=_QK_PROJ),
                  _layer(before_attn=_QK_PROJ, moe=_MOE)),
    "qwen2_moe": (_layer(), _layer(moe=_MOE, after_moe=_SHARED_EXPERT)),
}
MODEL_POINTS = {"first": [_EMBED], "last": [_FINAL_NORM, _LOGITS]}

# Every point's name means one thing in every family: its first point.
POINT_BY_NAME = {}
for _dense, _moe in FAMILIES.values():
    for _p_ in (_dense or []) + (_moe or []):
        POINT_BY_NAME.setdefault(_p_.name, _p_)
for _p_ in MODEL_POINTS["first"] + MODEL_POINTS["last"]:
    POINT_BY_NAME.setdefault(_p_.name, _p_)
NAME_TO_STAGE = {name: p.stage for name, p in POINT_BY_NAME.items()}
# Execution order of every name (a layer's points between embed_out and
# final_norm); test/python/hf-table.test checks it covers the table.
ORDER = ["embed_out", "residual_pre_attn", "attn_in", "q_proj", "k_proj",
         "q_pre_rope", "k_pre_rope", "v_proj", "q_post_rope", "k_post_rope",
         "attn_out", "residual_post_attn", "ffn_norm_in", "router_logits",
         "expert_selection", "moe_out", "shared_expert", "shared_expert_gate",
         "mlp_out", "residual_post_mlp", "final_norm", "logits"]


class TableError(ValueError):
    """A config or a value that the table cannot map; the message names
    it."""


def family(config):
    """The family (model_type) of an HF config dict; TableError naming the
    supported ones when there is none."""
    mt = config.get("model_type")
    if mt not in FAMILIES:
        raise TableError(f"model_type '{mt}' is not in the HF stage table "
                         f"(greta_trace/hf_table.py); supported: "
                         f"{', '.join(sorted(FAMILIES))}")
    return mt


def dims(config):
    """The widths the points are checked against, from an HF config dict."""
    try:
        hidden = int(config["hidden_size"])
        heads = int(config["num_attention_heads"])
        layers = int(config["num_hidden_layers"])
        vocab = int(config["vocab_size"])
    except KeyError as e:
        raise TableError(f"config has no '{e.args[0]}'") from None
    kv_heads = int(config.get("num_key_value_heads") or heads)
    head_dim = int(config.get("head_dim") or hidden // heads)
    experts = int(config.get("num_local_experts")
                  or config.get("num_experts") or 0)
    topk = int(config.get("num_experts_per_tok") or 0)
    return {"hidden": hidden, "q": heads * head_dim, "kv": kv_heads * head_dim,
            "vocab": vocab, "experts": experts, "topk": topk,
            "2topk": 2 * topk, "one": 1, "layers": layers,
            "head_dim": head_dim}


def is_moe_layer(config, layer):
    """Whether decoder layer `layer` has a sparse MoE block (the rule of
    each family's decoder layer constructor)."""
    mt = family(config)
    if mt == "mixtral":
        return True
    if mt in ("qwen2_moe", "qwen3_moe"):
        step = int(config.get("decoder_sparse_step") or 1)
        return (layer not in (config.get("mlp_only_layers") or [])
                and int(config.get("num_experts")
                        or config.get("num_local_experts") or 0) > 0
                and (layer + 1) % step == 0)
    return False


def layer_points(config, layer):
    """The points of decoder layer `layer`, in execution order."""
    dense, moe = FAMILIES[family(config)]
    points = moe if is_moe_layer(config, layer) else dense
    if points is None:
        raise TableError(f"{family(config)} layer {layer}: the table has no "
                         f"dense layer for this family")
    return points


def all_points(config):
    """(point, layer) for the whole model, in execution order."""
    n = dims(config)["layers"]
    out = [(p, 0) for p in MODEL_POINTS["first"]]
    for layer in range(n):
        out += [(p, layer) for p in layer_points(config, layer)]
    return out + [(p, n - 1) for p in MODEL_POINTS["last"]]


def key(point, layer):
    """The activation's name in a reference file."""
    return point.name if point.scope != "layer" else f"L{layer}.{point.name}"


def parse_key(name, num_layers):
    """(point name, layer) of a reference file key; TableError if unknown."""
    if name.startswith("L") and "." in name:
        layer, _, point = name[1:].partition(".")
        if layer.isdigit() and point in NAME_TO_STAGE:
            return point, int(layer)
    elif name in NAME_TO_STAGE:
        return name, 0 if name == "embed_out" else num_layers - 1
    raise TableError(f"'{name}' is not a point of the HF stage table")


def recordable(point):
    """Whether a trace can hold the point today: it has a GRETA stage that
    greta_trace's stage table knows."""
    return point.stage is not None and point.stage in STAGES


def status(point):
    """Why a point is or is not written to a trace, for plans and docs."""
    if point.stage is None:
        return "reference only"
    if point.stage not in STAGES:
        return f"not yet a GRETA stage ({point.stage})"
    return "recorded"


# -- values -------------------------------------------------------------

def _is_torch(x):
    return type(x).__module__.split(".")[0] == "torch"


def _permute(x, axes):
    return x.permute(*axes) if _is_torch(x) else x.transpose(axes)


def _concat(parts):
    if _is_torch(parts[0]):
        import torch
        return torch.cat(parts, dim=-1)
    import numpy as np
    return np.concatenate(parts, axis=-1)


def _as_float_like(ids, like):
    return ids.to(like.dtype) if _is_torch(ids) else ids.astype(like.dtype)


def _where(point, layer):
    at = f"layer {layer} " if point.scope == "layer" else ""
    src = (f"apply_rotary_pos_emb ({point.path})" if point.source == "rope"
           else f"{point.source}put of '{point.path or 'the decoder layer'}'")
    return f"{point.name} ({at}{src})"


def _shape(x):
    return list(getattr(x, "shape", ()))


def extract(point, value, dim, tokens, layer=0):
    """The [tokens, width] rows of `point` from what its hook saw (a torch
    tensor or a numpy array, or a tuple of them). TableError names the point
    and what did not hold."""
    if isinstance(value, (tuple, list)):
        if point.pick == "first" or (isinstance(point.pick, int)
                                     and point.pick < len(value)):
            value = value[0 if point.pick == "first" else point.pick]
        elif point.pick == "selection" and len(value) >= 3:
            scores, ids = value[1], value[2]
            if _shape(scores) != _shape(ids):
                raise TableError(f"{_where(point, layer)}: router scores "
                                 f"{_shape(scores)} and ids {_shape(ids)} "
                                 f"differ in shape")
            value = _concat([_as_float_like(ids, scores), scores])
        else:
            raise TableError(f"{_where(point, layer)}: got a tuple of "
                             f"{len(value)}, expected pick {point.pick!r} to "
                             f"apply (transformers 5 routers return "
                             f"(logits, scores, ids))")
    elif isinstance(point.pick, int) or point.pick == "selection":
        raise TableError(f"{_where(point, layer)}: expected a tuple (a "
                         f"transformers 5 router's (logits, scores, ids)), "
                         f"got {type(value).__name__} {_shape(value)}")
    if not hasattr(value, "shape") or not hasattr(value, "reshape"):
        raise TableError(f"{_where(point, layer)}: expected a tensor, got "
                         f"{type(value).__name__}")
    shape = _shape(value)
    if point.pick == "v_of_qkv":
        q, kv = dim["q"], dim["kv"]
        if not shape or shape[-1] != q + 2 * kv:
            raise TableError(f"{_where(point, layer)}: fused qkv has shape "
                             f"{shape}, expected last dim q + 2 kv = "
                             f"{q + 2 * kv}")
        value = value[..., q + kv:]
    if point.layout == "heads":
        if len(shape) != 4 or shape[0] != 1:
            raise TableError(f"{_where(point, layer)}: expected [1, heads, "
                             f"tokens, head_dim], got {shape}")
        value = _permute(value[0], (1, 0, 2))
        value = value.reshape(value.shape[0], -1)
    else:
        if not shape:
            raise TableError(f"{_where(point, layer)}: got a scalar")
        value = value.reshape(-1, value.shape[-1])
    want = dim[point.width]
    got = _shape(value)
    if got != [tokens, want]:
        raise TableError(f"{_where(point, layer)}: rows of shape {got}, "
                         f"expected [{tokens}, {want}] ({tokens} tokens x "
                         f"{point.width} {want}; HF shape {shape})")
    return value
