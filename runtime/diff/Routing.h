//===- Routing.h - Mixture-of-experts routing in the diff -------*- C++ -*-===//
//
// Private to runtime/diff: expert_selection rows are judged by their expert
// ids under every policy, and a FIRST_FAIL that changes the experts is
// explained from both runs' router scores (Routing.cpp, docs/DIFF.md
// "Routing").
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_RUNTIME_DIFF_ROUTING_H
#define GRETA_RUNTIME_DIFF_ROUTING_H

#include "Align.h"

#include <optional>

namespace greta::diff::detail {

/// An expert_selection row whose hashes differ: true when its verdict is
/// decided here (the expert ids differ: a divergence under every policy;
/// or they cannot be read on a side: judged bit-exactly), false when the
/// ids agree and the weights are left to the policy.
bool judgeSelection(const Record &b, const Record &t, RowResult &row);

/// When FIRST_FAIL is an expert-id change, the flip with both runs'
/// router margins and its likely cause; nullopt otherwise.
std::optional<RoutingFlip> findRoutingFlip(const TraceRows &base,
                                           const TraceRows &test,
                                           const RowResult &firstFail);

} // namespace greta::diff::detail

#endif // GRETA_RUNTIME_DIFF_ROUTING_H
