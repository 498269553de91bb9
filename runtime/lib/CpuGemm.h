//===- CpuGemm.h - Batch-invariant matrix products --------------*- C++ -*-===//
//
// The CPU reference's matrix products. Every output element is one fused
// multiply-add chain over the reduction index in ascending order, started
// from zero (then times alpha, when alpha != 1): its bits depend on its own
// row of A and its column of B alone, never on how many rows a call has, on
// the tiling, on the thread that computes it, or on the instruction set
// (AVX-512, AVX2 and the portable std::fma loop give the same bits). That is
// what makes the reference batch-invariant (docs/RUNTIME.md).
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_RT_CPUGEMM_H
#define GRETA_RT_CPUGEMM_H

#include <cstddef>
#include <cstdint>
#include <memory>

namespace greta::rt::cpu {

enum class Isa { Generic, Avx2, Avx512 };
/// The instruction set the kernels use: the best this CPU has, unless a test
/// forced one with setIsa (an unsupported request falls back to Generic).
Isa activeIsa();
void setIsa(Isa isa);
const char *isaName(Isa isa);

/// The building blocks of the products, for one instruction set and dtype.
/// A B panel holds `nr` columns of B for every k, column-contiguous:
/// panel[kk * nr + c] = B(col0 + c, kk), zero past the last column. Tiles
/// are compiled for every row count up to mr: tileNT[rows - 1].
template <typename T> struct GemmKernels {
  static constexpr int kMaxRows = 8;
  int mr; ///< rows per tile, <= kMaxRows
  int nr; ///< columns per panel
  /// Packs columns [col0, col0 + nr) of B, given as rows b[col * ldb + kk]
  /// (k per row), into `panel`.
  void (*packPanel)(const T *b, int64_t ldb, int64_t cols, int64_t k, T *panel);
  /// c[i][c] = alpha * sum_kk a[i][kk] * panel[kk][c] for the tile's rows
  /// i and c < cols <= nr.
  using TileNT = void (*)(int64_t k, const T *a, int64_t lda, const T *panel,
                          T *c, int64_t ldc, int cols, T alpha);
  /// c[i][c] = sum_{j < ends[i]} p[i][j] * v[j][c] for the tile's rows i and
  /// c < cols <= nr; v's rows hold nr readable elements from v[j * ldv].
  /// A row never reads p or v past its own end.
  using TileNN = void (*)(const T *p, int64_t ldp, const int64_t *ends,
                          const T *v, int64_t ldv, T *c, int64_t ldc, int cols);
  TileNT tileNT[kMaxRows];
  TileNN tileNN[kMaxRows];
};
template <typename T> const GemmKernels<T> &gemmKernels();

/// c[m, n] = alpha * a[m, k] . b[n, k]^T (rows of b are the columns of the
/// product: a linear layer's weight, attention's keys), on up to
/// threadsFor(m * n * k) threads. Every c row depends only on its a row.
template <typename T>
void gemmNT(int64_t m, int64_t n, int64_t k, const T *a, int64_t lda,
            const T *b, int64_t ldb, T *c, int64_t ldc, T alpha = T(1));

/// A growable 64-byte-aligned scratch buffer, reused between calls so the
/// kernels do not fault fresh pages in on every call.
template <typename T> class Scratch {
public:
  T *get(size_t n);

private:
  struct Free {
    void operator()(T *p) const;
  };
  std::unique_ptr<T, Free> p_;
  size_t n_ = 0;
};

} // namespace greta::rt::cpu

#endif
