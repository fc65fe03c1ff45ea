// The egress scheduler in the real dataplane, on net_ring ports, stepped on the test
// thread in virtual time (Dataplane::step(now)): the `link` port carries a qos
// configuration; frames from `host` cross to `link` through it. Checks: a saturating
// bulk flow does not delay heartbeats beyond one max-size packet plus the port burst at
// port rate; per-connection throttling holds (±5 %); live changes lose nothing; bad specs
// are refused naming the line and token; the ctrl commands reach the worker; two workers
// hand frames to the owner; every mbuf is back in its pool at the end. Traffic roles:
// frames between the hosts land in the classes their role filters name (the role map,
// its defaults from the heartbeat/checkpointer keys, live changes, bad rules refused);
// the SVM's output released after a failover is `svm_output` on ext; the Prometheus
// samples carry the scheduler's counters.
#include <gtest/gtest.h>
#include <rte_eal.h>
#include <rte_mempool.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "ctrl/metrics.h"
#include "dataplane/edge/dataplane.h"
#include "dataplane/qos/qos_commands.h"
#include "dataplane/qos/qos_config.h"
#include "dataplane/qos/qos_ctrl.h"
#include "tests/dataplane/eal_env.h"
#include "tests/dataplane/ring_rig.h"
#include "tests/support/frame_builder.h"

namespace lockstep {
namespace {

using dp::Config;
using dp::Dataplane;
using dp::PortRole;
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
  explicit Fixture(const std::string& tag, unsigned workers = 1, const char* script = kLinkScript,
                   const std::function<void(Config&)>& tweak = nullptr) {
    cfg.workers = workers;
    cfg.pool_mbufs = 4095;
    cfg.pool_cache = 0;  // every free mbuf is in the ring: avail == size is exact
    if (script) cfg.qos[static_cast<unsigned>(PortRole::link)] = script;
    if (tweak) tweak(cfg);
    rig = std::make_unique<RingRig>(tag, std::initializer_list<PortRole>{PortRole::ext, PortRole::pvm, PortRole::svm,
                                                                      PortRole::host, PortRole::link},
                                    workers, cfg, 16384);
    dp = Dataplane::create(cfg, error);
  }
  ~Fixture() {
    dp.reset();
    rig.reset();
  }
  bool inject(PortRole r, const Bytes& b) { return rig->inject(r, dp->pool(), b); }
  void expect_conservation(uint64_t now) {
    dp->finish(now);
    for (unsigned r = 0; r < dp::kPortRoleCount; ++r) rig->drain(static_cast<PortRole>(r));
    dp->stop_ports(true);
    auto rep = dp->report();
    EXPECT_EQ(rep.pool_avail, rep.pool_size) << "mbufs not returned";
  }
  dp::QosShowResult show_now(uint64_t now, const std::string& port = "link") {
    // Ask and answer on this thread: post the request, let the worker run one step.
    dp::QosShowResult r;
    std::string err;
    while_stepping(now, [&] { EXPECT_TRUE(dp->qos()->show(port, true, 5000 * kMs, r, err)) << err; });
    return r;
  }
  // Runs `fn` (which waits for worker 0) on another thread while this one steps.
  void while_stepping(uint64_t now, const std::function<void()>& fn) {
    std::atomic<bool> done{false};
    std::thread t([&] {
      fn();
      done = true;
    });
    while (!done) {
      dp->step(now);
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    t.join();
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
      ASSERT_TRUE(f.inject(PortRole::host, bulk_frame(kConnA, seq += 1446)));
      ASSERT_TRUE(f.inject(PortRole::host, bulk_frame(kConnB, seq += 1446)));
    }
    // Twelve more connections offer about 290 Mbit/s to `rest`: the port is saturated
    // and a heartbeat misfiled among them would wait a dozen packets.
    if (t % (500 * kUs) == 0) {
      for (uint16_t c = 0; c < 12; ++c)
        ASSERT_TRUE(f.inject(PortRole::host, bulk_frame(static_cast<uint16_t>(41000 + c), seq += 1446, 5001)));
    }
    if (t % kMs == 0) {
      ASSERT_TRUE(f.inject(PortRole::host, hb_frame(hb_id)));
      hb_sent_at[hb_id++] = t;
    }
    f.dp->step(t);
    for (const auto& fr : f.rig->collect(PortRole::link)) {
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
  EXPECT_EQ(rep.total.port[static_cast<unsigned>(PortRole::link)].tx, show.glue.tx_sent);
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
  for (int i = 0; i < kFrames; ++i) ASSERT_TRUE(f.inject(PortRole::host, bulk_frame(40010, static_cast<uint32_t>(i))));
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
  for (int i = 0; i < kFrames; ++i) ASSERT_TRUE(f.inject(PortRole::host, bulk_frame(40010, static_cast<uint32_t>(kFrames + i))));
  size_t sent = 0;
  uint32_t last_seq = 0;
  bool in_order = true;
  for (int s = 0; s < 20000 && sent < 2 * kFrames; ++s) {
    f.dp->step(t += 100 * kUs);
    for (const auto& fr : f.rig->collect(PortRole::link)) {
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
  EXPECT_NE(cfg.qos[static_cast<unsigned>(PortRole::link)].find("class add link hb"), std::string::npos);
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
  for (int i = 0; i < 40; ++i) ASSERT_TRUE(f.inject(PortRole::host, hb_frame(static_cast<uint16_t>(i))));
  for (int s = 0; s < 100; ++s) f.dp->step(t += 100 * kUs);
  EXPECT_EQ(f.rig->collect(PortRole::link).size(), 40u);
  f.expect_conservation(t + kMs);
}

// ---- traffic roles ----------------------------------------------------------------

// One class per role, each named by a role filter; `rest` (the default) for the others.
const char* kRoleScript = R"(
qdisc add link rate 1gbit
class add link hb prio 0 rate 100mbit ceil 1gbit
class add link px prio 1 rate 100mbit ceil 1gbit
class add link svmout prio 2 rate 100mbit ceil 1gbit
class add link ckpt prio 3 rate 100mbit ceil 1gbit
class add link blk prio 4 rate 100mbit ceil 1gbit
class add link rest prio 7 rate 100mbit ceil 1gbit default
filter add link role heartbeat class hb
filter add link role proxy class px
filter add link role svm_output class svmout
filter add link role checkpoint class ckpt
filter add link role block_replication class blk
)";

Bytes l4_frame(uint8_t proto, uint16_t sport, uint16_t dport, uint32_t seq = 1) {
  test::FrameSpec s;
  s.src = test::ip4(192, 168, 7, 1);
  s.dst = test::ip4(192, 168, 7, 2);
  s.proto = proto;
  s.sport = sport;
  s.dport = dport;
  s.seq = seq;
  s.payload.assign(100, 0x11);
  return test::build_frame(s);
}

uint64_t enq_of(const dp::QosShowResult& r, const std::string& cls) {
  const auto* c = class_of(r, cls);
  return c ? c->ctr.enq_pkts : ~uint64_t{0};
}

uint64_t role_frames(const dp::QosShowResult& r, sched::TrafficRole role) {
  return r.glue.role_frames[static_cast<unsigned>(role)];
}

void with_colo_ports(Config& c) {
  c.heartbeat.bind = "0.0.0.0:9099";                  // lockstep's UDP heartbeats
  c.heartbeat.send_to = "10.1.0.2:9100,10.1.0.3:9100";
  c.checkpointer = "native";                           // its checkpointer link on TCP 9009
  c.link.endpoint = "tcp:10.1.0.2:9009";
}

TEST_F(DataplaneQos, FramesBetweenTheHostsLandInTheClassesOfTheirRoles) {
  Fixture f("qrole", 1, kRoleScript, with_colo_ports);
  ASSERT_TRUE(f.dp) << f.error;
  uint64_t t = kMs;
  // Distinct counts per role, so that every class's count names its role.
  struct Kind { uint8_t proto; uint16_t sport, dport; int n; };
  const Kind kinds[] = {
      {17, 40000, 9099, 2},   // heartbeat: heartbeat.bind's port
      {17, 9100, 40000, 1},   // heartbeat: a send_to port, reply direction
      {6, 50000, 9009, 2},    // heartbeat: the checkpointer link (COLO control)
      {6, 50001, 9998, 2},    // checkpoint: QEMU's migration stream
      {6, 9998, 50001, 2},    //   and its acks
      {6, 50002, 10809, 3},   // block replication: NBD
      {6, 50003, 9999, 3},    //   COLO-FT.txt's NBD port
      {6, 50004, 9004, 7},    // svm_output: the redirector's stream of SVM output
      {6, 50005, 9003, 8},    // proxy: the mirror stream to the secondary
      {6, 50006, 80, 9},      // other
  };
  int total = 0;
  for (const Kind& k : kinds)
    for (int i = 0; i < k.n; ++i, ++total)
      ASSERT_TRUE(f.inject(PortRole::host, l4_frame(k.proto, k.sport, k.dport, static_cast<uint32_t>(i))));
  size_t out = 0;
  for (int s = 0; s < 200 && out < static_cast<size_t>(total); ++s) {
    f.dp->step(t += 100 * kUs);
    out += f.rig->collect(PortRole::link).size();
  }
  EXPECT_EQ(out, static_cast<size_t>(total)) << "every frame crosses to link";
  auto show = f.show_now(t);
  EXPECT_EQ(enq_of(show, "hb"), 5u);
  EXPECT_EQ(enq_of(show, "ckpt"), 4u);
  EXPECT_EQ(enq_of(show, "blk"), 6u);
  EXPECT_EQ(enq_of(show, "svmout"), 7u);
  EXPECT_EQ(enq_of(show, "px"), 8u);
  EXPECT_EQ(enq_of(show, "rest"), 9u);
  EXPECT_EQ(role_frames(show, sched::TrafficRole::heartbeat), 5u);
  EXPECT_EQ(role_frames(show, sched::TrafficRole::checkpoint), 4u);
  EXPECT_EQ(role_frames(show, sched::TrafficRole::block_replication), 6u);
  EXPECT_EQ(role_frames(show, sched::TrafficRole::svm_output), 7u);
  EXPECT_EQ(role_frames(show, sched::TrafficRole::proxy), 8u);
  EXPECT_EQ(role_frames(show, sched::TrafficRole::other), 9u);

  // Live: port 80 becomes checkpoint traffic (first by pref), through the ctrl command;
  // bad rules are refused naming the token, and change nothing.
  dp::DataplaneQosControl qc(f.dp->qos(), 5000 * kMs);
  ctrl::CommandRegistry reg;
  ctrl::register_qos_commands(reg, qc);
  auto run = [&](std::vector<std::string> words) {
    ctrl::CommandResult res;
    f.while_stepping(t += kUs, [&] { res = reg.execute(ctrl::CommandContext{}, words); });
    return res;
  };
  auto r = run({"qos", "role", "add", "pref", "1", "checkpoint", "proto", "tcp", "dport", "80"});
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_TRUE(r.result["applied"].get<bool>());
  r = run({"qos", "role", "add", "checkpoint", "dport", "99999"});
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("99999"), std::string::npos) << r.error;
  r = run({"qos", "role", "add", "chekpoint", "all"});
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("'chekpoint'"), std::string::npos) << r.error;
  r = run({"qos", "role", "del", "pref", "4242"});
  EXPECT_FALSE(r.ok);
  ctrl::CommandContext ro;
  ro.read_only = true;
  EXPECT_FALSE(reg.execute(ro, {"qos", "role", "del", "pref", "1"}).ok) << "read-only socket";
  r = reg.execute(ro, {"qos", "roles"});
  ASSERT_TRUE(r.ok) << r.error;
  const std::string text = r.result["text"].get<std::string>();
  EXPECT_EQ(text.find("pref 1 checkpoint proto 6 dport 80\n"), 0u) << text;
  EXPECT_NE(text.find("heartbeat proto 17 port 9099"), std::string::npos) << text;
  EXPECT_NE(text.find("heartbeat proto 6 port 9009"), std::string::npos) << text;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(f.inject(PortRole::host, l4_frame(6, 50006, 80, 100u + i)));
  for (int s = 0; s < 50; ++s) f.dp->step(t += 100 * kUs);
  EXPECT_EQ(f.rig->collect(PortRole::link).size(), 3u);
  show = f.show_now(t);
  EXPECT_EQ(enq_of(show, "ckpt"), 7u) << "port 80 is checkpoint traffic now";
  EXPECT_EQ(enq_of(show, "rest"), 9u);
  EXPECT_EQ(show.glue.roles_applied, 1u);

  // The Prometheus samples carry the same counters.
  std::vector<ctrl::MetricSample> samples;
  f.while_stepping(t, [&] { dp::append_qos_metrics(f.dp->qos(), 5000 * kMs, samples); });
  const std::string prom = ctrl::prometheus_text(samples);
  for (const char* line : {
           "lockstep_qos_up{port=\"link\"} 1\n",
           "lockstep_qos_class_enqueued_packets_total{port=\"link\",class=\"ckpt\"} 7\n",
           "lockstep_qos_class_sent_packets_total{port=\"link\",class=\"hb\"} 5\n",
           "lockstep_qos_class_enqueued_packets_total{port=\"link\",class=\"rest\"} 9\n",
           "lockstep_qos_class_drops_total{port=\"link\",class=\"hb\",reason=\"queue_full\"} 0\n",
           "lockstep_qos_class_backlog_packets{port=\"link\",class=\"blk\"} 0\n",
           "lockstep_qos_sent_packets_total{port=\"link\"} 42\n",
           "lockstep_qos_role_frames_total{port=\"link\",role=\"svm_output\"} 7\n",
           "lockstep_qos_role_frames_total{port=\"link\",role=\"checkpoint\"} 7\n",
           "# TYPE lockstep_qos_class_backlog_bytes gauge\n",
           "# TYPE lockstep_qos_class_sent_bytes_total counter\n",
       })
    EXPECT_NE(prom.find(line), std::string::npos) << line << "\n" << prom;
  const uint64_t hb_bytes = class_of(show, "hb")->ctr.deq_bytes;
  EXPECT_GT(hb_bytes, 0u);
  EXPECT_NE(prom.find("lockstep_qos_class_sent_bytes_total{port=\"link\",class=\"hb\"} " +
                      std::to_string(hb_bytes) + "\n"),
            std::string::npos);
  f.expect_conservation(t + kMs);
}

TEST_F(DataplaneQos, RoleMapKeysAreCheckedNamingTheKey) {
  Config cfg;
  std::string err;
  EXPECT_TRUE(dp::parse_config("qos:\n  roles:\n    - checkpoint proto tcp port 8888\n"
                               "    - defaults\n", cfg, err)) << err;
  EXPECT_NE(cfg.qos_roles.find("8888"), std::string::npos);
  EXPECT_FALSE(dp::parse_config("qos:\n  roles:\n    - checkpoint proto tcp port 8888\n"
                                "    - heartbeat proto udp port 70000\n", cfg, err));
  EXPECT_NE(err.find("qos.roles"), std::string::npos) << err;
  EXPECT_NE(err.find("line 2"), std::string::npos) << err;
  EXPECT_NE(err.find("70000"), std::string::npos) << err;
  EXPECT_FALSE(dp::apply_override("qos.roles=heartbeats all", cfg, err));
  EXPECT_NE(err.find("qos.roles"), std::string::npos) << err;
  EXPECT_NE(err.find("'heartbeats'"), std::string::npos) << err;
  EXPECT_FALSE(dp::parse_config("qos:\n  roles:\n    file: /nonexistent/roles\n", cfg, err));
  EXPECT_NE(err.find("qos.roles.file"), std::string::npos) << err;
  // Rules given without `defaults`: only they apply (9998 stays `other`).
  Fixture f("qrolecfg", 1, kRoleScript, [](Config& c) {
    c.qos_roles = "checkpoint proto tcp dport 7000\n";
  });
  ASSERT_TRUE(f.dp) << f.error;
  uint64_t t = kMs;
  ASSERT_TRUE(f.inject(PortRole::host, l4_frame(6, 1000, 7000)));
  ASSERT_TRUE(f.inject(PortRole::host, l4_frame(6, 1000, 9998)));
  for (int s = 0; s < 20; ++s) f.dp->step(t += 100 * kUs);
  auto show = f.show_now(t);
  EXPECT_EQ(enq_of(show, "ckpt"), 1u);
  EXPECT_EQ(enq_of(show, "rest"), 1u);
  f.expect_conservation(t + kMs);
}

TEST_F(DataplaneQos, SvmOutputReleasedAfterFailoverIsTheSvmOutputRole) {
  // ext carries the scheduler: PVM output (proxy) and, after failover to the secondary,
  // the SVM's own output (svm_output) go out there.
  Fixture f("qsvm", 1, nullptr, [](Config& c) {
    c.qos[static_cast<unsigned>(PortRole::ext)] =
        "qdisc add ext rate 1gbit\n"
        "class add ext px prio 1 rate 100mbit ceil 1gbit\n"
        "class add ext svmout prio 2 rate 100mbit ceil 1gbit\n"
        "class add ext rest prio 7 rate 100mbit ceil 1gbit default\n"
        "filter add ext role proxy class px\n"
        "filter add ext role svm_output class svmout\n";
  });
  ASSERT_TRUE(f.dp) << f.error;
  uint64_t t = kMs;
  dp::CtrlMsg m;
  m.kind = dp::CtrlMsg::set_mode;
  m.arg = static_cast<uint32_t>(Mode::passthrough);
  ASSERT_TRUE(f.dp->control().broadcast(m));
  f.dp->step(t);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(f.inject(PortRole::pvm, l4_frame(17, 53, 40000 + i)));
  for (int s = 0; s < 20; ++s) f.dp->step(t += 100 * kUs);
  EXPECT_EQ(f.rig->collect(PortRole::ext).size(), 3u) << "PVM output passes";
  m.kind = dp::CtrlMsg::failover;
  m.arg = static_cast<uint32_t>(Survivor::secondary);
  ASSERT_TRUE(f.dp->control().broadcast(m));
  f.dp->step(t += kUs);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(f.inject(PortRole::svm, l4_frame(17, 53, 41000 + i)));
  for (int s = 0; s < 20; ++s) f.dp->step(t += 100 * kUs);
  EXPECT_EQ(f.rig->collect(PortRole::ext).size(), 4u) << "the survivor SVM's output is released";
  auto show = f.show_now(t, "ext");
  EXPECT_EQ(enq_of(show, "px"), 3u);
  EXPECT_EQ(enq_of(show, "svmout"), 4u);
  EXPECT_EQ(enq_of(show, "rest"), 0u);
  EXPECT_EQ(role_frames(show, sched::TrafficRole::svm_output), 4u);
  EXPECT_EQ(role_frames(show, sched::TrafficRole::proxy), 3u);
  f.expect_conservation(t + kMs);
}

}  // namespace
}  // namespace lockstep

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new lockstep::dptest::EalEnv("dpqos"));
  return RUN_ALL_TESTS();
}
