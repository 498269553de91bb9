"""The constants of the trace format (docs/TRACE_FORMAT.md) and GRETA's
stage table. The stage table and the enums mirror the C++ headers
runtime/include/greta/rt/Stages.h and Trace.h; test/python/stage-table.test
fails when they drift apart.
"""
import numpy as np

FORMAT_VERSION = 3          # the version written, and the newest read;
OLDEST_FORMAT_VERSION = 1   # version 1 has no block frames, 2 no run id
FILE_MAGIC = b"GRETATRC"
FILE_HEADER_SIZE = 32       # from version 3: magic, version, size, run id
OLD_FILE_HEADER_SIZE = 16   # versions 1 and 2: no run id
RUN_ID_OFFSET = 16
RUN_ID_BYTES = 16
RECORD_MAGIC = 0x43455247  # b"GREC" read as little-endian u32
BLOCK_MAGIC = 0x42455247   # b"GREB": many rows of one tensor (version 2)
MAX_BODY_BYTES = 1 << 30
MAX_BLOCK_BODY_BYTES = 64 << 20  # the C++ writer's default block frame limit
WRITE_BUFFER_BYTES = 1 << 20     # the C++ writer's buffer (frames are cut to it)
MAX_RANK = 8
MAX_TOP = 64
INT64_MAX = (1 << 63) - 1
BLOCK_CONTIGUOUS = 1  # block flags bit 0: positions are first, first + 1, ...

# Stages with their root-cause category (Stages.h kStageTable). The index is
# the stage byte of a record; a new stage is appended, so the index is not
# the execution order (EXECUTION_ORDER is).
STAGE_TABLE = [
    ("embed_out", "ROUTING/SELECTION"),
    ("residual_pre_attn", "ROUTING/SELECTION"),
    ("attn_in", "ATTN_KERNEL_INPUTS"),
    ("q_pre_rope", "ATTN_KERNEL_INPUTS"),
    ("k_pre_rope", "ATTN_KERNEL_INPUTS"),
    ("q_post_rope", "ATTENTION_MECHANISM"),
    ("k_post_rope", "ATTENTION_MECHANISM"),
    ("attn_out", "ATTENTION_MECHANISM"),
    ("residual_post_attn", "RESIDUAL_ADD"),
    ("ffn_norm_in", "FFN_NORM_PATH"),
    ("mlp_out", "MLP_OUTPUT"),
    ("residual_post_mlp", "RESIDUAL_ADD"),
    ("logits", "UNKNOWN"),
    ("v_proj", "ATTN_KERNEL_INPUTS"),
    ("router_logits", "ROUTING/SELECTION"),
    ("expert_selection", "ROUTING/SELECTION"),
    ("moe_out", "MLP_OUTPUT"),
    ("k_cache", "ATTENTION_MECHANISM"),
    ("v_cache", "ATTENTION_MECHANISM"),
    ("k_cache_read", "ATTENTION_MECHANISM"),
    ("v_cache_read", "ATTENTION_MECHANISM"),
]
STAGES = [name for name, _ in STAGE_TABLE]
# Stages.h isCacheStage: only a runtime's KV cache writes them, so `--stages
# all` leaves them out (engines without a cache never write them).
CACHE_STAGES = ("k_cache", "v_cache", "k_cache_read", "v_cache_read")
# Stages.h kExecutionOrder: the order inside a layer (v_proj after
# k_pre_rope, as HF computes q, k, v, then RoPE; attention writes the KV
# cache rows, then reads them).
EXECUTION_ORDER = ["embed_out", "residual_pre_attn", "attn_in", "q_pre_rope",
                   "k_pre_rope", "v_proj", "q_post_rope", "k_post_rope",
                   "k_cache", "v_cache", "k_cache_read", "v_cache_read",
                   "attn_out", "residual_post_attn", "ffn_norm_in",
                   "router_logits", "expert_selection", "moe_out", "mlp_out",
                   "residual_post_mlp", "logits"]
CATEGORIES = ["ROUTING/SELECTION", "ATTN_KERNEL_INPUTS", "ATTENTION_MECHANISM",
              "RESIDUAL_ADD", "FFN_NORM_PATH", "MLP_OUTPUT", "UNKNOWN"]
# A record id is layer * RECORD_ID_STRIDE + stage index % RECORD_ID_STRIDE,
# plus (stage index // RECORD_ID_STRIDE) << RECORD_ID_PAGE_SHIFT (Stages.h
# recordId). The execution-order key of a (stage, layer) is layer *
# EXECUTION_ORDER_STRIDE + the stage's rank in EXECUTION_ORDER (Stages.h
# executionOrderKey).
RECORD_ID_STRIDE = 16
RECORD_ID_PAGE_SHIFT = 40
EXECUTION_ORDER_STRIDE = 32

DTYPES = ["f32", "f64", "f16", "bf16"]    # Trace.h DType
PAYLOADS = ["hash", "stats", "full"]      # Trace.h Payload
DTYPE_SIZES = {"f32": 4, "f64": 8, "f16": 2, "bf16": 2}
# numpy has no bf16: its rows are stored and hashed as their 16 bits (u2).
STORED_DTYPES = {"f32": np.dtype("<f4"), "f64": np.dtype("<f8"),
                 "f16": np.dtype("<f2"), "bf16": np.dtype("<u2")}

# A block's row entry: 40 bytes for payload hash, 88 for stats and full
# (Trace.h BlockRow). A record frame holds the same fields.
HASH_ENTRY = np.dtype([("sha256", "V32"), ("nz", "<i8")])
STATS_ENTRY = np.dtype([("sha256", "V32"), ("nz", "<i8"), ("nan", "<i8"),
                        ("inf", "<i8"), ("min", "<f8"), ("max", "<f8"),
                        ("mean", "<f8"), ("l2", "<f8")])


def stage_index(stage):
    """The index of `stage` (a name or an index); ValueError naming the
    known stages when there is no such stage."""
    if isinstance(stage, (int, np.integer)):
        if 0 <= stage < len(STAGES):
            return int(stage)
        raise ValueError(f"stage index {stage} out of range [0, "
                         f"{len(STAGES) - 1}]")
    try:
        return STAGES.index(stage)
    except ValueError:
        raise ValueError(f"unknown stage '{stage}'; stages are: "
                         f"{' '.join(STAGES)}") from None


def stage_category(stage):
    """The root-cause category of a stage (name or index)."""
    return STAGE_TABLE[stage_index(stage)][1]


def execution_order_key(stage, layer):
    """Stages.h executionOrderKey: sorts (stage, layer) in execution order."""
    return layer * EXECUTION_ORDER_STRIDE + EXECUTION_ORDER.index(
        STAGES[stage_index(stage)])


def record_id(stage, layer):
    """Stages.h recordId: the same (stage, layer) key in every run."""
    s = stage_index(stage)
    return (layer * RECORD_ID_STRIDE + s % RECORD_ID_STRIDE +
            (s // RECORD_ID_STRIDE << RECORD_ID_PAGE_SHIFT))
