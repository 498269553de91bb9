#!/usr/bin/env python3
"""Benchmark GRETA's GPU attention and trace kernels against PyTorch on the
same card, in the same process.

  python3 bench/gpu/bench.py --lib build-gpu/lib/libgreta_gpu_kernels.so

The library is called through ctypes on torch-allocated device buffers and
torch's current stream, timed with CUDA events (warm-up, then the median of
repeats). Baselines:
  attention: torch.nn.functional.scaled_dot_product_attention, causal, K/V
             repeated to all heads beforehand (what HF's sdpa path does), three
             peers: torch's own choice of backend, the cuDNN backend forced and
             the flash backend forced (torch.nn.attention.sdpa_kernel); the
             ratio is against the fastest peer. TFLOP/s count 4*H*D*L(L+1)/2
             (QK^T and PV over the causal half).
  trace:     copy the rows to the host (tensor.cpu()) and hash each row with
             hashlib.sha256, the per-row hashing a forward hook would do.
"""
import argparse
import ctypes
import hashlib
import json
import statistics
import sys
import time

import torch
import torch.nn.functional as F

c_i64, c_vp, c_f, c_u32, c_int = (ctypes.c_int64, ctypes.c_void_p,
                                  ctypes.c_float, ctypes.c_uint32, ctypes.c_int)


class Job(ctypes.Structure):
    _fields_ = [("d_data", c_vp), ("dtype", ctypes.c_int32), ("flags", c_u32),
                ("rows", c_i64), ("cols", c_i64), ("ld", c_i64),
                ("d_row_index", c_vp), ("n_sel", c_i64),
                ("record_offset", c_i64)]


RECORD = 88  # sizeof(greta_gpu_row_record)


def load(path):
    lib = ctypes.CDLL(path)
    lib.greta_gpu_last_error.restype = ctypes.c_char_p
    lib.greta_gpu_init.argtypes = [c_int, ctypes.c_char_p, ctypes.c_size_t]
    lib.greta_gpu_set_variant.argtypes = [ctypes.c_char_p]
    for fn in (lib.greta_gpu_attention_f16, lib.greta_gpu_attention_bf16):
        fn.argtypes = [c_vp, c_i64, c_vp, c_vp, c_i64, c_i64, c_i64, c_i64,
                       c_i64, c_i64, c_f, c_vp, c_i64, c_vp]
    lib.greta_gpu_trace_rows.argtypes = [c_vp, c_int, c_i64, c_i64, c_i64,
                                         c_vp, c_i64, c_u32, c_vp, c_vp, c_vp]
    lib.greta_gpu_trace_batch.argtypes = [ctypes.POINTER(Job), c_int, c_vp,
                                          c_vp, c_vp]
    return lib


def check(lib, status, what):
    if status != 0:
        raise RuntimeError(f"{what}: status {status}: "
                           f"{lib.greta_gpu_last_error().decode()}")


def cuda_median_ms(fn, warmup=3, reps=20):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a = torch.cuda.Event(enable_timing=True)
        b = torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return statistics.median(times), (max(times) - min(times))


def wall_median_ms(fn, warmup=1, reps=5):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times), (max(times) - min(times))


def sdpa_peers():
    """(name, context factory) of each torch peer: the default dispatch and
    the cuDNN and flash backends forced."""
    from contextlib import nullcontext
    peers = [("sdpa", nullcontext)]
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
        peers.append(("sdpa_cudnn",
                      lambda: sdpa_kernel(SDPBackend.CUDNN_ATTENTION)))
        peers.append(("sdpa_flash",
                      lambda: sdpa_kernel(SDPBackend.FLASH_ATTENTION)))
    except ImportError:
        pass
    return peers


def bench_attention(lib, rows, stream, lengths, H, KVH, D,
                    variants=("default",), dtype=torch.float16):
    """Per length: each torch peer once, then each GRETA variant on the same
    inputs, back to back (so clock drift over the run does not bias the
    ratios)."""
    dname = "f16" if dtype == torch.float16 else "bf16"
    attn = (lib.greta_gpu_attention_f16 if dtype == torch.float16 else
            lib.greta_gpu_attention_bf16)
    for L in lengths:
        q = torch.randn(L, H * D, device="cuda", dtype=dtype)
        k = torch.randn(L, KVH * D, device="cuda", dtype=dtype)
        v = torch.randn(L, KVH * D, device="cuda", dtype=dtype)
        out = torch.empty_like(q)
        scale = D ** -0.5

        def ours():
            check(lib, attn(
                q.data_ptr(), H * D, k.data_ptr(), v.data_ptr(), KVH * D, L, 0,
                H, KVH, D, scale, out.data_ptr(), H * D, stream), "attention")

        # torch layout [1, H, L, D]; K/V repeated to H heads (HF repeat_kv)
        qt = q.view(L, H, D).transpose(0, 1).contiguous().unsqueeze(0)
        kt = k.view(L, KVH, D).transpose(0, 1).repeat_interleave(
            H // KVH, 0).contiguous().unsqueeze(0)
        vt = v.view(L, KVH, D).transpose(0, 1).repeat_interleave(
            H // KVH, 0).contiguous().unsqueeze(0)

        def sdpa():
            return F.scaled_dot_product_attention(qt, kt, vt, is_causal=True,
                                                  scale=scale)

        reps = 10 if L >= 16384 else 20
        ref = None
        peer_ms = {}
        for name, ctx in sdpa_peers():
            try:
                with ctx():
                    r = sdpa()
                    peer_ms[name] = cuda_median_ms(sdpa, reps=reps)[0]
                if ref is None:
                    ref = r
            except RuntimeError as e:  # backend not available for the shape
                print(f"# {name} skipped: {str(e).splitlines()[0]}",
                      flush=True)
        best = min(peer_ms, key=peer_ms.get)
        torch_ms = peer_ms[best]
        flops = 4.0 * H * D * L * (L + 1) / 2  # QK^T and PV, causal half
        for variant in variants:
            check(lib, lib.greta_gpu_set_variant(
                f"attention={variant}".encode()), "set_variant")
            out.fill_(float("nan"))  # every element must be written
            ours_ms, ours_sp = cuda_median_ms(ours, reps=reps)
            lib.greta_gpu_reset_variants()
            got = out.view(L, H, D).transpose(0, 1).float()
            err = ((got - ref[0].float()).norm() /
                   ref[0].float().norm()).item()
            rows.append(dict(bench="attention", variant=variant,
                             shape=f"L={L} H={H} KVH={KVH} D={D} {dname}",
                             ours_ms=ours_ms, ours_spread=ours_sp,
                             torch_ms=torch_ms, torch_what=best,
                             peers_ms=peer_ms,
                             ours_tflops=flops / ours_ms / 1e9,
                             torch_tflops=flops / torch_ms / 1e9,
                             rel_l2_vs_torch=err))
            print(json.dumps(rows[-1]), flush=True)


TRACE_VARIANTS = ("default", "one_thread_per_row", "split_schedule")


def bench_trace(lib, rows, stream, shapes, cols=2048):
    """shapes: (rows, cols) of f16 tensors hashed whole, under each SHA-256
    kernel (trace=VARIANT); the row's ratio is for the default."""
    for N, C in shapes:
        x = torch.randn(N, C, device="cuda", dtype=torch.float16)
        drec = torch.empty(N * RECORD, dtype=torch.uint8, device="cuda")
        hrec = torch.empty(N * RECORD, dtype=torch.uint8, pin_memory=True)

        def ours(flags=0):
            check(lib, lib.greta_gpu_trace_rows(
                x.data_ptr(), 2, N, C, C, None, N, flags,
                drec.data_ptr(), hrec.data_ptr(), stream), "trace_rows")

        by_variant = {}
        for v in TRACE_VARIANTS:
            check(lib, lib.greta_gpu_set_variant(f"trace={v}".encode()),
                  "set_variant")
            hrec.fill_(0)
            ours()
            torch.cuda.synchronize()
            # correctness spot check against hashlib
            host = x.cpu().numpy()
            for r in (0, N // 2, N - 1):
                want = hashlib.sha256(host[r].tobytes()).digest()
                got = bytes(hrec[r * RECORD:r * RECORD + 32].tolist())
                if want != got:
                    raise RuntimeError(f"sha mismatch at row {r} ({v})")
            by_variant[v] = cuda_median_ms(ours)
        check(lib, lib.greta_gpu_set_variant(b"trace=default"), "set_variant")
        ours_ms, ours_sp = by_variant["default"]
        stats_ms, _ = cuda_median_ms(lambda: ours(1))

        def hashlib_rows():
            h = x.cpu().numpy()  # D2H copy + sync
            return [hashlib.sha256(h[r].tobytes()).digest() for r in range(N)]

        base_ms, base_sp = wall_median_ms(hashlib_rows)
        copy_ms, _ = wall_median_ms(lambda: x.cpu())
        mb = N * C * 2 / 1e6
        rows.append(dict(bench="trace_sha256_all_rows",
                         shape=f"{N}x{C} f16 ({mb:.1f} MB)",
                         ours_ms=ours_ms, ours_spread=ours_sp,
                         variants_ms={v: t for v, (t, _) in
                                      by_variant.items()},
                         ours_with_stats_ms=stats_ms,
                         torch_ms=base_ms, torch_spread=base_sp,
                         torch_what="x.cpu() + hashlib per row",
                         host_copy_only_ms=copy_ms,
                         ours_GBps=mb / ours_ms))  # MB/ms = GB/s
        print(json.dumps(rows[-1]), flush=True)

    # Three selected positions of 13 tensors (a layer's stages) of
    # [16384, 2048]: 13 launches vs one batched launch.
    N = 16384
    xs = [torch.randn(N, cols, device="cuda", dtype=torch.float16)
          for _ in range(13)]
    sel = torch.tensor([0, 826, N - 1], dtype=torch.int64, device="cuda")
    drec = torch.empty(13 * 3 * RECORD, dtype=torch.uint8, device="cuda")
    hrec = torch.empty(13 * 3 * RECORD, dtype=torch.uint8, pin_memory=True)

    def separate():
        for i, t in enumerate(xs):
            check(lib, lib.greta_gpu_trace_rows(
                t.data_ptr(), 2, N, cols, cols, sel.data_ptr(), 3, 1,
                drec.data_ptr() + i * 3 * RECORD,
                hrec.data_ptr() + i * 3 * RECORD, stream), "trace_rows")

    jobs = (Job * 13)(*[Job(t.data_ptr(), 2, 1, N, cols, cols, sel.data_ptr(),
                            3, 3 * i) for i, t in enumerate(xs)])

    def batched():
        check(lib, lib.greta_gpu_trace_batch(jobs, 13, drec.data_ptr(),
                                             hrec.data_ptr(), stream), "batch")

    sep_ms, _ = cuda_median_ms(separate)
    bat_ms, _ = cuda_median_ms(batched)

    def hashlib_sel():
        for t in xs:
            h = t[[0, 826, N - 1]].cpu().numpy()
            [hashlib.sha256(h[r].tobytes()).digest() for r in range(3)]

    base_ms, _ = wall_median_ms(hashlib_sel)
    rows.append(dict(bench="trace_3_positions_x13_stages",
                     shape=f"13 x [{N},{cols}] f16, 3 rows each, +stats",
                     ours_ms=bat_ms, ours_13_launches_ms=sep_ms,
                     torch_ms=base_ms,
                     torch_what="index + .cpu() + hashlib, 13 tensors"))
    print(json.dumps(rows[-1]), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", required=True)
    ap.add_argument("--json", default=None)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", choices=["attention", "trace"], default=None,
                    help="run one group of benchmarks")
    ap.add_argument("--lengths", default=None,
                    help="attention lengths, comma-separated")
    args = ap.parse_args()
    lib = load(args.lib)
    desc = ctypes.create_string_buffer(256)
    check(lib, lib.greta_gpu_init(0, desc, 256), "init")
    print("device:", desc.value.decode(), "| torch", torch.__version__,
          "|", torch.cuda.get_device_name(0), flush=True)
    stream = torch.cuda.current_stream().cuda_stream
    rows = []
    lengths = [827, 4096, 16384] if args.quick else [827, 1653, 4096, 16384]
    if args.lengths:
        lengths = [int(x) for x in args.lengths.split(",")]
    if args.only in (None, "attention"):
        # TinyLlama-1.1B (D=64, 32/4 heads), then Llama-3.1-8B (D=128, 32/8)
        # at 4K-32K; the sm_90a kernel (hopper, the default on sm_90) beside
        # the mma.sync GQA kernel (gqa, the default elsewhere), and (without
        # --quick) the older variants.
        variants = ("hopper", "gqa")
        if not args.quick:
            variants += ("mma_fa2", "lazy_rescale")
        long = [4096, 16384, 32768]
        bench_attention(lib, rows, stream, lengths, 32, 4, 64, variants)
        bench_attention(lib, rows, stream, args.lengths and lengths or long,
                        32, 8, 128, variants)
        bench_attention(lib, rows, stream, [16384], 32, 8, 128,
                        ("hopper", "gqa"), dtype=torch.bfloat16)
        if not args.quick:
            bench_attention(lib, rows, stream, [4096], 32, 8, 128, ("wmma",))
            bench_attention(lib, rows, stream, [1653], 32, 4, 64, ("scalar",))
    if args.only in (None, "trace"):
        # Hidden rows (2048 f16) up to a launch that fills the GPU, then
        # logits rows (vocab 32000 f16): the chains after the last GEMM.
        shapes = [(n, 2048) for n in (827, 1653, 4096, 16384, 32768, 65536,
                                      131072)]
        shapes += [(n, 32000) for n in (3, 827, 1653)]
        if args.quick:
            shapes = [(827, 2048), (16384, 2048), (131072, 2048), (827, 32000)]
        bench_trace(lib, rows, stream, shapes)

    print()
    print(f"{'bench':<30} {'shape':<38} {'GRETA ms':>9} {'torch ms':>9} "
          f"{'torch/GRETA':>11}  notes (attention: torch = fastest peer)")
    for r in rows:
        ratio = r["torch_ms"] / r["ours_ms"]
        note = ""
        if r["bench"] == "attention":
            note = (f"{r['ours_tflops']:.0f} vs {r['torch_tflops']:.0f} "
                    f"TFLOP/s ({r['torch_what']}), err "
                    f"{r['rel_l2_vs_torch']:.1e}")
            name = f"attention[{r['variant']}]"
        elif r["bench"] == "trace_sha256_all_rows":
            vm = r["variants_ms"]
            note = (f"{r['ours_GBps']:.0f} GB/s hashed; +stats "
                    f"{r['ours_with_stats_ms']:.3f} ms; copy alone "
                    f"{r['host_copy_only_ms']:.2f} ms; one thread per row "
                    f"{vm['one_thread_per_row']:.3f}, split "
                    f"{vm['split_schedule']:.3f} ms")
            name = r["bench"]
        else:
            note = f"13 launches: {r['ours_13_launches_ms']:.3f} ms"
            name = r["bench"]
        print(f"{name:<30} {r['shape']:<38} {r['ours_ms']:9.3f} "
              f"{r['torch_ms']:9.3f} {ratio:10.2f}x  {note}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
