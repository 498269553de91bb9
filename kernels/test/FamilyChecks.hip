//===- FamilyChecks.hip - The families' kernels against references -------===//
//
// greta/gpu/FamilyKernels.h on f32, f16 and bf16 against references in
// double from the values the device read, as ComputeChecks.hip: Gemma's
// (1 + w) RMSNorm, the per-head RMSNorm of Qwen3's q/k norms (rows of
// head_dim), linear with bias (also on a strided slice, as Phi-3's fused
// projections), GeGLU with the tanh GELU, the embedding scale, RoPE from an
// inv_freq table with an attention factor, and sliding-window attention
// under every attention variant (prefill with a window shorter than the
// prompt, a KV-cache chunk, decode).
//
//===----------------------------------------------------------------------===//
#include "GpuKernelCheck.h"
#include "greta/gpu/FamilyKernels.h"

#include <cstring>

namespace gpucheck {
namespace {

void checkAgainst(const std::string &name, DT dt, const HostT &out,
                  const std::vector<double> &ref,
                  const std::string &detail = "") {
  size_t bad = 0;
  for (size_t i = 0; i < out.n; ++i)
    bad += !std::isfinite(out.get(i));
  double err = bad ? INFINITY : relL2(out, ref);
  report(name, dtName(dt), err, dtThreshold(dt), err < dtThreshold(dt),
         bad ? detail + " NON-FINITE OUTPUT" : detail);
}

// Gemma: x * rsqrt(mean(x^2) + eps) * (1 + w), weights near 0 as Gemma's.
// rows x cols of head_dim is the per-head form (Qwen3/Gemma q/k norms).
void testRmsNormOffset(DT dt, int64_t rows, int64_t cols) {
  const float eps = 1e-6f, offset = 1.f;
  const int64_t ld = cols + 8;
  HostT x = randomT(dt, rows * ld, -2.f, 2.f);
  HostT w = randomT(dt, cols, -0.5f, 0.5f);
  Dev dX(x), dW(w), dOut(rows * cols * dtSize(dt));
  LIB_CHECK(GPU_CALL(dt, rms_norm_offset, P(dX), ld, P(dW), rows, cols, eps,
                     offset, P(dOut), cols, gStream));
  HostT out = fetch(dOut, dt, rows * cols);
  std::vector<double> ref(rows * cols);
  for (int64_t r = 0; r < rows; ++r) {
    double ss = 0;
    for (int64_t c = 0; c < cols; ++c)
      ss += x.val[r * ld + c] * x.val[r * ld + c];
    double inv = 1.0 / std::sqrt(ss / cols + eps);
    for (int64_t c = 0; c < cols; ++c)
      ref[r * cols + c] = x.val[r * ld + c] * inv * (offset + w.val[c]);
  }
  checkAgainst("rms_norm_offset " + std::to_string(rows) + "x" +
                   std::to_string(cols),
               dt, out, ref);
}

// Qwen3's q_norm: the plain RMSNorm on [S * heads, head_dim] rows.
void testPerHeadRmsNorm(DT dt, int64_t positions, int64_t heads, int64_t D) {
  const float eps = 1e-6f;
  const int64_t rows = positions * heads;
  HostT x = randomT(dt, rows * D, -2.f, 2.f), w = randomT(dt, D, 0.5f, 1.5f);
  Dev dX(x), dW(w), dOut(rows * D * dtSize(dt));
  LIB_CHECK(GPU_CALL(dt, rms_norm, P(dX), D, P(dW), rows, D, eps, P(dOut), D,
                     gStream));
  HostT out = fetch(dOut, dt, rows * D);
  std::vector<double> ref(rows * D);
  for (int64_t r = 0; r < rows; ++r) {
    double ss = 0;
    for (int64_t c = 0; c < D; ++c)
      ss += x.val[r * D + c] * x.val[r * D + c];
    double inv = 1.0 / std::sqrt(ss / D + eps);
    for (int64_t c = 0; c < D; ++c)
      ref[r * D + c] = x.val[r * D + c] * inv * w.val[c];
  }
  checkAgainst("rms_norm per head " + std::to_string(positions) + "x" +
                   std::to_string(heads) + " heads of " + std::to_string(D),
               dt, out, ref);
}

// in [M, K] (row stride inLd >= K: a slice of a fused projection) . W^T + b.
void testLinearBias(DT dt, int64_t M, int64_t K, int64_t N, int64_t inLd) {
  HostT x = randomT(dt, M * inLd), w = randomT(dt, N * K);
  HostT b = randomT(dt, N, -2.f, 2.f);
  Dev dX(x), dW(w), dB(b), dOut(M * N * dtSize(dt));
  LIB_CHECK(GPU_CALL(dt, linear_bias, P(dX), inLd, P(dW), K, P(dB), M, K, N,
                     P(dOut), N, gStream));
  HostT out = fetch(dOut, dt, M * N);
  std::vector<double> ref(M * N);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double acc = b.val[j];
      for (int64_t k = 0; k < K; ++k)
        acc += x.val[i * inLd + k] * w.val[j * K + k];
      ref[i * N + j] = acc;
    }
  checkAgainst("linear_bias " + std::to_string(M) + "x" + std::to_string(K) +
                   " ld " + std::to_string(inLd) + " . (" + std::to_string(N) +
                   "x" + std::to_string(K) + ")^T + b",
               dt, out, ref);
}

// gelu_tanh(gate) * up (HF gelu_pytorch_tanh).
void testGeglu(DT dt, int64_t rows, int64_t cols) {
  HostT g = randomT(dt, rows * cols, -4.f, 4.f), u = randomT(dt, rows * cols);
  Dev dG(g), dU(u), dOut(rows * cols * dtSize(dt));
  LIB_CHECK(GPU_CALL(dt, geglu, P(dG), cols, P(dU), cols, rows, cols, P(dOut),
                     cols, gStream));
  HostT out = fetch(dOut, dt, rows * cols);
  std::vector<double> ref(rows * cols);
  const double beta = std::sqrt(2.0 / M_PI);
  for (int64_t i = 0; i < rows * cols; ++i) {
    double x = g.val[i];
    ref[i] =
        0.5 * x * (1 + std::tanh(beta * (x + 0.044715 * x * x * x))) * u.val[i];
  }
  checkAgainst("geglu " + std::to_string(rows) + "x" + std::to_string(cols), dt,
               out, ref);
}

// Gemma's embedding * sqrt(hidden).
void testScale(DT dt) {
  const int64_t rows = 19, cols = 640;
  const double factor = std::sqrt(640.0);
  HostT x = randomT(dt, rows * cols);
  Dev dX(x), dOut(rows * cols * dtSize(dt));
  LIB_CHECK(GPU_CALL(dt, scale, P(dX), cols, rows, cols, factor, P(dOut), cols,
                     gStream));
  HostT out = fetch(dOut, dt, rows * cols);
  std::vector<double> ref(rows * cols);
  for (int64_t i = 0; i < rows * cols; ++i)
    ref[i] = x.val[i] * factor;
  checkAgainst("scale by sqrt(640)", dt, out, ref);
}

// RoPE from a table: llama3-like frequencies (the low band divided by 8),
// positions past 32K, HF's attention factor on cos and sin.
void testRopeFreqs(DT dt, int64_t D, float attentionFactor) {
  const int64_t rows = 37, heads = 3, cols = heads * D;
  std::vector<float> inv(D / 2);
  for (int64_t i = 0; i < D / 2; ++i) {
    double f = 1.0 / std::pow(500000.0, 2.0 * i / D);
    inv[i] = static_cast<float>(i >= D / 4 ? f / 8 : f);
  }
  std::vector<int64_t> pos(rows);
  std::uniform_int_distribution<int64_t> u(0, 40000);
  for (auto &p : pos)
    p = u(gRng);
  HostT x = randomT(dt, rows * cols);
  Dev dX(x), dOut(rows * cols * dtSize(dt)), dPos(rows * 8),
      dInv(inv.size() * sizeof(float));
  dPos.upload(pos.data(), rows * 8);
  dInv.upload(inv.data(), inv.size() * sizeof(float));
  LIB_CHECK(GPU_CALL(dt, rope_freqs, P(dX), cols, dPos.as<int64_t>(), rows,
                     heads, D, dInv.as<float>(), attentionFactor, P(dOut), cols,
                     gStream));
  HostT out = fetch(dOut, dt, rows * cols);
  std::vector<double> ref(rows * cols);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < D / 2; ++i) {
        float ang = static_cast<float>(pos[r]) * inv[i]; // HF: fp32 product
        double c = std::cos(double(ang)) * attentionFactor,
               s = std::sin(double(ang)) * attentionFactor;
        int64_t b = r * cols + h * D;
        double x1 = x.val[b + i], x2 = x.val[b + i + D / 2];
        ref[b + i] = x1 * c - x2 * s;
        ref[b + i + D / 2] = x2 * c + x1 * s;
      }
  char name[96];
  std::snprintf(name, sizeof name, "rope_freqs D=%lld factor %.3f",
                (long long)D, attentionFactor);
  checkAgainst(name, dt, out, ref);
}

// Sliding-window attention over a KV cache filled by kv_append, under
// `variant` (every variant runs the scalar kernel for a window).
void testAttentionWindow(DT dt, AttnCase c, int64_t window,
                         const char *variant) {
  const int64_t qCols = c.H * c.D, kvCols = c.KVH * c.D;
  const int64_t kvLen = c.qStart + c.n, cap = kvLen + 5;
  HostT q = randomT(dt, c.n * qCols, -2.f, 2.f);
  HostT k = randomT(dt, kvLen * kvCols, -2.f, 2.f);
  HostT v = randomT(dt, kvLen * kvCols);
  Dev dQ(q), dKin(k), dVin(v), dPos(kvLen * 8);
  Dev dKc(cap * kvCols * dtSize(dt)), dVc(cap * kvCols * dtSize(dt));
  Dev dOut(c.n * qCols * dtSize(dt));
  std::vector<int64_t> pos(kvLen);
  for (int64_t i = 0; i < kvLen; ++i)
    pos[i] = i;
  dPos.upload(pos.data(), kvLen * 8);
  LIB_CHECK(GPU_CALL(dt, kv_append, P(dKin), kvCols, P(dVin), kvCols,
                     dPos.as<int64_t>(), kvLen, kvCols, cap, P(dKc), P(dVc),
                     kvCols, gStream));
  std::vector<int64_t> rows(c.n);
  for (int64_t i = 0; i < c.n; ++i)
    rows[i] = i;
  std::vector<double> ref(c.n * qCols, 0.0);
  const double scale = 1.0 / std::sqrt((double)c.D);
  attnRef(q, k, v, c.qStart, c.H, c.KVH, c.D, scale, rows, ref, window);
  if (variant)
    LIB_CHECK(greta_gpu_set_variant(variant));
  LIB_CHECK(GPU_CALL(dt, attention_window, P(dQ), qCols, P(dKc), P(dVc), kvCols,
                     c.n, c.qStart, c.H, c.KVH, c.D, (float)scale, window,
                     P(dOut), qCols, gStream));
  greta_gpu_reset_variants();
  HostT out = fetch(dOut, dt, c.n * qCols);
  char name[160];
  std::snprintf(name, sizeof name,
                "attention_window %s n=%lld start=%lld D=%lld w=%lld",
                variant ? strchr(variant, '=') + 1 : "default", (long long)c.n,
                (long long)c.qStart, (long long)c.D, (long long)window);
  checkAgainst(name, dt, out, ref);
  // The window matters: the full causal reference is far from the output
  // wherever a query sees more than `window` keys.
  if (c.qStart + c.n > window) {
    std::vector<double> full(c.n * qCols, 0.0);
    attnRef(q, k, v, c.qStart, c.H, c.KVH, c.D, scale, rows, full, 0);
    double apart = relL2(out, full);
    report(std::string(name) + " != causal", dtName(dt), apart, 1e-1,
           apart > 1e-1, "(a value above the limit passes)");
  }
}

// kv_append with k and v of different row strides, as Phi-3 gives them: v a
// column slice of the fused qkv_proj output (stride q + 2 kv), k a rotated
// copy (stride kv). The cache must hold each row exactly.
void testKvAppendStrides(DT dt, int64_t rows, int64_t kvCols) {
  const int64_t vLd = 3 * kvCols + 8, cap = rows + 3;
  HostT k = randomT(dt, rows * kvCols), fused = randomT(dt, rows * vLd);
  Dev dK(k), dFused(fused), dPos(rows * 8);
  Dev dKc(cap * kvCols * dtSize(dt)), dVc(cap * kvCols * dtSize(dt));
  std::vector<int64_t> pos(rows);
  for (int64_t i = 0; i < rows; ++i)
    pos[i] = rows - 1 - i; // any order
  dPos.upload(pos.data(), rows * 8);
  const int64_t vCol = 2 * kvCols + 8; // v's first column in the fused row
  LIB_CHECK(GPU_CALL(dt, kv_append, P(dK), kvCols,
                     AnyPtr{static_cast<char *>(dFused.p) + vCol * dtSize(dt)},
                     vLd, dPos.as<int64_t>(), rows, kvCols, cap, P(dKc),
                     P(dVc), kvCols, gStream));
  HostT kc = fetch(dKc, dt, cap * kvCols), vc = fetch(dVc, dt, cap * kvCols);
  size_t es = dtSize(dt), bad = 0;
  for (int64_t i = 0; i < rows; ++i) {
    const char *kr = (const char *)k.bytes.data() + i * kvCols * es;
    const char *vr = (const char *)fused.bytes.data() + (i * vLd + vCol) * es;
    bad += std::memcmp((const char *)kc.bytes.data() + pos[i] * kvCols * es, kr,
                       kvCols * es) != 0;
    bad += std::memcmp((const char *)vc.bytes.data() + pos[i] * kvCols * es, vr,
                       kvCols * es) != 0;
  }
  char name[96];
  std::snprintf(name, sizeof name, "kv_append k ld %lld, v ld %lld",
                (long long)kvCols, (long long)vLd);
  report(name, dtName(dt), (double)bad, 0.5, bad == 0, "(rows differing)");
}

void testErrorsFamily(DT dt) {
  Dev d(64);
  greta_gpu_status st = GPU_CALL(dt, attention_window, P(d), 64, P(d), P(d), 64,
                                 1, 0, 1, 1, 64, 0.125f, -1, P(d), 64, gStream);
  report("attention_window: negative window refused", dtName(dt),
         st == GRETA_GPU_ERR_INVALID_ARGUMENT ? 0 : 1, 0.5,
         st == GRETA_GPU_ERR_INVALID_ARGUMENT, greta_gpu_last_error());
}

} // namespace

void testFamilyKernels(DT dt) {
  testKvAppendStrides(dt, 48, 64);  // packed path
  testKvAppendStrides(dt, 7, 24);   // not packable: scalar path
  testRmsNormOffset(dt, 33, 2048);
  testRmsNormOffset(dt, 5, 640);
  testRmsNormOffset(dt, 48 * 4, 64); // per head
  testPerHeadRmsNorm(dt, 48, 4, 128);
  testPerHeadRmsNorm(dt, 48, 2, 64);
  testLinearBias(dt, 77, 512, 384, 512);
  testLinearBias(dt, 48, 128, 128, 3 * 128); // a slice of a fused qkv
  testGeglu(dt, 50, 1000);
  testGeglu(dt, 7, 1001);
  testScale(dt);
  testRopeFreqs(dt, 128, 1.f);
  testRopeFreqs(dt, 64, 1.2079f); // yarn's 0.1 * ln(8) + 1
  testRopeFreqs(dt, 32, 1.f);
  for (const char *v :
       {(const char *)nullptr, "attention=scalar", "attention=wmma",
        "attention=mma_fa2", "attention=lazy_rescale", "attention=hopper",
        "attention=gqa"}) {
    testAttentionWindow(dt, {300, 0, 8, 2, 64}, 64, v);     // window < prompt
    testAttentionWindow(dt, {37, 1000, 8, 2, 128}, 256, v); // KV cache
    testAttentionWindow(dt, {1, 1652, 4, 1, 32}, 500, v);   // decode
  }
  testAttentionWindow(dt, {130, 0, 12, 2, 64}, 200, nullptr); // w > prompt
  // The HF references' head_dims (16; 8 with Mistral's window 16).
  testAttention(dt, {48, 0, 4, 2, 16}, nullptr, false);
  testAttention(dt, {48, 0, 4, 2, 8}, nullptr, false);
  testAttentionWindow(dt, {48, 0, 4, 2, 8}, 16, nullptr);
  testAttentionWindow(dt, {20, 28, 4, 2, 16}, 16, "attention=wmma");
  testErrorsFamily(dt);
}

} // namespace gpucheck
