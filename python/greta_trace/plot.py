"""The layer x stage error of two traces, as numbers (error_grid, numpy
only) and as a heatmap for notebooks (heatmap, matplotlib: imported only
when called, and optional for the rest of the package).

The error of a cell is the largest mean absolute difference of a row of that
(stage, layer) over the positions both traces hold: 0 where every row has
the same SHA-256, inf where rows differ but carry no values to measure
(payload hash or stats).
"""
import numpy as np

from .format import RECORD_ID_STRIDE, STAGES, execution_order_key, stage_index
from .reader import read

MATPLOTLIB_MISSING = (
    "greta_trace.plot.heatmap needs matplotlib, which is not installed "
    "(Debian: apt-get install python3-matplotlib; pip: pip install "
    "matplotlib). error_grid() gives the same numbers without it.")


def _trace(t):
    return read(t) if isinstance(t, (str, bytes)) or hasattr(
        t, "__fspath__") else t


def error_grid(base, test):
    """(layers, grid): the layers both traces hold, ascending, and a
    len(STAGES) x len(layers) array of errors (NaN where neither trace has
    the cell). `base` and `test` are Traces or trace directories."""
    a, b = _trace(base).by_key(), _trace(test).by_key()
    shared = a.keys() & b.keys()
    layers = sorted({key[1] for key in shared})
    column = {layer: i for i, layer in enumerate(layers)}
    grid = np.full((len(STAGES), len(layers)), np.nan)
    for key in shared:
        (sha_a, va), (sha_b, vb) = a[key], b[key]
        if sha_a == sha_b:
            err = 0.0
        elif va is None or vb is None or va.shape != vb.shape:
            err = np.inf
        else:
            err = float(np.mean(np.abs(vb.astype(np.float64) - va)))
        s, c = key[0], column[key[1]]
        if not err <= grid[s, c]:  # NaN (empty) or a larger error
            grid[s, c] = err
    return np.array(layers, dtype=np.int64), grid


def first_differing(layers, grid):
    """The first (stage, layer) in execution order whose error is above 0,
    or None."""
    cells = [(execution_order_key(s, layer), STAGES[s], layer)
             for s in range(len(STAGES)) for c, layer in enumerate(layers)
             if grid[s, c] > 0]
    return min(cells)[1:] if cells else None


def _pyplot():
    try:
        import matplotlib.pyplot as plt
        from matplotlib import colors
    except ImportError:
        raise ImportError(MATPLOTLIB_MISSING) from None
    return plt, colors


def heatmap(base, test, *, ax=None, mark="first", title=None):
    """Draws the layer x stage error of `test` against `base` (log scale;
    equal cells blank, cells that differ without values hatched) and frames
    `mark`: a (stage, layer), "first" for the first differing cell in
    execution order, or None. Returns the matplotlib Axes."""
    plt, colors = _pyplot()
    layers, grid = error_grid(base, test)
    if ax is None:
        _, ax = plt.subplots(figsize=(max(5, 0.4 * len(layers) + 4), 5),
                             layout="constrained")
    positive = grid[np.isfinite(grid) & (grid > 0)]
    shown = np.ma.masked_where(~np.isfinite(grid) | (grid <= 0), grid)
    norm = None
    if positive.size:
        low, high = positive.min(), positive.max()
        norm = colors.LogNorm(vmin=low, vmax=high if high > low else low * 10)
    image = ax.imshow(shown, aspect="auto", cmap="viridis", norm=norm,
                      interpolation="nearest")
    for s, c in zip(*np.nonzero(np.isinf(grid))):
        ax.add_patch(plt.Rectangle((c - 0.5, s - 0.5), 1, 1, fill=False,
                                   hatch="///", edgecolor="gray", lw=0))
    ax.set_xticks(range(len(layers)), [str(x) for x in layers])
    ax.set_yticks(range(len(STAGES)), STAGES)
    ax.set_xlabel("layer")
    ax.set_ylabel("stage")
    if positive.size:
        ax.figure.colorbar(image, ax=ax, label="max row MAE")
    cell = first_differing(layers, grid) if mark == "first" else mark
    if cell is not None:
        s, c = stage_index(cell[0]), list(layers).index(cell[1])
        ax.add_patch(plt.Rectangle((c - 0.5, s - 0.5), 1, 1, fill=False,
                                   edgecolor="red", lw=2))
        ax.annotate(f"{STAGES[s]} L{cell[1]}", (c + 0.5, s - 0.5),
                    color="red", xytext=(3, 3), textcoords="offset points",
                    bbox={"facecolor": "white", "alpha": 0.8, "lw": 0})
    ax.set_title(title or "error by layer and stage (log scale)")
    return ax
