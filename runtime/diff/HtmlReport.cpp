//===- HtmlReport.cpp - The FIRST_FAIL report as one HTML page ------------===//
#include "greta/diff/HtmlReport.h"
#include "HtmlCharts.h"

#include <cmath>
#include <cstdio>

using namespace greta;
using namespace greta::diff;

namespace {

const char *kStyle = R"css(
body{margin:0;background:#fff;color:#1f2328;
  font:14px/1.45 "DejaVu Sans","Liberation Sans",Arial,sans-serif}
main{max-width:1180px;margin:0 auto;padding:20px 32px 40px}
h1{font-size:22px;margin:0 0 6px}
h2{font-size:17px;margin:28px 0 8px;padding-bottom:4px;
  border-bottom:1px solid #d0d7de}
h3,.nested h2{font-size:15px;margin:20px 0 6px;border:none}
.sub{color:#57606a;margin:0 0 12px}
.badge{display:inline-block;padding:1px 10px;border-radius:10px;
  color:#fff;font-weight:bold;margin-right:8px}
.badge.diverged{background:#b42318}.badge.clean{background:#1a7f37}
.badge.undecided{background:#b54708}
table{border-collapse:collapse;margin:6px 0}
th,td{border:1px solid #d0d7de;padding:3px 10px;text-align:left;
  vertical-align:top}
th{background:#f6f8fa}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.first-fail td{background:#e8efff;font-weight:bold}
tr.first-fail td:first-child{box-shadow:inset 4px 0 #3d7bff}
td.wrap{max-width:360px;word-break:break-all}
code,.mono{font-family:"DejaVu Sans Mono","Liberation Mono",monospace;
  font-size:13px}
.bar{display:inline-block;height:10px;background:#fd8d3c;
  vertical-align:middle;margin-right:6px}
.note{color:#57606a}
ul{margin:4px 0;padding-left:22px}
svg{display:block;margin:8px 0;max-width:100%;height:auto}
svg text{font-family:"DejaVu Sans","Liberation Sans",Arial,sans-serif;
  font-size:12px;fill:#1f2328}
svg text.axis-title{fill:#57606a}
footer{margin-top:32px;color:#57606a;font-size:12px}
)css";

std::string promptOf(const DiffResult &r) {
  return r.test.promptName.empty() ? "-" : r.test.promptName;
}

/// One table row; `cls` adds a class, numeric cells align right.
void row(std::ostream &os, const std::vector<std::string> &cells,
         std::string_view cls = "", const std::vector<bool> &numeric = {}) {
  os << "<tr" << (cls.empty() ? "" : " class=\"" + std::string(cls) + "\"")
     << ">";
  for (size_t c = 0; c < cells.size(); ++c)
    os << (c < numeric.size() && numeric[c] ? "<td class=\"num\">" : "<td>")
       << htmlEscape(cells[c]) << "</td>";
  os << "</tr>\n";
}

void headerRow(std::ostream &os, const std::vector<std::string> &cells) {
  os << "<tr>";
  for (const std::string &c : cells)
    os << "<th>" << htmlEscape(c) << "</th>";
  os << "</tr>\n";
}

void printRuns(std::ostream &os, const DiffResult &r, const ReportOptions &o) {
  os << "<table class=\"runs\">\n";
  headerRow(os, {"Run", "Trace", "Backend", "Precision", "Pipeline"});
  auto run = [&](const char *role, const rt::Manifest &m,
                 const std::string &path) {
    row(os, {role, path, m.backend, m.precision,
             m.pipeline.empty() ? "-" : m.pipeline});
  };
  run("BASE", r.base, o.basePath);
  run("TEST", r.test, o.testPath);
  if (r.ref)
    run("REF", *r.ref, o.refPath);
  os << "</table>\n";
  if (!r.differentGraphs.empty())
    os << "<p class=\"note\">different graphs: "
       << htmlEscape(r.differentGraphs) << "</p>\n";
  if (!r.notes.empty()) {
    os << "<ul class=\"notes\">\n";
    for (const std::string &n : r.notes)
      os << "<li class=\"note\">note: " << htmlEscape(n) << "</li>\n";
    os << "</ul>\n";
  }
}

/// The facts of the text report's FIRST_FAIL line, as one table row.
void printFirstFail(std::ostream &os, const DiffResult &r,
                    const ReportOptions &o) {
  const RowResult *ff = r.first();
  if (r.generation)
    os << "<p class=\"generation\">FIRST_FAIL: "
       << htmlEscape(describe(*r.generation)) << "</p>\n";
  if (!ff && r.generation)
    return;
  if (!ff) {
    os << "<p>" << htmlEscape(noDivergenceLine(r)) << "</p>\n";
    if (!r.undecided.empty()) {
      os << "<ul class=\"undecided\">\n";
      for (const std::string &u : r.undecided)
        os << "<li>" << htmlEscape(u) << "</li>\n";
      os << "</ul>\n";
    }
    return;
  }
  std::vector<std::string> names = {"Tensor",   "Layer",      "Position",
                                    "Category", "Hash match", "MAE"},
                           values = {
                               std::string(rt::stageName(ff->stage)),
                               std::to_string(ff->layer),
                               positionText(o, ff->position),
                               std::string(rt::categoryName(ff->category())),
                               ff->hashMatch ? "YES" : "NO",
                               ff->hasMetrics ? formatNumber(ff->metrics.mae)
                                              : "-"};
  auto fact = [&](const std::string &k, const std::string &v) {
    names.push_back(k);
    values.push_back(v);
  };
  if (ff->hasMetrics) {
    fact("max-abs", formatNumber(ff->metrics.maxAbs));
    fact("rel-L2", formatNumber(ff->metrics.relL2));
    fact("cosine", formatNumber(ff->metrics.cosine));
  }
  if (ff->hasReference)
    fact("err(TEST,REF)",
         formatNumber(ff->errTest) + " > " +
             (ff->allowance > ff->k * ff->errBase
                  ? "accumulation allowance " + formatNumber(ff->allowance)
                  : formatNumber(ff->k) + " * err(BASE,REF) " +
                        formatNumber(ff->errBase)) +
             " + floor");
  fact("Judged by", std::string(basisName(ff->basis)));
  if (!ff->note.empty())
    fact("Note", ff->note);
  os << "<table class=\"facts\">\n";
  headerRow(os, names);
  row(os, values, "first-fail");
  os << "</table>\n";
  if (r.routing)
    os << "<p class=\"routing\">Routing flip: "
       << htmlEscape(routingFlipLine(*r.routing)) << "</p>\n";
}

void printRowTable(std::ostream &os, const DiffResult &r,
                   const ReportOptions &o) {
  os << "<table class=\"first-fail-table\">\n";
  headerRow(os, {"Prompt", "Position", "Layer", "Tensor", "Hash match", "MAE",
                 "FIRST_FAIL", "Diverges"});
  auto [lo, hi] = contextWindow(r, o.context);
  for (size_t i = lo; i < hi; ++i) {
    RowResult x = r.rows[i];
    bool isFirst = r.firstFail == i;
    row(os,
        {promptOf(r), positionText(o, x.position), std::to_string(x.layer),
         std::string(rt::stageName(x.stage)), x.hashMatch ? "YES" : "NO",
         x.hasMetrics ? formatNumber(x.metrics.mae) : "-",
         isFirst ? "YES" : "NO", x.diverges ? "yes" : "no"},
        isFirst ? "first-fail" : "", {false, true, true, false, false, true});
  }
  os << "</table>\n";
  if (hi - lo < r.rows.size())
    os << "<p class=\"note\">" << hi - lo << " of " << r.rows.size()
       << " aligned records shown; --context N widens, --context -1 shows "
          "all.</p>\n";
}

/// One root cause, FIRST_FAIL's category; the records diverging after it
/// are its consequences, counted apart (as in the text report).
void printSummary(std::ostream &os, const DiffResult &r) {
  const RowResult *ff = r.first();
  if (!ff) {
    os << "<p>No root cause: no record diverges.</p>\n";
    return;
  }
  os << "<p>Root cause: <strong>"
     << htmlEscape(rt::categoryName(ff->category()))
     << "</strong> (FIRST_FAIL: " << htmlEscape(rt::stageName(ff->stage))
     << ", layer " << ff->layer << ", position " << ff->position << ")</p>\n";
  Downstream down = downstream(r);
  if (down.records == 0) {
    os << "<p>Downstream: no other record diverges (of " << r.counts.aligned
       << " aligned records).</p>\n";
    return;
  }
  os << "<p>Downstream: " << down.records
     << " more records diverge after FIRST_FAIL (of " << r.counts.aligned
     << " aligned records), by category:</p>\n<table class=\"summary\">\n";
  headerRow(os, {"Category", "Records", "Percent"});
  for (unsigned c = 0; c < rt::kNumCategories; ++c) {
    if (!down.byCategory[c])
      continue;
    double pct = down.percent(c);
    char text[16];
    std::snprintf(text, sizeof text, "%.1f%%", pct);
    os << "<tr><td>"
       << htmlEscape(rt::categoryName(static_cast<rt::Category>(c)))
       << "</td><td class=\"num\">" << down.byCategory[c]
       << "</td><td><span class=\"bar\" style=\"width:"
       << std::lround(pct * 1.2) << "px\"></span>" << text << "</td></tr>\n";
  }
  os << "</table>\n";
}

void printAdvice(std::ostream &os, const DiffResult &r) {
  const RowResult *ff = r.first();
  if (!ff)
    return;
  os << "<h2>Recommendation</h2>\n<p class=\"recommendation\">"
     << htmlEscape(r.routing ? routingAdvice(*r.routing) : recommendation(*ff))
     << "</p>\n<h2>Hypotheses</h2>\n"
     << "<p>Points to: <strong>"
     << htmlEscape(hypothesisName(r.hypothesis.kind)) << "</strong></p>\n";
  if (r.hypothesis.evidence.empty() && r.hypothesis.alternatives.empty())
    return;
  os << "<ul class=\"evidence\">\n";
  for (const std::string &e : r.hypothesis.evidence)
    os << "<li>" << htmlEscape(e) << "</li>\n";
  if (!r.hypothesis.alternatives.empty()) {
    os << "<li>also compatible:";
    for (size_t i = 0; i < r.hypothesis.alternatives.size(); ++i)
      os << (i ? ", " : " ")
         << htmlEscape(hypothesisName(r.hypothesis.alternatives[i]));
    os << "</li>\n";
  }
  os << "</ul>\n";
}

void printCounts(std::ostream &os, const DiffResult &r) {
  const Counts &c = r.counts;
  os << "<h2>Counts</h2>\n<ul class=\"counts\">\n<li>records: BASE "
     << c.baseRecords << ", TEST " << c.testRecords;
  if (r.ref)
    os << ", REF " << c.refRecords;
  os << "; aligned " << c.aligned << "</li>\n"
     << "<li>hash-equal (not compared numerically): " << c.hashEqual
     << "; compared on values: " << c.comparedValues
     << "; by fingerprint: " << c.comparedFingerprint
     << "; hash only: " << c.comparedHashOnly << "</li>\n"
     << "<li>skipped: only in BASE " << c.onlyInBase << ", only in TEST "
     << c.onlyInTest << ", past the shared length " << c.beyondSharedLength
     << ", after a truncation " << c.afterTruncation << "</li>\n</ul>\n";
}

} // namespace

std::string greta::diff::htmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char ch : text) {
    switch (ch) {
    case '&':
      out += "&amp;";
      break;
    case '<':
      out += "&lt;";
      break;
    case '>':
      out += "&gt;";
      break;
    case '"':
      out += "&quot;";
      break;
    case '\'':
      out += "&#39;";
      break;
    default:
      out += ch;
    }
  }
  return out;
}

void greta::diff::printHtmlPageStart(std::ostream &os, std::string_view title) {
  os << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">"
     << "\n<meta name=\"viewport\" content=\"width=device-width\">\n<title>"
     << htmlEscape(title) << "</title>\n<style>" << kStyle
     << "</style>\n</head>\n<body>\n<main>\n";
}

void greta::diff::printHtmlPageEnd(std::ostream &os) {
  os << "</main>\n</body>\n</html>\n";
}

std::string greta::diff::verdictLine(const DiffResult &r) {
  const RowResult *ff = r.first();
  if (!ff && r.generation)
    return describe(*r.generation);
  if (!ff)
    return r.undecided.empty() ? "no divergence" : "no verdict";
  return "FIRST_FAIL " + std::string(rt::stageName(ff->stage)) + ", layer " +
         std::to_string(ff->layer) + ", position " +
         std::to_string(ff->position);
}

void greta::diff::printHtmlDiffSections(std::ostream &os, const DiffResult &r,
                                        const ReportOptions &opts,
                                        std::string_view idPrefix) {
  std::string id = htmlEscape(idPrefix);
  printRuns(os, r, opts);
  os << "<section id=\"" << id << "verdict\">\n<h2>FIRST_FAIL</h2>\n";
  printFirstFail(os, r, opts);
  os << "</section>\n<section id=\"" << id << "heatmap\">\n"
     << "<h2>Error by layer and stage</h2>\n";
  html::printHeatmap(os, r, idPrefix);
  os << "</section>\n<section id=\"" << id << "by-position\">\n"
     << "<h2>Error against token position</h2>\n";
  html::printPositionChart(os, r);
  os << "</section>\n<section id=\"" << id << "table\">\n"
     << "<h2>FIRST_FAIL table</h2>\n";
  printRowTable(os, r, opts);
  os << "<h2>Root cause</h2>\n";
  printSummary(os, r);
  printAdvice(os, r);
  printCounts(os, r);
  os << "</section>\n";
}

void greta::diff::printHtmlReport(std::ostream &os, const DiffResult &r,
                                  const ReportOptions &opts) {
  std::string verdict = verdictLine(r);
  printHtmlPageStart(os, "greta-diff: " + verdict);
  const RowResult *ff = r.first();
  os << "<header>\n<h1>greta-diff: " << htmlEscape(verdict) << "</h1>\n"
     << "<p class=\"sub\"><span class=\"badge "
     << (r.diverged()          ? "diverged\">divergence"
         : r.undecided.empty() ? "clean\">no divergence"
                               : "undecided\">no verdict")
     << "</span>policy " << policyName(r.policy) << " &middot; prompt "
     << htmlEscape(promptOf(r)) << " (" << r.test.tokenCount << " tokens)";
  if (ff)
    os << " &middot; " << htmlEscape(rt::categoryName(ff->category()));
  os << "</p>\n</header>\n";
  printHtmlDiffSections(os, r, opts);
  os << "<footer>Written by greta-diff --format html; docs/DIFF.md explains "
        "the policies, the heatmap and the tables.</footer>\n";
  printHtmlPageEnd(os);
}
