"""greta_trace: read GRETA traces (docs/TRACE_FORMAT.md) with numpy."""
from .reader import (Record, Trace, TraceError, decode_block, decode_body,
                     read, stored_bytes, verify)
