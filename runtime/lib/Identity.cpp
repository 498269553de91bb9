//===- Identity.cpp - Are two traces comparable? One place says ----------===//
#include "greta/rt/Identity.h"

#include <algorithm>

using namespace greta::rt;

std::string_view greta::rt::checkOutcomeName(CheckOutcome o) {
  switch (o) {
  case CheckOutcome::Equal:
    return "equal";
  case CheckOutcome::Differs:
    return "differs";
  case CheckOutcome::Unknown:
    return "unknown";
  }
  return "?";
}

TraceIdentity greta::rt::identityOf(const TraceContents &t, std::string role) {
  TraceIdentity id;
  id.role = std::move(role);
  id.manifest = &t.manifest;
  id.complete = t.complete;
  id.integrity = t.integrity;
  return id;
}

std::vector<const IdentityCheck *> IdentityVerdict::checked() const {
  std::vector<const IdentityCheck *> out;
  for (const IdentityCheck &c : checks)
    if (c.outcome == CheckOutcome::Equal)
      out.push_back(&c);
  return out;
}

std::vector<const IdentityCheck *> IdentityVerdict::unchecked() const {
  std::vector<const IdentityCheck *> out;
  for (const IdentityCheck &c : checks)
    if (c.outcome == CheckOutcome::Unknown)
      out.push_back(&c);
  return out;
}

namespace {

std::string joined(const std::vector<std::string> &v, const char *sep) {
  std::string s;
  for (const std::string &x : v)
    s += (s.empty() ? "" : sep) + x;
  return s;
}

/// A field both traces of a pair must agree on. Later fields (the config
/// digest beside the IR digest, per-tensor weights digests that name the
/// tensor that differs, the engine, the stage list) are rows of this table
/// or refinements of a row's comparison.
struct PairField {
  const char *field, *what;
  std::string Manifest::*member;
  const char *why; // what a difference means
  /// Non-null: a difference is compared anyway, and this says on what terms.
  const char *waiver = nullptr;
};
const PairField kPairFields[] = {
    // Different model IR (an edited graph, a pass pipeline's output) is
    // compared: the diff refuses rows whose stages, layers or shapes do not
    // agree (different configs).
    {"model_digest", "model digest", &Manifest::modelDigest,
     "they ran different model IR",
     "different graphs: compared where their configs agree (every traced "
     "stage and layer, the same row shapes)"},
    {"weights_digest", "weights digest", &Manifest::weightsDigest,
     "they ran different weights"},
};

IdentityCheck pairCheck(const TraceIdentity &a, const TraceIdentity &b,
                        const PairField &f) {
  IdentityCheck c;
  c.field = f.field;
  c.what = f.what;
  c.roles = {a.role, b.role};
  c.values = {a.manifest->*f.member, b.manifest->*f.member};
  if (c.values[0].empty() || c.values[1].empty()) {
    c.outcome = CheckOutcome::Unknown;
    c.text = std::string(f.what) + ": none in " +
             (c.values[0].empty() ? a.role : b.role) + "'s manifest";
  } else if (c.values[0] != c.values[1] && f.waiver) {
    c.outcome = CheckOutcome::Differs;
    c.waivedBy = "different graphs";
    c.text = std::string(f.what) + " differs (" + a.role + ", " + b.role +
             "): " + f.waiver;
  } else if (c.values[0] != c.values[1]) {
    c.outcome = CheckOutcome::Differs;
    c.text = std::string("traces are not comparable: ") + f.what +
             " differs (" + a.role + ": '" + c.values[0] + "', " + b.role +
             ": '" + c.values[1] + "'); " + f.why;
  } else {
    c.outcome = CheckOutcome::Equal;
    c.text = std::string(f.what) + ": equal (" + a.role + ", " + b.role + ")";
  }
  return c;
}

/// Token counts, then the prompt digest (which covers every id, so it
/// differs by construction when the lengths do).
void promptChecks(const TraceIdentity &a, const TraceIdentity &b,
                  const IdentityOptions &o, std::vector<IdentityCheck> &out) {
  int64_t na = a.manifest->tokenCount, nb = b.manifest->tokenCount;
  IdentityCheck len;
  len.field = "token_count";
  len.what = "token count";
  len.roles = {a.role, b.role};
  len.values = {na > 0 ? std::to_string(na) : "",
                nb > 0 ? std::to_string(nb) : ""};
  bool sameLength = na == nb;
  if (na <= 0 || nb <= 0) {
    len.outcome = CheckOutcome::Unknown;
    len.text =
        "token count: none in " + (na <= 0 ? a.role : b.role) + "'s manifest";
  } else if (!sameLength) {
    len.outcome = CheckOutcome::Differs;
    if (o.allowDifferentLengths) {
      len.waivedBy = "--allow-different-lengths";
      len.text = "token counts differ (" + a.role + ": " + len.values[0] +
                 ", " + b.role + ": " + len.values[1] +
                 "): shared positions compared";
    } else {
      len.text = "traces have different lengths (" + a.role + ": " +
                 len.values[0] + " tokens, " + b.role + ": " + len.values[1] +
                 " tokens); pass --allow-different-lengths to compare their "
                 "shared positions 0.." +
                 std::to_string(std::min(na, nb) - 1);
    }
  } else {
    len.outcome = CheckOutcome::Equal;
    len.text = "token count: equal (" + len.values[0] + ")";
  }
  out.push_back(len);

  IdentityCheck p;
  p.field = "prompt_digest";
  p.what = "prompt digest";
  p.roles = {a.role, b.role};
  p.values = {a.manifest->promptDigest, b.manifest->promptDigest};
  if (!sameLength && len.outcome == CheckOutcome::Differs) {
    p.outcome = CheckOutcome::Unknown;
    if (o.allowDifferentLengths)
      p.waivedBy = "--allow-different-lengths";
    p.text = "prompt digest: prompts of different lengths differ by "
             "construction; the shared prefix is assumed, not checked";
  } else {
    p = pairCheck(a, b,
                  {"prompt_digest", "prompt digest", &Manifest::promptDigest,
                   "they ran different prompts"});
  }
  out.push_back(p);
}

std::string versionNote(const TraceIdentity &t) {
  return "format version " + std::to_string(t.manifest->formatVersion);
}

/// records.bin belongs to this manifest (run id), and holds what the
/// finished run wrote (count and digest). readTrace refused a mismatch, so
/// each is verified or unknown here.
void ownChecks(const TraceIdentity &t, std::vector<IdentityCheck> &out) {
  IdentityCheck run;
  run.field = "run_id";
  run.what = "run id";
  run.roles = {t.role};
  run.values = {t.manifest->runId};
  if (t.integrity.runIdTied) {
    run.outcome = CheckOutcome::Equal;
    run.text = t.role + " run id: records.bin and manifest.json agree (" +
               t.manifest->runId + ")";
  } else {
    run.outcome = CheckOutcome::Unknown;
    run.text = t.role + " run id: " +
               (t.manifest->formatVersion < 3
                    ? "none (" + versionNote(t) + ", written before run ids)"
                    : std::string("none in manifest.json")) +
               ": records.bin is not tied to its manifest";
  }
  out.push_back(run);
  if (!t.complete)
    return; // A killed run has no count or digest: read up to its last frame.
  IdentityCheck rec;
  rec.field = "records_digest";
  rec.what = "records digest";
  rec.roles = {t.role};
  rec.values = {t.integrity.recordsDigest};
  if (t.integrity.digestVerified) {
    rec.outcome = CheckOutcome::Equal;
    rec.text = t.role + " records: count and digest of the finished run "
                        "verified";
  } else {
    rec.outcome = CheckOutcome::Unknown;
    rec.text =
        t.role + " records digest: none (" +
        (t.manifest->formatVersion < 3 ? versionNote(t)
                                       : std::string("not in manifest.json")) +
        (t.integrity.countVerified ? "; the record count was verified)"
                                   : "; no record count either)");
  }
  out.push_back(rec);
}

} // namespace

IdentityVerdict
greta::rt::checkIdentity(const std::vector<TraceIdentity> &traces,
                         const IdentityOptions &o) {
  IdentityVerdict v;
  if (traces.empty()) {
    v.refusal = "no trace to check";
    return v;
  }
  for (size_t i = 1; i < traces.size(); ++i) {
    for (const PairField &f : kPairFields)
      v.checks.push_back(pairCheck(traces[0], traces[i], f));
    promptChecks(traces[0], traces[i], o, v.checks);
  }
  for (const TraceIdentity &t : traces)
    ownChecks(t, v.checks);

  // A difference refuses first: it is a fact, an unknown is a doubt.
  for (const IdentityCheck &c : v.checks)
    if (c.outcome == CheckOutcome::Differs && c.waivedBy.empty()) {
      v.refusal = c.text;
      return v;
    }
  std::vector<std::string> unknown;
  for (IdentityCheck &c : v.checks) {
    if (c.outcome != CheckOutcome::Unknown || !c.waivedBy.empty())
      continue;
    if (o.allowUnidentified)
      c.waivedBy = "--allow-unidentified";
    else
      unknown.push_back(c.text);
  }
  if (!unknown.empty()) {
    v.refusal = "traces are not fully identified: " + joined(unknown, "; ") +
                ". Nothing unknown is taken as equal: pass "
                "--allow-unidentified to compare them anyway (the report then "
                "lists what was not checked)";
    return v;
  }
  v.comparable = true;
  return v;
}

std::vector<std::string> IdentityVerdict::lines() const {
  // Pair fields equal across every pair: named once.
  std::vector<std::string> pairEqual, roles;
  std::vector<std::pair<std::string, std::vector<std::string>>> own;
  for (const IdentityCheck &c : checks) {
    for (const std::string &r : c.roles)
      if (std::find(roles.begin(), roles.end(), r) == roles.end())
        roles.push_back(r);
    if (c.roles.size() == 1) {
      if (c.outcome != CheckOutcome::Equal)
        continue;
      auto it = std::find_if(own.begin(), own.end(),
                             [&](const auto &p) { return p.first == c.what; });
      if (it == own.end())
        own.push_back({c.what, {c.roles[0]}});
      else
        it->second.push_back(c.roles[0]);
      continue;
    }
    bool allEqual = true;
    for (const IdentityCheck &d : checks)
      if (d.field == c.field && d.outcome != CheckOutcome::Equal)
        allEqual = false;
    if (allEqual && std::find(pairEqual.begin(), pairEqual.end(), c.what) ==
                        pairEqual.end())
      pairEqual.push_back(c.what);
  }
  std::vector<std::string> parts;
  if (!pairEqual.empty())
    parts.push_back(joined(pairEqual, ", ") + " equal (" + joined(roles, ", ") +
                    ")");
  for (const auto &[what, who] : own)
    parts.push_back((what == "run id"
                         ? std::string("run id tied to records.bin")
                         : std::string("record count and digest verified")) +
                    " (" + joined(who, ", ") + ")");
  std::vector<std::string> out;
  out.push_back("checked: " +
                (parts.empty() ? std::string("nothing") : joined(parts, "; ")));
  for (const IdentityCheck &c : checks)
    if (!c.waivedBy.empty())
      out.push_back(
          (c.outcome == CheckOutcome::Unknown ? "not checked" : "accepted") +
          std::string(" (") + c.waivedBy + "): " + c.text);
  return out;
}
