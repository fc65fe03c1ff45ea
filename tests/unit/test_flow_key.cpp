// Flow key: both directions of a connection map to one key and hash; families, VLANs,
// protocols and ports separate flows; non-IP frames get a zero key; text form.
#include <gtest/gtest.h>

#include <cstdint>
#include <set>
#include <vector>

#include "compare/flow_key.h"
#include "compare/parse.h"
#include "tests/support/frame_builder.h"

namespace lockstep {
namespace {

using test::build_frame;
using test::Bytes;
using test::FrameSpec;
using test::ip4;
using test::ip6_doc;

ParsedFrame parsed(const Bytes& b) {
  ParsedFrame f;
  EXPECT_EQ(parse_frame(b.data(), static_cast<uint32_t>(b.size()), f), ParseStatus::ok);
  return f;
}

FrameSpec tcp_spec(IpAddr src, IpAddr dst, uint16_t sport, uint16_t dport) {
  FrameSpec s;
  s.src = src;
  s.dst = dst;
  s.sport = sport;
  s.dport = dport;
  return s;
}

FrameSpec reversed(FrameSpec s) {
  std::swap(s.src, s.dst);
  std::swap(s.sport, s.dport);
  return s;
}

// Key of `spec` and of its reverse must agree, with opposite directions.
FlowKey check_symmetric(const FrameSpec& spec) {
  bool fwd_lo = false, rev_lo = false;
  const FlowKey a = flow_key_of(parsed(build_frame(spec)), &fwd_lo);
  const FlowKey b = flow_key_of(parsed(build_frame(reversed(spec))), &rev_lo);
  EXPECT_EQ(a, b);
  EXPECT_EQ(flow_hash(a), flow_hash(b));
  EXPECT_NE(fwd_lo, rev_lo);
  return a;
}

TEST(FlowKey, TcpV4Symmetric) {
  const FlowKey k = check_symmetric(tcp_spec(ip4(10, 0, 0, 2), ip4(10, 0, 0, 1), 41000, 80));
  EXPECT_EQ(k.proto, kProtoTcp);
  EXPECT_EQ(k.addr_lo, ip4(10, 0, 0, 1));
  EXPECT_EQ(k.port_lo, 80);
  EXPECT_EQ(k.addr_hi, ip4(10, 0, 0, 2));
  EXPECT_EQ(k.port_hi, 41000);
  EXPECT_EQ(k.vlan, 0);
  EXPECT_EQ(k.pad_, 0);
}

TEST(FlowKey, FromLoTellsDirection) {
  bool from_lo = false;
  flow_key_of(parsed(build_frame(tcp_spec(ip4(10, 0, 0, 1), ip4(10, 0, 0, 2), 5, 6))),
              &from_lo);
  EXPECT_TRUE(from_lo);
  flow_key_of(parsed(build_frame(tcp_spec(ip4(10, 0, 0, 2), ip4(10, 0, 0, 1), 5, 6))),
              &from_lo);
  EXPECT_FALSE(from_lo);
  // Null pointer is fine.
  flow_key_of(parsed(build_frame(tcp_spec(ip4(1, 1, 1, 1), ip4(2, 2, 2, 2), 5, 6))));
}

TEST(FlowKey, SameAddressOrdersByPort) {
  const FlowKey k = check_symmetric(tcp_spec(ip4(127, 0, 0, 1), ip4(127, 0, 0, 1), 9000, 22));
  EXPECT_EQ(k.port_lo, 22);
  EXPECT_EQ(k.port_hi, 9000);
  // Identical endpoints: from_lo is true both ways, key is the same.
  bool lo = false;
  const FlowKey s = flow_key_of(
      parsed(build_frame(tcp_spec(ip4(127, 0, 0, 1), ip4(127, 0, 0, 1), 7, 7))), &lo);
  EXPECT_TRUE(lo);
  EXPECT_EQ(s.port_lo, 7);
}

TEST(FlowKey, AddressComparedBeforePort) {
  // Lower address wins even with a higher port.
  const FlowKey k = check_symmetric(tcp_spec(ip4(10, 0, 0, 1), ip4(10, 0, 0, 9), 65000, 1));
  EXPECT_EQ(k.addr_lo, ip4(10, 0, 0, 1));
  EXPECT_EQ(k.port_lo, 65000);
}

TEST(FlowKey, Ipv6Symmetric) {
  const FlowKey k = check_symmetric(tcp_spec(ip6_doc(0x22), ip6_doc(0x11), 443, 50000));
  EXPECT_FALSE(k.addr_lo.is_v4());
  EXPECT_EQ(k.addr_lo, ip6_doc(0x11));
  EXPECT_EQ(k.port_lo, 50000);
}

TEST(FlowKey, UdpAndIcmpEchoSymmetric) {
  FrameSpec u = tcp_spec(ip4(192, 0, 2, 1), ip4(192, 0, 2, 53), 3333, 53);
  u.proto = kProtoUdp;
  EXPECT_EQ(check_symmetric(u).proto, kProtoUdp);

  // Echo request and reply share the flow (identifier in both port slots).
  FrameSpec req = tcp_spec(ip4(192, 0, 2, 1), ip4(192, 0, 2, 2), 0, 0);
  req.proto = kProtoIcmp;
  req.icmp_type = 8;
  req.icmp_id = 0x77;
  FrameSpec rep = reversed(req);
  rep.icmp_type = 0;
  const FlowKey a = flow_key_of(parsed(build_frame(req)));
  const FlowKey b = flow_key_of(parsed(build_frame(rep)));
  EXPECT_EQ(a, b);
  EXPECT_EQ(a.port_lo, 0x77);
  EXPECT_EQ(a.port_hi, 0x77);
  EXPECT_EQ(a.proto, kProtoIcmp);

  FrameSpec req6 = tcp_spec(ip6_doc(1), ip6_doc(2), 0, 0);
  req6.proto = kProtoIcmpv6;
  req6.icmp_type = 128;
  req6.icmp_id = 9;
  FrameSpec rep6 = reversed(req6);
  rep6.icmp_type = 129;
  EXPECT_EQ(flow_key_of(parsed(build_frame(req6))), flow_key_of(parsed(build_frame(rep6))));

  // A different identifier is a different flow.
  req.icmp_id = 0x78;
  EXPECT_NE(flow_key_of(parsed(build_frame(req))), a);
}

TEST(FlowKey, VlanIsOuterIdOnly) {
  FrameSpec s = tcp_spec(ip4(10, 1, 1, 1), ip4(10, 1, 1, 2), 1000, 2000);
  s.vlans = {0xe005};  // PCP 7, VID 5
  const FlowKey k = check_symmetric(s);
  EXPECT_EQ(k.vlan, 5);

  s.vlans = {0x0064, 0x00c8};
  EXPECT_EQ(check_symmetric(s).vlan, 100);

  FrameSpec untagged = s;
  untagged.vlans.clear();
  EXPECT_NE(flow_key_of(parsed(build_frame(untagged))), flow_key_of(parsed(build_frame(s))));
}

TEST(FlowKey, FieldsSeparateFlows) {
  const FrameSpec base = tcp_spec(ip4(10, 0, 0, 1), ip4(10, 0, 0, 2), 1000, 80);
  std::vector<FrameSpec> variants(6, base);
  variants[1].sport = 1001;
  variants[2].dport = 81;
  variants[3].dst = ip4(10, 0, 0, 3);
  variants[4].proto = kProtoUdp;
  variants[5].vlans = {7};
  std::set<uint64_t> hashes;
  for (size_t i = 0; i < variants.size(); ++i) {
    const FlowKey ki = flow_key_of(parsed(build_frame(variants[i])));
    hashes.insert(flow_hash(ki));
    for (size_t j = 0; j < i; ++j) {
      EXPECT_NE(ki, flow_key_of(parsed(build_frame(variants[j])))) << i << " " << j;
    }
  }
  EXPECT_EQ(hashes.size(), variants.size());
}

TEST(FlowKey, V4AndV6Differ) {
  // 10.0.0.1 as IPv4 and ::a00:1 as IPv6 are different addresses.
  IpAddr v6;
  v6.b[12] = 10;
  v6.b[15] = 1;
  IpAddr v6b = v6;
  v6b.b[15] = 2;
  const FlowKey a = flow_key_of(parsed(build_frame(tcp_spec(ip4(10, 0, 0, 1), ip4(10, 0, 0, 2), 1, 2))));
  const FlowKey b = flow_key_of(parsed(build_frame(tcp_spec(v6, v6b, 1, 2))));
  EXPECT_NE(a, b);
  EXPECT_NE(flow_hash(a), flow_hash(b));
}

TEST(FlowKey, NonIpIsZeroKeyWithVlan) {
  FrameSpec s;
  s.raw_ethertype = 0x0806;
  s.payload.assign(28, 0);
  s.vlans = {0x1005};
  const Bytes b = build_frame(s);
  ParsedFrame f;
  ASSERT_EQ(parse_frame(b.data(), static_cast<uint32_t>(b.size()), f), ParseStatus::non_ip);
  bool lo = false;
  const FlowKey k = flow_key_of(f, &lo);
  FlowKey expect{};
  expect.vlan = 5;
  EXPECT_EQ(k, expect);
  EXPECT_TRUE(lo);
  EXPECT_EQ(to_string(k), "non-ip vlan 5");
}

TEST(FlowKey, LaterFragmentHasNoPorts) {
  FrameSpec s = tcp_spec(ip4(10, 0, 0, 1), ip4(10, 0, 0, 2), 1000, 80);
  s.proto = kProtoUdp;
  s.payload.assign(3000, 0x5a);
  const std::vector<Bytes> frags = test::fragment_frame(build_frame(s), 1000);
  ASSERT_GE(frags.size(), 3u);
  const FlowKey first = flow_key_of(parsed(frags[0]));
  EXPECT_EQ(first.port_lo, 1000);
  EXPECT_EQ(first.port_hi, 80);
  for (size_t i = 1; i < frags.size(); ++i) {
    const ParsedFrame f = parsed(frags[i]);
    EXPECT_TRUE(f.is_fragment);
    const FlowKey k = flow_key_of(f);
    EXPECT_EQ(k.port_lo, 0);
    EXPECT_EQ(k.port_hi, 0);
    EXPECT_EQ(k.addr_lo, first.addr_lo);
    EXPECT_EQ(k.proto, kProtoUdp);
  }
}

TEST(FlowHash, DeterministicKnownValue) {
  // Same value on every host and run: pinned for one key.
  FlowKey k{};
  k.addr_lo = IpAddr::v4(0x0a000001);
  k.addr_hi = IpAddr::v4(0x0a000002);
  k.port_lo = 80;
  k.port_hi = 41000;
  k.proto = kProtoTcp;
  EXPECT_EQ(flow_hash(k), 0xa86a3107398f0af9ull);
  EXPECT_EQ(flow_hash(FlowKey{}), 0xf24d741ed8274c64ull);
}

TEST(FlowHash, SpreadsLowBits) {
  // Sequential client ports over one server: the low 10 bits (a 1024-slot table) should
  // be spread, not clustered. Loose bound: at least 60% of slots hit by 1024 flows
  // (a uniform hash fills about 63%).
  std::set<uint64_t> slots;
  for (uint32_t p = 0; p < 1024; ++p) {
    FlowKey k{};
    k.addr_lo = IpAddr::v4(0x0a000001);
    k.addr_hi = IpAddr::v4(0x0a000002);
    k.port_lo = 80;
    k.port_hi = static_cast<uint16_t>(30000 + p);
    k.proto = kProtoTcp;
    slots.insert(flow_hash(k) & 1023);
  }
  EXPECT_GE(slots.size(), 600u);
}

TEST(FlowKeyText, Ipv4) {
  FrameSpec s = tcp_spec(ip4(10, 0, 0, 2), ip4(10, 0, 0, 1), 41000, 80);
  EXPECT_EQ(to_string(flow_key_of(parsed(build_frame(s)))), "tcp 10.0.0.1:80 <-> 10.0.0.2:41000");
  s.vlans = {5};
  s.proto = kProtoUdp;
  EXPECT_EQ(to_string(flow_key_of(parsed(build_frame(s)))),
            "udp 10.0.0.1:80 <-> 10.0.0.2:41000 vlan 5");
  FlowKey k{};
  k.addr_lo = IpAddr::v4(0x01020304);
  k.addr_hi = IpAddr::v4(0xffffffff);
  k.proto = 47;
  EXPECT_EQ(to_string(k), "proto 47 1.2.3.4:0 <-> 255.255.255.255:0");
}

TEST(FlowKeyText, Ipv6Compressed) {
  EXPECT_EQ(to_string(ip6_doc(1)), "2001:db8::1");
  EXPECT_EQ(to_string(IpAddr{}), "::");
  IpAddr a;
  a.b[15] = 1;
  EXPECT_EQ(to_string(a), "::1");
  IpAddr b;
  b.b[0] = 0xfe;
  b.b[1] = 0x80;
  EXPECT_EQ(to_string(b), "fe80::");
  // 2001:db8:0:1:0:0:0:1 -> the longer zero run is compressed.
  IpAddr c = ip6_doc(1);
  c.b[7] = 1;
  EXPECT_EQ(to_string(c), "2001:db8:0:1::1");
  // A single zero group is not compressed: 1:0:1:1:1:1:1:1.
  IpAddr d;
  for (unsigned i = 0; i < 8; ++i) d.b[2 * i + 1] = i == 1 ? 0 : 1;
  EXPECT_EQ(to_string(d), "1:0:1:1:1:1:1:1");
  // Ties: the first run wins. 1:0:0:1:0:0:1:1
  IpAddr e;
  for (unsigned i : {0u, 3u, 6u, 7u}) e.b[2 * i + 1] = 1;
  EXPECT_EQ(to_string(e), "1::1:0:0:1:1");

  FlowKey k{};
  k.addr_lo = ip6_doc(1);
  k.addr_hi = ip6_doc(2);
  k.port_lo = 443;
  k.port_hi = 50000;
  k.proto = kProtoTcp;
  EXPECT_EQ(to_string(k), "tcp [2001:db8::1]:443 <-> [2001:db8::2]:50000");
  k.proto = kProtoIcmpv6;
  EXPECT_EQ(to_string(k).substr(0, 7), "icmpv6 ");
}

}  // namespace
}  // namespace lockstep
