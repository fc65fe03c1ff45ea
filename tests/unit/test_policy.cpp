// Policy rules: parsing, first match wins, ports on either side, prefixes v4 and v6.
#include <gtest/gtest.h>

#include "compare/policy.h"

namespace lockstep {
namespace {

FlowKey key(uint8_t proto, uint32_t a, uint16_t pa, uint32_t b, uint16_t pb) {
  FlowKey k;
  k.proto = proto;
  k.addr_lo = IpAddr::v4(a);
  k.port_lo = pa;
  k.addr_hi = IpAddr::v4(b);
  k.port_hi = pb;
  return k;
}

TEST(Policy, EmptyRulesGiveTheDefault) {
  PolicyTable t;
  std::string err;
  ASSERT_TRUE(t.parse("", PolicyAction::compare, err));
  EXPECT_EQ(t.lookup(key(kProtoUdp, 0x0a000001, 53, 0x0a000002, 4000)), PolicyAction::compare);
  ASSERT_TRUE(t.parse(" ; ", PolicyAction::pass, err));
  EXPECT_EQ(t.lookup(key(kProtoTcp, 1, 2, 3, 4)), PolicyAction::pass);
}

TEST(Policy, FirstMatchWinsWithPortsAndPrefixes) {
  PolicyTable t;
  std::string err;
  ASSERT_TRUE(t.parse("udp:5353=pass; udp:9000-9100@10.0.0.0/8=drop; udp=compare; ip=pass",
                      PolicyAction::compare, err))
      << err;
  ASSERT_EQ(t.rules().size(), 4u);
  EXPECT_EQ(t.lookup(key(kProtoUdp, 0x0a000001, 5353, 0xc0a80001, 5353)), PolicyAction::pass);
  EXPECT_EQ(t.lookup(key(kProtoUdp, 0x0a000001, 40000, 0xc0a80001, 9050)), PolicyAction::drop);
  EXPECT_EQ(t.lookup(key(kProtoUdp, 0xac100001, 40000, 0xc0a80001, 9050)), PolicyAction::compare)
      << "outside the prefix";
  EXPECT_EQ(t.lookup(key(kProtoTcp, 1, 80, 2, 4000)), PolicyAction::pass);
}

TEST(Policy, Ipv6PrefixAndProtocolNumbers) {
  PolicyTable t;
  std::string err;
  ASSERT_TRUE(t.parse("132@2001:db8::/32=drop;47=pass", PolicyAction::compare, err)) << err;
  FlowKey k;
  k.proto = 132;
  k.addr_lo.b = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  EXPECT_EQ(t.lookup(k), PolicyAction::drop);
  k.addr_lo.b[3] = 0xb9;
  EXPECT_EQ(t.lookup(k), PolicyAction::compare);
  k.proto = 47;
  EXPECT_EQ(t.lookup(k), PolicyAction::pass);
}

TEST(Policy, BadRulesNameTheRuleAndTheProblem) {
  PolicyTable t;
  std::string err;
  const char* bad[] = {"udp:53", "udp:53=maybe", "sctp=drop", "udp:70000=pass",
                       "udp:100-50=pass", "udp@10.0.0.0/33=drop", "udp@nonsense=drop",
                       "tcp:=pass", "300=drop"};
  for (const char* r : bad) {
    EXPECT_FALSE(t.parse(r, PolicyAction::compare, err)) << r;
    EXPECT_NE(err.find("policy rule"), std::string::npos) << r << ": " << err;
  }
  // A failed parse leaves the previous table in place.
  ASSERT_TRUE(t.parse("udp=drop", PolicyAction::compare, err));
  EXPECT_FALSE(t.parse("udp=bad", PolicyAction::compare, err));
  EXPECT_EQ(t.lookup(key(kProtoUdp, 1, 2, 3, 4)), PolicyAction::drop);
}

}  // namespace
}  // namespace lockstep
