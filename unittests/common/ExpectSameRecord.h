//===- ExpectSameRecord.h - Two trace records field by field ----*- C++ -*-===//
#ifndef GRETA_UNITTESTS_COMMON_EXPECTSAMERECORD_H
#define GRETA_UNITTESTS_COMMON_EXPECTSAMERECORD_H

#include "greta/rt/Trace.h"

#include <gtest/gtest.h>

namespace greta::test {

/// Every field a reader fills, so a failure names the one that differs.
inline void expectSameRecord(const rt::Record &a, const rt::Record &b) {
  EXPECT_EQ(a.stage, b.stage);
  EXPECT_EQ(a.layer, b.layer);
  EXPECT_EQ(a.position, b.position);
  EXPECT_EQ(a.dtype, b.dtype);
  EXPECT_EQ(a.shape, b.shape);
  EXPECT_EQ(a.sha256, b.sha256);
  EXPECT_EQ(a.nzCount, b.nzCount);
  EXPECT_EQ(a.nanCount, b.nanCount);
  EXPECT_EQ(a.infCount, b.infCount);
  EXPECT_EQ(a.fingerprint.min, b.fingerprint.min);
  EXPECT_EQ(a.fingerprint.max, b.fingerprint.max);
  EXPECT_EQ(a.fingerprint.mean, b.fingerprint.mean);
  EXPECT_EQ(a.fingerprint.l2, b.fingerprint.l2);
  EXPECT_EQ(a.top5, b.top5);
  EXPECT_EQ(a.payload, b.payload);
  EXPECT_EQ(a.values, b.values);
}

} // namespace greta::test

#endif // GRETA_UNITTESTS_COMMON_EXPECTSAMERECORD_H
