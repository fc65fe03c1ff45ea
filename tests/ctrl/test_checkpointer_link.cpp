// The checkpointer link against the real lockstep-checkpointer over real sockets: both
// dialects, both directions (listen/connect), unix and TCP, disconnects and reconnects,
// the checkpointer killed mid-checkpoint, dropped/garbled answers and the timeout
// policies, heartbeat loss -> failover, failover from the checkpointer, version mismatch,
// periodic checkpoints, coalescing.
// Usage: test_checkpointer_link PATH/TO/lockstep-checkpointer [gtest flags]
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "ctrl/checkpointer_link.h"
#include "subprocess.h"
#include "test_util.h"

using namespace lockstep;
using namespace lockstep::ctrl;
using namespace lockstep::ctrl::testing;

namespace {

std::string g_tool;
constexpr uint64_t kMs = 1'000'000;

Endpoint endpoint(const std::string& text) {
  Endpoint ep;
  std::string error;
  EXPECT_TRUE(parse_endpoint(text, ep, error)) << error;
  return ep;
}

class LinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static int n = 0;
    ++n;
    sock_ = temp_path("ckpt-" + std::to_string(n) + ".sock");
    log_ = temp_path("ckpt-" + std::to_string(n) + ".log");
    unlink(sock_.c_str());
    unlink(log_.c_str());
    cfg_.reconnect_ns = 50 * kMs;
    cfg_.heartbeat_interval_ns = 50 * kMs;
    cfg_.policy.max_epoch_ns = 0;
    cfg_.policy.done_timeout_ns = 3000 * kMs;
    cfg_.checkpointer_peer.name.clear();  // heartbeats watched only where a test says
  }
  void TearDown() override {
    if (coord_) coord_->stop();
    unlink(sock_.c_str());
    unlink(log_.c_str());
  }

  void start_coordinator() {
    coord_ = std::make_unique<CheckpointCoordinator>(cfg_, events_, failover_);
    std::string error;
    ASSERT_TRUE(coord_->start(error)) << error;
  }
  void start_checkpointer(Subprocess& p, std::vector<std::string> args) {
    args.insert(args.begin(), g_tool);
    args.push_back("--log");
    args.push_back(log_);
    ASSERT_TRUE(p.start(args));
  }
  // Waits for an event of `kind` (keeping every event seen in seen_).
  bool wait_event(EventKind kind, Event* out = nullptr, int timeout_ms = 10000) {
    return wait_for(
        [&] {
          events_.drain(seen_);
          taken_.resize(seen_.size());
          for (size_t i = 0; i < seen_.size(); ++i) {
            if (seen_[i].kind == kind && !taken_[i]) {
              taken_[i] = true;
              if (out != nullptr) *out = seen_[i];
              return true;
            }
          }
          return false;
        },
        timeout_ms);
  }
  std::string log_text() {
    std::ifstream f(log_);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }
  size_t log_count(const std::string& needle) {
    std::string t = log_text();
    size_t n = 0;
    for (size_t p = t.find(needle); p != std::string::npos; p = t.find(needle, p + 1)) ++n;
    return n;
  }
  void request(uint64_t epoch, CheckpointReason r = CheckpointReason::payload_mismatch) {
    CheckpointRequest q;
    q.epoch = epoch;
    q.reason = r;
    coord_->on_request(q);
  }

  std::string sock_, log_;
  LinkConfig cfg_;
  EventQueue events_;
  FailoverController failover_{&events_};
  std::unique_ptr<CheckpointCoordinator> coord_;
  std::vector<Event> seen_;
  std::vector<bool> taken_;
};

}  // namespace

TEST_F(LinkTest, NativeConnectToCheckpointerOverUnix) {
  Subprocess cp;
  start_checkpointer(cp, {"--listen", "unix:" + sock_, "--latency-ms", "20", "--begin",
                          "--name", "ckpt-a"});
  cfg_.endpoint = endpoint("unix:" + sock_);
  cfg_.listen = false;
  start_coordinator();
  ASSERT_TRUE(wait_event(EventKind::checkpointer_up));
  request(0);
  Event e;
  ASSERT_TRUE(wait_event(EventKind::checkpoint_done, &e));
  EXPECT_EQ(e.epoch, 0u);
  EXPECT_EQ(coord_->epoch(), 1u);
  request(1, CheckpointReason::deadline);
  ASSERT_TRUE(wait_event(EventKind::checkpoint_done, &e));
  EXPECT_EQ(e.epoch, 1u);
  Json s = coord_->status();
  EXPECT_EQ(s["connected"], true);
  EXPECT_EQ(s["peer"]["name"], "ckpt-a");
  EXPECT_EQ(s["checkpoint"]["counters"]["begun"], 2);
  EXPECT_EQ(s["checkpoint"]["counters"]["done"], 2);
  EXPECT_NE(log_text().find("\"reason\":\"deadline\""), std::string::npos);
}

TEST_F(LinkTest, NativeListenOverTcpCheckpointerConnects) {
  cfg_.endpoint = endpoint("tcp:127.0.0.1:0");
  cfg_.listen = true;
  start_coordinator();
  uint16_t port = coord_->bound().port;
  ASSERT_NE(port, 0);
  Subprocess cp;
  start_checkpointer(cp, {"--connect", "tcp:127.0.0.1:" + std::to_string(port)});
  ASSERT_TRUE(wait_event(EventKind::checkpointer_up));
  request(0);
  ASSERT_TRUE(wait_event(EventKind::checkpoint_done));
}

TEST_F(LinkTest, QemuDialectXenStyleClient) {
  // lockstepd plays colo-compare's notify_dev server; the checkpointer connects, says
  // COLO_USERSPACE_PROXY_INIT, gets COLO_COMPARE_GET_XEN_INIT, answers DO_CHECKPOINT.
  cfg_.endpoint = endpoint("tcp:127.0.0.1:0");
  cfg_.listen = true;
  cfg_.dialect = Dialect::qemu;
  start_coordinator();
  Subprocess cp;
  start_checkpointer(cp, {"--dialect", "qemu", "--connect",
                          "tcp:127.0.0.1:" + std::to_string(coord_->bound().port)});
  ASSERT_TRUE(wait_event(EventKind::checkpointer_up));
  ASSERT_TRUE(wait_for([&] { return log_count("COLO_COMPARE_GET_XEN_INIT") == 1; }));
  request(5);
  Event e;
  ASSERT_TRUE(wait_event(EventKind::checkpoint_done, &e));
  EXPECT_EQ(e.epoch, 5u);
  EXPECT_EQ(log_count("\"type\":\"DO_CHECKPOINT\""), 1u);
  for (int i = 0; i < 20; ++i) request(6);  // coalesced: one DO_CHECKPOINT
  ASSERT_TRUE(wait_event(EventKind::checkpoint_done, &e));
  EXPECT_EQ(e.epoch, 6u);
  EXPECT_EQ(log_count("\"type\":\"DO_CHECKPOINT\""), 2u);
}

TEST_F(LinkTest, QemuDialectVnetHeaderConnectMode) {
  Subprocess cp;
  start_checkpointer(cp, {"--dialect", "qemu", "--vnet-hdr", "--listen", "unix:" + sock_});
  cfg_.endpoint = endpoint("unix:" + sock_);
  cfg_.dialect = Dialect::qemu;
  cfg_.vnet_hdr = true;
  start_coordinator();
  ASSERT_TRUE(wait_event(EventKind::checkpointer_up));
  request(0);
  ASSERT_TRUE(wait_event(EventKind::checkpoint_done));
  EXPECT_EQ(coord_->status()["link"]["protocol_errors"], 0);
}

TEST_F(LinkTest, QemuUnsolicitedCheckpointAndJunk) {
  Subprocess cp;
  start_checkpointer(cp, {"--dialect", "qemu", "--listen", "unix:" + sock_, "--periodic-ms",
                          "50"});
  cfg_.endpoint = endpoint("unix:" + sock_);
  cfg_.dialect = Dialect::qemu;
  start_coordinator();
  Event e;
  ASSERT_TRUE(wait_event(EventKind::checkpoint_done, &e));
  ASSERT_TRUE(wait_event(EventKind::checkpoint_done, &e));
  EXPECT_GE(coord_->status()["checkpoint"]["counters"]["done_unsolicited"].get<int>(), 2);
}

TEST_F(LinkTest, CheckpointerKilledMidCheckpointThenBack) {
  Subprocess cp;
  start_checkpointer(cp, {"--listen", "unix:" + sock_, "--die-on-request", "1"});
  cfg_.endpoint = endpoint("unix:" + sock_);
  start_coordinator();
  ASSERT_TRUE(wait_event(EventKind::checkpointer_up));
  request(0);
  ASSERT_TRUE(wait_event(EventKind::checkpointer_down));
  ASSERT_TRUE(wait_for([&] { return cp.exited() == 3; }));
  EXPECT_EQ(coord_->status()["checkpoint"]["state"], "outstanding");
  // A new checkpointer comes up: the outstanding request is sent again and completes.
  unlink(sock_.c_str());
  Subprocess cp2;
  start_checkpointer(cp2, {"--listen", "unix:" + sock_});
  ASSERT_TRUE(wait_event(EventKind::checkpointer_up));
  Event e;
  ASSERT_TRUE(wait_event(EventKind::checkpoint_done, &e));
  EXPECT_EQ(e.epoch, 0u);
  Json s = coord_->status();
  EXPECT_EQ(s["checkpoint"]["counters"]["requests_resent"], 1);
  EXPECT_GE(s["link"]["connects"].get<int>(), 2);
  EXPECT_GE(s["link"]["disconnects"].get<int>(), 1);
  EXPECT_NE(log_text().find("\"attempt\":2"), std::string::npos);
}

TEST_F(LinkTest, ListenModeAcceptsAReconnectingCheckpointer) {
  cfg_.endpoint = endpoint("unix:" + sock_);
  cfg_.listen = true;
  start_coordinator();
  {
    Subprocess cp;
    start_checkpointer(cp, {"--connect", "unix:" + sock_, "--reconnect-ms", "0"});
    ASSERT_TRUE(wait_event(EventKind::checkpointer_up));
    cp.kill_now();
    ASSERT_TRUE(wait_event(EventKind::checkpointer_down));
  }
  Subprocess cp2;
  start_checkpointer(cp2, {"--connect", "unix:" + sock_});
  ASSERT_TRUE(wait_event(EventKind::checkpointer_up));
  request(0);
  ASSERT_TRUE(wait_event(EventKind::checkpoint_done));
}

TEST_F(LinkTest, DroppedAnswersRetryThenAlarm) {
  Subprocess cp;
  start_checkpointer(cp, {"--listen", "unix:" + sock_, "--drop", "1"});
  cfg_.endpoint = endpoint("unix:" + sock_);
  cfg_.policy.done_timeout_ns = 100 * kMs;
  cfg_.policy.on_timeout = TimeoutPolicy::retry;
  cfg_.policy.max_retries = 2;
  start_coordinator();
  ASSERT_TRUE(wait_event(EventKind::checkpointer_up));
  request(0);
  Event e;
  ASSERT_TRUE(wait_event(EventKind::checkpoint_timeout, &e));
  EXPECT_EQ(e.epoch, 0u);
  Json c = coord_->status()["checkpoint"]["counters"];
  EXPECT_EQ(c["retries"], 2);
  EXPECT_EQ(c["alarms"], 1);
  EXPECT_EQ(log_count("fault_drop"), 3u);
  EXPECT_FALSE(failover_.survivor());
}

TEST_F(LinkTest, GarbledAnswerCountedThenTimeoutFailover) {
  Subprocess cp;
  start_checkpointer(cp, {"--listen", "unix:" + sock_, "--garble", "1"});
  cfg_.endpoint = endpoint("unix:" + sock_);
  cfg_.policy.done_timeout_ns = 100 * kMs;
  cfg_.policy.on_timeout = TimeoutPolicy::failover;
  cfg_.policy.failover_survivor = Survivor::primary;
  start_coordinator();
  ASSERT_TRUE(wait_event(EventKind::checkpointer_up));
  request(0);
  Event e;
  ASSERT_TRUE(wait_event(EventKind::failover, &e));
  EXPECT_EQ(e.survivor, Survivor::primary);
  EXPECT_GE(coord_->status()["link"]["protocol_errors"].get<int>(), 1);
  EXPECT_EQ(coord_->status()["checkpoint"]["counters"]["timeout_failovers"], 1);
  // The checkpointer is told, and later requests are not sent.
  ASSERT_TRUE(wait_for([&] { return log_count("\"type\":\"failover\"") == 1; }));
  request(0);
  ASSERT_TRUE(wait_for([&] {
    return coord_->status()["link"]["requests_after_failover"] == 1;
  }));
}

TEST_F(LinkTest, DelayedAnswerStillCompletes) {
  Subprocess cp;
  start_checkpointer(cp, {"--listen", "unix:" + sock_, "--delay", "1", "--delay-ms", "200",
                          "--seed", "9"});
  cfg_.endpoint = endpoint("unix:" + sock_);
  start_coordinator();
  ASSERT_TRUE(wait_event(EventKind::checkpointer_up));
  request(0);
  ASSERT_TRUE(wait_event(EventKind::checkpoint_done));
  EXPECT_EQ(log_count("fault_delay"), 1u);
}

TEST_F(LinkTest, HeartbeatLossDebouncedFailover) {
  Subprocess cp;
  start_checkpointer(cp, {"--listen", "unix:" + sock_, "--heartbeat-ms", "20",
                          "--heartbeat-stop-after", "5"});
  cfg_.endpoint = endpoint("unix:" + sock_);
  cfg_.checkpointer_peer = PeerConfig{"checkpointer", 150 * kMs, 100 * kMs,
                                      LossAction::failover_primary};
  start_coordinator();
  ASSERT_TRUE(wait_event(EventKind::peer_up));
  ASSERT_TRUE(wait_event(EventKind::peer_suspect));
  ASSERT_TRUE(wait_event(EventKind::peer_lost));
  Event e;
  ASSERT_TRUE(wait_event(EventKind::failover, &e));
  EXPECT_EQ(e.survivor, Survivor::primary);
  EXPECT_NE(e.detail.find("checkpointer lost"), std::string::npos) << e.detail;
  Json peers = coord_->peers();
  EXPECT_EQ(peers[0]["state"], "lost");
  EXPECT_EQ(peers[0]["heartbeats"], 5);
}

TEST_F(LinkTest, FailoverAskedByTheCheckpointer) {
  Subprocess cp;
  start_checkpointer(cp, {"--listen", "unix:" + sock_, "--failover", "secondary"});
  cfg_.endpoint = endpoint("unix:" + sock_);
  start_coordinator();
  Event e;
  ASSERT_TRUE(wait_event(EventKind::failover, &e));
  EXPECT_EQ(e.survivor, Survivor::secondary);
  EXPECT_EQ(coord_->status()["link"]["failovers_from_peer"], 1);
}

TEST_F(LinkTest, VersionMismatchIsRefused) {
  Subprocess cp;
  start_checkpointer(cp, {"--listen", "unix:" + sock_, "--protocol-version", "2"});
  cfg_.endpoint = endpoint("unix:" + sock_);
  start_coordinator();
  ASSERT_TRUE(wait_for([&] { return coord_->status()["link"]["version_mismatch"] >= 1; }));
  EXPECT_FALSE(coord_->connected());
  ASSERT_TRUE(wait_for([&] { return log_count("unsupported version 2") >= 1; }));
}

TEST_F(LinkTest, PeriodicCheckpointWithoutDivergence) {
  Subprocess cp;
  start_checkpointer(cp, {"--listen", "unix:" + sock_});
  cfg_.endpoint = endpoint("unix:" + sock_);
  cfg_.policy.max_epoch_ns = 100 * kMs;
  start_coordinator();
  Event e;
  ASSERT_TRUE(wait_event(EventKind::checkpoint_done, &e));
  ASSERT_TRUE(wait_event(EventKind::checkpoint_done, &e));
  EXPECT_GE(log_count("\"reason\":\"periodic\""), 2u);
}

TEST_F(LinkTest, ConnectFailuresAreCountedAndRetried) {
  cfg_.endpoint = endpoint("unix:" + sock_);
  start_coordinator();
  ASSERT_TRUE(wait_for([&] { return coord_->status()["link"]["connect_failures"] >= 2; }));
  request(0);  // held as pending until a checkpointer appears
  ASSERT_TRUE(wait_for([&] { return coord_->status()["checkpoint"]["state"] == "pending"; }));
  Subprocess cp;
  start_checkpointer(cp, {"--listen", "unix:" + sock_});
  ASSERT_TRUE(wait_event(EventKind::checkpoint_done));
}

TEST_F(LinkTest, MetricsNameTheLink) {
  cfg_.endpoint = endpoint("unix:" + sock_);
  start_coordinator();
  std::vector<MetricSample> m;
  coord_->metrics(m);
  std::string t = prometheus_text(m);
  EXPECT_NE(t.find("lockstep_checkpointer_requests_sent_total 0"), std::string::npos);
  EXPECT_NE(t.find("lockstep_checkpointer_connected{dialect=\"native\"} 0"), std::string::npos);
}

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s PATH/TO/lockstep-checkpointer\n", argv[0]);
    return 1;
  }
  g_tool = argv[1];
  signal(SIGPIPE, SIG_IGN);
  return RUN_ALL_TESTS();
}
