//===- Identity.h - Are two traces comparable? One place says -*- C++ -*-===//
//
// A trace says what produced it (model, weights and prompt digests) and
// carries a run id shared by its manifest and records.bin; the reader
// verifies the run id and, for a finished run, the record count and digest
// (readTrace refuses a mismatch). checkIdentity() compares the identities of
// two or three traces and returns every field it checked with its outcome,
// whether the traces are comparable, and the text a report prints.
// greta-diff calls it (greta-bisect through greta-diff); nothing else
// decides comparability. An unknown field is never taken as equal: it
// refuses the comparison unless the caller allows unidentified traces, and
// is then listed as not checked. docs/RELIABILITY.md gives the threat model.
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_RT_IDENTITY_H
#define GRETA_RT_IDENTITY_H

#include "greta/rt/Trace.h"

#include <string>
#include <string_view>
#include <vector>

namespace greta::rt {

enum class CheckOutcome {
  Equal,   // checked and the same (or, for one trace, verified)
  Differs, // checked and different
  Unknown, // a value is missing: nothing could be checked
};
std::string_view checkOutcomeName(CheckOutcome o);

/// One field, checked across the traces (model, weights, prompt, length) or
/// for one trace alone (records.bin tied to its manifest, records verified).
struct IdentityCheck {
  std::string field;               // JSON key: "model_digest", "run_id", ...
  std::string what;                // for people: "model digest"
  std::vector<std::string> roles;  // "BASE", "TEST" (a pair) or one role
  std::vector<std::string> values; // one per role; "" when unknown
  CheckOutcome outcome = CheckOutcome::Unknown;
  /// The option that accepted a difference or an unknown value
  /// ("--allow-different-lengths", "--allow-unidentified"); empty if none.
  std::string waivedBy;
  std::string text; // one line: the outcome, and why it matters
};

struct IdentityOptions {
  /// Traces of different token counts compare on their shared positions
  /// (the prompt digests then differ by construction and are not checked).
  bool allowDifferentLengths = false;
  /// Compare traces whose identity is incomplete (format 1/2 traces, foreign
  /// writers): every unknown field is listed as not checked.
  bool allowUnidentified = false;
  // Later: allowDifferentGraphs (same config digest, different IR digest:
  // "different graphs of the same model", compared on request).
};

/// One trace as checkIdentity sees it: its role, what its manifest says and
/// what the reader verified (TraceContents::integrity).
struct TraceIdentity {
  std::string role; // BASE, TEST, REF
  const Manifest *manifest = nullptr;
  bool complete = false;
  TraceIntegrity integrity;
};
TraceIdentity identityOf(const TraceContents &t, std::string role);

struct IdentityVerdict {
  bool comparable = false;
  std::vector<IdentityCheck> checks; // in the order they were made
  /// Why the traces are not comparable, naming the field, the roles and
  /// their values (and the option that would accept it, if any).
  std::string refusal;

  /// The checks that compared or verified something (outcome Equal).
  std::vector<const IdentityCheck *> checked() const;
  /// The checks left unknown (only when comparable: they were waived).
  std::vector<const IdentityCheck *> unchecked() const;
  /// What a report prints: "checked: ...", "not checked: ...", one or more
  /// lines.
  std::vector<std::string> lines() const;
};

/// Compares traces[1..] with traces[0] (BASE): model, weights, length and
/// prompt; and checks each trace's own tie to its records (run id, record
/// count and digest). Never throws; every refusal is in `refusal`.
IdentityVerdict checkIdentity(const std::vector<TraceIdentity> &traces,
                              const IdentityOptions &options);

} // namespace greta::rt

#endif // GRETA_RT_IDENTITY_H
