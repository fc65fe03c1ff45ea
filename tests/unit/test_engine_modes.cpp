// Modes (colo, buffer, passthrough), the hybrid switch, failover to either VM, live
// settings, and checkpoint coalescing (docs/design.md §5.5, §5.6, §5.8, §5.9).
//
//   colo ──set_mode/hybrid: checkpoints faster than threshold──► buffer
//   buffer ──hybrid_quiet_ms without divergence (or set_mode colo)──► colo
//   any ──failover(primary)──► PVM output passes, SVM not mirrored
//   any ──failover(secondary)──► SVM output released in the PVM's sequence space,
//                                held PVM output dropped (primary_lost)
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "tests/support/engine_harness.h"

namespace lockstep::test {
namespace {

constexpr uint64_t kMs = 1'000'000;

Bytes bytes_of(const std::string& s) { return Bytes(s.begin(), s.end()); }

Bytes udp(uint16_t sport, const std::string& payload) {
  return build_frame(
      udp_spec(ip4(198, 51, 100, 20), ip4(192, 0, 2, 10), sport, 5000, bytes_of(payload)));
}

void finish(EngineHarness& h) {
  EXPECT_EQ(h.conservation(), "");
  EXPECT_EQ(h.check_contract(false), "");
  h.flush_all();
  EXPECT_EQ(h.conservation(), "") << "after flush_all";
  EXPECT_EQ(h.check_contract(true), "") << "after flush_all";
}

FlowKey key_of(const Bytes& frame) {
  ParsedFrame f;
  EXPECT_EQ(parse_frame(frame.data(), static_cast<uint32_t>(frame.size()), f), ParseStatus::ok);
  return flow_key_of(f);
}

// ---------------------------------------------------------------------------------------
// passthrough and buffer

TEST(EngineModes, PassthroughReleasesAtOnce) {
  EngineHarness h(EngineHarness::settings_with({{"mode", "passthrough"}}));
  EXPECT_EQ(h.engine().mode(), Mode::passthrough);
  Conversation c({});
  Opened o = open_passive(h, c);
  EXPECT_EQ(describe(h, o.pvm_syn), released_as(ReleaseReason::passthrough));
  uint64_t p = h.push(Side::pvm, c.vm_stream(Vm::pvm, 0, 100, 1));
  uint64_t s = h.push(Side::svm, c.vm_stream(Vm::svm, 0, 100, 2));  // differs: not compared
  EXPECT_EQ(describe(h, p), released_as(ReleaseReason::passthrough));
  EXPECT_EQ(describe(h, s), dropped_as(DropReason::svm_unmatched_passthrough));
  uint64_t u = h.push(Side::pvm, udp(7000, "dgram"));
  EXPECT_EQ(describe(h, u), released_as(ReleaseReason::passthrough));
  h.advance_by(10 * 100 * kMs);
  EXPECT_EQ(h.counters().checkpoint_requests, 0u);
  finish(h);
}

TEST(EngineModes, BufferHoldsUntilCheckpointThenReleasesInOrder) {
  EngineHarness h(EngineHarness::settings_with({{"mode", "buffer"}, {"buffer_epoch_us", "20000"}}));
  h.set_auto_checkpoint(false);
  EXPECT_EQ(h.engine().mode(), Mode::buffer);
  Conversation c({});
  Opened o = open_passive(h, c);
  uint64_t t0 = h.now();
  std::vector<uint64_t> held{o.pvm_syn};
  held.push_back(h.push(Side::pvm, c.vm_stream(Vm::pvm, 0, 100)));
  uint64_t s = h.push(Side::svm, c.vm_stream(Vm::svm, 0, 100));  // identical: still held
  held.push_back(h.push(Side::pvm, udp(7000, "a")));
  held.push_back(h.push(Side::pvm, c.vm_stream(Vm::pvm, 100, 100)));
  held.push_back(h.push(Side::pvm, udp(7000, "b")));
  for (uint64_t x : held) EXPECT_EQ(describe(h, x), "none") << "buffer mode released " << x;
  EXPECT_TRUE(h.has_action(s)) << "SVM output is not needed in buffer mode";
  h.advance_to(t0 + 19 * kMs);
  EXPECT_EQ(h.checkpoints().size(), 0u);
  h.advance_to(t0 + 21 * kMs);
  ASSERT_EQ(h.checkpoints().size(), 1u) << "no checkpoint at buffer_epoch_us";
  EXPECT_EQ(h.checkpoints()[0].req.reason, CheckpointReason::buffer_epoch);
  for (uint64_t x : held) EXPECT_EQ(describe(h, x), "none");
  h.complete_checkpoint();
  EXPECT_EQ(h.released_handles(Side::pvm), held) << "not released in arrival order";
  for (uint64_t x : held) EXPECT_EQ(describe(h, x), released_as(ReleaseReason::checkpoint));
  // Next epoch: the same again.
  uint64_t n = h.push(Side::pvm, udp(7000, "c"));
  EXPECT_EQ(describe(h, n), "none");
  h.advance_by(21 * kMs);
  ASSERT_EQ(h.checkpoints().size(), 2u);
  h.complete_checkpoint();
  EXPECT_EQ(describe(h, n), released_as(ReleaseReason::checkpoint));
  finish(h);
}

TEST(EngineModes, LiveSwitchColoToPassthroughReleasesHeld) {
  EngineHarness h;
  Conversation c({});
  open_passive(h, c);
  uint64_t p = h.push(Side::pvm, c.vm_stream(Vm::pvm, 0, 100));
  uint64_t u = h.push(Side::pvm, udp(7000, "a"));
  EXPECT_EQ(describe(h, p), "none");
  h.set_mode(Mode::passthrough);
  EXPECT_EQ(h.engine().mode(), Mode::passthrough);
  EXPECT_EQ(describe(h, p), released_as(ReleaseReason::passthrough));
  EXPECT_EQ(describe(h, u), released_as(ReleaseReason::passthrough));
  EXPECT_GE(h.counters().mode_switches, 1u);
  finish(h);
}

TEST(EngineModes, LiveSwitchColoToBufferAndBack) {
  EngineHarness h;
  h.set_auto_checkpoint(false);
  Conversation c({});
  open_passive(h, c);
  uint64_t p = h.push(Side::pvm, c.vm_stream(Vm::pvm, 0, 100));
  h.set_mode(Mode::buffer);
  EXPECT_EQ(h.engine().mode(), Mode::buffer);
  uint64_t s = h.push(Side::svm, c.vm_stream(Vm::svm, 0, 100));
  EXPECT_EQ(describe(h, p), "none") << "buffer mode releases only at checkpoints";
  EXPECT_TRUE(h.has_action(s));
  uint64_t p2 = h.push(Side::pvm, c.vm_stream(Vm::pvm, 100, 100));
  h.checkpoint_now();
  EXPECT_EQ(describe(h, p), released_as(ReleaseReason::checkpoint));
  EXPECT_EQ(describe(h, p2), released_as(ReleaseReason::checkpoint));
  // Back to colo: compare resumes (at the latest after one checkpoint).
  h.set_mode(Mode::colo);
  h.complete_checkpoint();
  EXPECT_EQ(h.engine().mode(), Mode::colo);
  c.rebase_svm();
  uint64_t p3 = h.push(Side::pvm, c.vm_stream(Vm::pvm, 200, 100));
  EXPECT_EQ(describe(h, p3), "none");
  uint64_t s3 = h.push(Side::svm, c.vm_stream(Vm::svm, 200, 100));
  EXPECT_EQ(describe(h, p3), released_as(ReleaseReason::matched))
      << "compare did not resume at the PVM's stream position";
  EXPECT_EQ(describe(h, s3), "free");
  size_t cps = h.checkpoints().size();
  h.advance_by(300 * kMs);
  EXPECT_EQ(h.checkpoints().size(), cps) << "spurious checkpoint after returning to colo";
  finish(h);
}

TEST(EngineModes, PassthroughToColoResumesCompare) {
  EngineHarness h(EngineHarness::settings_with({{"mode", "passthrough"}}));
  h.set_auto_checkpoint(false);
  Conversation c({});
  open_passive(h, c);
  uint64_t p = h.push(Side::pvm, c.vm_stream(Vm::pvm, 0, 1000));
  h.push(Side::svm, c.vm_stream(Vm::svm, 0, 1000));
  EXPECT_EQ(describe(h, p), released_as(ReleaseReason::passthrough));
  h.set_mode(Mode::colo);
  h.complete_checkpoint();  // if the engine resumes compare through a checkpoint
  EXPECT_EQ(h.engine().mode(), Mode::colo);
  size_t cps = h.checkpoints().size();
  if (cps > 0) c.rebase_svm();
  uint64_t p2 = h.push(Side::pvm, c.vm_stream(Vm::pvm, 1000, 500));
  EXPECT_EQ(describe(h, p2), "none");
  uint64_t s2 = h.push(Side::svm, c.vm_stream(Vm::svm, 1000, 500));
  EXPECT_EQ(describe(h, p2), released_as(ReleaseReason::matched))
      << "compare did not resume at the PVM's stream position";
  EXPECT_EQ(describe(h, s2), "free");
  h.advance_by(300 * kMs);
  EXPECT_EQ(h.checkpoints().size(), cps) << "spurious checkpoint after returning to colo";
  finish(h);
}

// ---------------------------------------------------------------------------------------
// hybrid

TEST(EngineModes, HybridSwitchesToBufferAndBack) {
  EngineHarness h(EngineHarness::settings_with({{"hybrid", "true"},
                                                {"hybrid_threshold", "3"},
                                                {"hybrid_window_ms", "1000"},
                                                {"hybrid_quiet_ms", "300"},
                                                {"datagram_reorder_slack", "0"}}));
  h.set_checkpoint_latency(1 * kMs);
  // Three divergences within the window, each completing a checkpoint.
  for (int i = 0; i < 3; ++i) {
    h.push(Side::pvm, udp(static_cast<uint16_t>(8000 + i), "pvm says " + std::to_string(i)));
    h.push(Side::svm, udp(static_cast<uint16_t>(8000 + i), "svm says " + std::to_string(i)));
    h.advance_by(5 * kMs);
    ASSERT_EQ(h.counters().checkpoints_done, static_cast<uint64_t>(i + 1));
  }
  EXPECT_EQ(h.engine().mode(), Mode::buffer) << "3 checkpoints in 1 s did not switch to buffer";
  EXPECT_GE(h.counters().mode_switches, 1u);
  // In buffer mode identical output is still held until a checkpoint.
  uint64_t p = h.push(Side::pvm, udp(9000, "same"));
  h.push(Side::svm, udp(9000, "same"));
  EXPECT_EQ(describe(h, p), "none");
  h.advance_by(25 * kMs);  // buffer_epoch_us (20 ms) + checkpoint latency
  EXPECT_EQ(describe(h, p), released_as(ReleaseReason::checkpoint));
  // Quiet period: back to colo, and compare releases matching output again.
  h.advance_by(400 * kMs);
  h.run_until_idle();
  EXPECT_EQ(h.engine().mode(), Mode::colo) << "still in buffer after hybrid_quiet_ms";
  uint64_t q = h.push(Side::pvm, udp(9001, "again"));
  EXPECT_EQ(describe(h, q), "none");
  h.push(Side::svm, udp(9001, "again"));
  EXPECT_EQ(describe(h, q), released_as(ReleaseReason::matched));
  finish(h);
}

TEST(EngineModes, HybridOffNeverSwitches) {
  EngineHarness h(EngineHarness::settings_with({{"datagram_reorder_slack", "0"}}));
  for (int i = 0; i < 30; ++i) {
    h.push(Side::pvm, udp(static_cast<uint16_t>(8000 + i), "p" + std::to_string(i)));
    h.push(Side::svm, udp(static_cast<uint16_t>(8000 + i), "s" + std::to_string(i)));
    h.advance_by(2 * kMs);
  }
  EXPECT_EQ(h.counters().checkpoints_done, 30u);
  EXPECT_EQ(h.engine().mode(), Mode::colo);
  finish(h);
}

// ---------------------------------------------------------------------------------------
// failover

TEST(EngineFailover, PrimarySurvivesFlushesInOrderAndStopsMirroring) {
  EngineHarness h;
  h.set_auto_checkpoint(false);
  Conversation c({});
  Conversation::Params p2;
  p2.client_port = 40001;
  Conversation d(p2);
  open_passive(h, c);
  open_passive(h, d);
  std::vector<uint64_t> held;
  held.push_back(h.push(Side::pvm, c.vm_stream(Vm::pvm, 0, 100)));
  held.push_back(h.push(Side::pvm, d.vm_stream(Vm::pvm, 0, 100)));
  held.push_back(h.push(Side::pvm, c.vm_stream(Vm::pvm, 100, 100)));
  held.push_back(h.push(Side::pvm, udp(7000, "dgram")));
  held.push_back(h.push(Side::pvm, d.vm_stream(Vm::pvm, 100, 100)));
  uint64_t svm_held = h.push(Side::svm, c.vm_stream(Vm::svm, 300, 10));  // ahead: held
  size_t before = h.released_handles(Side::pvm).size();
  h.failover(Survivor::primary);
  EXPECT_EQ(h.counters().failovers, 1u);
  std::vector<uint64_t> rel = h.released_handles(Side::pvm);
  ASSERT_EQ(rel.size(), before + held.size());
  std::vector<uint64_t> flushed(rel.begin() + static_cast<std::ptrdiff_t>(before), rel.end());
  // Per flow in arrival order.
  auto order_of = [&](std::vector<uint64_t> flow) {
    std::vector<uint64_t> got;
    for (uint64_t x : flushed)
      if (std::find(flow.begin(), flow.end(), x) != flow.end()) got.push_back(x);
    return got;
  };
  EXPECT_EQ(order_of({held[0], held[2]}), (std::vector<uint64_t>{held[0], held[2]}));
  EXPECT_EQ(order_of({held[1], held[4]}), (std::vector<uint64_t>{held[1], held[4]}));
  for (uint64_t x : held) EXPECT_EQ(describe(h, x), released_as(ReleaseReason::failover));
  EXPECT_TRUE(h.has_action(svm_held));
  // After: PVM output passes at once, the SVM is no longer fed.
  uint64_t p = h.push(Side::pvm, c.vm_stream(Vm::pvm, 200, 100));
  EXPECT_EQ(describe(h, p), released_as(ReleaseReason::failover));
  uint64_t i = h.push(Side::ingress, c.client_ack(0, 300));
  EXPECT_TRUE(h.last_push_result()) << "PVM copy must still be sent";
  EXPECT_EQ(describe(h, i), dropped_as(DropReason::svm_not_mirrored));
  uint64_t s = h.push(Side::svm, c.vm_stream(Vm::svm, 200, 100));
  EXPECT_EQ(h.action_of(s) ? h.action_of(s)->kind : ActionKind::release, ActionKind::drop);
  h.advance_by(1000 * kMs);
  EXPECT_EQ(h.counters().checkpoint_requests, 0u);
  EXPECT_FALSE(h.engine().checkpoint_outstanding());
  finish(h);
}

TEST(EngineFailover, PrimarySurvivesDropsHeldClientCopies) {
  EngineHarness h;
  Conversation c({});
  h.push(Side::ingress, c.client_syn());
  h.push(Side::pvm, c.vm_synack(Vm::pvm));
  uint64_t a = h.push(Side::ingress, c.client_handshake_ack());  // held for the SVM's ISN
  EXPECT_EQ(describe(h, a), "none");
  h.failover(Survivor::primary);
  EXPECT_EQ(describe(h, a), dropped_as(DropReason::svm_not_mirrored));
  finish(h);
}

TEST(EngineFailover, SecondarySurvivesOutputTranslatedIntoPvmSpace) {
  EngineHarness h;
  h.set_auto_checkpoint(false);
  Conversation::Params cp;
  cp.pvm_isn = 0xfffffff0u;  // the translation wraps
  cp.svm_isn = 0x00012345u;
  cp.timestamps = true;
  Conversation c(cp);
  open_passive(h, c);
  h.push(Side::pvm, c.vm_stream(Vm::pvm, 0, 100));
  h.push(Side::svm, c.vm_stream(Vm::svm, 0, 100));
  uint64_t p_held = h.push(Side::pvm, c.vm_stream(Vm::pvm, 100, 100));
  uint64_t s_held = h.push(Side::svm, c.vm_stream(Vm::svm, 200, 50));  // SVM ahead: held
  EXPECT_EQ(describe(h, p_held), "none");
  EXPECT_EQ(describe(h, s_held), "none");
  h.failover(Survivor::secondary);
  EXPECT_EQ(describe(h, p_held), dropped_as(DropReason::primary_lost));
  ASSERT_EQ(describe(h, s_held), released_as(ReleaseReason::svm_survivor));
  Decoded d = decode(h.action_of(s_held)->bytes);
  EXPECT_EQ(d.seq, c.vm_seq(Vm::pvm, 200)) << "SVM seq not translated into the PVM's space";
  EXPECT_TRUE(verify_l4_checksum(h.action_of(s_held)->bytes));
  // New SVM output goes out translated; PVM output is gone.
  uint64_t s = h.push(Side::svm, c.vm_stream(Vm::svm, 250, 300));
  ASSERT_EQ(describe(h, s), released_as(ReleaseReason::svm_survivor));
  Decoded e = decode(h.action_of(s)->bytes);
  EXPECT_EQ(e.seq, c.vm_seq(Vm::pvm, 250));
  EXPECT_EQ(e.payload_len, 300u);
  EXPECT_TRUE(verify_l4_checksum(h.action_of(s)->bytes));
  uint64_t sf = h.push(Side::svm, c.vm_fin(Vm::svm, 550));
  ASSERT_EQ(describe(h, sf), released_as(ReleaseReason::svm_survivor));
  EXPECT_EQ(decode(h.action_of(sf)->bytes).seq, c.vm_seq(Vm::pvm, 550));
  EXPECT_TRUE(verify_l4_checksum(h.action_of(sf)->bytes));
  uint64_t p = h.push(Side::pvm, c.vm_stream(Vm::pvm, 200, 100));
  EXPECT_EQ(describe(h, p), dropped_as(DropReason::primary_lost));
  // Client segments still reach the SVM, acks translated; the PVM copy is not sent.
  uint64_t i = h.push(Side::ingress, c.client_ack(0, 550));
  EXPECT_FALSE(h.last_push_result()) << "PVM copy sent after the PVM was lost";
  ASSERT_EQ(describe(h, i), "forward_svm");
  EXPECT_EQ(decode(h.action_of(i)->bytes).ack, c.vm_seq(Vm::svm, 550));
  EXPECT_TRUE(verify_l4_checksum(h.action_of(i)->bytes));
  // UDP from the SVM is released as is.
  Bytes u = udp(7000, "from svm");
  uint64_t su = h.push(Side::svm, u);
  EXPECT_EQ(describe(h, su), released_as(ReleaseReason::svm_survivor));
  h.advance_by(1000 * kMs);
  EXPECT_EQ(h.counters().checkpoint_requests, 0u);
  finish(h);
}

// ---------------------------------------------------------------------------------------
// live settings

TEST(EngineSettings, ApplyCompareTimeoutLive) {
  EngineHarness h;
  h.set_auto_checkpoint(false);
  Settings s;
  std::string err;
  ASSERT_TRUE(h.engine().settings().with("compare_timeout_us", "10000", s, err)) << err;
  ASSERT_TRUE(h.engine().apply_settings(s, err)) << err;
  EXPECT_EQ(h.engine().settings().compare_timeout_us, 10000u);
  uint64_t t0 = h.now();
  h.push(Side::pvm, udp(7000, "waits"));
  h.advance_to(t0 + 9 * kMs);
  EXPECT_EQ(h.checkpoints().size(), 0u);
  h.advance_to(t0 + 11 * kMs);
  ASSERT_EQ(h.checkpoints().size(), 1u) << "new compare_timeout not applied";
  EXPECT_EQ(h.checkpoints()[0].req.reason, CheckpointReason::deadline);
  finish(h);
}

TEST(EngineSettings, ApplyRejectsCapacityChanges) {
  EngineHarness h;
  for (const char* key : {"max_connections", "max_held_frames", "frag_max_datagrams"}) {
    Settings s;
    std::string err;
    ASSERT_TRUE(h.engine().settings().with(key, "512", s, err)) << err;
    err.clear();
    EXPECT_FALSE(h.engine().apply_settings(s, err)) << key;
    EXPECT_FALSE(err.empty()) << key;
  }
  EXPECT_EQ(h.engine().settings().max_connections, 65536u);
}

TEST(EngineSettings, ApplyPolicyRulesLive) {
  EngineHarness h;
  uint64_t before = h.push(Side::pvm, udp(53, "compared"));
  EXPECT_EQ(describe(h, before), "none");
  Settings s;
  std::string err;
  ASSERT_TRUE(h.engine().settings().with("policy_rules", "udp:53=pass", s, err)) << err;
  ASSERT_TRUE(h.engine().apply_settings(s, err)) << err;
  uint64_t after = h.push(Side::pvm, udp(53, "passed"));
  EXPECT_EQ(describe(h, after), released_as(ReleaseReason::policy_pass));
  // A rule that does not parse is refused and changes nothing.
  err.clear();
  if (h.engine().settings().with("policy_rules", "udp:53=maybe", s, err)) {
    EXPECT_FALSE(h.engine().apply_settings(s, err));
  }
  EXPECT_FALSE(err.empty());
  EXPECT_EQ(h.engine().settings().policy_rules, "udp:53=pass");
  finish(h);
}

TEST(EngineSettings, ApplyModeLive) {
  EngineHarness h;
  uint64_t p = h.push(Side::pvm, udp(7000, "held"));
  Settings s;
  std::string err;
  ASSERT_TRUE(h.engine().settings().with("mode", "passthrough", s, err)) << err;
  ASSERT_TRUE(h.engine().apply_settings(s, err)) << err;
  h.advance_by(0);
  EXPECT_EQ(h.engine().mode(), Mode::passthrough);
  EXPECT_EQ(describe(h, p), released_as(ReleaseReason::passthrough));
  finish(h);
}

// ---------------------------------------------------------------------------------------
// checkpoint coalescing

TEST(EngineCheckpoints, OneOutstandingRequestPerEpochFirstReasonKept) {
  EngineHarness h(EngineHarness::settings_with({{"datagram_reorder_slack", "0"}}));
  h.set_auto_checkpoint(false);
  uint64_t e0 = h.engine().epoch();
  Bytes first = udp(8000, "pvm");
  std::vector<uint64_t> pv;
  pv.push_back(h.push(Side::pvm, first));
  h.push(Side::svm, udp(8000, "svm"));
  ASSERT_EQ(h.checkpoints().size(), 1u);
  const CheckpointRequest r = h.checkpoints()[0].req;
  EXPECT_EQ(r.epoch, e0);
  EXPECT_EQ(r.reason, CheckpointReason::datagram_mismatch);
  ASSERT_TRUE(r.has_flow);
  EXPECT_TRUE(r.flow == key_of(first)) << to_string(r.flow);
  EXPECT_TRUE(h.engine().checkpoint_outstanding());
  // More triggers of every kind in the same epoch: counted, not requested.
  pv.push_back(h.push(Side::pvm, udp(8001, "pvm")));
  h.push(Side::svm, udp(8001, "svm"));
  Conversation c({});
  open_passive(h, c);
  pv.push_back(h.push(Side::pvm, c.vm_stream(Vm::pvm, 0, 100, 1)));
  h.push(Side::svm, c.vm_stream(Vm::svm, 0, 100, 2));
  pv.push_back(h.push(Side::pvm, udp(8002, "lonely")));
  h.advance_by(200 * kMs);  // deadlines
  h.engine().request_checkpoint(CheckpointReason::manual, h.now());
  h.advance_by(0);
  EXPECT_EQ(h.checkpoints().size(), 1u);
  EXPECT_EQ(h.counters().checkpoint_requests, 1u);
  EXPECT_GE(h.counters().checkpoint_triggers, 5u);
  EXPECT_EQ(h.counters().checkpoint_reason[static_cast<size_t>(CheckpointReason::datagram_mismatch)], 1u);
  for (uint64_t x : pv) EXPECT_EQ(describe(h, x), "none");
  h.complete_checkpoint();
  for (uint64_t x : pv) EXPECT_EQ(describe(h, x), released_as(ReleaseReason::checkpoint));
  EXPECT_EQ(h.engine().epoch(), e0 + 1);
  EXPECT_FALSE(h.engine().checkpoint_outstanding());
  EXPECT_EQ(h.counters().checkpoints_done, 1u);
  // Next epoch: a new request, with the new epoch.
  h.push(Side::pvm, udp(8100, "pvm"));
  h.push(Side::svm, udp(8100, "svm"));
  ASSERT_EQ(h.checkpoints().size(), 2u);
  EXPECT_EQ(h.checkpoints()[1].req.epoch, e0 + 1);
  finish(h);
}

TEST(EngineCheckpoints, StaleCheckpointDoneIgnored) {
  EngineHarness h;
  h.set_auto_checkpoint(false);
  uint64_t e0 = h.engine().epoch();
  h.checkpoint_now();
  EXPECT_EQ(h.engine().epoch(), e0 + 1);
  uint64_t p = h.push(Side::pvm, udp(7000, "held in the new epoch"));
  h.engine().checkpoint_done(e0, h.now());  // a duplicate of the last one
  h.advance_by(0);
  EXPECT_EQ(describe(h, p), "none") << "a stale checkpoint done released new output";
  EXPECT_EQ(h.engine().epoch(), e0 + 1);
  finish(h);
}

TEST(EngineCheckpoints, CheckpointerInitiatedCheckpointWithoutRequest) {
  // The checkpointer also checkpoints on its own (periodically): a done with no request
  // outstanding releases held output and rebases like any other.
  EngineHarness h;
  h.set_auto_checkpoint(false);
  Conversation c({});
  open_passive(h, c);
  uint64_t p = h.push(Side::pvm, c.vm_stream(Vm::pvm, 0, 100));
  uint64_t u = h.push(Side::pvm, udp(7000, "held"));
  uint64_t e0 = h.engine().epoch();
  EXPECT_FALSE(h.engine().checkpoint_outstanding());
  h.engine().checkpoint_done(e0, h.now());
  h.advance_by(0);
  EXPECT_EQ(describe(h, p), released_as(ReleaseReason::checkpoint));
  EXPECT_EQ(describe(h, u), released_as(ReleaseReason::checkpoint));
  EXPECT_EQ(h.engine().epoch(), e0 + 1);
  c.rebase_svm();
  uint64_t p2 = h.push(Side::pvm, c.vm_stream(Vm::pvm, 100, 100));
  h.push(Side::svm, c.vm_stream(Vm::svm, 100, 100));
  EXPECT_EQ(describe(h, p2), released_as(ReleaseReason::matched));
  EXPECT_EQ(h.checkpoints().size(), 0u);
  finish(h);
}

TEST(EngineCheckpoints, ManualRequestWithNothingHeld) {
  EngineHarness h;
  h.set_auto_checkpoint(false);
  h.engine().request_checkpoint(CheckpointReason::manual, h.now());
  h.advance_by(0);
  ASSERT_EQ(h.checkpoints().size(), 1u);
  EXPECT_EQ(h.checkpoints()[0].req.reason, CheckpointReason::manual);
  EXPECT_FALSE(h.checkpoints()[0].req.has_flow);
  h.complete_checkpoint();
  EXPECT_EQ(h.counters().checkpoints_done, 1u);
  finish(h);
}

TEST(EngineCheckpoints, FlushAllReleasesHeldAndDropsCopies) {
  EngineHarness h;
  Conversation c({});
  h.push(Side::ingress, c.client_syn());
  uint64_t ps = h.push(Side::pvm, c.vm_synack(Vm::pvm));
  uint64_t a = h.push(Side::ingress, c.client_handshake_ack());
  uint64_t u = h.push(Side::pvm, udp(7000, "x"));
  uint64_t s = h.push(Side::svm, udp(7001, "y"));
  h.flush_all();
  EXPECT_EQ(describe(h, ps).rfind("release/", 0), 0u) << describe(h, ps);
  EXPECT_EQ(describe(h, u).rfind("release/", 0), 0u) << describe(h, u);
  EXPECT_EQ(describe(h, a).rfind("drop/", 0), 0u) << describe(h, a);
  EXPECT_EQ(describe(h, s).rfind("drop/", 0), 0u) << describe(h, s);
  EXPECT_EQ(h.engine().held_frames(), 0u);
  EXPECT_EQ(h.check_contract(true), "");
  EXPECT_EQ(h.conservation(), "");
}

// ---------------------------------------------------------------------------------------
// start-up and edges: invalid settings, connections already running when the engine
// starts, an SVM that never answers the handshake.

TEST(EngineStartup, CreateRejectsInvalidSettings) {
  Settings s = Settings::defaults();
  s.mode = "sideways";
  std::string err;
  EXPECT_EQ(Engine::create(s, err), nullptr);
  EXPECT_FALSE(err.empty());
}

TEST(EngineStartup, MidStreamConnectionResynchronisesAfterOneCheckpoint) {
  // The engine starts while a connection is established: no SYN seen, the SVM's numbering
  // unknown. At most one checkpoint, after which the SVM copies the PVM and compare works.
  EngineHarness h;
  Conversation c({});
  std::vector<uint64_t> pv;
  for (uint64_t off = 5000; off < 5400; off += 100) {
    pv.push_back(h.push(Side::pvm, c.vm_stream(Vm::pvm, off, 100)));
    h.push(Side::svm, c.vm_stream(Vm::svm, off, 100));
    h.advance_by(1 * kMs);
  }
  h.advance_by(200 * kMs);
  EXPECT_LE(h.checkpoints().size(), 1u);
  for (uint64_t x : pv) EXPECT_EQ(describe(h, x).rfind("release/", 0), 0u) << describe(h, x);
  size_t cps = h.checkpoints().size();
  if (cps) c.rebase_svm();
  for (uint64_t off = 5400; off < 6400; off += 100) {
    uint64_t p = h.push(Side::pvm, c.vm_stream(Vm::pvm, off, 100));
    h.push(Side::svm, c.vm_stream(Vm::svm, off, 100));
    EXPECT_EQ(describe(h, p), released_as(ReleaseReason::matched)) << "offset " << off;
  }
  h.advance_by(300 * kMs);
  EXPECT_EQ(h.checkpoints().size(), cps) << "compare did not settle after the checkpoint";
  finish(h);
}

TEST(EngineStartup, SvmNeverAnswersHandshake) {
  EngineHarness h;
  Conversation c({});
  uint64_t syn = h.push(Side::ingress, c.client_syn());
  uint64_t sa = h.push(Side::pvm, c.vm_synack(Vm::pvm));
  uint64_t ack = h.push(Side::ingress, c.client_handshake_ack());  // held for the SVM's ISN
  EXPECT_EQ(describe(h, syn), "forward_svm");
  EXPECT_EQ(describe(h, ack), "none");
  h.advance_by(150 * kMs);
  // The PVM's SYN/ACK waited compare_timeout: checkpoint, then released; the held client
  // ACK is not kept forever either.
  ASSERT_GE(h.checkpoints().size(), 1u);
  EXPECT_EQ(h.checkpoints()[0].req.reason, CheckpointReason::deadline);
  EXPECT_EQ(describe(h, sa), released_as(ReleaseReason::checkpoint));
  EXPECT_TRUE(h.has_action(ack)) << "client ACK held past the checkpoint";
  if (h.has_action(ack) && h.action_of(ack)->kind == ActionKind::forward_svm) {
    EXPECT_TRUE(verify_l4_checksum(h.action_of(ack)->bytes));
  }
  finish(h);
}

}  // namespace
}  // namespace lockstep::test
