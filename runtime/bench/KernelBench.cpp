//===- KernelBench.cpp - Kernel times on a llama-tiny forward ---*- C++ -*-===//
//
// Calls the kernels in the order of one Llama forward (the shapes of
// models/llama-tiny: 12 layers, hidden 256, 8/4 heads of 32, FFN 768, vocab
// 8192) and prints the time per kernel. What greta-run's JIT adds on top is
// measured by bench/ at the top level; this isolates the runtime's share.
// Then each linear layer's GEMM shape alone, the runtime's (CpuGemm.h)
// against OpenBLAS's sgemm when the bench was built with it, best of the
// repetitions, in GFLOP/s: the measurement behind docs/RUNTIME.md's choice
// of GEMM.
//
//===----------------------------------------------------------------------===//
#include "CpuGemm.h"
#include "ThreadPool.h"
#include "greta/rt/CInterface.h"
#include "greta/rt/Session.h"

#ifdef GRETA_BENCH_OPENBLAS
#include <cblas.h>
#endif

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <string>
#include <vector>

using namespace greta::rt;
using Clock = std::chrono::steady_clock;

namespace {
struct M {
  std::vector<float> v;
  int64_t r, c;
  M(int64_t r, int64_t c, std::mt19937 *g = nullptr) : v(r * c), r(r), c(c) {
    if (g) {
      std::normal_distribution<float> n(0, 0.02f);
      for (auto &x : v)
        x = n(*g);
    }
  }
  MemRef<float, 2> ref() { return {v.data(), v.data(), 0, {r, c}, {c, 1}}; }
};
} // namespace

int main(int argc, char **argv) {
  int64_t S = argc > 1 ? std::atoll(argv[1]) : 827;
  int reps = argc > 2 ? std::atoi(argv[2]) : 3;
  const int64_t H = 256, NH = 8, NKV = 4, D = 32, F = 768, V = 8192, L = 12;
  std::mt19937 g(0);
  std::string err;
  // A session without weights: the kernels only need its KV cache.
  std::vector<ParamSpec> none;
  std::string path = "/tmp/greta-bench-empty.safetensors";
  writeSafeTensors(path, {}, DType::F32, err);
  auto st = SafeTensors::open(path, err);
  auto session = Session::create(*st, none, DType::F32, err);
  Session::setCurrent(session.get());

  M emb(V, H, &g), wq(NH * D, H, &g), wk(NKV * D, H, &g), wv(NKV * D, H, &g),
      wo(H, NH * D, &g), wg(F, H, &g), wu(F, H, &g), wd(H, F, &g),
      head(V, H, &g);
  std::vector<float> norm(H, 1.0f);
  MemRef<float, 1> nr{norm.data(), norm.data(), 0, {H}, {1}};
  std::vector<int64_t> ids(S), pos(S);
  for (int64_t i = 0; i < S; ++i)
    ids[i] = (i * 7919) % V, pos[i] = i;
  MemRef<int64_t, 1> idr{ids.data(), ids.data(), 0, {S}, {1}};
  MemRef<int64_t, 1> pr{pos.data(), pos.data(), 0, {S}, {1}};
  M x(S, H), xn(S, H), q(S, NH * D), k(S, NKV * D), v(S, NKV * D), a(S, NH * D),
      o(S, H), gt(S, F), up(S, F), logits(S, V);
  std::map<std::string, double> t;
  auto timed = [&](const char *name, auto fn) {
    auto t0 = Clock::now();
    fn();
    t[name] += std::chrono::duration<double>(Clock::now() - t0).count();
  };
  double best = 1e9;
  for (int rep = 0; rep < reps; ++rep) {
    session->resetKVCache();
    t.clear();
    auto t0 = Clock::now();
    auto xr = x.ref(), xnr = xn.ref(), qr = q.ref(), kr = k.ref(), vr = v.ref(),
         ar = a.ref(), orf = o.ref(), gr = gt.ref(), ur = up.ref(),
         lr = logits.ref(), er = emb.ref(), wqr = wq.ref(), wkr = wk.ref(),
         wvr = wv.ref(), wor = wo.ref(), wgr = wg.ref(), wur = wu.ref(),
         wdr = wd.ref(), hr = head.ref();
    timed("embedding",
          [&] { _mlir_ciface_greta_cpu_embedding_f32(&er, &idr, &xr); });
    for (int64_t l = 0; l < L; ++l) {
      timed("rms_norm",
            [&] { _mlir_ciface_greta_cpu_rms_norm_f32(&xr, &nr, 1e-5, &xnr); });
      timed("linear", [&] {
        _mlir_ciface_greta_cpu_linear_f32(&xnr, &wqr, &qr);
        _mlir_ciface_greta_cpu_linear_f32(&xnr, &wkr, &kr);
        _mlir_ciface_greta_cpu_linear_f32(&xnr, &wvr, &vr);
      });
      timed("rope", [&] {
        _mlir_ciface_greta_cpu_rope_f32(&qr, &pr, 10000.0, D, &qr);
        _mlir_ciface_greta_cpu_rope_f32(&kr, &pr, 10000.0, D, &kr);
      });
      timed("attention", [&] {
        _mlir_ciface_greta_cpu_attention_f32(&qr, &kr, &vr, &pr, NH, NKV, D,
                                             0.17677669529663687, l, &ar);
      });
      timed("linear",
            [&] { _mlir_ciface_greta_cpu_linear_f32(&ar, &wor, &orf); });
      timed("add", [&] { _mlir_ciface_greta_cpu_add_f32(&xr, &orf, &xr); });
      timed("rms_norm",
            [&] { _mlir_ciface_greta_cpu_rms_norm_f32(&xr, &nr, 1e-5, &xnr); });
      timed("linear", [&] {
        _mlir_ciface_greta_cpu_linear_f32(&xnr, &wgr, &gr);
        _mlir_ciface_greta_cpu_linear_f32(&xnr, &wur, &ur);
      });
      timed("swiglu",
            [&] { _mlir_ciface_greta_cpu_swiglu_f32(&gr, &ur, &gr); });
      timed("linear",
            [&] { _mlir_ciface_greta_cpu_linear_f32(&gr, &wdr, &orf); });
      timed("add", [&] { _mlir_ciface_greta_cpu_add_f32(&xr, &orf, &xr); });
    }
    timed("rms_norm",
          [&] { _mlir_ciface_greta_cpu_rms_norm_f32(&xr, &nr, 1e-5, &xnr); });
    timed("lm_head",
          [&] { _mlir_ciface_greta_cpu_linear_f32(&xnr, &hr, &lr); });
    double total = std::chrono::duration<double>(Clock::now() - t0).count();
    if (total < best)
      best = total;
    if (rep == reps - 1) {
      std::printf("S=%lld forward (best of %d): %.1f ms\n", (long long)S, reps,
                  best * 1e3);
      for (auto &[k, s] : t)
        std::printf("  %-10s %8.1f ms\n", k.c_str(), s * 1e3);
    }
  }

  // Each GEMM shape of the forward alone: out[S, N] = in[S, K] . W[N, K]^T.
  std::printf("GEMM shapes (S=%lld, %d threads, %s), best of %d, GFLOP/s:\n",
              (long long)S, cpuThreads(), cpu::isaName(cpu::activeIsa()), reps);
  std::printf("  %-22s %8s %8s\n", "shape", "greta", "openblas");
  struct Shape {
    const char *name;
    int64_t n, k;
  };
  for (Shape sh :
       {Shape{"q/o_proj 256x256", 256, 256},
        Shape{"k/v_proj 128x256", 128, 256}, Shape{"gate/up 768x256", 768, 256},
        Shape{"down 256x768", 256, 768},
        Shape{"lm_head 8192x256", 8192, 256}}) {
    M w(sh.n, sh.k, &g), in(S, sh.k, &g), out(S, sh.n);
    double flop = 2.0 * S * sh.n * sh.k;
    auto best = [&](auto fn) {
      double b = 1e9;
      for (int rep = 0; rep < reps; ++rep) {
        auto t0 = Clock::now();
        fn();
        b = std::min(b,
                     std::chrono::duration<double>(Clock::now() - t0).count());
      }
      return flop / b * 1e-9;
    };
    double ours = best([&] {
      cpu::gemmNT<float>(S, sh.n, sh.k, in.v.data(), sh.k, w.v.data(), sh.k,
                         out.v.data(), sh.n);
    });
    double blas = 0;
#ifdef GRETA_BENCH_OPENBLAS
    blas = best([&] {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, S, sh.n, sh.k, 1.0f,
                  in.v.data(), sh.k, w.v.data(), sh.k, 0.0f, out.v.data(),
                  sh.n);
    });
#endif
    std::printf("  %-22s %8.1f %8.1f\n", sh.name, ours, blas);
  }
  if (!session->error().empty())
    std::printf("session error: %s\n", session->error().c_str());
  return session->error().empty() ? 0 : 1;
}
