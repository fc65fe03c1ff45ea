// The connection table: find and create; the index against a map under random inserts
// and erases with colliding hashes (backward-shift deletion keeps every key findable);
// a full table evicts the oldest idle record, never one that holds frames or TCP state
// translation still needs, and says table_full when nothing can go; LRU order; idle
// expiry and the linger of closed connections; the expire hook.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <vector>

#include "tests/unit/parts_rig.h"

namespace lockstep::test {
namespace {

FlowKey key(uint16_t n) {
  FlowKey k;
  k.proto = kProtoUdp;
  k.port_lo = n;
  k.port_hi = 9;
  return k;
}

TEST(ConnTable, CreateFindAndOrder) {
  PartsRig r;
  const uint32_t a = r.conns.lookup_or_create(key(1), ConnKind::datagram, 10, true);
  const uint32_t b = r.conns.lookup_or_create(key(2), ConnKind::tcp, 20, true);
  ASSERT_NE(a, kNil);
  ASSERT_NE(b, kNil);
  EXPECT_EQ(r.conns.lookup_or_create(key(1), ConnKind::datagram, 30, false), a);
  EXPECT_EQ(r.conns.lookup_or_create(key(3), ConnKind::datagram, 30, false), kNil);
  EXPECT_EQ(r.conns[b].kind, ConnKind::tcp);
  EXPECT_EQ(r.conns[a].last_seen_ns, 10u);
  EXPECT_EQ(r.c.conns_created, 2u);
  EXPECT_EQ(r.c.conns_active, 2u);
  EXPECT_EQ(r.conns.oldest(), a);
  EXPECT_EQ(r.conns.newest(), b);
  r.conns.touch(a, 40);
  EXPECT_EQ(r.conns.oldest(), b);
  EXPECT_EQ(r.conns.newest(), a);
  EXPECT_EQ(r.conns.newer(b), a);
  EXPECT_EQ(r.conns.older(a), b);
  EXPECT_EQ(r.conns[a].last_seen_ns, 40u);
  EXPECT_EQ(r.conns.index_of(r.conns[b]), b);
}

TEST(ConnTable, IndexAgainstAMapWithCollidingHashes) {
  PartsRig r(small_settings(256));
  std::mt19937 rng(7);
  // Few distinct home buckets: long runs, many backward shifts on erase.
  auto hash_of = [](uint16_t n) { return (uint64_t{n} << 32) | (n % 5); };
  uint64_t now = 1;
  for (int step = 0; step < 20000; ++step) {
    const uint16_t n = static_cast<uint16_t>(rng() % 600);
    const uint32_t ci = r.conns.lookup_or_create(key(n), hash_of(n), ConnKind::datagram, now, true);
    ASSERT_NE(ci, kNil);  // a full table evicts the oldest (nothing holds frames)
    r.conns.touch(ci, now++);
    if (step % 37 == 0) r.conns.expire_idle(now, 150, 0);  // erases up to 64 of the oldest
    if (step % 11 != 0) continue;
    // The index finds exactly the records on the LRU list.
    std::map<uint16_t, uint32_t> listed;
    for (uint32_t x = r.conns.oldest(); x != kNil; x = r.conns.newer(x)) {
      listed[r.conns[x].key.port_lo] = x;
    }
    ASSERT_EQ(listed.size(), r.c.conns_active);
    for (uint16_t m = 0; m < 600; ++m) {
      auto it = listed.find(m);
      ASSERT_EQ(r.conns.lookup_or_create(key(m), hash_of(m), ConnKind::datagram, now, false),
                it == listed.end() ? kNil : it->second)
          << "step " << step << " key " << m;
    }
  }
  EXPECT_GT(r.c.conns_expired, 1000u);
}

TEST(ConnTable, FullTableEvictsTheOldestIdleOnly) {
  PartsRig r(small_settings(4));
  uint32_t ci[4];
  for (uint16_t i = 0; i < 4; ++i) {
    ci[i] = r.conns.lookup_or_create(key(i), ConnKind::datagram, i, true);
    ASSERT_NE(ci[i], kNil);
  }
  // The oldest holds a frame; the next is TCP with an ISN offset: both stay.
  uint8_t bytes[8];
  const uint32_t h = r.held.alloc(Side::pvm, 1, bytes, 8, 0);
  r.held.push(r.conns[ci[0]].pvm, h);
  r.conns[ci[1]].kind = ConnKind::tcp;
  r.conns[ci[1]].seq_offset = 12345;
  const uint32_t n = r.conns.lookup_or_create(key(10), ConnKind::datagram, 10, true);
  ASSERT_NE(n, kNil);
  EXPECT_EQ(n, ci[2]);  // the slot of the oldest idle one
  EXPECT_EQ(r.conns.lookup_or_create(key(2), ConnKind::datagram, 10, false), kNil);
  EXPECT_NE(r.conns.lookup_or_create(key(0), ConnKind::datagram, 10, false), kNil);
  EXPECT_NE(r.conns.lookup_or_create(key(1), ConnKind::datagram, 10, false), kNil);
  EXPECT_EQ(r.c.conns_expired, 1u);
  EXPECT_EQ(r.c.conns_table_full, 0u);
}

TEST(ConnTable, NothingToEvictIsTableFull) {
  PartsRig r(small_settings(2));
  uint8_t bytes[8];
  for (uint16_t i = 0; i < 2; ++i) {
    const uint32_t ci = r.conns.lookup_or_create(key(i), ConnKind::datagram, i, true);
    r.held.push(r.conns[ci].svm, r.held.alloc(Side::svm, i, bytes, 8, 0));
  }
  const FlowKey k = key(5);
  EXPECT_EQ(r.conns.lookup_or_create(k, ConnKind::datagram, 5, true), kNil);
  EXPECT_EQ(r.c.conns_table_full, 1u);
  auto req = r.cp.take();
  ASSERT_TRUE(req);
  EXPECT_EQ(req->reason, CheckpointReason::table_full);
  EXPECT_TRUE(req->flow == k);
}

TEST(ConnTable, IdleExpiryAndLingerSpareWhatHoldsFrames) {
  PartsRig r;
  int hook_calls = 0;
  r.conns.set_on_expire([](void* n, Conn&) { ++*static_cast<int*>(n); }, &hook_calls);
  const uint64_t idle = 1000, linger = 100;
  const uint32_t a = r.conns.lookup_or_create(key(1), ConnKind::datagram, 0, true);
  const uint32_t b = r.conns.lookup_or_create(key(2), ConnKind::datagram, 0, true);
  const uint32_t t = r.conns.lookup_or_create(key(3), ConnKind::tcp, 0, true);
  uint8_t bytes[8];
  r.held.push(r.conns[b].pvm, r.held.alloc(Side::pvm, 1, bytes, 8, 0));
  r.conns.touch(t, 900);
  r.conns.mark_closed(t, 900);
  EXPECT_EQ(r.conns[t].state, TcpState::closed);
  r.conns.expire_idle(999, idle, linger);
  EXPECT_EQ(r.c.conns_expired, 0u);
  r.conns.expire_idle(1000, idle, linger);  // a is idle; b holds a frame; t lingers
  EXPECT_EQ(r.c.conns_expired, 2u);         // a, and t past its linger (900 + 100)
  EXPECT_EQ(hook_calls, 2);
  EXPECT_EQ(r.conns.lookup_or_create(key(1), ConnKind::datagram, 0, false), kNil);
  EXPECT_EQ(r.conns.lookup_or_create(key(3), ConnKind::tcp, 0, false), kNil);
  EXPECT_EQ(r.conns.lookup_or_create(key(2), ConnKind::datagram, 0, false), b);
  EXPECT_EQ(r.c.conns_active, 1u);
  (void)a;
}

}  // namespace
}  // namespace lockstep::test
