// Experiment of session 4 (H200, 2026-11-26): SHA-256 row kernel variants,
// digests checked against OpenSSL; output in sha_exp.txt. Not built by the
// project: nvcc -O3 -gencode=arch=compute_90a,code=sm_90a sha_exp.cu -lcrypto
// V0 = the one-thread kernel of session 3, V1 = + packed nz, V2 = + adds on
// the FMA pipe (IMAD by an opaque one), V3 = + one rotation per sigma by
// umulhi/IMAD; S0/S2/S3 = split schedule (producer/consumer warps) with the
// rounds of V0/V2/V3. The production kernels are in kernels/src/Trace.hip.
#include <cuda_runtime.h>
#include <openssl/sha.h>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#define CK(x) do { cudaError_t e_ = (x); if (e_) { printf("CUDA %s at %d: %s\n", #x, __LINE__, cudaGetErrorString(e_)); exit(1);} } while (0)

__constant__ uint32_t kK[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
    0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
    0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
    0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
    0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
    0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
    0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
    0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

struct Opq { uint32_t one; uint32_t p[33]; };  // p[k] = 1 << k, opaque to ptxas

__device__ __forceinline__ uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }
// rotr on the FMA pipe: hi(x * 2^(32-n)) = x >> n, lo = x << (32-n)
__device__ __forceinline__ uint32_t rotrM(uint32_t x, int n, const Opq &o) {
  uint32_t m = o.p[32 - n];
  return __umulhi(x, m) + x * m;
}
__device__ __forceinline__ uint32_t bswap32(uint32_t x) { return __byte_perm(x, 0, 0x0123); }

template <int V> __device__ __forceinline__ uint32_t add(uint32_t a, uint32_t b, const Opq &o) {
  if (V >= 2) return a * o.one + b;
  return a + b;
}

// V0/V1: plain; V2: some adds via IMAD; V3: + one rotate per sigma via IMAD
template <int V>
__device__ __forceinline__ void compress(uint32_t st[8], uint32_t w[16], const Opq &o) {
  uint32_t a = st[0], b = st[1], c = st[2], d = st[3], e = st[4], f = st[5], g = st[6], h = st[7];
#pragma unroll
  for (int i = 0; i < 64; ++i) {
    if (i >= 16) {
      uint32_t w15 = w[(i - 15) & 15], w2 = w[(i - 2) & 15];
      uint32_t s0 = rotr(w15, 7) ^ rotr(w15, 18) ^ (w15 >> 3);
      uint32_t s1 = rotr(w2, 17) ^ rotr(w2, 19) ^ (w2 >> 10);
      if (V >= 2)
        w[i & 15] = add<V>(w[i & 15] + s0, w[(i - 7) & 15] + s1, o);
      else
        w[i & 15] += s0 + w[(i - 7) & 15] + s1;
    }
    uint32_t S1 = V >= 3 ? (rotr(e, 6) ^ rotr(e, 11) ^ rotrM(e, 25, o)) : (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25));
    uint32_t ch = (e & f) ^ (~e & g);
    uint32_t hk = add<V>(h, kK[i] + w[i & 15], o);
    uint32_t t1 = hk + S1 + ch;
    uint32_t S0 = V >= 3 ? (rotr(a, 2) ^ rotr(a, 13) ^ rotrM(a, 22, o)) : (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22));
    uint32_t mj = (a & b) ^ (a & c) ^ (b & c);
    h = g; g = f; f = e; e = add<V>(d, t1, o); d = c; c = b; b = a; a = t1 + S0 + mj;
  }
  st[0] += a; st[1] += b; st[2] += c; st[3] += d; st[4] += e; st[5] += f; st[6] += g; st[7] += h;
}

// Rounds only, with K+W precomputed (from shared memory): split kernel consumer.
template <int V>
__device__ __forceinline__ void rounds(uint32_t st[8], const uint32_t *kw /*stride 32*/, const Opq &o) {
  uint32_t a = st[0], b = st[1], c = st[2], d = st[3], e = st[4], f = st[5], g = st[6], h = st[7];
#pragma unroll
  for (int i = 0; i < 64; ++i) {
    uint32_t S1 = V >= 3 ? (rotr(e, 6) ^ rotr(e, 11) ^ rotrM(e, 25, o)) : (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25));
    uint32_t ch = (e & f) ^ (~e & g);
    uint32_t hk = add<V>(h, kw[i * 32], o);
    uint32_t t1 = hk + S1 + ch;
    uint32_t S0 = V >= 3 ? (rotr(a, 2) ^ rotr(a, 13) ^ rotrM(a, 22, o)) : (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22));
    uint32_t mj = (a & b) ^ (a & c) ^ (b & c);
    h = g; g = f; f = e; e = add<V>(d, t1, o); d = c; c = b; b = a; a = t1 + S0 + mj;
  }
  st[0] += a; st[1] += b; st[2] += c; st[3] += d; st[4] += e; st[5] += f; st[6] += g; st[7] += h;
}

__device__ __forceinline__ int nzOld(uint32_t x) { return ((x & 0x7fffu) != 0) + ((x & 0x7fff0000u) != 0); }

__device__ void tailAndFinish(uint32_t st[8], const uint8_t *p, uint64_t len, uint64_t nFull, int64_t &nz, uint8_t *dig) {
  uint32_t w[16];
  const uint8_t *t = p + nFull * 64;
  const uint32_t r = (uint32_t)(len - nFull * 64);
  for (uint32_t e = 0; e < r; e += 2) nz += ((t[e] | (t[e + 1] << 8)) & 0x7fff) != 0;
#pragma unroll
  for (int i = 0; i < 16; ++i) {
    uint32_t word = 0;
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      uint32_t bi = 4 * i + k;
      uint32_t byte = bi < r ? t[bi] : (bi == r ? 0x80u : 0u);
      word = (word << 8) | byte;
    }
    w[i] = word;
  }
  Opq o0{};
  const uint64_t bits = len * 8;
  if (r < 56) {
    w[14] = (uint32_t)(bits >> 32); w[15] = (uint32_t)bits; compress<0>(st, w, o0);
  } else {
    compress<0>(st, w, o0);
    for (int i = 0; i < 14; ++i) w[i] = 0;
    w[14] = (uint32_t)(bits >> 32); w[15] = (uint32_t)bits; compress<0>(st, w, o0);
  }
  for (int i = 0; i < 8; ++i) reinterpret_cast<uint32_t *>(dig)[i] = bswap32(st[i]);
}

// Thread per row. data: rows x rowBytes (16-aligned rows), f16 elements.
template <int V>
__global__ void shaRows(const uint8_t *data, int64_t rows, int64_t rowBytes, uint8_t *dig, long long *nzOut, Opq o) {
  int64_t row = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (row >= rows) return;
  const uint8_t *p = data + row * rowBytes;
  const uint64_t len = rowBytes, nFull = len / 64;
  uint32_t st[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  int64_t nz = 0;
  uint32_t w[16];
  const uint4 *q = reinterpret_cast<const uint4 *>(p);
  uint4 next[4];
  if (nFull > 0) for (int i = 0; i < 4; ++i) next[i] = q[i];
  for (uint64_t blk = 0; blk < nFull; ++blk) {
    uint4 v[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) v[i] = next[i];
    if (blk + 1 < nFull) {
#pragma unroll
      for (int i = 0; i < 4; ++i) next[i] = q[(blk + 1) * 4 + i];
    }
    uint32_t s = 0;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      uint32_t x[4] = {v[i].x, v[i].y, v[i].z, v[i].w};
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        if (V == 0) nz += nzOld(x[k]);
        else s += (((x[k] & 0x7fff7fffu) + 0x7fff7fffu) & 0x80008000u) >> 15;
        w[i * 4 + k] = bswap32(x[k]);
      }
    }
    if (V != 0) nz += (s & 0xffffu) + (s >> 16);
    compress<V>(st, w, o);
  }
  tailAndFinish(st, p, len, nFull, nz, dig + row * 32);
  nzOut[row] = nz;
}

// Split: warp 0 computes the message schedule (K+W) of block t into shared
// memory while warp 1 runs the rounds of block t-1. 32 rows per block of 64.
template <int V>
__global__ void __launch_bounds__(64) shaSplit(const uint8_t *data, int64_t rows, int64_t rowBytes, uint8_t *dig, long long *nzOut, Opq o) {
  __shared__ uint32_t kw[2][64][32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  int64_t row = blockIdx.x * 32LL + lane;
  bool live = row < rows;
  int64_t rr = live ? row : 0;
  const uint8_t *p = data + rr * rowBytes;
  const uint64_t len = rowBytes, nFull = len / 64;
  const uint4 *q = reinterpret_cast<const uint4 *>(p);
  uint32_t st[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  int64_t nz = 0;
  uint4 next[4];
  if (warp == 0 && nFull > 0) for (int i = 0; i < 4; ++i) next[i] = q[i];
  for (uint64_t t = 0; t <= nFull; ++t) {
    if (warp == 0) {
      if (t < nFull) {
        uint4 v[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) v[i] = next[i];
        if (t + 1 < nFull) {
#pragma unroll
          for (int i = 0; i < 4; ++i) next[i] = q[(t + 1) * 4 + i];
        }
        uint32_t w[16], s = 0;
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          uint32_t x[4] = {v[i].x, v[i].y, v[i].z, v[i].w};
#pragma unroll
          for (int k = 0; k < 4; ++k) {
            s += (((x[k] & 0x7fff7fffu) + 0x7fff7fffu) & 0x80008000u) >> 15;
            w[i * 4 + k] = bswap32(x[k]);
          }
        }
        nz += (s & 0xffffu) + (s >> 16);
        uint32_t (*out)[32] = kw[t & 1];
#pragma unroll
        for (int i = 0; i < 64; ++i) {
          if (i >= 16) {
            uint32_t w15 = w[(i - 15) & 15], w2 = w[(i - 2) & 15];
            uint32_t s0 = rotr(w15, 7) ^ rotr(w15, 18) ^ (w15 >> 3);
            uint32_t s1 = rotr(w2, 17) ^ rotr(w2, 19) ^ (w2 >> 10);
            w[i & 15] += s0 + w[(i - 7) & 15] + s1;
          }
          out[i][lane] = w[i & 15] + kK[i];
        }
      }
    } else if (t > 0) {
      rounds<V>(st, &kw[(t - 1) & 1][0][lane], o);
    }
    __syncthreads();
  }
  if (warp == 0 && live) nzOut[row] = nz;
  __syncthreads();
  if (warp == 1 && live) {
    int64_t tailNz = 0;
    tailAndFinish(st, p, len, nFull, tailNz, dig + row * 32);
    nzOut[row] += tailNz;
  }
}

template <typename K>
float timeIt(K launch, int reps) {
  cudaEvent_t a, b; cudaEventCreate(&a); cudaEventCreate(&b);
  for (int i = 0; i < 2; ++i) launch();
  std::vector<float> ts;
  for (int i = 0; i < reps; ++i) {
    cudaEventRecord(a); launch(); cudaEventRecord(b); cudaEventSynchronize(b);
    float ms; cudaEventElapsedTime(&ms, a, b); ts.push_back(ms);
  }
  std::sort(ts.begin(), ts.end());
  CK(cudaGetLastError());
  return ts[ts.size() / 2];
}

int main() {
  struct Cfg { const char *name; int64_t rows, bytes; } cfgs[] = {
      {"827 x 4 KB (one tensor)", 827, 4096},
      {"10751 x 4 KB (13 tensors x 827)", 10751, 4096},
      {"16384 x 4 KB", 16384, 4096},
      {"131072 x 4 KB (512 MB)", 131072, 4096},
      {"827 x 64000 B (logits 827)", 827, 64000},
      {"1653 x 64000 B (logits 1653)", 1653, 64000},
      {"3 x 64000 B (3 logits rows)", 3, 64000},
      {"827 x 11264 B (FFN rows)", 827, 11264},
  };
  Opq o; o.one = 1; for (int k = 0; k <= 32; ++k) o.p[k] = k == 32 ? 0 : (1u << k);
  std::mt19937 g(1);
  printf("%-34s %9s %9s %9s %9s %9s %9s %9s  (ms; GB/s for best)\n", "config", "V0", "V1", "V2", "V3", "S0", "S2", "S3");
  for (auto &c : cfgs) {
    size_t n = c.rows * c.bytes;
    std::vector<uint8_t> h(n);
    for (size_t i = 0; i < n; i += 2) { uint16_t v = (g() % 7 == 0) ? ((g() & 1) ? 0x8000 : 0) : (uint16_t)g(); h[i] = v & 0xff; h[i + 1] = v >> 8; }
    uint8_t *d, *dd; long long *dn;
    CK(cudaMalloc(&d, n)); CK(cudaMalloc(&dd, c.rows * 32)); CK(cudaMalloc(&dn, c.rows * 8));
    CK(cudaMemcpy(d, h.data(), n, cudaMemcpyHostToDevice));
    std::vector<uint8_t> want(c.rows * 32); std::vector<long long> wnz(c.rows);
    for (int64_t r = 0; r < c.rows; ++r) {
      SHA256(h.data() + r * c.bytes, c.bytes, want.data() + r * 32);
      long long z = 0; for (int64_t e = 0; e < c.bytes; e += 2) z += ((h[r * c.bytes + e] | (h[r * c.bytes + e + 1] << 8)) & 0x7fff) != 0; wnz[r] = z;
    }
    auto check = [&](const char *v) {
      std::vector<uint8_t> got(c.rows * 32); std::vector<long long> gnz(c.rows);
      CK(cudaMemcpy(got.data(), dd, got.size(), cudaMemcpyDeviceToHost));
      CK(cudaMemcpy(gnz.data(), dn, c.rows * 8, cudaMemcpyDeviceToHost));
      if (got != want || gnz != wnz) { printf("\nMISMATCH %s %s\n", c.name, v); }
      CK(cudaMemset(dd, 0, c.rows * 32)); CK(cudaMemset(dn, 0, c.rows * 8));
    };
    int reps = c.rows * c.bytes > (64 << 20) ? 5 : 15;
    int tb = c.rows * 13 < 4096 * 13 ? 32 : 64;
    unsigned gb = (c.rows + tb - 1) / tb, gs = (c.rows + 31) / 32;
    float t[7];
    t[0] = timeIt([&] { shaRows<0><<<gb, tb>>>(d, c.rows, c.bytes, dd, dn, o); }, reps); check("V0");
    t[1] = timeIt([&] { shaRows<1><<<gb, tb>>>(d, c.rows, c.bytes, dd, dn, o); }, reps); check("V1");
    t[2] = timeIt([&] { shaRows<2><<<gb, tb>>>(d, c.rows, c.bytes, dd, dn, o); }, reps); check("V2");
    t[3] = timeIt([&] { shaRows<3><<<gb, tb>>>(d, c.rows, c.bytes, dd, dn, o); }, reps); check("V3");
    t[4] = timeIt([&] { shaSplit<0><<<gs, 64>>>(d, c.rows, c.bytes, dd, dn, o); }, reps); check("S0");
    t[5] = timeIt([&] { shaSplit<2><<<gs, 64>>>(d, c.rows, c.bytes, dd, dn, o); }, reps); check("S2");
    t[6] = timeIt([&] { shaSplit<3><<<gs, 64>>>(d, c.rows, c.bytes, dd, dn, o); }, reps); check("S3");
    printf("%-34s", c.name);
    for (float x : t) printf(" %9.3f", x);
    float best = *std::min_element(t, t + 7);
    printf("  (%.0f GB/s best, V0 %.0f GB/s)\n", n / best / 1e6, n / t[0] / 1e6);
    cudaFree(d); cudaFree(dd); cudaFree(dn);
  }
  return 0;
}
