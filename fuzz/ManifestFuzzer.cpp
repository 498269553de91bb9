//===- ManifestFuzzer.cpp - manifest.json through readTrace and greta-diff -===//
//
// The input is manifest.json. records.bin is fixed and valid: format 3, run
// id 000102…0f, one record frame (its records digest is
// kRecordsDigest below; the seeds in fuzz/corpus/manifest/ use it), so
// mutations reach every manifest field, the run id and digest checks, and
// what greta-diff does with a manifest it accepted:
//   - a failed read must say why;
//   - an accepted trace is consistent: a version the reader knows, a run id
//     of 32 hex digits or none, "verified" only for what can be verified;
//   - rt::checkIdentity of the trace against itself never finds a
//     difference, refuses exactly when a field is unknown, and always
//     accepts with --allow-unidentified; against a fixed, fully identified
//     trace it never crashes and accepts only equal or waived fields;
//   - greta-diff's comparison of the trace with itself (every policy's
//     engine, the JSON and text reports) completes without a divergence.
//
//===----------------------------------------------------------------------===//
#include "FuzzUtil.h"
#include "greta/diff/Diff.h"
#include "greta/diff/Report.h"
#include "greta/rt/Identity.h"
#include "greta/rt/Trace.h"

#include <cstring>
#include <sstream>
#include <sys/stat.h>
#include <vector>
#include <zlib.h>

namespace {
using namespace greta;

/// records.bin: the format-3 header with run id 00 01 … 0f, then one record
/// frame of a hash row (embed_out, layer 0, position 0, shape [4]).
std::vector<uint8_t> fixedRecords() {
  std::vector<uint8_t> out(rt::kTraceFileHeaderSize, 0);
  std::memcpy(out.data(), rt::kTraceFileMagic, 8);
  auto put32 = [](uint8_t *p, uint32_t v) { std::memcpy(p, &v, 4); };
  put32(out.data() + 8, rt::kTraceFormatVersion);
  put32(out.data() + 12, rt::kTraceFileHeaderSize);
  for (size_t i = 0; i < rt::kRunIdBytes; ++i)
    out[rt::kTraceRunIdOffset + i] = static_cast<uint8_t>(i);
  rt::Record r;
  r.shape = {4};
  r.nzCount = 4;
  std::vector<uint8_t> body;
  rt::encodeRecordBody(r, body);
  uint8_t frame[8];
  put32(frame, rt::kRecordMagic);
  put32(frame + 4, static_cast<uint32_t>(body.size()));
  out.insert(out.end(), frame, frame + 8);
  out.insert(out.end(), body.begin(), body.end());
  uint8_t crc[4];
  put32(crc, uint32_t(crc32(0L, body.data(), static_cast<uInt>(body.size()))));
  out.insert(out.end(), crc, crc + 4);
  return out;
}

/// A finished, fully identified trace to compare against.
rt::TraceContents referenceTrace() {
  rt::TraceContents t;
  t.manifest.modelDigest = "m";
  t.manifest.weightsDigest = "w";
  t.manifest.promptDigest = "p";
  t.manifest.tokenCount = 1;
  t.manifest.runId = std::string(32, 'f');
  t.complete = true;
  t.integrity.runIdTied = t.integrity.countVerified = true;
  t.integrity.digestVerified = true;
  return t;
}

bool isHex32(const std::string &s) {
  if (s.size() != 32)
    return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
      return false;
  return true;
}
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const std::string dir = [] {
    std::string d = greta::fuzz::scratchDir() + "/manifest";
    ::mkdir(d.c_str(), 0700);
    std::vector<uint8_t> rec = fixedRecords();
    greta::fuzz::writeFile(d + "/records.bin", rec.data(), rec.size());
    return d;
  }();
  greta::fuzz::writeFile(dir + "/manifest.json", data, size);

  std::string error;
  auto tc = rt::readTrace(dir, error);
  if (!tc) {
    if (error.empty())
      __builtin_trap(); // a failure must always say why
    return 0;
  }
  const rt::Manifest &m = tc->manifest;
  const rt::TraceIntegrity &in = tc->integrity;
  if (m.formatVersion < rt::kOldestTraceFormatVersion ||
      m.formatVersion > rt::kTraceFormatVersion)
    __builtin_trap();
  if (!m.runId.empty() && !isHex32(m.runId))
    __builtin_trap();
  // Verified only what can be: a run id on both sides, a finished run.
  if (in.runIdTied && m.runId.empty())
    __builtin_trap();
  if ((in.countVerified || in.digestVerified) && !tc->complete)
    __builtin_trap();
  if (tc->records.size() != 1)
    __builtin_trap();

  // The trace against itself: never a difference.
  rt::IdentityOptions strict, lax;
  lax.allowUnidentified = true;
  std::vector<rt::TraceIdentity> self = {rt::identityOf(*tc, "BASE"),
                                         rt::identityOf(*tc, "TEST")};
  rt::IdentityVerdict v = rt::checkIdentity(self, strict);
  bool unknown = false;
  for (const rt::IdentityCheck &c : v.checks) {
    if (c.outcome == rt::CheckOutcome::Differs || c.text.empty() ||
        c.values.size() != c.roles.size())
      __builtin_trap();
    unknown |= c.outcome == rt::CheckOutcome::Unknown;
  }
  if (v.comparable == unknown || v.comparable != v.refusal.empty())
    __builtin_trap();
  if (!rt::checkIdentity(self, lax).comparable || v.lines().empty())
    __builtin_trap();

  // Against a fixed trace: whatever the outcome, a comparable verdict has
  // nothing unknown or different left unwaived.
  static const rt::TraceContents ref = referenceTrace();
  rt::IdentityVerdict w = rt::checkIdentity(
      {rt::identityOf(ref, "BASE"), rt::identityOf(*tc, "TEST")}, lax);
  for (const rt::IdentityCheck &c : w.checks)
    if (w.comparable && c.outcome != rt::CheckOutcome::Equal &&
        c.waivedBy.empty())
      __builtin_trap();

  // What greta-diff does with it: compare it with itself and report.
  for (diff::Policy p : {diff::Policy::Exact, diff::Policy::Tolerance,
                         diff::Policy::Reference}) {
    diff::Options o;
    o.policy = p;
    o.allowUnidentified = true;
    o.jobs = 1;
    std::string derr;
    auto r = diff::diffTraces(*tc, *tc,
                              p == diff::Policy::Reference ? &*tc : nullptr,
                              o, derr);
    if (!r) {
      if (derr.empty())
        __builtin_trap();
      continue;
    }
    if (r->diverged())
      __builtin_trap(); // a trace never diverges from itself
    diff::ReportOptions ro;
    for (diff::Format f : {diff::Format::Json, diff::Format::Table}) {
      ro.format = f;
      std::ostringstream os;
      diff::printReport(os, *r, ro);
      if (os.str().empty())
        __builtin_trap();
    }
  }
  return 0;
}
