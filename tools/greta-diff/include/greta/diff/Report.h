//===- Report.h - The FIRST_FAIL report: table, summary, advice -*- C++ -*-===//
//
// Renders a DiffResult the way the B3.61 study lays it out: the FIRST_FAIL
// table around the first divergent record, the root-cause summary, the
// recommendation for the next study (seed 6.1) and the hypothesis (seed 6.2).
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_DIFF_REPORT_H
#define GRETA_DIFF_REPORT_H

#include "greta/diff/Diff.h"

#include <nlohmann/json.hpp>

#include <optional>
#include <ostream>
#include <string>

namespace greta::diff {

enum class Format { Table, Markdown, Csv, Json, Html };
std::optional<Format> parseFormat(std::string_view name);

struct ReportOptions {
  Format format = Format::Table;
  /// Rows shown on each side of FIRST_FAIL (or from the start when there is
  /// none); negative shows every aligned row.
  int context = 5;
  std::string basePath, testPath, refPath;
};

/// The recommendation for the next study, by FIRST_FAIL stage and place
/// (seed section 6.1, extended to every stage).
std::string recommendation(const RowResult &firstFail);
/// The verdict line when no row diverges: "No divergence: ..." or, when the
/// result is undecided (DiffResult::undecided), "No verdict: ...".
std::string noDivergenceLine(const DiffResult &r);

/// A number as the text report prints it (4 significant digits, nan, inf).
std::string formatNumber(double v);

/// Indices of the rows shown: [lo, hi).
std::pair<size_t, size_t> contextWindow(const DiffResult &r, int context);

nlohmann::json toJson(const DiffResult &r, const ReportOptions &opts);
void printReport(std::ostream &os, const DiffResult &r,
                 const ReportOptions &opts);

} // namespace greta::diff

#endif // GRETA_DIFF_REPORT_H
