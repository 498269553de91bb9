//===- BisectHtml.cpp - greta-bisect --format html ------------------------===//
//
// The bisection's page: the FIRST_FAIL table of every prompt, each prompt's
// steps as a timeline, then greta-diff's HTML sections over the traces of
// its report step (compared here, with the engine greta-diff runs).
//
//===----------------------------------------------------------------------===//
#include "greta/bisect/Bisect.h"

#include "greta/diff/Diff.h"
#include "greta/diff/HtmlReport.h"
#include "greta/rt/Trace.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <set>
#include <sstream>

namespace fs = std::filesystem;
using greta::diff::htmlEscape;

namespace greta::bisect {
namespace {

std::string px(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

std::string maeText(const std::optional<double> &mae) {
  if (!mae)
    return "n/a";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", *mae);
  return buf;
}

std::string shorten(const std::string &s, size_t max) {
  return s.size() <= max ? s : s.substr(0, max - 3) + "...";
}

/// The layers a step traced ("0,1,4", "3", "all") as a set.
std::set<int64_t> layersOf(const std::string &spec, int64_t numLayers) {
  std::set<int64_t> out;
  if (spec == "all") {
    for (int64_t l = 0; l < numLayers; ++l)
      out.insert(l);
    return out;
  }
  std::stringstream ss(spec);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty() &&
        item.find_first_not_of("0123456789") == std::string::npos)
      out.insert(std::stoll(item));
  return out;
}

std::string stepOutcome(const StepLog &s) {
  if (!s.firstFail)
    return "no divergence";
  return "first divergence " + s.firstFail->stage + " layer " +
         std::to_string(s.firstFail->layer) + " position " +
         std::to_string(s.firstFail->position);
}

/// stepOutcome in a few words, for the timeline.
std::string shortOutcome(const StepLog &s) {
  if (!s.firstFail)
    return "no divergence";
  return s.firstFail->stage + " L" + std::to_string(s.firstFail->layer) + " p" +
         std::to_string(s.firstFail->position);
}

/// One row per step, top to bottom in the order they ran: the layers it
/// traced (the step's first diverging layer in red; green when nothing
/// diverged) and what it found.
void printTimeline(std::ostream &os, const Options &o, const PromptResult &r) {
  const double rowH = 30, top = 34, labelX = 44, axisX = 210;
  const double cellW = std::clamp(300.0 / o.numLayers, 6.0, 22.0);
  const double textX = axisX + cellW * o.numLayers + 20;
  const double width = 1100, height = top + rowH * r.steps.size() + 10;
  os << "<svg class=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" "
        "width=\""
     << px(width) << "\" height=\"" << px(height) << "\" viewBox=\"0 0 "
     << px(width) << " " << px(height)
     << "\" role=\"img\" aria-label=\"bisection steps\">\n"
     << "<text x=\"" << px(axisX) << "\" y=\"14\" class=\"axis-title\">"
     << "layers traced (0 to " << o.numLayers - 1 << ")</text><text x=\""
     << px(textX) << "\" y=\"14\" class=\"axis-title\">what the step found"
     << "</text>\n<line x1=\"20\" x2=\"20\" y1=\"" << px(top + rowH / 2)
     << "\" y2=\"" << px(top + rowH * (r.steps.size() - 0.5))
     << "\" stroke=\"#d0d7de\" stroke-width=\"2\"/>\n";
  int64_t every = static_cast<int64_t>(std::ceil(18 / cellW));
  for (int64_t l = 0; l < o.numLayers; ++l)
    if (l % every == 0 || l == o.numLayers - 1)
      os << "<text x=\"" << px(axisX + (l + 0.5) * cellW) << "\" y=\""
         << px(top - 6) << "\" text-anchor=\"middle\" font-size=\"10\">" << l
         << "</text>";
  os << "\n";
  for (size_t i = 0; i < r.steps.size(); ++i) {
    const StepLog &s = r.steps[i];
    double y = top + rowH * i, cy = y + rowH / 2;
    bool diverged = s.firstFail.has_value();
    os << "<g class=\"step\" data-step=\"" << htmlEscape(s.id) << "\">"
       << "<circle cx=\"20\" cy=\"" << px(cy) << "\" r=\"9\" fill=\""
       << (diverged ? "#b42318" : "#1a7f37") << "\"/><text x=\"20\" y=\""
       << px(cy + 4) << "\" text-anchor=\"middle\" font-size=\"10\" "
       << "style=\"fill:#fff\">" << i + 1 << "</text><text x=\"" << px(labelX)
       << "\" y=\"" << px(cy + 4) << "\" class=\"mono\">" << htmlEscape(s.id)
       << "</text>";
    std::set<int64_t> traced = layersOf(s.layers, o.numLayers);
    for (int64_t l = 0; l < o.numLayers; ++l) {
      bool on = traced.count(l);
      bool first = diverged && s.firstFail->layer == l;
      os << "<rect x=\"" << px(axisX + l * cellW + 0.5) << "\" y=\""
         << px(cy - 7) << "\" width=\"" << px(cellW - 1)
         << "\" height=\"14\" fill=\""
         << (first      ? "#b42318"
             : !on      ? "#f6f8fa"
             : diverged ? "#8c9aab"
                        : "#7fbf8f")
         << "\"/>";
    }
    os << "<text x=\"" << px(textX) << "\" y=\"" << px(cy + 4) << "\">"
       << htmlEscape("stages " + shorten(s.stages, 20) + ", positions " +
                     shorten(s.positions, 24) + ", " + s.payload)
       << " &#8594; <tspan style=\"font-weight:bold\">"
       << htmlEscape(shortOutcome(s)) << "</tspan></text><title>"
       << htmlEscape(s.id + ": layers " + s.layers + ", stages " + s.stages +
                     ", positions " + s.positions + ", payload " + s.payload +
                     ": " + stepOutcome(s) +
                     (s.note.empty() ? "" : " (" + s.note + ")"))
       << "</title></g>\n";
  }
  os << "</svg>\n";
}

/// The text report's step list, as a table.
void printSteps(std::ostream &os, const PromptResult &r) {
  os << "<table class=\"steps\">\n<tr><th>#</th><th>Step</th><th>Layers</th>"
        "<th>Stages</th><th>Positions</th><th>Payload</th><th>Result</th>"
        "</tr>\n";
  for (size_t i = 0; i < r.steps.size(); ++i) {
    const StepLog &s = r.steps[i];
    os << "<tr><td class=\"num\">" << i + 1 << "</td><td class=\"mono\">"
       << htmlEscape(s.id) << "</td><td>" << htmlEscape(s.layers) << "</td><td>"
       << htmlEscape(s.stages) << "</td><td class=\"wrap\">"
       << htmlEscape(s.positions) << "</td><td>" << htmlEscape(s.payload)
       << "</td><td>" << htmlEscape(stepOutcome(s))
       << (s.note.empty() ? "" : " (" + htmlEscape(s.note) + ")")
       << "</td></tr>\n";
  }
  os << "</table>\n";
}

/// greta-diff's sections over the report step's traces.
void printDiff(std::ostream &os, const Options &o, const PromptResult &r,
               const std::string &idPrefix) {
  std::string error;
  std::optional<rt::TraceContents> traces[3];
  const char *roles[] = {"base", "test", "ref"};
  int n = o.ref ? 3 : 2;
  rt::ReadOptions ro;
  ro.keepBlocks = true;
  for (int i = 0; i < n && error.empty(); ++i) {
    std::string path = (fs::path(r.reportDir) / roles[i]).string(), why;
    traces[i] = rt::readTrace(path, why, ro);
    if (!traces[i])
      error = path + ": " + why;
  }
  std::optional<diff::DiffResult> result;
  if (error.empty()) {
    diff::Options d;
    d.policy = *diff::parsePolicy(diffPolicy(o));
    result = diff::diffTraces(*traces[0], *traces[1],
                              o.ref ? &*traces[2] : nullptr, d, error);
  }
  if (!result) {
    os << "<p class=\"note\">No comparison to draw: "
       << htmlEscape(error.empty() ? "no report traces" : error) << "</p>\n";
    return;
  }
  diff::ReportOptions ropts;
  ropts.format = diff::Format::Html;
  ropts.basePath = (fs::path(r.reportDir) / "base").string();
  ropts.testPath = (fs::path(r.reportDir) / "test").string();
  if (o.ref)
    ropts.refPath = (fs::path(r.reportDir) / "ref").string();
  const diff::RowResult *ff = result->first();
  if (r.firstFail && ff &&
      (rt::stageName(ff->stage) != r.firstFail->stage ||
       ff->layer != r.firstFail->layer ||
       ff->position != r.firstFail->position))
    os << "<p class=\"note\">note: this step's first divergence, "
       << htmlEscape(diff::verdictLine(*result))
       << ", is not the bisection's FIRST_FAIL: it traces a sample of the "
          "positions only, at every layer.</p>\n";
  os << "<div class=\"nested\">\n";
  diff::printHtmlDiffSections(os, *result, ropts, idPrefix);
  os << "</div>\n";
}

} // namespace

std::string renderHtml(const Options &o,
                       const std::vector<PromptResult> &results) {
  const PromptResult *failing = nullptr, *stopped = nullptr;
  for (const PromptResult &r : results) {
    if (r.firstFail && !failing)
      failing = &r;
    if (!r.testFailure.empty() && !stopped)
      stopped = &r;
  }
  std::string verdict = "no divergence";
  if (failing)
    verdict = "FIRST_FAIL " + failing->firstFail->stage + ", layer " +
              std::to_string(failing->firstFail->layer) + ", position " +
              std::to_string(failing->firstFail->position) + " (" +
              failing->prompt + ")";
  else if (stopped) // a test run that failed after it started (RunEvidence.h)
    verdict = "the test run failed (" + stopped->prompt + ")";
  std::ostringstream os;
  diff::printHtmlPageStart(os, "greta-bisect: " + verdict);
  os << "<header>\n<h1>greta-bisect: " << htmlEscape(verdict) << "</h1>\n"
     << "<p class=\"sub\"><span class=\"badge "
     << (failing || stopped ? "diverged\">divergence" : "clean\">no divergence")
     << "</span>model <code>" << htmlEscape(o.model) << "</code> ("
     << o.numLayers << " layers), weights <code>" << htmlEscape(o.weights)
     << "</code></p>\n<table class=\"configs\">\n<tr><th>Configuration</th>"
     << "<th>greta-run flags</th></tr>\n<tr><td>base</td><td class=\"mono\">"
     << htmlEscape(o.base.flagsText) << "</td></tr>\n<tr><td>test</td>"
     << "<td class=\"mono\">" << htmlEscape(o.test.flagsText) << "</td></tr>\n";
  if (o.ref)
    os << "<tr><td>reference</td><td class=\"mono\">"
       << htmlEscape(o.ref->flagsText) << "</td></tr>\n";
  os << "</table>\n</header>\n<h2>FIRST_FAIL</h2>\n<table class=\"bisect\">\n"
     << "<tr><th>Prompt</th><th>Position</th><th>Layer</th><th>Tensor</th>"
     << "<th>Category</th><th>Hash match</th><th>MAE</th><th>Runs/config</th>"
     << "<th>Bytes written</th></tr>\n";
  for (const PromptResult &r : results) {
    os << "<tr" << (r.firstFail ? " class=\"first-fail\"" : "") << "><td>"
       << htmlEscape(r.prompt) << " (" << r.tokenCount << " tokens)</td>";
    if (const auto &ff = r.firstFail)
      os << "<td class=\"num\">" << ff->position << "</td><td class=\"num\">"
         << ff->layer << "</td><td>" << htmlEscape(ff->stage) << "</td><td>"
         << htmlEscape(ff->category) << "</td><td>"
         << (ff->hashMatch ? "YES" : "NO") << "</td><td class=\"num\">"
         << maeText(ff->mae) << "</td>";
    else
      os << "<td>-</td><td>-</td><td>"
         << (r.testFailure.empty() ? "no divergence"
                                   : "none before the test run stopped")
         << "</td><td>-</td><td>-</td><td>-</td>";
    os << "<td class=\"num\">" << r.runsPerConfig << "</td><td class=\"num\">"
       << r.bytesWritten << "</td></tr>\n";
  }
  os << "</table>\n";
  for (size_t i = 0; i < results.size(); ++i) {
    const PromptResult &r = results[i];
    std::string prefix = "p" + std::to_string(i) + "-";
    os << "<section class=\"prompt\" id=\"" << prefix << "prompt\">\n<h2>"
       << htmlEscape(r.prompt) << " (" << r.tokenCount << " tokens)</h2>\n"
       << "<h3>Steps</h3>\n";
    printTimeline(os, o, r);
    printSteps(os, r);
    if (!r.confirmation.empty())
      os << "<p>Causal confirmation: " << htmlEscape(r.confirmation)
         << ".</p>\n";
    if (!r.testFailure.empty())
      os << "<p>" << htmlEscape(testFailureSentence(r.testFailure)) << "</p>\n";
    os << "<h3>Comparison of step <code>"
       << htmlEscape(fs::path(r.reportDir).filename().string())
       << "</code></h3>\n";
    printDiff(os, o, r, prefix);
    os << "</section>\n";
  }
  os << "<footer>Written by greta-bisect --format html; docs/USER_GUIDE.md "
        "describes the bisection and docs/DIFF.md the comparison.</footer>\n";
  diff::printHtmlPageEnd(os);
  return os.str();
}

} // namespace greta::bisect
