"""python -m greta_trace.hf: run an HF transformers model on a prompt and
write what it computed as a GRETA trace (docs/PYTHON.md, "Recording HF
transformers").

    python -m greta_trace.hf --model DIR --prompt P.json --trace-dir D
        [--dtype float32|float16|bfloat16] [--device cuda|cpu]
        [--layers L] [--stages S] [--positions P] [--payload hash|stats|full]

The stages and the HF modules they are taken from are the one table of
greta_trace.hf_table. The filter is greta-run's: GRETA_TRACE_LAYERS,
_STAGES, _POSITIONS and _PAYLOAD (what greta-bisect sets for an outside
engine), each overridden by its flag. Rows are the run's values in the dtype
HF computed them in, one token a row, hashed as GRETA hashes them.

`--check` reads the config, the prompt and the filter and prints the plan
without importing torch.
"""
import argparse
import json
import os
import sys

import numpy as np

from . import hf_table
from .filter import Filter, FilterError
from .format import stage_index
from .writer import (Writer, WriterError, file_digest, prompt_digest,
                     weights_digests)

DTYPES = {"float32": "f32", "float16": "f16", "bfloat16": "bf16"}


class HFError(Exception):
    """The recording cannot go on; the message names what did not hold."""


# -- what runs without torch ---------------------------------------------

def add_filter_args(ap):
    """greta-run's --layers/--stages/--positions/--payload."""
    for key, what in (("layers", "0,1,4-8,all"), ("stages", "names or all"),
                      ("positions", "826,700-826,last,all"),
                      ("payload", "hash|stats|full")):
        ap.add_argument(f"--{key}", help=f"runtime filter ({what}); "
                        f"overrides GRETA_TRACE_{key.upper()}")


def build_filter(args, environ=None):
    """The runtime filter: GRETA_TRACE_* from the environment, each
    overridden by its flag (a flag given as "" keeps the variable's)."""
    filt = Filter.from_env(environ)
    for key in ("layers", "stages", "positions", "payload"):
        spec = getattr(args, key, None)
        if spec:
            try:
                getattr(filt, "parse_" + key)(spec)
            except FilterError as e:
                raise FilterError(f"--{key}: {e}") from None
    return filt


def read_config(model_dir):
    path = os.path.join(model_dir, "config.json")
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    except OSError as e:
        raise HFError(f"cannot read '{path}': {e.strerror} (--model takes an "
                      f"HF checkpoint directory)") from None
    except ValueError as e:
        raise HFError(f"'{path}': invalid JSON: {e}") from None
    if not isinstance(config, dict):
        raise HFError(f"'{path}': expected a JSON object")
    try:
        hf_table.family(config)
        hf_table.dims(config)
    except hf_table.TableError as e:
        raise HFError(f"'{path}': {e}") from None
    return config


def read_prompt(path, vocab):
    """GRETA's prompt file: a JSON list of token ids."""
    try:
        with open(path, encoding="utf-8") as f:
            ids = json.load(f)
    except OSError as e:
        raise HFError(f"cannot read prompt '{path}': {e.strerror}") from None
    except ValueError as e:
        raise HFError(f"prompt '{path}': invalid JSON: {e}") from None
    if (not isinstance(ids, list) or not ids
            or not all(isinstance(i, int) and not isinstance(i, bool)
                       for i in ids)):
        raise HFError(f"prompt '{path}': expected a non-empty JSON list of "
                      f"token ids")
    bad = [i for i in ids if not 0 <= i < vocab]
    if bad:
        raise HFError(f"prompt '{path}': token id {bad[0]} is outside the "
                      f"vocabulary [0, {vocab})")
    return ids


def weights_files(model_dir):
    """("single", [model.safetensors]) or ("sharded", [shards in index
    order]); HFError when neither is there."""
    single = os.path.join(model_dir, "model.safetensors")
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(index):
        try:
            with open(index, encoding="utf-8") as f:
                weight_map = json.load(f)["weight_map"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise HFError(f"'{index}': cannot read its weight_map "
                          f"({e})") from None
        shards = list(dict.fromkeys(weight_map.values()))
        return "sharded", [os.path.join(model_dir, s) for s in shards]
    if os.path.exists(single):
        return "single", [single]
    raise HFError(f"'{model_dir}' has neither model.safetensors nor "
                  f"model.safetensors.index.json")


def identity(args, model_dir):
    """The manifest's model digest, weights digest and weights tensor
    digests, and notes on them.

    model_digest: --model-digest, or the digest of --greta-model (GRETA's
    model IR file, what greta-run writes), else of config.json (what this
    engine ran). weights_digest: --weights-digest (no tensor digests then),
    else the digests of model.safetensors as greta-run computes them (of
    the values); a sharded checkpoint gets none (greta-run reads one
    file)."""
    notes = []
    if args.model_digest:
        model_digest = args.model_digest
    elif args.greta_model:
        model_digest = file_digest(args.greta_model)
    else:
        model_digest = file_digest(os.path.join(model_dir, "config.json"))
        notes.append("model_digest is config.json's (pass --greta-model "
                     "MODEL.mlir to compare with a GRETA trace)")
    kind, files = weights_files(model_dir)
    tensor_digests = {}
    if args.weights_digest:
        weights_digest = args.weights_digest
    elif kind == "single":
        weights_digest, tensor_digests = weights_digests(files[0])
    else:
        weights_digest = ""
        notes.append(f"weights_digest left empty: {len(files)} shards "
                     f"(pass --weights-digest)")
    return model_digest, weights_digest, tensor_digests, notes


def wanted(filt):
    """The recorder's choice of (point, layer): a stage greta_trace knows
    and the filter selects."""
    return lambda p, layer: (hf_table.recordable(p) and filt.selects(
        stage_index(p.stage), layer))


def plan_lines(config, filt):
    """What a run records, a line per point, for --check."""
    fam = hf_table.family(config)
    dim = hf_table.dims(config)
    want = wanted(filt)
    lines = [f"family {fam}: {dim['layers']} layers, hidden {dim['hidden']}, "
             f"q {dim['q']}, kv {dim['kv']}, vocab {dim['vocab']}"
             + (f", {dim['experts']} experts top-{dim['topk']}"
                if dim["experts"] else ""),
             f"filter: {filt}"]
    seen = {}
    for p, layer in hf_table.all_points(config):
        seen.setdefault(p.name, (p, []))[1].append(layer)
    for name in sorted(seen, key=hf_table.ORDER.index):
        p, layers = seen[name]
        chosen = [layer for layer in layers if want(p, layer)]
        src = (f"apply_rotary_pos_emb {p.path}" if p.source == "rope"
               else f"{p.source} {p.path or '<decoder layer>'}")
        state = hf_table.status(p)
        if state == "recorded":
            state = (f"recorded, layers {_ranges(chosen)}" if chosen
                     else "not selected by the filter")
        else:
            state += f", layers {_ranges(layers)}"
        lines.append(f"  {name:20s} {src:44s} {state}")
    return lines


def _ranges(layers):
    out, start = [], None
    for i, x in enumerate(layers):
        if start is None:
            start = x
        if i + 1 == len(layers) or layers[i + 1] != x + 1:
            out.append(str(start) if start == x else f"{start}-{x}")
            start = None
    return ",".join(out)


# -- the torch side ------------------------------------------------------

def _import_torch():
    try:
        import torch
        import transformers
    except ImportError as e:
        raise HFError(f"recording needs torch and transformers: {e} "
                      f"(--check runs without them)") from None
    return torch, transformers


def _module(root, path, where):
    m = root
    for part in [x for x in path.split(".") if x]:
        children = dict(m.named_children())
        if part not in children:
            raise HFError(f"{where}: no module '{part}' in "
                          f"'{path}' (children of {type(m).__name__}: "
                          f"{', '.join(children) or 'none'}); the HF stage "
                          f"table (greta_trace/hf_table.py) needs updating "
                          f"for this transformers version")
        m = children[part]
    return m


def _first_tensor(args, kwargs):
    for a in args:
        if hasattr(a, "shape"):
            return a
    if hasattr(kwargs.get("hidden_states"), "shape"):
        return kwargs["hidden_states"]
    for v in kwargs.values():
        if hasattr(v, "shape"):
            return v
    return None


class Capture:
    """Forward hooks on an HF *ForCausalLM, and a wrapper around its
    attention's apply_rotary_pos_emb, that hand every table point that
    want(point, layer) selects to sink(point, layer, rows) as a [tokens,
    width] tensor, as soon as it is computed. check() after the forward
    pass fails when a point was not seen exactly once. Use as a context
    manager: the hooks are removed and the function restored on exit."""

    def __init__(self, model, config, tokens, sink, want=None):
        self.dim = hf_table.dims(config)
        self.family = hf_table.family(config)
        self.tokens = tokens
        self.sink = sink
        self.points = [(p, layer) for p, layer in hf_table.all_points(config)
                       if want is None or want(p, layer)]
        self.counts = {}
        self.handles = []
        self.patched = []
        self.attn_stack = []
        try:
            self._install(model)
        except BaseException:
            self.close()
            raise

    def _install(self, model):
        layers = _module(model, "model.layers", self.family)
        if len(layers) != self.dim["layers"]:
            raise HFError(f"{self.family}: model.layers has {len(layers)} "
                          f"layers, the config {self.dim['layers']}")
        by_module, rope = {}, {}
        for p, layer in self.points:
            if p.source == "rope":
                rope.setdefault(layer, []).append(p)
                continue
            root = layers[layer] if p.scope == "layer" else model
            m = _module(root, p.path, f"{self.family} point {p.name}")
            entry = by_module.setdefault((id(m), p.source), (m, []))
            entry[1].append((p, layer))
        for (_, source), (m, pts) in by_module.items():
            if source == "in":
                self.handles.append(m.register_forward_pre_hook(
                    self._pre_hook(pts), with_kwargs=True))
            else:
                self.handles.append(m.register_forward_hook(
                    self._post_hook(pts)))
        # Every layer's attention says which layer runs: the wrapped
        # function is one for the whole model.
        for layer in range(len(layers)) if rope else ():
            attn = _module(layers[layer], "self_attn", self.family)
            self.handles.append(attn.register_forward_pre_hook(
                lambda mod, args, layer=layer: self.attn_stack.append(layer)))
            self.handles.append(attn.register_forward_hook(self._attn_done))
            self._wrap_rope(type(attn).__module__, rope)

    def _attn_done(self, module, args, output):
        # A forward hook that returns a value replaces the module's output:
        # this one must return None.
        self.attn_stack.pop()

    def _wrap_rope(self, module_name, rope):
        mod = sys.modules.get(module_name)
        if any(m is mod for m, _, _ in self.patched):
            return
        fn = getattr(mod, "apply_rotary_pos_emb", None)
        if fn is None:
            raise HFError(f"{module_name} has no apply_rotary_pos_emb: the "
                          f"recorder wraps it to see q and k before and after "
                          f"RoPE, and this transformers version applies RoPE "
                          f"some other way")

        def apply_rotary_pos_emb(*args, **kwargs):
            out = fn(*args, **kwargs)
            if not self.attn_stack:
                raise HFError(f"{module_name}.apply_rotary_pos_emb was called "
                              f"outside a decoder layer's self_attn")
            layer = self.attn_stack[-1]
            q = args[0] if len(args) > 0 else kwargs.get("q")
            k = args[1] if len(args) > 1 else kwargs.get("k")
            seen = {"q_in": q, "k_in": k, "q_out": out[0], "k_out": out[1]}
            for p in rope.get(layer, ()):
                self._emit(p, layer, seen[p.path])
            return out

        setattr(mod, "apply_rotary_pos_emb", apply_rotary_pos_emb)
        self.patched.append((mod, "apply_rotary_pos_emb", fn))

    def _pre_hook(self, pts):
        def hook(module, args, kwargs):
            value = _first_tensor(args, kwargs)
            for p, layer in pts:
                if value is None:
                    raise HFError(f"{self.family} layer {layer} {p.name}: "
                                  f"'{p.path}' was called without a tensor "
                                  f"input")
                self._emit(p, layer, value)
        return hook

    def _post_hook(self, pts):
        def hook(module, args, output):
            for p, layer in pts:
                self._emit(p, layer, output)
        return hook

    def _emit(self, p, layer, value):
        try:
            rows = hf_table.extract(p, value, self.dim, self.tokens, layer)
        except hf_table.TableError as e:
            raise HFError(f"{self.family}: {e}") from None
        k = hf_table.key(p, layer)
        self.counts[k] = self.counts.get(k, 0) + 1
        self.sink(p, layer, rows)

    def check(self):
        """HFError unless every selected point was seen exactly once."""
        missing, twice, rope = [], [], False
        for p, layer in self.points:
            n = self.counts.get(hf_table.key(p, layer), 0)
            if n == 0:
                missing.append(hf_table.key(p, layer))
                rope = rope or p.source == "rope"
            elif n > 1:
                twice.append(f"{hf_table.key(p, layer)} ({n} times)")
        if missing:
            hint = ""
            if rope:
                hint = (" (q/k points come from apply_rotary_pos_emb: the "
                        "attention did not call it through its module)")
            raise HFError(f"{self.family}: {len(missing)} points were never "
                          f"computed: {', '.join(missing[:8])}"
                          f"{' ...' if len(missing) > 8 else ''}{hint}")
        if twice:
            raise HFError(f"{self.family}: points computed more than once "
                          f"(one forward pass expected): "
                          f"{', '.join(twice[:8])}")

    def close(self):
        for h in self.handles:
            h.remove()
        self.handles = []
        for mod, name, fn in self.patched:
            setattr(mod, name, fn)
        self.patched = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def to_numpy(t):
    """A torch tensor as the numpy rows the Writer hashes, and their trace
    dtype: bf16 as its 16 bits."""
    import torch
    t = t.detach()
    if t.dtype == torch.bfloat16:
        return (t.contiguous().view(torch.int16).cpu().numpy()
                .view(np.uint16), "bf16")
    names = {torch.float32: "f32", torch.float16: "f16", torch.float64: "f64"}
    if t.dtype not in names:
        raise HFError(f"a traced value has dtype {t.dtype}: expected a "
                      f"floating-point tensor")
    return np.ascontiguousarray(t.cpu().numpy()), names[t.dtype]


def load_model(model_dir, dtype, device, attn_implementation=None):
    """The checkpoint as HF loads it, in `dtype`, on `device`, in eval
    mode. fp32 matmuls stay fp32 (no TF32)."""
    torch, transformers = _import_torch()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise HFError("--device cuda: torch sees no CUDA device")
    kwargs = {"dtype": getattr(torch, dtype)}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir,
                                                              **kwargs)
    return model.to(device).eval()


def forward(model, ids, device):
    """One forward pass over the whole prompt (no cache)."""
    import torch
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids], device=device),
                     use_cache=False)


def engine_version(model, device):
    import torch
    import transformers
    where = device
    if device.startswith("cuda"):
        where = f"{device} {torch.cuda.get_device_name(torch.device(device))}"
    attn = getattr(model.config, "_attn_implementation", "?")
    return (f"transformers {transformers.__version__}; torch "
            f"{torch.__version__}; attn {attn}; {where}")


def record(args, config, ids, filt):
    """Runs the model once and writes the trace; returns the rows
    written."""
    import torch
    from . import __version__
    model = load_model(args.model, args.dtype, args.device,
                       args.attn_implementation)
    model_digest, weights_digest, tensor_digests, notes = identity(
        args, args.model)
    for n in notes:
        print(f"greta_trace.hf: note: {n}", file=sys.stderr)
    n = len(ids)
    sel = [p for p in range(n) if filt.selects_position(p, n)]
    index = None if len(sel) == n else torch.tensor(sel)
    with Writer(args.trace_dir, token_count=n, overwrite=args.overwrite,
                model=config.get("_name_or_path")
                or os.path.basename(os.path.abspath(args.model)),
                model_digest=model_digest, weights_digest=weights_digest,
                weights_tensor_digests=tensor_digests,
                prompt_name=os.path.splitext(os.path.basename(
                    args.prompt))[0],
                prompt_digest=prompt_digest(ids),
                backend=f"hf-transformers/{args.device.split(':')[0]}",
                precision=DTYPES[args.dtype],
                tool_version=f"{engine_version(model, args.device)}; "
                             f"greta_trace {__version__}",
                payload="hash", filter=filt) as w:

        def sink(p, layer, rows):
            if index is not None:
                rows = rows[index.to(rows.device)]
            values, dtype = to_numpy(rows)
            w.tensor(p.stage, layer, values, positions=sel, dtype=dtype)

        if sel:
            with Capture(model, config, n, sink, wanted(filt)) as cap:
                forward(model, ids, args.device)
                cap.check()
        return w.records


def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog="python -m greta_trace.hf",
        description="Run an HF transformers checkpoint on a prompt and write "
                    "a GRETA trace of every stage (docs/PYTHON.md).")
    ap.add_argument("--model", required=True, help="HF checkpoint directory")
    ap.add_argument("--prompt", required=True,
                    help="JSON list of token ids (GRETA's prompt format)")
    ap.add_argument("--trace-dir", help="the trace to write (not with "
                    "--check)")
    ap.add_argument("--dtype", default="float32", choices=sorted(DTYPES))
    ap.add_argument("--device", default="cuda",
                    help="cuda, cuda:N or cpu (default cuda)")
    ap.add_argument("--attn-implementation",
                    help="HF attention (sdpa, eager; default: HF's choice)")
    add_filter_args(ap)
    ap.add_argument("--greta-model", help="GRETA's model IR file: its digest "
                    "is the manifest's model_digest")
    ap.add_argument("--model-digest", help="the manifest's model_digest")
    ap.add_argument("--weights-digest", help="the manifest's weights_digest")
    ap.add_argument("--overwrite", action="store_true",
                    help="replace a trace already in --trace-dir")
    ap.add_argument("--check", action="store_true",
                    help="print the plan; import neither torch nor "
                         "transformers")
    args = ap.parse_args(argv)
    if not args.check and not args.trace_dir:
        ap.error("--trace-dir is required (unless --check)")
    if not (args.device == "cpu" or args.device == "cuda"
            or args.device.startswith("cuda:")):
        ap.error(f"--device: expected cuda, cuda:N or cpu, got "
                 f"'{args.device}'")
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        config = read_config(args.model)
        filt = build_filter(args)
        ids = read_prompt(args.prompt, hf_table.dims(config)["vocab"])
        if args.check:
            for line in plan_lines(config, filt):
                print(line)
            try:
                kind, files = weights_files(args.model)
                weights = f"{kind}, {len(files)} file(s)"
            except HFError as e:
                weights = f"none yet ({e})"
            print(f"prompt: {len(ids)} tokens; weights: {weights}")
            return 0
        records = record(args, config, ids, filt)
    except (HFError, FilterError, WriterError) as e:
        print(f"greta_trace.hf: error: {e}", file=sys.stderr)
        return 2
    print(f"greta_trace.hf: {len(ids)} tokens, {records} rows written to "
          f"{args.trace_dir} ({args.dtype} on {args.device})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
