"""An outside engine that misbehaves one way (engine-cmd-errors.test):

    broken_engine.py MODE --prompt P --trace-dir D
MODE: exit3 (fails), notrace (exits 0, writes nothing), incomplete (starts
a trace with greta_trace.Writer and never finishes it), complete (a good
one-record trace).
"""
import os
import sys

sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                             "..", "..", "..", "..", "python"))
import greta_trace  # noqa: E402

mode, trace_dir = sys.argv[1], sys.argv[sys.argv.index("--trace-dir") + 1]
if mode == "exit3":
    print("broken_engine: out of memory", file=sys.stderr)
    sys.exit(3)
if mode in ("incomplete", "complete"):
    w = greta_trace.Writer(trace_dir, token_count=5)
    w.tensor("mlp_out", 0, [[1.0, 2.0]] * 5)
    w.abandon() if mode == "incomplete" else w.finish()
