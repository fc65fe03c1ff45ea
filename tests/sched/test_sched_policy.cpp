// The scheduling policy in virtual time: priority bound under a saturating bulk class,
// guaranteed rates never starved, ceilings and the port rate never exceeded, throttled
// connections at their rate, fair shares inside a class and between equal-prio classes.
// Everything is deterministic: time is a loop variable, sources are fixed patterns.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <iostream>
#include <vector>

#include "dataplane/qos/sched/scheduler.h"
#include "tests/sched/sim.h"

namespace lockstep::sched {
namespace {
using namespace test;

constexpr uint32_t kMaxPkt = 1514;

SchedConfig cfg() {
  SchedConfig c;
  c.max_connections = 1024;
  c.max_packets = 8192;
  c.max_packet_bytes = kMaxPkt;
  return c;
}

// A connection that is kept backlogged (`depth` packets queued) from `start` on.
struct Flow {
  Flow(ClassId c, uint32_t cn, uint32_t l, uint32_t d = 4, uint64_t st = 0)
      : cls(c), conn(cn), len(l), depth(d), start(st) {}
  ClassId cls;
  uint32_t conn;
  uint32_t len;
  uint32_t depth;
  uint64_t start;
  uint32_t queued = 0;
  uint32_t seq = 0;
  uint64_t bytes = 0;  // dequeued inside the measuring window
};

// Polls every `poll_ns` from `from` to `to`; tops flows up before each poll; calls
// on_out(handle, len, t) for each dequeued packet.
struct Sim {
  Sim(Scheduler& sc, std::vector<Flow>& fl) : s(sc), flows(fl) {}
  Scheduler& s;
  std::vector<Flow>& flows;
  uint64_t win_begin = 0, win_end = UINT64_MAX;
  std::function<void(uint64_t, uint64_t)> on_out;  // (handle, t)
  std::function<void(uint64_t)> before_poll;       // (t): extra arrivals

  Flow* find(uint32_t conn) {
    for (Flow& f : flows)
      if (f.conn == conn) return &f;
    return nullptr;
  }

  void run(uint64_t from, uint64_t to, uint64_t poll_ns) {
    std::vector<Out> log;
    for (uint64_t t = from; t <= to; t += poll_ns) {
      for (Flow& f : flows) {
        if (t < f.start) continue;
        while (f.queued < f.depth) {
          ASSERT_TRUE(s.enqueue({make_handle(f.cls, f.conn, f.seq++), f.conn, f.len, f.cls}, t).queued);
          ++f.queued;
        }
      }
      if (before_poll) before_poll(t);
      log.clear();
      poll(s, t, log);
      for (const Out& o : log) {
        if (Flow* f = find(handle_conn(o.handle)); f != nullptr && handle_class(o.handle) == f->cls) {
          --f->queued;
          if (t >= win_begin && t < win_end) f->bytes += f->len;
        }
        if (on_out) on_out(o.handle, t);
      }
    }
  }
};

// Replays a departure log through an exact token bucket: the output never used more
// than `rate` bytes/s with `depth` bytes of burst. Returns the deepest overdraft (bytes).
struct BucketChecker {
  double rate_per_ns, depth, tokens;
  uint64_t last = 0;
  double worst = 0;
  BucketChecker(uint64_t rate, uint64_t d)
      : rate_per_ns(static_cast<double>(rate) / 1e9), depth(static_cast<double>(d)),
        tokens(static_cast<double>(d)) {}
  void sent(uint64_t t, uint32_t len) {
    tokens = std::min(depth, tokens + static_cast<double>(t - last) * rate_per_ns);
    last = t;
    tokens -= len;
    worst = std::min(worst, tokens);
  }
};

TEST(SchedPolicy, SaturatingBulkNeverDelaysHigherClassBeyondBound) {
  Scheduler s(cfg());
  PortParams port;
  port.rate = mbit(100);
  port.burst = 2 * kMaxPkt;
  ASSERT_EQ(s.set_port(port, 0), "");
  ClassParams heartbeat;
  heartbeat.prio = 0;
  heartbeat.rate = mbit(10);
  heartbeat.ceil = mbit(100);
  heartbeat.burst = 15 * 1024;
  ClassParams bulk;
  bulk.prio = 7;
  ASSERT_EQ(s.add_class(0, heartbeat, 0), "");
  ASSERT_EQ(s.add_class(7, bulk, 0), "");
  std::vector<Flow> flows;
  for (uint32_t c = 0; c < 40; ++c) flows.push_back(Flow{7, 1000 + c, kMaxPkt, 8});

  // Heartbeats: 200 B, one every 1.37 ms, on two connections.
  std::vector<uint64_t> enq_t;
  std::vector<uint64_t> bulk_bytes_at;  // bulk bytes dequeued so far, at each heartbeat
  uint64_t bulk_bytes = 0, max_delay = 0, max_bulk_between = 0;
  uint32_t hb = 0, hb_out = 0;
  Sim sim(s, flows);
  sim.before_poll = [&](uint64_t t) {
    while (static_cast<uint64_t>(hb) * 1'370'000 < t) {
      ASSERT_TRUE(s.enqueue({make_handle(0, hb % 2, hb), hb % 2, 200, 0}, t).queued);
      enq_t.push_back(t);
      bulk_bytes_at.push_back(bulk_bytes);
      ++hb;
    }
  };
  sim.on_out = [&](uint64_t h, uint64_t t) {
    if (handle_class(h) == 7) {
      bulk_bytes += kMaxPkt;
      return;
    }
    const uint32_t i = static_cast<uint32_t>(h & 0xffffffff);
    max_delay = std::max(max_delay, t - enq_t[i]);
    max_bulk_between = std::max(max_bulk_between, bulk_bytes - bulk_bytes_at[i]);
    ++hb_out;
  };
  const uint64_t poll_ns = 10 * kUs;
  sim.run(0, kSec, poll_ns);
  ASSERT_GT(hb, 700u);
  EXPECT_GE(hb_out + 1, hb);
  // Bound from the requirement: one maximum-size packet at port rate, plus the burst,
  // (+ the polling interval, the granularity of the virtual link).
  const uint64_t pkt_time = kMaxPkt * kSec / port.rate;
  const uint64_t burst_time = port.burst * kSec / port.rate;
  EXPECT_LE(max_delay, pkt_time + burst_time + poll_ns) << "max delay " << max_delay << " ns";
  EXPECT_LE(max_bulk_between, kMaxPkt + port.burst);
  std::cout << "heartbeats " << hb << ", max delay " << max_delay << " ns, most bulk bytes ahead "
            << max_bulk_between << ", bulk bytes " << bulk_bytes << "\n";
  // The link stayed busy: the bulk class got nearly all of the rest.
  EXPECT_GT(bulk_bytes, mbit(100) * 95 / 100 - mbit(1));
}

TEST(SchedPolicy, LowClassWithGuaranteedRateIsNeverStarved) {
  Scheduler s(cfg());
  PortParams port;
  port.rate = mbit(100);
  ASSERT_EQ(s.set_port(port, 0), "");
  ClassParams high, low;
  high.prio = 0;
  high.rate = mbit(50);
  high.ceil = mbit(100);
  low.prio = 7;
  low.rate = mbit(20);
  low.ceil = mbit(100);
  ASSERT_EQ(s.add_class(1, high, 0), "");
  ASSERT_EQ(s.add_class(2, low, 0), "");
  std::vector<Flow> flows;
  for (uint32_t c = 0; c < 8; ++c) flows.push_back(Flow{1, c, 1200, 8});
  for (uint32_t c = 0; c < 4; ++c) flows.push_back(Flow{2, 100 + c, 800, 8});
  // Bytes per 100 ms window for the low class.
  std::vector<uint64_t> low_win(20, 0), high_win(20, 0);
  BucketChecker port_check(port.rate, s.port_stats(0).params.burst ? port.burst : 0);
  uint64_t total = 0;
  Sim sim(s, flows);
  sim.on_out = [&](uint64_t h, uint64_t t) {
    const size_t w = static_cast<size_t>(t / (100 * kMs));
    const uint32_t len = handle_class(h) == 1 ? 1200 : 800;
    if (w < low_win.size()) (handle_class(h) == 2 ? low_win : high_win)[w] += len;
    total += len;
  };
  sim.run(0, 2 * kSec - 1, 20 * kUs);
  for (size_t w = 1; w < low_win.size(); ++w) {
    EXPECT_GE(low_win[w], mbit(20) / 10 * 95 / 100) << "window " << w;
    EXPECT_GE(high_win[w], mbit(80) / 10 * 95 / 100) << "window " << w;
    EXPECT_LE(low_win[w] + high_win[w], mbit(100) / 10 + 2 * kMaxPkt) << "window " << w;
  }
  EXPECT_LE(total, mbit(100) * 2 + 20000);
}

TEST(SchedPolicy, CeilingsAndPortRateHold) {
  Scheduler s(cfg());
  PortParams port;
  port.rate = mbit(100);
  port.burst = 4 * kMaxPkt;
  ASSERT_EQ(s.set_port(port, 0), "");
  ClassParams capped, rest;
  capped.prio = 0;
  capped.rate = mbit(10);
  capped.ceil = mbit(30);
  capped.cburst = 15 * 1024;
  rest.prio = 3;
  ASSERT_EQ(s.add_class(1, capped, 0), "");
  ASSERT_EQ(s.add_class(2, rest, 0), "");
  std::vector<Flow> flows;
  for (uint32_t c = 0; c < 6; ++c) flows.push_back(Flow{1, c, 1000, 8});
  for (uint32_t c = 0; c < 6; ++c) flows.push_back(Flow{2, 50 + c, 1400, 8});
  BucketChecker ceil_check(capped.ceil, capped.cburst);
  BucketChecker port_check(port.rate, port.burst);
  uint64_t capped_bytes = 0, rest_bytes = 0;
  Sim sim(s, flows);
  sim.on_out = [&](uint64_t h, uint64_t t) {
    const uint32_t len = handle_class(h) == 1 ? 1000 : 1400;
    if (handle_class(h) == 1) {
      ceil_check.sent(t, len);
      capped_bytes += len;
    } else {
      rest_bytes += len;
    }
    port_check.sent(t, len);
  };
  sim.run(0, kSec, 7 * kUs);
  EXPECT_GE(ceil_check.worst, -1.0);   // the ceiling never exceeded, to the byte
  EXPECT_GE(port_check.worst, -1.0);   // nor the port rate
  EXPECT_GE(capped_bytes, mbit(30) * 98 / 100);
  EXPECT_LE(capped_bytes, mbit(30) + capped.cburst + 1000);
  EXPECT_GE(rest_bytes, mbit(70) * 97 / 100);
}

TEST(SchedPolicy, EachThrottledConnectionWithinFivePercentOverOneSecond) {
  Scheduler s(cfg());
  PortParams port;
  port.rate = mbit(100);
  ASSERT_EQ(s.set_port(port, 0), "");
  ClassParams slow, fast;
  slow.prio = 2;
  slow.conn_rate = mbit(1);
  slow.conn_burst = 3000;
  fast.prio = 4;
  fast.conn_rate = mbit(5);
  fast.conn_burst = 8000;
  ASSERT_EQ(s.add_class(1, slow, 0), "");
  ASSERT_EQ(s.add_class(2, fast, 0), "");
  std::vector<Flow> flows;
  for (uint32_t c = 0; c < 10; ++c) flows.push_back(Flow{1, c, 1000, 16, c * 3 * kMs});
  for (uint32_t c = 0; c < 5; ++c) flows.push_back(Flow{2, 100 + c, 1400, 16});
  Sim sim(s, flows);
  sim.win_begin = 200 * kMs;
  sim.win_end = 1200 * kMs;
  sim.run(0, 1300 * kMs, 50 * kUs);
  for (const Flow& f : flows) {
    const double want = static_cast<double>(f.cls == 1 ? mbit(1) : mbit(5));
    EXPECT_NEAR(static_cast<double>(f.bytes), want, want * 0.05) << "conn " << f.conn;
  }
  // The throttled ones waited on the wheel, not in the round.
  EXPECT_GT(s.class_stats(1, 0).conns_throttled, 0u);
}

TEST(SchedPolicy, ConnectionsOfOneClassShareFairly) {
  Scheduler s(cfg());
  PortParams port;
  port.rate = mbit(100);
  ASSERT_EQ(s.set_port(port, 0), "");
  ClassParams cl;
  cl.ceil = mbit(10);
  ASSERT_EQ(s.add_class(3, cl, 0), "");
  std::vector<Flow> flows;
  for (uint32_t c = 0; c < 20; ++c)  // half small packets, half large
    flows.push_back(Flow{3, c, c % 2 ? 64u : 1500u, c % 2 ? 64u : 8u});
  Sim sim(s, flows);
  sim.win_begin = 100 * kMs;
  sim.win_end = 1100 * kMs;
  sim.run(0, 1100 * kMs, 20 * kUs);
  double sum = 0, sq = 0;
  for (const Flow& f : flows) {
    sum += static_cast<double>(f.bytes);
    sq += static_cast<double>(f.bytes) * static_cast<double>(f.bytes);
  }
  const double mean = sum / static_cast<double>(flows.size());
  for (const Flow& f : flows)
    EXPECT_NEAR(static_cast<double>(f.bytes), mean, mean * 0.05) << "conn " << f.conn;
  const double jain = sum * sum / (static_cast<double>(flows.size()) * sq);
  EXPECT_GT(jain, 0.999);
  EXPECT_NEAR(sum, static_cast<double>(mbit(10)), static_cast<double>(mbit(10)) * 0.02);
}

TEST(SchedPolicy, EqualPrioClassesShareByQuantum) {
  Scheduler s(cfg());
  PortParams port;
  port.rate = mbit(100);
  ASSERT_EQ(s.set_port(port, 0), "");
  ClassParams a, b;
  a.prio = b.prio = 3;
  a.quantum = b.quantum = 3000;
  ASSERT_EQ(s.add_class(1, a, 0), "");
  ASSERT_EQ(s.add_class(2, b, 0), "");
  std::vector<Flow> flows{Flow{1, 1, 1500, 8}, Flow{2, 2, 300, 32}};
  Sim sim(s, flows);
  sim.win_begin = 0;
  sim.win_end = kSec;
  sim.run(0, kSec, 20 * kUs);
  const double a_b = static_cast<double>(flows[0].bytes), b_b = static_cast<double>(flows[1].bytes);
  EXPECT_NEAR(a_b / (a_b + b_b), 0.5, 0.02);
  EXPECT_NEAR(a_b + b_b, static_cast<double>(mbit(100)), static_cast<double>(mbit(100)) * 0.02);
}

}  // namespace
}  // namespace lockstep::sched
