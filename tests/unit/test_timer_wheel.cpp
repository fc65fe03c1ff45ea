// Timer wheel: fires exactly the timers due, in any slot and beyond one revolution;
// cancel and reschedule; earliest().
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "compare/timer_wheel.h"

namespace lockstep {
namespace {

constexpr uint64_t kSlotNs = uint64_t{1} << TimerWheel::kGranularityShift;

std::vector<uint32_t> fire(TimerWheel& w, uint64_t now) {
  std::vector<uint32_t> out;
  w.expire(now, [&](uint32_t id) { out.push_back(id); });
  std::sort(out.begin(), out.end());
  return out;
}

TEST(TimerWheel, FiresOnlyWhatIsDue) {
  TimerWheel w(8);
  const uint64_t t0 = 1'000'000'000'000;
  w.expire(t0, [](uint32_t) {});
  w.schedule(0, t0 + 10);
  w.schedule(1, t0 + 5 * kSlotNs);
  w.schedule(2, t0 + 5 * kSlotNs + 1);
  EXPECT_EQ(w.earliest(), t0 + 10);
  EXPECT_TRUE(fire(w, t0 + 9).empty());
  EXPECT_EQ(fire(w, t0 + 10), std::vector<uint32_t>{0});
  EXPECT_EQ(fire(w, t0 + 5 * kSlotNs), std::vector<uint32_t>{1});
  EXPECT_EQ(w.size(), 1u);
  EXPECT_EQ(fire(w, t0 + 5 * kSlotNs + 1), std::vector<uint32_t>{2});
  EXPECT_EQ(w.earliest(), UINT64_MAX);
}

TEST(TimerWheel, BeyondOneRevolutionWaitsItsTurn) {
  TimerWheel w(4);
  const uint64_t t0 = 42 * kSlotNs;
  w.expire(t0, [](uint32_t) {});
  const uint64_t far = t0 + 3 * TimerWheel::kSlots * kSlotNs + 7;
  w.schedule(3, far);
  for (uint64_t t = t0; t < far; t += kSlotNs / 2) ASSERT_TRUE(fire(w, t).empty()) << t;
  EXPECT_EQ(fire(w, far), std::vector<uint32_t>{3});
}

TEST(TimerWheel, CancelAndRescheduleAndBigJumps) {
  TimerWheel w(4);
  w.schedule(0, 100);
  w.schedule(1, 200);
  w.cancel(0);
  w.cancel(0);  // twice is harmless
  EXPECT_FALSE(w.armed(0));
  w.schedule(1, 50);  // reschedule moves it
  EXPECT_EQ(w.size(), 1u);
  EXPECT_EQ(fire(w, 60), std::vector<uint32_t>{1});
  w.schedule(2, 10 * kSlotNs);
  EXPECT_EQ(fire(w, uint64_t{1} << 50), std::vector<uint32_t>{2}) << "a jump past many revolutions";
}

TEST(TimerWheel, RandomAgainstASortedList) {
  std::mt19937_64 rng(7);
  const uint32_t n = 2000;
  TimerWheel w(n);
  std::vector<uint64_t> due(n, UINT64_MAX);
  uint64_t now = 5;
  w.expire(now, [](uint32_t) {});
  for (int step = 0; step < 20000; ++step) {
    uint32_t id = static_cast<uint32_t>(rng() % n);
    if (rng() % 4 == 0) {
      w.cancel(id);
      due[id] = UINT64_MAX;
    } else {
      due[id] = now + rng() % (3 * TimerWheel::kSlots * kSlotNs);
      w.schedule(id, due[id]);
    }
    now += rng() % (kSlotNs * 3);
    std::vector<uint32_t> expect;
    for (uint32_t i = 0; i < n; ++i) {
      if (due[i] <= now) {
        expect.push_back(i);
        due[i] = UINT64_MAX;
      }
    }
    ASSERT_EQ(fire(w, now), expect) << "step " << step;
  }
}

}  // namespace
}  // namespace lockstep
