#!/usr/bin/env python3
"""TEMPORARY: time attention candidates selected by GRETA_ATTN_TUNE side by
side (two interleaved rounds), with errors vs torch sdpa and vs a float64
reference. Not committed."""
import json, os, statistics, sys
import torch
import torch.nn.functional as F
sys.path.insert(0, os.path.dirname(__file__))
import bench as B

def ref64(q, k, v, L, H, KVH, D, scale):
    out = torch.empty(H, L, D, dtype=torch.float64, device="cuda")
    g = H // KVH
    mask = torch.ones(L, L, dtype=torch.bool, device="cuda").tril()
    for h in range(H):
        qh = q.view(L, H, D)[:, h].double()
        kh = k.view(L, KVH, D)[:, h // g].double()
        vh = v.view(L, KVH, D)[:, h // g].double()
        s = (qh @ kh.T) * scale
        s.masked_fill_(~mask, float("-inf"))
        out[h] = torch.softmax(s, -1) @ vh
        del s
    return out

def run(lib, stream, H, KVH, D, lengths, tunes, rows):
    for L in lengths:
        torch.manual_seed(L)
        q = torch.randn(L, H * D, device="cuda", dtype=torch.float16)
        k = torch.randn(L, KVH * D, device="cuda", dtype=torch.float16)
        v = torch.randn(L, KVH * D, device="cuda", dtype=torch.float16)
        out = torch.empty_like(q)
        scale = D ** -0.5
        def ours():
            B.check(lib, lib.greta_gpu_attention_f16(
                q.data_ptr(), H * D, k.data_ptr(), v.data_ptr(), KVH * D, L, 0,
                H, KVH, D, scale, out.data_ptr(), H * D, stream), "attention")
        qt = q.view(L, H, D).transpose(0, 1).contiguous().unsqueeze(0)
        kt = k.view(L, KVH, D).transpose(0, 1).repeat_interleave(H // KVH, 0).contiguous().unsqueeze(0)
        vt = v.view(L, KVH, D).transpose(0, 1).repeat_interleave(H // KVH, 0).contiguous().unsqueeze(0)
        def sdpa():
            return F.scaled_dot_product_attention(qt, kt, vt, is_causal=True, scale=scale)
        reps = 15 if L >= 16384 else 30
        tref = sdpa()[0].float()
        r64 = ref64(q, k, v, L, H, KVH, D, scale)
        e_t64 = ((tref.double() - r64).norm() / r64.norm()).item()
        flops = 4.0 * H * D * L * (L + 1) / 2
        res = {t: [] for t in tunes}
        errs = {}
        tms = []
        for rnd in range(4):
            tms.append(B.cuda_median_ms(sdpa, reps=reps)[0])
            for t in tunes:
                os.environ["GRETA_ATTN_TUNE"] = str(t)
                out.fill_(float("nan"))
                ms, sp = B.cuda_median_ms(ours, reps=reps)
                res[t].append(ms)
                if rnd == 0:
                    got = out.view(L, H, D).transpose(0, 1).float()
                    errs[t] = (((got - tref).norm() / tref.norm()).item(),
                               ((got.double() - r64).norm() / r64.norm()).item(),
                               bool(torch.isfinite(got).all().item()))
        os.environ["GRETA_ATTN_TUNE"] = "0"
        for t in tunes:
            r = dict(H=H, KVH=KVH, D=D, L=L, tune=t, ms=res[t], torch_ms=tms,
                     err_torch=errs[t][0], err_f64=errs[t][1], finite=errs[t][2],
                     torch_err_f64=e_t64,
                     tflops=flops / statistics.median(res[t]) / 1e9)
            rows.append(r)
            print(json.dumps(r), flush=True)
        del r64

def main():
    lib = B.load(sys.argv[1])
    desc = ctypes_buf = B.ctypes.create_string_buffer(256)
    B.check(lib, lib.greta_gpu_init(0, desc, 256), "init")
    print("device:", desc.value.decode(), torch.cuda.get_device_name(0), flush=True)
    stream = torch.cuda.current_stream().cuda_stream
    rows = []
    run(lib, stream, 32, 4, 64, [16384, 4096, 1653, 827], [0, 2, 7, 8, 9], rows)
    run(lib, stream, 32, 8, 128, [16384, 4096, 1653, 827], [0, 2, 7, 8], rows)
    print()
    print(f"{'shape':<22} {'tune':>4} {'median':>7} {'r1':>7} {'r2':>7} {'r3':>7} {'r4':>7} {'torch':>7} {'TF/s':>5} {'e_torch':>8} {'e_f64':>8} (torch e_f64)")
    for r in rows:
        print(f"L={r['L']:<5} D={r['D']:<3} KVH={r['KVH']:<2}   {r['tune']:>4} {statistics.median(r['ms']):7.3f} {r['ms'][0]:7.3f} {r['ms'][1]:7.3f} {r['ms'][2]:7.3f} {r['ms'][3]:7.3f} "
              f"{r['torch_ms'][0]:7.3f} {r['tflops']:5.0f} {r['err_torch']:8.2e} {r['err_f64']:8.2e} ({r['torch_err_f64']:.2e}){'' if r['finite'] else ' NONFINITE'}")
    out = os.environ.get("OUT", ".")
    with open(os.path.join(out, "explore.json"), "w") as f:
        json.dump(rows, f, indent=0)

if __name__ == "__main__":
    main()
