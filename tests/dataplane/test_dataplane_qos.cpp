// The egress scheduler in the real dataplane, on net_ring ports, stepped on the test
// thread in virtual time (Dataplane::step(now)): the `link` port carries a qos
// configuration; frames from `host` cross to `link` through it. Checks: a saturating
// bulk flow does not delay heartbeats beyond one max-size packet plus the port burst at
// port rate; per-connection throttling holds (±5 %); live changes lose nothing; bad specs
// are refused naming the line and token; the ctrl commands reach the worker; two workers
// hand frames to the owner; every mbuf is back in its pool at the end.
#include <gtest/gtest.h>
#include <rte_eal.h>
#include <rte_mempool.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "ctrl/qos_commands.h"
#include "dataplane/dataplane.h"
#include "dataplane/qos_config.h"
#include "dataplane/qos_ctrl.h"
#include "tests/dataplane/eal_env.h"
#include "tests/dataplane/ring_rig.h"
#include "tests/support/frame_builder.h"

namespace lockstep {
namespace {

using dp::Config;
using dp::Dataplane;
using dp::Role;
using dptest::RingRig;
using test::Bytes;

using dptest::EalEnv;

constexpr uint64_t kUs = 1000;
constexpr uint64_t kMs = 1000 * kUs;
constexpr uint16_t kHbPort = 9000;

// 100 Mbit/s port (12.5 bytes/us), a 4 KiB port burst; heartbeats first; bulk
// connections (dport 5000) throttled to 20 Mbit/s each; everything else in `rest`
// (unthrottled, borrows what is left, the default).
const char* kLinkScript = R"(
qdisc add link rate 100mbit burst 4k
class add link hb prio 0 rate 10mbit ceil 100mbit
class add link bulk prio 7 rate 50mbit ceil 100mbit conn-rate 20mbit conn-limit 64
class add link rest prio 6 ceil 100mbit limit 300 default
filter add link proto udp dport 9000 class hb
filter add link dport 5000 class bulk
)";

Bytes bulk_frame(uint16_t sport, uint32_t seq, uint16_t dport = 5000) {
  test::FrameSpec s;
  s.src = test::ip4(10, 0, 0, 1);
  s.dst = test::ip4(10, 0, 0, 2);
  s.sport = sport;
  s.dport = dport;
  s.seq = seq;
  s.payload.assign(1446, 0xab);  // 1500-byte IP packet, 1514-byte frame
  return test::build_frame(s);
}

Bytes hb_frame(uint16_t id) {
  test::FrameSpec s;
  s.src = test::ip4(10, 0, 0, 1);
  s.dst = test::ip4(10, 0, 0, 2);
  s.proto = 17;
  s.sport = 9001;
  s.dport = kHbPort;
  s.payload = {static_cast<uint8_t>(id >> 8), static_cast<uint8_t>(id)};
  return test::build_frame(s);
}

bool is_hb(const Bytes& f, uint16_t& id) {
  auto d = test::decode(f);
  if (!d.ok || d.proto != 17) return false;
  id = static_cast<uint16_t>(f[d.payload_off] << 8 | f[d.payload_off + 1]);
  return true;
}

uint16_t sport_of(const Bytes& f) {
  auto d = test::decode(f);
  return static_cast<uint16_t>(f[d.l4_off] << 8 | f[d.l4_off + 1]);
}

struct Fixture {
  explicit Fixture(const std::string& tag, unsigned workers = 1, const char* script = kLinkScript) {
    cfg.workers = workers;
    cfg.pool_mbufs = 4095;
    cfg.pool_cache = 0;  // every free mbuf is in the ring: avail == size is exact
    if (script) cfg.qos[static_cast<unsigned>(Role::link)] = script;
    rig = std::make_unique<RingRig>(tag, std::initializer_list<Role>{Role::ext, Role::pvm, Role::svm,
                                                                      Role::host, Role::link},
                                    workers, cfg, 16384);
    dp = Dataplane::create(cfg, error);
  }
  ~Fixture() {
    dp.reset();
    rig.reset();
  }
  bool inject(Role r, const Bytes& b) { return rig->inject(r, dp->pool(), b); }
  void expect_conservation(uint64_t now) {
    dp->finish(now);
    for (unsigned r = 0; r < dp::kRoleCount; ++r) rig->drain(static_cast<Role>(r));
    dp->stop_ports(true);
    auto rep = dp->report();
    EXPECT_EQ(rep.pool_avail, rep.pool_size) << "mbufs not returned";
  }
  dp::QosShowResult show_now(uint64_t now) {
    // Ask and answer on this thread: post the request, let the worker run one step.
    dp::QosShowResult r;
    std::string err;
    std::atomic<bool> done{false};
    std::thread t([&] {
      EXPECT_TRUE(dp->qos()->show("link", true, 5000 * kMs, r, err)) << err;
      done = true;
    });
    while (!done) {
      dp->step(now);
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    t.join();
    return r;
  }

  Config cfg;
  std::string error;
  std::unique_ptr<RingRig> rig;
  std::unique_ptr<Dataplane> dp;
};

const sched::ClassStats* class_of(const dp::QosShowResult& r, const std::string& name) {
  for (const auto& c : r.classes)
    if (c.name == name) return &c.stats;
  return nullptr;
}

class DataplaneQos : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!EalEnv::ok_) GTEST_SKIP() << "EAL did not start (no --no-huge memory?)";
  }
};

TEST_F(DataplaneQos, SaturatingBulkDoesNotDelayHeartbeatsAndConnectionsAreThrottled) {
  Fixture f("qsat");
  ASSERT_TRUE(f.dp) << f.error;
  ASSERT_NE(f.dp->qos(), nullptr);
  constexpr uint64_t kStep = 10 * kUs;
  constexpr uint64_t kEnd = 1000 * kMs;  // one second of virtual time
  constexpr uint16_t kConnA = 40001, kConnB = 40002;
  std::map<uint16_t, uint64_t> hb_sent_at;
  std::map<uint16_t, uint64_t> bytes_by_conn;
  uint64_t worst_hb_delay = 0, hb_seen = 0;
  uint32_t seq = 0;
  uint16_t hb_id = 0;
  for (uint64_t t = kStep; t <= kEnd; t += kStep) {
    // Each bulk connection offers 1514 bytes per 100 us (about 120 Mbit/s): far above
    // its 20 Mbit/s; together far above the port.
    if (t % (100 * kUs) == 0) {
      ASSERT_TRUE(f.inject(Role::host, bulk_frame(kConnA, seq += 1446)));
      ASSERT_TRUE(f.inject(Role::host, bulk_frame(kConnB, seq += 1446)));
    }
    // Twelve more connections offer about 290 Mbit/s to `rest`: the port is saturated
    // and a heartbeat misfiled among them would wait a dozen packets.
    if (t % (500 * kUs) == 0) {
      for (uint16_t c = 0; c < 12; ++c)
        ASSERT_TRUE(f.inject(Role::host, bulk_frame(static_cast<uint16_t>(41000 + c), seq += 1446, 5001)));
    }
    if (t % kMs == 0) {
      ASSERT_TRUE(f.inject(Role::host, hb_frame(hb_id)));
      hb_sent_at[hb_id++] = t;
    }
    f.dp->step(t);
    for (const auto& fr : f.rig->collect(Role::link)) {
      uint16_t id;
      if (is_hb(fr, id)) {
        ++hb_seen;
        worst_hb_delay = std::max(worst_hb_delay, t - hb_sent_at.at(id));
      } else {
        bytes_by_conn[sport_of(fr)] += fr.size();
      }
    }
  }
  // Injected at t, read by the worker at t (same step): the delay is what the scheduler
  // added. Bound: the port bucket must earn one max-size packet plus its burst at port
  // rate (12.5 bytes/us), rounded up to the step.
  const uint64_t bound = (1514 + 4096) * kUs * 1000 / 12500 + 2 * kStep;  // 468.8 us
  EXPECT_GE(hb_seen, hb_sent_at.size() - 1);
  EXPECT_LE(worst_hb_delay, bound) << "heartbeat waited behind bulk";
  // Each connection: 20 Mbit/s over one second = 2.5 MB, within 5 %.
  for (uint16_t c : {kConnA, kConnB}) {
    const double rate = static_cast<double>(bytes_by_conn[c]);
    EXPECT_GT(rate, 2.5e6 * 0.95) << "conn " << c;
    EXPECT_LT(rate, 2.5e6 * 1.05) << "conn " << c;
  }
  auto show = f.show_now(kEnd);
  const auto* bulk = class_of(show, "bulk");
  ASSERT_NE(bulk, nullptr);
  EXPECT_GT(bulk->ctr.drops[static_cast<unsigned>(sched::Drop::conn_queue_full)], 0u)
      << "excess bulk is refused at the connection limit, counted";
  const auto* rest = class_of(show, "rest");
  ASSERT_NE(rest, nullptr);
  EXPECT_GT(rest->ctr.drops[static_cast<unsigned>(sched::Drop::queue_full)], 0u);
  EXPECT_GT(rest->ctr.deq_bytes, 0u);
  // The port ran at its rate: at most rate * 1 s + burst bytes, and busy all along.
  EXPECT_LE(show.port_stats.ctr.deq_bytes, 12500000u + 4096u);
  EXPECT_GT(show.port_stats.ctr.deq_bytes, 12500000u * 95 / 100);
  EXPECT_NE(show.text.find("class hb"), std::string::npos) << show.text;
  auto rep = f.dp->report();
  EXPECT_EQ(rep.total.port[static_cast<unsigned>(Role::link)].tx, show.glue.tx_sent);
  f.expect_conservation(kEnd + kMs);
}

TEST_F(DataplaneQos, LiveChangesLoseNothingAndBadSpecsAreRefused) {
  Fixture f("qlive");
  ASSERT_TRUE(f.dp) << f.error;
  dp::QosHub& hub = *f.dp->qos();
  // Queue a backlog in bulk (conn-rate holds it), then delete nothing yet: change the
  // class, add one, move the filter, and delete the class with a backlog in it.
  uint64_t t = kMs;
  constexpr int kFrames = 30;  // two batches stay within bulk's conn-limit (64)
  for (int i = 0; i < kFrames; ++i) ASSERT_TRUE(f.inject(Role::host, bulk_frame(40010, static_cast<uint32_t>(i))));
  f.dp->step(t);
  std::string err;
  uint64_t g1 = hub.apply("link", "class add link fast prio 1 rate 20mbit ceil 100mbit", err);
  ASSERT_NE(g1, 0u) << err;
  uint64_t g2 = hub.apply("link", "filter add link pref 5 sport 40010 class fast", err);
  ASSERT_NE(g2, 0u) << err;
  uint64_t g3 = hub.apply("link", "class change link bulk conn-rate 1mbit", err);
  ASSERT_NE(g3, 0u) << err;
  f.dp->step(t += 10 * kUs);
  EXPECT_TRUE(hub.wait_applied(g3, 0));
  uint64_t g4 = hub.apply("link", "filter del link pref 5", err);
  ASSERT_NE(g4, 0u) << err;
  uint64_t g5 = hub.apply("link", "class del link fast", err);
  ASSERT_NE(g5, 0u) << err;
  // Refused, naming the token; nothing changes.
  EXPECT_EQ(hub.apply("link", "class add link x prio 9", err), 0u);
  EXPECT_NE(err.find("'9'"), std::string::npos) << err;
  EXPECT_EQ(hub.apply("link", "class add link y speed 10mbit", err), 0u);
  EXPECT_NE(err.find("speed"), std::string::npos) << err;
  EXPECT_EQ(hub.apply("link", "class del link default", err), 0u);
  EXPECT_EQ(hub.apply("link", "class add host z prio 1", err), 0u);
  EXPECT_NE(err.find("host"), std::string::npos) << err;
  EXPECT_EQ(hub.apply("ext", "class add ext z prio 1", err), 0u);
  EXPECT_NE(err.find("carries no scheduler"), std::string::npos) << err;
  for (int i = 0; i < kFrames; ++i) ASSERT_TRUE(f.inject(Role::host, bulk_frame(40010, static_cast<uint32_t>(kFrames + i))));
  size_t sent = 0;
  uint32_t last_seq = 0;
  bool in_order = true;
  for (int s = 0; s < 20000 && sent < 2 * kFrames; ++s) {
    f.dp->step(t += 100 * kUs);
    for (const auto& fr : f.rig->collect(Role::link)) {
      auto d = test::decode(fr);
      if (sent > 0 && d.seq <= last_seq) in_order = false;
      last_seq = d.seq;
      ++sent;
    }
  }
  EXPECT_TRUE(hub.wait_applied(g5, 0));
  EXPECT_EQ(sent, static_cast<size_t>(2 * kFrames)) << "no frame lost across live changes";
  EXPECT_TRUE(in_order) << "one connection's frames leave in order";
  auto show = f.show_now(t);
  EXPECT_EQ(class_of(show, "fast"), nullptr);
  EXPECT_EQ(show.port_stats.ctr.drops_total(), 0u);
  EXPECT_EQ(show.glue.reconciles, 5u);
  f.expect_conservation(t + kMs);
}

TEST_F(DataplaneQos, ConfigRefusesBadSpecsNamingKeyLineAndToken) {
  Config cfg;
  std::string err;
  EXPECT_TRUE(dp::parse_config("qos:\n  link:\n    - qdisc add link rate 1gbit\n"
                               "    - class add link hb prio 0 rate 10mbit\n", cfg, err)) << err;
  EXPECT_NE(cfg.qos[static_cast<unsigned>(Role::link)].find("class add link hb"), std::string::npos);
  EXPECT_FALSE(dp::parse_config("qos:\n  link:\n    - qdisc add link rate 1gbit\n"
                                "    - class add link hb prio 0 rate 10mbps0\n", cfg, err));
  EXPECT_NE(err.find("qos.link"), std::string::npos) << err;
  EXPECT_NE(err.find("line 2"), std::string::npos) << err;
  EXPECT_NE(err.find("10mbps0"), std::string::npos) << err;
  EXPECT_FALSE(dp::parse_config("qos:\n  link:\n    - class add ext hb prio 0\n", cfg, err));
  EXPECT_NE(err.find("'ext'"), std::string::npos) << err;
  EXPECT_FALSE(dp::parse_config("qos:\n  wan:\n    - class add wan hb\n", cfg, err));
  EXPECT_NE(err.find("qos.wan"), std::string::npos) << err;
  EXPECT_FALSE(dp::parse_config("qos:\n  link:\n    file: /nonexistent/qos.tc\n", cfg, err));
  EXPECT_NE(err.find("qos.link.file"), std::string::npos) << err;
  EXPECT_FALSE(dp::apply_override("qos.link=filter add link dport 9000 class nope", cfg, err));
  EXPECT_NE(err.find("qos.link"), std::string::npos) << err;
  EXPECT_FALSE(dp::parse_config("qos:\n  link:\n    - qdisc add link rate 1gbit\n"
                                "    - filter add link dport 9000 class nope\n", cfg, err));
  EXPECT_NE(err.find("line 2"), std::string::npos) << err;
  EXPECT_NE(err.find("nope"), std::string::npos) << err;
  // A scheduler on a port that does not exist is refused by the dataplane.
  Fixture f("qbad", 1, nullptr);
  ASSERT_TRUE(f.dp) << f.error;
  EXPECT_EQ(f.dp->qos(), nullptr) << "no qos section: no scheduler, plain tx";
}

TEST_F(DataplaneQos, CtrlCommandsReachTheWorker) {
  Fixture f("qctl");
  ASSERT_TRUE(f.dp) << f.error;
  dp::DataplaneQosControl qc(f.dp->qos(), 5000 * kMs);
  ctrl::CommandRegistry reg;
  ctrl::register_qos_commands(reg, qc);
  auto run = [&](std::vector<std::string> words) {
    ctrl::CommandResult res;
    std::atomic<bool> done{false};
    std::thread th([&] {
      res = reg.execute(ctrl::CommandContext{}, words);
      done = true;
    });
    uint64_t t = kMs;
    while (!done) {
      f.dp->step(t += kUs);
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    th.join();
    return res;
  };
  auto r = run({"qos", "class", "add", "link", "heartbeat", "prio", "0", "rate", "10mbit", "ceil", "100mbit"});
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_TRUE(r.result["applied"].get<bool>());
  r = run({"qos", "filter", "add", "dev", "link", "dport", "9100", "class", "heartbeat"});
  ASSERT_TRUE(r.ok) << r.error;
  r = run({"qos", "class", "add", "link", "bad", "prio", "9"});
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("prio"), std::string::npos) << r.error;
  ctrl::CommandContext ro;
  ro.read_only = true;
  EXPECT_FALSE(reg.execute(ro, {"qos", "class", "del", "link", "heartbeat"}).ok) << "read-only socket";
  r = run({"qos", "show", "-s"});
  ASSERT_TRUE(r.ok) << r.error;
  const std::string text = r.result["text"].get<std::string>();
  EXPECT_NE(text.find("class heartbeat"), std::string::npos) << text;
  EXPECT_NE(text.find("dport 9100"), std::string::npos) << text;
  ASSERT_EQ(r.result["ports"].size(), 1u);
  EXPECT_EQ(r.result["ports"][0]["port"], "link");
  EXPECT_TRUE(r.result["ports"][0].contains("stats"));
  f.expect_conservation(10 * kMs);
}

TEST_F(DataplaneQos, TwoWorkersHandFramesToThePortOwner) {
  Fixture f("qtwo", 2);
  ASSERT_TRUE(f.dp) << f.error;
  // Worker 0 reads host (software steering: worker 0 reads every port) and owns link's
  // scheduler; frames that reach worker 1 (none on this path) would be handed over. Check
  // that the path works with two workers and that the pools end full.
  uint64_t t = kMs;
  for (int i = 0; i < 40; ++i) ASSERT_TRUE(f.inject(Role::host, hb_frame(static_cast<uint16_t>(i))));
  for (int s = 0; s < 100; ++s) f.dp->step(t += 100 * kUs);
  EXPECT_EQ(f.rig->collect(Role::link).size(), 40u);
  f.expect_conservation(t + kMs);
}

}  // namespace
}  // namespace lockstep

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new lockstep::dptest::EalEnv("dpqos"));
  return RUN_ALL_TESTS();
}
