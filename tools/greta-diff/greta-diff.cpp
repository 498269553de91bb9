//===- greta-diff.cpp - Compare two traced runs, name FIRST_FAIL ----------===//
//
// greta-diff BASE TEST [--ref REF] [--policy exact|tolerance|reference] ...
// Exit codes: 0 no divergence, 1 divergence found, 2 error.
//
//===----------------------------------------------------------------------===//
#include "greta/diff/Diff.h"
#include "greta/diff/Report.h"
#include "greta/rt/Trace.h"
#include "greta/tools/CLI.h"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <fstream>

#include <iostream>

using namespace greta;

namespace {
constexpr int kExitError = 2;

int fail(const std::string &msg) {
  std::cerr << "greta-diff: error: " << msg << "\n";
  return kExitError;
}

const char *kFooter = R"(
Records are aligned by (stage, layer, position) and visited in execution
order: embed_out, then layer by layer in the residual stream's stage order,
then logits; lowest position first. FIRST_FAIL is the first diverging record.

Policies:
  exact      a record diverges when its SHA-256 differs (the default).
  tolerance  rows with equal hashes match; otherwise, with values on both
             sides, the row diverges if any element fails
             |test-base| <= atol*S + rtol*|base| or MAE > mae*S, where S,
             the row's scale, is the RMS of the BASE row (at least the unit
             roundoff). Defaults by the coarsest precision of the two rows
             and manifests:
               f64 atol 1e-9  rtol 1e-9 mae 3e-10
               f32 atol 1e-4  rtol 1e-4 mae 3e-5
               f16 atol 3e-2  rtol 1e-2 mae 1e-2
               bf16 atol 2e-1 rtol 5e-2 mae 8e-2
             Without values (stats payload) the fingerprint (min, max,
             mean, l2 within atol*S/rtol; equal nan/inf counts) decides;
             with hash-only payload a differing hash is a divergence.
  reference  three traces (PyTorch's accuracy-minifier rule, fp64_ref,
             made relative): TEST diverges where RMSE(TEST,REF) >
             k*RMSE(BASE,REF) + floor*S, S the RMS of the REF row, BASE
             first rounded to TEST's precision. k: 2, or 3 when TEST is
             f16/bf16 or the row has < 1000 elements; floor 3e-5.

Refused: traces of different model, weights or prompt digest, or of
different lengths without --allow-different-lengths; traces whose identity
is incomplete (a digest missing, no run id tying records.bin to its
manifest) without --allow-unidentified. The report says what was checked.
A corrupt trace is an error.

"No divergence" needs both runs finished and the same records in both. A
truncated trace (a run that did not finish) is compared up to where it
stops: a divergence there is exit 1, none is no verdict (exit 2, the report
says which trace stopped where). Records only one of two finished runs
wrote (different runtime filters) are not compared and also leave no
verdict, unless --shared-rows-only. See docs/DIFF.md.

Exit status: 0 no divergence, 1 divergence found, 2 error or no verdict.)";
} // namespace

int main(int argc, char **argv) {
  CLI::App app{"greta-diff: compare two traced runs (optionally against a "
               "reference run) and name the first divergent tensor "
               "(FIRST_FAIL), its layer, position and root-cause category"};
  app.footer(kFooter);
  app.get_formatter()->column_width(34);

  std::string basePath, testPath, refPath, policyStr = "exact",
                                           formatStr = "table";
  double atol = -1, rtol = -1, mae = -1, k = -1, floor = diff::kDefaultFloor;
  bool allowLengths = false, allowUnidentified = false, sharedRowsOnly = false;
  int context = 5;
  unsigned jobs = 0;
  bool timing = false;
  app.add_option("BASE", basePath, "trace directory of the good run")
      ->required();
  app.add_option("TEST", testPath, "trace directory of the run under test")
      ->required();
  auto *refOpt = app.add_option(
      "--ref", refPath,
      "trace directory of a reference run (e.g. f64); implies --policy "
      "reference");
  auto *policyOpt =
      app.add_option("--policy", policyStr,
                     "exact | tolerance | reference (default: exact, or "
                     "reference when --ref is given)");
  auto *atolOpt = app.add_option("--atol", atol,
                                 "tolerance per element, times the row's "
                                 "scale (RMS of BASE); overrides the "
                                 "per-precision default");
  auto *rtolOpt = app.add_option(
      "--rtol", rtol, "relative tolerance per element, times |BASE|");
  auto *maeOpt =
      app.add_option("--mae", mae,
                     "bound on a row's mean absolute error, times the row's "
                     "scale (RMS of BASE)");
  auto *kOpt = app.add_option(
      "--k", k, "reference policy: allowed multiple of err(BASE,REF)");
  auto *floorOpt = app.add_option(
      "--floor", floor,
      "reference policy: RMSE slack added to k*err(BASE,REF), times the "
      "RMS of the REF row (default 3e-5)");
  double accumulation = 8;
  auto *accOpt = app.add_option(
      "--accumulation", accumulation,
      "reference policy, TEST coarser than BASE: TEST may also reach this "
      "many units of roundoff of its precision times RMS(REF) (default 8)");
  app.add_flag("--allow-different-lengths", allowLengths,
               "compare runs of different token counts on their shared "
               "positions");
  app.add_flag("--allow-unidentified", allowUnidentified,
               "compare traces whose identity is incomplete (format 1/2 "
               "traces without run id, manifests without digests); the "
               "report lists what was not checked");
  app.add_flag("--shared-rows-only", sharedRowsOnly,
               "traces of different runtime filters: judge only the records "
               "both runs wrote (without it, records only one finished run "
               "wrote leave no verdict)");
  app.add_option("--format", formatStr,
                 "table | markdown | csv | json | html (default: table; html "
                 "is one self-contained page: docs/DIFF.md)");
  std::string outPath;
  app.add_option("-o,--output", outPath,
                 "write the report to this file instead of stdout");
  app.add_option("--context", context,
                 "rows shown on each side of FIRST_FAIL (default 5; -1: all)");
  app.add_option("-j,--jobs", jobs,
                 "threads for the numeric comparison (default: all cores)");
  std::string tokenizerPath;
  app.add_option(
      "--tokenizer", tokenizerPath,
      "names the prompt's tokens beside positions (\"826 (' the')\"); "
      "default: the tokenizer TEST's manifest records, if it is "
      "still there unchanged");
  app.add_flag("--timing", timing,
               "print the time spent reading and comparing to stderr "
               "(bench/diff uses it)");
  greta::addVersionFlag(app, "greta-diff");
  try {
    greta::parseArgs(app, argc, argv);
  } catch (const CLI::ParseError &e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : kExitError;
  }

  diff::Options opts;
  auto policy = diff::parsePolicy(policyStr);
  if (!policy)
    return fail("unknown --policy '" + policyStr +
                "' (expected exact, tolerance or reference)");
  opts.policy = *policy;
  if (*refOpt && !*policyOpt)
    opts.policy = diff::Policy::Reference;
  if (opts.policy == diff::Policy::Reference && !*refOpt)
    return fail("--policy reference needs a reference trace: --ref REF");
  if (opts.policy != diff::Policy::Reference && *refOpt)
    return fail("--ref is only used by --policy reference (got --policy " +
                policyStr + ")");
  auto format = diff::parseFormat(formatStr);
  if (!format)
    return fail("unknown --format '" + formatStr +
                "' (expected table, markdown, csv, json or html)");
  for (auto [opt, val, name] : {std::tuple{atolOpt, atol, "--atol"},
                                std::tuple{rtolOpt, rtol, "--rtol"},
                                std::tuple{maeOpt, mae, "--mae"}}) {
    if (!*opt)
      continue;
    if (opts.policy == diff::Policy::Exact)
      return fail(std::string(name) +
                  " needs --policy tolerance or reference (exact compares "
                  "hashes only)");
    if (!(val >= 0))
      return fail(std::string(name) + " must be >= 0, got " +
                  std::to_string(val));
  }
  if ((*kOpt || *floorOpt || *accOpt) &&
      opts.policy != diff::Policy::Reference)
    return fail("--k, --floor and --accumulation need --policy reference");
  if (!(accumulation >= 0))
    return fail("--accumulation must be >= 0, got " +
                std::to_string(accumulation));
  opts.accumulation = accumulation;
  if (*kOpt && !(k > 0))
    return fail("--k must be > 0, got " + std::to_string(k));
  if (!(floor >= 0))
    return fail("--floor must be >= 0, got " + std::to_string(floor));
  if (*atolOpt)
    opts.atol = atol;
  if (*rtolOpt)
    opts.rtol = rtol;
  if (*maeOpt)
    opts.mae = mae;
  if (*kOpt)
    opts.k = k;
  opts.floor = floor;
  opts.allowDifferentLengths = allowLengths;
  opts.allowUnidentified = allowUnidentified;
  opts.sharedRowsOnly = sharedRowsOnly;
  opts.jobs = jobs;

  // BASE and TEST are read together, the rows of traces in the same order
  // compared as they are read (diff::diffTraceDirs).
  std::string error;
  diff::DiffTiming t;
  auto result =
      diff::diffTraceDirs(basePath, testPath, refPath, opts, error, &t);
  if (!result)
    return fail(error);
  if (timing)
    std::fprintf(stderr,
                 "timing: read_s=%.3f compare_s=%.3f bytes_compared=%llu "
                 "rows_compared=%lld rows_hash_equal=%lld\n",
                 t.readSeconds, t.compareSeconds,
                 static_cast<unsigned long long>(result->counts.bytesCompared),
                 static_cast<long long>(result->counts.comparedValues),
                 static_cast<long long>(result->counts.hashEqual));

  diff::ReportOptions ro;
  ro.format = *format;
  ro.context = context;
  ro.basePath = basePath;
  ro.testPath = testPath;
  ro.refPath = refPath;
  if (!diff::loadPromptTokens(result->test, tokenizerPath, ro.tokens, error))
    return fail(error);
  if (outPath.empty()) {
    diff::printReport(std::cout, *result, ro);
    std::cout.flush();
  } else {
    std::ofstream out(outPath);
    diff::printReport(out, *result, ro);
    out.close();
    if (!out)
      return fail("cannot write the report to --output '" + outPath + "'");
  }
  switch (result->verdict()) {
  case diff::Verdict::Divergence:
    return 1;
  case diff::Verdict::NoDivergence:
    return 0;
  case diff::Verdict::Undecided:
    break;
  }
  // The report says what was compared; no verdict is claimed from it.
  std::string why;
  for (const std::string &u : result->undecided)
    why += (why.empty() ? "" : "; ") + u;
  return fail("no verdict: " + why);
}
