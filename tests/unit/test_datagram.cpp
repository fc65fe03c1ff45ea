// Datagram compare as a part: FIFO matching of equal payloads per flow whichever VM's
// copy comes first; PVM datagrams released in arrival order even when the SVM's come
// reordered; unmatched datagrams past the slack on both sides reported through the
// divergence door; a diverged flow holds PVM output and drops SVM output.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/support/frame_builder.h"
#include "tests/unit/parts_rig.h"

namespace lockstep::test {
namespace {

struct DgramRig : PartsRig {
  uint64_t next_handle = 1;
  uint32_t ci = kNil;
  std::vector<Bytes> keep;

  DgramRig() { keep.reserve(64); }

  uint64_t push(Side side, uint64_t seed, uint64_t now = 1000) {
    FrameSpec s;
    s.src = ip4(10, 0, 0, 1);
    s.dst = ip4(10, 0, 0, 2);
    s.proto = kProtoUdp;
    s.sport = 53;
    s.dport = 4000;
    s.payload = stream_bytes(seed, 0, 40);
    keep.push_back(build_frame(s));
    Bytes& b = keep.back();
    const ParsedFrame f = parse(b);
    ci = conns.lookup_or_create(flow_key_of(f), ConnKind::datagram, now, true);
    const uint64_t handle = next_handle++;
    const uint32_t idx = held.alloc(side, handle, b.data(), static_cast<uint32_t>(b.size()), now);
    held[idx].conn = ci;
    held[idx].payload_off = f.payload_off;
    held[idx].payload_len = f.payload_len;
    dgram.output(ci, idx, now);
    return handle;
  }
  std::vector<std::string> acts() {
    std::vector<std::string> v;
    for (const Action& a : drain()) {
      v.push_back(std::to_string(a.handle) + (a.kind == ActionKind::release ? ":release"
                                              : a.kind == ActionKind::free  ? ":free"
                                                                            : ":drop"));
    }
    return v;
  }
};

using Strings = std::vector<std::string>;

TEST(Datagram, EitherSideFirstMatches) {
  DgramRig r;
  const uint64_t p = r.push(Side::pvm, 1);
  EXPECT_EQ(r.acts(), Strings{});
  const uint64_t s = r.push(Side::svm, 1);
  EXPECT_EQ(r.acts(), (Strings{std::to_string(s) + ":free", std::to_string(p) + ":release"}));
  const uint64_t s2 = r.push(Side::svm, 2);
  EXPECT_EQ(r.acts(), Strings{});
  const uint64_t p2 = r.push(Side::pvm, 2);
  EXPECT_EQ(r.acts(), (Strings{std::to_string(s2) + ":free", std::to_string(p2) + ":release"}));
  EXPECT_EQ(r.c.datagrams_matched, 2u);
  EXPECT_EQ(r.held.used(), 0u);
}

TEST(Datagram, ReleasedInPvmOrderWhenTheSvmReorders) {
  DgramRig r;
  const uint64_t p1 = r.push(Side::pvm, 1);
  const uint64_t p2 = r.push(Side::pvm, 2);
  const uint64_t s2 = r.push(Side::svm, 2);
  EXPECT_EQ(r.acts(), Strings{std::to_string(s2) + ":free"}) << "p2 waits behind p1";
  const uint64_t s1 = r.push(Side::svm, 1);
  EXPECT_EQ(r.acts(), (Strings{std::to_string(s1) + ":free", std::to_string(p1) + ":release",
                               std::to_string(p2) + ":release"}));
  EXPECT_TRUE(r.divergences.empty());
}

TEST(Datagram, UnmatchedPastTheSlackDiverges) {
  DgramRig r;  // datagram_reorder_slack = 2 by default
  for (uint64_t i = 0; i < 3; ++i) {
    r.push(Side::pvm, 10 + i);
    r.push(Side::svm, 20 + i);
  }
  ASSERT_EQ(r.divergences.size(), 1u);
  EXPECT_EQ(r.divergences[0].reason, CheckpointReason::datagram_mismatch);
  EXPECT_EQ(r.divergences[0].ci, r.ci);
  // Diverged: PVM output held for the checkpoint, SVM output dropped.
  r.acts();
  r.push(Side::pvm, 30);
  const uint64_t s = r.push(Side::svm, 30);
  EXPECT_EQ(r.acts(), Strings{std::to_string(s) + ":drop"});
  EXPECT_EQ(r.conns[r.ci].pvm.count, 4u);
}

}  // namespace
}  // namespace lockstep::test
