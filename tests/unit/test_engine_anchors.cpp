// The behaviours measured on QEMU's colo-compare (research/colo-anchors.md §6.1, T1-T16
// and the checkpoint storm), each with the outcome lockstep intends (docs/design.md §5),
// as one table: id, what QEMU did, what we do, and the case. After every case the
// harness checks the contract (one action per handle) and conservation.
//
// Then unit-level cases of the engine's TCP handling that the anchors do not cover:
// ISN learning (passive and active open), translation of the SVM-bound client copy
// (ack, SACK, TSecr, checksums), holding that copy until the SVM's ISN is known,
// FIN/RST as events, full table and held capacity, malformed frames, fragments,
// policies.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "tests/support/engine_harness.h"

namespace lockstep::test {
namespace {

constexpr uint64_t kMs = 1'000'000;
constexpr uint64_t kTimeout = 100 * kMs;  // compare_timeout default

std::string release(ReleaseReason r) { return released_as(r); }
std::string drop(DropReason r) { return dropped_as(r); }

// The SVM frame met a compare fate: freed (matched) or dropped (backlog), never released.
bool svm_consumed(const EngineHarness& h, uint64_t handle) {
  const ActionRecord* a = h.action_of(handle);
  return a && (a->kind == ActionKind::free || a->kind == ActionKind::drop);
}

// Contract and conservation now, then after flush_all with every handle accounted for.
void finish(EngineHarness& h) {
  EXPECT_EQ(h.conservation(), "");
  EXPECT_EQ(h.check_contract(false), "");
  h.flush_all();
  EXPECT_EQ(h.conservation(), "") << "after flush_all";
  EXPECT_EQ(h.check_contract(true), "") << "after flush_all";
  EXPECT_EQ(h.engine().held_frames(), 0u) << "after flush_all";
}

uint64_t requests(const EngineHarness& h) { return h.counters().checkpoint_requests; }

Bytes bytes_of(const std::string& s) { return Bytes(s.begin(), s.end()); }

IpAddr vm_ip() { return ip4(198, 51, 100, 20); }
IpAddr client_ip() { return ip4(192, 0, 2, 10); }

Bytes udp(uint16_t sport, const std::string& payload, uint16_t dport = 5000) {
  return build_frame(udp_spec(vm_ip(), client_ip(), sport, dport, bytes_of(payload)));
}

// ---------------------------------------------------------------------------------------
// The anchors (colo-anchors.md §6.1)

void t1_released_after_svm_copy() {
  EngineHarness h;
  Conversation c({});
  open_passive(h, c);
  uint64_t p = h.push(Side::pvm, c.vm_stream(Vm::pvm, 0, 100));
  EXPECT_EQ(describe(h, p), "none") << "released before the SVM copy arrived";
  h.advance_by(10 * kMs);
  EXPECT_EQ(describe(h, p), "none") << "released before the SVM copy arrived";
  uint64_t s = h.push(Side::svm, c.vm_stream(Vm::svm, 0, 100));
  EXPECT_EQ(describe(h, p), release(ReleaseReason::matched));
  EXPECT_EQ(describe(h, s), "free");
  EXPECT_EQ(requests(h), 0u);
  EXPECT_EQ(h.counters().bytes_compared, 100u);
  finish(h);
}

void t2_mismatch_checkpoint_then_release() {
  EngineHarness h;
  h.set_auto_checkpoint(false);
  Conversation c({});
  open_passive(h, c);
  uint64_t p = h.push(Side::pvm, c.vm_stream(Vm::pvm, 0, 100, /*seed=*/1));
  uint64_t s = h.push(Side::svm, c.vm_stream(Vm::svm, 0, 100, /*seed=*/2));
  ASSERT_EQ(h.checkpoints().size(), 1u);
  EXPECT_EQ(h.checkpoints()[0].req.reason, CheckpointReason::payload_mismatch);
  EXPECT_TRUE(h.checkpoints()[0].req.has_flow);
  EXPECT_EQ(describe(h, p), "none") << "mismatching PVM output released before checkpoint";
  h.advance_by(5 * kTimeout);
  EXPECT_EQ(describe(h, p), "none") << "released while the checkpoint is outstanding";
  EXPECT_EQ(requests(h), 1u) << "one request per epoch";
  ASSERT_TRUE(h.complete_checkpoint());
  EXPECT_EQ(describe(h, p), release(ReleaseReason::checkpoint));
  EXPECT_TRUE(svm_consumed(h, s)) << describe(h, s);
  // After the checkpoint the SVM is a copy of the PVM: comparing resumes and matches.
  c.rebase_svm();
  uint64_t p2 = h.push(Side::pvm, c.vm_stream(Vm::pvm, 100, 60, 1));
  uint64_t s2 = h.push(Side::svm, c.vm_stream(Vm::svm, 100, 60, 1));
  EXPECT_EQ(describe(h, p2), release(ReleaseReason::matched));
  EXPECT_EQ(describe(h, s2), "free");
  EXPECT_EQ(requests(h), 1u);
  finish(h);
}

void t3_segmentation_tolerated() {
  {
    EngineHarness h;
    Conversation c({});
    open_passive(h, c);
    uint64_t p1 = h.push(Side::pvm, c.vm_stream(Vm::pvm, 0, 50));
    uint64_t p2 = h.push(Side::pvm, c.vm_stream(Vm::pvm, 50, 50));
    uint64_t s = h.push(Side::svm, c.vm_stream(Vm::svm, 0, 100));
    EXPECT_EQ(describe(h, p1), release(ReleaseReason::matched));
    EXPECT_EQ(describe(h, p2), release(ReleaseReason::matched));
    EXPECT_EQ(describe(h, s), "free");
    EXPECT_EQ(requests(h), 0u);
    std::vector<uint64_t> rel = h.released_handles(Side::pvm);
    ASSERT_GE(rel.size(), 2u);
    EXPECT_EQ((std::vector<uint64_t>(rel.end() - 2, rel.end())), (std::vector<uint64_t>{p1, p2}));
    finish(h);
  }
  {  // the other way round: PVM 1x100, SVM 2x50 (released only after the second)
    EngineHarness h;
    Conversation c({});
    open_passive(h, c);
    uint64_t p = h.push(Side::pvm, c.vm_stream(Vm::pvm, 0, 100));
    uint64_t s1 = h.push(Side::svm, c.vm_stream(Vm::svm, 0, 50));
    EXPECT_EQ(describe(h, p), "none") << "released with half its bytes matched";
    uint64_t s2 = h.push(Side::svm, c.vm_stream(Vm::svm, 50, 50));
    EXPECT_EQ(describe(h, p), release(ReleaseReason::matched));
    EXPECT_TRUE(svm_consumed(h, s1));
    EXPECT_TRUE(svm_consumed(h, s2));
    EXPECT_EQ(requests(h), 0u);
    finish(h);
  }
}

void t6_identical_udp_released() {
  EngineHarness h;
  uint64_t p = h.push(Side::pvm, udp(7000, "hello datagram"));
  EXPECT_EQ(describe(h, p), "none");
  uint64_t s = h.push(Side::svm, udp(7000, "hello datagram"));
  EXPECT_EQ(describe(h, p), release(ReleaseReason::matched));
  EXPECT_EQ(describe(h, s), "free");
  EXPECT_EQ(requests(h), 0u);
  EXPECT_EQ(h.counters().datagrams_matched, 1u);
  // Ethernet padding after a short datagram is not part of it.
  FrameSpec small = udp_spec(vm_ip(), client_ip(), 7001, 5000, bytes_of("tiny"));
  small.pad_to_min = true;
  uint64_t p2 = h.push(Side::pvm, build_frame(small));
  small.pad_to_min = false;
  uint64_t s2 = h.push(Side::svm, build_frame(small));
  EXPECT_EQ(describe(h, p2), release(ReleaseReason::matched));
  EXPECT_EQ(describe(h, s2), "free");
  EXPECT_EQ(requests(h), 0u);
  finish(h);
}

void t7_lagging_udp_in_order() {
  EngineHarness h;
  uint64_t v1 = h.push(Side::pvm, udp(7000, "v1 first"));
  uint64_t v2 = h.push(Side::pvm, udp(7000, "v2 second"));
  uint64_t v3 = h.push(Side::pvm, udp(7000, "v3 third!"));
  h.advance_by(20 * kMs);
  h.push(Side::svm, udp(7000, "v1 first"));
  EXPECT_EQ(describe(h, v1), release(ReleaseReason::matched));
  EXPECT_EQ(describe(h, v2), "none");
  h.advance_by(20 * kMs);
  h.push(Side::svm, udp(7000, "v2 second"));
  h.advance_by(20 * kMs);
  h.push(Side::svm, udp(7000, "v3 third!"));
  EXPECT_EQ((h.released_handles(Side::pvm)), (std::vector<uint64_t>{v1, v2, v3}));
  EXPECT_EQ(requests(h), 0u);
  EXPECT_EQ(h.counters().checkpoint_triggers, 0u);
  finish(h);
}

void t8_flush_in_order() {
  for (bool by_deadline : {false, true}) {
    SCOPED_TRACE(by_deadline ? "checkpoint by deadline" : "manual checkpoint");
    EngineHarness h;
    h.set_auto_checkpoint(false);
    uint64_t w1 = h.push(Side::pvm, udp(7001, "w1"));
    uint64_t w2 = h.push(Side::pvm, udp(7001, "w2"));
    uint64_t w3 = h.push(Side::pvm, udp(7001, "w3"));
    if (by_deadline) {
      h.advance_by(kTimeout + kMs);
      ASSERT_EQ(h.checkpoints().size(), 1u);
      EXPECT_EQ(h.checkpoints()[0].req.reason, CheckpointReason::deadline);
      h.complete_checkpoint();
    } else {
      h.checkpoint_now();
    }
    EXPECT_EQ((h.released_handles(Side::pvm)), (std::vector<uint64_t>{w1, w2, w3}));
    EXPECT_EQ(describe(h, w1), release(ReleaseReason::checkpoint));
    finish(h);
  }
}

void t9_non_ip_and_ipv6() {
  EngineHarness h;  // non_ip_policy=pass by default
  FrameSpec arp;
  arp.raw_ethertype = 0x0806;
  arp.dst_mac = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  arp.payload = {0, 1, 8, 0, 6, 4, 0, 1, 2, 0x5e, 0, 0, 0, 1, 198, 51, 100, 20,
                 0, 0, 0, 0, 0, 0, 192, 0, 2, 10};
  arp.pad_to_min = true;
  uint64_t pa = h.push(Side::pvm, build_frame(arp));
  EXPECT_EQ(describe(h, pa), release(ReleaseReason::non_ip_pass));
  uint64_t sa = h.push(Side::svm, build_frame(arp));
  EXPECT_TRUE(svm_consumed(h, sa)) << describe(h, sa);

  // IPv6 is compared, not passed: UDP and TCP.
  FrameSpec u6 = udp_spec(ip6_doc(0x20), ip6_doc(0x10), 7000, 5000, bytes_of("over v6"));
  uint64_t p6 = h.push(Side::pvm, build_frame(u6));
  EXPECT_EQ(describe(h, p6), "none") << "IPv6 datagram released uncompared";
  uint64_t s6 = h.push(Side::svm, build_frame(u6));
  EXPECT_EQ(describe(h, p6), release(ReleaseReason::matched));
  EXPECT_EQ(describe(h, s6), "free");

  Conversation::Params cp;
  cp.client = ip6_doc(0x10);
  cp.server = ip6_doc(0x20);
  Conversation c(cp);
  open_passive(h, c);
  uint64_t pt = h.push(Side::pvm, c.vm_stream(Vm::pvm, 0, 300));
  EXPECT_EQ(describe(h, pt), "none") << "IPv6 TCP released uncompared";
  h.push(Side::svm, c.vm_stream(Vm::svm, 0, 300));
  EXPECT_EQ(describe(h, pt), release(ReleaseReason::matched));
  EXPECT_EQ(requests(h), 0u);
  finish(h);
}

void t10_header_fields_ignored() {
  EngineHarness h;
  Conversation c({});
  open_passive(h, c);
  Bytes payload = stream_bytes(1, 0, 100);
  FrameSpec ps = c.vm_spec(Vm::pvm, kTcpAck | kTcpPsh, 0, 0, payload);
  FrameSpec ss = c.vm_spec(Vm::svm, kTcpAck | kTcpPsh, 0, 0, payload);
  ps.ip_id = 1;
  ss.ip_id = 4242;
  ps.ttl = 64;
  ss.ttl = 17;
  ps.tos = 0;
  ss.tos = 0x28;
  ps.window = 1000;
  ss.window = 29200;
  ps.tcp.timestamp = std::make_pair(111u, 222u);
  ss.tcp.timestamp = std::make_pair(98765u, 5u);
  ss.dont_fragment = true;
  ss.ip_options = {1, 1, 1, 0};  // NOPs and EOL: a longer IPv4 header on one side
  uint64_t p = h.push(Side::pvm, build_frame(ps));
  uint64_t s = h.push(Side::svm, build_frame(ss));
  EXPECT_EQ(describe(h, p), release(ReleaseReason::matched));
  EXPECT_EQ(describe(h, s), "free");
  EXPECT_EQ(requests(h), 0u);
  finish(h);
}

// Position of a handle's action among the actions drained so far (SIZE_MAX: none).
size_t action_index(const EngineHarness& h, uint64_t handle) {
  const auto& acts = h.actions();
  for (size_t i = 0; i < acts.size(); ++i) {
    if (acts[i].handle == handle) return i;
  }
  return SIZE_MAX;
}

void t11_pure_ack_waits_only_for_the_svm_ack() {
  EngineHarness h;
  h.set_auto_checkpoint(false);
  Conversation c({});
  open_passive(h, c);
  // It acknowledges nothing the SVM's SYN/ACK did not: released at once.
  uint64_t a = h.push(Side::pvm, c.vm_pure_ack(Vm::pvm, 0));
  EXPECT_EQ(describe(h, a), release(ReleaseReason::no_payload));
  // It acknowledges 300 client bytes the SVM has not acknowledged yet: it waits for the
  // SVM's ACK, not for a deadline, and causes no checkpoint.
  uint64_t a2 = h.push(Side::pvm, build_frame(c.vm_spec(Vm::pvm, kTcpAck, 0, 300)));
  EXPECT_EQ(describe(h, a2), "none");
  h.advance_by(kTimeout / 2);
  EXPECT_EQ(h.checkpoints().size(), 0u) << "a pure ACK must not cause a checkpoint";
  h.push(Side::svm, build_frame(c.vm_spec(Vm::svm, kTcpAck, 0, 200)));
  EXPECT_EQ(describe(h, a2), "none") << "the SVM's ACK has not reached the PVM's";
  h.push(Side::svm, build_frame(c.vm_spec(Vm::svm, kTcpAck, 0, 300)));
  EXPECT_EQ(describe(h, a2), release(ReleaseReason::no_payload));
  // A window update while PVM data is held leaves after that data (PVM order).
  uint64_t d = h.push(Side::pvm, c.vm_stream(Vm::pvm, 0, 100));
  FrameSpec wu = c.vm_spec(Vm::pvm, kTcpAck, 100, 300);
  wu.window = 123;
  uint64_t w = h.push(Side::pvm, build_frame(wu));
  EXPECT_EQ(describe(h, w), "none");
  EXPECT_EQ(describe(h, d), "none");
  h.push(Side::svm, build_frame(c.vm_spec(Vm::svm, kTcpAck, 0, 300, stream_bytes(1, 0, 100))));
  EXPECT_EQ(describe(h, d), release(ReleaseReason::matched));
  EXPECT_EQ(describe(h, w), release(ReleaseReason::no_payload));
  EXPECT_LT(action_index(h, d), action_index(h, w));
  h.advance_by(3 * kTimeout);
  EXPECT_EQ(h.checkpoints().size(), 0u);
  finish(h);
}

void t12_ack_progress_not_ack_numbers() {
  {  // T12: same bytes, PVM 2x50 B acking 6000 vs SVM 1x100 B acking 5000, then 6000
    EngineHarness h;
    Conversation c({});
    open_passive(h, c);
    Bytes b = stream_bytes(1, 0, 100);
    uint64_t p1 = h.push(Side::pvm, build_frame(c.vm_spec(Vm::pvm, kTcpAck, 0, 6000,
                                                          std::span(b).subspan(0, 50))));
    uint64_t p2 = h.push(Side::pvm, build_frame(c.vm_spec(Vm::pvm, kTcpAck, 50, 6000,
                                                          std::span(b).subspan(50, 50))));
    h.push(Side::svm, build_frame(c.vm_spec(Vm::svm, kTcpAck, 0, 5000, b)));
    EXPECT_EQ(describe(h, p1), "none") << "bytes matched, the SVM's ACK behind";
    EXPECT_EQ(describe(h, p2), "none");
    h.advance_by(kTimeout / 2);
    h.push(Side::svm, build_frame(c.vm_spec(Vm::svm, kTcpAck, 100, 6000)));
    EXPECT_EQ(describe(h, p1), release(ReleaseReason::matched));
    EXPECT_EQ(describe(h, p2), release(ReleaseReason::matched));
    EXPECT_EQ(requests(h), 0u);
    finish(h);
  }
  {  // T12b: identical segmentation, PVM acks 7000, SVM acks 5000 then 7000
    EngineHarness h;
    Conversation c({});
    open_passive(h, c);
    Bytes b = stream_bytes(1, 0, 100);
    uint64_t p = h.push(Side::pvm, build_frame(c.vm_spec(Vm::pvm, kTcpAck, 0, 7000, b)));
    h.push(Side::svm, build_frame(c.vm_spec(Vm::svm, kTcpAck, 0, 5000, b)));
    EXPECT_EQ(describe(h, p), "none");
    h.push(Side::svm, build_frame(c.vm_spec(Vm::svm, kTcpAck, 100, 7000)));
    EXPECT_EQ(describe(h, p), release(ReleaseReason::matched));
    EXPECT_EQ(requests(h), 0u);
    finish(h);
  }
  {  // The SVM's ACK never reaches the PVM's: ack_divergence after ack_timeout_us.
    EngineHarness h;
    h.set_auto_checkpoint(false);
    Conversation c({});
    open_passive(h, c);
    Bytes b = stream_bytes(1, 0, 100);
    uint64_t p = h.push(Side::pvm, build_frame(c.vm_spec(Vm::pvm, kTcpAck, 0, 7000, b)));
    h.push(Side::svm, build_frame(c.vm_spec(Vm::svm, kTcpAck, 0, 5000, b)));
    const uint64_t ack_timeout = h.engine().settings().ack_timeout_us * 1000;
    h.advance_by(ack_timeout - kTimeout / 10);
    EXPECT_EQ(h.checkpoints().size(), 0u) << "before ack_timeout_us";
    EXPECT_EQ(describe(h, p), "none");
    h.advance_by(kTimeout / 5);
    ASSERT_EQ(h.checkpoints().size(), 1u);
    EXPECT_EQ(h.checkpoints()[0].req.reason, CheckpointReason::ack_divergence);
    EXPECT_EQ(describe(h, p), "none") << "held until the checkpoint completes";
    finish(h);
  }
}

void t13_retransmit_released_at_once() {
  EngineHarness h;
  h.set_auto_checkpoint(false);
  Conversation c({});
  open_passive(h, c);
  h.push(Side::pvm, c.vm_stream(Vm::pvm, 0, 100));
  h.push(Side::svm, c.vm_stream(Vm::svm, 0, 100));
  uint64_t r = h.push(Side::pvm, c.vm_stream(Vm::pvm, 0, 100));
  EXPECT_EQ(describe(h, r), release(ReleaseReason::retransmit));
  uint64_t r2 = h.push(Side::pvm, c.vm_stream(Vm::pvm, 40, 30));  // inside matched bytes
  EXPECT_EQ(describe(h, r2), release(ReleaseReason::retransmit));
  // Partly new bytes: held until the SVM sends them.
  uint64_t part = h.push(Side::pvm, c.vm_stream(Vm::pvm, 50, 100));
  EXPECT_EQ(describe(h, part), "none") << "released with 50 unmatched bytes";
  h.push(Side::svm, c.vm_stream(Vm::svm, 100, 50));
  EXPECT_EQ(describe(h, part), release(ReleaseReason::matched));
  EXPECT_EQ(h.checkpoints().size(), 0u);
  finish(h);
}

void t14_long_pvm_only_flow_nothing_lost() {
  EngineHarness h;
  h.set_auto_checkpoint(false);
  h.set_keep_bytes(false);
  Conversation c({});
  open_passive(h, c);
  std::vector<uint64_t> seg;
  for (int i = 0; i < 1100; ++i)
    seg.push_back(h.push(Side::pvm, c.vm_stream(Vm::pvm, static_cast<uint64_t>(i) * 100, 100)));
  EXPECT_EQ(h.checkpoints().size(), 0u) << "1100 segments fit the reorder window (2048)";
  EXPECT_EQ(h.released_handles(Side::pvm).size(), 1u);  // the SYN/ACK only
  h.advance_by(kTimeout + kMs);
  ASSERT_EQ(h.checkpoints().size(), 1u);
  EXPECT_EQ(h.checkpoints()[0].req.reason, CheckpointReason::deadline);
  h.complete_checkpoint();
  std::vector<uint64_t> rel = h.released_handles(Side::pvm);
  ASSERT_EQ(rel.size(), 1101u) << "PVM segments lost";
  EXPECT_TRUE(std::equal(seg.begin(), seg.end(), rel.begin() + 1)) << "not in arrival order";
  EXPECT_EQ(h.counters().pvm_dropped_total(), 0u);
  finish(h);
}

void t15_deadline_is_compare_timeout() {
  EngineHarness h;
  h.set_auto_checkpoint(false);
  Conversation c({});
  open_passive(h, c);
  uint64_t t0 = h.now();
  uint64_t p = h.push(Side::pvm, c.vm_stream(Vm::pvm, 0, 100));
  EXPECT_LE(h.engine().next_deadline(), t0 + kTimeout + kMs);
  h.advance_to(t0 + kTimeout - 1);
  EXPECT_EQ(h.checkpoints().size(), 0u) << "checkpoint before compare_timeout";
  h.advance_to(t0 + kTimeout + kMs);  // one millisecond of timer granularity allowed
  ASSERT_EQ(h.checkpoints().size(), 1u) << "no checkpoint at compare_timeout";
  const CheckpointRequest& r = h.checkpoints()[0].req;
  EXPECT_EQ(r.reason, CheckpointReason::deadline);
  EXPECT_GE(r.t_ns, t0 + kTimeout);
  EXPECT_LE(r.t_ns, t0 + kTimeout + kMs);
  EXPECT_EQ(describe(h, p), "none");
  h.advance_by(10 * kTimeout);
  EXPECT_EQ(requests(h), 1u) << "deadline re-requested within the epoch";
  h.complete_checkpoint();
  EXPECT_EQ(describe(h, p), release(ReleaseReason::checkpoint));
  finish(h);
}

void t16_many_pvm_only_flows_nothing_lost() {
  EngineHarness h;
  h.set_auto_checkpoint(false);
  h.set_keep_bytes(false);
  std::vector<uint64_t> hs;
  for (uint32_t i = 0; i < 16400; ++i) {
    FrameSpec s = udp_spec(ip4_host(0xc6336400u + (i >> 12)), client_ip(),
                           static_cast<uint16_t>(10000 + (i & 0xfff)), 5000, bytes_of("x"));
    hs.push_back(h.push(Side::pvm, build_frame(s)));
  }
  EXPECT_EQ(h.counters().conns_active, 16400u);
  EXPECT_EQ(h.released_handles().size(), 0u);
  h.advance_by(kTimeout + kMs);
  ASSERT_GE(h.checkpoints().size(), 1u);
  h.complete_checkpoint();
  std::vector<uint64_t> rel = h.released_handles(Side::pvm);
  ASSERT_EQ(rel.size(), 16400u) << "PVM datagrams lost";
  std::vector<uint64_t> sorted = rel;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, hs);
  EXPECT_EQ(h.counters().pvm_dropped_total(), 0u);
  finish(h);
}

void storm_one_request_per_epoch() {
  {  // 1000 mismatching UDP pairs on 1000 flows
    EngineHarness h(EngineHarness::settings_with({{"datagram_reorder_slack", "0"}}));
    h.set_auto_checkpoint(false);
    h.set_keep_bytes(false);
    for (uint16_t i = 0; i < 1000; ++i) {
      h.push(Side::pvm, udp(static_cast<uint16_t>(20000 + i), "primary " + std::to_string(i)));
      h.push(Side::svm, udp(static_cast<uint16_t>(20000 + i), "secondary " + std::to_string(i)));
    }
    EXPECT_EQ(requests(h), 1u);
    ASSERT_EQ(h.checkpoints().size(), 1u);
    EXPECT_EQ(h.checkpoints()[0].req.reason, CheckpointReason::datagram_mismatch);
    EXPECT_EQ(h.counters().checkpoint_triggers, 1000u) << "coalesced triggers not counted";
    EXPECT_EQ(h.released_handles().size(), 0u);
    h.complete_checkpoint();
    EXPECT_EQ(h.released_handles().size(), 1000u);
    EXPECT_EQ(h.check_contract(true), "") << "SVM backlog not dropped at checkpoint done";
    finish(h);
  }
  {  // 1000 mismatching TCP segments on one flow, two epochs
    EngineHarness h;
    h.set_auto_checkpoint(false);
    h.set_keep_bytes(false);
    Conversation c({});
    open_passive(h, c);
    for (uint64_t i = 0; i < 1000; ++i) {
      h.push(Side::pvm, c.vm_stream(Vm::pvm, i * 100, 100, 1));
      h.push(Side::svm, c.vm_stream(Vm::svm, i * 100, 100, 2));
    }
    EXPECT_EQ(requests(h), 1u);
    EXPECT_GE(h.counters().checkpoint_triggers, 1u);
    EXPECT_EQ(h.released_handles(Side::pvm).size(), 1u);  // SYN/ACK
    uint64_t epoch = h.engine().epoch();
    h.complete_checkpoint();
    EXPECT_GT(h.engine().epoch(), epoch);
    EXPECT_EQ(h.released_handles(Side::pvm).size(), 1001u);
    c.rebase_svm();
    // Next epoch: the storm goes on (SVM now numbered like the PVM), one more request.
    for (uint64_t i = 1000; i < 2000; ++i) {
      h.push(Side::pvm, c.vm_stream(Vm::pvm, i * 100, 100, 1));
      h.push(Side::svm, c.vm_stream(Vm::svm, i * 100, 100, 2));
    }
    EXPECT_EQ(requests(h), 2u);
    h.complete_checkpoint();
    EXPECT_EQ(h.released_handles(Side::pvm).size(), 2001u);
    finish(h);
  }
}

struct AnchorCase {
  const char* id;
  const char* qemu;      // what QEMU's colo-compare did (colo-anchors.md §6.1)
  const char* intended;  // what lockstep does
  void (*run)();
};

const AnchorCase kAnchors[] = {
    {"T1", "nothing out until the SVM copy, then 1 frame", "released only after the SVM copy",
     t1_released_after_svm_copy},
    {"T2", "0 out, checkpoint, PVM frame out after it", "checkpoint; released after done",
     t2_mismatch_checkpoint_then_release},
    {"T3", "2x50 vs 1x100 released", "released whatever the segmentation, no checkpoint",
     t3_segmentation_tolerated},
    {"T6", "identical UDP released", "released, SVM copy freed", t6_identical_udp_released},
    {"T7", "2 checkpoints, released v3,v2,v1", "released v1,v2,v3, no checkpoint",
     t7_lagging_udp_in_order},
    {"T8", "flushed w3,w2,w1", "flushed w1,w2,w3", t8_flush_in_order},
    {"T9", "ARP and IPv6 released uncompared", "ARP passed by policy; IPv6 compared",
     t9_non_ip_and_ipv6},
    {"T10", "header fields ignored", "header fields ignored", t10_header_fields_ignored},
    {"T11", "pure ACK held 5 s, 2 checkpoints", "pure ACK held only until the SVM's ACK",
     t11_pure_ack_waits_only_for_the_svm_ack},
    {"T12", "ack gating: checkpoint (T12), release (T12b)",
     "ACK progress, not numbers: released when the SVM's ACK catches up",
     t12_ack_progress_not_ack_numbers},
    {"T13", "retransmission held 5 s, 2 checkpoints", "retransmission released at once",
     t13_retransmit_released_at_once},
    {"T14", "1025 of 1100 out, 75 lost", "all 1100 released in order after checkpoint",
     t14_long_pvm_only_flow_nothing_lost},
    {"T15", "first checkpoint after 3.37 s", "checkpoint at compare_timeout (100 ms)",
     t15_deadline_is_compare_timeout},
    {"T16", "21 of 16,400 out", "all 16,400 released after checkpoint",
     t16_many_pvm_only_flows_nothing_lost},
    {"storm", "1000 / 1968 checkpoint messages", "one request per epoch, triggers counted",
     storm_one_request_per_epoch},
};

class Anchor : public ::testing::TestWithParam<AnchorCase> {};

TEST_P(Anchor, IntendedOutcome) {
  const AnchorCase& a = GetParam();
  SCOPED_TRACE(std::string(a.id) + ": QEMU " + a.qemu + "; intended: " + a.intended);
  a.run();
}

INSTANTIATE_TEST_SUITE_P(ColoAnchors, Anchor, ::testing::ValuesIn(kAnchors),
                         [](const ::testing::TestParamInfo<AnchorCase>& i) {
                           return std::string(i.param.id);
                         });

// ---------------------------------------------------------------------------------------
// TCP handshake learning
//
//   passive open                         active open
//   client SYN ─► fwd (no ack)           PVM SYN ─► held (event)
//   PVM SYN/ACK ─► held (event)          SVM SYN ─► matched: PVM SYN released,
//   SVM SYN/ACK ─► matched: released,               offset = SVM ISN - PVM ISN
//                 offset learned         client SYN/ACK ─► fwd, ack translated
//   client ACK ─► fwd, ack translated    PVM ACK ─► released at once (no payload)

ConnInfo only_conn(EngineHarness& h) {
  std::vector<ConnInfo> v;
  h.engine().list_connections(v, 16);
  EXPECT_EQ(v.size(), 1u);
  return v.empty() ? ConnInfo{} : v[0];
}

TEST(EngineTcp, IsnLearnedOnPassiveOpenAcrossWrap) {
  EngineHarness h;
  Conversation::Params p;
  p.pvm_isn = 0xffffff00u;  // the stream crosses 2^32 after 255 bytes
  p.svm_isn = 0x00000100u;
  p.client_isn = 0xfffffffeu;
  Conversation c(p);
  Opened o = open_passive(h, c);
  EXPECT_EQ(describe(h, o.client_syn), "forward_svm");
  EXPECT_EQ(describe(h, o.pvm_syn), release(ReleaseReason::matched));
  EXPECT_EQ(describe(h, o.svm_syn), "free");
  EXPECT_EQ(describe(h, o.client_ack), "forward_svm");
  EXPECT_GE(h.counters().isn_learned, 1u);
  EXPECT_EQ(only_conn(h).svm_seq_offset, static_cast<int32_t>(p.svm_isn - p.pvm_isn));
  Decoded fa = decode(h.action_of(o.client_ack)->bytes);
  EXPECT_EQ(fa.ack, p.svm_isn + 1);
  EXPECT_TRUE(verify_l4_checksum(h.action_of(o.client_ack)->bytes));
  for (uint64_t off = 0; off < 1000; off += 200) {
    uint64_t pv = h.push(Side::pvm, c.vm_stream(Vm::pvm, off, 200));
    h.push(Side::svm, c.vm_stream(Vm::svm, off, 200));
    EXPECT_EQ(describe(h, pv), release(ReleaseReason::matched)) << "offset " << off;
  }
  EXPECT_EQ(requests(h), 0u);
  finish(h);
}

TEST(EngineTcp, IsnLearnedOnActiveOpen) {
  EngineHarness h;
  Conversation::Params p;
  p.pvm_isn = 0x7fffffffu;
  p.svm_isn = 0x80000010u;
  Conversation c(p);
  Opened o = open_active(h, c);
  EXPECT_EQ(describe(h, o.pvm_syn), release(ReleaseReason::matched));
  EXPECT_EQ(describe(h, o.client_syn), "forward_svm");
  const ActionRecord* f = h.action_of(o.client_syn);
  ASSERT_NE(f, nullptr);
  Decoded d = decode(f->bytes);
  EXPECT_EQ(d.ack, p.svm_isn + 1) << "client SYN/ACK's ack not translated";
  EXPECT_EQ(d.seq, p.client_isn);
  EXPECT_TRUE(verify_l4_checksum(f->bytes));
  EXPECT_EQ(describe(h, o.pvm_ack), release(ReleaseReason::no_payload));
  EXPECT_EQ(only_conn(h).svm_seq_offset, static_cast<int32_t>(p.svm_isn - p.pvm_isn));
  uint64_t pv = h.push(Side::pvm, c.vm_stream(Vm::pvm, 0, 500));
  h.push(Side::svm, c.vm_stream(Vm::svm, 0, 500));
  EXPECT_EQ(describe(h, pv), release(ReleaseReason::matched));
  EXPECT_EQ(requests(h), 0u);
  finish(h);
}

TEST(EngineTcp, PvmSynHeldUntilSvmSyn) {
  EngineHarness h;
  h.set_auto_checkpoint(false);
  Conversation c({});
  uint64_t s = h.push(Side::ingress, c.client_syn());
  EXPECT_EQ(describe(h, s), "forward_svm");
  uint64_t p = h.push(Side::pvm, c.vm_synack(Vm::pvm));
  EXPECT_EQ(describe(h, p), "none") << "SYN is an event to compare";
  h.advance_by(kTimeout / 2);
  h.push(Side::svm, c.vm_synack(Vm::svm));
  EXPECT_EQ(describe(h, p), release(ReleaseReason::matched));
  EXPECT_GE(h.counters().events_compared, 1u);
  finish(h);
}

void check_translated_ack(bool ipv6) {
  EngineHarness h;
  Conversation::Params p;
  p.timestamps = true;
  if (ipv6) {
    p.client = ip6_doc(0xc);
    p.server = ip6_doc(0x5);
    p.vlans = {100, 200};
  }
  p.pvm_isn = 0xfffff000u;
  p.svm_isn = 0x00001000u;
  Conversation c(p);
  open_passive(h, c);
  h.push(Side::pvm, c.vm_stream(Vm::pvm, 0, 1000));
  h.push(Side::svm, c.vm_stream(Vm::svm, 0, 1000));
  h.push(Side::pvm, c.vm_stream(Vm::pvm, 2000, 1000));
  h.push(Side::svm, c.vm_stream(Vm::svm, 2000, 1000));
  // The client acks 1000 and SACKs [2000,3000) and a second block, echoing the PVM's TSval.
  uint32_t pvm_tsval = c.last_tsval(Vm::pvm);
  uint64_t a = h.push(Side::ingress, c.client_ack(0, 1000, {{2000, 3000}, {3000, 3100}}));
  const ActionRecord* f = h.action_of(a);
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(f->kind, ActionKind::forward_svm);
  Decoded d = decode(f->bytes);
  ASSERT_TRUE(d.ok);
  EXPECT_EQ(d.ack, c.vm_seq(Vm::svm, 1000));
  ASSERT_EQ(d.sack.size(), 2u);
  EXPECT_EQ(d.sack[0].first, c.vm_seq(Vm::svm, 2000));
  EXPECT_EQ(d.sack[0].second, c.vm_seq(Vm::svm, 3000));
  EXPECT_EQ(d.sack[1].first, c.vm_seq(Vm::svm, 3000));
  EXPECT_EQ(d.sack[1].second, c.vm_seq(Vm::svm, 3100));
  ASSERT_TRUE(d.timestamp.has_value());
  EXPECT_EQ(d.timestamp->second, pvm_tsval + (p.svm_ts - p.pvm_ts)) << "TSecr not translated";
  EXPECT_EQ(d.timestamp->first, c.last_client_tsval()) << "TSval must stay the client's";
  EXPECT_EQ(d.seq, c.client_seq(0)) << "client seq must not change";
  EXPECT_TRUE(verify_l4_checksum(f->bytes)) << "checksum not updated";
  EXPECT_GE(h.counters().acks_translated, 1u);
  EXPECT_GE(h.counters().sacks_translated, 2u);
  EXPECT_GE(h.counters().tsecr_translated, 1u);
  // Client data carries its ack the same way.
  Bytes req = bytes_of("GET / HTTP/1.1\r\n\r\n");
  uint64_t cd = h.push(Side::ingress, c.client_data(0, req, 3000));
  const ActionRecord* g = h.action_of(cd);
  ASSERT_NE(g, nullptr);
  Decoded e = decode(g->bytes);
  EXPECT_EQ(e.ack, c.vm_seq(Vm::svm, 3000));
  EXPECT_TRUE(verify_l4_checksum(g->bytes));
  EXPECT_EQ(requests(h), 0u);
  finish(h);
}

TEST(EngineTcp, ClientAckSackTsecrTranslatedIpv4) { check_translated_ack(false); }
TEST(EngineTcp, ClientAckSackTsecrTranslatedIpv6QinQ) { check_translated_ack(true); }

TEST(EngineTcp, TimestampTranslationOff) {
  EngineHarness h(EngineHarness::settings_with({{"translate_timestamps", "false"}}));
  Conversation::Params p;
  p.timestamps = true;
  Conversation c(p);
  open_passive(h, c);
  uint32_t pvm_tsval = c.last_tsval(Vm::pvm);
  uint64_t a = h.push(Side::ingress, c.client_ack(0, 0));
  Decoded d = decode(h.action_of(a)->bytes);
  ASSERT_TRUE(d.timestamp.has_value());
  EXPECT_EQ(d.timestamp->second, pvm_tsval);
  EXPECT_EQ(d.ack, c.vm_seq(Vm::svm, 0));
  EXPECT_TRUE(verify_l4_checksum(h.action_of(a)->bytes));
  finish(h);
}

TEST(EngineTcp, ClientAckBeforeSvmSynAckHeldThenTranslated) {
  EngineHarness h;
  Conversation c({});
  h.push(Side::ingress, c.client_syn());
  uint64_t p = h.push(Side::pvm, c.vm_synack(Vm::pvm));
  uint64_t a = h.push(Side::ingress, c.client_handshake_ack());
  EXPECT_EQ(describe(h, a), "none") << "sent to the SVM before its ISN was known";
  EXPECT_EQ(h.counters().held_ingress, 1u);
  EXPECT_EQ(h.counters().ingress_waited_isn, 1u);
  h.advance_by(5 * kMs);
  h.push(Side::svm, c.vm_synack(Vm::svm));
  EXPECT_EQ(describe(h, p), release(ReleaseReason::matched));
  ASSERT_EQ(describe(h, a), "forward_svm");
  Decoded d = decode(h.action_of(a)->bytes);
  EXPECT_EQ(d.ack, c.vm_isn(Vm::svm) + 1);
  EXPECT_TRUE(verify_l4_checksum(h.action_of(a)->bytes));
  EXPECT_EQ(h.counters().held_ingress, 0u);
  finish(h);
}

TEST(EngineTcp, ClientAckBeforeSvmSynAckSentUntranslatedWhenNotHolding) {
  EngineHarness h(EngineHarness::settings_with({{"hold_svm_ingress", "false"}}));
  Conversation c({});
  h.push(Side::ingress, c.client_syn());
  h.push(Side::pvm, c.vm_synack(Vm::pvm));
  uint64_t a = h.push(Side::ingress, c.client_handshake_ack());
  EXPECT_EQ(describe(h, a), "forward_svm");
  EXPECT_EQ(h.counters().ingress_untranslated, 1u);
  EXPECT_TRUE(verify_l4_checksum(h.action_of(a)->bytes));
  h.push(Side::svm, c.vm_synack(Vm::svm));
  finish(h);
}

// ---------------------------------------------------------------------------------------
// FIN and RST are events compared at their stream position.

TEST(EngineTcp, FinMatchedAsEvent) {
  EngineHarness h;
  Conversation c({});
  open_passive(h, c);
  h.push(Side::pvm, c.vm_stream(Vm::pvm, 0, 100));
  h.push(Side::svm, c.vm_stream(Vm::svm, 0, 100));
  uint64_t events = h.counters().events_compared;
  uint64_t pf = h.push(Side::pvm, c.vm_fin(Vm::pvm, 100));
  EXPECT_EQ(describe(h, pf), "none") << "FIN released before the SVM's";
  uint64_t sf = h.push(Side::svm, c.vm_fin(Vm::svm, 100));
  EXPECT_EQ(describe(h, pf), release(ReleaseReason::matched));
  EXPECT_EQ(describe(h, sf), "free");
  EXPECT_GT(h.counters().events_compared, events);
  EXPECT_EQ(requests(h), 0u);
  finish(h);
}

TEST(EngineTcp, FinWithDataMatchesSeparateDataAndFin) {
  EngineHarness h;
  Conversation c({});
  open_passive(h, c);
  Bytes b = stream_bytes(1, 0, 100);
  uint64_t pf = h.push(Side::pvm, build_frame(c.vm_spec(Vm::pvm, kTcpAck | kTcpFin, 0, 0, b)));
  h.push(Side::svm, c.vm_stream(Vm::svm, 0, 100));
  EXPECT_EQ(describe(h, pf), "none") << "FIN not yet matched";
  h.push(Side::svm, c.vm_fin(Vm::svm, 100));
  EXPECT_EQ(describe(h, pf), release(ReleaseReason::matched));
  EXPECT_EQ(requests(h), 0u);
  finish(h);
}

TEST(EngineTcp, FinAgainstRstIsEventMismatch) {
  EngineHarness h;
  h.set_auto_checkpoint(false);
  Conversation c({});
  open_passive(h, c);
  uint64_t pf = h.push(Side::pvm, c.vm_fin(Vm::pvm, 0));
  h.push(Side::svm, c.vm_rst(Vm::svm, 0));
  ASSERT_EQ(h.checkpoints().size(), 1u);
  EXPECT_EQ(h.checkpoints()[0].req.reason, CheckpointReason::event_mismatch);
  EXPECT_EQ(describe(h, pf), "none");
  h.complete_checkpoint();
  EXPECT_EQ(describe(h, pf), release(ReleaseReason::checkpoint));
  finish(h);
}

TEST(EngineTcp, FinAgainstMoreDataIsMismatch) {
  EngineHarness h;
  h.set_auto_checkpoint(false);
  Conversation c({});
  open_passive(h, c);
  uint64_t pf = h.push(Side::pvm, c.vm_fin(Vm::pvm, 0));
  h.push(Side::svm, c.vm_stream(Vm::svm, 0, 10));
  ASSERT_EQ(h.checkpoints().size(), 1u);
  CheckpointReason r = h.checkpoints()[0].req.reason;
  EXPECT_TRUE(r == CheckpointReason::event_mismatch || r == CheckpointReason::payload_mismatch)
      << to_string(r);
  EXPECT_EQ(describe(h, pf), "none");
  finish(h);
}

TEST(EngineTcp, RstWithoutSvmCounterpartWaitsForDeadline) {
  EngineHarness h;
  h.set_auto_checkpoint(false);
  Conversation c({});
  open_passive(h, c);
  uint64_t pr = h.push(Side::pvm, c.vm_rst(Vm::pvm, 0));
  EXPECT_EQ(describe(h, pr), "none") << "RST is an event: compared, not released at once";
  h.advance_by(kTimeout + kMs);
  ASSERT_EQ(h.checkpoints().size(), 1u);
  EXPECT_EQ(h.checkpoints()[0].req.reason, CheckpointReason::deadline);
  h.complete_checkpoint();
  EXPECT_EQ(describe(h, pr), release(ReleaseReason::checkpoint));
  finish(h);
}

TEST(EngineTcp, RstMatchedAsEvent) {
  EngineHarness h;
  Conversation c({});
  open_passive(h, c);
  uint64_t pr = h.push(Side::pvm, c.vm_rst(Vm::pvm, 0));
  h.push(Side::svm, c.vm_rst(Vm::svm, 0));
  EXPECT_EQ(describe(h, pr), release(ReleaseReason::matched));
  EXPECT_EQ(requests(h), 0u);
  finish(h);
}

// ---------------------------------------------------------------------------------------
// Capacities: a full table or held pool requests a checkpoint and loses nothing.

TEST(EngineCapacity, TableFullRequestsCheckpoint) {
  EngineHarness h(EngineHarness::settings_with({{"max_connections", "16"}}));
  h.set_auto_checkpoint(false);
  std::vector<uint64_t> hs;
  for (uint16_t i = 0; i < 16; ++i) hs.push_back(h.push(Side::pvm, udp(30000 + i, "held")));
  EXPECT_EQ(h.checkpoints().size(), 0u);
  EXPECT_EQ(h.counters().conns_active, 16u);
  hs.push_back(h.push(Side::pvm, udp(30016, "one flow too many")));
  ASSERT_EQ(h.checkpoints().size(), 1u);
  EXPECT_EQ(h.checkpoints()[0].req.reason, CheckpointReason::table_full);
  EXPECT_GE(h.counters().conns_table_full, 1u);
  EXPECT_EQ(h.released_handles().size(), 0u) << "uncompared output released";
  EXPECT_EQ(h.counters().pvm_dropped_total(), 0u);
  EXPECT_EQ(h.counters().conns_active, 16u) << "table wiped";
  EXPECT_EQ(h.conservation(), "");
  h.complete_checkpoint();
  EXPECT_EQ(h.released_handles(Side::pvm).size(), 17u);
  // After the checkpoint the flows hold nothing and can be evicted: new flows work.
  uint64_t p = h.push(Side::pvm, udp(31000, "after"));
  uint64_t s = h.push(Side::svm, udp(31000, "after"));
  EXPECT_EQ(describe(h, p), release(ReleaseReason::matched));
  EXPECT_EQ(describe(h, s), "free");
  finish(h);
}

TEST(EngineCapacity, HeldCapacityRequestsCheckpoint) {
  EngineHarness h(EngineHarness::settings_with({{"max_held_frames", "64"}}));
  h.set_auto_checkpoint(false);
  Conversation c({});
  open_passive(h, c);
  std::vector<uint64_t> hs;
  for (uint64_t i = 0; i < 64; ++i) hs.push_back(h.push(Side::pvm, c.vm_stream(Vm::pvm, i * 10, 10)));
  ASSERT_GE(h.checkpoints().size(), 1u) << "held capacity reached without a request";
  EXPECT_EQ(h.checkpoints()[0].req.reason, CheckpointReason::held_full);
  for (uint64_t hd : hs) EXPECT_EQ(describe(h, hd), "none") << "handle " << hd;
  // More output while the request is outstanding: never dropped.
  for (uint64_t i = 64; i < 70; ++i) hs.push_back(h.push(Side::pvm, c.vm_stream(Vm::pvm, i * 10, 10)));
  EXPECT_EQ(h.counters().pvm_dropped_total(), 0u);
  EXPECT_EQ(h.conservation(), "");
  h.complete_checkpoint();
  for (uint64_t hd : hs) EXPECT_EQ(describe(h, hd).rfind("release/", 0), 0u) << "handle " << hd;
  finish(h);
}

// ---------------------------------------------------------------------------------------
// Malformed frames, fragments, policies, VLANs.

Bytes truncated_ipv4() {
  Bytes f = udp(7000, "will be cut");
  f.resize(14 + 10);  // half an IPv4 header
  return f;
}

TEST(EngineInput, MalformedPvmFrameDroppedByDefault) {
  EngineHarness h;
  uint64_t p = h.push(Side::pvm, truncated_ipv4());
  EXPECT_EQ(describe(h, p), drop(DropReason::malformed));
  EXPECT_EQ(h.counters().pvm_dropped[static_cast<size_t>(DropReason::malformed)], 1u);
  EXPECT_EQ(h.counters().parse_pvm[static_cast<size_t>(ParseStatus::truncated_l3)], 1u);
  uint64_t s = h.push(Side::svm, truncated_ipv4());
  EXPECT_TRUE(svm_consumed(h, s)) << describe(h, s);
  uint64_t i = h.push(Side::ingress, truncated_ipv4());
  EXPECT_TRUE(h.has_action(i));
  EXPECT_EQ(requests(h), 0u);
  finish(h);
}

TEST(EngineInput, MalformedPvmFramePassedByPolicy) {
  EngineHarness h(EngineHarness::settings_with({{"malformed_policy", "pass"}}));
  uint64_t p = h.push(Side::pvm, truncated_ipv4());
  EXPECT_EQ(describe(h, p), release(ReleaseReason::malformed_pass));
  EXPECT_EQ(h.counters().released[static_cast<size_t>(ReleaseReason::malformed_pass)], 1u);
  finish(h);
}

TEST(EngineInput, NonIpDropPolicy) {
  EngineHarness h(EngineHarness::settings_with({{"non_ip_policy", "drop"}}));
  FrameSpec lldp;
  lldp.raw_ethertype = 0x88cc;
  lldp.payload = bytes_of("lldp tlvs");
  lldp.pad_to_min = true;
  uint64_t p = h.push(Side::pvm, build_frame(lldp));
  EXPECT_EQ(describe(h, p), drop(DropReason::non_ip));
  finish(h);
}

TEST(EngineInput, FragmentedDatagramsComparedAfterReassembly) {
  EngineHarness h;
  for (bool v6 : {false, true}) {
    SCOPED_TRACE(v6 ? "IPv6" : "IPv4");
    FrameSpec s = v6 ? udp_spec(ip6_doc(5), ip6_doc(6), 7000, 5000, stream_bytes(9, 0, 3000))
                     : udp_spec(vm_ip(), client_ip(), 7000, 5000, stream_bytes(9, 0, 3000));
    s.ip_id = 77;
    std::vector<Bytes> pf = fragment_frame(build_frame(s), 1000);
    s.ip_id = 1234;  // the SVM numbers its datagrams differently
    std::vector<Bytes> sf = fragment_frame(build_frame(s), 1400, 0xabcdef);
    ASSERT_EQ(pf.size(), 4u);
    std::vector<uint64_t> ph;
    for (const Bytes& f : pf) ph.push_back(h.push(Side::pvm, f));
    for (uint64_t x : ph) EXPECT_EQ(describe(h, x), "none");
    for (const Bytes& f : sf) h.push(Side::svm, f);
    for (uint64_t x : ph) EXPECT_EQ(describe(h, x), release(ReleaseReason::matched));
    std::vector<uint64_t> rel = h.released_handles(Side::pvm);
    ASSERT_GE(rel.size(), 4u);
    EXPECT_TRUE(std::equal(ph.begin(), ph.end(), rel.end() - 4)) << "fragments out of order";
  }
  EXPECT_EQ(h.counters().datagrams_matched, 2u);
  EXPECT_EQ(requests(h), 0u);
  finish(h);
}

TEST(EngineInput, FragmentedDatagramsDifferingRequestCheckpoint) {
  EngineHarness h(EngineHarness::settings_with({{"datagram_reorder_slack", "0"}}));
  h.set_auto_checkpoint(false);
  FrameSpec s = udp_spec(vm_ip(), client_ip(), 7000, 5000, stream_bytes(9, 0, 3000));
  std::vector<uint64_t> ph;
  for (const Bytes& f : fragment_frame(build_frame(s), 1000)) ph.push_back(h.push(Side::pvm, f));
  s.payload[2500] ^= 1;
  for (const Bytes& f : fragment_frame(build_frame(s), 1000)) h.push(Side::svm, f);
  ASSERT_EQ(h.checkpoints().size(), 1u);
  EXPECT_EQ(h.checkpoints()[0].req.reason, CheckpointReason::datagram_mismatch);
  for (uint64_t x : ph) EXPECT_EQ(describe(h, x), "none");
  h.complete_checkpoint();
  for (uint64_t x : ph) EXPECT_EQ(describe(h, x), release(ReleaseReason::checkpoint));
  finish(h);
}

TEST(EngineInput, IncompleteFragmentsTimeOut) {
  EngineHarness h;
  FrameSpec s = udp_spec(vm_ip(), client_ip(), 7000, 5000, stream_bytes(9, 0, 3000));
  std::vector<Bytes> pf = fragment_frame(build_frame(s), 1000);
  uint64_t first = h.push(Side::svm, pf[0]);  // an SVM fragment whose datagram never completes
  h.advance_by(2001 * kMs);  // frag_timeout_ms default 2000
  EXPECT_TRUE(h.has_action(first)) << "fragment kept past frag_timeout";
  finish(h);
}

TEST(EngineInput, PolicyPassAndDrop) {
  EngineHarness h(EngineHarness::settings_with({{"policy_rules", "udp:53=pass;udp:9999=drop"}}));
  uint64_t pass = h.push(Side::pvm, udp(53, "dns answer"));
  EXPECT_EQ(describe(h, pass), release(ReleaseReason::policy_pass));
  uint64_t sp = h.push(Side::svm, udp(53, "dns answer, other"));
  EXPECT_TRUE(svm_consumed(h, sp)) << describe(h, sp);
  uint64_t d = h.push(Side::pvm, udp(9999, "junk"));
  EXPECT_EQ(describe(h, d), drop(DropReason::policy_drop));
  uint64_t cmp = h.push(Side::pvm, udp(7000, "compared"));
  EXPECT_EQ(describe(h, cmp), "none");
  EXPECT_EQ(requests(h), 0u);
  finish(h);
}

TEST(EngineInput, BadPolicyRuleRejected) {
  // policy_rules is text validated by its consumer: either the settings layer or
  // Engine::create must refuse a rule that does not parse, with an error.
  Settings s;
  std::string err;
  if (!Settings::defaults().with("policy_rules", "udp:53=sideways", s, err)) {
    EXPECT_FALSE(err.empty());
    return;
  }
  EXPECT_EQ(Engine::create(s, err), nullptr);
  EXPECT_FALSE(err.empty());
}

TEST(EngineInput, VlanTaggedFlowsCompared) {
  EngineHarness h;
  Conversation::Params p;
  p.vlans = {100, 200};
  Conversation c(p);
  open_passive(h, c);
  uint64_t pv = h.push(Side::pvm, c.vm_stream(Vm::pvm, 0, 200));
  h.push(Side::svm, c.vm_stream(Vm::svm, 0, 200));
  EXPECT_EQ(describe(h, pv), release(ReleaseReason::matched));
  // The same addresses on another VLAN are another flow.
  Conversation::Params q = p;
  q.vlans = {101};
  Conversation c2(q);
  open_passive(h, c2);
  EXPECT_EQ(h.counters().conns_active, 2u);
  EXPECT_EQ(requests(h), 0u);
  finish(h);
}

TEST(EngineInput, IngressUdpForwardedUnchanged) {
  EngineHarness h;
  Bytes f = build_frame(udp_spec(client_ip(), vm_ip(), 5000, 7000, bytes_of("query")));
  uint64_t i = h.push(Side::ingress, f);
  EXPECT_TRUE(h.last_push_result()) << "PVM copy must be sent";
  ASSERT_EQ(describe(h, i), "forward_svm");
  EXPECT_EQ(h.action_of(i)->bytes, f);
  finish(h);
}

// ---------------------------------------------------------------------------------------
// Datagram slack, reorder window, connection lifetime.

TEST(EngineDatagram, ReorderedWithinSlackReleasedInPvmOrder) {
  EngineHarness h;  // datagram_reorder_slack = 2
  uint64_t v1 = h.push(Side::pvm, udp(7000, "v1"));
  uint64_t v2 = h.push(Side::pvm, udp(7000, "v2"));
  uint64_t v3 = h.push(Side::pvm, udp(7000, "v3"));
  h.push(Side::svm, udp(7000, "v2"));
  EXPECT_EQ(describe(h, v2), "none") << "released before v1";
  h.push(Side::svm, udp(7000, "v3"));
  h.push(Side::svm, udp(7000, "v1"));
  EXPECT_EQ((h.released_handles(Side::pvm)), (std::vector<uint64_t>{v1, v2, v3}));
  EXPECT_EQ(h.counters().checkpoint_triggers, 0u);
  finish(h);
}

TEST(EngineDatagram, MismatchDeclaredPastSlackBeforeDeadline) {
  EngineHarness h;  // datagram_reorder_slack = 2
  h.set_auto_checkpoint(false);
  for (int i = 0; i < 2; ++i) {
    h.push(Side::pvm, udp(7000, "pvm " + std::to_string(i)));
    h.push(Side::svm, udp(7000, "svm " + std::to_string(i)));
  }
  EXPECT_EQ(h.checkpoints().size(), 0u) << "two unmatched datagrams per side are tolerated";
  h.push(Side::pvm, udp(7000, "pvm 2"));
  h.push(Side::svm, udp(7000, "svm 2"));
  ASSERT_EQ(h.checkpoints().size(), 1u) << "three differing pairs and no checkpoint";
  EXPECT_EQ(h.checkpoints()[0].req.reason, CheckpointReason::datagram_mismatch);
  finish(h);
}

TEST(EngineDatagram, IcmpEchoCompared) {
  EngineHarness h;
  FrameSpec e;
  e.src = vm_ip();
  e.dst = client_ip();
  e.proto = kProtoIcmp;
  e.icmp_type = 0;  // echo reply
  e.icmp_id = 0x1234;
  e.icmp_seq = 1;
  e.payload = bytes_of("ping payload");
  uint64_t p = h.push(Side::pvm, build_frame(e));
  EXPECT_EQ(describe(h, p), "none");
  e.ip_id = 99;
  uint64_t s = h.push(Side::svm, build_frame(e));
  EXPECT_EQ(describe(h, p), release(ReleaseReason::matched));
  EXPECT_EQ(describe(h, s), "free");
  FrameSpec ns = udp_spec(ip6_doc(5), ip6_doc(6), 0, 0, {});
  ns.proto = kProtoIcmpv6;
  ns.icmp_type = 135;  // neighbour solicitation: nd_policy=pass
  ns.ttl = 255;
  ns.payload = Bytes(16, 0);
  uint64_t n = h.push(Side::pvm, build_frame(ns));
  EXPECT_EQ(describe(h, n).rfind("release/", 0), 0u) << describe(h, n);
  finish(h);
}

TEST(EngineTcp, ReorderWindowFullRequestsCheckpoint) {
  EngineHarness h(EngineHarness::settings_with({{"reorder_window", "4"}}));
  h.set_auto_checkpoint(false);
  Conversation c({});
  open_passive(h, c);
  std::vector<uint64_t> hs;
  for (uint64_t i = 0; i < 4; ++i) hs.push_back(h.push(Side::pvm, c.vm_stream(Vm::pvm, i * 10, 10)));
  EXPECT_EQ(h.checkpoints().size(), 0u);
  hs.push_back(h.push(Side::pvm, c.vm_stream(Vm::pvm, 40, 10)));
  ASSERT_EQ(h.checkpoints().size(), 1u) << "five held segments with reorder_window=4";
  EXPECT_EQ(h.checkpoints()[0].req.reason, CheckpointReason::window_full);
  EXPECT_EQ(h.counters().pvm_dropped_total(), 0u);
  h.complete_checkpoint();
  for (uint64_t x : hs) EXPECT_EQ(describe(h, x), release(ReleaseReason::checkpoint));
  finish(h);
}

TEST(EngineConnections, ClosedAndIdleConnectionsExpire) {
  EngineHarness h(EngineHarness::settings_with({{"idle_timeout_ms", "1000"}}));
  Conversation c({});
  open_passive(h, c);
  h.push(Side::pvm, c.vm_stream(Vm::pvm, 0, 10));
  h.push(Side::svm, c.vm_stream(Vm::svm, 0, 10));
  h.push(Side::pvm, c.vm_fin(Vm::pvm, 10));
  h.push(Side::svm, c.vm_fin(Vm::svm, 10));
  h.push(Side::ingress, c.client_fin(0, 11));
  h.push(Side::pvm, udp(7000, "d"));
  h.push(Side::svm, udp(7000, "d"));
  EXPECT_EQ(h.counters().conns_active, 2u);
  h.advance_by(2500 * kMs);  // past closed_linger_ms (2000) and idle_timeout_ms (1000)
  EXPECT_EQ(h.counters().conns_active, 0u);
  EXPECT_EQ(h.counters().conns_expired, 2u);
  finish(h);
}

TEST(EngineConnections, IdleFlowsEvictedWhenTableFull) {
  EngineHarness h(EngineHarness::settings_with({{"max_connections", "16"}}));
  for (uint16_t i = 0; i < 40; ++i) {
    uint64_t p = h.push(Side::pvm, udp(static_cast<uint16_t>(30000 + i), "x"));
    h.push(Side::svm, udp(static_cast<uint16_t>(30000 + i), "x"));
    EXPECT_EQ(describe(h, p), release(ReleaseReason::matched)) << "flow " << i;
  }
  EXPECT_LE(h.counters().conns_active, 16u);
  EXPECT_EQ(h.counters().checkpoint_requests, 0u) << "flows holding nothing must be evicted";
  finish(h);
}

// After a checkpoint the SVM is replaced by a copy of the PVM, but frames the old SVM
// sent before it (numbered in the old SVM space: here 400,000 ahead of the PVM's) can
// still arrive. They must not be taken for new output.
TEST(EngineTcp, LateSvmFramesFromBeforeCheckpointDiscarded) {
  EngineHarness h;
  h.set_auto_checkpoint(false);
  Conversation c({});
  open_passive(h, c);
  uint64_t p = h.push(Side::pvm, c.vm_stream(Vm::pvm, 0, 100));
  h.advance_by(101 * kMs);  // the SVM lags past compare_timeout
  ASSERT_EQ(h.checkpoints().size(), 1u);
  h.complete_checkpoint();
  EXPECT_EQ(describe(h, p), release(ReleaseReason::checkpoint));
  // The old SVM's output, numbered in its own space, arrives after the checkpoint.
  uint64_t late = h.push(Side::svm, c.vm_stream(Vm::svm, 0, 100));
  EXPECT_TRUE(svm_consumed(h, late)) << describe(h, late);
  c.rebase_svm();
  uint64_t p2 = h.push(Side::pvm, c.vm_stream(Vm::pvm, 100, 100));
  uint64_t s2 = h.push(Side::svm, c.vm_stream(Vm::svm, 100, 100));
  uint64_t s_old = h.push(Side::svm, c.vm_stream(Vm::svm, 0, 100));  // at or below: discarded
  EXPECT_EQ(describe(h, p2), release(ReleaseReason::matched));
  EXPECT_EQ(describe(h, s2), "free");
  EXPECT_TRUE(svm_consumed(h, s_old)) << describe(h, s_old);
  h.advance_by(300 * kMs);
  EXPECT_EQ(h.checkpoints().size(), 1u) << "late SVM frames caused another checkpoint";
  finish(h);
}

TEST(EngineConnections, PortReuseLearnsNewIsns) {
  EngineHarness h;
  Conversation c({});
  open_passive(h, c);
  h.push(Side::pvm, c.vm_rst(Vm::pvm, 0));
  h.push(Side::svm, c.vm_rst(Vm::svm, 0));
  h.advance_by(10 * kMs);
  Conversation::Params p = c.params();
  p.client_isn += 100000;
  p.pvm_isn = 0x0badf00du;
  p.svm_isn = 0xfeedf00du;
  Conversation d(p);
  Opened o = open_passive(h, d);
  EXPECT_EQ(describe(h, o.pvm_syn), release(ReleaseReason::matched));
  EXPECT_EQ(decode(h.action_of(o.client_ack)->bytes).ack, p.svm_isn + 1);
  uint64_t x = h.push(Side::pvm, d.vm_stream(Vm::pvm, 0, 100));
  h.push(Side::svm, d.vm_stream(Vm::svm, 0, 100));
  EXPECT_EQ(describe(h, x), release(ReleaseReason::matched));
  EXPECT_EQ(requests(h), 0u);
  finish(h);
}

}  // namespace
}  // namespace lockstep::test
