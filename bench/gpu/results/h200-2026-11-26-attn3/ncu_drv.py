import os, sys, ctypes, torch
sys.path.insert(0, "bench/gpu")
import bench as B
lib = B.load(sys.argv[1]); d = ctypes.create_string_buffer(256); B.check(lib, lib.greta_gpu_init(0, d, 256), "init")
L, H, KVH, D = 16384, 32, 4, 64
q = torch.randn(L, H*D, device="cuda", dtype=torch.float16); k = torch.randn(L, KVH*D, device="cuda", dtype=torch.float16); v = torch.randn_like(k)
out = torch.empty_like(q); s = torch.cuda.current_stream().cuda_stream
for t in sys.argv[2].split(","):
    os.environ["GRETA_ATTN_TUNE"] = t
    B.check(lib, lib.greta_gpu_attention_f16(q.data_ptr(), H*D, k.data_ptr(), v.data_ptr(), KVH*D, L, 0, H, KVH, D, D**-0.5, out.data_ptr(), H*D, s), "attn")
torch.cuda.synchronize()
