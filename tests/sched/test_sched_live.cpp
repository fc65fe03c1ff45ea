// Live changes through QosPort while packets are queued: nothing is lost, a deleted
// class's backlog moves to the default class (counted), changes take effect, refused
// commands change nothing; a random walk of commands and traffic keeps every packet.
#include "dataplane/qos/sched/qos_port.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <vector>

#include "tests/sched/sim.h"

namespace lockstep::sched {
namespace {
using namespace test;

SchedConfig cfg() {
  SchedConfig c;
  c.max_connections = 256;
  c.max_packets = 4096;
  c.max_packet_bytes = 1514;
  return c;
}

const char* kSetup =
    "qdisc add link rate 100mbit\n"
    "class add link heartbeat prio 0 rate 10mbit ceil 100mbit burst 15k\n"
    "class add link proxy prio 1 rate 40mbit ceil 100mbit\n"
    "class add link bulk prio 7 rate 10mbit ceil 50mbit conn-rate 5mbit\n"
    "filter add link role heartbeat class heartbeat\n"
    "filter add link dport 9000 class proxy\n"
    "filter add link role checkpoint class bulk\n";

TEST(SchedLive, ScriptBuildsThePort) {
  QosPort q("link", cfg());
  ASSERT_EQ(q.apply_script(kSetup, 0), "");
  EXPECT_NE(q.class_id("heartbeat"), kNoClass);
  EXPECT_EQ(q.classifier().filters().size(), 3u);
  const std::string show = q.show(true, 0);
  EXPECT_NE(show.find("qdisc lockstep link: rate 100mbit default default"), std::string::npos) << show;
  EXPECT_NE(show.find("class link heartbeat prio 0 rate 10mbit ceil 100mbit burst 15k"),
            std::string::npos) << show;
  EXPECT_NE(show.find("filter link pref 20 dport 9000 class proxy"), std::string::npos) << show;
  // The dump rebuilds the same configuration.
  std::string text;
  for (const std::string& l : q.config().to_commands()) text += l + "\n";
  QosPort r("link", cfg());
  ASSERT_EQ(r.apply_script(text, 0), "") << text;
  EXPECT_EQ(r.config().to_commands(), q.config().to_commands());
  // A bad script is refused as a whole, naming the line.
  QosPort b("link", cfg());
  const std::string err = b.apply_script("qdisc add link rate 1gbit\nclass add link x prio 1\n"
                                         "filter add link dport 1 class y\n", 0);
  EXPECT_EQ(err, "line 3: class 'y' does not exist");
  EXPECT_EQ(b.class_id("x"), kNoClass);
}

TEST(SchedLive, DeletingAClassMovesItsBacklogToTheDefault) {
  QosPort q("link", cfg());
  ASSERT_EQ(q.apply_script(kSetup, 0), "");
  ASSERT_EQ(q.apply("class add link scratch prio 5", 0), "");
  ASSERT_EQ(q.apply("qdisc change link default proxy", 0), "");
  Scheduler& s = q.scheduler();
  const ClassId scratch = q.class_id("scratch"), proxy = q.class_id("proxy");
  std::set<uint64_t> in;
  for (uint32_t i = 0; i < 50; ++i) {  // 5 connections, 10 packets each
    ASSERT_TRUE(s.enqueue({1000 + i, i % 5, 500, scratch}, 1).queued);
    in.insert(1000 + i);
  }
  for (uint32_t i = 0; i < 5; ++i) {  // connection 0 also exists in proxy
    ASSERT_TRUE(s.enqueue({2000 + i, 0, 500, proxy}, 1).queued);
    in.insert(2000 + i);
  }
  ASSERT_EQ(q.apply("class del link scratch", 2), "");
  EXPECT_EQ(q.class_id("scratch"), kNoClass);
  const ClassStats ps = s.class_stats(proxy, 2);
  EXPECT_EQ(ps.backlog_pkts, 55u);
  EXPECT_EQ(ps.ctr.moved_in_pkts, 50u);
  EXPECT_EQ(s.port_stats(2).ctr.moved_pkts, 50u);
  // Everything comes out, per connection in order.
  std::vector<Out> log;
  for (uint64_t t = 3; t < 100 * kMs && log.size() < 55; t += 100 * kUs) poll(s, t, log);
  ASSERT_EQ(log.size(), 55u);
  std::map<uint64_t, uint64_t> last;  // conn -> last handle seen from scratch
  for (const Out& o : log) {
    EXPECT_EQ(in.erase(o.handle), 1u);
    if (o.handle >= 1000 && o.handle < 2000) {
      const uint64_t conn = (o.handle - 1000) % 5;
      EXPECT_LT(last[conn], o.handle);
      last[conn] = o.handle;
    }
  }
  EXPECT_TRUE(in.empty());
}

TEST(SchedLive, ChangesTakeEffectWithoutLoss) {
  QosPort q("link", cfg());
  ASSERT_EQ(q.apply_script(kSetup, 0), "");
  Scheduler& s = q.scheduler();
  const ClassId bulk = q.class_id("bulk");
  uint32_t seq = 0;
  uint64_t out_bytes_before = 0, out_bytes_after = 0;
  std::vector<Out> log;
  auto run = [&](uint64_t from, uint64_t to, uint64_t& bytes) {
    for (uint64_t t = from; t < to; t += 100 * kUs) {
      while (s.class_stats(bulk, t).backlog_pkts < 64)
        ASSERT_TRUE(s.enqueue({seq++, seq % 4, 1000, bulk}, t).queued);
      log.clear();
      poll(s, t, log);
      bytes += 1000 * log.size();
    }
  };
  run(0, kSec, out_bytes_before);  // 4 connections at 5mbit each: 20mbit
  EXPECT_NEAR(static_cast<double>(out_bytes_before), mbit(20), mbit(20) * 0.05);
  ASSERT_EQ(q.apply("class change link bulk conn-rate 1mbit", kSec), "");
  run(kSec + 100 * kMs, 2 * kSec + 100 * kMs, out_bytes_after);  // now 4 mbit
  EXPECT_NEAR(static_cast<double>(out_bytes_after), mbit(4), mbit(4) * 0.1);
  // Refused change: nothing changes, the error names the token.
  EXPECT_NE(q.apply("class change link bulk ceil 1kbit", 3 * kSec).find("'1kbit'"), std::string::npos);
  EXPECT_NE(q.apply("class change link bulk prio 8", 3 * kSec).find("'8'"), std::string::npos);
  const PortStats p = s.port_stats(3 * kSec);
  EXPECT_EQ(p.ctr.enq_pkts, p.ctr.deq_pkts + p.backlog_pkts);
  EXPECT_EQ(p.ctr.drops_total(), 0u);
}

// Random commands between random bursts; every accepted handle comes out exactly once
// and the counters balance at every step.
TEST(SchedLive, RandomWalkKeepsEveryPacket) {
  QosPort q("link", cfg());
  ASSERT_EQ(q.apply_script(kSetup, 0), "");
  Scheduler& s = q.scheduler();
  uint64_t x = 12345;
  auto rnd = [&](uint64_t n) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x % n;
  };
  const char* cmds[] = {
      "class add link extra prio 3 rate 5mbit conn-rate 2mbit",
      "class del link extra",
      "class change link proxy prio 2 conn-rate 3mbit",
      "class change link proxy prio 1 ceil 80mbit",
      "class replace link bulk prio 6 ceil 30mbit",
      "qdisc change link rate 60mbit",
      "qdisc change link rate 100mbit",
      "filter add link pref 5 dport 1-100 class heartbeat",
      "filter del link pref 5",
      "class add link spare prio 4",
      "qdisc change link default spare",
      "qdisc change link default default",
      "class del link spare",
  };
  std::set<uint64_t> live;
  uint64_t next = 1, dropped = 0;
  std::vector<Out> log;
  for (uint64_t step = 0; step < 3000; ++step) {
    const uint64_t t = step * 50 * kUs;
    if (rnd(10) == 0) (void)q.apply(cmds[rnd(std::size(cmds))], t);  // some are refused
    const uint32_t n = static_cast<uint32_t>(rnd(24));
    for (uint32_t i = 0; i < n; ++i) {
      ClassId c = static_cast<ClassId>(rnd(kMaxClasses));
      if (rnd(4) != 0) c = q.class_id(rnd(2) ? "bulk" : "proxy");
      const Packet p{next, rnd(40), static_cast<uint32_t>(64 + rnd(1450)), c};
      if (s.enqueue(p, t).queued) live.insert(next); else ++dropped;
      ++next;
    }
    log.clear();
    poll(s, t, log);
    for (const Out& o : log) ASSERT_EQ(live.erase(o.handle), 1u) << o.handle;
    const PortStats ps = s.port_stats(t);
    ASSERT_EQ(ps.backlog_pkts, live.size());
    ASSERT_EQ(ps.ctr.enq_pkts, ps.ctr.deq_pkts + ps.backlog_pkts);
    ASSERT_EQ(ps.ctr.drops_total(), dropped);
    uint32_t by_class = 0;
    for (uint32_t c = 0; c < kMaxClasses; ++c) by_class += s.class_stats(static_cast<ClassId>(c), t).backlog_pkts;
    ASSERT_EQ(by_class, live.size());
  }
  for (uint64_t t = 3000 * 50 * kUs; !live.empty() && t < 100 * kSec; t += kMs) {
    log.clear();
    poll(s, t, log);
    for (const Out& o : log) ASSERT_EQ(live.erase(o.handle), 1u);
  }
  EXPECT_TRUE(live.empty());
  EXPECT_GT(next, 20000u);
}

}  // namespace
}  // namespace lockstep::sched
