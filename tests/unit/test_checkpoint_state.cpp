// Checkpoint and epoch state: one request per epoch with the first reason and flow,
// later triggers counted; stale checkpoint-done refused; the epoch moves on complete();
// failover clears what waits; the hybrid ring fires at `threshold` checkpoints within
// the window and starts over.
#include <gtest/gtest.h>

#include "compare/checkpoint_state.h"

namespace lockstep {
namespace {

TEST(CheckpointState, OneRequestPerEpochFirstReasonKept) {
  Counters c;
  CheckpointState cp(c, 20);
  FlowKey k;
  k.port_lo = 80;
  EXPECT_TRUE(cp.request(CheckpointReason::payload_mismatch, &k, 1000));
  EXPECT_FALSE(cp.request(CheckpointReason::deadline, nullptr, 2000));
  EXPECT_TRUE(cp.outstanding());
  EXPECT_EQ(c.checkpoint_triggers, 2u);
  EXPECT_EQ(c.checkpoint_requests, 1u);
  ASSERT_NE(cp.pending(), nullptr);
  auto r = cp.take();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->epoch, 1u);
  EXPECT_EQ(r->reason, CheckpointReason::payload_mismatch);
  EXPECT_TRUE(r->has_flow);
  EXPECT_EQ(r->flow.port_lo, 80);
  EXPECT_EQ(r->t_ns, 1000u);
  EXPECT_FALSE(cp.take());
  // Taken but not done: still outstanding, nothing new is requested.
  EXPECT_FALSE(cp.request(CheckpointReason::manual, nullptr, 3000));
  EXPECT_FALSE(cp.take());
}

TEST(CheckpointState, DoneClosesTheEpochStaleOnesAreCounted) {
  Counters c;
  CheckpointState cp(c, 20);
  cp.request(CheckpointReason::manual, nullptr, 0);
  ASSERT_TRUE(cp.accept_done(1));
  cp.complete(1);
  EXPECT_EQ(cp.epoch(), 2u);
  EXPECT_FALSE(cp.outstanding());
  EXPECT_FALSE(cp.take());
  EXPECT_FALSE(cp.accept_done(1));
  EXPECT_EQ(c.checkpoint_done_stale, 1u);
  EXPECT_EQ(c.checkpoints_done, 1u);
  // A later epoch than the current one is accepted (the checkpointer's count leads).
  ASSERT_TRUE(cp.accept_done(7));
  cp.complete(7);
  EXPECT_EQ(cp.epoch(), 8u);
  EXPECT_TRUE(cp.request(CheckpointReason::deadline, nullptr, 0));
  EXPECT_EQ(cp.take()->epoch, 8u);
}

TEST(CheckpointState, FailoverClearsWhatWaits) {
  Counters c;
  CheckpointState cp(c, 20);
  cp.request(CheckpointReason::manual, nullptr, 0);
  cp.mode_after_checkpoint = Mode::colo;
  cp.clear_for_failover();
  EXPECT_FALSE(cp.outstanding());
  EXPECT_FALSE(cp.take());
  EXPECT_FALSE(cp.mode_after_checkpoint);
}

TEST(CheckpointState, HybridRingFiresAtThresholdWithinTheWindow) {
  Counters c;
  CheckpointState cp(c, 3);
  const uint64_t ms = 1'000'000;
  EXPECT_FALSE(cp.hybrid_note(1 * ms, 100 * ms));
  EXPECT_FALSE(cp.hybrid_note(2 * ms, 100 * ms));
  // The third within 100 ms of the first: fires, and the ring starts over.
  EXPECT_TRUE(cp.hybrid_note(50 * ms, 100 * ms));
  EXPECT_FALSE(cp.hybrid_note(51 * ms, 100 * ms));
  EXPECT_FALSE(cp.hybrid_note(52 * ms, 100 * ms));
  EXPECT_TRUE(cp.hybrid_note(53 * ms, 100 * ms));
  // Spread out: never.
  for (uint64_t t = 1000; t < 2000; t += 200) EXPECT_FALSE(cp.hybrid_note(t * ms, 100 * ms));
  cp.resize_hybrid(0);
  EXPECT_EQ(cp.hybrid_size(), 1u);
}

}  // namespace
}  // namespace lockstep
