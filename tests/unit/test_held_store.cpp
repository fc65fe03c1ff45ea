// The held-frame store and the outcomes: alloc/free and the held_* gauges, FIFO lists,
// the reserve past the soft limit (held_full requested once, frames still held), the
// pool running dry, deadlines (and free() cancelling them); every fate emitted once and
// counted once, fragments chained to a datagram leaving with it, a partial drain.
#include <gtest/gtest.h>

#include <vector>

#include "tests/unit/parts_rig.h"

namespace lockstep::test {
namespace {

uint8_t g_bytes[64];

TEST(HeldStore, AllocFreeKeepTheGauges) {
  PartsRig r;
  const uint32_t a = r.held.alloc(Side::pvm, 1, g_bytes, 10, 100);
  const uint32_t b = r.held.alloc(Side::svm, 2, g_bytes, 20, 200);
  const uint32_t i = r.held.alloc(Side::ingress, 3, g_bytes, 30, 300);
  ASSERT_NE(a, kNil);
  ASSERT_NE(b, kNil);
  ASSERT_NE(i, kNil);
  EXPECT_EQ(r.c.held_pvm, 1u);
  EXPECT_EQ(r.c.held_svm, 1u);
  EXPECT_EQ(r.c.held_ingress, 1u);
  EXPECT_EQ(r.held.used(), 3u);
  EXPECT_TRUE(r.held[a].live);
  EXPECT_EQ(r.held[b].handle, 2u);
  EXPECT_EQ(r.held[b].len, 20u);
  EXPECT_EQ(r.held[i].arrival_ns, 300u);
  r.held.free(b);
  EXPECT_FALSE(r.held[b].live);
  EXPECT_EQ(r.c.held_svm, 0u);
  EXPECT_EQ(r.held.used(), 2u);
  // A freed slot comes back first, reset.
  const uint32_t again = r.held.alloc(Side::pvm, 9, g_bytes, 5, 400);
  EXPECT_EQ(again, b);
  EXPECT_EQ(r.held[again].conn, kNil);
  EXPECT_EQ(r.held[again].side, Side::pvm);
}

TEST(HeldStore, ListsKeepArrivalOrder) {
  PartsRig r;
  HeldList l;
  std::vector<uint32_t> idx;
  for (uint64_t h = 0; h < 5; ++h) {
    idx.push_back(r.held.alloc(Side::pvm, h, g_bytes, 1, 0));
    r.held.push(l, idx.back());
  }
  EXPECT_EQ(l.count, 5u);
  // Unlink the middle one and the tail.
  r.held.remove(l, idx[2], idx[1]);
  r.held.remove(l, idx[4], idx[3]);
  EXPECT_EQ(l.tail, idx[3]);
  std::vector<uint64_t> order;
  for (uint32_t x = r.held.pop(l); x != kNil; x = r.held.pop(l)) order.push_back(r.held[x].handle);
  EXPECT_EQ(order, (std::vector<uint64_t>{0, 1, 3}));
  EXPECT_EQ(l.count, 0u);
  EXPECT_EQ(l.head, kNil);
  EXPECT_EQ(l.tail, kNil);
}

TEST(HeldStore, ReservePastTheSoftLimitRequestsOneCheckpoint) {
  PartsRig r(small_settings(64, 16));
  uint32_t held = 0;
  while (r.held.room_for_one()) {
    ASSERT_NE(r.held.alloc(Side::pvm, held, g_bytes, 1, 0), kNil);
    ++held;
  }
  EXPECT_EQ(r.c.checkpoint_requests, 0u);
  // The frame that reaches the soft limit asks for a checkpoint; the reserve holds on.
  ASSERT_NE(r.held.alloc(Side::pvm, 100, g_bytes, 1, 0), kNil);
  ASSERT_NE(r.held.alloc(Side::pvm, 101, g_bytes, 1, 0), kNil);
  EXPECT_EQ(r.c.checkpoint_requests, 1u);
  EXPECT_EQ(r.c.checkpoint_reason[static_cast<unsigned>(CheckpointReason::held_full)], 1u);
  EXPECT_GE(r.c.checkpoint_triggers, 2u);
  // Until the pool (soft limit + an eighth + 64) is dry.
  uint32_t more = 0;
  while (r.held.alloc(Side::pvm, 200 + more, g_bytes, 1, 0) != kNil) ++more;
  EXPECT_EQ(r.held.used(), r.held.capacity());
  EXPECT_EQ(r.held.capacity(), 16u + 2u + 64u);
}

TEST(HeldStore, DeadlinesFireAndFreeCancelsThem) {
  PartsRig r;
  const uint32_t a = r.held.alloc(Side::pvm, 1, g_bytes, 1, 0);
  const uint32_t b = r.held.alloc(Side::pvm, 2, g_bytes, 1, 0);
  r.held.arm(a, 1'000'000);
  r.held.arm(b, 2'000'000);
  EXPECT_EQ(r.held.earliest(), 1'000'000u);
  r.held.free(a);
  std::vector<uint32_t> fired;
  r.held.expire(5'000'000, [&](uint32_t id) { fired.push_back(id); });
  EXPECT_EQ(fired, std::vector<uint32_t>{b});
  EXPECT_FALSE(r.held.due(10'000'000));
}

TEST(Outcomes, EveryFateOnceAndCounted) {
  PartsRig r;
  r.out.set_now(5000);
  const uint32_t p = r.held.alloc(Side::pvm, 1, g_bytes, 1, 1000);
  const uint32_t s = r.held.alloc(Side::svm, 2, g_bytes, 1, 1000);
  const uint32_t d = r.held.alloc(Side::pvm, 3, g_bytes, 1, 1000);
  const uint32_t i = r.held.alloc(Side::ingress, 4, g_bytes, 1, 1000);
  r.out.release_frame(p, ReleaseReason::matched);
  r.out.free_svm_frame(s);
  r.out.drop_frame(d, DropReason::policy_drop);
  r.out.forward_ingress(i, false);
  r.out.release_direct(Side::pvm, 5, ReleaseReason::passthrough);
  r.out.drop_direct(Side::svm, 6, DropReason::malformed);
  const auto acts = r.drain();
  ASSERT_EQ(acts.size(), 6u);
  EXPECT_EQ(acts[0].handle, 1u);
  EXPECT_EQ(acts[0].kind, ActionKind::release);
  EXPECT_EQ(acts[1].kind, ActionKind::free);
  EXPECT_EQ(acts[2].kind, ActionKind::drop);
  EXPECT_EQ(acts[3].kind, ActionKind::forward_svm);
  EXPECT_EQ(acts[4].handle, 5u);
  EXPECT_EQ(acts[5].side, Side::svm);
  EXPECT_EQ(r.c.released[static_cast<unsigned>(ReleaseReason::matched)], 1u);
  EXPECT_EQ(r.c.released[static_cast<unsigned>(ReleaseReason::passthrough)], 1u);
  EXPECT_EQ(r.c.pvm_dropped[static_cast<unsigned>(DropReason::policy_drop)], 1u);
  EXPECT_EQ(r.c.svm_dropped[static_cast<unsigned>(DropReason::malformed)], 1u);
  EXPECT_EQ(r.c.svm_freed, 1u);
  EXPECT_EQ(r.c.svm_forwarded, 1u);
  EXPECT_EQ(r.c.ingress_untranslated, 1u);
  // The PVM frame was held 4 us, as matched: both hold and SVM-lag totals.
  EXPECT_EQ(r.c.held_release_ns, 4000u);
  EXPECT_EQ(r.c.svm_lag_ns, 4000u);
  EXPECT_EQ(r.held.used(), 0u);
  EXPECT_EQ(r.c.held_pvm + r.c.held_svm + r.c.held_ingress, 0u);
}

TEST(Outcomes, ChainedFragmentsLeaveTogether) {
  PartsRig r;
  const uint32_t a = r.held.alloc(Side::pvm, 1, g_bytes, 1, 0);
  const uint32_t b = r.held.alloc(Side::pvm, 2, g_bytes, 1, 0);
  const uint32_t c = r.held.alloc(Side::pvm, 3, g_bytes, 1, 0);
  r.held[a].frag_next = b;
  r.held[b].frag_next = c;
  r.out.release_frame(a, ReleaseReason::checkpoint);
  const auto acts = r.drain();
  ASSERT_EQ(acts.size(), 3u);
  EXPECT_EQ(acts[0].handle, 1u);
  EXPECT_EQ(acts[1].handle, 2u);
  EXPECT_EQ(acts[2].handle, 3u);
  EXPECT_EQ(r.c.released[static_cast<unsigned>(ReleaseReason::checkpoint)], 3u);
  EXPECT_EQ(r.held.used(), 0u);
}

TEST(Outcomes, PartialDrainKeepsTheRestInOrder) {
  PartsRig r;
  for (uint64_t h = 0; h < 10; ++h) r.out.release_direct(Side::pvm, h, ReleaseReason::passthrough);
  std::vector<Action> two(2);
  EXPECT_EQ(r.out.drain(two), 2u);
  EXPECT_EQ(two[1].handle, 1u);
  EXPECT_EQ(r.out.pending(), 8u);
  const auto rest = r.drain();
  ASSERT_EQ(rest.size(), 8u);
  EXPECT_EQ(rest.front().handle, 2u);
  EXPECT_EQ(r.out.pending(), 0u);
}

}  // namespace
}  // namespace lockstep::test
