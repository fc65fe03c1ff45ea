// What a checkpoint request says about its divergence (compare/explain.cpp): the stream
// offset of the first differing byte, both VMs' bytes around it, the frame's arrival,
// and per reason the side that waited or the SVM's ACK lag.
#include <gtest/gtest.h>

#include <string>

#include "tests/support/engine_harness.h"

namespace lockstep::test {
namespace {

constexpr uint64_t kMs = 1'000'000;

std::vector<uint8_t> text(const std::string& s) { return {s.begin(), s.end()}; }

std::string hex_of(const std::string& s) {
  return to_hex(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

const CheckpointRequest& only_request(const EngineHarness& h) {
  EXPECT_EQ(h.checkpoints().size(), 1u);
  return h.checkpoints().front().req;
}

TEST(EngineExplain, PayloadMismatchNamesTheFirstDifferingByteAndShowsBothSides) {
  EngineHarness h;
  h.set_auto_checkpoint(false);
  Conversation c({});
  open_passive(h, c);
  const std::string head = "HTTP/1.1 200 OK\r\n";
  h.push(Side::pvm, c.vm_data(Vm::pvm, 0, text(head)));
  h.push(Side::svm, c.vm_data(Vm::svm, 0, text(head)));
  const std::string pvm = "Date: Sun, 06 Dec 2026 10:00:01 GMT\r\n";
  const std::string svm = "Date: Sun, 06 Dec 2026 10:00:02 GMT\r\n";
  const uint64_t arrival = h.now() + 3 * kMs;
  h.push_at(h.now() + kMs, Side::pvm, c.vm_data(Vm::pvm, head.size(), text(pvm)));
  h.push_at(arrival, Side::svm, c.vm_data(Vm::svm, head.size(), text(svm)));
  const CheckpointRequest& r = only_request(h);
  ASSERT_EQ(r.reason, CheckpointReason::payload_mismatch);
  const size_t at = pvm.find("01 GMT") + 1;  // the seconds' last digit
  const DivergenceDetail& d = r.detail;
  ASSERT_TRUE(d.has_offset);
  EXPECT_EQ(d.stream_offset, head.size() + at);
  ASSERT_TRUE(d.has_seq);
  EXPECT_EQ(d.pvm_seq, c.vm_seq(Vm::pvm, head.size() + at));
  EXPECT_EQ(d.shown_before, kExplainBefore);
  const size_t from = at - kExplainBefore;
  EXPECT_EQ(to_hex(d.pvm.data(), d.pvm_len), hex_of(pvm.substr(from, kExplainBytes)));
  EXPECT_EQ(to_hex(d.svm.data(), d.svm_len), hex_of(svm.substr(from, kExplainBytes)));
  EXPECT_EQ(r.frame_ns, arrival) << "the later of the two segments showed it";
  EXPECT_EQ(std::string(d.line.begin(), d.line.begin() + d.line_len), pvm.substr(0, at))
      << "the line up to the difference names the field";
  h.complete_checkpoint();
  h.flush_all();
}

TEST(EngineExplain, DifferenceAtTheSegmentStartShowsNothingBefore) {
  EngineHarness h;
  h.set_auto_checkpoint(false);
  Conversation c({});
  open_passive(h, c);
  h.push(Side::pvm, c.vm_data(Vm::pvm, 0, text("abc")));
  h.push(Side::svm, c.vm_data(Vm::svm, 0, text("xbc")));
  const DivergenceDetail& d = only_request(h).detail;
  EXPECT_EQ(d.stream_offset, 0u);
  EXPECT_EQ(d.shown_before, 0u);
  EXPECT_EQ(to_hex(d.pvm.data(), d.pvm_len), hex_of("abc"));
  EXPECT_EQ(to_hex(d.svm.data(), d.svm_len), hex_of("xbc"));
  h.complete_checkpoint();
  h.flush_all();
}

TEST(EngineExplain, EventMismatchShowsTheDataSideOnly) {
  EngineHarness h;
  h.set_auto_checkpoint(false);
  Conversation c({});
  open_passive(h, c);
  h.push(Side::pvm, c.vm_data(Vm::pvm, 0, text("more")));
  h.push(Side::svm, c.vm_fin(Vm::svm, 0));
  const CheckpointRequest& r = only_request(h);
  EXPECT_EQ(r.reason, CheckpointReason::event_mismatch);
  EXPECT_EQ(r.detail.stream_offset, 0u);
  EXPECT_EQ(to_hex(r.detail.pvm.data(), r.detail.pvm_len), hex_of("more"));
  EXPECT_EQ(r.detail.svm_len, 0u) << "a FIN has no bytes";
  h.complete_checkpoint();
  h.flush_all();
}

TEST(EngineExplain, DeadlineNamesTheWaitingFrameAndItsOffset) {
  EngineHarness h(EngineHarness::settings_with({{"compare_timeout_us", "50000"}}));
  h.set_auto_checkpoint(false);
  Conversation c({});
  open_passive(h, c);
  h.push(Side::pvm, c.vm_stream(Vm::pvm, 0, 100));
  h.push(Side::svm, c.vm_stream(Vm::svm, 0, 100));
  const uint64_t arrival = h.now() + kMs;
  h.push_at(arrival, Side::pvm, c.vm_stream(Vm::pvm, 100, 50));
  h.advance_by(200 * kMs);
  const CheckpointRequest& r = only_request(h);
  ASSERT_EQ(r.reason, CheckpointReason::deadline);
  EXPECT_EQ(r.frame_ns, arrival);
  EXPECT_EQ(r.detail.waiting, Side::pvm);
  EXPECT_TRUE(r.detail.has_offset);
  EXPECT_EQ(r.detail.stream_offset, 100u);
  EXPECT_EQ(r.detail.pvm_len + r.detail.svm_len, 0) << "nothing to compare yet";
  h.complete_checkpoint();
  h.flush_all();
}

TEST(EngineExplain, AckDivergenceCarriesTheSvmLag) {
  EngineHarness h(EngineHarness::settings_with({{"ack_timeout_us", "50000"}}));
  h.set_auto_checkpoint(false);
  Conversation c({});
  open_passive(h, c);
  h.push(Side::svm, c.vm_pure_ack(Vm::svm, 0));
  // The client uploads 3000 bytes; the SVM acknowledges 1000 of them, the PVM all.
  FrameSpec ps = c.vm_spec(Vm::pvm, kTcpAck, 0, 3000);
  FrameSpec ss = c.vm_spec(Vm::svm, kTcpAck, 0, 1000);
  h.push(Side::svm, build_frame(ss));
  h.push(Side::pvm, build_frame(ps));
  h.advance_by(100 * kMs);
  const CheckpointRequest& r = only_request(h);
  ASSERT_EQ(r.reason, CheckpointReason::ack_divergence);
  EXPECT_EQ(r.detail.ack_lag, 2000u);
  h.complete_checkpoint();
  h.flush_all();
}

TEST(EngineExplain, DatagramMismatchShowsThePayloads) {
  EngineHarness h(EngineHarness::settings_with({{"datagram_reorder_slack", "0"}}));
  h.set_auto_checkpoint(false);
  const IpAddr vm = ip4(192, 0, 2, 1), client = ip4(192, 0, 2, 10);
  h.push(Side::pvm, build_frame(udp_spec(vm, client, 53, 40000, text("answer id=1234 ttl=60"))));
  h.push(Side::svm, build_frame(udp_spec(vm, client, 53, 40000, text("answer id=1234 ttl=59"))));
  const CheckpointRequest& r = only_request(h);
  ASSERT_EQ(r.reason, CheckpointReason::datagram_mismatch);
  EXPECT_EQ(r.detail.stream_offset, 19u);
  EXPECT_EQ(r.detail.shown_before, kExplainBefore);
  EXPECT_EQ(to_hex(r.detail.pvm.data(), r.detail.pvm_len), hex_of("234 ttl=60"));
  EXPECT_EQ(to_hex(r.detail.svm.data(), r.detail.svm_len), hex_of("234 ttl=59"));
  h.complete_checkpoint();
  h.flush_all();
}

TEST(EngineExplain, ConnectionsCountTheirDivergences) {
  EngineHarness h;
  Conversation c({});
  open_passive(h, c);
  h.push(Side::pvm, c.vm_data(Vm::pvm, 0, text("a")));
  h.push(Side::svm, c.vm_data(Vm::svm, 0, text("b")));
  h.run_until_idle();
  std::vector<ConnInfo> conns;
  h.engine().list_connections(conns, 10);
  ASSERT_EQ(conns.size(), 1u);
  EXPECT_EQ(conns[0].divergences, 1u);
  h.flush_all();
}

}  // namespace
}  // namespace lockstep::test
