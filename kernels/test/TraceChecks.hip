//===- TraceChecks.hip - the trace kernels' checks --------------------------===//
//
// The trace kernels: per-row SHA-256 and statistics, row gathers, top-5.
//
//===----------------------------------------------------------------------===//
#include "GpuKernelCheck.h"

#include <openssl/sha.h>

namespace gpucheck {

// --------------------------------------------------------------- tracing
// One launch over tensors of different row lengths (a block of the split
// kernel then holds rows of different lengths: the block runs as many steps
// as its longest row), aligned and unaligned strides, and out-of-range row
// indices (an all-ones digest and counts of -1).
void testTraceMixed(DT dt, const std::string &tag) {
  const size_t es = dtSize(dt);
  struct T { int64_t rows, cols, ld; };
  const std::vector<T> ts = {{5, 27, 27}, {40, 2048, 2048}, {3, 16000, 16001},
                             {9, 5632, 5632}, {2, 33, 40}};
  std::vector<HostT> host;
  std::vector<std::unique_ptr<Dev>> dev;
  std::vector<greta_gpu_trace_job> jobs;
  // Selected rows of tensor 0 (5 rows): -1 and 7 are out of range.
  const std::vector<int64_t> sel = {1, -1, 0, 7, 1};
  Dev dSel(sel.size() * 8);
  dSel.upload(sel.data(), sel.size() * 8);
  int64_t total = 0;
  for (const T &t : ts) {
    host.push_back(randomT(dt, t.rows * t.ld, -3.f, 3.f));
    host.back().set(0, 0.f);
    dev.push_back(std::make_unique<Dev>(host.back()));
    jobs.push_back({dev.back()->p, dtGpu(dt), 0, t.rows, t.cols, t.ld, nullptr,
                    t.rows, total});
    total += t.rows;
  }
  jobs.push_back({dev[0]->p, dtGpu(dt), 0, ts[0].rows, ts[0].cols, ts[0].ld,
                  dSel.as<int64_t>(), (int64_t)sel.size(), total});
  total += sel.size();
  Dev dRec(total * sizeof(greta_gpu_row_record));
  std::vector<greta_gpu_row_record> hRec(total);
  LIB_CHECK(greta_gpu_trace_batch(jobs.data(), (int)jobs.size(),
                                  dRec.as<greta_gpu_row_record>(), nullptr,
                                  gStream));
  HIP_CHECK(hipMemcpyAsync(hRec.data(), dRec.p,
                           total * sizeof(greta_gpu_row_record),
                           hipMemcpyDeviceToHost, gStream));
  HIP_CHECK(hipStreamSynchronize(gStream));
  int bad = 0;
  for (size_t k = 0; k < jobs.size(); ++k) {
    const greta_gpu_trace_job &J = jobs[k];
    const HostT &h = host[k < ts.size() ? k : 0];
    for (int64_t j = 0; j < J.n_sel; ++j) {
      const greta_gpu_row_record &r = hRec[J.record_offset + j];
      int64_t row = k < ts.size() ? j : sel[j];
      if (row < 0 || row >= J.rows) {
        bool ones = true;
        for (uint8_t b : r.sha256)
          ones &= b == 0xff;
        bad += !ones || r.nz_count != -1 || r.nan_count != -1;
        continue;
      }
      uint8_t md[32];
      SHA256(&h.bytes[row * J.ld * es], J.cols * es, md);
      int64_t nz = 0;
      for (int64_t c = 0; c < J.cols; ++c)
        nz += h.val[row * J.ld + c] != 0;
      bad += std::memcmp(md, r.sha256, 32) != 0 || r.nz_count != nz;
    }
  }
  report("trace mixed lengths, bad indices" + tag, dtName(dt), bad, 0,
         bad == 0, std::to_string(total) + " rows, 6 jobs");
}

// Under each SHA-256 kernel (trace=one_thread_per_row, split_schedule and
// the default, which picks one by launch size).
void testTrace(DT dt, const char *variant) {
  LIB_CHECK(greta_gpu_set_variant(variant));
  const std::string tag = std::string(" [") + (std::strchr(variant, '=') + 1) + "]";
  const size_t es = dtSize(dt);
  std::vector<int64_t> colsList = {1, 27, 28, 32, 33, 2048, 4093, 5632};
  const float specials[] = {0.f, -0.f, NAN, INFINITY, -INFINITY};
  for (int64_t cols : colsList) {
    for (int aligned = 0; aligned < 2; ++aligned) {
      // aligned: ld rounded up to 16 bytes; else ld = cols + 1 (odd rows
      // start off 16-byte boundaries: the byte-load path).
      int64_t ld = aligned ? ((cols * es + 15) / 16 * 16) / es : cols + 1;
      const int64_t rows = 41;
      HostT x = randomT(dt, rows * ld, -3.f, 3.f);
      std::uniform_int_distribution<int64_t> ur(0, rows * ld - 1);
      for (int s = 0; s < 40; ++s)
        x.set(ur(gRng), specials[s % 5]);
      for (int64_t c = 0; c < cols; ++c) // row 3: all zero; row 4: all NaN
        x.set(3 * ld + c, 0.f), x.set(4 * ld + c, NAN);
      Dev dX(x);
      // Job 0: every row; job 1: selected rows (out of order, repeats).
      std::vector<int64_t> sel = {40, 3, 4, 0, 17, 17, 9};
      Dev dSel(sel.size() * 8);
      dSel.upload(sel.data(), sel.size() * 8);
      const int64_t total = rows + sel.size();
      Dev dRec(total * sizeof(greta_gpu_row_record));
      greta_gpu_row_record *hRec = nullptr;
      LIB_CHECK(greta_gpu_host_alloc(reinterpret_cast<void **>(&hRec),
                                     total * sizeof(greta_gpu_row_record)));
      std::memset(hRec, 0xAB, total * sizeof(greta_gpu_row_record));
      greta_gpu_trace_job jobs[2] = {
          {dX.p, dtGpu(dt), GRETA_GPU_TRACE_STATS, rows, cols, ld, nullptr,
           rows, 0},
          {dX.p, dtGpu(dt), GRETA_GPU_TRACE_STATS, rows, cols, ld,
           dSel.as<int64_t>(), (int64_t)sel.size(), rows}};
      LIB_CHECK(greta_gpu_trace_batch(jobs, 2, dRec.as<greta_gpu_row_record>(),
                                      hRec, gStream));
      HIP_CHECK(hipStreamSynchronize(gStream)); // the test's own sync
      int shaBad = 0, cntBad = 0, fpBad = 0;
      for (int64_t r = 0; r < total; ++r) {
        int64_t row = r < rows ? r : sel[r - rows];
        const uint8_t *bytes = &x.bytes[row * ld * es];
        uint8_t md[32];
        SHA256(bytes, cols * es, md);
        shaBad += std::memcmp(md, hRec[r].sha256, 32) != 0;
        int64_t nz = 0, nan = 0, inf = 0;
        double mn = INFINITY, mx = -INFINITY, sum = 0, sq = 0;
        for (int64_t c = 0; c < cols; ++c) {
          double v = x.val[row * ld + c];
          nz += v != 0;
          if (std::isnan(v)) {
            ++nan;
          } else {
            inf += std::isinf(v);
            mn = std::min(mn, v);
            mx = std::max(mx, v);
          }
          sum += v;
          sq += v * v;
        }
        cntBad += hRec[r].nz_count != nz || hRec[r].nan_count != nan ||
                  hRec[r].inf_count != inf;
        if (nan == cols) {
          mn = mx = NAN;
        }
        double mean = sum / cols, l2 = std::sqrt(sq);
        auto same = [](double a, double b) {
          if (std::isnan(a) || std::isnan(b))
            return std::isnan(a) && std::isnan(b);
          if (std::isinf(a) || std::isinf(b))
            return a == b;
          return std::fabs(a - b) <= 1e-9 * std::max(1.0, std::fabs(b));
        };
        fpBad += !same(hRec[r].min, mn) || !same(hRec[r].max, mx) ||
                 !same(hRec[r].mean, mean) || !same(hRec[r].l2, l2);
      }
      // The same jobs through a job table in device memory: same records.
      Dev dJobs(sizeof jobs);
      dJobs.upload(jobs, sizeof jobs);
      Dev dRec2(total * sizeof(greta_gpu_row_record));
      std::vector<greta_gpu_row_record> hRec2(total);
      LIB_CHECK(greta_gpu_trace_batch_device(
          dJobs.as<greta_gpu_trace_job>(), 2, rows, GRETA_GPU_TRACE_STATS,
          dRec2.as<greta_gpu_row_record>(), nullptr, total, gStream));
      HIP_CHECK(hipMemcpyAsync(hRec2.data(), dRec2.p,
                               total * sizeof(greta_gpu_row_record),
                               hipMemcpyDeviceToHost, gStream));
      HIP_CHECK(hipStreamSynchronize(gStream));
      int devBad = 0;
      for (int64_t r = 0; r < total; ++r)
        devBad += std::memcmp(&hRec2[r], &hRec[r], 48) != 0; // sha + counts
      char name[128];
      std::snprintf(name, sizeof name, "trace cols=%lld %s: device job table",
                    (long long)cols, aligned ? "aligned" : "unaligned");
      report(name + tag, dtName(dt), devBad, 0, devBad == 0,
             "== host-table batch");
      std::snprintf(name, sizeof name, "trace cols=%lld %s: sha256==OpenSSL",
                    (long long)cols, aligned ? "aligned" : "unaligned");
      report(name + tag, dtName(dt), shaBad, 0, shaBad == 0,
             std::to_string(total) + " rows");
      std::snprintf(name, sizeof name, "trace cols=%lld %s: counts+fingerprint",
                    (long long)cols, aligned ? "aligned" : "unaligned");
      report(name + tag, dtName(dt), cntBad + fpBad, 0, cntBad + fpBad == 0,
             "nz/nan/inf exact, fp 1e-9");
      LIB_CHECK(greta_gpu_host_free(hRec));
    }
  }
  testTraceMixed(dt, tag);
  LIB_CHECK(greta_gpu_set_variant("trace=default"));
}

// Top-5 ids per row (the logits records): against a host ranking with the
// CPU runtime's order (highest first, NaN after every number, ties by the lower
// id), on rows with many ties (values on a coarse grid), NaNs, short rows.
// greta_gpu_gather_rows: selected rows of several tensors (aligned rows,
// odd-length rows at odd strides, all rows without an index) into one
// buffer, byte for byte.
void testGather(DT dt) {
  const size_t es = dtSize(dt);
  struct Case { int64_t rows, cols, ld; bool index; };
  // Rows longer than a 4 KB piece (2048 f32, 32000), aligned or not.
  std::vector<Case> cases = {{40, 2048, 2048, true},  {9, 37, 41, true},
                             {5, 100, 100, false},    {33, 1000, 1003, true},
                             {9, 32000, 32000, true}, {9, 20001, 20003, true}};
  std::vector<int64_t> sel = {0, 4, 3, 8};
  Dev dSel(sel.size() * 8);
  dSel.upload(sel.data(), sel.size() * 8);
  std::vector<std::unique_ptr<Dev>> inputs;
  std::vector<HostT> hosts;
  std::vector<greta_gpu_gather_job> jobs;
  int64_t off = 0;
  for (const Case &c : cases) {
    hosts.push_back(randomT(dt, c.rows * c.ld));
    inputs.push_back(std::make_unique<Dev>(hosts.back()));
    int64_t n = c.index ? static_cast<int64_t>(sel.size()) : c.rows;
    jobs.push_back({inputs.back()->p, c.cols * static_cast<int64_t>(es),
                    c.ld * static_cast<int64_t>(es),
                    c.index ? dSel.as<int64_t>() : nullptr, n, off});
    off += n * c.cols * es + 16 * (jobs.size() % 2); // gaps between tensors
  }
  Dev dOut(off);
  LIB_CHECK(greta_gpu_gather_rows(jobs.data(), static_cast<int>(jobs.size()),
                                  dOut.p, gStream));
  std::vector<uint8_t> got(off);
  HIP_CHECK(hipMemcpyAsync(got.data(), dOut.p, off, hipMemcpyDeviceToHost,
                           gStream));
  HIP_CHECK(hipStreamSynchronize(gStream));
  int64_t bad = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case &c = cases[i];
    for (int64_t j = 0; j < jobs[i].n_sel; ++j) {
      int64_t row = c.index ? sel[j] : j;
      bad += std::memcmp(got.data() + jobs[i].dst_offset + j * c.cols * es,
                         hosts[i].bytes.data() + row * c.ld * es,
                         c.cols * es) != 0;
    }
  }
  report("gather rows of 6 tensors == host rows", dtName(dt), bad, 0, bad == 0,
         "aligned, odd strides, no index, long rows");
  // The same gather carried by an rms_norm launch: the norm's output and
  // the gathered bytes equal those of the two separate calls (the packed
  // kernel at 2048 columns, the scalar one at 37).
  for (int64_t cols : {2048, 37}) {
    const int64_t rows = 33;
    HostT x = randomT(dt, rows * cols, -2.f, 2.f),
          w = randomT(dt, cols, 0.5f, 1.5f);
    Dev dX(x), dW(w), dSep(rows * cols * es), dFused(rows * cols * es),
        dOut2(off);
    LIB_CHECK(GPU_CALL(dt, rms_norm, P(dX), cols, P(dW), rows, cols, 1e-5f,
                       P(dSep), cols, gStream));
    LIB_CHECK(GPU_CALL(dt, rms_norm_gather, P(dX), cols, P(dW), rows, cols,
                       1e-5f, P(dFused), cols, jobs.data(),
                       static_cast<int>(jobs.size()), dOut2.p, gStream));
    std::vector<uint8_t> sep(rows * cols * es), fused(sep.size()),
        got2(off);
    HIP_CHECK(hipMemcpyAsync(sep.data(), dSep.p, sep.size(),
                             hipMemcpyDeviceToHost, gStream));
    HIP_CHECK(hipMemcpyAsync(fused.data(), dFused.p, fused.size(),
                             hipMemcpyDeviceToHost, gStream));
    HIP_CHECK(hipMemcpyAsync(got2.data(), dOut2.p, off, hipMemcpyDeviceToHost,
                             gStream));
    HIP_CHECK(hipStreamSynchronize(gStream));
    int64_t diff = (sep != fused) + (got2 != got);
    report("rms_norm_gather 33x" + std::to_string(cols) +
               " == rms_norm, then gather_rows",
           dtName(dt), diff, 0, diff == 0, "norm output and gathered bytes");
  }
  greta_gpu_gather_job badJob = jobs[0];
  badJob.n_sel = -1;
  bool refused = greta_gpu_gather_rows(&badJob, 1, dOut.p, gStream) ==
                 GRETA_GPU_ERR_INVALID_ARGUMENT;
  report("gather refuses a negative row count", dtName(dt), !refused, 0,
         refused);
}

void testTop5(DT dt) {
  // ld = cols + 3: misaligned rows (element loads); a multiple of 8: the
  // 16-byte loads, with a tail when cols is not a multiple of the chunk.
  // Each case runs twice: one block per row into device memory, and with
  // scratch (rows of >= 2048 columns split over blocks, a second launch
  // merging them) into mapped host memory, as the session ranks logits.
  for (int64_t cols : {3, 5, 37, 1000, 5000, 32000, 32003})
  for (int64_t ld : {cols + 3, (cols + 7) / 8 * 8}) {
    const int64_t rows = 9;
    HostT x = randomT(dt, rows * ld, -4.f, 4.f);
    std::uniform_int_distribution<int> grid(-8, 8);
    for (int64_t i = 0; i < rows * ld; ++i)
      if (i % 3 == 0)
        x.set(i, grid(gRng) * 0.5f); // exact ties in every dtype
    for (int64_t c = 0; c < cols; c += 2)
      x.set(2 * ld + c, NAN); // row 2: half NaN
    for (int64_t c = 0; c < cols; ++c)
      x.set(5 * ld + c, c < 2 ? 1.f : NAN); // row 5: 2 numbers, then NaNs
    for (int64_t c = 0; c < cols; ++c)
      x.set(7 * ld + c, c == cols - 1 ? 3.f : 0.f); // row 7: ties, -0 and +0
    for (int64_t c = 1; c < cols; c += 2)
      x.set(7 * ld + c, -0.f);
    Dev dX(x);
    std::vector<int64_t> sel = {8, 2, 5, 0, 5, 7};
    Dev dSel(sel.size() * 8);
    dSel.upload(sel.data(), sel.size() * 8);
    std::vector<int32_t> want(sel.size() * 5);
    for (size_t j = 0; j < sel.size(); ++j) {
      std::vector<int32_t> ids(cols);
      for (int64_t c = 0; c < cols; ++c)
        ids[c] = static_cast<int32_t>(c);
      const double *v = &x.val[sel[j] * ld];
      size_t k = std::min<size_t>(5, ids.size());
      std::partial_sort(ids.begin(), ids.begin() + k, ids.end(),
                        [&](int32_t a, int32_t b) {
                          bool na = std::isnan(v[a]), nb = std::isnan(v[b]);
                          if (na != nb)
                            return nb;
                          if (!na && v[a] != v[b])
                            return v[a] > v[b];
                          return a < b;
                        });
      for (size_t i = 0; i < 5; ++i)
        want[j * 5 + i] = i < k ? ids[i] : -1;
    }
    Dev dOut(want.size() * 4);
    LIB_CHECK(greta_gpu_top5_rows(dX.p, dtGpu(dt), rows, cols, ld,
                                  dSel.as<int64_t>(), sel.size(),
                                  dOut.as<int32_t>(), nullptr, gStream));
    std::vector<int32_t> got(want.size());
    HIP_CHECK(hipMemcpyAsync(got.data(), dOut.p, got.size() * 4,
                             hipMemcpyDeviceToHost, gStream));
    HIP_CHECK(hipStreamSynchronize(gStream));
    int bad = 0;
    for (size_t i = 0; i < want.size(); ++i)
      bad += got[i] != want[i];
    char name[112];
    std::snprintf(name, sizeof name,
                  "top5 cols=%lld ld=%lld: ids==host ranking",
                  (long long)cols, (long long)ld);
    report(name, dtName(dt), bad, 0, bad == 0, "ties, NaN, +-0, short rows");

    int64_t scratchBytes = greta_gpu_top5_scratch_bytes(sel.size(), cols);
    Dev dScratch(std::max<int64_t>(scratchBytes, 8));
    void *hMapped = nullptr, *dMapped = nullptr;
    LIB_CHECK(greta_gpu_host_alloc_mapped(&hMapped, &dMapped, want.size() * 4));
    std::fill_n(static_cast<int32_t *>(hMapped), want.size(), -7);
    LIB_CHECK(greta_gpu_top5_rows(dX.p, dtGpu(dt), rows, cols, ld,
                                  dSel.as<int64_t>(), sel.size(),
                                  static_cast<int32_t *>(dMapped), dScratch.p,
                                  gStream));
    HIP_CHECK(hipStreamSynchronize(gStream));
    bad = 0;
    for (size_t i = 0; i < want.size(); ++i)
      bad += static_cast<int32_t *>(hMapped)[i] != want[i];
    LIB_CHECK(greta_gpu_host_free(hMapped));
    std::snprintf(name, sizeof name,
                  "top5 cols=%lld ld=%lld split%s, mapped: ids==host ranking",
                  (long long)cols, (long long)ld,
                  scratchBytes ? "" : " (none)");
    report(name, dtName(dt), bad, 0, bad == 0, "");
  }
}

} // namespace gpucheck
