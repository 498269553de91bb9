//===- HtmlCharts.cpp - Heatmap and error-by-position SVG charts ----------===//
#include "HtmlCharts.h"
#include "greta/diff/HtmlReport.h"
#include "greta/diff/Report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

using namespace greta;
using namespace greta::diff;
using rt::Stage;

namespace {

/// An SVG coordinate with one decimal.
std::string px(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

/// Whole decades [lo, hi] around the positive finite values (at most 10).
struct LogScale {
  int lo = -6, hi = 0;

  static LogScale over(const std::vector<double> &values) {
    double mn = INFINITY, mx = 0;
    for (double v : values)
      if (v > 0 && std::isfinite(v))
        mn = std::min(mn, v), mx = std::max(mx, v);
    LogScale s;
    if (mx == 0)
      return s;
    s.hi = static_cast<int>(std::ceil(std::log10(mx) - 1e-9));
    s.lo = static_cast<int>(std::floor(std::log10(mn) + 1e-9));
    if (s.hi <= s.lo)
      s.hi = s.lo + 1;
    s.lo = std::max(s.lo, s.hi - 10);
    return s;
  }
  /// 0 at the bottom decade, 1 at the top; clamped.
  double unit(double v) const {
    double t = (std::log10(v) - lo) / (hi - lo);
    return std::isnan(t) ? 1.0 : std::clamp(t, 0.0, 1.0);
  }
  /// Every decade, or every other one when there are many.
  int tickStep() const { return hi - lo > 6 ? 2 : 1; }
};

std::string decadeLabel(int e) {
  return e == 0 ? "1" : "1e" + std::to_string(e);
}

// Yellow to dark red (ColorBrewer YlOrRd without its palest step, which is
// too close to "not traced"); no blue, so the FIRST_FAIL outline stands out.
constexpr unsigned char kScale[][3] = {{0xff, 0xed, 0xa0}, {0xfe, 0xd9, 0x76},
                                       {0xfe, 0xb2, 0x4c}, {0xfd, 0x8d, 0x3c},
                                       {0xfc, 0x4e, 0x2a}, {0xe3, 0x1a, 0x1c},
                                       {0xbd, 0x00, 0x26}, {0x80, 0x00, 0x26}};
constexpr int kScaleSteps = sizeof kScale / sizeof kScale[0];

std::string scaleColour(double t) {
  double f = t * (kScaleSteps - 1);
  int i = std::min(static_cast<int>(f), kScaleSteps - 2);
  double w = f - i;
  char buf[8];
  int rgb[3];
  for (int c = 0; c < 3; ++c)
    rgb[c] = static_cast<int>(
        std::lround(kScale[i][c] * (1 - w) + kScale[i + 1][c] * w));
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", rgb[0], rgb[1], rgb[2]);
  return buf;
}

constexpr std::string_view kMatchFill = "#e4e8ec", kNaNFill = "#111827",
                           kGridLine = "#d0d7de", kMuted = "#57606a";

enum class CellKind { Error, Match, HashOnly, NaN };

CellKind kindOf(const CellSummary &c) {
  if (c.withValues > 0 && std::isnan(c.maxMae))
    return CellKind::NaN;
  if (c.withValues > 0 && c.maxMae > 0)
    return CellKind::Error;
  return c.diverging > 0 ? CellKind::HashOnly : CellKind::Match;
}

std::string cellTitle(const CellSummary &c) {
  std::string s = std::string(rt::stageName(c.stage)) + ", layer " +
                  std::to_string(c.layer) + ": ";
  s += c.withValues ? "max MAE " + formatNumber(c.maxMae) + " over " +
                          std::to_string(c.withValues) + " of "
                    : "no values over ";
  s += std::to_string(c.rows) + " positions; ";
  s += c.diverging ? std::to_string(c.diverging) +
                         " diverging, the first at position " +
                         std::to_string(c.firstDivergingPosition)
                   : "none diverging";
  return s;
}

/// A legend entry: a 14 px swatch (fill and stroke) and its text.
void swatch(std::ostream &os, double x, double y, std::string_view fill,
            std::string_view stroke, double strokeWidth, std::string_view text,
            std::string_view extra = "") {
  os << "<rect x=\"" << px(x) << "\" y=\"" << px(y)
     << "\" width=\"14\" height=\"14\" fill=\"" << fill << "\" stroke=\""
     << stroke << "\" stroke-width=\"" << strokeWidth << "\"" << extra
     << "/><text x=\"" << px(x + 20) << "\" y=\"" << px(y + 11) << "\">"
     << htmlEscape(text) << "</text>\n";
}

} // namespace

void html::printHeatmap(std::ostream &os, const DiffResult &r,
                        std::string_view idPrefix) {
  int64_t lastLayer = 0;
  std::vector<double> maes;
  for (const CellSummary &c : r.cells) {
    lastLayer = std::max(lastLayer, c.layer);
    if (c.withValues)
      maes.push_back(c.maxMae);
  }
  LogScale scale = LogScale::over(maes);
  int64_t layers = lastLayer + 1;
  const double labelW = 150, top = 46, cellH = 22;
  const double cellW = std::clamp(960.0 / layers, 12.0, 60.0);
  const double gridW = cellW * layers, gridH = cellH * rt::kNumStages;
  const double width = std::max(labelW + gridW + 250, 940.0);
  const double legendY = top + gridH + 26;
  const double height = legendY + 88;
  std::string id(idPrefix);
  os << "<svg class=\"heatmap\" xmlns=\"http://www.w3.org/2000/svg\" width=\""
     << px(width) << "\" height=\"" << px(height) << "\" viewBox=\"0 0 "
     << px(width) << " " << px(height)
     << "\" role=\"img\" aria-label=\"error by layer and stage\">\n"
     << "<defs><pattern id=\"" << htmlEscape(id)
     << "hash-only\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" "
        "patternTransform=\"rotate(45)\"><rect width=\"6\" height=\"6\" "
        "fill=\"#d0d4da\"/><rect width=\"2.5\" height=\"6\" fill=\"#6b7280\"/>"
        "</pattern>\n<linearGradient id=\""
     << htmlEscape(id) << "scale\">";
  for (int i = 0; i < kScaleSteps; ++i)
    os << "<stop offset=\"" << px(100.0 * i / (kScaleSteps - 1))
       << "%\" stop-color=\"" << scaleColour(1.0 * i / (kScaleSteps - 1))
       << "\"/>";
  os << "</linearGradient></defs>\n";

  // Layer numbers along the top, at least 24 px apart.
  os << "<text x=\"" << px(labelW + gridW / 2) << "\" y=\"14\" "
     << "text-anchor=\"middle\" class=\"axis-title\">layer</text>\n";
  int64_t every = static_cast<int64_t>(std::ceil(24 / cellW));
  for (int64_t l = 0; l < layers; ++l)
    if (l % every == 0 || l == lastLayer)
      os << "<text x=\"" << px(labelW + (l + 0.5) * cellW) << "\" y=\""
         << px(top - 8) << "\" text-anchor=\"middle\">" << l << "</text>";
  os << "\n";
  for (unsigned s = 0; s < rt::kNumStages; ++s)
    os << "<text x=\"" << px(labelW - 8) << "\" y=\""
       << px(top + (s + 0.5) * cellH + 4) << "\" text-anchor=\"end\">"
       << rt::stageName(rt::kExecutionOrder[s]) << "</text>";
  os << "\n";

  // Every (stage, layer) that exists: embed_out is layer 0 only and the
  // logits are the last layer only; a missing one was not traced.
  std::vector<const CellSummary *> at(rt::kNumStages * layers, nullptr);
  for (const CellSummary &c : r.cells)
    if (c.layer >= 0)
      at[rt::executionRank(c.stage) * layers + c.layer] = &c;
  bool faded = false, hashOnly = false, nan = false;
  for (unsigned s = 0; s < rt::kNumStages; ++s)
    for (int64_t l = 0; l < layers; ++l) {
      Stage stage = rt::kExecutionOrder[s]; // rows in execution order
      double x = labelW + l * cellW, y = top + s * cellH;
      const CellSummary *c = at[s * layers + l];
      auto rect = [&](std::string_view cls) {
        os << "<rect class=\"cell " << cls << "\" x=\"" << px(x + 0.5)
           << "\" y=\"" << px(y + 0.5) << "\" width=\"" << px(cellW - 1)
           << "\" height=\"" << px(cellH - 1) << "\"";
      };
      if (!c) {
        bool exists = (stage != Stage::EmbedOut || l == 0) &&
                      (stage != Stage::Logits || l == lastLayer);
        if (exists) {
          rect("not-traced");
          os << " fill=\"#ffffff\" stroke=\"" << kGridLine
             << "\" stroke-dasharray=\"2 2\" data-stage=\""
             << rt::stageName(stage) << "\" data-layer=\"" << l << "\"><title>"
             << rt::stageName(stage) << ", layer " << l
             << ": not traced</title></rect>";
        }
        continue;
      }
      CellKind kind = kindOf(*c);
      switch (kind) {
      case CellKind::Error:
        rect("error");
        os << " fill=\"" << scaleColour(scale.unit(c->maxMae)) << "\"";
        if (!c->diverging) { // within the policy's bounds
          os << " fill-opacity=\"0.45\"";
          faded = true;
        }
        break;
      case CellKind::Match:
        rect("match");
        os << " fill=\"" << kMatchFill << "\"";
        break;
      case CellKind::HashOnly:
        rect("hash-only");
        os << " fill=\"url(#" << htmlEscape(id) << "hash-only)\"";
        hashOnly = true;
        break;
      case CellKind::NaN:
        rect("nan");
        os << " fill=\"" << kNaNFill << "\"";
        nan = true;
        break;
      }
      os << " data-stage=\"" << rt::stageName(stage) << "\" data-layer=\"" << l
         << "\"><title>" << htmlEscape(cellTitle(*c)) << "</title></rect>";
    }
  os << "\n";
  if (const RowResult *ff = r.first()) {
    // Its row is the stage's execution rank, like the cells above.
    double x = labelW + ff->layer * cellW,
           y = top + rt::executionRank(ff->stage) * cellH;
    os << "<rect id=\"" << htmlEscape(id)
       << "first-fail-cell\" class=\"first-fail\" x=\"" << px(x + 1.5)
       << "\" y=\"" << px(y + 1.5) << "\" width=\"" << px(cellW - 3)
       << "\" height=\"" << px(cellH - 3) << "\" fill=\"none\" stroke=\""
       << kFirstFailColour << "\" stroke-width=\"3\" data-stage=\""
       << rt::stageName(ff->stage) << "\" data-layer=\"" << ff->layer
       << "\" data-position=\"" << ff->position
       << "\"><title>FIRST_FAIL: " << rt::stageName(ff->stage) << ", layer "
       << ff->layer << ", position " << ff->position << "</title></rect>\n"
       << "<text class=\"first-fail-label\" x=\"" << px(labelW + gridW + 10)
       << "\" y=\"" << px(y + cellH / 2 + 4)
       << "\" style=\"fill:" << kFirstFailColour
       << ";font-weight:bold\">&#9664; FIRST_FAIL " << rt::stageName(ff->stage)
       << " L" << ff->layer << " p" << ff->position << "</text>\n";
  }

  // Legend: the colour scale, then the other kinds of cell.
  os << "<text x=\"" << px(labelW) << "\" y=\"" << px(legendY)
     << "\">max MAE(TEST, BASE) over the compared positions, log scale"
     << (maes.empty() ? " (no values traced)" : "") << "</text>\n"
     << "<rect x=\"" << px(labelW) << "\" y=\"" << px(legendY + 8)
     << "\" width=\"300\" height=\"12\" fill=\"url(#" << htmlEscape(id)
     << "scale)\" stroke=\"" << kGridLine << "\"/>\n";
  for (int e = scale.lo; e <= scale.hi; e += scale.tickStep()) {
    double x = labelW + 300.0 * (e - scale.lo) / (scale.hi - scale.lo);
    os << "<line x1=\"" << px(x) << "\" x2=\"" << px(x) << "\" y1=\""
       << px(legendY + 20) << "\" y2=\"" << px(legendY + 24) << "\" stroke=\""
       << kMuted << "\"/><text x=\"" << px(x) << "\" y=\"" << px(legendY + 36)
       << "\" text-anchor=\"middle\">" << decadeLabel(e) << "</text>";
  }
  os << "\n";
  double sx = labelW, sy = legendY + 50;
  auto next = [&](double w) { sx += w; };
  swatch(os, sx, sy, "none", kFirstFailColour, 3, "FIRST_FAIL");
  next(110);
  swatch(os, sx, sy, kMatchFill, "none", 0, "equal (error 0)");
  next(140);
  swatch(os, sx, sy, "#ffffff", kGridLine, 1, "not traced",
         " stroke-dasharray=\"2 2\"");
  next(120);
  if (hashOnly) {
    swatch(os, sx, sy, "url(#" + htmlEscape(id) + "hash-only)", "none", 0,
           "diverges, no values traced");
    next(210);
  }
  if (nan) {
    swatch(os, sx, sy, kNaNFill, "none", 0, "NaN error");
    next(110);
  }
  if (faded)
    swatch(os, sx, sy, scaleColour(0.6), "none", 0,
           "faded: within the policy's bounds", " fill-opacity=\"0.45\"");
  os << "</svg>\n";
}

namespace {

struct Series {
  Stage stage;
  int64_t layer;
  std::vector<std::pair<int64_t, double>> points; // (position, MAE)
  int64_t nan = 0;
};

/// At most `limit` points: the largest error of each run of positions, so
/// a spike is never averaged away.
void thin(std::vector<std::pair<int64_t, double>> &pts, size_t limit) {
  if (pts.size() <= limit)
    return;
  size_t per = (pts.size() + limit - 1) / limit;
  std::vector<std::pair<int64_t, double>> out;
  for (size_t i = 0; i < pts.size(); i += per)
    out.push_back(*std::max_element(
        pts.begin() + i, pts.begin() + std::min(pts.size(), i + per),
        [](auto &a, auto &b) { return a.second < b.second; }));
  pts = std::move(out);
}

/// A round step (1, 2 or 5 times a power of ten) for about `ticks` ticks.
int64_t niceStep(int64_t range, int ticks) {
  double raw = std::max(1.0, static_cast<double>(range) / ticks);
  double p = std::pow(10, std::floor(std::log10(raw)));
  double m = raw / p;
  return static_cast<int64_t>((m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p);
}

// Tableau's categorical colours; no #0050ff-like blue.
constexpr std::string_view kSeriesColours[] = {
    "#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
    "#e377c2", "#17becf", "#7f7f7f", "#bcbd22", "#393b79", "#843c39"};

} // namespace

void html::printPositionChart(std::ostream &os, const DiffResult &r) {
  const RowResult *ff = r.first();
  if (!ff) {
    os << "<p>No FIRST_FAIL: there is no divergence to follow.</p>\n";
    return;
  }
  // FIRST_FAIL's stage, the stages after it in its layer (in execution
  // order, not by stage index), and the logits.
  std::vector<Series> series;
  for (const CellSummary &c : r.cells)
    if ((c.layer == ff->layer &&
         rt::executionRank(c.stage) >= rt::executionRank(ff->stage)) ||
        c.stage == Stage::Logits)
      series.push_back({c.stage, c.layer, {}, 0});
  size_t k = 0;
  bool values = false;
  for (size_t x = 0; x < r.rows.size(); ++x) {
    Stage stage = r.rows.stage(x);
    int64_t layer = r.rows.layer(x);
    while (k < series.size() &&
           rt::executionOrderKey(series[k].stage, series[k].layer) <
               rt::executionOrderKey(stage, layer))
      ++k;
    if (k == series.size())
      break;
    if (series[k].stage != stage || series[k].layer != layer)
      continue;
    const RowResult *row = r.rows.stored(x);
    if (!row) { // equal hashes: error 0
      series[k].points.push_back({r.rows.position(x), 0.0});
    } else if (row->hasMetrics) {
      values = true;
      if (std::isnan(row->metrics.mae))
        ++series[k].nan;
      else
        series[k].points.push_back({row->position, row->metrics.mae});
    }
  }
  if (!values) {
    os << "<p>No values were traced for these records (hash or stats "
          "payload): only where they diverge is known. Trace with "
          "<code>greta-run --payload full</code> to see the error.</p>\n";
    return;
  }

  std::vector<double> all;
  int64_t maxPos = std::max<int64_t>(r.test.tokenCount - 1, 1);
  for (Series &s : series) {
    thin(s.points, 1000);
    for (auto [p, v] : s.points) {
      all.push_back(v);
      maxPos = std::max(maxPos, p);
    }
  }
  LogScale scale = LogScale::over(all);
  const double width = 1000, height = 360, left = 72, right = 210, top = 24,
               bottom = 48;
  const double pw = width - left - right, ph = height - top - bottom;
  const double zeroBand = 18; // error 0 sits below the lowest decade
  auto xOf = [&](int64_t p) { return left + pw * p / maxPos; };
  auto yOf = [&](double v) {
    return v <= 0 ? top + ph : top + (ph - zeroBand) * (1 - scale.unit(v));
  };
  os << "<svg class=\"position-chart\" xmlns=\"http://www.w3.org/2000/svg\" "
        "width=\""
     << px(width) << "\" height=\"" << px(height) << "\" viewBox=\"0 0 "
     << px(width) << " " << px(height)
     << "\" role=\"img\" aria-label=\"error against token position\">\n"
     << "<rect x=\"" << px(left) << "\" y=\"" << px(top) << "\" width=\""
     << px(pw) << "\" height=\"" << px(ph) << "\" fill=\"#fbfcfd\" stroke=\""
     << kGridLine << "\"/>\n";
  for (int e = scale.lo; e <= scale.hi; e += scale.tickStep()) {
    double y = yOf(std::pow(10.0, e));
    os << "<line x1=\"" << px(left) << "\" x2=\"" << px(left + pw) << "\" y1=\""
       << px(y) << "\" y2=\"" << px(y) << "\" stroke=\"" << kGridLine
       << "\"/><text x=\"" << px(left - 6) << "\" y=\"" << px(y + 4)
       << "\" text-anchor=\"end\">" << decadeLabel(e) << "</text>";
  }
  os << "<text x=\"" << px(left - 6) << "\" y=\"" << px(top + ph + 4)
     << "\" text-anchor=\"end\">0</text>\n";
  int64_t step = niceStep(maxPos, 8);
  for (int64_t p = 0; p <= maxPos; p += step)
    os << "<line x1=\"" << px(xOf(p)) << "\" x2=\"" << px(xOf(p)) << "\" y1=\""
       << px(top + ph) << "\" y2=\"" << px(top + ph + 5) << "\" stroke=\""
       << kMuted << "\"/><text x=\"" << px(xOf(p)) << "\" y=\""
       << px(top + ph + 18) << "\" text-anchor=\"middle\">" << p << "</text>";
  os << "\n<text x=\"" << px(left + pw / 2) << "\" y=\"" << px(height - 8)
     << "\" text-anchor=\"middle\" class=\"axis-title\">token position"
        "</text><text transform=\"translate(16 "
     << px(top + ph / 2)
     << ") rotate(-90)\" text-anchor=\"middle\" "
        "class=\"axis-title\">MAE(TEST, BASE), log scale</text>\n";
  // FIRST_FAIL's position.
  double fx = xOf(ff->position);
  os << "<line class=\"first-fail-position\" x1=\"" << px(fx) << "\" x2=\""
     << px(fx) << "\" y1=\"" << px(top) << "\" y2=\"" << px(top + ph)
     << "\" stroke=\"#24292f\" stroke-dasharray=\"5 4\"/><text x=\""
     << px(fx - 4) << "\" y=\"" << px(top - 8) << "\" text-anchor=\"end\">"
     << "FIRST_FAIL position " << ff->position << "</text>\n";

  int64_t nan = 0;
  // FIRST_FAIL's series (the first) is drawn last, on top of the others.
  for (size_t n = 0; n < series.size(); ++n) {
    size_t i = (n + 1) % series.size();
    const Series &s = series[i];
    std::string_view colour =
        kSeriesColours[i % (sizeof kSeriesColours / sizeof kSeriesColours[0])];
    bool isFirst = s.stage == ff->stage && s.layer == ff->layer;
    nan += s.nan;
    os << "<g class=\"series\" data-stage=\"" << rt::stageName(s.stage)
       << "\" data-layer=\"" << s.layer << "\"><polyline fill=\"none\" "
       << "stroke=\"" << colour << "\" stroke-width=\""
       << (isFirst ? "2.5" : "1.5") << "\""
       << (s.stage == Stage::Logits ? " stroke-dasharray=\"6 3\"" : "")
       << " points=\"";
    for (auto [p, v] : s.points)
      os << px(xOf(p)) << "," << px(yOf(v)) << " ";
    os << "\"/>";
    if (s.points.size() <= 80) // sparse data: show where the samples are
      for (auto [p, v] : s.points)
        os << "<circle cx=\"" << px(xOf(p)) << "\" cy=\"" << px(yOf(v))
           << "\" r=\"2.5\" fill=\"" << colour << "\"/>";
    double ly = top + 6 + 20 * i;
    os << "<line x1=\"" << px(left + pw + 16) << "\" x2=\""
       << px(left + pw + 40) << "\" y1=\"" << px(ly) << "\" y2=\"" << px(ly)
       << "\" stroke=\"" << colour << "\" stroke-width=\"2.5\"/><text x=\""
       << px(left + pw + 46) << "\" y=\"" << px(ly + 4) << "\">"
       << rt::stageName(s.stage) << " L" << s.layer
       << (isFirst ? " (FIRST_FAIL)" : "") << "</text></g>\n";
  }
  os << "</svg>\n";
  if (nan)
    os << "<p>" << nan << " points have a NaN error and are not drawn.</p>\n";
}
