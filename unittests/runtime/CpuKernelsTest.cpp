//===- KernelsTest.cpp - CPU kernels and Session vs references --*- C++ -*-===//
#include "greta/rt/Sha256.h"
#include "greta/rt/CInterface.h"
#include "greta/rt/Half.h"
#include "greta/rt/Session.h"

#include "TestUtil.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

using namespace greta::rt;

namespace {

/// A [rows, cols] matrix stored with row stride `ld` >= cols (padding
/// poisoned with NaN so a kernel reading it shows up) at a nonzero offset.
template <typename T> struct Buf {
  std::vector<T> storage;
  int64_t rows, cols, ld, off = 3;
  Buf(int64_t r, int64_t c, int64_t pad = 0)
      : storage(3 + r * (c + pad) + 1, NAN), rows(r), cols(c), ld(c + pad) {}
  T &at(int64_t i, int64_t j) { return storage[off + i * ld + j]; }
  MemRef<T, 2> ref() {
    return {storage.data(), storage.data(), off, {rows, cols}, {ld, 1}};
  }
  void fill(Rng &rng, double scale = 1.0) {
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j)
        at(i, j) = static_cast<T>(rng.uniform() * scale);
  }
};
template <typename T> MemRef<T, 1> ref1(std::vector<T> &v) {
  return {v.data(), v.data(), 0, {static_cast<int64_t>(v.size())}, {1}};
}

/// A session without weights (kernels that need none) made current.
struct CurrentSession {
  std::unique_ptr<SafeTensors> st;
  std::unique_ptr<Session> s;
  TempDir dir;
  explicit CurrentSession(DType dt = DType::F32,
                          std::vector<TensorToWrite> weights = {},
                          std::vector<ParamSpec> params = {}) {
    std::string err, path = dir.path() + "/w.safetensors";
    EXPECT_TRUE(writeSafeTensors(path, weights, DType::F32, err)) << err;
    st = SafeTensors::open(path, err);
    EXPECT_TRUE(st) << err;
    s = Session::create(*st, params, dt, err);
    EXPECT_TRUE(s) << err;
    Session::setCurrent(s.get());
  }
  ~CurrentSession() { Session::setCurrent(nullptr); }
};

TEST(Kernels, EmbeddingAndBadId) {
  CurrentSession cs;
  Rng rng(1);
  Buf<float> table(10, 6), out(3, 6, 2);
  table.fill(rng);
  std::vector<int64_t> ids = {9, 0, 4};
  auto t = table.ref(), o = out.ref();
  auto id = ref1(ids);
  _mlir_ciface_greta_cpu_embedding_f32(&t, &id, &o);
  EXPECT_EQ(cs.s->error(), "");
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 6; ++j)
      EXPECT_EQ(out.at(i, j), table.at(ids[i], j));
  ids[1] = 10;
  _mlir_ciface_greta_cpu_embedding_f32(&t, &id, &o);
  EXPECT_EQ(cs.s->error(), "embedding: token id 10 at row 1 is outside the "
                           "vocabulary (10 tokens)");
}

template <typename T> void checkRmsNorm(double tol) {
  CurrentSession cs(std::is_same_v<T, float> ? DType::F32 : DType::F64);
  Rng rng(2);
  Buf<T> x(5, 64, 3), out(5, 64);
  x.fill(rng, 3.0);
  std::vector<T> w(64);
  for (auto &v : w)
    v = static_cast<T>(1 + 0.5 * rng.uniform());
  auto xr = x.ref(), orf = out.ref();
  auto wr = ref1(w);
  if constexpr (std::is_same_v<T, float>)
    _mlir_ciface_greta_cpu_rms_norm_f32(&xr, &wr, 1e-5, &orf);
  else
    _mlir_ciface_greta_cpu_rms_norm_f64(&xr, &wr, 1e-5, &orf);
  for (int i = 0; i < 5; ++i) {
    double ss = 0;
    for (int j = 0; j < 64; ++j)
      ss += double(x.at(i, j)) * x.at(i, j);
    double r = 1 / std::sqrt(ss / 64 + 1e-5);
    for (int j = 0; j < 64; ++j) {
      double want = double(x.at(i, j)) * r * w[j];
      EXPECT_NEAR(out.at(i, j), want, tol * (1 + std::fabs(want)));
    }
  }
  EXPECT_EQ(cs.s->error(), "");
}
TEST(Kernels, RmsNorm) {
  checkRmsNorm<float>(1e-6);
  checkRmsNorm<double>(1e-14);
}

template <typename T> void checkLinear(double tol) {
  CurrentSession cs;
  Rng rng(3);
  Buf<T> x(7, 33, 5), w(19, 33, 1), out(7, 19, 2);
  x.fill(rng);
  w.fill(rng);
  std::vector<T> bias(19);
  for (auto &b : bias)
    b = static_cast<T>(rng.uniform());
  auto xr = x.ref(), wr = w.ref(), orf = out.ref();
  auto br = ref1(bias);
  for (int withBias = 0; withBias < 2; ++withBias) {
    if constexpr (std::is_same_v<T, float>) {
      if (withBias)
        _mlir_ciface_greta_cpu_linear_bias_f32(&xr, &wr, &br, &orf);
      else
        _mlir_ciface_greta_cpu_linear_f32(&xr, &wr, &orf);
    } else {
      if (withBias)
        _mlir_ciface_greta_cpu_linear_bias_f64(&xr, &wr, &br, &orf);
      else
        _mlir_ciface_greta_cpu_linear_f64(&xr, &wr, &orf);
    }
    for (int i = 0; i < 7; ++i)
      for (int n = 0; n < 19; ++n) {
        double want = withBias ? bias[n] : 0;
        for (int k = 0; k < 33; ++k)
          want += double(x.at(i, k)) * w.at(n, k);
        EXPECT_NEAR(out.at(i, n), want, tol);
      }
  }
  // A shape mismatch is an error, not a crash.
  Buf<T> bad(7, 18);
  auto bd = bad.ref();
  if constexpr (std::is_same_v<T, float>)
    _mlir_ciface_greta_cpu_linear_f32(&xr, &wr, &bd);
  else
    _mlir_ciface_greta_cpu_linear_f64(&xr, &wr, &bd);
  EXPECT_NE(cs.s->error().find("does not give out [7, 18]"), std::string::npos)
      << cs.s->error();
}
TEST(Kernels, Linear) {
  checkLinear<float>(1e-5);
  checkLinear<double>(1e-12);
}

TEST(Kernels, InnermostStrideMustBeOne) {
  CurrentSession cs;
  std::vector<float> a(16, 1), b(16, 1), c(16);
  MemRef<float, 2> ar{a.data(), a.data(), 0, {4, 2}, {4, 2}};
  MemRef<float, 2> br{b.data(), b.data(), 0, {4, 2}, {2, 1}};
  MemRef<float, 2> cr{c.data(), c.data(), 0, {4, 2}, {2, 1}};
  _mlir_ciface_greta_cpu_add_f32(&ar, &br, &cr);
  EXPECT_NE(cs.s->error().find("'lhs' has innermost stride 2"),
            std::string::npos)
      << cs.s->error();
}

/// HF's rotate-half RoPE, with inv_freq and the angle rounded to f32 as HF
/// does, evaluated in double.
double ropeRef(const float *x, int64_t i, int64_t pos, int64_t d,
               double theta) {
  int64_t half = d / 2, f = i % half;
  float invFreq = 1.0f / std::pow(static_cast<float>(theta),
                                  static_cast<float>(2 * f) / float(d));
  float angle = static_cast<float>(pos) * invFreq;
  double c = std::cos(double(angle)), s = std::sin(double(angle));
  return i < half ? x[i] * c - x[i + half] * s : x[i] * c + x[i - half] * s;
}

TEST(Kernels, RopeMatchesHF) {
  CurrentSession cs;
  Rng rng(4);
  const int64_t d = 16, heads = 3;
  Buf<float> x(6, d * heads, 4), out(6, d * heads);
  x.fill(rng);
  std::vector<int64_t> pos = {0, 1, 2, 826, 1000, 1652};
  auto xr = x.ref(), orf = out.ref();
  auto pr = ref1(pos);
  _mlir_ciface_greta_cpu_rope_f32(&xr, &pr, 10000.0, d, &orf);
  EXPECT_EQ(cs.s->error(), "");
  for (int r = 0; r < 6; ++r)
    for (int h = 0; h < heads; ++h)
      for (int i = 0; i < d; ++i)
        EXPECT_NEAR(out.at(r, h * d + i),
                    ropeRef(&x.at(r, h * d), i, pos[r], d, 10000.0), 1e-5)
            << r << " " << h << " " << i;
  // Position 0 is the identity.
  for (int i = 0; i < d * heads; ++i)
    EXPECT_EQ(out.at(0, i), x.at(0, i));
  // In place (out aliases in) gives the same result.
  Buf<float> y = x;
  auto yr = y.ref();
  _mlir_ciface_greta_cpu_rope_f32(&yr, &pr, 10000.0, d, &yr);
  for (int r = 0; r < 6; ++r)
    for (int i = 0; i < d * heads; ++i)
      EXPECT_EQ(y.at(r, i), out.at(r, i));
  _mlir_ciface_greta_cpu_rope_f32(&xr, &pr, 10000.0, 5, &orf);
  EXPECT_NE(cs.s->error().find("head dim 5"), std::string::npos);
}

/// Naive causal GQA attention in double over rows at positions 0..S-1.
std::vector<double> attentionRef(Buf<float> &q, Buf<float> &k, Buf<float> &v,
                                 int64_t nh, int64_t nkv, int64_t d,
                                 double scale) {
  int64_t s = q.rows;
  std::vector<double> out(s * nh * d, 0);
  for (int64_t h = 0; h < nh; ++h) {
    int64_t g = h / (nh / nkv);
    for (int64_t i = 0; i < s; ++i) {
      std::vector<double> w(i + 1);
      double mx = -INFINITY, sum = 0;
      for (int64_t j = 0; j <= i; ++j) {
        double dot = 0;
        for (int64_t c = 0; c < d; ++c)
          dot += double(q.at(i, h * d + c)) * k.at(j, g * d + c);
        w[j] = dot * scale;
        mx = std::max(mx, w[j]);
      }
      for (auto &x : w)
        sum += (x = std::exp(x - mx));
      for (int64_t j = 0; j <= i; ++j)
        for (int64_t c = 0; c < d; ++c)
          out[i * nh * d + h * d + c] += w[j] / sum * v.at(j, g * d + c);
    }
  }
  return out;
}

void runAttention(Buf<float> &q, Buf<float> &k, Buf<float> &v, int64_t first,
                  int64_t count, int64_t nh, int64_t nkv, int64_t d,
                  double scale, Buf<float> &out) {
  std::vector<int64_t> pos(count);
  for (int64_t i = 0; i < count; ++i)
    pos[i] = first + i;
  auto sub = [&](Buf<float> &b) {
    MemRef<float, 2> m = b.ref();
    m.offset += first * b.ld;
    m.sizes[0] = count;
    return m;
  };
  auto qr = sub(q), kr = sub(k), vr = sub(v), orf = sub(out);
  auto pr = ref1(pos);
  _mlir_ciface_greta_cpu_attention_f32(&qr, &kr, &vr, &pr, nh, nkv, d, scale,
                                       /*cacheSlot=*/0, &orf);
}

TEST(Kernels, AttentionMatchesReferenceAndChunking) {
  const int64_t s = 300, nh = 4, nkv = 2, d = 16;
  const double scale = 1 / std::sqrt(double(d));
  Rng rng(5);
  Buf<float> q(s, nh * d, 2), k(s, nkv * d, 1), v(s, nkv * d);
  q.fill(rng, 2.0);
  k.fill(rng, 2.0);
  v.fill(rng);
  auto ref = attentionRef(q, k, v, nh, nkv, d, scale);

  Buf<float> once(s, nh * d, 3);
  {
    CurrentSession cs;
    runAttention(q, k, v, 0, s, nh, nkv, d, scale, once);
    EXPECT_EQ(cs.s->error(), "");
  }
  for (int64_t i = 0; i < s; ++i)
    for (int64_t c = 0; c < nh * d; ++c)
      ASSERT_NEAR(once.at(i, c), ref[i * nh * d + c], 1e-5) << i << " " << c;

  // Prefill in chunks through the KV cache: same tensors within 1e-5.
  for (int64_t split : {1, 129, 256}) {
    Buf<float> chunked(s, nh * d);
    CurrentSession cs;
    runAttention(q, k, v, 0, split, nh, nkv, d, scale, chunked);
    runAttention(q, k, v, split, s - split, nh, nkv, d, scale, chunked);
    EXPECT_EQ(cs.s->error(), "");
    for (int64_t i = 0; i < s; ++i)
      for (int64_t c = 0; c < nh * d; ++c)
        ASSERT_NEAR(chunked.at(i, c), once.at(i, c), 1e-5) << split << " " << i;
  }
  // A gap in the cache is refused.
  CurrentSession cs;
  Buf<float> out(s, nh * d);
  runAttention(q, k, v, 5, 10, nh, nkv, d, scale, out);
  EXPECT_NE(cs.s->error().find("slot 0 holds [0, 0), row 0 has position 5"),
            std::string::npos)
      << cs.s->error();
}

TEST(Kernels, ElementwiseRoundAndFaults) {
  CurrentSession cs;
  Rng rng(6);
  Buf<float> g(4, 10, 1), u(4, 10), out(4, 10, 2);
  g.fill(rng, 8.0);
  u.fill(rng);
  auto gr = g.ref(), ur = u.ref(), orf = out.ref();
  _mlir_ciface_greta_cpu_swiglu_f32(&gr, &ur, &orf);
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 10; ++j) {
      double x = g.at(i, j);
      EXPECT_NEAR(out.at(i, j), x / (1 + std::exp(-x)) * u.at(i, j), 1e-6);
    }
  _mlir_ciface_greta_cpu_add_f32(&gr, &ur, &orf);
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 10; ++j)
      EXPECT_EQ(out.at(i, j), g.at(i, j) + u.at(i, j));
  for (int kind = 0; kind < 2; ++kind) {
    _mlir_ciface_greta_cpu_round_f32(&gr, kind, &orf);
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 10; ++j)
        EXPECT_EQ(out.at(i, j),
                  kind ? roundToBF16(g.at(i, j)) : roundToHalf(g.at(i, j)));
  }
  EXPECT_EQ(cs.s->error(), "");
  _mlir_ciface_greta_cpu_round_f32(&gr, 2, &orf);
  EXPECT_NE(cs.s->error().find("round: unknown kind 2"), std::string::npos);

  std::vector<int64_t> pos = {10, 11, 12, 13};
  auto pr = ref1(pos);
  const double mags[3] = {2.0, 0.5, 31};
  for (int kind = 0; kind < 3; ++kind) {
    _mlir_ciface_greta_cpu_inject_fault_f32(&gr, &pr, 12, kind, mags[kind],
                                            &orf);
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 10; ++j) {
        float x = g.at(i, j), want = x;
        if (pos[i] >= 12)
          want = kind == 0 ? x * 2 : kind == 1 ? x + 0.5f : -x;
        EXPECT_EQ(out.at(i, j), want) << kind;
      }
  }
}

TEST(Kernels, F64KernelsRun) {
  CurrentSession cs(DType::F64);
  Rng rng(8);
  Buf<double> a(3, 4), b(3, 4), c(3, 4);
  a.fill(rng);
  b.fill(rng);
  auto ar = a.ref(), br = b.ref(), cr = c.ref();
  _mlir_ciface_greta_cpu_add_f64(&ar, &br, &cr);
  EXPECT_EQ(c.at(2, 3), a.at(2, 3) + b.at(2, 3));
  _mlir_ciface_greta_cpu_round_f64(&ar, 0, &cr);
  EXPECT_EQ(c.at(1, 1), roundToHalf(a.at(1, 1)));
  // Attention in f64: one query attends to itself only.
  Buf<double> q(1, 4), k(1, 4), v(1, 4), o(1, 4);
  q.fill(rng);
  k.fill(rng);
  v.fill(rng);
  std::vector<int64_t> pos = {0};
  auto qr = q.ref(), kr = k.ref(), vr = v.ref(), orf = o.ref();
  auto pr = ref1(pos);
  _mlir_ciface_greta_cpu_attention_f64(&qr, &kr, &vr, &pr, 1, 1, 4, 0.5, 3,
                                       &orf);
  for (int j = 0; j < 4; ++j)
    EXPECT_EQ(o.at(0, j), v.at(0, j));
  EXPECT_EQ(cs.s->error(), "");
}

TEST(Session, ParamsAndErrors) {
  std::vector<TensorToWrite> w = {{"w2", {2, 3}, {1, 2, 3, 4, 5, 6}},
                                  {"w1", {3}, {7, 8, 9}}};
  CurrentSession cs(DType::F32, w, {{"w2", {2, 3}}, {"w1", {3}}});
  MemRef<float, 2> r2{};
  _mlir_ciface_greta_rt_param_r2_f32(&r2, "w2");
  ASSERT_EQ(r2.sizes[0], 2);
  EXPECT_EQ(r2.sizes[1], 3);
  EXPECT_EQ(r2.strides[0], 3);
  EXPECT_EQ(r2.data[r2.offset + 5], 6.0f);
  MemRef<float, 1> r1{};
  _mlir_ciface_greta_rt_param_r1_f32(&r1, "w1");
  EXPECT_EQ(r1.sizes[0], 3);
  EXPECT_EQ(r1.data[2], 9.0f);
  EXPECT_EQ(cs.s->error(), "");
  _mlir_ciface_greta_rt_param_r1_f32(&r1, "nope");
  EXPECT_EQ(r1.sizes[0], 0);
  EXPECT_NE(r1.data, nullptr);
  EXPECT_NE(cs.s->error().find("'nope'"), std::string::npos) << cs.s->error();
  MemRef<double, 1> d1{};
  _mlir_ciface_greta_rt_param_r1_f64(&d1, "w1");
  EXPECT_EQ(d1.sizes[0], 0); // the session computes in f32

  std::string err;
  EXPECT_FALSE(
      Session::create(*cs.st, {{"missing.weight", {4}}}, DType::F32, err));
  EXPECT_NE(err.find("missing tensor 'missing.weight'"), std::string::npos)
      << err;
  EXPECT_NE(err.find(cs.st->path()), std::string::npos) << err;
  EXPECT_FALSE(Session::create(*cs.st, {{"w2", {3, 2}}}, DType::F32, err));
  EXPECT_NE(
      err.find("tensor 'w2' has shape [2, 3] but the model expects [3, 2]"),
      std::string::npos)
      << err;
  EXPECT_FALSE(Session::create(*cs.st, {}, DType::F16, err));
}

TEST(Session, TraceThroughTheCInterface) {
  TempDir tmp;
  CurrentSession cs;
  std::string err;
  Manifest m;
  m.tokenCount = 6;
  auto writer = TraceWriter::create(tmp.path() + "/t", m, false, err);
  ASSERT_TRUE(writer) << err;
  Filter f;
  ASSERT_TRUE(Filter::parsePositions("1,last", f, err));
  ASSERT_TRUE(Filter::parseLayers("0,2", f, err));
  cs.s->setTrace(writer.get(), f, 6);
  cs.s->setPositions({3, 4, 5});
  // Logits with ties: ids 1 and 4 share the maximum, 0 and 6 the next value.
  Buf<float> logits(3, 8, 2);
  float row[8] = {2, 5, -1, NAN, 5, 0, 2, 1};
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 8; ++j)
      logits.at(i, j) = row[j] + (i == 2 && j == 7 ? 10 : 0);
  auto lr = logits.ref();
  _mlir_ciface_greta_rt_trace_f32(&lr, recordId(Stage::Logits, 2),
                                  static_cast<int64_t>(Payload::Stats));
  // Layer 1 is filtered out.
  _mlir_ciface_greta_rt_trace_f32(&lr, recordId(Stage::AttnOut, 1), 0);
  // Full payload from the filter overrides the compiled hash.
  Buf<float> h(3, 4, 1);
  Rng rng(9);
  h.fill(rng);
  h.at(2, 1) = 0;
  auto hr = h.ref();
  Filter full = f;
  ASSERT_TRUE(Filter::parsePayload("full", full, err));
  cs.s->setTrace(writer.get(), full, 6);
  _mlir_ciface_greta_rt_trace_f32(&hr, recordId(Stage::MlpOut, 0), 0);
  EXPECT_TRUE(cs.s->endCall());
  EXPECT_EQ(cs.s->error(), "");
  EXPECT_EQ(cs.s->recordsWritten(), 2u);
  ASSERT_TRUE(writer->finish(err)) << err;

  auto tc = readTrace(tmp.path() + "/t", err);
  ASSERT_TRUE(tc) << err;
  ASSERT_EQ(tc->records.size(), 2u);
  const Record &lg = tc->records[0];
  EXPECT_EQ(lg.stage, Stage::Logits);
  EXPECT_EQ(lg.layer, 2);
  EXPECT_EQ(lg.position, 5);
  EXPECT_EQ(lg.top5, (std::vector<int32_t>{7, 1, 4, 0, 6}));
  EXPECT_EQ(lg.payload, Payload::Stats);
  EXPECT_EQ(lg.nanCount, 1);
  EXPECT_EQ(lg.nzCount, 7);
  EXPECT_EQ(lg.fingerprint.max, 11.0);
  EXPECT_EQ(lg.fingerprint.min, -1.0);
  EXPECT_TRUE(std::isnan(lg.fingerprint.mean));
  EXPECT_EQ(lg.sha256, sha256(&logits.at(2, 0), 8 * sizeof(float)));
  const Record &mo = tc->records[1];
  EXPECT_EQ(mo.stage, Stage::MlpOut);
  EXPECT_EQ(mo.position, 5);
  EXPECT_EQ(mo.nzCount, 3);
  EXPECT_EQ(mo.payload, Payload::Full);
  std::vector<double> vals = mo.valuesAsDouble();
  ASSERT_EQ(vals.size(), 4u);
  double l2 = 0, sum = 0;
  for (int j = 0; j < 4; ++j) {
    EXPECT_EQ(vals[j], h.at(2, j));
    l2 += double(h.at(2, j)) * h.at(2, j);
    sum += h.at(2, j);
  }
  EXPECT_DOUBLE_EQ(mo.fingerprint.l2, std::sqrt(l2));
  EXPECT_DOUBLE_EQ(mo.fingerprint.mean, sum / 4);

  // Rows that do not match the session's positions are an error.
  cs.s->setTrace(writer.get(), Filter(), 6);
  cs.s->setPositions({0, 1});
  Buf<float> three(3, 4);
  auto tr = three.ref();
  _mlir_ciface_greta_rt_trace_f32(&tr, recordId(Stage::AttnIn, 0), 0);
  EXPECT_NE(cs.s->error().find("3 rows but the session has 2 positions"),
            std::string::npos)
      << cs.s->error();
}

// A value with two stage tags is traced twice in a row; the compiler calls
// trace_repeat for the second (greta-kernels-to-calls), whose records must be
// exactly what hashing the rows again gives.
TEST(Session, RepeatedTraceReusesTheRecords) {
  TempDir tmp;
  CurrentSession cs;
  std::string err;
  Manifest m;
  m.tokenCount = 3;
  auto writer = TraceWriter::create(tmp.path() + "/t", m, false, err);
  ASSERT_TRUE(writer) << err;
  Filter full;
  ASSERT_TRUE(Filter::parsePayload("full", full, err));
  Filter onlyLayer2 = full;
  ASSERT_TRUE(Filter::parseLayers("2", onlyLayer2, err));
  Rng rng(4);
  Buf<float> a(3, 5, 2), b(3, 5, 2); // strided rows: values are copied
  a.fill(rng);
  b.fill(rng);
  auto ar = a.ref(), br = b.ref();
  cs.s->setTrace(writer.get(), full, 3);
  cs.s->setPositions({0, 1, 2});
  // 1. The repeat of a written block.
  _mlir_ciface_greta_rt_trace_f32(&ar, recordId(Stage::ResidualPostMlp, 0), 0);
  _mlir_ciface_greta_rt_trace_repeat_f32(
      &ar, recordId(Stage::ResidualPreAttn, 1), 0);
  // 2. Another buffer than the previous trace's: hashed.
  _mlir_ciface_greta_rt_trace_repeat_f32(
      &br, recordId(Stage::ResidualPreAttn, 3), 0);
  // 3. The previous trace was patched: the patched rows are hashed.
  Buf<float> bBefore = b;
  cs.s->setPatch(recordId(Stage::ResidualPreAttn, 4), {{1, {7, 7, 7, 7, 7}}});
  _mlir_ciface_greta_rt_trace_f32(&br, recordId(Stage::ResidualPostMlp, 3), 0);
  _mlir_ciface_greta_rt_trace_repeat_f32(
      &br, recordId(Stage::ResidualPreAttn, 4), 0);
  cs.s->setPatch(-1, {});
  // 4. The previous trace was filtered out (layer 1): hashed.
  cs.s->setTrace(writer.get(), onlyLayer2, 3);
  _mlir_ciface_greta_rt_trace_f32(&ar, recordId(Stage::ResidualPostMlp, 1), 0);
  _mlir_ciface_greta_rt_trace_repeat_f32(
      &ar, recordId(Stage::ResidualPreAttn, 2), 0);
  EXPECT_TRUE(cs.s->endCall());
  EXPECT_EQ(cs.s->error(), "");
  EXPECT_EQ(cs.s->recordsWritten(), 18u);
  ASSERT_TRUE(writer->finish(err)) << err;

  auto tc = readTrace(tmp.path() + "/t", err);
  ASSERT_TRUE(tc) << err;
  ASSERT_EQ(tc->records.size(), 18u);
  auto expectRows = [&](size_t first, Stage stage, int64_t layer,
                        Buf<float> &buf) {
    for (int64_t i = 0; i < 3; ++i) {
      SCOPED_TRACE(std::string(stageName(stage)) + " layer " +
                   std::to_string(layer) + " row " + std::to_string(i));
      const Record &r = tc->records[first + i];
      EXPECT_EQ(r.stage, stage);
      EXPECT_EQ(r.layer, layer);
      EXPECT_EQ(r.position, i);
      EXPECT_EQ(r.sha256, sha256(&buf.at(i, 0), 5 * sizeof(float)));
      std::vector<double> vals = r.valuesAsDouble();
      ASSERT_EQ(vals.size(), 5u);
      for (int j = 0; j < 5; ++j)
        EXPECT_EQ(vals[j], buf.at(i, j));
    }
  };
  expectRows(0, Stage::ResidualPostMlp, 0, a);
  expectRows(3, Stage::ResidualPreAttn, 1, a);
  EXPECT_EQ(tc->records[4].fingerprint.l2, tc->records[1].fingerprint.l2);
  expectRows(6, Stage::ResidualPreAttn, 3, bBefore);
  expectRows(9, Stage::ResidualPostMlp, 3, bBefore);
  ASSERT_EQ(b.at(1, 0), 7.0f); // the patch wrote the buffer
  expectRows(12, Stage::ResidualPreAttn, 4, b);
  EXPECT_NE(tc->records[13].sha256, tc->records[10].sha256);
  expectRows(15, Stage::ResidualPreAttn, 2, a);
}

// Elements != 0 with NaN counting and -0 not, in every dtype and payload:
// the hash payload counts from the bits and must agree with the stats
// payload's `v != 0` and with the GPU kernels (16-bit rows once counted -0
// as non-zero: ~U(0) >> 1 promoted to int kept the sign bit).
TEST(Session, RowRecordNonZeroCountIgnoresNegativeZero) {
  const double row[] = {-0.0, 0.0, 1.5, NAN, -2.0, -0.0};
  for (DType d : {DType::F32, DType::F64, DType::F16, DType::BF16}) {
    std::vector<uint8_t> bytes(6 * dtypeSize(d));
    for (int i = 0; i < 6; ++i) {
      uint8_t *p = bytes.data() + i * dtypeSize(d);
      float f = static_cast<float>(row[i]);
      uint16_t h =
          d == DType::F16 ? doubleToHalfBits(row[i]) : doubleToBF16Bits(row[i]);
      if (d == DType::F32)
        std::memcpy(p, &f, 4);
      else if (d == DType::F64)
        std::memcpy(p, &row[i], 8);
      else
        std::memcpy(p, &h, 2);
    }
    for (bool stats : {false, true}) {
      SCOPED_TRACE(std::string(dtypeName(d)) + (stats ? " stats" : " hash"));
      Record r;
      fillRowRecord(r, bytes.data(), d, 6, stats);
      EXPECT_EQ(r.nzCount, 3);
    }
  }
}

} // namespace

TEST(Session, LayerObserverSeesEveryTraceCallTracedOrNot) {
  // greta-run's progress line follows the layers through this observer: it
  // must see the trace calls of an untraced run (no writer) and of layers
  // the filter leaves out.
  CurrentSession cs;
  std::vector<int64_t> seen;
  cs.s->setLayerObserver([&](int64_t layer) { seen.push_back(layer); });
  cs.s->setPositions({0, 1});
  Buf<float> b(2, 4);
  auto r = b.ref();
  _mlir_ciface_greta_rt_trace_f32(&r, recordId(Stage::EmbedOut, 0), 0);
  _mlir_ciface_greta_rt_trace_f32(&r, recordId(Stage::MlpOut, 3), 0);
  TempDir tmp;
  std::string err;
  Manifest m;
  m.tokenCount = 2;
  auto writer = TraceWriter::create(tmp.path() + "/t", m, false, err);
  ASSERT_TRUE(writer) << err;
  Filter f;
  ASSERT_TRUE(Filter::parseLayers("0", f, err));
  cs.s->setTrace(writer.get(), f, 2);
  _mlir_ciface_greta_rt_trace_f32(&r, recordId(Stage::Logits, 11), 0);
  EXPECT_EQ(seen, (std::vector<int64_t>{0, 3, 11}));
  EXPECT_EQ(cs.s->error(), "");
  cs.s->setTrace(nullptr, Filter(), 2);
}
