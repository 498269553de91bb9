"""The per-row digest fields of a trace, computed from numpy rows exactly as
GRETA's C++ runtime computes them (runtime/lib/Session.cpp fillRowRecord and
topFive), so that a trace written from the same arrays is the same bytes:

- sha256 of the row's bytes as stored (little endian, contiguous);
- nz: elements != 0 (NaN counts, -0 does not);
- with stats: nan and inf counts; min and max over the non-NaN elements (NaN
  when every element is NaN; among equal zeros the first one's sign); mean
  and L2 of every element in f64, summed left to right, so a NaN shows;
- logits: the top-5 ids, best first, ties to the lower id, NaN last, -1
  padded.
"""
import hashlib

import numpy as np

from .format import HASH_ENTRY, STATS_ENTRY, STORED_DTYPES

_MAGNITUDE = {2: np.uint16(0x7FFF), 4: np.uint32(0x7FFFFFFF),
              8: np.uint64(0x7FFFFFFFFFFFFFFF)}


def as_stored(rows, dtype):
    """`rows` (n x cols) as the little-endian, C-contiguous array of the
    trace dtype whose bytes are hashed and stored. bf16 rows are given as
    their 16 bits (a uint16 array); numpy has no bf16."""
    want = STORED_DTYPES[dtype]
    rows = np.asarray(rows)
    if dtype == "bf16" and rows.dtype.kind != "u":
        raise TypeError("bf16 rows are given as their bits (a uint16 array)")
    if rows.dtype.kind not in "fu" or rows.dtype.itemsize != want.itemsize:
        raise TypeError(f"rows of numpy dtype {rows.dtype} cannot be written "
                        f"as {dtype} (give {want.name} rows)")
    return np.ascontiguousarray(rows, dtype=want)


def as_float64(stored, dtype):
    """Stored rows widened to f64, exactly (bf16 through its f32)."""
    if dtype == "bf16":
        stored = (stored.astype(np.uint32) << 16).view(np.float32)
    return stored.astype(np.float64)


def _first_zero_sign(v, result):
    """Where `result` is zero, the zero the C++ loop keeps: the row's first
    zero (min/max over `v < m ? v : m` never replaces an equal value)."""
    zero = result == 0
    if zero.any():
        rows = np.nonzero(zero)[0]
        first = np.argmax(v[rows] == 0, axis=1)
        result[rows] = v[rows, first]
    return result


def entries(stored, dtype, stats):
    """The row entries (format.STATS_ENTRY when `stats`, else HASH_ENTRY)
    of the stored rows `stored` (n x cols)."""
    n = stored.shape[0]
    out = np.zeros(n, dtype=STATS_ENTRY if stats else HASH_ENTRY)
    flat = stored.reshape(n, -1)
    cols = flat.shape[1]
    out["sha256"] = [np.void(hashlib.sha256(row).digest()) for row in flat]
    bits = flat.view(np.dtype(f"<u{flat.dtype.itemsize}"))
    out["nz"] = np.count_nonzero(bits & _MAGNITUDE[flat.dtype.itemsize],
                                 axis=1)
    if not stats:
        return out
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf is NaN
        _stats(out, as_float64(flat, dtype), cols)
    return out


def _stats(out, v, cols):
    """The nan/inf counts and fingerprints of the f64 rows `v` into `out`."""
    nan = np.isnan(v)
    nan_count = nan.sum(axis=1)
    out["nan"] = nan_count
    out["inf"] = np.isinf(v).sum(axis=1)
    all_nan = nan_count == cols
    if cols:
        out["min"] = _first_zero_sign(v, np.where(nan, np.inf, v).min(axis=1))
        out["max"] = _first_zero_sign(v, np.where(nan, -np.inf, v).max(axis=1))
        # np.sum adds pairwise; the runtime adds left to right, as cumsum.
        total = np.cumsum(v, axis=1)[:, -1]
        out["mean"] = total / cols
        out["l2"] = np.sqrt(np.cumsum(v * v, axis=1)[:, -1])
    out["min"][all_nan] = np.nan
    out["max"][all_nan] = np.nan


def selection_ids(stored, dtype):
    """An expert_selection block's top ids (n x k int32): the k expert ids
    each row starts with ([k ids, k weights]), -1 where one is not a whole
    number, as the C++ writer records them (Session.cpp)."""
    v = as_float64(stored.reshape(stored.shape[0], -1), dtype)
    ids = v[:, :v.shape[1] // 2]
    ok = (ids >= 0) & (ids < 2147483647.0) & (ids == np.floor(ids))
    return np.where(ok, ids, -1).astype(np.int32)


def top_ids(stored, dtype, k=5):
    """The runtime's top-k of each row (n x k int32): ids of the largest
    values, best first, ties to the lower id, NaN below everything, -1
    where a row has fewer than k elements."""
    v = as_float64(stored.reshape(stored.shape[0], -1), dtype)
    # A stable ascending sort of -v: NaN sorts last, equal values keep the
    # lower id first (-0 and 0 are equal).
    order = np.argsort(-v, axis=1, kind="stable")[:, :k].astype(np.int32)
    if order.shape[1] < k:
        pad = np.full((order.shape[0], k - order.shape[1]), -1, np.int32)
        order = np.concatenate([order, pad], axis=1)
    return order
