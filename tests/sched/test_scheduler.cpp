// Scheduler basics: order, conservation, bounded queues and their drop reasons,
// connection table eviction, drain, time that runs backwards.
#include "dataplane/qos/sched/scheduler.h"

#include <gtest/gtest.h>

#include <set>

#include "tests/sched/sim.h"

namespace lockstep::sched {
namespace {
using namespace test;

SchedConfig small_cfg() {
  SchedConfig c;
  c.max_connections = 64;
  c.max_packets = 256;
  c.max_packet_bytes = 1514;
  return c;
}

TEST(SchedBasics, FifoPerConnectionAndPriorityOrder) {
  Scheduler s(small_cfg());
  ClassParams hi, lo;
  hi.prio = 0;
  lo.prio = 5;
  ASSERT_EQ(s.add_class(1, hi, 0), "");
  ASSERT_EQ(s.add_class(2, lo, 0), "");
  for (uint32_t i = 0; i < 5; ++i) ASSERT_TRUE(s.enqueue({make_handle(2, 7, i), 7, 100, 2}, 0).queued);
  for (uint32_t i = 0; i < 3; ++i) ASSERT_TRUE(s.enqueue({make_handle(1, 9, i), 9, 100, 1}, 0).queued);
  uint64_t out[16];
  ASSERT_EQ(s.dequeue_burst(1, out), 8u);
  for (uint32_t i = 0; i < 3; ++i) EXPECT_EQ(out[i], make_handle(1, 9, i));
  for (uint32_t i = 0; i < 5; ++i) EXPECT_EQ(out[3 + i], make_handle(2, 7, i));
  EXPECT_EQ(s.dequeue_burst(2, out), 0u);
  const PortStats p = s.port_stats(2);
  EXPECT_EQ(p.ctr.enq_pkts, 8u);
  EXPECT_EQ(p.ctr.deq_pkts, 8u);
  EXPECT_EQ(p.backlog_pkts, 0u);
}

TEST(SchedBasics, DropsAreCountedByReason) {
  SchedConfig cfg = small_cfg();
  cfg.max_packets = 8;
  Scheduler s(cfg);
  ClassParams p;
  p.limit = 6;
  p.conn_limit = 4;
  p.limit_bytes = 1800;
  ASSERT_EQ(s.add_class(0, p, 0), "");
  ClassParams other;
  ASSERT_EQ(s.add_class(1, other, 0), "");
  EXPECT_EQ(s.enqueue({1, 1, 100, 3}, 0).reason, Drop::no_class);
  EXPECT_EQ(s.enqueue({1, 1, 0, 0}, 0).reason, Drop::bad_length);
  EXPECT_EQ(s.enqueue({1, 1, 1515, 0}, 0).reason, Drop::bad_length);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(s.enqueue({1, 1, 100, 0}, 0).queued);
  EXPECT_EQ(s.enqueue({1, 1, 100, 0}, 0).reason, Drop::conn_queue_full);
  EXPECT_TRUE(s.enqueue({2, 2, 100, 0}, 0).queued);
  EXPECT_EQ(s.enqueue({3, 3, 1400, 0}, 0).reason, Drop::queue_bytes_full);
  EXPECT_TRUE(s.enqueue({3, 3, 100, 0}, 0).queued);
  EXPECT_EQ(s.enqueue({4, 4, 100, 0}, 0).reason, Drop::queue_full);
  EXPECT_TRUE(s.enqueue({5, 5, 100, 1}, 0).queued);
  EXPECT_TRUE(s.enqueue({5, 5, 100, 1}, 0).queued);
  EXPECT_EQ(s.enqueue({5, 5, 100, 1}, 0).reason, Drop::port_full);
  const ClassStats c0 = s.class_stats(0, 0);
  EXPECT_EQ(c0.ctr.drops[static_cast<unsigned>(Drop::bad_length)], 2u);
  EXPECT_EQ(c0.ctr.drops[static_cast<unsigned>(Drop::conn_queue_full)], 1u);
  EXPECT_EQ(c0.ctr.drops[static_cast<unsigned>(Drop::queue_bytes_full)], 1u);
  EXPECT_EQ(c0.ctr.drops[static_cast<unsigned>(Drop::queue_full)], 1u);
  EXPECT_EQ(s.class_stats(1, 0).ctr.drops[static_cast<unsigned>(Drop::port_full)], 1u);
  const PortStats ps = s.port_stats(0);
  EXPECT_EQ(ps.ctr.drops[static_cast<unsigned>(Drop::no_class)], 1u);
  EXPECT_EQ(ps.ctr.drops_total(), 7u);
  ConnStats cs;
  ASSERT_TRUE(s.conn_stats(1, 0, cs, 0));
  EXPECT_EQ(cs.drops, 1u);
  EXPECT_EQ(cs.backlog_pkts, 4u);
}

TEST(SchedBasics, EnqueueBurstReportsRefusedHandles) {
  Scheduler s(small_cfg());
  ClassParams p;
  p.limit = 2;
  ASSERT_EQ(s.add_class(0, p, 0), "");
  const Packet pk[4] = {{10, 1, 64, 0}, {11, 1, 64, 0}, {12, 1, 64, 0}, {13, 1, 64, 9}};
  uint64_t dropped[4];
  ASSERT_EQ(s.enqueue_burst(pk, 0, dropped), 2u);
  EXPECT_EQ(dropped[0], 12u);
  EXPECT_EQ(dropped[1], 13u);
}

TEST(SchedBasics, ConnectionTableEvictsOnlyIdleEmptyEntries) {
  SchedConfig cfg = small_cfg();
  cfg.max_connections = 16;  // 2 buckets of 8: every key lands in both
  cfg.max_packets = 1024;
  Scheduler s(cfg);
  ASSERT_EQ(s.add_class(0, ClassParams{}, 0), "");
  for (uint32_t c = 0; c < 16; ++c) ASSERT_TRUE(s.enqueue({c, c, 64, 0}, c).queued) << c;
  // Table full of backlogged connections: a new one is refused.
  EXPECT_EQ(s.enqueue({99, 99, 64, 0}, 20).reason, Drop::conn_table_full);
  // Drain: every connection becomes idle and empty; new ones evict them.
  std::vector<Out> log;
  poll(s, 100, log);
  ASSERT_EQ(log.size(), 16u);
  for (uint32_t c = 100; c < 116; ++c) ASSERT_TRUE(s.enqueue({c, c, 64, 0}, 200 + c).queued) << c;
  EXPECT_EQ(s.enqueue({116, 116, 64, 0}, 400).reason, Drop::conn_table_full);
  const PortStats p = s.port_stats(400);
  EXPECT_EQ(p.ctr.conns_evicted, 16u);
  EXPECT_EQ(p.conns, 16u);
  EXPECT_EQ(p.ctr.drops[static_cast<unsigned>(Drop::conn_table_full)], 2u);
  log.clear();
  poll(s, 500, log);
  EXPECT_EQ(log.size(), 16u);
}

TEST(SchedBasics, DrainAllHandsBackEverything) {
  Scheduler s(small_cfg());
  ClassParams p;
  p.conn_rate = kbit(64);  // throttled: most wait on the wheel
  ASSERT_EQ(s.add_class(0, p, 0), "");
  ASSERT_EQ(s.add_class(1, ClassParams{}, 0), "");
  std::set<uint64_t> in;
  for (uint32_t i = 0; i < 100; ++i) {
    const Packet pk{i, i % 7, 1000, static_cast<ClassId>(i % 2)};
    ASSERT_TRUE(s.enqueue(pk, 0).queued);
    in.insert(i);
  }
  std::vector<Out> log;
  poll(s, 10, log);
  for (const Out& o : log) in.erase(o.handle);
  s.drain_all([&](uint64_t h) { EXPECT_EQ(in.erase(h), 1u); });
  EXPECT_TRUE(in.empty());
  EXPECT_EQ(s.backlog_pkts(), 0u);
  EXPECT_EQ(s.port_stats(0).ctr.flushed_pkts, 100u - log.size());
  // Usable afterwards.
  ASSERT_TRUE(s.enqueue({500, 1, 100, 1}, 20).queued);
  uint64_t out[4];
  EXPECT_EQ(s.dequeue_burst(20, out), 1u);
}

TEST(SchedBasics, TimeGoingBackwardsEarnsNothing) {
  Scheduler s(small_cfg());
  PortParams port;
  port.rate = mbit(8);  // 1 byte per us
  port.burst = 1000;
  ASSERT_EQ(s.set_port(port, 0), "");
  ASSERT_EQ(s.add_class(0, ClassParams{}, 0), "");
  for (uint32_t i = 0; i < 10; ++i) ASSERT_TRUE(s.enqueue({i, 1, 1000, 0}, 0).queued);
  uint64_t out[16];
  EXPECT_EQ(s.dequeue_burst(0, out), 1u);
  EXPECT_EQ(s.dequeue_burst(500 * kUs, out), 0u);
  EXPECT_EQ(s.dequeue_burst(1000 * kUs, out), 1u);
  EXPECT_EQ(s.dequeue_burst(10, out), 0u);  // earlier time: treated as 1000 us
  EXPECT_EQ(s.dequeue_burst(2000 * kUs, out), 1u);
}

TEST(SchedBasics, NextReadyTellsWhenShapingAllows) {
  Scheduler s(small_cfg());
  PortParams port;
  port.rate = mbit(8);
  port.burst = 1514;
  ASSERT_EQ(s.set_port(port, 0), "");
  ASSERT_EQ(s.add_class(0, ClassParams{}, 0), "");
  EXPECT_EQ(s.next_ready_ns(0), UINT64_MAX);
  for (uint32_t i = 0; i < 3; ++i) ASSERT_TRUE(s.enqueue({i, 1, 1000, 0}, 0).queued);
  uint64_t out[4];
  ASSERT_EQ(s.dequeue_burst(0, out), 1u);
  const uint64_t t = s.next_ready_ns(0);
  EXPECT_GE(t, 480 * kUs);
  EXPECT_LE(t, 1001 * kUs);
  EXPECT_EQ(s.dequeue_burst(t, out), 1u);
}

TEST(SchedBasics, ConfigValidation) {
  SchedConfig c;
  EXPECT_EQ(validate(c), "");
  c.max_classes = 17;
  EXPECT_NE(validate(c), "");
  c = SchedConfig{};
  c.wheel_slots = 1000;
  EXPECT_NE(validate(c), "");
  ClassParams p;
  p.rate = mbit(10);
  p.ceil = mbit(5);
  EXPECT_EQ(validate(SchedConfig{}, p), "ceil must not be below rate");
  p = ClassParams{};
  p.prio = 8;
  EXPECT_EQ(validate(SchedConfig{}, p), "prio must be 0..7");
  Scheduler s(small_cfg());
  EXPECT_NE(s.add_class(16, ClassParams{}, 0), "");
  EXPECT_EQ(s.add_class(3, ClassParams{}, 0), "");
  EXPECT_NE(s.add_class(3, ClassParams{}, 0), "");
  EXPECT_NE(s.delete_class(3, 3, 0), "");
  EXPECT_NE(s.delete_class(4, 3, 0), "");
}

}  // namespace
}  // namespace lockstep::sched
