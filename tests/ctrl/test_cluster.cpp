// ClusterCore (ctrl/cluster.h) without corosync: two cores joined by a simulated group
// that delivers every message to both in one total order, membership changes, quorum,
// link watching; time is an argument.
#include <gtest/gtest.h>

#include <array>
#include <deque>

#include "ctrl/cluster.h"

namespace lockstep::ctrl {
namespace {

constexpr uint64_t kMs = 1'000'000;

struct Node {
  explicit Node(ClusterRole r, uint32_t id) : core(ClusterCoreConfig{.role = r}), me{id, 100 + id} {}
  ClusterCore core;
  ClusterMember me;
  std::vector<std::string> notes;
  std::optional<Survivor> decided;
  int decisions = 0;
  void take(ClusterCore::Output& o) {
    notes.insert(notes.end(), o.notes.begin(), o.notes.end());
    if (o.decide) {
      decided = o.decide;
      ++decisions;
    }
  }
};

// Two nodes in one partition or two; a totally ordered delivery queue per partition.
struct Group {
  Node a{ClusterRole::primary, 1};
  Node b{ClusterRole::secondary, 2};
  bool partitioned = false;
  uint64_t now = 1000 * kMs;
  // The messages multicast and not yet delivered, in the group's order.
  std::deque<std::pair<ClusterMember, std::array<uint8_t, kClusterMsgSize>>> wire;

  Node* node(ClusterMember m) { return m == a.me ? &a : &b; }
  void out(Node& n, ClusterCore::Output& o) { n.take(o); }

  void join_both(bool quorate = true) {
    for (Node* n : {&a, &b}) {
      ClusterCore::Output o;
      n->core.joined(n->me, now, o);
      n->core.quorum(quorate, std::array<uint32_t, 2>{1, 2}, now, o);
      out(*n, o);
    }
    std::array<ClusterMember, 2> m{a.me, b.me};
    for (Node* n : {&a, &b}) {
      ClusterCore::Output o;
      n->core.config_change(m, {}, m, now, o);
      out(*n, o);
    }
  }
  // Each node multicasts what is due; the group orders a's sends before b's unless told.
  void send(bool b_first = false) {
    std::vector<Node*> order = b_first ? std::vector<Node*>{&b, &a} : std::vector<Node*>{&a, &b};
    for (Node* n : order) {
      std::vector<ClusterCore::Send> s;
      n->core.due(now, s);
      for (auto x : s) {
        std::array<uint8_t, kClusterMsgSize> bytes{};
        encode_cluster_msg(x.msg, x.seq, bytes.data());
        wire.emplace_back(n->me, bytes);
      }
    }
  }
  void deliver() {
    while (!wire.empty()) {
      auto [from, bytes] = wire.front();
      wire.pop_front();
      for (Node* n : {&a, &b}) {
        if (partitioned && !(n->me == from)) continue;
        ClusterCore::Output o;
        n->core.deliver(from, bytes, now, o);
        out(*n, o);
      }
    }
  }
  void advance(uint64_t ns) {
    uint64_t end = now + ns;
    while (now < end) {
      now += std::min<uint64_t>(50 * kMs, end - now);
      for (Node* n : {&a, &b}) {
        ClusterCore::Output o;
        n->core.tick(now, o);
        out(*n, o);
      }
      send();
      deliver();
    }
  }
  // The link between the nodes is cut: each sees the other leave; quorum per side.
  void partition(bool a_quorate, bool b_quorate) {
    partitioned = true;
    ClusterCore::Output oa, ob;
    std::array<ClusterMember, 1> ma{a.me}, mb{b.me}, la{b.me}, lb{a.me};
    // Membership first on one side, quorum first on the other (no order is promised).
    a.core.config_change(ma, la, {}, now, oa);
    a.core.quorum(a_quorate, std::array<uint32_t, 1>{1}, now, oa);
    b.core.quorum(b_quorate, std::array<uint32_t, 1>{2}, now, ob);
    b.core.config_change(mb, lb, {}, now, ob);
    a.take(oa);
    b.take(ob);
  }
  void heal() {
    partitioned = false;
    std::array<ClusterMember, 2> m{a.me, b.me};
    ClusterCore::Output oa, ob;
    // Quorum first on b (the minority side regaining it), membership after.
    b.core.quorum(true, std::array<uint32_t, 2>{1, 2}, now, ob);
    std::array<ClusterMember, 1> ja{b.me}, jb{a.me};
    a.core.config_change(m, {}, ja, now, oa);
    b.core.config_change(m, {}, jb, now, ob);
    a.core.quorum(true, std::array<uint32_t, 2>{1, 2}, now, oa);
    a.take(oa);
    b.take(ob);
  }
};

TEST(ClusterCore, JoinsAndPairsAndSeesItsOwnHello) {
  Group g;
  EXPECT_EQ(g.a.core.state(), ClusterState::joining);
  g.join_both();
  EXPECT_EQ(g.a.core.state(), ClusterState::paired);
  EXPECT_EQ(g.b.core.state(), ClusterState::paired);
  EXPECT_EQ(g.a.core.outbox_size(), 2u);  // HELLOs (joining, the peer joining) until seen
  g.advance(100 * kMs);
  EXPECT_EQ(g.a.core.outbox_size(), 0u);
  EXPECT_EQ(g.a.core.counters().own_copies, 2u);
  auto j = g.b.core.to_json(g.now);
  EXPECT_TRUE(j["peer_hello"].get<bool>());
  EXPECT_EQ(j["members"].size(), 2u);
}

TEST(ClusterCore, ALaterJoinerGetsTheHelloItMissed) {
  Group g;
  ClusterCore::Output o;
  g.a.core.joined(g.a.me, g.now, o);
  g.a.core.quorum(true, std::array<uint32_t, 1>{1}, g.now, o);
  std::array<ClusterMember, 1> only_a{g.a.me};
  g.a.core.config_change(only_a, {}, only_a, g.now, o);
  g.advance(200 * kMs);  // a's first HELLO reaches a alone
  EXPECT_EQ(g.a.core.outbox_size(), 0u);
  g.b.core.joined(g.b.me, g.now, o);
  g.b.core.quorum(true, std::array<uint32_t, 2>{1, 2}, g.now, o);
  std::array<ClusterMember, 2> both{g.a.me, g.b.me};
  std::array<ClusterMember, 1> j{g.b.me};
  g.a.core.config_change(both, {}, j, g.now, o);
  g.b.core.config_change(both, {}, j, g.now, o);
  g.advance(200 * kMs);
  EXPECT_TRUE(g.b.core.to_json(g.now)["peer_hello"].get<bool>());
  EXPECT_TRUE(g.a.core.to_json(g.now)["peer_hello"].get<bool>());
}

TEST(ClusterCore, ResendsEvery100msUntilItsOwnCopyArrives) {
  Group g;
  ClusterCore::Output o0;
  g.a.core.joined(g.a.me, g.now, o0);
  std::vector<ClusterCore::Send> s;
  g.a.core.due(g.now, s);
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].msg, ClusterMsg::hello);
  s.clear();
  g.a.core.due(g.now + 99 * kMs, s);
  EXPECT_TRUE(s.empty());
  g.a.core.due(g.now + 100 * kMs, s);
  ASSERT_EQ(s.size(), 1u);  // resent
  EXPECT_EQ(g.a.core.counters().resent, 1u);
  // Both copies are delivered: the first clears it, the second is a duplicate.
  std::array<uint8_t, kClusterMsgSize> bytes{};
  encode_cluster_msg(s[0].msg, s[0].seq, bytes.data());
  ClusterCore::Output o;
  g.a.core.deliver(g.a.me, bytes, g.now, o);
  g.a.core.deliver(g.a.me, bytes, g.now, o);
  EXPECT_EQ(g.a.core.outbox_size(), 0u);
  EXPECT_EQ(g.a.core.counters().own_copies, 1u);
  s.clear();
  g.a.core.due(g.now + 500 * kMs, s);
  EXPECT_TRUE(s.empty());
}

TEST(ClusterCore, JunkIsCountedNotActedOn) {
  Group g;
  g.join_both();
  ClusterCore::Output o;
  std::array<uint8_t, 3> short_msg{0, 0, 2};
  g.a.core.deliver(g.b.me, short_msg, g.now, o);
  std::array<uint8_t, 12> long_msg{};
  g.a.core.deliver(g.b.me, long_msg, g.now, o);
  g.a.core.deliver(g.b.me, {}, g.now, o);
  std::array<uint8_t, kClusterMsgSize> unknown{0, 0, 0, 99, 0, 0, 0, 1};
  g.a.core.deliver(g.b.me, unknown, g.now, o);
  std::array<uint8_t, kClusterMsgSize> zero{};
  g.a.core.deliver(g.b.me, zero, g.now, o);
  EXPECT_EQ(g.a.core.counters().junk_length, 3u);
  EXPECT_EQ(g.a.core.counters().junk_code, 2u);
  EXPECT_FALSE(o.decide);
  EXPECT_EQ(g.a.core.state(), ClusterState::paired);
}

TEST(ClusterCore, PeerLeavingWithQuorumFailsOverOnceAfterSettle) {
  Group g;
  g.join_both();
  g.advance(200 * kMs);
  g.partition(true, false);
  EXPECT_EQ(g.a.core.state(), ClusterState::blocked);  // settling
  EXPECT_EQ(g.a.decisions, 0);
  g.advance(400 * kMs);
  EXPECT_EQ(g.a.decisions, 0);
  g.advance(200 * kMs);
  EXPECT_EQ(g.a.decisions, 1);
  EXPECT_EQ(g.a.decided, Survivor::primary);
  EXPECT_EQ(g.a.core.state(), ClusterState::survivor);
  // b had no quorum: it never promotes, however long.
  g.advance(5000 * kMs);
  EXPECT_EQ(g.b.decisions, 0);
  EXPECT_EQ(g.b.core.state(), ClusterState::blocked);
  EXPECT_EQ(g.a.decisions, 1);
}

TEST(ClusterCore, SplitBrainOnlyTheQuorateSidePromotesAndTheLoserRejoinsAsSecondary) {
  // The secondary keeps quorum (it holds the tie-breaker): it promotes; the primary does not.
  Group g;
  g.join_both();
  g.advance(200 * kMs);
  g.partition(false, true);
  g.advance(1000 * kMs);
  EXPECT_EQ(g.b.decisions, 1);
  EXPECT_EQ(g.b.decided, Survivor::secondary);
  EXPECT_EQ(g.a.decisions, 0);
  EXPECT_EQ(g.a.core.state(), ClusterState::blocked);
  g.heal();
  g.advance(1000 * kMs);
  EXPECT_EQ(g.a.decisions, 0);  // regaining quorum with the peer back decides nothing
  EXPECT_EQ(g.a.core.state(), ClusterState::paired);
  EXPECT_EQ(g.b.core.state(), ClusterState::survivor);
}

TEST(ClusterCore, QuorumBackWhileThePeerIsInTheViewDecidesNothing) {
  Group g;
  g.join_both();
  g.partition(true, false);
  g.advance(1000 * kMs);
  ASSERT_EQ(g.b.core.state(), ClusterState::blocked);
  // b regains quorum and the quorate view holds node 1 before CPG shows it back.
  ClusterCore::Output o;
  g.b.core.quorum(true, std::array<uint32_t, 2>{1, 2}, g.now, o);
  g.b.take(o);
  g.advance(1000 * kMs);
  EXPECT_EQ(g.b.decisions, 0);
}

TEST(ClusterCore, QuorumReturningWithThePeerStillGoneDecides) {
  Group g;
  g.join_both();
  g.partition(true, false);
  g.advance(1000 * kMs);
  EXPECT_EQ(g.b.decisions, 0);
  ClusterCore::Output o;
  g.b.core.quorum(true, std::array<uint32_t, 2>{2, 3}, g.now, o);  // a third node, not a
  g.b.take(o);
  EXPECT_EQ(g.b.decisions, 1);
  EXPECT_EQ(g.b.decided, Survivor::secondary);
}

TEST(ClusterCore, BothSendFailoverTheFirstDeliveredWins) {
  for (bool b_first : {false, true}) {
    Group g;
    g.join_both();
    g.advance(200 * kMs);
    std::string err;
    ClusterCore::Output oa, ob;
    ASSERT_TRUE(g.a.core.request_failover("test", g.now, oa, err)) << err;
    ASSERT_TRUE(g.b.core.request_failover("test", g.now, ob, err)) << err;
    g.send(b_first);
    g.deliver();
    g.advance(300 * kMs);
    Node& win = b_first ? g.b : g.a;
    Node& lose = b_first ? g.a : g.b;
    EXPECT_EQ(win.decisions, 1) << b_first;
    EXPECT_EQ(lose.decisions, 0) << b_first;
    EXPECT_EQ(win.core.state(), ClusterState::survivor);
    EXPECT_EQ(lose.core.state(), ClusterState::failed);
    EXPECT_EQ(win.core.counters().late_failover, 1u);
    EXPECT_EQ(lose.core.counters().late_failover, 1u);
    // The loser's FAILED reaches the winner, who has decided already: still one decision.
    g.advance(1000 * kMs);
    EXPECT_EQ(win.decisions, 1);
    EXPECT_EQ(lose.decisions, 0);
    EXPECT_FALSE(lose.core.request_failover("again", g.now, oa, err));
  }
}

TEST(ClusterCore, APeersResendsAreDuplicatesNotNewMessages) {
  // Both FAILOVERs resent three times before any is delivered (corosync was slow): the
  // race has one first FAILOVER and one late one on each side, the rest are duplicates.
  Group g;
  g.join_both();
  g.advance(200 * kMs);
  std::string err;
  ClusterCore::Output o;
  ASSERT_TRUE(g.a.core.request_failover("x", g.now, o, err));
  ASSERT_TRUE(g.b.core.request_failover("x", g.now, o, err));
  for (int i = 0; i < 3; ++i) {
    g.send(true);
    g.now += 100 * kMs;
  }
  g.deliver();
  EXPECT_EQ(g.b.decisions, 1);
  EXPECT_EQ(g.a.core.state(), ClusterState::failed);
  EXPECT_EQ(g.a.core.counters().late_failover, 1u);
  EXPECT_EQ(g.b.core.counters().late_failover, 1u);
  EXPECT_EQ(g.a.core.counters().duplicates, 4u);  // 2 of b's, 2 of its own
  EXPECT_EQ(g.b.core.counters().duplicates, 4u);
}

TEST(ClusterCore, FailoverRequestNeedsQuorumAndTheGroup) {
  Group g;
  std::string err;
  ClusterCore::Output o;
  EXPECT_FALSE(g.a.core.request_failover("x", g.now, o, err));
  EXPECT_NE(err.find("not in the cluster group"), std::string::npos);
  g.join_both(false);
  EXPECT_FALSE(g.a.core.request_failover("x", g.now, o, err));
  EXPECT_NE(err.find("no quorum"), std::string::npos);
}

TEST(ClusterCore, AFailoverAloneInTheGroupIsDeliveredToItselfAndDecides) {
  Node n(ClusterRole::secondary, 7);
  ClusterCore::Output o;
  n.core.joined(n.me, 0, o);
  n.core.quorum(true, std::array<uint32_t, 1>{7}, 0, o);
  std::array<ClusterMember, 1> m{n.me};
  n.core.config_change(m, {}, m, 0, o);
  std::string err;
  ASSERT_TRUE(n.core.request_failover("promote", 0, o, err));
  std::vector<ClusterCore::Send> s;
  n.core.due(0, s);
  for (auto x : s) {
    std::array<uint8_t, kClusterMsgSize> bytes{};
    encode_cluster_msg(x.msg, x.seq, bytes.data());
    n.core.deliver(n.me, bytes, 0, o);
  }
  n.take(o);
  EXPECT_EQ(n.decided, Survivor::secondary);
}

TEST(ClusterCore, FailoverWithoutQuorumAtDeliveryDoesNotPromote) {
  Group g;
  g.join_both();
  std::string err;
  ClusterCore::Output o;
  ASSERT_TRUE(g.b.core.request_failover("x", g.now, o, err));
  g.b.core.quorum(false, std::array<uint32_t, 1>{2}, g.now, o);
  g.send();
  g.deliver();
  EXPECT_EQ(g.b.decisions, 0);
  EXPECT_EQ(g.a.core.state(), ClusterState::failed);  // a saw b's FAILOVER first
}

TEST(ClusterCore, YellowFailsASideAfter10sWhenThePeerIsNotYellow) {
  Group g;
  g.join_both();
  g.advance(200 * kMs);
  ClusterCore::Output o;
  g.b.core.link(true, g.now, o);
  g.b.take(o);
  g.advance(9900 * kMs);
  EXPECT_EQ(g.b.core.state(), ClusterState::paired);
  EXPECT_TRUE(g.a.core.to_json(g.now)["peer_yellow"].get<bool>());
  g.advance(200 * kMs);
  EXPECT_EQ(g.b.core.state(), ClusterState::failed);
  EXPECT_EQ(g.b.decisions, 0);
  // b's FAILED reaches a: after the settle time, a (quorate) fails over, primary survives.
  g.advance(600 * kMs);
  EXPECT_EQ(g.a.decisions, 1);
  EXPECT_EQ(g.a.decided, Survivor::primary);
}

TEST(ClusterCore, YellowOnBothSidesFailsNobody) {
  Group g;
  g.join_both();
  ClusterCore::Output o;
  g.a.core.link(true, g.now, o);
  g.b.core.link(true, g.now, o);
  g.advance(20000 * kMs);
  EXPECT_EQ(g.a.core.state(), ClusterState::paired);
  EXPECT_EQ(g.b.core.state(), ClusterState::paired);
  // The peer's link comes back, ours stays down: we fail once ours has been down for the
  // yellow time since then (not since it went down: that was while both were yellow).
  g.a.core.link(false, g.now, o);
  g.advance(9800 * kMs);
  EXPECT_EQ(g.b.core.state(), ClusterState::paired);
  g.advance(400 * kMs);
  EXPECT_EQ(g.b.core.state(), ClusterState::failed);
}

TEST(ClusterCore, YellowOnBothSidesThatRecoverOneAfterTheOtherFailsNobody) {
  // A shared switch down for 20 s, whose ports come back 2 s apart.
  Group g;
  g.join_both();
  ClusterCore::Output o;
  g.a.core.link(true, g.now, o);
  g.b.core.link(true, g.now, o);
  g.advance(20000 * kMs);
  g.a.core.link(false, g.now, o);
  g.advance(2000 * kMs);
  g.b.core.link(false, g.now, o);
  g.advance(20000 * kMs);
  EXPECT_EQ(g.a.core.state(), ClusterState::paired);
  EXPECT_EQ(g.b.core.state(), ClusterState::paired);
  EXPECT_EQ(g.a.decisions + g.b.decisions, 0);
}

TEST(ClusterCore, YellowThatRecoversInTimeFailsNobody) {
  Group g;
  g.join_both();
  ClusterCore::Output o;
  g.b.core.link(true, g.now, o);
  g.advance(5000 * kMs);
  g.b.core.link(false, g.now, o);
  g.advance(20000 * kMs);
  EXPECT_EQ(g.b.core.state(), ClusterState::paired);
  EXPECT_FALSE(g.a.core.to_json(g.now)["peer_yellow"].get<bool>());
}

TEST(ClusterCore, PeerShutdownIsNotAFailureForTheSecondary) {
  Group g;
  g.join_both();
  g.a.core.shutdown(g.now);
  g.advance(200 * kMs);
  // a's lockstepd exits: b sees it leave.
  ClusterCore::Output o;
  std::array<ClusterMember, 1> mb{g.b.me}, lb{g.a.me};
  g.b.core.config_change(mb, lb, {}, g.now, o);
  g.b.take(o);
  g.advance(2000 * kMs);
  EXPECT_EQ(g.b.decisions, 0);  // the primary stopped on purpose: no promotion
  EXPECT_EQ(g.b.core.state(), ClusterState::waiting);
}

TEST(ClusterCore, PeerShutdownMakesThePrimaryGoOnAlone) {
  Group g;
  g.join_both();
  g.b.core.shutdown(g.now);
  g.advance(200 * kMs);
  g.partition(true, true);
  EXPECT_EQ(g.a.decisions, 1);
  EXPECT_EQ(g.a.decided, Survivor::primary);
}

TEST(ClusterCore, LosingCorosyncPromotesNothingAndRejoins) {
  Group g;
  g.join_both();
  ClusterCore::Output o;
  g.b.core.disconnected(g.now, o);
  g.b.take(o);
  EXPECT_EQ(g.b.core.state(), ClusterState::joining);
  EXPECT_FALSE(g.b.core.quorate());
  g.advance(5000 * kMs);
  EXPECT_EQ(g.b.decisions, 0);
  g.join_both();
  EXPECT_EQ(g.b.core.state(), ClusterState::paired);
}

}  // namespace
}  // namespace lockstep::ctrl
