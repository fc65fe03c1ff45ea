// The fragment table: a datagram completes whatever the order of its fragments, and the
// first-arrived fragment stands for it with the others chained and the reassembled
// bytes in place (UDP payload, ICMP type/code); IPv6 too; the table's bounds: timeout,
// malformed (a second, different end), full table; a released datagram frees its entry.
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "tests/support/frame_builder.h"
#include "tests/unit/parts_rig.h"

namespace lockstep::test {
namespace {

Bytes udp_datagram(const IpAddr& src, const IpAddr& dst, uint16_t ip_id, size_t n,
                   uint64_t seed = 3) {
  FrameSpec s;
  s.src = src;
  s.dst = dst;
  s.proto = kProtoUdp;
  s.sport = 5000;
  s.dport = 53;
  s.ip_id = ip_id;
  s.payload = stream_bytes(seed, 0, n);
  return build_frame(s);
}

struct Fed {
  uint32_t rep = kNil;
  FlowKey key;
};

Fed feed(PartsRig& r, std::vector<Bytes>& frags, const std::vector<size_t>& order, Side side,
         uint64_t now, uint64_t handle0 = 100) {
  Fed out;
  for (size_t i : order) {
    const ParsedFrame f = PartsRig::parse(frags[i]);
    EXPECT_TRUE(f.is_fragment);
    FlowKey k;
    const uint32_t rep = r.frags.input(side, handle0 + i, frags[i].data(),
                                       static_cast<uint32_t>(frags[i].size()), now, f, k);
    if (rep != kNil) {
      EXPECT_EQ(out.rep, kNil) << "completed twice";
      out.rep = rep;
      out.key = k;
    }
  }
  return out;
}

void expect_whole(PartsRig& r, const Fed& fed, const Bytes& whole, size_t n_frags) {
  ASSERT_NE(fed.rep, kNil);
  const ParsedFrame w = PartsRig::parse(whole);
  EXPECT_TRUE(fed.key == flow_key_of(w));
  const Held& h = r.held[fed.rep];
  ASSERT_NE(h.reasm, kNil);
  ASSERT_EQ(h.payload_len, w.payload_len);
  EXPECT_TRUE(std::equal(whole.begin() + w.payload_off, whole.end(),
                         r.frags.bytes(h.reasm) + h.payload_off));
  size_t chained = 0;
  for (uint32_t j = fed.rep; j != kNil; j = r.held[j].frag_next) ++chained;
  EXPECT_EQ(chained, n_frags);
}

TEST(FragTable, CompletesInAnyOrderFirstArrivedStandsForIt) {
  PartsRig r;
  const Bytes whole = udp_datagram(ip4(10, 0, 0, 1), ip4(10, 0, 0, 2), 77, 3000);
  auto frags = fragment_frame(whole, 1000);
  ASSERT_EQ(frags.size(), 4u);
  const Fed fed = feed(r, frags, {2, 0, 3, 1}, Side::pvm, 1000);
  expect_whole(r, fed, whole, 4);
  EXPECT_EQ(r.held[fed.rep].handle, 102u);  // fragment 2 arrived first
  EXPECT_EQ(r.c.frags_in, 4u);
  EXPECT_EQ(r.c.frag_datagrams, 1u);
  // Leaving frees the entry and every fragment frame.
  r.out.release_frame(fed.rep, ReleaseReason::matched);
  EXPECT_EQ(r.drain().size(), 4u);
  EXPECT_EQ(r.held.used(), 0u);
}

TEST(FragTable, Ipv6AndSidesApart) {
  PartsRig r;
  const Bytes whole = udp_datagram(ip6_doc(1), ip6_doc(2), 9, 2500);
  auto frags = fragment_frame(whole, 1200);
  ASSERT_EQ(frags.size(), 3u);
  // The same datagram from the PVM and the SVM: two entries, each completes alone.
  const Fed p = feed(r, frags, {0, 1}, Side::pvm, 0);
  const Fed s = feed(r, frags, {2, 1, 0}, Side::svm, 0, 200);
  EXPECT_EQ(p.rep, kNil);
  expect_whole(r, s, whole, 3);
  const Fed p2 = feed(r, frags, {2}, Side::pvm, 0);
  expect_whole(r, p2, whole, 3);
}

TEST(FragTable, IncompleteDatagramsTimeOut) {
  PartsRig r;
  const Bytes whole = udp_datagram(ip4(10, 0, 0, 1), ip4(10, 0, 0, 2), 5, 3000);
  auto frags = fragment_frame(whole, 1000);
  feed(r, frags, {0, 1}, Side::pvm, 1000);
  EXPECT_EQ(r.frags.next_deadline(), 1000 + r.t.frag_timeout_ns);
  r.frags.expire(1000 + r.t.frag_timeout_ns - 1);
  EXPECT_TRUE(r.drain().empty());
  r.frags.expire(1000 + r.t.frag_timeout_ns);
  const auto acts = r.drain();
  ASSERT_EQ(acts.size(), 2u);
  EXPECT_EQ(acts[0].kind, ActionKind::drop);
  EXPECT_EQ(acts[0].reason, static_cast<uint8_t>(DropReason::frag_timeout));
  EXPECT_EQ(r.held.used(), 0u);
  EXPECT_EQ(r.frags.next_deadline(), UINT64_MAX);
}

TEST(FragTable, TwoDifferentEndsAreMalformed) {
  PartsRig r;
  const Bytes a = udp_datagram(ip4(10, 0, 0, 1), ip4(10, 0, 0, 2), 5, 3000);
  const Bytes b = udp_datagram(ip4(10, 0, 0, 1), ip4(10, 0, 0, 2), 5, 2000);
  auto fa = fragment_frame(a, 1000);
  auto fb = fragment_frame(b, 1000);
  feed(r, fa, {3}, Side::pvm, 0);      // last fragment: ends at 3008
  feed(r, fb, {2}, Side::pvm, 0, 50);  // another last fragment, ending at 2008
  const auto acts = r.drain();
  ASSERT_EQ(acts.size(), 2u);
  EXPECT_EQ(acts[1].reason, static_cast<uint8_t>(DropReason::frag_malformed));
  EXPECT_EQ(r.c.pvm_dropped[static_cast<unsigned>(DropReason::frag_malformed)], 2u);
}

TEST(FragTable, FullTableDropsNewDatagrams) {
  PartsRig r(small_settings(64, 256, 2));
  for (uint16_t id = 1; id <= 3; ++id) {
    auto frags = fragment_frame(udp_datagram(ip4(10, 0, 0, 1), ip4(10, 0, 0, 2), id, 3000), 1000);
    feed(r, frags, {0}, Side::pvm, 0, id * 10);
  }
  const auto acts = r.drain();
  ASSERT_EQ(acts.size(), 1u);
  EXPECT_EQ(acts[0].handle, 30u);
  EXPECT_EQ(acts[0].reason, static_cast<uint8_t>(DropReason::frag_table_full));
  // Shutdown gives up the two incomplete ones.
  r.frags.discard_incomplete();
  EXPECT_EQ(r.drain().size(), 2u);
  EXPECT_EQ(r.held.used(), 0u);
}

}  // namespace
}  // namespace lockstep::test
