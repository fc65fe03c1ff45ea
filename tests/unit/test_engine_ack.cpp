// The ACK rule of the compare engine (docs/design.md §5.2): a PVM frame leaves only once the
// SVM has acknowledged every client byte the frame acknowledges (cumulative ACK, and SACK
// where both VMs use it), per connection in PVM order; an SVM ACK that stays behind past
// ack_timeout_us is an ack_divergence. The random walk and the pcap fixtures cover the
// common paths; these are the corners.
#include <gtest/gtest.h>

#include "tests/support/engine_harness.h"

namespace lockstep::test {
namespace {

constexpr uint64_t kMs = 1'000'000;

std::string release(ReleaseReason r) { return "release/" + std::string(to_string(r)); }

// A VM frame acking client offset `ack` with SACK blocks given as client offsets.
Bytes vm_ack(Conversation& c, Vm vm, uint64_t off, uint64_t ack,
             const std::vector<std::pair<uint64_t, uint64_t>>& sack = {}) {
  FrameSpec s = c.vm_spec(vm, kTcpAck, off, ack);
  for (auto [l, r] : sack) s.tcp.sack.emplace_back(c.client_seq(l), c.client_seq(r));
  return build_frame(s);
}

void finish(EngineHarness& h) {
  EXPECT_EQ(h.conservation(), "");
  h.flush_all();
  EXPECT_EQ(h.check_contract(true), "");
  EXPECT_EQ(h.engine().held_frames(), 0u);
}

TEST(EngineAck, PvmSackWaitsUntilTheSvmSacksTheSameBytes) {
  EngineHarness h;
  h.set_auto_checkpoint(false);
  Conversation c({});
  open_passive(h, c);  // both SYN/ACKs offer SACK
  h.push(Side::svm, vm_ack(c, Vm::svm, 0, 1000));
  // Bytes [1000, 2000) lost before lockstep; both VMs SACK [2000, 4000).
  uint64_t p = h.push(Side::pvm, vm_ack(c, Vm::pvm, 0, 1000, {{2000, 4000}}));
  EXPECT_EQ(describe(h, p), "none") << "the SVM has not SACKed those bytes";
  h.push(Side::svm, vm_ack(c, Vm::svm, 0, 1000, {{2000, 3000}}));
  EXPECT_EQ(describe(h, p), "none") << "only part of the block";
  h.push(Side::svm, vm_ack(c, Vm::svm, 0, 1000, {{3000, 4000}}));
  EXPECT_EQ(describe(h, p), release(ReleaseReason::no_payload))
      << "two SVM blocks merged cover it";
  // A D-SACK (below the cumulative ACK) waits for nothing.
  uint64_t d = h.push(Side::pvm, vm_ack(c, Vm::pvm, 0, 1000, {{500, 900}}));
  EXPECT_EQ(describe(h, d), release(ReleaseReason::no_payload));
  EXPECT_EQ(h.checkpoints().size(), 0u);
  finish(h);
}

TEST(EngineAck, SackIgnoredWhereTheSvmDoesNotUseIt) {
  EngineHarness h;
  h.set_auto_checkpoint(false);
  Conversation c({});
  h.push(Side::ingress, c.client_syn());
  h.push(Side::pvm, c.vm_synack(Vm::pvm));
  FrameSpec ss = c.vm_spec(Vm::svm, kTcpSyn | kTcpAck, 0, 0);
  ss.seq = c.vm_isn(Vm::svm);
  ss.tcp.mss = 1460;  // no SACK-permitted: this SVM never SACKs
  h.push(Side::svm, build_frame(ss));
  h.push(Side::svm, vm_ack(c, Vm::svm, 0, 1000));
  uint64_t p = h.push(Side::pvm, vm_ack(c, Vm::pvm, 0, 1000, {{2000, 4000}}));
  EXPECT_EQ(describe(h, p), release(ReleaseReason::no_payload));
  finish(h);
}

TEST(EngineAck, SvmSackRangesKeepTheHighest) {
  EngineHarness h;
  h.set_auto_checkpoint(false);
  Conversation c({});
  open_passive(h, c);
  h.push(Side::svm, vm_ack(c, Vm::svm, 0, 1000));
  // Five disjoint ranges, one per SVM frame: the lowest gives way.
  for (uint64_t i = 0; i < 5; ++i) {
    h.push(Side::svm, vm_ack(c, Vm::svm, 0, 1000, {{2000 + 2000 * i, 3000 + 2000 * i}}));
  }
  uint64_t hi = h.push(Side::pvm, vm_ack(c, Vm::pvm, 0, 1000, {{10000, 11000}}));
  EXPECT_EQ(describe(h, hi), release(ReleaseReason::no_payload));
  uint64_t lo = h.push(Side::pvm, vm_ack(c, Vm::pvm, 0, 1000, {{2000, 3000}}));
  EXPECT_EQ(describe(h, lo), "none") << "the evicted range is no longer known";
  h.push(Side::svm, vm_ack(c, Vm::svm, 0, 3000));
  EXPECT_EQ(describe(h, lo), release(ReleaseReason::no_payload)) << "the SVM's ACK covers it";
  finish(h);
}

TEST(EngineAck, ClientOffsetLearnedFromTheSynAcks) {
  // The SVM's client numbered its bytes 1000 higher (captures of two test worlds).
  EngineHarness h;
  h.set_auto_checkpoint(false);
  Conversation c({});
  h.push(Side::ingress, c.client_syn());
  h.push(Side::pvm, c.vm_synack(Vm::pvm));
  FrameSpec ss = c.vm_spec(Vm::svm, kTcpSyn | kTcpAck, 0, 1000);
  ss.seq = c.vm_isn(Vm::svm);
  ss.tcp.sack_permitted = true;
  h.push(Side::svm, build_frame(ss));
  EXPECT_EQ(h.counters().client_offsets, 1u);
  uint64_t p = h.push(Side::pvm, vm_ack(c, Vm::pvm, 0, 500));
  h.push(Side::svm, vm_ack(c, Vm::svm, 0, 1400));
  EXPECT_EQ(describe(h, p), "none") << "1400 is 400 in the PVM's client numbering";
  h.push(Side::svm, vm_ack(c, Vm::svm, 0, 1500));
  EXPECT_EQ(describe(h, p), release(ReleaseReason::no_payload));
  finish(h);
}

TEST(EngineAck, BufferModeThenColoNeedsNoNewSvmAck) {
  // In buffer mode the SVM's output is not looked at; the checkpoint that ends it makes
  // the SVM a copy of the PVM, so what the PVM acknowledged meanwhile counts as the SVM's.
  EngineHarness h;
  Conversation c({});
  open_passive(h, c);
  h.set_mode(Mode::buffer);
  uint64_t b = h.push(Side::pvm, vm_ack(c, Vm::pvm, 0, 5000));
  h.set_mode(Mode::colo);
  h.run_until_idle();
  ASSERT_EQ(h.engine().mode(), Mode::colo);
  EXPECT_EQ(describe(h, b), release(ReleaseReason::checkpoint));
  const size_t before = h.checkpoints().size();
  uint64_t w = h.push(Side::pvm, vm_ack(c, Vm::pvm, 0, 5000));
  EXPECT_EQ(describe(h, w), release(ReleaseReason::no_payload));
  h.advance_by(2000 * kMs);
  EXPECT_EQ(h.checkpoints().size(), before) << "no ack_divergence for bytes acked in buffer mode";
  finish(h);
}

TEST(EngineAck, AckTimeoutIsALiveSetting) {
  EngineHarness h;
  h.set_auto_checkpoint(false);
  std::string err;
  ASSERT_TRUE(h.engine().apply_settings(
      EngineHarness::settings_with({{"ack_timeout_us", "5000"}}), err)) << err;
  Conversation c({});
  open_passive(h, c);
  uint64_t p = h.push(Side::pvm, vm_ack(c, Vm::pvm, 0, 700));
  h.advance_by(4 * kMs);
  EXPECT_EQ(h.checkpoints().size(), 0u);
  h.advance_by(2 * kMs);
  ASSERT_EQ(h.checkpoints().size(), 1u);
  EXPECT_EQ(h.checkpoints()[0].req.reason, CheckpointReason::ack_divergence);
  EXPECT_EQ(h.counters().checkpoint_reason[static_cast<unsigned>(CheckpointReason::ack_divergence)],
            1u);
  EXPECT_EQ(describe(h, p), "none");
  ASSERT_TRUE(h.complete_checkpoint());
  EXPECT_EQ(describe(h, p), release(ReleaseReason::checkpoint));
  finish(h);
}

TEST(EngineAck, RetransmissionWaitsBehindAHeldFrame) {
  EngineHarness h;
  h.set_auto_checkpoint(false);
  Conversation c({});
  open_passive(h, c);
  h.push(Side::pvm, c.vm_stream(Vm::pvm, 0, 100));
  h.push(Side::svm, c.vm_stream(Vm::svm, 0, 100));
  uint64_t a = h.push(Side::pvm, c.vm_stream(Vm::pvm, 100, 100));  // no SVM copy yet
  uint64_t r = h.push(Side::pvm, c.vm_stream(Vm::pvm, 0, 100));    // matched bytes again
  EXPECT_EQ(describe(h, r), "none") << "it must not overtake the held segment";
  h.push(Side::svm, c.vm_stream(Vm::svm, 100, 100));
  EXPECT_EQ(describe(h, a), release(ReleaseReason::matched));
  EXPECT_EQ(describe(h, r), release(ReleaseReason::retransmit));
  EXPECT_LT(h.action_of(a), h.action_of(r)) << "released in PVM order";
  EXPECT_EQ(h.counters().pvm_retransmits, 1u);
  finish(h);
}

}  // namespace
}  // namespace lockstep::test
