//===- HtmlCharts.h - Inline SVG charts of the HTML report ------*- C++ -*-===//
//
// Private to the GretaDiff library: the heatmap and the error-by-position
// chart of HtmlReport.cpp, drawn from a DiffResult as inline SVG.
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_DIFF_LIB_HTMLCHARTS_H
#define GRETA_DIFF_LIB_HTMLCHARTS_H

#include "greta/diff/Diff.h"

#include <ostream>
#include <string_view>

namespace greta::diff::html {

/// Layer x stage heatmap of CellSummary::maxMae (log scale), FIRST_FAIL's
/// cell outlined in kFirstFailColour, with its legend.
void printHeatmap(std::ostream &os, const DiffResult &r,
                  std::string_view idPrefix);

/// MAE against token position (log scale) for FIRST_FAIL's stage, the
/// stages after it in its layer, and the logits; a paragraph instead when
/// there is no FIRST_FAIL or no values to draw.
void printPositionChart(std::ostream &os, const DiffResult &r);

} // namespace greta::diff::html

#endif // GRETA_DIFF_LIB_HTMLCHARTS_H
