"""greta_trace: read GRETA traces (docs/TRACE_FORMAT.md) with numpy. See
docs/PYTHON.md.

    import greta_trace
    t = greta_trace.read("runs/base")          # records, table(), values()
"""
from .format import (CATEGORIES, DTYPES, FORMAT_VERSION, PAYLOADS, STAGES,
                     STAGE_TABLE, record_id, stage_category, stage_index)
from .reader import (Block, Record, Trace, TraceError, read, read_manifest,
                     stored_bytes)

__version__ = "0.1.0"

__all__ = [
    "Block", "CATEGORIES", "DTYPES", "FORMAT_VERSION", "PAYLOADS", "Record",
    "STAGES", "STAGE_TABLE", "Trace", "TraceError", "read", "read_manifest",
    "record_id", "stage_category", "stage_index", "stored_bytes",
]
