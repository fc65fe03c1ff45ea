// Heartbeat loss -> debounced failover; flaps; manual failover; the failover latch;
// appliance-to-appliance heartbeats over UDP.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "ctrl/checkpointer_link.h"
#include "ctrl/heartbeat.h"
#include "ctrl/heartbeat_udp.h"

using namespace lockstep;
using namespace lockstep::ctrl;

namespace {
constexpr uint64_t kMs = 1'000'000;

PeerConfig peer(const std::string& name, LossAction a) {
  return PeerConfig{name, 100 * kMs, 50 * kMs, a};
}

std::vector<EventKind> kinds(const std::vector<HeartbeatMonitor::Decision>& ds) {
  std::vector<EventKind> k;
  for (const auto& d : ds) k.push_back(d.event.kind);
  return k;
}
}  // namespace

TEST(Heartbeat, LossIsDebouncedThenFailsOver) {
  HeartbeatMonitor m;
  m.add_peer(peer("svm-host", LossAction::failover_primary), 0);
  std::vector<HeartbeatMonitor::Decision> ds;
  m.beat("svm-host", 1, 10 * kMs, ds);
  EXPECT_EQ(kinds(ds), std::vector<EventKind>{EventKind::peer_up});
  ds.clear();
  m.tick(109 * kMs, ds);
  EXPECT_TRUE(ds.empty());
  EXPECT_EQ(m.next_deadline(), 110 * kMs);
  m.tick(110 * kMs, ds);
  ASSERT_EQ(kinds(ds), std::vector<EventKind>{EventKind::peer_suspect});
  EXPECT_FALSE(ds[0].failover);
  ds.clear();
  EXPECT_EQ(m.state("svm-host"), PeerState::suspect);
  m.tick(159 * kMs, ds);
  EXPECT_TRUE(ds.empty());
  m.tick(160 * kMs, ds);
  ASSERT_EQ(kinds(ds), std::vector<EventKind>{EventKind::peer_lost});
  ASSERT_TRUE(ds[0].failover);
  EXPECT_EQ(*ds[0].failover, Survivor::primary);
  EXPECT_EQ(m.state("svm-host"), PeerState::lost);
  ds.clear();
  m.tick(10000 * kMs, ds);  // lost once, not again
  EXPECT_TRUE(ds.empty());
}

TEST(Heartbeat, FlapInsideDebounceDoesNotFailOver) {
  HeartbeatMonitor m;
  m.add_peer(peer("pvm-host", LossAction::failover_secondary), 0);
  std::vector<HeartbeatMonitor::Decision> ds;
  m.beat("pvm-host", 1, 0, ds);
  m.tick(100 * kMs, ds);
  m.beat("pvm-host", 2, 120 * kMs, ds);  // back inside the debounce: no failover
  m.tick(220 * kMs, ds);  // silent again from 120: suspect at 220, lost at 270
  std::vector<EventKind> want = {EventKind::peer_up, EventKind::peer_suspect, EventKind::peer_up,
                                 EventKind::peer_suspect};
  EXPECT_EQ(kinds(ds), want);
  ds.clear();
  m.tick(269 * kMs, ds);
  EXPECT_TRUE(ds.empty());
  m.tick(270 * kMs, ds);
  ASSERT_EQ(kinds(ds), std::vector<EventKind>{EventKind::peer_lost});
  EXPECT_EQ(*ds[0].failover, Survivor::secondary);
  EXPECT_EQ(m.peers()[0].flaps, 1u);
}

TEST(Heartbeat, NeverHeardPeerIsLostToo) {
  HeartbeatMonitor m;
  m.add_peer(peer("checkpointer", LossAction::alarm), 1000 * kMs);
  std::vector<HeartbeatMonitor::Decision> ds;
  m.tick(1100 * kMs, ds);
  m.tick(1150 * kMs, ds);
  ASSERT_EQ(kinds(ds), (std::vector<EventKind>{EventKind::peer_suspect, EventKind::peer_lost}));
  EXPECT_FALSE(ds[1].failover);  // alarm only
}

TEST(Heartbeat, SequenceGapsAndRecovery) {
  HeartbeatMonitor m;
  m.add_peer(peer("p", LossAction::alarm), 0);
  std::vector<HeartbeatMonitor::Decision> ds;
  m.beat("p", 1, 0, ds);
  m.beat("p", 5, 1 * kMs, ds);  // 3 missed
  m.beat("p", 4, 2 * kMs, ds);  // reordered
  EXPECT_EQ(m.peers()[0].seq_gaps, 3u);
  EXPECT_EQ(m.peers()[0].seq_reordered, 1u);
  m.tick(500 * kMs, ds);  // a late tick: suspect since 102 ms, so lost at once
  EXPECT_EQ(m.state("p"), PeerState::lost);
  ds.clear();
  m.beat("p", 6, 600 * kMs, ds);
  ASSERT_EQ(kinds(ds), std::vector<EventKind>{EventKind::peer_up});
  EXPECT_EQ(m.peers()[0].recoveries, 1u);
  EXPECT_FALSE(m.beat("stranger", 1, 0, ds));
  EXPECT_EQ(m.unknown_peer_beats(), 1u);
  Json j = m.to_json(600 * kMs);
  EXPECT_EQ(j[0]["peer"], "p");
  EXPECT_EQ(j[0]["state"], "up");
}

TEST(Failover, FirstDecisionWinsAndIsAnEvent) {
  EventQueue q;
  FailoverController f(&q);
  std::string error;
  EXPECT_FALSE(f.survivor());
  ASSERT_TRUE(f.decide(Survivor::secondary, "peer pvm-host lost", 5, error));
  EXPECT_EQ(*f.survivor(), Survivor::secondary);
  EXPECT_FALSE(f.decide(Survivor::primary, "manual", 6, error));
  EXPECT_NE(error.find("secondary survives"), std::string::npos) << error;
  EXPECT_EQ(f.refused(), 1u);
  std::vector<Event> ev;
  EXPECT_EQ(q.drain(ev), 1u);
  EXPECT_EQ(ev[0].kind, EventKind::failover);
  EXPECT_EQ(ev[0].survivor, Survivor::secondary);
  EXPECT_EQ(ev[0].detail, "peer pvm-host lost");
  Json j = f.to_json(10);
  EXPECT_EQ(j["survivor"], "secondary");
  EXPECT_EQ(q.history_json().size(), 1u);
}

TEST(Failover, ManualFailoverPrimary) {
  EventQueue q;
  FailoverController f(&q);
  std::string error;
  ASSERT_TRUE(f.decide(Survivor::primary, "manual (uid 0 pid 1)", 1, error));
  std::vector<Event> ev;
  q.drain(ev);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].to_json()["survivor"], "primary");
}

TEST(Failover, ParsersRejectJunk) {
  LossAction a;
  EXPECT_TRUE(loss_action_from_string("failover-secondary", a));
  EXPECT_EQ(a, LossAction::failover_secondary);
  EXPECT_FALSE(loss_action_from_string("explode", a));
}

// Two appliances' heartbeats over real UDP sockets on loopback, fed to a coordinator's
// monitor: the peer comes up, goes silent, is lost after the debounce, and the loss
// action (primary survives) is decided.
TEST(HeartbeatUdp, PeerLossOverRealSocketsFailsOver) {
  EventQueue q;
  FailoverController fo(&q);
  LinkConfig lc;
  std::string error;
  ASSERT_TRUE(parse_endpoint("unix:/nonexistent/lockstep-ckpt.sock", lc.endpoint, error));
  lc.checkpointer_peer.name.clear();
  lc.policy.max_epoch_ns = 0;
  CheckpointCoordinator coord(lc, q, fo);
  coord.add_peer(PeerConfig{"svm-host", 150 * kMs, 100 * kMs, LossAction::failover_primary});
  ASSERT_TRUE(coord.start(error)) << error;

  HeartbeatUdpConfig rx_cfg;
  rx_cfg.name = "pvm-host";
  ASSERT_TRUE(parse_endpoint("127.0.0.1:0", rx_cfg.bind, error));
  HeartbeatUdp rx(rx_cfg, [&](const std::string& peer, uint64_t seq) { coord.beat(peer, seq); });
  ASSERT_TRUE(rx.start(error)) << error;

  HeartbeatUdpConfig tx_cfg;
  tx_cfg.name = "svm-host";
  tx_cfg.interval_ns = 20 * kMs;
  ASSERT_TRUE(parse_endpoint("127.0.0.1:0", tx_cfg.bind, error));
  Endpoint to;
  ASSERT_TRUE(parse_endpoint("127.0.0.1:" + std::to_string(rx.port()), to, error));
  tx_cfg.send_to.push_back(to);
  HeartbeatUdp tx(tx_cfg, [](const std::string&, uint64_t) {});
  ASSERT_TRUE(tx.start(error)) << error;

  std::vector<Event> seen;
  auto wait_kind = [&](EventKind k) {
    for (int i = 0; i < 1000; ++i) {
      q.drain(seen);
      for (const auto& e : seen) {
        if (e.kind == k) return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  };
  ASSERT_TRUE(wait_kind(EventKind::peer_up));
  EXPECT_FALSE(fo.survivor());
  tx.pause_sending(true);  // the SVM host goes silent
  ASSERT_TRUE(wait_kind(EventKind::peer_lost));
  ASSERT_TRUE(wait_kind(EventKind::failover));
  ASSERT_TRUE(fo.survivor());
  EXPECT_EQ(*fo.survivor(), Survivor::primary);
  EXPECT_GT(rx.received(), 0u);
  EXPECT_EQ(rx.invalid(), 0u);
  Json peers = coord.peers();
  EXPECT_EQ(peers[0]["peer"], "svm-host");
  EXPECT_EQ(peers[0]["state"], "lost");
  tx.stop();
  rx.stop();
  coord.stop();
}
