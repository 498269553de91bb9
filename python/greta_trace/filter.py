"""Which records a run writes: the runtime filter of greta-run's --layers,
--stages, --positions and --payload, with the same syntax, the same error
messages and the same text form (runtime/lib/Filter.cpp is the reference).

An engine outside GRETA receives the filter of each greta-bisect step in the
environment (GRETA_TRACE_LAYERS, _STAGES, _POSITIONS, _PAYLOAD; unset or
empty means "all" / "as the engine chooses"): Filter.from_env() reads them
and greta_trace.Writer consults the filter before it hashes a row.
"""
import os
import re

from .format import CACHE_STAGES, INT64_MAX, PAYLOADS, STAGES

ENV_VARS = {"layers": "GRETA_TRACE_LAYERS", "stages": "GRETA_TRACE_STAGES",
            "positions": "GRETA_TRACE_POSITIONS",
            "payload": "GRETA_TRACE_PAYLOAD"}
_DIGITS = re.compile(r"[0-9]+")


class FilterError(ValueError):
    """A filter item that does not parse; the message names it."""


def _items(spec):
    # Spaces around items are forgiven: "0, 1" is what people type.
    return [item.strip(" \t") for item in spec.split(",")]


def _non_negative(s):
    if not _DIGITS.fullmatch(s):
        return None
    v = int(s)
    return v if v <= INT64_MAX else None


def _range(item, spec, what):
    """"N" or "A-B" (A <= B) as (A, B)."""
    a, dash, b = item.partition("-")
    lo = _non_negative(a)
    hi = _non_negative(b) if dash else lo
    if lo is None or hi is None:
        alternatives = "last or all" if what == "position" else "or all"
        raise FilterError(f"bad {what} '{item}' in '{spec}': expected N, A-B, "
                          f"{alternatives}")
    if lo > hi:
        raise FilterError(f"bad {what} range '{item}' in '{spec}': start is "
                          f"after end")
    return lo, hi


def _named_and_all(spec, add):
    """The set that add(item, set) builds from the items of `spec` other
    than `all`, and whether `all` is one of them."""
    chosen, every = set(), False
    for item in _items(spec):
        if item == "all":
            every = True
        else:
            add(item, chosen)
    return chosen, every


def _set_unless_all(spec, add):
    """The set that add(item, set) builds from the items of `spec`, or None
    when one of them is `all` (every item is still checked)."""
    chosen, every = _named_and_all(spec, add)
    return None if every else chosen


class Filter:
    """layers: a set of layers or None (all); stages: a set of stage
    indices or None (all); position_ranges: a list of (first, last) or None
    (all, unless last_position); last_position: `last` was given; payload:
    "hash", "stats", "full" or None (as the writer was asked)."""

    def __init__(self, layers=None, stages=None, positions=None,
                 payload=None):
        self.layers = None
        self.stages = None
        self.position_ranges = None
        self.last_position = False
        self.payload = None
        if layers:
            self.parse_layers(layers)
        if stages:
            self.parse_stages(stages)
        if positions:
            self.parse_positions(positions)
        if payload:
            self.parse_payload(payload)

    @classmethod
    def from_env(cls, environ=None):
        """The filter the GRETA_TRACE_* variables describe (unset or empty:
        no restriction). A bad value raises FilterError naming the
        variable."""
        env = os.environ if environ is None else environ
        f = cls()
        for key, var in ENV_VARS.items():
            spec = env.get(var, "")
            if not spec:
                continue
            try:
                getattr(f, "parse_" + key)(spec)
            except FilterError as e:
                raise FilterError(f"{var}: {e}") from None
        return f

    def parse_layers(self, spec):
        def add(item, layers):
            lo, hi = _range(item, spec, "layer")
            if hi - lo > 100000:
                raise FilterError(f"layer range '{item}' is implausibly large")
            layers.update(range(lo, hi + 1))
        self.layers = _set_unless_all(spec, add)

    def parse_stages(self, spec):
        def add(item, stages):
            if item not in STAGES:
                raise FilterError(f"unknown stage '{item}' in '{spec}'; stages "
                                  f"are: {' '.join(STAGES)}, all")
            stages.add(STAGES.index(item))
        named, every = _named_and_all(spec, add)
        cache = {s for s in named if STAGES[s] in CACHE_STAGES}
        if every and cache:
            # `all,k_cache`: every stage a model traces and the named cache
            # stages (`all` alone leaves the cache stages out).
            named = cache | {i for i, name in enumerate(STAGES)
                             if name not in CACHE_STAGES}
        self.stages = None if every and not cache else named

    def parse_positions(self, spec):
        ranges, every, last = [], False, False
        for item in _items(spec):
            if item == "all":
                every = True
            elif item == "last":
                last = True
            else:
                ranges.append(_range(item, spec, "position"))
        if every:
            self.position_ranges, self.last_position = None, False
            return
        self.last_position = last
        self.position_ranges = ranges or None

    def parse_payload(self, spec):
        if spec not in PAYLOADS:
            raise FilterError(f"unknown payload '{spec}': expected hash, stats "
                              f"or full")
        self.payload = spec

    def selects(self, stage, layer):
        """Whether (stage index, layer) is written at all."""
        if self.layers is not None and layer not in self.layers:
            return False
        if self.stages is None:
            # The KV-cache stages are written only when named.
            return STAGES[stage] not in CACHE_STAGES
        return stage in self.stages

    def selects_position(self, position, token_count):
        """Whether `position` is written; `token_count` resolves `last`."""
        if self.position_ranges is None and not self.last_position:
            return True
        if self.last_position and position == token_count - 1:
            return True
        return any(a <= position <= b for a, b in self.position_ranges or ())

    def __str__(self):
        """The manifest's `filter` text, as Filter::str() writes it."""
        layers = ("all" if self.layers is None
                  else ",".join(str(x) for x in sorted(self.layers)))
        stages = ("all" if self.stages is None
                  else ",".join(STAGES[s] for s in sorted(self.stages)))
        if self.position_ranges is None and not self.last_position:
            positions = "all"
        else:
            items = [str(a) if a == b else f"{a}-{b}"
                     for a, b in self.position_ranges or ()]
            positions = ",".join(items + (["last"] if self.last_position
                                          else []))
        return (f"layers={layers} stages={stages} positions={positions} "
                f"payload={self.payload or 'compiled'}")

    def __repr__(self):
        return f"Filter({self})"
