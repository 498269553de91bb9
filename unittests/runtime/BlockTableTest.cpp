//===- BlockTableTest.cpp - The paged KV cache's host bookkeeping ---------===//
#include "greta/rt/BlockTable.h"

#include <gtest/gtest.h>

using namespace greta::rt;

TEST(BlockTable, PagesAreTakenAsTheSequenceGrows) {
  BlockTable t(16, 4);
  std::string err;
  EXPECT_EQ(t.covered(), 0);
  ASSERT_TRUE(t.grow(1, err)) << err;
  EXPECT_EQ(t.table(), (std::vector<int32_t>{0}));
  ASSERT_TRUE(t.grow(16, err)); // the page's last position: no new page
  EXPECT_EQ(t.covered(), 16);
  ASSERT_TRUE(t.grow(17, err)); // position 16 opens page 1
  EXPECT_EQ(t.table(), (std::vector<int32_t>{0, 1}));
  EXPECT_EQ(t.row(15), 15);
  EXPECT_EQ(t.row(16), 16);
  EXPECT_EQ(t.row(17), 17);
}

TEST(BlockTable, BoundaryPositionsAtBlockSizes16_7_1) {
  for (int64_t bs : {16, 7, 1}) {
    BlockTable t(bs, BlockTable::pagesFor(100, bs));
    std::string err;
    // Grown one position at a time, as decode steps do.
    for (int64_t end = 1; end <= 100; ++end)
      ASSERT_TRUE(t.grow(end, err)) << bs << " " << err;
    EXPECT_EQ(t.covered(), BlockTable::pagesFor(100, bs) * bs);
    for (int64_t p = 0; p < 100; ++p)
      EXPECT_EQ(t.row(p), p) << "block size " << bs << ", position " << p;
  }
}

TEST(BlockTable, AResetRunReusesTheLastPagesFirst) {
  BlockTable t(7, 3);
  std::string err;
  ASSERT_TRUE(t.grow(20, err));
  EXPECT_EQ(t.table(), (std::vector<int32_t>{0, 1, 2}));
  t.reset();
  EXPECT_EQ(t.covered(), 0);
  ASSERT_TRUE(t.grow(8, err));
  // The new run's page 0 is the old run's last page: a row of it not
  // written again holds another position's values (a stale page).
  EXPECT_EQ(t.table(), (std::vector<int32_t>{2, 1}));
  EXPECT_EQ(t.row(0), 14);
  EXPECT_EQ(t.row(7), 7);
}

TEST(BlockTable, AFullPoolIsAnErrorThatTakesNothing) {
  BlockTable t(16, 2);
  std::string err;
  ASSERT_TRUE(t.grow(10, err));
  EXPECT_FALSE(t.grow(40, err));
  EXPECT_EQ(err, "the paged KV cache has 1 free pages of 16 positions, "
                 "position 39 needs 2 more (pool of 2 pages)");
  EXPECT_EQ(t.table().size(), 1u);
  EXPECT_TRUE(t.grow(32, err));
}
