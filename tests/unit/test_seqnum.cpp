// SeqNum: RFC 1982 serial arithmetic on 32 bits, near 0 and across 2^32.
#include <gtest/gtest.h>

#include <cstdint>

#include "compare/seqnum.h"

namespace lockstep {
namespace {

TEST(SeqNum, OrdinaryComparisons) {
  const SeqNum a(100), b(200);
  EXPECT_TRUE(before(a, b));
  EXPECT_TRUE(before_eq(a, b));
  EXPECT_FALSE(after(a, b));
  EXPECT_FALSE(after_eq(a, b));
  EXPECT_TRUE(after(b, a));
  EXPECT_TRUE(before_eq(a, a));
  EXPECT_TRUE(after_eq(a, a));
  EXPECT_FALSE(before(a, a));
  EXPECT_FALSE(after(a, a));
  EXPECT_EQ(b.since(a), 100);
  EXPECT_EQ(a.since(b), -100);
}

TEST(SeqNum, AcrossWrap) {
  const SeqNum hi(0xfffffff0u), lo(0x10u);
  EXPECT_TRUE(before(hi, lo));
  EXPECT_TRUE(after(lo, hi));
  EXPECT_EQ(lo.since(hi), 0x20);
  EXPECT_EQ(hi.since(lo), -0x20);
  EXPECT_TRUE(before(SeqNum(0xffffffffu), SeqNum(0)));
  EXPECT_EQ(SeqNum(0).since(SeqNum(0xffffffffu)), 1);
}

TEST(SeqNum, ArithmeticWraps) {
  SeqNum s(0xfffffffeu);
  EXPECT_EQ((s + 3).raw(), 1u);
  EXPECT_EQ((SeqNum(1) - 3).raw(), 0xfffffffeu);
  s += 2;
  EXPECT_EQ(s.raw(), 0u);
  EXPECT_EQ(SeqNum(5) + 0, SeqNum(5));
}

TEST(SeqNum, MaxMinAcrossWrap) {
  // The bug SeqNum prevents: numerically max(0xffffff00, 0x100) is the older one.
  const SeqNum older(0xffffff00u), newer(0x100u);
  EXPECT_EQ(seq_max(older, newer), newer);
  EXPECT_EQ(seq_max(newer, older), newer);
  EXPECT_EQ(seq_min(older, newer), older);
  EXPECT_EQ(seq_min(newer, older), older);
  EXPECT_EQ(seq_max(SeqNum(7), SeqNum(7)), SeqNum(7));
  EXPECT_EQ(seq_min(SeqNum(3), SeqNum(9)), SeqNum(3));
}

TEST(SeqNum, HalfSpaceBoundary) {
  const SeqNum base(0x80000000u);
  // Distances up to 2^31 - 1 order correctly in both directions.
  EXPECT_TRUE(after(base + 0x7fffffffu, base));
  EXPECT_TRUE(before(base - 0x7fffffffu, base));
  EXPECT_EQ((base + 0x7fffffffu).since(base), 0x7fffffff);
  // Exactly 2^31 apart is the ambiguous point: since() gives INT32_MIN both ways, so
  // each is "before" the other; callers keep windows well below it.
  EXPECT_EQ((base + 0x80000000u).since(base), INT32_MIN);
}

TEST(SeqNum, SweepAroundWrap) {
  // For every start near 2^32 and step below 2^31, start + step is after start.
  for (uint32_t start = 0xffffff00u; start != 0x100u; ++start) {
    for (uint32_t step : {1u, 2u, 1000u, 0x10000u, 0x7fffffffu}) {
      const SeqNum a(start), b = SeqNum(start) + step;
      ASSERT_TRUE(after(b, a)) << start << " " << step;
      ASSERT_TRUE(before(a, b));
      ASSERT_EQ(seq_max(a, b), b);
      ASSERT_EQ(seq_min(a, b), a);
      ASSERT_EQ(b.since(a), static_cast<int32_t>(step));
    }
  }
}

static_assert(SeqNum(1) + 1 == SeqNum(2));
static_assert(seq_max(SeqNum(0xfffffff0u), SeqNum(4)) == SeqNum(4));

}  // namespace
}  // namespace lockstep
