//===- PagedChecks.hip - The paged KV cache's kernels vs the host ---------===//
//
// greta-gpu-kernel-test --paged (and the full run): paged_kv_append through
// a shuffled block table, paged_gather reading the rows back, and the
// split-K paged_attention against the double reference (attnRef) at block
// sizes 16, 7 and 1 and query positions at and around page boundaries; the
// planted variants (page_boundary_bug, stale_page_bug) must be detected as
// wrong exactly where they plant.
//
//===----------------------------------------------------------------------===//
#include "GpuKernelCheck.h"

namespace gpucheck {
namespace {

struct Paged {
  int64_t bs, pages, kvCols;
  std::vector<int32_t> table; // logical -> physical, a shuffled permutation
  Dev dTable, dK, dV;
  Paged(DT dt, int64_t len, int64_t blockSize, int64_t cols)
      : bs(blockSize), pages((len + blockSize - 1) / blockSize + 1),
        kvCols(cols), table(pages), dTable(pages * 4),
        dK(pages * blockSize * cols * dtSize(dt)),
        dV(pages * blockSize * cols * dtSize(dt)) {
    for (int64_t i = 0; i < pages; ++i)
      table[i] = static_cast<int32_t>(i);
    std::shuffle(table.begin(), table.end(), gRng);
    dTable.upload(table.data(), pages * 4);
    HIP_CHECK(hipMemset(dK.p, 0, dK.bytes));
    HIP_CHECK(hipMemset(dV.p, 0, dV.bytes));
  }
};

/// Appends k/v rows [0, len) in calls of `chunk` rows (the planted append
/// variant if set), as chunked prefill and decode steps do.
void appendAll(DT dt, Paged &pg, const Dev &dK, const Dev &dV, int64_t len,
               int64_t chunk, const char *variant) {
  std::vector<int64_t> pos(len);
  for (int64_t i = 0; i < len; ++i)
    pos[i] = i;
  Dev dPos(len * 8);
  dPos.upload(pos.data(), len * 8);
  if (variant)
    LIB_CHECK(greta_gpu_set_variant(variant));
  size_t es = dtSize(dt);
  for (int64_t b = 0; b < len; b += chunk) {
    int64_t n = std::min(chunk, len - b);
    AnyPtr k{static_cast<uint8_t *>(dK.p) + b * pg.kvCols * es};
    AnyPtr v{static_cast<uint8_t *>(dV.p) + b * pg.kvCols * es};
    LIB_CHECK(GPU_CALL(dt, paged_kv_append, k, pg.kvCols, v, pg.kvCols,
                       dPos.as<int64_t>() + b, n, pg.kvCols,
                       pg.dTable.as<int32_t>(), pg.bs, P(pg.dK), P(pg.dV),
                       gStream));
  }
  greta_gpu_reset_variants();
}

/// The rows of positions [0, len) read back through the table.
HostT gatherAll(DT dt, Paged &pg, const Dev &pool, int64_t len) {
  Dev out(len * pg.kvCols * dtSize(dt));
  LIB_CHECK(GPU_CALL(dt, paged_gather, P(pool), pg.dTable.as<int32_t>(), pg.bs,
                     0, len, pg.kvCols, P(out), pg.kvCols, gStream));
  return fetch(out, dt, len * pg.kvCols);
}
} // namespace

void testPagedAttention(DT dt, AttnCase c, int64_t bs) {
  const int64_t qCols = c.H * c.D, kvCols = c.KVH * c.D;
  const int64_t len = c.qStart + c.n;
  HostT q = randomT(dt, c.n * qCols, -2.f, 2.f);
  HostT k = randomT(dt, len * kvCols, -2.f, 2.f);
  HostT v = randomT(dt, len * kvCols);
  Dev dQ(q), dK(k), dV(v);
  char name[160];
  auto label = [&](const char *what) {
    std::snprintf(name, sizeof name, "paged %s n=%lld@%lld bs=%lld H=%lld/%lld D=%lld",
                  what, (long long)c.n, (long long)c.qStart, (long long)bs,
                  (long long)c.H, (long long)c.KVH, (long long)c.D);
    return std::string(name);
  };
  // Appended one row a call past the first chunk (decode steps).
  Paged pg(dt, len, bs, kvCols);
  appendAll(dt, pg, dK, dV, len, std::max<int64_t>(c.qStart, 1), nullptr);
  HostT kBack = gatherAll(dt, pg, pg.dK, len);
  HostT vBack = gatherAll(dt, pg, pg.dV, len);
  bool same = kBack.bytes == k.bytes && vBack.bytes == v.bytes;
  report(label("append+gather"), dtName(dt), same ? 0 : 1, 0, same,
         "rows read back through the table byte-equal");

  std::vector<int64_t> rows(c.n);
  for (int64_t i = 0; i < c.n; ++i)
    rows[i] = i;
  std::vector<double> ref(c.n * qCols, 0.0);
  attnRef(q, k, v, c.qStart, c.H, c.KVH, c.D, 1.0 / std::sqrt((double)c.D),
          rows, ref, /*window=*/0);
  auto run = [&](const char *variant) {
    int64_t bytes = greta_gpu_paged_attention_scratch_bytes(c.n, c.qStart, c.H,
                                                            c.KVH, c.D);
    Dev scratch(bytes), out(c.n * qCols * dtSize(dt));
    if (variant)
      LIB_CHECK(greta_gpu_set_variant(variant));
    LIB_CHECK(GPU_CALL(dt, paged_attention, P(dQ), qCols, P(pg.dK), P(pg.dV),
                       pg.dTable.as<int32_t>(), bs, c.n, c.qStart, c.H, c.KVH,
                       c.D, static_cast<float>(1.0 / std::sqrt((double)c.D)),
                       P(out), qCols, scratch.p, bytes, gStream));
    greta_gpu_reset_variants();
    return fetch(out, dt, c.n * qCols);
  };
  HostT out = run(nullptr);
  double err = relL2(out, ref);
  report(label("attention"), dtName(dt), err, dtThreshold(dt),
         err < dtThreshold(dt));
  HostT again = run(nullptr);
  report(label("attention run twice"), dtName(dt), again.bytes != out.bytes, 0,
         again.bytes == out.bytes, "byte-equal outputs");
  // The planted off-by-one: wrong for every query that sees a key opening
  // a page (position >= bs), right before.
  HostT bug = run("paged_attention=page_boundary_bug");
  double worst = 0, before = 0;
  for (int64_t i = 0; i < c.n; ++i) {
    double e = 0, r = 0;
    for (int64_t j = 0; j < qCols; ++j) {
      double d = bug.get(i * qCols + j) - ref[i * qCols + j];
      e += d * d;
      r += ref[i * qCols + j] * ref[i * qCols + j];
    }
    double rel = std::sqrt(e / std::max(r, 1e-30));
    if (c.qStart + i >= bs)
      worst = std::max(worst, rel);
    else
      before = std::max(before, rel);
  }
  if (len > bs)
    report(label("page_boundary_bug detected"), dtName(dt), worst,
           dtThreshold(dt), worst > dtThreshold(dt) && before < dtThreshold(dt),
           "wrong from position bs on, right before");
}

void testPagedStaleAppend(DT dt, int64_t len, int64_t bs) {
  const int64_t kvCols = 64;
  HostT k = randomT(dt, len * kvCols), v = randomT(dt, len * kvCols);
  Dev dK(k), dV(v);
  Paged pg(dt, len, bs, kvCols);
  appendAll(dt, pg, dK, dV, len, 1, "paged_kv_append=stale_page_bug");
  HostT back = gatherAll(dt, pg, pg.dK, len);
  // Exactly the rows that open a page (position % bs == 0, > 0) differ.
  int64_t wrongAt = 0, rightElsewhere = 1;
  size_t es = dtSize(dt);
  for (int64_t p = 0; p < len; ++p) {
    bool eq = std::memcmp(&back.bytes[p * kvCols * es], &k.bytes[p * kvCols * es],
                          kvCols * es) == 0;
    if (p > 0 && p % bs == 0)
      wrongAt += !eq;
    else
      rightElsewhere &= eq;
  }
  int64_t opening = (len - 1) / bs;
  char name[160];
  std::snprintf(name, sizeof name, "paged stale_page_bug detected len=%lld bs=%lld",
                (long long)len, (long long)bs);
  report(name, dtName(dt), static_cast<double>(wrongAt),
         static_cast<double>(opening), wrongAt == opening && rightElsewhere,
         "the rows opening a page read back wrong, no other");
}

void runPagedChecks(bool quick) {
  // Bad arguments: a clear error, nothing launched.
  {
    Dev a(4096), t(64);
    greta_gpu_status st = greta_gpu_paged_kv_append_f16(
        P(a), 8, P(a), 8, nullptr, 0, 8, t.as<int32_t>(), 0, P(a), P(a),
        gStream);
    report("paged_kv_append block_size 0 -> INVALID_ARGUMENT", "-", st, 0,
           st == GRETA_GPU_ERR_INVALID_ARGUMENT &&
               std::strstr(greta_gpu_last_error(), "block_size 0"),
           greta_gpu_last_error());
    st = greta_gpu_paged_attention_f16(P(a), 64, P(a), P(a), t.as<int32_t>(),
                                       16, 1, 0, 3, 2, 32, 1.f, P(a), 64,
                                       P(a), 4096, gStream);
    report("paged_attention 3 heads / 2 kv -> INVALID_ARGUMENT", "-", st, 0,
           st == GRETA_GPU_ERR_INVALID_ARGUMENT, greta_gpu_last_error());
    st = greta_gpu_paged_attention_f16(P(a), 64, P(a), P(a), t.as<int32_t>(),
                                       16, 1, 0, 2, 2, 32, 1.f, P(a), 64,
                                       P(a), 4, gStream);
    report("paged_attention small scratch -> INVALID_ARGUMENT", "-", st, 0,
           st == GRETA_GPU_ERR_INVALID_ARGUMENT &&
               std::strstr(greta_gpu_last_error(), "scratch"),
           greta_gpu_last_error());
  }
  for (DT dt : {DT::F32, DT::F16, DT::BF16})
    for (int64_t bs : {int64_t{16}, int64_t{7}, int64_t{1}}) {
      // Decode steps at and around page boundaries, a chunk, TinyLlama's
      // heads and llama-tiny's.
      for (int64_t at : {bs - 1, bs, bs + 1, 3 * bs, int64_t{100}})
        testPagedAttention(dt, {1, at, 32, 4, 64}, bs);
      testPagedAttention(dt, {20, 45, 8, 4, 32}, bs);
      testPagedAttention(dt, {1, 300, 8, 2, 128}, bs);
      if (!quick)
        testPagedAttention(dt, {1, 4000, 32, 4, 64}, bs);
      testPagedStaleAppend(dt, 5 * bs + 3, bs);
    }
}

} // namespace gpucheck
