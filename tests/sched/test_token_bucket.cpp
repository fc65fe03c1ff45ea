// The token bucket on its own: exact credit at integer times, depth cap, debt from a
// packet longer than the bucket, waits, time running backwards, extreme rates.
#include "dataplane/qos/sched/token_bucket.h"

#include <gtest/gtest.h>

namespace lockstep::sched {
namespace {

TEST(TokenBucket, EarnsExactlyItsRate) {
  const TbProfile p = TbProfile::make(1'000'000, 10'000);  // 1 byte per us
  TbState s;
  s.reset_full(p, 0);
  EXPECT_TRUE(s.conforms(p, 10'000));
  s.charge(10'000);
  EXPECT_FALSE(s.conforms(p, 1));
  s.refill(p, 999);
  EXPECT_FALSE(s.conforms(p, 1));
  s.refill(p, 1000);
  EXPECT_TRUE(s.conforms(p, 1));
  s.refill(p, 1'000'000);  // 1 ms: 1000 bytes
  EXPECT_TRUE(s.conforms(p, 1000));
  EXPECT_FALSE(s.conforms(p, 1001));
  s.refill(p, 1'000'000'000);  // long idle: capped at the depth
  EXPECT_EQ(s.tokens(), 10'000);
}

TEST(TokenBucket, OneSecondOfSendingMatchesTheRate) {
  const TbProfile p = TbProfile::make(125'000, 1500);  // 1 mbit
  TbState s;
  s.reset_full(p, 0);
  uint64_t sent = 0;
  for (uint64_t t = 0; t <= 10'000'000'000ull; t += 10'000) {  // 10 s, 10 us steps
    s.refill(p, t);
    while (s.conforms(p, 100)) {
      s.charge(100);
      sent += 100;
    }
  }
  EXPECT_NEAR(static_cast<double>(sent), 1'250'000.0 + 1500, 200.0);
}

TEST(TokenBucket, PacketLongerThanBucketLeavesDebt) {
  const TbProfile p = TbProfile::make(1'000'000, 1000);
  TbState s;
  s.reset_full(p, 0);
  EXPECT_TRUE(s.conforms(p, 9000));  // full bucket admits it
  s.charge(9000);
  EXPECT_EQ(s.tokens(), -8000);
  EXPECT_NEAR(static_cast<double>(s.wait_ns(p, 100)), 8'100'000.0, 1.0);  // rate rounds up
  s.refill(p, 8'100'000);
  EXPECT_TRUE(s.conforms(p, 100));
  EXPECT_FALSE(s.conforms(p, 101));
}

TEST(TokenBucket, WaitIsExactAndTimeBackwardsEarnsNothing) {
  const TbProfile p = TbProfile::make(2'000'000, 4000);  // 2 bytes per us
  TbState s;
  s.reset_full(p, 5'000);
  s.charge(4000);
  EXPECT_EQ(s.wait_ns(p, 1000), 500'000u);
  s.refill(p, 1'000);  // earlier than the last refill
  EXPECT_EQ(s.tokens(), 0);
  s.refill(p, 5'000 + 500'000);
  EXPECT_TRUE(s.conforms(p, 1000));
}

TEST(TokenBucket, ExtremeRatesStayInRange) {
  for (uint64_t rate : {kTbMinRate, uint64_t{125'000'000}, kTbMaxRate})
    for (uint64_t depth : {uint64_t{1}, uint64_t{1500}, kTbMaxDepth}) {
      const TbProfile p = TbProfile::make(rate, depth);
      TbState s;
      s.reset_full(p, 0);
      s.charge(65535);
      s.refill(p, p.fill_ns - 1);
      EXPECT_LE(s.tokens(), static_cast<int64_t>(depth));
      s.refill(p, UINT64_MAX / 2);
      EXPECT_EQ(s.tokens(), static_cast<int64_t>(depth)) << rate << " " << depth;
    }
}

TEST(TokenBucket, ClampOnProfileChange) {
  const TbProfile big = TbProfile::make(1'000'000, 100'000);
  const TbProfile small = TbProfile::make(1'000'000, 1'000);
  TbState s;
  s.reset_full(big, 0);
  s.clamp(small);
  EXPECT_EQ(s.tokens(), 1000);
}

}  // namespace
}  // namespace lockstep::sched
