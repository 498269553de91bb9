//===- Report.h - The FIRST_FAIL report: table, summary, advice -*- C++ -*-===//
//
// Renders a DiffResult: the FIRST_FAIL table around the first divergent
// record, the root cause (FIRST_FAIL's category) with the records diverging
// downstream of it, the recommendation for the next study and the hypotheses
// the evidence points to.
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_DIFF_REPORT_H
#define GRETA_DIFF_REPORT_H

#include "greta/diff/Diff.h"

#include <nlohmann/json.hpp>

#include <array>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace greta::diff {

enum class Format { Table, Markdown, Csv, Json, Html };
std::optional<Format> parseFormat(std::string_view name);

/// The prompt's token at one position, for "position 826 (' the')".
struct PromptToken {
  int64_t id = 0;
  std::string text; // rt::quoteToken of its bytes
};

struct ReportOptions {
  Format format = Format::Table;
  /// Rows shown on each side of FIRST_FAIL (or from the start when there is
  /// none); negative shows every aligned row.
  int context = 5;
  std::string basePath, testPath, refPath;
  /// By position; empty (or short) where the tokens are not known.
  std::vector<PromptToken> tokens;
};

/// The tokens of the prompt TEST ran on (its manifest's prompt_ids), named
/// by `tokenizerPath`, or by the tokenizer the manifest records when that is
/// "" (then a missing or changed tokenizer file only leaves `tokens` empty).
/// False with `error` when the tokenizer given cannot be loaded or is not
/// the one the run used (digests differ).
bool loadPromptTokens(const rt::Manifest &test,
                      const std::string &tokenizerPath,
                      std::vector<PromptToken> &tokens, std::string &error);

/// "826", or "826 (' the')" where the token at `position` is known.
std::string positionText(const ReportOptions &o, int64_t position);

/// The recommendation for the next study, by FIRST_FAIL stage and place.
std::string recommendation(const RowResult &firstFail);
/// The verdict line when no row diverges: "No divergence: ..." or, when the
/// result is undecided (DiffResult::undecided), "No verdict: ...".
std::string noDivergenceLine(const DiffResult &r);

/// The diverging records after FIRST_FAIL (every one but FIRST_FAIL itself:
/// none diverges before it), by category: the consequences of the root
/// cause, not further causes.
struct Downstream {
  int64_t records = 0;
  std::array<int64_t, rt::kNumCategories> byCategory{};
  double percent(unsigned category) const {
    return records ? 100.0 * byCategory[category] / records : 0.0;
  }
};
Downstream downstream(const DiffResult &r);

/// A number as the text report prints it (4 significant digits, nan, inf).
std::string formatNumber(double v);

/// Indices of the rows shown: [lo, hi).
std::pair<size_t, size_t> contextWindow(const DiffResult &r, int context);

nlohmann::json toJson(const DiffResult &r, const ReportOptions &opts);
void printReport(std::ostream &os, const DiffResult &r,
                 const ReportOptions &opts);

} // namespace greta::diff

#endif // GRETA_DIFF_REPORT_H
