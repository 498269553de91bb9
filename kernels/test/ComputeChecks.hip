//===- ComputeChecks.hip - the compute kernels' checks ----------------------===//
//
// Embedding, RMSNorm, RoPE, linear, SwiGLU/add and attention (every
// variant, the KV cache, the planted bug, later non-finite values) against
// a CPU reference in double.
//
//===----------------------------------------------------------------------===//
#include "GpuKernelCheck.h"

namespace gpucheck {

// ------------------------------------------------------------------ tests
void testEmbedding(DT dt) {
  const int64_t vocab = 1000, hidden = 320, rows = 37;
  HostT table = randomT(dt, vocab * hidden);
  std::vector<int64_t> ids(rows);
  std::uniform_int_distribution<int64_t> u(0, vocab - 1);
  for (auto &i : ids)
    i = u(gRng);
  ids[0] = 0;
  ids[1] = vocab - 1;
  Dev dTable(table), dIds(rows * 8), dOut(rows * hidden * dtSize(dt));
  dIds.upload(ids.data(), rows * 8);
  LIB_CHECK(GPU_CALL(dt, embedding, P(dTable), vocab, hidden, hidden,
                     dIds.as<int64_t>(), rows, P(dOut), hidden, gStream));
  HostT out = fetch(dOut, dt, rows * hidden);
  std::vector<double> ref(rows * hidden);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < hidden; ++c)
      ref[r * hidden + c] = table.val[ids[r] * hidden + c];
  double err = relL2(out, ref);
  report("embedding gather (exact)", dtName(dt), err, 0, err == 0);
  // A bad id: NaN row plus a device-side flag, reported, not a crash.
  ids[5] = vocab + 3;
  dIds.upload(ids.data(), rows * 8);
  LIB_CHECK(GPU_CALL(dt, embedding, P(dTable), vocab, hidden, hidden,
                     dIds.as<int64_t>(), rows, P(dOut), hidden, gStream));
  greta_gpu_status s = greta_gpu_check_device_errors(gStream);
  bool ok = s == GRETA_GPU_ERR_DEVICE_ASSERT &&
            std::strstr(greta_gpu_last_error(), "embedding id");
  report("embedding bad id -> device error flag", dtName(dt), s, 0, ok,
         greta_gpu_last_error());
  // The flag is cleared by the read.
  s = greta_gpu_check_device_errors(gStream);
  report("device error flag cleared after read", dtName(dt), s, 0,
         s == GRETA_GPU_OK);
}

void testRmsNorm(DT dt, int64_t rows, int64_t cols) {
  const float eps = 1e-5f;
  const int64_t ld = cols + 8;
  HostT x = randomT(dt, rows * ld, -2.f, 2.f), w = randomT(dt, cols, 0.5f, 1.5f);
  Dev dX(x), dW(w), dOut(rows * cols * dtSize(dt));
  LIB_CHECK(GPU_CALL(dt, rms_norm, P(dX), ld, P(dW), rows, cols, eps, P(dOut),
                     cols, gStream));
  HostT out = fetch(dOut, dt, rows * cols);
  std::vector<double> ref(rows * cols);
  for (int64_t r = 0; r < rows; ++r) {
    double ss = 0;
    for (int64_t c = 0; c < cols; ++c)
      ss += x.val[r * ld + c] * x.val[r * ld + c];
    double inv = 1.0 / std::sqrt(ss / cols + eps);
    for (int64_t c = 0; c < cols; ++c)
      ref[r * cols + c] = x.val[r * ld + c] * inv * w.val[c];
  }
  double err = relL2(out, ref);
  report("rms_norm " + std::to_string(rows) + "x" + std::to_string(cols),
         dtName(dt), err, dtThreshold(dt), err < dtThreshold(dt));
}

// Reference RoPE per the specification: inv_freq correctly rounded to fp32,
// angle = float(pos) * inv_freq in fp32, cos/sin of that angle in double.
std::vector<double> ropeRef(const HostT &x, const std::vector<int64_t> &pos,
                            int64_t rows, int64_t heads, int64_t D,
                            float theta) {
  std::vector<double> ref(rows * heads * D);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < D / 2; ++i) {
        float inv = static_cast<float>(
            1.0 / std::pow(static_cast<double>(theta), 2.0 * i / D));
        float ang = static_cast<float>(pos[r]) * inv;
        double c = std::cos(static_cast<double>(ang)),
               s = std::sin(static_cast<double>(ang));
        int64_t b = r * heads * D + h * D;
        double x1 = x.val[b + i], x2 = x.val[b + i + D / 2];
        ref[b + i] = x1 * c - x2 * s;
        ref[b + i + D / 2] = x2 * c + x1 * s;
      }
  return ref;
}

void testRope(DT dt, int64_t D) {
  const int64_t rows = 96, heads = 4, cols = heads * D;
  const float theta = 10000.f;
  HostT x = randomT(dt, rows * cols);
  std::vector<int64_t> pos(rows);
  std::uniform_int_distribution<int64_t> u(0, 40000);
  for (auto &p : pos)
    p = u(gRng);
  pos[0] = 0; pos[1] = 1; pos[2] = 826; pos[3] = 1652; pos[4] = 32767;
  pos[5] = 65535; pos[6] = 131071;
  std::vector<double> ref = ropeRef(x, pos, rows, heads, D, theta);
  Dev dX(x), dPos(rows * 8), dOut(rows * cols * dtSize(dt));
  dPos.upload(pos.data(), rows * 8);
  LIB_CHECK(GPU_CALL(dt, rope, P(dX), cols, dPos.as<int64_t>(), rows, heads,
                     D, theta, P(dOut), cols, gStream));
  HostT out = fetch(dOut, dt, rows * cols);
  double err = relL2(out, ref);
  report("rope D=" + std::to_string(D) + " positions up to 131071", dtName(dt),
         err, dtThreshold(dt), err < dtThreshold(dt));
  // In place.
  LIB_CHECK(GPU_CALL(dt, rope, P(dX), cols, dPos.as<int64_t>(), rows, heads,
                     D, theta, P(dX), cols, gStream));
  HostT inPlace = fetch(dX, dt, rows * cols);
  double diff = relL2(inPlace, out);
  report("rope in place == out of place", dtName(dt), diff, 0, diff == 0);
  // Planted bug: fp16 angles must differ from the reference.
  LIB_CHECK(greta_gpu_set_variant("rope=fp16_angles"));
  dX.upload(x);
  dOut.poison();
  LIB_CHECK(GPU_CALL(dt, rope, P(dX), cols, dPos.as<int64_t>(), rows, heads,
                     D, theta, P(dOut), cols, gStream));
  HostT bug = fetch(dOut, dt, rows * cols);
  greta_gpu_reset_variants();
  // Only rows whose positions are finite in fp16 (< 65504): the others are
  // inf angles and NaN outputs, which also differ, but say less.
  std::vector<size_t> idx;
  for (int64_t r = 0; r < rows; ++r)
    if (pos[r] < 65504)
      for (int64_t c = 0; c < cols; ++c)
        idx.push_back(r * cols + c);
  double bugErr = relL2(bug, ref, &idx);
  report("rope=fp16_angles DIFFERS (planted bug)", dtName(dt), bugErr,
         dtThreshold(dt), bugErr > dtThreshold(dt),
         "must exceed the limit");
  // ...and is harmless at tiny positions (0..7): the bug is position-driven.
  std::vector<int64_t> small(rows);
  for (int64_t r = 0; r < rows; ++r)
    small[r] = r % 2;
  dPos.upload(small.data(), rows * 8);
  LIB_CHECK(greta_gpu_set_variant("rope=fp16_angles"));
  LIB_CHECK(GPU_CALL(dt, rope, P(dX), cols, dPos.as<int64_t>(), rows, heads,
                     D, theta, P(dOut), cols, gStream));
  HostT bugSmall = fetch(dOut, dt, rows * cols);
  greta_gpu_reset_variants();
  std::vector<double> refSmall = ropeRef(x, small, rows, heads, D, theta);
  double smallErr = relL2(bugSmall, refSmall);
  report("rope=fp16_angles at positions 0/1 near ref", dtName(dt), smallErr,
         1e-2, smallErr < 1e-2, "bug is position-driven");
}

void testLinear(DT dt) {
  const int64_t M = 77, K = 512, N = 384;
  HostT x = randomT(dt, M * K), w = randomT(dt, N * K);
  Dev dX(x), dW(w), dOut(M * N * dtSize(dt));
  LIB_CHECK(GPU_CALL(dt, linear, P(dX), K, P(dW), K, M, K, N, P(dOut), N,
                     gStream));
  HostT out = fetch(dOut, dt, M * N);
  std::vector<double> ref(M * N);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double acc = 0;
      for (int64_t k = 0; k < K; ++k)
        acc += x.val[i * K + k] * w.val[j * K + k];
      ref[i * N + j] = acc;
    }
  double err = relL2(out, ref);
  report("linear 77x512 . (384x512)^T (cuBLAS)", dtName(dt), err,
         dtThreshold(dt), err < dtThreshold(dt));
}

// 50x1000 runs the packed (16-byte) kernels, 7x1001 the scalar ones.
void testSwigluAdd(DT dt, int64_t rows, int64_t cols) {
  const std::string shape = std::to_string(rows) + "x" + std::to_string(cols);
  HostT g = randomT(dt, rows * cols, -6.f, 6.f), u = randomT(dt, rows * cols);
  Dev dG(g), dU(u), dOut(rows * cols * dtSize(dt));
  LIB_CHECK(GPU_CALL(dt, swiglu, P(dG), cols, P(dU), cols, rows, cols,
                     P(dOut), cols, gStream));
  HostT out = fetch(dOut, dt, rows * cols);
  std::vector<double> ref(rows * cols);
  for (size_t i = 0; i < ref.size(); ++i)
    ref[i] = g.val[i] / (1.0 + std::exp(-g.val[i])) * u.val[i];
  double err = relL2(out, ref);
  report("swiglu " + shape, dtName(dt), err, dtThreshold(dt),
         err < dtThreshold(dt));
  dOut.poison();
  LIB_CHECK(GPU_CALL(dt, add, P(dG), cols, P(dU), cols, rows, cols, P(dOut),
                     cols, gStream));
  out = fetch(dOut, dt, rows * cols);
  for (size_t i = 0; i < ref.size(); ++i)
    ref[i] = g.val[i] + u.val[i];
  err = relL2(out, ref);
  report("add " + shape, dtName(dt), err, dtThreshold(dt),
         err < dtThreshold(dt));
}

// Attention reference for the listed query rows; with a window, the query
// at position p sees keys (p - window, p].
void attnRef(const HostT &q, const HostT &k, const HostT &v, int64_t qStart,
             int64_t H, int64_t KVH, int64_t D, double scale,
             const std::vector<int64_t> &rows, std::vector<double> &ref,
             int64_t window) {
  const int64_t qCols = H * D, kvCols = KVH * D, group = H / KVH;
  parallelFor(rows.size() * H, [&](size_t job) {
    int64_t i = rows[job / H], h = job % H, kvh = h / group;
    int64_t pos = qStart + i;
    int64_t first = window > 0 ? std::max<int64_t>(0, pos - window + 1) : 0;
    std::vector<double> s(pos + 1, -INFINITY);
    double mx = -INFINITY;
    for (int64_t j = first; j <= pos; ++j) {
      double acc = 0;
      for (int64_t d = 0; d < D; ++d)
        acc += q.val[i * qCols + h * D + d] * k.val[j * kvCols + kvh * D + d];
      s[j] = acc * scale;
      mx = std::max(mx, s[j]);
    }
    double sum = 0;
    for (auto &x : s)
      sum += (x = std::exp(x - mx));
    for (int64_t d = 0; d < D; ++d) {
      double acc = 0;
      for (int64_t j = first; j <= pos; ++j)
        acc += s[j] * v.val[j * kvCols + kvh * D + d];
      ref[i * qCols + h * D + d] = acc / sum;
    }
  });
}

// Runs attention for n queries at q_start over a cache of q_start+n keys,
// the cache filled through kv_append. Returns the output.
HostT runAttention(DT dt, const AttnCase &c, const HostT &q, const Dev &dQ,
                   const Dev &dK, const Dev &dV) {
  const int64_t qCols = c.H * c.D, kvCols = c.KVH * c.D;
  Dev dOut(c.n * qCols * dtSize(dt));
  LIB_CHECK(GPU_CALL(dt, attention, P(dQ), qCols, P(dK), P(dV), kvCols, c.n,
                     c.qStart, c.H, c.KVH, c.D, 1.f / std::sqrt((float)c.D),
                     P(dOut), qCols, gStream));
  (void)q;
  return fetch(dOut, dt, c.n * qCols);
}

void testAttention(DT dt, AttnCase c, const char *variant, bool bugChecks) {
  const int64_t qCols = c.H * c.D, kvCols = c.KVH * c.D;
  const int64_t kvLen = c.qStart + c.n;
  HostT q = randomT(dt, c.n * qCols, -2.f, 2.f);
  HostT k = randomT(dt, kvLen * kvCols, -2.f, 2.f);
  HostT v = randomT(dt, kvLen * kvCols);
  Dev dQ(q), dKin(k), dVin(v), dPos(kvLen * 8);
  // Cache with spare capacity, filled by kv_append in two calls (the cached
  // prefix, then this call's rows) in shuffled order.
  const int64_t cap = kvLen + 17;
  Dev dKc(cap * kvCols * dtSize(dt)), dVc(cap * kvCols * dtSize(dt));
  std::vector<int64_t> pos(kvLen);
  for (int64_t i = 0; i < kvLen; ++i)
    pos[i] = i;
  dPos.upload(pos.data(), kvLen * 8);
  LIB_CHECK(GPU_CALL(dt, kv_append, P(dKin), kvCols, P(dVin), kvCols,
                     dPos.as<int64_t>(), kvLen, kvCols, cap, P(dKc), P(dVc),
                     kvCols, gStream));
  // Which rows to check against the double reference: all up to 2048 rows,
  // else a random sample plus the first and last 64.
  std::vector<int64_t> rows;
  if (c.n <= 2048) {
    for (int64_t i = 0; i < c.n; ++i)
      rows.push_back(i);
  } else {
    std::uniform_int_distribution<int64_t> u(0, c.n - 1);
    for (int i = 0; i < 192; ++i)
      rows.push_back(u(gRng));
    for (int64_t i = 0; i < 64; ++i) {
      rows.push_back(i);
      rows.push_back(c.n - 1 - i);
    }
    std::sort(rows.begin(), rows.end());
    rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
  }
  std::vector<double> ref(c.n * qCols, 0.0);
  attnRef(q, k, v, c.qStart, c.H, c.KVH, c.D, 1.0 / std::sqrt((double)c.D),
          rows, ref, /*window=*/0);
  std::vector<size_t> idx;
  for (int64_t i : rows)
    for (int64_t j = 0; j < qCols; ++j)
      idx.push_back(i * qCols + j);

  char name[160];
  if (variant)
    LIB_CHECK(greta_gpu_set_variant(variant));
  HostT out = runAttention(dt, c, q, dQ, dKc, dVc);
  HostT again = runAttention(dt, c, q, dQ, dKc, dVc);
  greta_gpu_reset_variants();
  // Run to run, bit for bit (no reduction ordered by atomics or timing).
  const bool same = out.bytes == again.bytes;
  std::snprintf(name, sizeof name, "attention%s%s n=%lld D=%lld run twice",
                variant ? " " : "", variant ? strchr(variant, '=') + 1 : "",
                (long long)c.n, (long long)c.D);
  report(name, dtName(dt), same ? 0 : 1, 0, same, "byte-equal outputs");
  // Every element written (poisoned buffer) and finite.
  size_t bad = 0;
  for (size_t i = 0; i < out.n; ++i)
    bad += !std::isfinite(out.get(i));
  double err = bad ? INFINITY : relL2(out, ref, &idx);
  std::snprintf(name, sizeof name, "attention%s%s n=%lld start=%lld D=%lld",
                variant ? " " : "", variant ? strchr(variant, '=') + 1 : "",
                (long long)c.n, (long long)c.qStart, (long long)c.D);
  char detail[96];
  std::snprintf(detail, sizeof detail, "H=%lld KVH=%lld, %zu rows checked%s",
                (long long)c.H, (long long)c.KVH, rows.size(),
                bad ? ", NON-FINITE OUTPUT" : "");
  report(name, dtName(dt), err, dtThreshold(dt), err < dtThreshold(dt),
         detail);
  if (!bugChecks)
    return;
  LIB_CHECK(greta_gpu_set_variant("attention=partial_tile_bug"));
  HostT bug = runAttention(dt, c, q, dQ, dKc, dVc);
  greta_gpu_reset_variants();
  if (kvLen % 64 != 0) {
    // The rows the bug can touch: positions >= 64*floor(kvLen/64) (all rows
    // when kvLen < 64). Measured there, it must exceed the limit...
    int64_t first = (kvLen / 64) * 64 - c.qStart;
    std::vector<size_t> after;
    for (int64_t i : rows)
      if (i >= first)
        for (int64_t j = 0; j < qCols; ++j)
          after.push_back(i * qCols + j);
    double d = relL2(bug, ref, &after);
    std::snprintf(name, sizeof name,
                  "attention=partial_tile_bug DIFFERS n=%lld", (long long)c.n);
    report(name, dtName(dt), d, dtThreshold(dt), d > dtThreshold(dt),
           "planted bug, rows at pos >= " +
               std::to_string((kvLen / 64) * 64) + ": must exceed the limit");
    // ...and every row before is bit-identical to the good kernel's.
    if (first > 0) {
      std::vector<size_t> before;
      for (int64_t i : rows)
        if (i < first)
          for (int64_t j = 0; j < qCols; ++j)
            before.push_back(i * qCols + j);
      HostT good = out;
      double same = 0;
      for (size_t e : before)
        same = std::max(same, std::fabs(bug.get(e) - good.get(e)));
      std::snprintf(name, sizeof name,
                    "partial_tile_bug == good before pos %lld", (long long)first);
      report(name, dtName(dt), same, 0, same == 0, "bug localised");
    }
  } else {
    double d = relL2(bug, out);
    std::snprintf(name, sizeof name,
                  "partial_tile_bug hidden at n=%lld (x64)", (long long)c.n);
    report(name, dtName(dt), d, 0, d == 0, "no partial tile: identical");
  }
}

// Issue 18 item 9: keys, values and queries at positions >= `from` made
// non-finite (v +inf/NaN/-inf, k inf/NaN, q NaN/-inf). A masked probability
// is 0 and 0 * inf is NaN, so a product over a whole key tile leaked them
// backwards. Every row before `from` must stay finite and bit-identical to
// the clean run (lazy_rescale: within the limit, since a poisoned row no
// longer votes for a rescale of its m-tile), every row from it non-finite.
void testAttentionNonFinite(DT dt, AttnCase c, int64_t from,
                            const char *variant) {
  const int64_t qCols = c.H * c.D, kvCols = c.KVH * c.D;
  const int64_t kvLen = c.qStart + c.n;
  HostT q = randomT(dt, c.n * qCols, -2.f, 2.f);
  HostT k = randomT(dt, kvLen * kvCols, -2.f, 2.f);
  HostT v = randomT(dt, kvLen * kvCols);
  auto run = [&] {
    Dev dQ(q), dK(k), dV(v);
    if (variant)
      LIB_CHECK(greta_gpu_set_variant(variant));
    HostT out = runAttention(dt, c, q, dQ, dK, dV);
    greta_gpu_reset_variants();
    return out;
  };
  HostT clean = run();
  for (int64_t p = from; p < kvLen; ++p)
    for (int64_t j = 0; j < kvCols; ++j) {
      v.set(p * kvCols + j, j % 3 == 0 ? INFINITY : j % 3 == 1 ? NAN : -INFINITY);
      k.set(p * kvCols + j, j % 2 ? NAN : INFINITY);
    }
  for (int64_t i = std::max<int64_t>(0, from - c.qStart); i < c.n; ++i)
    for (int64_t j = 0; j < qCols; ++j)
      q.set(i * qCols + j, j % 2 ? -INFINITY : NAN);
  HostT out = run();
  const bool lazy = variant && !std::strcmp(variant, "attention=lazy_rescale");
  const size_t sz = dtSize(dt);
  size_t nonFiniteBefore = 0, changedBefore = 0, finiteAfter = 0;
  std::vector<size_t> before;
  std::vector<double> cleanVal(out.n, 0.0);
  for (int64_t i = 0; i < c.n; ++i)
    for (int64_t j = 0; j < qCols; ++j) {
      const size_t e = i * qCols + j;
      const double x = out.get(e);
      if (c.qStart + i < from) {
        nonFiniteBefore += !std::isfinite(x);
        changedBefore +=
            std::memcmp(&out.bytes[e * sz], &clean.bytes[e * sz], sz) != 0;
        before.push_back(e);
        cleanVal[e] = clean.get(e);
      } else {
        finiteAfter += std::isfinite(x);
      }
    }
  char name[160], detail[160];
  std::snprintf(name, sizeof name, "attention%s%s later non-finite n=%lld D=%lld",
                variant ? " " : "", variant ? strchr(variant, '=') + 1 : "",
                (long long)c.n, (long long)c.D);
  double err = nonFiniteBefore ? INFINITY
               : lazy          ? (before.empty() ? 0 : relL2(out, cleanVal, &before))
                               : double(changedBefore);
  std::snprintf(detail, sizeof detail,
                "from pos %lld: %zu non-finite, %zu changed before; %zu finite after",
                (long long)from, nonFiniteBefore, changedBefore, finiteAfter);
  bool pass = !nonFiniteBefore && finiteAfter == 0 &&
              (lazy ? err < dtThreshold(dt) : changedBefore == 0);
  report(name, dtName(dt), err, lazy ? dtThreshold(dt) : 0, pass, detail);
}

} // namespace gpucheck
