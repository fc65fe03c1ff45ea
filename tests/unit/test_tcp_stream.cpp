// TCP stream compare as a part, driven the way the engine drives it (note_ack, the
// lockstep shortcut, then hold and output): ISN learning from the SYN/ACKs; bytes
// matched whatever the segmentation, SYN/FIN compared as events; a byte mismatch
// reported through the divergence door and nothing released; a PVM pure ACK waiting for
// the SVM's ACK; client ACKs translated into the SVM's sequence space; a rebase.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/support/frame_builder.h"
#include "tests/unit/parts_rig.h"

namespace lockstep::test {
namespace {

struct TcpRig : PartsRig {
  Conversation conv{{}};
  uint64_t next_handle = 1;
  uint32_t ci = kNil;

  // One VM frame through the stream part; returns its handle.
  uint64_t vm(Side side, Bytes& b, uint64_t now = 1000) {
    const uint64_t handle = next_handle++;
    const ParsedFrame f = parse(b);
    EXPECT_TRUE(f.is_tcp());
    ci = conns.lookup_or_create(flow_key_of(f), ConnKind::tcp, now, true);
    tcp.note_ack(conns[ci], side, b.data(), f);
    if (tcp.match_on_arrival(ci, side, handle, b.data(), f)) return handle;
    const uint32_t idx = held.alloc(side, handle, b.data(), static_cast<uint32_t>(b.size()), now);
    held[idx].conn = ci;
    tcp.output(ci, idx, f, now);
    return handle;
  }
  uint64_t client(Bytes& b, uint64_t now = 1000) {
    const uint64_t handle = next_handle++;
    const ParsedFrame f = parse(b);
    const uint32_t at = conns.lookup_or_create(flow_key_of(f), ConnKind::tcp, now, true);
    tcp.ingress(at, handle, b.data(), static_cast<uint32_t>(b.size()), f, now);
    return handle;
  }
  // "kind/reason" of each action, in order.
  std::vector<std::string> acts() {
    std::vector<std::string> v;
    for (const Action& a : drain()) {
      std::string s = std::to_string(a.handle) + ":";
      switch (a.kind) {
        case ActionKind::release:
          s += "release/" + std::string(to_string(static_cast<ReleaseReason>(a.reason)));
          break;
        case ActionKind::free: s += "free"; break;
        case ActionKind::drop:
          s += "drop/" + std::string(to_string(static_cast<DropReason>(a.reason)));
          break;
        case ActionKind::forward_svm: s += "forward"; break;
      }
      v.push_back(s);
    }
    return v;
  }
  void open() {
    syn_p = conv.vm_synack(Vm::pvm);
    syn_s = conv.vm_synack(Vm::svm);
    vm(Side::pvm, syn_p);
    vm(Side::svm, syn_s);
    acts();
  }
  Bytes syn_p, syn_s;
  std::vector<Bytes> keep = std::vector<Bytes>(64);
};

using Strings = std::vector<std::string>;

TEST(TcpStream, SynAcksTeachTheOffsetAndMatchAsEvents) {
  TcpRig r;
  r.syn_p = r.conv.vm_synack(Vm::pvm);
  r.syn_s = r.conv.vm_synack(Vm::svm);
  const uint64_t p = r.vm(Side::pvm, r.syn_p);
  EXPECT_TRUE(r.acts().empty()) << "the PVM's SYN/ACK waits for the SVM's";
  const uint64_t s = r.vm(Side::svm, r.syn_s);
  EXPECT_EQ(r.acts(),
            (Strings{std::to_string(p) + ":release/matched", std::to_string(s) + ":free"}));
  const Conn& c = r.conns[r.ci];
  EXPECT_TRUE(c.offset_known);
  EXPECT_EQ(c.seq_offset, r.conv.vm_isn(Vm::svm) - r.conv.vm_isn(Vm::pvm));
  EXPECT_EQ(r.c.isn_learned, 1u);
  EXPECT_EQ(r.c.events_compared, 1u);
  EXPECT_EQ(c.state, TcpState::syn);
}

TEST(TcpStream, BytesMatchWhateverTheSegmentation) {
  TcpRig r;
  r.open();
  Bytes& p = r.keep[0] = r.conv.vm_stream(Vm::pvm, 0, 100);
  Bytes& s1 = r.keep[1] = r.conv.vm_stream(Vm::svm, 0, 30);
  Bytes& s2 = r.keep[2] = r.conv.vm_stream(Vm::svm, 30, 70);
  const uint64_t hp = r.vm(Side::pvm, p);
  const uint64_t h1 = r.vm(Side::svm, s1);
  // 30 of 100 bytes matched: the SVM segment is consumed, the PVM segment waits.
  EXPECT_EQ(r.acts(), Strings{std::to_string(h1) + ":free"});
  const uint64_t h2 = r.vm(Side::svm, s2);
  EXPECT_EQ(r.acts(), (Strings{std::to_string(hp) + ":release/matched",
                               std::to_string(h2) + ":free"}));
  EXPECT_EQ(r.c.bytes_compared, 100u);
  EXPECT_EQ(r.conns[r.ci].cmp, SeqNum(r.conv.vm_seq(Vm::pvm, 100)));
  EXPECT_TRUE(r.divergences.empty());
  EXPECT_EQ(r.held.used(), 0u);
}

TEST(TcpStream, LockstepPairsNeverHold) {
  TcpRig r;
  r.open();
  for (uint64_t off = 0; off < 640; off += 64) {
    Bytes& p = r.keep[off / 64 * 2] = r.conv.vm_stream(Vm::pvm, off, 64);
    Bytes& s = r.keep[off / 64 * 2 + 1] = r.conv.vm_stream(Vm::svm, off, 64);
    const uint64_t hp = r.vm(Side::pvm, p);
    const uint64_t hs = r.vm(Side::svm, s);
    EXPECT_EQ(r.acts(), (Strings{std::to_string(hp) + ":release/matched",
                                 std::to_string(hs) + ":free"}));
  }
  EXPECT_EQ(r.c.bytes_compared, 640u);
}

TEST(TcpStream, MismatchGoesThroughTheDoorAndReleasesNothing) {
  TcpRig r;
  r.open();
  Bytes& p = r.keep[0] = r.conv.vm_stream(Vm::pvm, 0, 100, 1);
  Bytes& s = r.keep[1] = r.conv.vm_stream(Vm::svm, 0, 100, 2);
  r.vm(Side::pvm, p);
  r.vm(Side::svm, s);
  ASSERT_EQ(r.divergences.size(), 1u);
  EXPECT_EQ(r.divergences[0].ci, r.ci);
  EXPECT_EQ(r.divergences[0].reason, CheckpointReason::payload_mismatch);
  EXPECT_EQ(r.acts(), Strings{});
  EXPECT_EQ(r.conns[r.ci].pvm.count, 1u);
  // Diverged: later SVM output is moot, PVM output waits for the checkpoint.
  Bytes& p2 = r.keep[2] = r.conv.vm_stream(Vm::pvm, 100, 10);
  Bytes& s2 = r.keep[3] = r.conv.vm_stream(Vm::svm, 100, 10);
  r.vm(Side::pvm, p2);
  const uint64_t hs2 = r.vm(Side::svm, s2);
  EXPECT_EQ(r.acts(), Strings{std::to_string(hs2) + ":drop/svm_backlog_flushed"});
  EXPECT_EQ(r.conns[r.ci].pvm.count, 2u);
}

TEST(TcpStream, PvmAckWaitsForTheSvmsAck) {
  TcpRig r;
  r.open();
  Bytes& pa = r.keep[0] = r.conv.vm_pure_ack(Vm::pvm, 0);
  FrameSpec spec = r.conv.vm_spec(Vm::pvm, kTcpAck, 0, 500);
  r.keep[1] = build_frame(spec);
  spec = r.conv.vm_spec(Vm::svm, kTcpAck, 0, 500);
  r.keep[2] = build_frame(spec);
  r.vm(Side::pvm, pa);
  r.acts();  // acks the client's SYN: the SVM's SYN/ACK did too, it leaves
  const uint64_t hp = r.vm(Side::pvm, r.keep[1]);
  EXPECT_EQ(r.acts(), Strings{}) << "the SVM has not acknowledged client byte 500";
  EXPECT_EQ(r.conns[r.ci].pvm.count, 1u);
  const uint64_t hs = r.vm(Side::svm, r.keep[2]);
  EXPECT_EQ(r.acts(), (Strings{std::to_string(hs) + ":free",
                               std::to_string(hp) + ":release/no_payload"}));
}

TEST(TcpStream, ClientAcksTranslatedIntoTheSvmsSpace) {
  TcpRig r;
  r.open();
  Bytes a = r.conv.client_ack(0, 40);
  const uint64_t h = r.client(a);
  EXPECT_EQ(r.acts(), Strings{std::to_string(h) + ":forward"});
  const Decoded d = decode(a);
  EXPECT_EQ(d.ack, r.conv.vm_seq(Vm::svm, 40));
  EXPECT_TRUE(verify_l4_checksum(a));
  EXPECT_EQ(r.c.acks_translated, 1u);
}

TEST(TcpStream, RebaseComparesFromThePvmsPosition) {
  TcpRig r;
  r.open();
  Bytes& p = r.keep[0] = r.conv.vm_stream(Vm::pvm, 0, 100);
  r.vm(Side::pvm, p);
  Conn& c = r.conns[r.ci];
  // The checkpoint: the engine releases the held output, then rebases.
  r.out.release_frame(r.held.pop(c.pvm), ReleaseReason::checkpoint);
  r.acts();
  r.tcp.rebase(c);
  EXPECT_EQ(c.seq_offset, 0u);
  EXPECT_TRUE(c.stale_valid);
  EXPECT_EQ(c.cmp, SeqNum(r.conv.vm_seq(Vm::pvm, 100)));
  EXPECT_EQ(c.svm_isn, c.pvm_isn);
  // After the checkpoint the SVM numbers as the PVM does.
  r.conv.rebase_svm();
  Bytes& p2 = r.keep[1] = r.conv.vm_stream(Vm::pvm, 100, 10);
  Bytes& s2 = r.keep[2] = r.conv.vm_stream(Vm::svm, 100, 10);
  const uint64_t hp = r.vm(Side::pvm, p2);
  const uint64_t hs = r.vm(Side::svm, s2);
  const Strings got = r.acts();
  EXPECT_EQ(got, (Strings{std::to_string(hp) + ":release/matched", std::to_string(hs) + ":free"}));
}

}  // namespace
}  // namespace lockstep::test
