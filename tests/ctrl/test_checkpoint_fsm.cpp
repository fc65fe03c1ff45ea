// The checkpoint state machine: coalescing, stale requests, periodic checkpoints, the
// timeout policies, link loss and resend. Time is an argument.
#include <gtest/gtest.h>

#include "ctrl/checkpoint_fsm.h"

using namespace lockstep;
using namespace lockstep::ctrl;

namespace {

constexpr uint64_t kMs = 1'000'000;

CheckpointRequest req(uint64_t epoch, CheckpointReason r = CheckpointReason::payload_mismatch) {
  CheckpointRequest q;
  q.epoch = epoch;
  q.reason = r;
  return q;
}

CheckpointPolicy policy(TimeoutPolicy p, uint64_t max_epoch_ms = 0) {
  CheckpointPolicy c;
  c.max_epoch_ns = max_epoch_ms * kMs;
  c.done_timeout_ns = 100 * kMs;
  c.on_timeout = p;
  c.max_retries = 2;
  c.failover_survivor = Survivor::secondary;
  return c;
}

using Out = std::vector<CheckpointFsm::Output>;

}  // namespace

TEST(CheckpointFsm, OneOutstandingPerEpoch) {
  CheckpointFsm f(policy(TimeoutPolicy::alarm), 0);
  Out out;
  f.link_up(0, out);
  EXPECT_TRUE(out.empty());
  f.request(req(0), 1 * kMs, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, CheckpointFsm::OutKind::send_request);
  EXPECT_EQ(out[0].request.epoch, 0u);
  EXPECT_EQ(out[0].attempt, 1u);
  out.clear();
  for (int i = 0; i < 10; ++i) f.request(req(0, CheckpointReason::deadline), 2 * kMs, out);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(f.counters().requests_coalesced, 10u);
  EXPECT_EQ(f.state(), CheckpointFsm::State::outstanding);
  f.begin(0, 3 * kMs);
  EXPECT_EQ(f.state(), CheckpointFsm::State::in_progress);
  f.done(0, 5 * kMs, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, CheckpointFsm::OutKind::checkpoint_done);
  EXPECT_EQ(out[0].request.epoch, 0u);
  EXPECT_EQ(f.epoch(), 1u);
  EXPECT_EQ(f.state(), CheckpointFsm::State::idle);
  out.clear();
  // A late trigger of the finished epoch is stale; the next epoch is asked again.
  f.request(req(0), 6 * kMs, out);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(f.counters().requests_stale, 1u);
  f.request(req(1), 7 * kMs, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].request.epoch, 1u);
  EXPECT_EQ(f.counters().requests_sent, 2u);
  EXPECT_EQ(f.counters().done, 1u);
}

TEST(CheckpointFsm, StaleAndUnsolicitedDone) {
  CheckpointFsm f(policy(TimeoutPolicy::alarm), 0, 5);
  Out out;
  f.link_up(0, out);
  f.done(3, 1 * kMs, out);  // older epoch: ignored
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(f.counters().done_stale, 1u);
  f.done(std::nullopt, 2 * kMs, out);  // QEMU dialect, nothing asked: the current epoch
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].request.epoch, 5u);
  EXPECT_EQ(f.counters().done_unsolicited, 1u);
  EXPECT_EQ(f.epoch(), 6u);
}

TEST(CheckpointFsm, QemuDoneAppliesToTheOutstandingEpoch) {
  CheckpointFsm f(policy(TimeoutPolicy::alarm), 0);
  Out out;
  f.link_up(0, out);
  f.request(req(4), 1 * kMs, out);
  out.clear();
  f.done(std::nullopt, 2 * kMs, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].request.epoch, 4u);
  EXPECT_EQ(f.epoch(), 5u);
}

TEST(CheckpointFsm, PeriodicCheckpointWithoutDivergence) {
  CheckpointFsm f(policy(TimeoutPolicy::alarm, 1000), 0);
  Out out;
  f.link_up(0, out);
  EXPECT_EQ(f.next_deadline(), 1000 * kMs);
  f.tick(999 * kMs, out);
  EXPECT_TRUE(out.empty());
  f.tick(1000 * kMs, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].request.reason, CheckpointReason::periodic);
  EXPECT_EQ(f.counters().periodic, 1u);
  out.clear();
  f.done(0, 1010 * kMs, out);
  // The next period counts from the end of the last checkpoint.
  EXPECT_EQ(f.next_deadline(), 2010 * kMs);
}

TEST(CheckpointFsm, TimeoutRetryThenAlarm) {
  CheckpointFsm f(policy(TimeoutPolicy::retry), 0);
  Out out;
  f.link_up(0, out);
  f.request(req(0), 0, out);
  out.clear();
  f.tick(99 * kMs, out);
  EXPECT_TRUE(out.empty());
  f.tick(100 * kMs, out);  // retry 1
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, CheckpointFsm::OutKind::send_request);
  EXPECT_EQ(out[0].attempt, 2u);
  out.clear();
  f.tick(200 * kMs, out);  // retry 2
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].attempt, 3u);
  out.clear();
  f.tick(300 * kMs, out);  // retries exhausted: alarm, once
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, CheckpointFsm::OutKind::timeout_alarm);
  out.clear();
  f.tick(10000 * kMs, out);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(f.counters().timeouts, 3u);
  EXPECT_EQ(f.counters().retries, 2u);
  EXPECT_EQ(f.counters().alarms, 1u);
  // A late done still completes the epoch.
  f.done(0, 10001 * kMs, out);
  EXPECT_EQ(f.epoch(), 1u);
}

TEST(CheckpointFsm, TimeoutFailover) {
  CheckpointFsm f(policy(TimeoutPolicy::failover), 0);
  Out out;
  f.link_up(0, out);
  f.request(req(0), 0, out);
  out.clear();
  f.tick(150 * kMs, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, CheckpointFsm::OutKind::timeout_failover);
  EXPECT_EQ(f.counters().timeout_failovers, 1u);
}

TEST(CheckpointFsm, LinkDownHoldsAndResends) {
  CheckpointFsm f(policy(TimeoutPolicy::alarm), 0);
  Out out;
  f.request(req(0), 0, out);  // link not up yet: pending, nothing sent
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(f.state(), CheckpointFsm::State::pending);
  f.link_up(10 * kMs, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].attempt, 1u);
  out.clear();
  f.link_down();
  f.link_up(20 * kMs, out);  // reconnect: the request may be lost, send it again
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].attempt, 2u);
  EXPECT_EQ(f.counters().requests_resent, 1u);
}

TEST(CheckpointFsm, PendingWhileDownStillTimesOut) {
  CheckpointFsm f(policy(TimeoutPolicy::retry), 0);
  Out out;
  f.request(req(0), 0, out);
  f.tick(100 * kMs, out);  // cannot retry without a link: alarm
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, CheckpointFsm::OutKind::timeout_alarm);
}

TEST(CheckpointFsm, UnsolicitedBeginIsTimed) {
  CheckpointFsm f(policy(TimeoutPolicy::alarm), 0);
  Out out;
  f.link_up(0, out);
  f.begin(0, 0);
  EXPECT_EQ(f.state(), CheckpointFsm::State::in_progress);
  f.tick(100 * kMs, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, CheckpointFsm::OutKind::timeout_alarm);
  Json s = f.status_json(100 * kMs);
  EXPECT_EQ(s["state"], "in_progress");
  EXPECT_EQ(s["current"]["timed_out"], true);
}

TEST(CheckpointFsm, AdoptsTheDataplaneEpoch) {
  CheckpointFsm f(policy(TimeoutPolicy::alarm), 0);
  Out out;
  f.link_up(0, out);
  f.request(req(17), 0, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].request.epoch, 17u);
  EXPECT_EQ(f.epoch(), 17u);
}
