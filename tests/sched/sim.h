// Virtual-time helpers for the scheduler tests: a link that polls dequeue at a fixed
// interval and books what comes out per class and per connection.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <vector>

#include "dataplane/qos/sched/scheduler.h"

namespace lockstep::sched::test {

inline constexpr uint64_t kMs = 1'000'000;
inline constexpr uint64_t kUs = 1'000;
inline constexpr uint64_t kSec = 1'000'000'000;

inline uint64_t mbit(uint64_t m) { return m * 1'000'000 / 8; }  // bytes per second
inline uint64_t kbit(uint64_t k) { return k * 1'000 / 8; }

// Handle layout used by the tests: class in bits 56..63, conn in 32..55, sequence below.
inline uint64_t make_handle(ClassId c, uint32_t conn, uint32_t seq) {
  return (uint64_t{c} << 56) | (uint64_t{conn & 0xffffff} << 32) | seq;
}
inline ClassId handle_class(uint64_t h) { return static_cast<ClassId>(h >> 56); }
inline uint32_t handle_conn(uint64_t h) { return static_cast<uint32_t>(h >> 32) & 0xffffff; }

struct Out {
  uint64_t handle;
  uint64_t t;
};

// Dequeues everything allowed at `t`; appends to `log`.
inline uint32_t poll(Scheduler& s, uint64_t t, std::vector<Out>& log) {
  uint64_t buf[32];
  uint32_t total = 0, n;
  while ((n = s.dequeue_burst(t, buf)) != 0) {
    for (uint32_t i = 0; i < n; ++i) log.push_back(Out{buf[i], t});
    total += n;
    if (n < 32) break;
  }
  return total;
}

}  // namespace lockstep::sched::test
