//===- BatchInvarianceTest.cpp - CPU rows independent of the call -*- C++
//-*-===//
//
// The CPU reference's promise (docs/RUNTIME.md, "Batch invariance"): a row's
// bits depend on that row's inputs alone, not on how many rows a call has,
// the thread count, or the instruction set; and a causal row never sees a
// later position, whatever its value.
//
//===----------------------------------------------------------------------===//
#include "CpuGemm.h"
#include "ThreadPool.h"
#include "greta/rt/CInterface.h"
#include "greta/rt/Session.h"

#include "TestUtil.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

using namespace greta::rt;

namespace {

/// Every instruction set this CPU runs, the best last.
std::vector<cpu::Isa> isas() {
  std::vector<cpu::Isa> out;
  cpu::Isa best = cpu::activeIsa();
  for (cpu::Isa i : {cpu::Isa::Generic, cpu::Isa::Avx2, cpu::Isa::Avx512})
    if (static_cast<int>(i) <= static_cast<int>(best))
      out.push_back(i);
  return out;
}

/// Restores the detected instruction set and the default thread count.
struct Restore {
  cpu::Isa best = cpu::activeIsa();
  ~Restore() {
    cpu::setIsa(best);
    setCpuThreads(0);
  }
};

template <typename T> bool sameBits(T a, T b) {
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

template <typename T> std::vector<T> random(size_t n, Rng &rng, double s) {
  std::vector<T> v(n);
  for (auto &x : v)
    x = static_cast<T>(rng.uniform() * s);
  return v;
}

template <typename T> void checkFmaChain() {
  Restore restore;
  Rng rng(11);
  struct Shape {
    int64_t m, n, k;
  };
  for (Shape sh : {Shape{1, 1, 1}, Shape{5, 33, 7}, Shape{17, 65, 32},
                   Shape{9, 16, 0}, Shape{40, 100, 257}}) {
    const int64_t lda = sh.k + 3, ldb = sh.k + 1, ldc = sh.n + 2;
    auto a = random<T>(sh.m * lda, rng, 1), b = random<T>(sh.n * ldb, rng, 1);
    for (T alpha : {T(1), T(0.1767766952966369)}) {
      for (cpu::Isa isa : isas()) {
        cpu::setIsa(isa);
        std::vector<T> c(sh.m * ldc, T(-7));
        cpu::gemmNT<T>(sh.m, sh.n, sh.k, a.data(), lda, b.data(), ldb, c.data(),
                       ldc, alpha);
        for (int64_t i = 0; i < sh.m; ++i)
          for (int64_t j = 0; j < sh.n; ++j) {
            T acc = 0;
            for (int64_t kk = 0; kk < sh.k; ++kk)
              acc = std::fma(a[i * lda + kk], b[j * ldb + kk], acc);
            if (alpha != T(1))
              acc *= alpha;
            ASSERT_TRUE(sameBits(c[i * ldc + j], acc))
                << cpu::isaName(isa) << " m " << sh.m << " n " << sh.n << " k "
                << sh.k << " at " << i << "," << j << ": " << c[i * ldc + j]
                << " vs " << acc;
          }
        // Padding between rows is never written.
        for (int64_t i = 0; i < sh.m; ++i)
          EXPECT_EQ(c[i * ldc + sh.n], T(-7));
      }
    }
  }
}

TEST(CpuGemm, EveryElementIsOneFmaChainOnEveryIsa) {
  checkFmaChain<float>();
  checkFmaChain<double>();
}

TEST(CpuGemm, RowsDoNotDependOnTheCallOrTheThreads) {
  Restore restore;
  Rng rng(12);
  const int64_t m = 300, n = 200, k = 256;
  auto a = random<float>(m * k, rng, 1), b = random<float>(n * k, rng, 1);
  setCpuThreads(2);
  std::vector<float> whole(m * n);
  cpu::gemmNT<float>(m, n, k, a.data(), k, b.data(), k, whole.data(), n);
  for (int threads : {1, 2})
    for (int64_t chunk : {1, 7, 128}) {
      setCpuThreads(threads);
      std::vector<float> parts(m * n);
      for (int64_t r = 0; r < m; r += chunk)
        cpu::gemmNT<float>(std::min(chunk, m - r), n, k, a.data() + r * k, k,
                           b.data(), k, parts.data() + r * n, n);
      EXPECT_EQ(std::memcmp(parts.data(), whole.data(), whole.size() * 4), 0)
          << "chunk " << chunk << ", " << threads << " threads";
    }
}

/// A current session with an empty checkpoint: the kernels need only its
/// KV cache.
struct KvSession {
  TempDir dir;
  std::unique_ptr<SafeTensors> st;
  std::unique_ptr<Session> s;
  explicit KvSession(DType dt) {
    std::string err, path = dir.path() + "/w.safetensors";
    EXPECT_TRUE(writeSafeTensors(path, {}, DType::F32, err)) << err;
    st = SafeTensors::open(path, err);
    s = Session::create(*st, {}, dt, err);
    EXPECT_TRUE(s) << err;
    Session::setCurrent(s.get());
  }
  ~KvSession() { Session::setCurrent(nullptr); }
};

template <typename T> struct AttnCase {
  int64_t s, nh, nkv, d;
  std::vector<T> q, k, v;
  AttnCase(int64_t s, int64_t nh, int64_t nkv, int64_t d, Rng &rng)
      : s(s), nh(nh), nkv(nkv), d(d), q(random<T>(s * nh * d, rng, 2)),
        k(random<T>(s * nkv * d, rng, 2)), v(random<T>(s * nkv * d, rng, 1)) {}

  /// The whole prompt in calls of `chunk` rows through one KV cache.
  std::vector<T> run(int64_t chunk) {
    KvSession ks(std::is_same_v<T, float> ? DType::F32 : DType::F64);
    std::vector<T> out(s * nh * d, T(-9));
    for (int64_t r = 0; r < s; r += chunk) {
      int64_t n = std::min(chunk, s - r);
      std::vector<int64_t> pos(n);
      for (int64_t i = 0; i < n; ++i)
        pos[i] = r + i;
      auto m = [&](std::vector<T> &x, int64_t cols) {
        return MemRef<T, 2>{x.data(), x.data(), r * cols, {n, cols}, {cols, 1}};
      };
      auto qr = m(q, nh * d), kr = m(k, nkv * d), vr = m(v, nkv * d),
           orf = m(out, nh * d);
      MemRef<int64_t, 1> pr{pos.data(), pos.data(), 0, {n}, {1}};
      double scale = 1 / std::sqrt(double(d));
      if constexpr (std::is_same_v<T, float>)
        _mlir_ciface_greta_cpu_attention_f32(&qr, &kr, &vr, &pr, nh, nkv, d,
                                             scale, 0, &orf);
      else
        _mlir_ciface_greta_cpu_attention_f64(&qr, &kr, &vr, &pr, nh, nkv, d,
                                             scale, 0, &orf);
    }
    EXPECT_EQ(ks.s->error(), "");
    return out;
  }
};

template <typename T> void checkAttentionInvariance(int64_t d) {
  Restore restore;
  Rng rng(13);
  AttnCase<T> c(300, 4, 2, d, rng);
  setCpuThreads(2);
  std::vector<T> whole = c.run(c.s);
  int threads = 1;
  for (cpu::Isa isa : isas())
    for (int64_t chunk : {int64_t(1), int64_t(7), int64_t(128), c.s}) {
      threads = 3 - threads; // 2, 1, 2, ...
      cpu::setIsa(isa);
      setCpuThreads(threads);
      std::vector<T> out = c.run(chunk);
      ASSERT_EQ(std::memcmp(out.data(), whole.data(), whole.size() * sizeof(T)),
                0)
          << cpu::isaName(isa) << ", " << threads << " threads, chunk " << chunk
          << ", head dim " << d;
    }
}

TEST(CpuAttention, RowsDoNotDependOnTheCallTheThreadsOrTheIsa) {
  for (int64_t d : {16, 32, 40}) { // panels smaller, equal, not dividing
    checkAttentionInvariance<float>(d);
    checkAttentionInvariance<double>(d);
  }
}

// Issue 18 item 9: a masked probability is 0, and 0 * inf is NaN, so a
// product over the whole key block let a non-finite later value reach
// earlier rows (from the start of their 128-query block).
template <typename T> void checkNoLeak() {
  Restore restore;
  Rng rng(14);
  const int64_t from = 150;
  AttnCase<T> c(300, 4, 2, 32, rng);
  std::vector<T> clean = c.run(c.s);
  const T inf = std::numeric_limits<T>::infinity();
  const T nan = std::numeric_limits<T>::quiet_NaN();
  for (int64_t r = from; r < c.s; ++r) {
    for (int64_t j = 0; j < c.nkv * c.d; ++j) {
      c.v[r * c.nkv * c.d + j] = (j % 3 == 0) ? inf : (j % 3 == 1) ? nan : -inf;
      c.k[r * c.nkv * c.d + j] = (j % 2) ? nan : inf;
    }
    for (int64_t j = 0; j < c.nh * c.d; ++j)
      c.q[r * c.nh * c.d + j] = j % 2 ? -inf : nan;
  }
  for (int64_t chunk : {int64_t(1), int64_t(7), int64_t(128), c.s}) {
    std::vector<T> out = c.run(chunk);
    for (int64_t r = 0; r < from; ++r)
      for (int64_t j = 0; j < c.nh * c.d; ++j) {
        T x = out[r * c.nh * c.d + j], want = clean[r * c.nh * c.d + j];
        ASSERT_TRUE(std::isfinite(x) && sameBits(x, want))
            << "chunk " << chunk << ": row " << r << " column " << j << " is "
            << x << ", without the later non-finite rows " << want;
      }
    for (int64_t r = from; r < c.s; ++r)
      EXPECT_FALSE(std::isfinite(out[r * c.nh * c.d])) << "row " << r;
  }
}

TEST(CpuAttention, LaterNonFiniteValuesNeverReachEarlierRows) {
  checkNoLeak<float>();
  checkNoLeak<double>();
}

} // namespace
