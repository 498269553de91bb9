//===- Report.cpp - FIRST_FAIL table, root-cause summary, advice -----------===//
#include "greta/diff/Report.h"
#include "greta/diff/HtmlReport.h"
#include "greta/rt/Tokenizer.h"

#include <cmath>
#include <cstdio>
#include <sstream>

using namespace greta;
using namespace greta::diff;
using rt::Stage;

std::optional<Format> greta::diff::parseFormat(std::string_view name) {
  if (name == "table")
    return Format::Table;
  if (name == "markdown")
    return Format::Markdown;
  if (name == "csv")
    return Format::Csv;
  if (name == "json")
    return Format::Json;
  if (name == "html")
    return Format::Html;
  return std::nullopt;
}

std::string greta::diff::noDivergenceLine(const DiffResult &r) {
  std::string rows = std::to_string(r.counts.aligned) + " aligned records";
  std::string policy = std::string(policyName(r.policy));
  if (r.undecided.empty())
    return "No divergence: " + rows + ", none diverges under the " + policy +
           " policy.";
  return "No verdict: none of the " + rows + " diverges under the " + policy +
         " policy, but they are not all the runs wrote:";
}

std::string greta::diff::recommendation(const RowResult &ff) {
  std::string where = " (layer " + std::to_string(ff.layer) + ", position " +
                      std::to_string(ff.position) + ")";
  switch (ff.stage) {
  case Stage::EmbedOut:
    return "Audit the embedding lookup" + where +
           ": the token id reaching the gather, the table row read (index "
           "type and offset arithmetic for large ids) and the dtype of the "
           "embedding table.";
  case Stage::ResidualPreAttn:
    if (ff.layer == 0)
      return "Investigate the position encoding of the embedding in extended "
             "contexts and test rotary position embedding modifications" +
             where + ".";
    return "The layer input differs while the previous layer's output was "
           "traced earlier in execution order: check how the residual buffer "
           "is handed from layer " + std::to_string(ff.layer - 1) +
           " to layer " + std::to_string(ff.layer) +
           " (copies, aliasing, stale buffers)" + where + ".";
  case Stage::AttnIn:
    return "Audit input_layernorm (RMSNorm) before attention" + where +
           ": epsilon, reduction precision and order over the hidden size, "
           "weight application; then the Q/K/V projection inputs at boundary "
           "positions.";
  case Stage::QPreRope:
  case Stage::KPreRope:
    return "Audit the query/key projection kernels for position-specific "
           "errors and validate the application of the Q/K/V weights at "
           "boundary positions" +
           where + ".";
  case Stage::VProj:
    return "Audit the value projection (v_proj GEMM and its bias)" + where +
           ": the V rows written to the KV cache are what attention "
           "averages; check the weight, its layout and the row stride.";
  case Stage::QPostRope:
  case Stage::KPostRope:
    return "Investigate the mechanics of RoPE application in extended "
           "contexts" +
           where +
           ": the position index fed to RoPE, the cos/sin table length and "
           "precision, rotate-half pairing and rope_theta/scaling.";
  case Stage::AttnOut:
    return "Investigate the attention computation in extended contexts" +
           where +
           ": numerical stability of the scores (scaling, max-subtracted "
           "softmax, accumulation precision), the causal mask, and KV-cache "
           "reads and writes for every position up to this one.";
  case Stage::KCache:
  case Stage::VCache:
    return "Audit the KV-cache write" + where +
           ": the row stored for this position (its slot or page, the "
           "offset past a chunk or block boundary, k after RoPE) against "
           "k_post_rope and v_proj of the same position.";
  case Stage::KCacheRead:
  case Stage::VCacheRead:
    return "Audit the KV-cache read" + where +
           ": a row read here differs from the row written earlier (stale, "
           "overwritten or mis-paged entry); compare each row of the read "
           "with the k_cache/v_cache record of its position.";
  case Stage::ResidualPostAttn:
    return "Debug the residual-add kernel for position-specific problems and "
           "verify dtype consistency between layers" +
           where + ".";
  case Stage::FfnNormIn:
    return "Audit post_attention_layernorm (RMSNorm)" + where +
           ": epsilon, reduction precision and order, weight application, "
           "and the row stride it reads.";
  case Stage::MlpOut:
    return "Audit the MLP" + where +
           ": gate/up/down GEMMs (tile edges at the hidden and intermediate "
           "sizes), SwiGLU activation precision and f16 overflow of the "
           "intermediate product.";
  case Stage::RouterLogits:
    return "Audit the mixture-of-experts router" + where +
           ": the gate GEMM (its weight, dtype and accumulation) and its "
           "input, post_attention_layernorm's output.";
  case Stage::ExpertSelection:
    return "Audit the router's softmax, top-k and renormalisation" + where +
           ": the weights differ while the experts are the same (the "
           "renormalisation, norm_topk_prob, the dtype of the weights).";
  case Stage::MoeOut:
    return "Audit the experts and their combination" + where +
           ": each expert's gate/up/down GEMMs, the token-to-expert gather "
           "and scatter, and the weighted sum (its order and dtype).";
  case Stage::ResidualPostMlp:
    return "Debug the residual-add kernel after the MLP for position-specific "
           "problems and verify dtype consistency between layers" +
           where + ".";
  case Stage::Logits:
    return "Every traced layer matches but the logits differ" + where +
           ": check the final RMSNorm, the LM head GEMM (tied embeddings), "
           "and the layers not traced (widen the layer filter).";
  }
  return "";
}

std::pair<size_t, size_t> greta::diff::contextWindow(const DiffResult &r,
                                                     int context) {
  size_t n = r.rows.size();
  if (context < 0)
    return {0, n};
  size_t c = static_cast<size_t>(context);
  size_t center = r.firstFail.value_or(0);
  size_t lo = center > c ? center - c : 0;
  size_t hi = std::min(n, center + c + 1);
  return {lo, hi};
}

greta::diff::Downstream greta::diff::downstream(const DiffResult &r) {
  Downstream d;
  for (unsigned c = 0; c < rt::kNumCategories; ++c)
    d.byCategory[c] = r.categoryCounts[c];
  if (const RowResult *ff = r.first())
    --d.byCategory[static_cast<unsigned>(ff->category())];
  d.records = r.counts.diverging - (r.first() ? 1 : 0);
  return d;
}

/// NaN is an undefined metric (nothing finite to measure, a zero row's
/// angle): "n/a", never a number.
static std::string fmtNum(double v) {
  if (std::isnan(v))
    return "n/a";
  if (std::isinf(v))
    return v > 0 ? "inf" : "-inf";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

std::string greta::diff::formatNumber(double v) { return fmtNum(v); }

static std::string maeText(const RowResult &row) {
  return row.hasMetrics ? fmtNum(row.metrics.mae) : "-";
}

static std::string promptOf(const DiffResult &r) {
  return r.test.promptName.empty() ? "-" : r.test.promptName;
}

bool greta::diff::loadPromptTokens(const rt::Manifest &test,
                                   const std::string &tokenizerPath,
                                   std::vector<PromptToken> &tokens,
                                   std::string &error) {
  tokens.clear();
  const std::string &path =
      tokenizerPath.empty() ? test.tokenizer : tokenizerPath;
  if (path.empty() || test.promptIds.empty())
    return true;
  std::string why;
  auto tokenizer = rt::Tokenizer::load(path, why);
  if (!tokenizer || (!test.tokenizerDigest.empty() &&
                     tokenizer->digest() != test.tokenizerDigest)) {
    if (tokenizerPath.empty())
      return true; // the recorded tokenizer moved or changed: no token text
    error = "--tokenizer " +
            (tokenizer ? path +
                             " is not the tokenizer TEST ran with "
                             "(digest " +
                             tokenizer->digest() + ", the manifest records " +
                             test.tokenizerDigest + ")"
                       : why);
    return false;
  }
  for (int64_t id : test.promptIds)
    tokens.push_back({id, rt::quoteToken(tokenizer->tokenBytes(id))});
  return true;
}

std::string greta::diff::positionText(const ReportOptions &o,
                                      int64_t position) {
  std::string s = std::to_string(position);
  if (position >= 0 && position < static_cast<int64_t>(o.tokens.size()))
    s += " (" + o.tokens[position].text + ")";
  return s;
}

static nlohmann::json rowJson(const DiffResult &r, const RowResult &row,
                              const ReportOptions &o) {
  nlohmann::json j;
  j["stage"] = std::string(rt::stageName(row.stage));
  j["layer"] = row.layer;
  j["position"] = row.position;
  if (row.position >= 0 &&
      row.position < static_cast<int64_t>(o.tokens.size())) {
    j["token_id"] = o.tokens[row.position].id;
    j["token"] = o.tokens[row.position].text;
  }
  j["category"] = std::string(rt::categoryName(row.category()));
  j["hash_match"] = row.hashMatch;
  auto num = [](double v) -> nlohmann::json {
    if (std::isnan(v))
      return nullptr;
    return v;
  };
  j["mae"] = row.hasMetrics ? num(row.metrics.mae) : nlohmann::json(nullptr);
  if (row.hasMetrics) {
    j["max_abs"] = num(row.metrics.maxAbs);
    j["rel_l2"] = std::isinf(row.metrics.relL2) ? nlohmann::json("inf")
                                                : num(row.metrics.relL2);
    j["cosine"] = num(row.metrics.cosine);
    j["not_close"] = row.metrics.notClose;
    j["non_finite_differ"] = row.metrics.nonFiniteDiffer;
    j["nan"] = {{"base", row.metrics.nanBase}, {"test", row.metrics.nanTest}};
    j["inf"] = {{"base", row.metrics.infBase}, {"test", row.metrics.infTest}};
  }
  j["diverges"] = row.diverges;
  j["basis"] = std::string(basisName(row.basis));
  j["precision"] = std::string(precisionName(row.precision));
  if (row.hasReference) {
    j["err_test_ref"] = num(row.errTest);
    j["err_base_ref"] = num(row.errBase);
    j["k"] = row.k;
    j["allowance"] = num(row.allowance);
  }
  if (!row.note.empty())
    j["note"] = row.note;
  (void)r;
  return j;
}

/// Every identity check with its outcome, and the report's lines. A pair
/// field gives both values; a trace's own check (run id, records digest)
/// only its role: those values are the run's own, and equivalent
/// comparisons give equal reports.
static nlohmann::json identityJson(const rt::IdentityVerdict &v) {
  nlohmann::json checks = nlohmann::json::array();
  for (const rt::IdentityCheck &c : v.checks) {
    nlohmann::json j = {
        {"field", c.field},
        {"outcome", std::string(rt::checkOutcomeName(c.outcome))},
        {"waived_by", c.waivedBy.empty() ? nlohmann::json(nullptr)
                                         : nlohmann::json(c.waivedBy)}};
    if (c.roles.size() == 1) {
      j["role"] = c.roles[0];
    } else {
      nlohmann::json values = nlohmann::json::object();
      for (size_t i = 0; i < c.roles.size(); ++i)
        values[c.roles[i]] = c.values[i].empty() ? nlohmann::json(nullptr)
                                                 : nlohmann::json(c.values[i]);
      j["values"] = values;
    }
    checks.push_back(j);
  }
  return {{"checks", checks}, {"summary", v.lines()}};
}

static nlohmann::json traceJson(const rt::Manifest &m, const std::string &path) {
  return {{"path", path},          {"prompt", m.promptName},
          {"tokens", m.tokenCount}, {"backend", m.backend},
          {"precision", m.precision}, {"pipeline", m.pipeline}};
}

nlohmann::json greta::diff::toJson(const DiffResult &r,
                                   const ReportOptions &opts) {
  nlohmann::json j;
  j["tool"] = "greta-diff";
  j["policy"] = std::string(policyName(r.policy));
  j["base"] = traceJson(r.base, opts.basePath);
  j["test"] = traceJson(r.test, opts.testPath);
  j["ref"] = r.ref ? traceJson(*r.ref, opts.refPath) : nlohmann::json(nullptr);
  j["identity"] = identityJson(r.identity);
  j["diverged"] = r.diverged();
  j["verdict"] = std::string(verdictName(r.verdict()));
  j["undecided"] = r.undecided;
  j["first_fail"] = r.first() ? rowJson(r, *r.first(), opts) : nlohmann::json(nullptr);
  if (r.generation)
    j["generation"] = {{"step", r.generation->step},
                       {"position", r.generation->position},
                       {"base_token", r.generation->baseToken},
                       {"test_token", r.generation->testToken},
                       {"text", describe(*r.generation)}};
  else
    j["generation"] = nullptr;
  // One root cause (FIRST_FAIL's category); the records diverging after it
  // are its consequences, counted apart.
  Downstream down = downstream(r);
  nlohmann::json cats = nlohmann::json::array();
  for (unsigned c = 0; c < rt::kNumCategories; ++c)
    cats.push_back({{"category", std::string(rt::categoryName(
                                     static_cast<rt::Category>(c)))},
                    {"records", down.byCategory[c]},
                    {"percent", down.percent(c)}});
  const RowResult *first = r.first();
  j["summary"] = {
      {"root_cause",
       first ? nlohmann::json(std::string(rt::categoryName(first->category())))
             : nlohmann::json(nullptr)},
      {"diverging", r.counts.diverging},
      {"downstream", {{"records", down.records}, {"categories", cats}}}};
  const Counts &c = r.counts;
  j["counts"] = {{"base_records", c.baseRecords},
                 {"test_records", c.testRecords},
                 {"ref_records", c.refRecords},
                 {"aligned", c.aligned},
                 {"compared", c.aligned - c.hashEqual},
                 {"hash_equal", c.hashEqual},
                 {"compared_values", c.comparedValues},
                 {"compared_fingerprint", c.comparedFingerprint},
                 {"compared_hash_only", c.comparedHashOnly},
                 {"reference_fallback", c.referenceFallback},
                 {"skipped",
                  {{"only_in_base", c.onlyInBase},
                   {"only_in_test", c.onlyInTest},
                   {"beyond_shared_length", c.beyondSharedLength},
                   {"after_truncation", c.afterTruncation}}},
                 {"bytes_compared", c.bytesCompared}};
  if (const RoutingFlip *f = r.routing ? &*r.routing : nullptr) {
    nlohmann::json ranks = nlohmann::json::array();
    for (size_t i = 0;
         i < std::max(f->baseExperts.size(), f->testExperts.size()); ++i) {
      int32_t b = i < f->baseExperts.size() ? f->baseExperts[i] : -1;
      int32_t t = i < f->testExperts.size() ? f->testExperts[i] : -1;
      if (b != t)
        ranks.push_back({{"rank", i}, {"base", b}, {"test", t}});
    }
    auto number = [](double v) {
      return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
    };
    j["routing"] = {{"layer", f->layer},
                    {"position", f->position},
                    {"base_experts", f->baseExperts},
                    {"test_experts", f->testExperts},
                    {"rank_changes", ranks},
                    {"base_margin", number(f->baseMargin)},
                    {"test_margin", number(f->testMargin)},
                    {"router_logit_change", number(f->logitChange)},
                    {"cause", std::string(routingCauseName(f->cause))}};
  } else {
    j["routing"] = nullptr;
  }
  if (const RowResult *ff = r.first()) {
    j["recommendation"] =
        r.routing ? routingAdvice(*r.routing) : recommendation(*ff);
    nlohmann::json alts = nlohmann::json::array();
    for (HypothesisKind k : r.hypothesis.alternatives)
      alts.push_back(std::string(hypothesisName(k)));
    j["hypothesis"] = {{"kind", std::string(hypothesisName(r.hypothesis.kind))},
                       {"evidence", r.hypothesis.evidence},
                       {"alternatives", alts}};
  } else {
    j["recommendation"] = nullptr;
    j["hypothesis"] = nullptr;
  }
  j["notes"] = r.notes;
  j["different_graphs"] = r.differentGraphs.empty()
                              ? nlohmann::json(nullptr)
                              : nlohmann::json(r.differentGraphs);
  nlohmann::json rows = nlohmann::json::array();
  auto [lo, hi] = contextWindow(r, opts.context);
  for (size_t i = lo; i < hi; ++i)
    rows.push_back(rowJson(r, r.rows[i], opts));
  j["rows"] = rows;
  return j;
}

namespace {
/// Prints rows of cells as an aligned text table or a markdown table.
void printGrid(std::ostream &os, const std::vector<std::vector<std::string>> &g,
               bool markdown) {
  std::vector<size_t> w(g[0].size(), 0);
  for (const auto &row : g)
    for (size_t c = 0; c < row.size(); ++c)
      w[c] = std::max(w[c], row[c].size());
  auto line = [&](const std::vector<std::string> &row) {
    os << (markdown ? "| " : "");
    for (size_t c = 0; c < row.size(); ++c) {
      os << row[c];
      // No trailing blanks after the last cell of a text table.
      if (markdown || c + 1 < row.size())
        os << std::string(w[c] - row[c].size(), ' ');
      if (c + 1 < row.size())
        os << (markdown ? " | " : "  ");
    }
    os << (markdown ? " |" : "") << "\n";
  };
  line(g[0]);
  if (markdown) {
    os << "|";
    for (size_t c = 0; c < w.size(); ++c)
      os << std::string(w[c] + 2, '-') << "|";
    os << "\n";
  } else {
    size_t total = 0;
    for (size_t x : w)
      total += x + 2;
    os << std::string(total - 2, '-') << "\n";
  }
  for (size_t i = 1; i < g.size(); ++i)
    line(g[i]);
}

void printCsv(std::ostream &os, const DiffResult &r, const ReportOptions &o) {
  os << "prompt,position,layer,tensor,category,hash_match,mae,max_abs,rel_l2,"
        "cosine,diverges,first_fail,basis\n";
  auto [lo, hi] = contextWindow(r, o.context);
  for (size_t i = lo; i < hi; ++i) {
    const RowResult &row = r.rows[i];
    auto m = [&](double v) { return row.hasMetrics ? fmtNum(v) : ""; };
    os << promptOf(r) << "," << row.position << "," << row.layer << ","
       << rt::stageName(row.stage) << "," << rt::categoryName(row.category())
       << "," << (row.hashMatch ? "yes" : "no") << "," << m(row.metrics.mae)
       << "," << m(row.metrics.maxAbs) << "," << m(row.metrics.relL2) << ","
       << m(row.metrics.cosine) << "," << (row.diverges ? "yes" : "no") << ","
       << (r.firstFail == i ? "yes" : "no") << "," << basisName(row.basis)
       << "\n";
  }
}
} // namespace

void greta::diff::printReport(std::ostream &os, const DiffResult &r,
                              const ReportOptions &o) {
  if (o.format == Format::Json) {
    os << toJson(r, o).dump(2) << "\n";
    return;
  }
  if (o.format == Format::Html) {
    printHtmlReport(os, r, o);
    return;
  }
  if (o.format == Format::Csv) {
    printCsv(os, r, o);
    return;
  }
  bool md = o.format == Format::Markdown;
  auto heading = [&](const std::string &s) {
    os << "\n" << (md ? "## " : "") << s << "\n\n";
  };
  os << (md ? "# " : "") << "greta-diff: policy " << policyName(r.policy)
     << ", prompt " << promptOf(r) << " (" << r.test.tokenCount
     << " tokens)\n";
  if (!r.differentGraphs.empty())
    os << (md ? "\n" : "") << "different graphs: " << r.differentGraphs << "\n";
  if (!md)
    os << "\n";
  else
    os << "\n";
  os << (md ? "- " : "  ") << "BASE: " << o.basePath << " (" << r.base.backend
     << ", " << r.base.precision << ")\n";
  os << (md ? "- " : "  ") << "TEST: " << o.testPath << " (" << r.test.backend
     << ", " << r.test.precision << ")\n";
  if (r.ref)
    os << (md ? "- " : "  ") << "REF:  " << o.refPath << " (" << r.ref->backend
       << ", " << r.ref->precision << ")\n";
  for (const std::string &l : r.identity.lines())
    os << (md ? "- " : "  ") << l << "\n";
  for (const std::string &n : r.notes)
    os << (md ? "- " : "  ") << "note: " << n << "\n";

  const RowResult *ff = r.first();
  heading("FIRST_FAIL");
  if (r.generation) {
    os << "FIRST_FAIL: " << describe(*r.generation) << "\n";
    if (!ff)
      os << "No compared record at or before position "
         << r.generation->position
         << " diverges: the logits that chose the tokens were not traced "
            "there, or the choice itself differs (sampling: seed, "
            "temperature, top-p).\n\n";
    else
      os << "first tensor divergence at or before it:\n";
  }
  if (ff) {
    os << "FIRST_FAIL: " << rt::stageName(ff->stage) << " layer " << ff->layer
       << " position " << positionText(o, ff->position) << " ["
       << rt::categoryName(ff->category()) << "], hash match "
       << (ff->hashMatch ? "YES" : "NO") << ", MAE " << maeText(*ff);
    if (ff->hasMetrics)
      os << ", max-abs " << fmtNum(ff->metrics.maxAbs) << ", rel-L2 "
         << fmtNum(ff->metrics.relL2) << ", cosine "
         << fmtNum(ff->metrics.cosine);
    if (ff->hasMetrics && ff->metrics.nonFiniteDiffer)
      os << ", " << ff->metrics.nonFiniteDiffer
         << " non-finite elements differ";
    if (ff->hasReference)
      os << ", err(TEST,REF) " << fmtNum(ff->errTest) << " > "
         << (ff->allowance > ff->k * ff->errBase
                 ? "accumulation allowance " + fmtNum(ff->allowance)
                 : fmtNum(ff->k) + " * err(BASE,REF) " + fmtNum(ff->errBase))
         << " + floor";
    os << " (judged by " << basisName(ff->basis) << ")\n";
    if (r.routing)
      os << "Routing flip: " << routingFlipLine(*r.routing) << "\n";
    os << "\n";
  } else if (!r.generation) {
    os << noDivergenceLine(r) << "\n";
    for (const std::string &u : r.undecided)
      os << (md ? "- " : "  - ") << u << "\n";
    os << "\n";
  }

  std::vector<std::vector<std::string>> grid = {
      {"Prompt", "Position", "Layer", "Tensor", "Hash match", "MAE",
       "FIRST_FAIL", "Diverges"}};
  auto [lo, hi] = contextWindow(r, o.context);
  for (size_t i = lo; i < hi; ++i) {
    const RowResult &row = r.rows[i];
    bool isFirst = r.firstFail == i;
    grid.push_back(
        {promptOf(r), positionText(o, row.position), std::to_string(row.layer),
         std::string(rt::stageName(row.stage)), row.hashMatch ? "YES" : "NO",
         maeText(row), isFirst ? (md ? "**YES**" : "YES") : "NO",
         row.diverges ? "yes" : "no"});
  }
  printGrid(os, grid, md);
  if (hi - lo < r.rows.size())
    os << "(" << hi - lo << " of " << r.rows.size()
       << " aligned records shown; --context N widens, --context -1 shows "
          "all)\n";

  heading("Root cause");
  if (ff) {
    // One cause: where the divergence starts. What diverges after it is
    // propagation, counted apart so it does not read as further causes.
    Downstream down = downstream(r);
    os << "Root cause: " << rt::categoryName(ff->category())
       << " (FIRST_FAIL: " << rt::stageName(ff->stage) << ", layer "
       << ff->layer << ", position " << ff->position << ")\n";
    if (down.records == 0) {
      os << "Downstream: no other record diverges (of " << r.counts.aligned
         << " aligned records).\n";
    } else {
      os << "Downstream: " << down.records
         << " more records diverge after FIRST_FAIL (of " << r.counts.aligned
         << " aligned records), by category:\n\n";
      std::vector<std::vector<std::string>> cats = {
          {"Category", "Records", "Percent"}};
      for (unsigned c = 0; c < rt::kNumCategories; ++c) {
        if (!down.byCategory[c])
          continue;
        char pct[16];
        std::snprintf(pct, sizeof pct, "%.1f%%", down.percent(c));
        cats.push_back(
            {std::string(rt::categoryName(static_cast<rt::Category>(c))),
             std::to_string(down.byCategory[c]), pct});
      }
      printGrid(os, cats, md);
    }
  } else {
    os << "No root cause: no record diverges.\n";
  }

  if (ff) {
    heading("Recommendation");
    os << (r.routing ? routingAdvice(*r.routing) : recommendation(*ff)) << "\n";
    heading("Hypotheses");
    os << "Points to: " << hypothesisName(r.hypothesis.kind) << "\n";
    for (const std::string &e : r.hypothesis.evidence)
      os << "- " << e << "\n";
    if (!r.hypothesis.alternatives.empty()) {
      os << "- also compatible:";
      for (size_t i = 0; i < r.hypothesis.alternatives.size(); ++i)
        os << (i ? ", " : " ") << hypothesisName(r.hypothesis.alternatives[i]);
      os << "\n";
    }
  }

  heading("Counts");
  const Counts &c = r.counts;
  os << "records: BASE " << c.baseRecords << ", TEST " << c.testRecords;
  if (r.ref)
    os << ", REF " << c.refRecords;
  os << "; aligned " << c.aligned << "\n";
  os << "hash-equal (not compared numerically): " << c.hashEqual
     << "; compared on values: " << c.comparedValues
     << "; by fingerprint: " << c.comparedFingerprint
     << "; hash only: " << c.comparedHashOnly << "\n";
  os << "skipped: only in BASE " << c.onlyInBase << ", only in TEST "
     << c.onlyInTest << ", past the shared length " << c.beyondSharedLength
     << ", after a truncation " << c.afterTruncation << "\n";
}
