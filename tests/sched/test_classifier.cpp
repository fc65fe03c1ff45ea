// Filters: each field alone, first match wins, default class, and frames parsed from
// bytes (IPv4/IPv6, TCP/UDP, VLAN, DSCP, non-IP, truncated).
#include "dataplane/qos/sched/classifier.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "dataplane/qos/sched/spec.h"

namespace lockstep::sched {
namespace {

// Ethernet (+ optional VLAN) + IPv4/IPv6 + TCP/UDP header, payload of zeros.
std::vector<uint8_t> frame(bool v6, uint8_t proto, const uint8_t* src, const uint8_t* dst,
                           uint16_t sport, uint16_t dport, uint8_t dscp, bool vlan = false) {
  std::vector<uint8_t> f;
  f.reserve(128);
  auto put = [&](const uint8_t* p, size_t n) {
    for (size_t i = 0; i < n; ++i) f.push_back(p[i]);
  };
  auto b = [](unsigned v) { return static_cast<uint8_t>(v); };
  const uint8_t type_hi = v6 ? 0x86 : 0x08, type_lo = v6 ? 0xdd : 0x00;
  for (int i = 0; i < 12; ++i) f.push_back(0);
  if (vlan) {
    const uint8_t tag[4] = {0x81, 0x00, 0x00, 0x05};
    put(tag, 4);
  }
  f.push_back(type_hi);
  f.push_back(type_lo);
  const unsigned l4len = proto == 6 ? 20 : 8;
  const unsigned payload = 16;
  if (!v6) {
    const unsigned tot = 20 + l4len + payload;
    const uint8_t ip[12] = {0x45, b(dscp << 2), b(tot >> 8), b(tot), 0, 1, 0x40, 0, 64, proto, 0, 0};
    put(ip, 12);
    put(src, 4);
    put(dst, 4);
  } else {
    const unsigned plen = l4len + payload;
    const uint8_t h[8] = {b(0x60 | (dscp >> 2)), b((dscp & 3) << 6), 0, 0, b(plen >> 8), b(plen),
                          proto, 64};
    put(h, 8);
    put(src, 16);
    put(dst, 16);
  }
  uint8_t l4[20] = {};
  l4[0] = b(sport >> 8);
  l4[1] = b(sport);
  l4[2] = b(dport >> 8);
  l4[3] = b(dport);
  if (proto == 6) {
    l4[12] = 0x50;
  } else {
    l4[4] = b((8 + payload) >> 8);
    l4[5] = b(8 + payload);
  }
  put(l4, l4len);
  for (unsigned i = 0; i < payload; ++i) f.push_back(0);
  return f;
}

Filter filter(const char* spec, uint32_t pref, ClassId cls) {
  const std::string line = std::string("filter add link ") + spec + " class x";
  ParseResult r = parse_command(line);
  EXPECT_TRUE(r.ok) << line << ": " << r.error;
  return Filter{pref, r.cmd.filter.match, cls};
}

const uint8_t kA4[4] = {10, 0, 0, 1}, kB4[4] = {192, 168, 7, 9};
const uint8_t kA6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
const uint8_t kB6[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};

TEST(SchedClassifier, FirstMatchWinsElseDefault) {
  Classifier c;
  c.set_default(9);
  ASSERT_EQ(c.add(filter("dport 9000", 20, 2)), "");
  ASSERT_EQ(c.add(filter("proto tcp dport 9000-9100", 10, 1)), "");
  ASSERT_EQ(c.add(filter("role heartbeat", 30, 3)), "");
  EXPECT_NE(c.add(filter("dport 1", 30, 4)), "");  // pref in use
  auto tcp = frame(false, 6, kA4, kB4, 40000, 9000, 0);
  auto udp = frame(false, 17, kA4, kB4, 40000, 9000, 0);
  auto other = frame(false, 17, kA4, kB4, 40000, 53, 0);
  EXPECT_EQ(c.classify_frame(tcp.data(), static_cast<uint32_t>(tcp.size()), TrafficRole::proxy), 1);
  EXPECT_EQ(c.classify_frame(udp.data(), static_cast<uint32_t>(udp.size()), TrafficRole::proxy), 2);
  EXPECT_EQ(c.classify_frame(other.data(), static_cast<uint32_t>(other.size()), TrafficRole::heartbeat), 3);
  EXPECT_EQ(c.classify_frame(other.data(), static_cast<uint32_t>(other.size()), TrafficRole::proxy), 9);
  EXPECT_TRUE(c.remove(10));
  EXPECT_FALSE(c.remove(10));
  EXPECT_EQ(c.classify_frame(tcp.data(), static_cast<uint32_t>(tcp.size()), TrafficRole::proxy), 2);
}

TEST(SchedClassifier, GuestMatchesTheCallersGuestOnlyAndNeedsItsNameKnown) {
  const std::vector<std::string> guests{"web", "db"};
  Classifier c;
  c.set_default(9);
  {
    const GuestNamesScope scope(guests);
    ASSERT_EQ(c.add(filter("guest db", 10, 1)), "");
    ASSERT_EQ(c.add(filter("guest web proto udp", 20, 2)), "");
    ParseResult bad = parse_command("filter add link guest cache class x");
    EXPECT_FALSE(bad.ok);
    EXPECT_NE(bad.error.find("unknown guest 'cache' (guests: web, db)"), std::string::npos) << bad.error;
    EXPECT_FALSE(parse_command("filter add link guest a/b class x").ok) << "not a guest name";
    EXPECT_FALSE(parse_command("filter add link guest web guest db class x").ok) << "given twice";
  }
  EXPECT_FALSE(parse_command("filter add link guest web class x").ok) << "no guests known here";
  auto udp = frame(false, 17, kA4, kB4, 40000, 53, 0);
  auto tcp = frame(false, 6, kA4, kB4, 40000, 80, 0);
  const auto n = static_cast<uint32_t>(udp.size()), m = static_cast<uint32_t>(tcp.size());
  EXPECT_EQ(c.classify_frame(udp.data(), n, TrafficRole::proxy, 1), 1) << "db's";
  EXPECT_EQ(c.classify_frame(udp.data(), n, TrafficRole::proxy, 0), 2) << "web's UDP";
  EXPECT_EQ(c.classify_frame(tcp.data(), m, TrafficRole::proxy, 0), 9) << "web's TCP: no filter";
  EXPECT_EQ(c.classify_frame(udp.data(), n, TrafficRole::other), 9) << "no guest (between the hosts)";
  EXPECT_EQ(format_match(c.filters()[0].match), "guest db");
  // Read back from its text, as `qos show` prints it.
  const GuestNamesScope scope(guests);
  ParseResult again = parse_command("filter add link " + format_match(c.filters()[1].match) + " class x");
  ASSERT_TRUE(again.ok) << again.error;
  EXPECT_EQ(again.cmd.filter.match.guest, 0u);
}

TEST(SchedClassifier, PrefixesOfBothFamilies) {
  Classifier c;
  c.set_default(0);
  ASSERT_EQ(c.add(filter("src 10.0.0.0/8", 1, 1)), "");
  ASSERT_EQ(c.add(filter("dst 2001:db8::/32", 2, 2)), "");
  ASSERT_EQ(c.add(filter("src 2001:db8::/32", 3, 3)), "");
  ASSERT_EQ(c.add(filter("family ipv6", 4, 4)), "");
  auto v4 = frame(false, 17, kA4, kB4, 1, 2, 0);
  auto v4b = frame(false, 17, kB4, kA4, 1, 2, 0);
  auto v6 = frame(true, 17, kB6, kA6, 1, 2, 0);
  auto v6b = frame(true, 17, kA6, kB6, 1, 2, 0);
  auto v6c = frame(true, 17, kB6, kB6, 1, 2, 0);
  EXPECT_EQ(c.classify_frame(v4.data(), static_cast<uint32_t>(v4.size()), TrafficRole::other), 1);
  EXPECT_EQ(c.classify_frame(v4b.data(), static_cast<uint32_t>(v4b.size()), TrafficRole::other), 0);
  EXPECT_EQ(c.classify_frame(v6.data(), static_cast<uint32_t>(v6.size()), TrafficRole::other), 2);
  EXPECT_EQ(c.classify_frame(v6b.data(), static_cast<uint32_t>(v6b.size()), TrafficRole::other), 3);
  EXPECT_EQ(c.classify_frame(v6c.data(), static_cast<uint32_t>(v6c.size()), TrafficRole::other), 4);
  // ::/0 matches IPv6 only, 0.0.0.0/0 IPv4 only.
  Classifier d;
  d.set_default(0);
  ASSERT_EQ(d.add(filter("src ::/0", 1, 6)), "");
  ASSERT_EQ(d.add(filter("src 0.0.0.0/0", 2, 4)), "");
  EXPECT_EQ(d.classify_frame(v4.data(), static_cast<uint32_t>(v4.size()), TrafficRole::other), 4);
  EXPECT_EQ(d.classify_frame(v6.data(), static_cast<uint32_t>(v6.size()), TrafficRole::other), 6);
}

TEST(SchedClassifier, PortsEitherDirectionAndDscp) {
  Classifier c;
  c.set_default(0);
  ASSERT_EQ(c.add(filter("dscp ef,cs6", 1, 1)), "");
  ASSERT_EQ(c.add(filter("port 8000-8099", 2, 2)), "");
  ASSERT_EQ(c.add(filter("sport 22", 3, 3)), "");
  auto ef4 = frame(false, 6, kA4, kB4, 1000, 2000, 46);
  auto cs6_6 = frame(true, 17, kA6, kB6, 1000, 2000, 48);
  auto af41 = frame(false, 6, kA4, kB4, 1000, 2000, 34);
  auto p8050 = frame(false, 6, kA4, kB4, 8050, 2000, 0);
  auto ssh = frame(false, 6, kA4, kB4, 22, 2000, 0, /*vlan=*/true);
  EXPECT_EQ(c.classify_frame(ef4.data(), static_cast<uint32_t>(ef4.size()), TrafficRole::other), 1);
  EXPECT_EQ(c.classify_frame(cs6_6.data(), static_cast<uint32_t>(cs6_6.size()), TrafficRole::other), 1);
  EXPECT_EQ(c.classify_frame(af41.data(), static_cast<uint32_t>(af41.size()), TrafficRole::other), 0);
  EXPECT_EQ(c.classify_frame(p8050.data(), static_cast<uint32_t>(p8050.size()), TrafficRole::other), 2);
  EXPECT_EQ(c.classify_frame(ssh.data(), static_cast<uint32_t>(ssh.size()), TrafficRole::other), 3);
}

TEST(SchedClassifier, NonIpAndTruncatedFramesMatchOnRoleOnly) {
  Classifier c;
  c.set_default(0);
  ASSERT_EQ(c.add(filter("dport 0-65535", 1, 1)), "");
  ASSERT_EQ(c.add(filter("role block_replication", 2, 2)), "");
  ASSERT_EQ(c.add(filter("all", 3, 3)), "");
  std::vector<uint8_t> arp(60, 0);
  arp[12] = 0x08;
  arp[13] = 0x06;
  EXPECT_EQ(c.classify_frame(arp.data(), 60, TrafficRole::block_replication), 2);
  EXPECT_EQ(c.classify_frame(arp.data(), 60, TrafficRole::other), 3);
  auto tcp = frame(false, 6, kA4, kB4, 1, 2, 0);
  EXPECT_EQ(c.classify_frame(tcp.data(), 20, TrafficRole::other), 3);  // cut inside the IP header
  EXPECT_EQ(c.classify_frame(tcp.data(), 0, TrafficRole::other), 3);
}

TEST(SchedClassifier, TableIsBounded) {
  Classifier c;
  for (uint32_t i = 0; i < Classifier::kMaxFilters; ++i) ASSERT_EQ(c.add(Filter{i, Match{}, 1}), "");
  EXPECT_NE(c.add(Filter{9999, Match{}, 1}), "");
  EXPECT_EQ(c.filters().size(), Classifier::kMaxFilters);
}

}  // namespace
}  // namespace lockstep::sched
