"""greta_trace.plot on two greta-trace-gen traces with a fault planted at
(mlp_out, layer 2, from position 5): the error grid, the heatmap (a PNG
with the first differing cell framed) and the message when matplotlib is
missing.

  plot_check.py WORK_DIR
"""
import os
import sys

import numpy as np

import greta_trace
from greta_trace import plot

work = sys.argv[1]
base, test = os.path.join(work, "base"), os.path.join(work, "test")
layers, grid = plot.error_grid(base, test)
print("layers", layers.tolist())
mlp = greta_trace.STAGES.index("mlp_out")
print("mlp_out row", ["%.3g" % e for e in grid[mlp]])
before = [grid[s, c] for s in range(len(greta_trace.STAGES))
          for c, layer in enumerate(layers.tolist())
          if greta_trace.execution_order_key(s, layer) <
          greta_trace.execution_order_key(mlp, 2)]
print("zero before the fault:", all(e == 0 or np.isnan(e) for e in before),
      len(before))
print("first differing", plot.first_differing(layers, grid))

ax = plot.heatmap(base, test)
png = os.path.join(work, "heatmap.png")
ax.figure.savefig(png, dpi=80)
with open(png, "rb") as f:
    head = f.read(8)
print("png", head == b"\x89PNG\r\n\x1a\n", os.path.getsize(png) > 10000)
framed = [p for p in ax.patches if p.get_edgecolor()[:3] == (1.0, 0.0, 0.0)]
print("framed cell", [(p.get_x() + 0.5, p.get_y() + 0.5) for p in framed],
      "= (layer column 2, stage row", mlp, ")")

# Without matplotlib: a clear error, and the numbers still come.
sys.modules["matplotlib"] = None
sys.modules["matplotlib.pyplot"] = None
try:
    plot.heatmap(base, test)
except ImportError as e:
    print("ImportError:", e)
