//===- GpuKernelCheck.h - The GPU kernel checks' harness -------*- C++ -*-===//
//
// What the checks of greta-gpu-kernel-test share (GpuKernelCheck.hip runs
// them): reporting, host f16/bf16 codecs, host and device tensors, the
// relative L2 metric, and the checks each file defines.
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_GPU_KERNEL_CHECK_H
#define GRETA_GPU_KERNEL_CHECK_H

#include "hip_compat.h"
#include "greta/gpu/Kernels.h"

#include <openssl/sha.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace gpucheck {

// ------------------------------------------------------------- reporting
struct Row {
  std::string check, dtype, detail;
  double value, threshold;
  bool pass;
};
inline std::vector<Row> gRows;

inline void report(std::string check, std::string dtype, double value,
            double threshold, bool pass, std::string detail = "") {
  gRows.push_back({std::move(check), std::move(dtype), std::move(detail),
                   value, threshold, pass});
  const Row &r = gRows.back();
  std::printf("%-4s %-44s %-5s %11.3e  (limit %.0e) %s\n",
              r.pass ? "ok" : "FAIL", r.check.c_str(), r.dtype.c_str(),
              r.value, r.threshold, r.detail.c_str());
  std::fflush(stdout);
}

#define HIP_CHECK(expr)                                                        \
  do {                                                                         \
    hipError_t e_ = (expr);                                                    \
    if (e_ != hipSuccess) {                                                    \
      std::fprintf(stderr, "FATAL %s:%d: %s -> %s\n", __FILE__, __LINE__,      \
                   #expr, hipGetErrorString(e_));                              \
      std::exit(3);                                                            \
    }                                                                          \
  } while (0)
#define LIB_CHECK(expr)                                                        \
  do {                                                                         \
    greta_gpu_status s_ = (expr);                                              \
    if (s_ != GRETA_GPU_OK) {                                                  \
      std::fprintf(stderr, "FATAL %s:%d: %s -> %s: %s\n", __FILE__, __LINE__,  \
                   #expr, greta_gpu_status_name(s_), greta_gpu_last_error());  \
      std::exit(3);                                                            \
    }                                                                          \
  } while (0)

// -------------------------------------------------- host f16/bf16 codecs
inline uint16_t f32ToF16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t absx = x & 0x7fffffffu;
  if (absx >= 0x7f800000u) // inf or nan
    return sign | 0x7c00u | (absx > 0x7f800000u ? 0x200u : 0u);
  if (absx >= 0x477ff000u) // rounds to >= 65520: inf
    return sign | 0x7c00u;
  if (absx < 0x38800000u) { // subnormal half (or zero)
    float a;
    std::memcpy(&a, &absx, 4);
    // value / 2^-24, rounded to nearest even by the FPU
    float scaled = a * 16777216.0f;
    uint32_t m = static_cast<uint32_t>(std::nearbyint(scaled));
    return sign | m;
  }
  uint32_t exp = (absx >> 23) - 127 + 15;
  uint32_t mant = absx & 0x7fffffu;
  uint32_t h = (exp << 10) | (mant >> 13);
  uint32_t rest = mant & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u)))
    ++h;
  return sign | h;
}
inline float f16ToF32(uint16_t h) {
  uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  float f;
  if (exp == 0) {
    f = std::ldexp(static_cast<float>(mant), -24);
    return sign ? -f : f;
  }
  uint32_t x;
  if (exp == 31)
    x = sign | 0x7f800000u | (mant << 13);
  else
    x = sign | ((exp - 15 + 127) << 23) | (mant << 13);
  std::memcpy(&f, &x, 4);
  return f;
}
inline uint16_t f32ToBf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u)
    return static_cast<uint16_t>((x >> 16) | 0x40u);
  uint32_t lsb = (x >> 16) & 1u;
  x += 0x7fffu + lsb;
  return static_cast<uint16_t>(x >> 16);
}
inline float bf16ToF32(uint16_t b) {
  uint32_t x = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

enum class DT { F32, F16, BF16 };
inline const char *dtName(DT d) {
  return d == DT::F32 ? "f32" : d == DT::F16 ? "f16" : "bf16";
}
inline size_t dtSize(DT d) { return d == DT::F32 ? 4 : 2; }
inline double dtThreshold(DT d) { return d == DT::F32 ? 1e-5 : 1e-2; }
inline greta_gpu_dtype dtGpu(DT d) {
  return d == DT::F32 ? GRETA_GPU_F32 : d == DT::F16 ? GRETA_GPU_F16
                                                     : GRETA_GPU_BF16;
}

// A host tensor in storage format plus its values as double.
struct HostT {
  DT dt;
  size_t n;
  std::vector<uint8_t> bytes;
  std::vector<double> val;
  HostT(DT d, size_t count) : dt(d), n(count), bytes(count * dtSize(d)), val(count) {}
  void set(size_t i, float f) {
    if (dt == DT::F32) {
      std::memcpy(&bytes[i * 4], &f, 4);
      val[i] = f;
    } else if (dt == DT::F16) {
      uint16_t h = f32ToF16(f);
      std::memcpy(&bytes[i * 2], &h, 2);
      val[i] = f16ToF32(h);
    } else {
      uint16_t h = f32ToBf16(f);
      std::memcpy(&bytes[i * 2], &h, 2);
      val[i] = bf16ToF32(h);
    }
  }
  double get(size_t i) const { // decode bytes (after a device read-back)
    if (dt == DT::F32) {
      float f;
      std::memcpy(&f, &bytes[i * 4], 4);
      return f;
    }
    uint16_t h;
    std::memcpy(&h, &bytes[i * 2], 2);
    return dt == DT::F16 ? f16ToF32(h) : bf16ToF32(h);
  }
};

inline std::mt19937_64 gRng;
inline HostT randomT(DT d, size_t n, float lo = -1.f, float hi = 1.f) {
  HostT t(d, n);
  std::uniform_real_distribution<float> u(lo, hi);
  for (size_t i = 0; i < n; ++i)
    t.set(i, u(gRng));
  return t;
}

// Device buffer, poisoned (0xFF bytes = NaN in every dtype) on creation.
struct Dev {
  void *p = nullptr;
  size_t bytes = 0;
  explicit Dev(size_t b) : bytes(b) {
    LIB_CHECK(greta_gpu_malloc(&p, b ? b : 1));
    poison();
  }
  Dev(const HostT &h) : Dev(h.bytes.size()) { upload(h); }
  ~Dev() { greta_gpu_free(p); }
  Dev(const Dev &) = delete;
  void poison() { HIP_CHECK(hipMemset(p, 0xFF, bytes ? bytes : 1)); }
  void upload(const HostT &h) {
    HIP_CHECK(hipMemcpy(p, h.bytes.data(), h.bytes.size(), hipMemcpyHostToDevice));
  }
  void upload(const void *src, size_t b) {
    HIP_CHECK(hipMemcpy(p, src, b, hipMemcpyHostToDevice));
  }
  void download(HostT &h) const {
    HIP_CHECK(hipDeviceSynchronize());
    HIP_CHECK(hipMemcpy(h.bytes.data(), p, h.bytes.size(), hipMemcpyDeviceToHost));
  }
  template <typename T> T *as() const { return static_cast<T *>(p); }
};

inline HostT fetch(const Dev &d, DT dt, size_t n) {
  HostT h(dt, n);
  d.download(h);
  return h;
}

// Relative L2 over selected indices (all when idx empty). NaN/inf -> inf.
inline double relL2(const HostT &out, const std::vector<double> &ref,
             const std::vector<size_t> *idx = nullptr) {
  double num = 0, den = 0;
  auto one = [&](size_t i) {
    double o = out.get(i);
    if (!std::isfinite(o))
      num = INFINITY;
    double d = o - ref[i];
    num += d * d;
    den += ref[i] * ref[i];
  };
  if (idx)
    for (size_t i : *idx)
      one(i);
  else
    for (size_t i = 0; i < out.n; ++i)
      one(i);
  if (!std::isfinite(num))
    return INFINITY;
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}
inline double relL2(const HostT &a, const HostT &b) { // a vs b, b as reference
  std::vector<double> ref(b.n);
  for (size_t i = 0; i < b.n; ++i)
    ref[i] = b.get(i);
  return relL2(a, ref);
}

inline void parallelFor(size_t n, const std::function<void(size_t)> &f) {
  unsigned nt = std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::thread> th;
  for (unsigned t = 0; t < nt; ++t)
    th.emplace_back([&, t] {
      for (size_t i = t; i < n; i += nt)
        f(i);
    });
  for (auto &x : th)
    x.join();
}

// Dispatch on dtype to the typed C ABI (void* casts: the storage is bytes).
#define GPU_CALL(DTV, NAME, ...)                                               \
  ((DTV) == DT::F32   ? greta_gpu_##NAME##_f32(__VA_ARGS__)                    \
   : (DTV) == DT::F16 ? greta_gpu_##NAME##_f16(__VA_ARGS__)                    \
                      : greta_gpu_##NAME##_bf16(__VA_ARGS__))
// Casting helper: the typed functions take float* / uint16_t*.
struct AnyPtr {
  void *p;
  template <typename T> operator T *() const { return static_cast<T *>(p); }
};
inline AnyPtr P(const Dev &d) { return AnyPtr{d.p}; }

inline hipStream_t gStream;

// Attention for n queries at q_start over a cache of q_start+n keys.
struct AttnCase {
  int64_t n, qStart, H, KVH, D;
};
// The paged KV cache's kernels (PagedChecks.hip).
void runPagedChecks(bool quick);

// The checks (ComputeChecks.hip, TraceChecks.hip, GpuKernelCheck.hip).
void testEmbedding(DT dt);
void testRmsNorm(DT dt, int64_t rows, int64_t cols);
void testRope(DT dt, int64_t D);
void testLinear(DT dt);
void testSwigluAdd(DT dt, int64_t rows, int64_t cols);
void testAttention(DT dt, AttnCase c, const char *variant, bool bugChecks);
void testAttentionNonFinite(DT dt, AttnCase c, int64_t from,
                            const char *variant);
// Double-precision attention of the listed rows (window 0: none).
void attnRef(const HostT &q, const HostT &k, const HostT &v, int64_t qStart,
             int64_t H, int64_t KVH, int64_t D, double scale,
             const std::vector<int64_t> &rows, std::vector<double> &ref,
             int64_t window);
// The families' kernels (FamilyChecks.hip): every one on f32, f16, bf16.
void testFamilyKernels(DT dt);
// The mixture-of-experts kernels (MoEChecks.hip): f32, f16, bf16.
void testMoEKernels(DT dt);
void testTrace(DT dt, const char *variant);
void testGather(DT dt);
void testTop5(DT dt);

} // namespace gpucheck

#endif // GRETA_GPU_KERNEL_CHECK_H
