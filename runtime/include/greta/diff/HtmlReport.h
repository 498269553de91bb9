//===- HtmlReport.h - The FIRST_FAIL report as one HTML page ----*- C++ -*-===//
//
// `--format html`: one self-contained page (inline CSS and SVG; no script,
// no network) over the same DiffResult as the text report. It draws a
// layer x stage heatmap of the error (log scale) with FIRST_FAIL outlined,
// the error against token position for FIRST_FAIL's stage and the stages
// after it, and then the text report's tables. greta-bisect builds its
// page from the same pieces. docs/DIFF.md describes the page.
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_DIFF_HTMLREPORT_H
#define GRETA_DIFF_HTMLREPORT_H

#include "greta/diff/Diff.h"
#include "greta/diff/Report.h"

#include <ostream>
#include <string>
#include <string_view>

namespace greta::diff {

/// The outline colour of the FIRST_FAIL heatmap cell (tests look for it in
/// a screenshot): a blue that the heatmap's yellow-to-red scale never uses.
inline constexpr std::string_view kFirstFailColour = "#0050ff";

/// Escapes &, <, >, " and ' for element text and attribute values.
std::string htmlEscape(std::string_view text);

/// The page's start (doctype, title, style sheet, `<body>`) and end.
void printHtmlPageStart(std::ostream &os, std::string_view title);
void printHtmlPageEnd(std::ostream &os);

/// A one-line verdict: "FIRST_FAIL attn_out, layer 3, position 826" or
/// "no divergence".
std::string verdictLine(const DiffResult &r);

/// Everything a diff contributes to a page: runs, verdict, heatmap, error
/// against position, FIRST_FAIL table, root-cause summary, recommendation,
/// hypotheses and counts. `idPrefix` keeps element ids unique where a page
/// holds several diffs (greta-bisect, one per prompt).
void printHtmlDiffSections(std::ostream &os, const DiffResult &r,
                           const ReportOptions &opts,
                           std::string_view idPrefix = "");

/// The whole page of `greta-diff --format html`.
void printHtmlReport(std::ostream &os, const DiffResult &r,
                     const ReportOptions &opts);

} // namespace greta::diff

#endif // GRETA_DIFF_HTMLREPORT_H
