// Timer wheel: fires exactly the timers due, in any slot and beyond one revolution;
// cancel and reschedule; earliest(), its bound and due() against a plain list.
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

// Held frames leave in about the order they came: every release cancels the earliest
// timer. The bound stays below earliest() throughout, earliest() is exact, and due()
// says what a list of the deadlines says, in FIFO and random orders alike.
TEST(TimerWheel, BoundAndDueAgainstTheList) {
  std::mt19937_64 rng(11);
  const uint32_t n = 512;
  for (const bool fifo : {true, false}) {
    TimerWheel w(n);
    std::vector<uint64_t> due(n, UINT64_MAX);
    uint64_t now = 1'000'000;
    w.expire(now, [](uint32_t) {});
    uint32_t next_in = 0, next_out = 0;
    const uint64_t timeout = fifo ? 3 * TimerWheel::kSlots * kSlotNs : 100 * kSlotNs;
    for (int step = 0; step < 40000; ++step) {
      const uint64_t r = rng();
      if (fifo) {
        if (r % 3 != 0 && next_in - next_out < n) {
          const uint32_t id = next_in++ % n;
          due[id] = now + timeout;
          w.schedule(id, due[id]);
        } else if (next_out < next_in) {
          const uint32_t id = next_out++ % n;
          w.cancel(id);  // the earliest one, most of the time
          due[id] = UINT64_MAX;
        }
        now += r % 64;
      } else {
        const uint32_t id = static_cast<uint32_t>(r % n);
        if (r % 5 == 0) {
          w.cancel(id);
          due[id] = UINT64_MAX;
        } else {
          due[id] = now + (r >> 20) % timeout;
          w.schedule(id, due[id]);
        }
        now += (r >> 40) % (kSlotNs / 4);
      }
      const uint64_t want = *std::min_element(due.begin(), due.end());
      ASSERT_LE(w.earliest_bound(), want) << "step " << step;
      ASSERT_EQ(w.due(now), want <= now) << "step " << step;
      if (step % 7 == 0) {
        ASSERT_EQ(w.earliest(), want) << "step " << step;
      }
      if (step % 16 == 0 || want <= now) {
        w.expire(now, [&](uint32_t id) {
          ASSERT_LE(due[id], now);
          due[id] = UINT64_MAX;
        });
        for (uint64_t d : due) {
          ASSERT_GT(d, now) << "step " << step;
        }
        ASSERT_FALSE(w.due(now));
        if (fifo) {
          while (next_out < next_in && due[next_out % n] == UINT64_MAX) ++next_out;
        }
      }
    }
  }
}

}  // namespace
}  // namespace lockstep
