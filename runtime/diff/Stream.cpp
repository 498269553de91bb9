//===- Stream.cpp - Read two traces and compare them in one pass ----------===//
//
// diffTraceDirs: BASE and TEST are read together (rt::readTracePair); rows
// at the same place in both files are judged while their values are in the
// read buffers, the rest (traces of another order, REF) by diffTraces,
// which reads their values back by offset.
//
//===----------------------------------------------------------------------===//
#include "Align.h"
#include "Judge.h"

#include <chrono>
#include <sys/stat.h>
#include <thread>

using namespace greta;
using namespace greta::diff;
using namespace greta::diff::detail;

namespace {
/// Judges the rows readTracePair pairs, as diffTraces would judge them.
class PairJudge : public rt::RowPairSink {
public:
  explicit PairJudge(const Options &o) : opts_(o) {}
  bool start(const rt::Manifest &a, const rt::Manifest &b) override {
    // The reference policy judges against a third trace: not paired.
    if (opts_.policy == Policy::Reference)
      return false;
    judge_.emplace(opts_, a, b);
    return true;
  }
  void pair(unsigned w, const rt::BlockRows &a, uint32_t sa,
            const rt::BlockRows &b, uint32_t sb, uint32_t j, const uint8_t *va,
            const uint8_t *vb) override {
    Scratch &s = scratch_[w];
    a.headTo(j, s.base);
    b.headTo(j, s.test);
    // Views of the read buffers, valid during this call.
    s.base.values = rt::ValueBytes::view(va, a.rowBytes, borrowed(va));
    s.test.values = rt::ValueBytes::view(vb, b.rowBytes, borrowed(vb));
    Prejudged::Row &out = pre_.rows[w].emplace_back();
    out.key = uint64_t(sa) << 32 | j;
    out.testSeg = sb;
    out.j = j;
    RowResult &row = out.row;
    row.stage = a.stage;
    row.layer = a.layer;
    row.position = a.position(j);
    row.baseDType = a.dtype;
    row.testDType = b.dtype;
    row.elements = b.elements;
    row.hashMatch = false;
    judge_->prepare(row);
    judge_->judge(s.base, s.test, nullptr, row, out.bytes);
  }
  /// Every row judged, by BASE block and row.
  Prejudged &judged() {
    pre_.index();
    return pre_;
  }

private:
  static std::shared_ptr<const void> borrowed(const uint8_t *p) {
    return std::shared_ptr<const void>(std::shared_ptr<const void>(), p);
  }
  struct Scratch {
    rt::Record base, test;
  };
  const Options &opts_;
  std::optional<Judge> judge_;
  Scratch scratch_[2];
  Prejudged pre_;
};

/// The error for a trace path that is not a directory, or "".
std::string checkDir(const char *role, const std::string &path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0)
    return std::string(role) + " trace '" + path + "' does not exist";
  if (!S_ISDIR(st.st_mode))
    return std::string(role) + " trace '" + path +
           "' is not a directory (a trace is a directory holding "
           "manifest.json and records.bin)";
  return "";
}
} // namespace

std::optional<DiffResult>
greta::diff::diffTraceDirs(const std::string &basePath,
                           const std::string &testPath,
                           const std::string &refPath, const Options &opts,
                           std::string &error, DiffTiming *timing) {
  using Clock = std::chrono::steady_clock;
  auto t0 = Clock::now();
  bool withRef = opts.policy == Policy::Reference;
  std::string baseErr = checkDir("BASE", basePath),
              testErr = checkDir("TEST", testPath),
              refErr = withRef ? checkDir("REF", refPath) : "";
  std::optional<rt::TraceContents> base, test, ref;
  PairJudge sink(opts);
  {
    std::string why;
    rt::ReadOptions ro;
    ro.keepBlocks = true;
    // REF is never paired: it is read on a thread of its own meanwhile.
    std::thread refReader;
    if (withRef && refErr.empty())
      refReader = std::thread([&] {
        ref = rt::readTrace(refPath, why, ro);
        if (!ref)
          refErr = "REF trace '" + refPath + "': " + why;
      });
    std::string whyBase, whyTest;
    if (baseErr.empty() && testErr.empty()) {
      rt::readTracePair(basePath, testPath, ro, &sink, base, whyBase, test,
                        whyTest);
    } else if (baseErr.empty()) {
      base = rt::readTrace(basePath, whyBase, ro);
    } else if (testErr.empty()) {
      test = rt::readTrace(testPath, whyTest, ro);
    }
    if (refReader.joinable())
      refReader.join();
    if (baseErr.empty() && !base)
      baseErr = "BASE trace '" + basePath + "': " + whyBase;
    if (testErr.empty() && !test)
      testErr = "TEST trace '" + testPath + "': " + whyTest;
  }
  for (const std::string *e : {&baseErr, &testErr, &refErr})
    if (!e->empty())
      return error = *e, std::nullopt;
  auto t1 = Clock::now();
  auto result = diffTracesWith(*base, *test, ref ? &*ref : nullptr, opts, error,
                               &sink.judged());
  if (timing) {
    auto secs = [](auto d) { return std::chrono::duration<double>(d).count(); };
    timing->readSeconds = secs(t1 - t0);
    timing->compareSeconds = secs(Clock::now() - t1);
  }
  return result;
}
