"""greta_trace: read and write GRETA traces (docs/TRACE_FORMAT.md) with
numpy. See docs/PYTHON.md.

    import greta_trace
    t = greta_trace.read("runs/base")          # records, table(), values()
    with greta_trace.Writer("runs/mine", token_count=n, ...) as w:
        w.tensor("attn_out", layer, rows)      # the bytes GRETA writes
"""
from .filter import ENV_VARS, Filter, FilterError
from .format import (CATEGORIES, DTYPES, EXECUTION_ORDER, FORMAT_VERSION,
                     PAYLOADS, STAGES, STAGE_TABLE, execution_order_key,
                     record_id, stage_category, stage_index)
from .reader import (Block, Record, Trace, TraceError, read, read_manifest,
                     stored_bytes)
from .writer import (Writer, WriterError, file_digest, prompt_digest,
                     weights_digests)

__version__ = "0.1.0"

__all__ = [
    "Block", "CATEGORIES", "DTYPES", "ENV_VARS", "EXECUTION_ORDER",
    "FORMAT_VERSION", "Filter",
    "FilterError", "PAYLOADS", "Record", "STAGES", "STAGE_TABLE", "Trace",
    "TraceError", "Writer", "WriterError", "execution_order_key", "file_digest", "prompt_digest",
    "weights_digests",
    "read", "read_manifest", "record_id", "stage_category", "stage_index",
    "stored_bytes",
]
