// The tc-vocabulary parser: values (rates, sizes, prefixes, ports, DSCP), whole
// commands, and refusals whose message names the offending token.
#include "dataplane/qos/sched/spec.h"

#include <gtest/gtest.h>

#include "dataplane/qos/sched/sched_config.h"

namespace lockstep::sched {
namespace {

uint64_t rate(std::string_view t) {
  uint64_t v = 0;
  std::string e;
  EXPECT_TRUE(parse_rate(t, v, e)) << t << ": " << e;
  return v;
}
uint64_t size(std::string_view t) {
  uint64_t v = 0;
  std::string e;
  EXPECT_TRUE(parse_size(t, v, e)) << t << ": " << e;
  return v;
}
std::string rate_err(std::string_view t) {
  uint64_t v;
  std::string e;
  EXPECT_FALSE(parse_rate(t, v, e)) << t;
  return e;
}

TEST(SchedSpec, Rates) {
  EXPECT_EQ(rate("10mbit"), 1'250'000u);
  EXPECT_EQ(rate("1gbit"), 125'000'000u);
  EXPECT_EQ(rate("500kbit"), 62'500u);
  EXPECT_EQ(rate("1.5Mbit"), 187'500u);
  EXPECT_EQ(rate("8000bps"), 8'000u);          // bytes per second
  EXPECT_EQ(rate("2mbps"), 2'000'000u);        // megabytes per second, as tc reads it
  EXPECT_EQ(rate("64000"), 8'000u);            // bare: bits per second
  EXPECT_EQ(rate("1mibit"), 131'072u);
  EXPECT_EQ(rate("10tbit"), 1'250'000'000'000u);
  EXPECT_NE(rate_err("10mbps0").find("'10mbps0'"), std::string::npos);
  EXPECT_NE(rate_err("fast").find("'fast'"), std::string::npos);
  EXPECT_NE(rate_err("1bit").find("out of range"), std::string::npos);
  EXPECT_NE(rate_err("11tbit").find("out of range"), std::string::npos);
  EXPECT_NE(rate_err("").find("bad rate"), std::string::npos);
}

TEST(SchedSpec, Sizes) {
  EXPECT_EQ(size("15k"), 15'360u);
  EXPECT_EQ(size("1m"), 1'048'576u);
  EXPECT_EQ(size("1500b"), 1500u);
  EXPECT_EQ(size("1500"), 1500u);
  EXPECT_EQ(size("8kbit"), 1024u);
  EXPECT_EQ(size("1g"), 1u << 30);
  uint64_t v;
  std::string e;
  EXPECT_FALSE(parse_size("2g", v, e));
  EXPECT_FALSE(parse_size("15q", v, e));
  EXPECT_NE(e.find("'15q'"), std::string::npos);
  EXPECT_FALSE(parse_size("0", v, e));
}

TEST(SchedSpec, FormatRoundTrips) {
  for (const char* r : {"10mbit", "1gbit", "500kbit", "8kbit", "1500kbit", "10tbit"})
    EXPECT_EQ(format_rate(rate(r)), r);
  EXPECT_EQ(format_rate(1001), "8008bit");
  for (const char* s : {"15k", "1m", "1500b", "1g"}) EXPECT_EQ(format_size(size(s)), s);
}

TEST(SchedSpec, PrefixesPortsProtocolsDscp) {
  IpPrefix p;
  std::string e;
  ASSERT_TRUE(parse_prefix("10.1.2.3/8", p, e)) << e;
  EXPECT_EQ(format_prefix(p), "10.0.0.0/8");
  EXPECT_TRUE(p.contains(IpAddr::v4(0x0a090807), true));
  EXPECT_FALSE(p.contains(IpAddr::v4(0x0b000001), true));
  ASSERT_TRUE(parse_prefix("2001:db8::/32", p, e)) << e;
  EXPECT_EQ(format_prefix(p), "2001:db8::/32");
  ASSERT_TRUE(parse_prefix("192.168.1.1", p, e));
  EXPECT_EQ(p.len, 32);
  EXPECT_FALSE(parse_prefix("10.0.0.0/33", p, e));
  EXPECT_NE(e.find("'10.0.0.0/33'"), std::string::npos);
  EXPECT_FALSE(parse_prefix("10.0.0.300", p, e));
  EXPECT_FALSE(parse_prefix("::1/129", p, e));
  EXPECT_FALSE(parse_prefix("10.0.0.0/", p, e));

  PortRange r;
  ASSERT_TRUE(parse_port_range("9000", r, e));
  EXPECT_EQ(r.lo, 9000);
  EXPECT_EQ(r.hi, 9000);
  ASSERT_TRUE(parse_port_range("1024-65535", r, e));
  EXPECT_EQ(r.hi, 65535);
  EXPECT_FALSE(parse_port_range("70000", r, e));
  EXPECT_FALSE(parse_port_range("20-10", r, e));
  EXPECT_NE(e.find("'20-10'"), std::string::npos);

  uint8_t proto;
  ASSERT_TRUE(parse_proto("udp", proto, e));
  EXPECT_EQ(proto, 17);
  ASSERT_TRUE(parse_proto("132", proto, e));
  EXPECT_FALSE(parse_proto("tcpp", proto, e));

  uint64_t set;
  ASSERT_TRUE(parse_dscp_set("ef,af41,cs6,0x0a,3", set, e)) << e;
  EXPECT_EQ(set, (1ull << 46) | (1ull << 34) | (1ull << 48) | (1ull << 10) | (1ull << 3));
  EXPECT_FALSE(parse_dscp_set("af51", set, e));
  EXPECT_NE(e.find("'af51'"), std::string::npos);
  EXPECT_FALSE(parse_dscp_set("64", set, e));
}

TEST(SchedSpec, ClassCommand) {
  ParseResult r = parse_command("qos class add link heartbeat prio 0 rate 10mbit ceil 100mbit burst 15k");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.cmd.object, Object::klass);
  EXPECT_EQ(r.cmd.verb, Verb::add);
  EXPECT_EQ(r.cmd.dev, "link");
  EXPECT_EQ(r.cmd.klass.name, "heartbeat");
  EXPECT_EQ(*r.cmd.klass.prio, 0);
  EXPECT_EQ(*r.cmd.klass.rate, 1'250'000u);
  EXPECT_EQ(*r.cmd.klass.ceil, 12'500'000u);
  EXPECT_EQ(*r.cmd.klass.burst, 15'360u);
  r = parse_command("class change dev link bulk conn-rate 1gbit conn-burst 64k limit 5000 conn-limit 100 default");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_TRUE(r.cmd.klass.make_default);
  EXPECT_EQ(*r.cmd.klass.conn_limit, 100u);
  r = parse_command("class del link bulk");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.cmd.verb, Verb::del);
}

TEST(SchedSpec, FilterAndQdiscCommands) {
  ParseResult r = parse_command("qos filter add link dport 9000 class proxy");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.cmd.filter.class_name, "proxy");
  EXPECT_EQ(r.cmd.filter.match.fields, Match::kDport);
  EXPECT_FALSE(r.cmd.filter.pref.has_value());
  r = parse_command("filter add link pref 5 src 10.0.0.0/8 dst 10.1.0.0/16 sport 1000-2000 proto tcp "
                    "dscp ef role checkpoint flowid bulk");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(*r.cmd.filter.pref, 5u);
  EXPECT_EQ(format_match(r.cmd.filter.match),
            "role checkpoint proto 6 src 10.0.0.0/8 dst 10.1.0.0/16 sport 1000-2000 dscp 46");
  r = parse_command("filter del link pref 5");
  ASSERT_TRUE(r.ok) << r.error;
  r = parse_command("qdisc add link rate 10gbit burst 64k default bulk");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(*r.cmd.qdisc.rate, 1'250'000'000u);
  EXPECT_EQ(*r.cmd.qdisc.default_class, "bulk");
}

// Each bad spec is refused, and the message names the offending token.
TEST(SchedSpec, BadSpecsAreRefusedNamingTheToken) {
  const struct {
    const char* line;
    const char* must_contain;
  } cases[] = {
      {"class add link hb prio 9", "'9'"},
      {"class add link hb prio 0 rate 10mbps0", "'10mbps0'"},
      {"class add link hb rate", "rate: missing value"},
      {"class add link hb rate 1mbit rate 2mbit", "'rate' given twice"},
      {"class add link hb speed 10mbit", "'speed'"},
      {"class add link hb burst 15q", "'15q'"},
      {"class add link hb limit -3", "'-3'"},
      {"class add link", "missing class name"},
      {"class add link h*b", "'h*b'"},
      {"class del link hb rate 1mbit", "'rate'"},
      {"class launch link hb", "'launch'"},
      {"klass add link hb", "'klass'"},
      {"filter add link dport 9000", "missing 'class NAME'"},
      {"filter add link dport 90000 class proxy", "'90000'"},
      {"filter add link src 10.0.0.0/40 class proxy", "'10.0.0.0/40'"},
      {"filter add link role hb class proxy", "'hb'"},
      {"filter add link dscp af99 class proxy", "'af99'"},
      {"filter add link proto xtp class proxy", "'xtp'"},
      {"filter add link dport 1 dport 2 class proxy", "'dport' given twice"},
      {"filter add link class proxy extra", "'extra'"},
      {"filter add link src 10.0.0.0/8 dst ::1 class proxy", "different address families"},
      {"filter del link", "pref"},
      {"qdisc add link rate fast", "'fast'"},
      {"qdisc add link colour red", "'colour'"},
      {"", "empty command"},
  };
  for (const auto& c : cases) {
    const ParseResult r = parse_command(c.line);
    EXPECT_FALSE(r.ok) << c.line;
    EXPECT_NE(r.error.find(c.must_contain), std::string::npos)
        << "'" << c.line << "' gave: " << r.error;
  }
}

TEST(SchedSpec, ScriptReportsTheLine) {
  ScriptResult s = parse_script("# link\nqdisc add link rate 1gbit\n\nclass add link a prio 1\n");
  ASSERT_TRUE(s.ok) << s.error;
  EXPECT_EQ(s.cmds.size(), 2u);
  EXPECT_EQ(s.lines[1], 4u);
  s = parse_script("qdisc add link rate 1gbit\nclass add link a prio x\n");
  EXPECT_FALSE(s.ok);
  EXPECT_EQ(s.error.rfind("line 2: ", 0), 0u) << s.error;
}

TEST(SchedSpec, ConfigRefusesWhatDoesNotFit) {
  SchedConfig limits;
  QosConfig c = QosConfig::initial("link");
  auto apply = [&](const char* line) {
    ParseResult r = parse_command(line);
    EXPECT_TRUE(r.ok) << line << ": " << r.error;
    return c.apply(r.cmd, limits);
  };
  EXPECT_NE(apply("class add link a prio 1").find("no qdisc"), std::string::npos);
  EXPECT_EQ(apply("qdisc add link rate 100mbit"), "");
  EXPECT_NE(apply("qdisc add link rate 100mbit").find("already"), std::string::npos);
  EXPECT_EQ(apply("class add link a prio 1 rate 60mbit"), "");
  EXPECT_NE(apply("class add link a prio 2").find("already exists"), std::string::npos);
  EXPECT_NE(apply("class add link b rate 50mbit").find("add up to 110mbit"), std::string::npos);
  EXPECT_NE(apply("class add link b rate 20mbit ceil 10mbit").find("ceil"), std::string::npos);
  EXPECT_NE(apply("class change link zz prio 1").find("'zz' does not exist"), std::string::npos);
  EXPECT_NE(apply("filter add link dport 1 class zz").find("'zz' does not exist"), std::string::npos);
  EXPECT_EQ(apply("filter add link dport 1 class a"), "");
  EXPECT_NE(apply("class del link a").find("pref 10"), std::string::npos);
  EXPECT_NE(apply("class del link default").find("cannot be deleted"), std::string::npos);
  EXPECT_NE(apply("qdisc change link default zz").find("'zz'"), std::string::npos);
  EXPECT_NE(apply("qdisc change link rate 50mbit").find("above the port rate"), std::string::npos);
  EXPECT_NE(apply("filter del link pref 99").find("pref 99"), std::string::npos);
  EXPECT_NE(apply("class add eth0 x").find("'eth0'"), std::string::npos);
  EXPECT_EQ(apply("filter del link pref 10"), "");
  EXPECT_EQ(apply("class del link a"), "");
  // A refused command changed nothing.
  const std::vector<std::string> cmds = c.to_commands();
  ASSERT_EQ(cmds.size(), 2u);
  EXPECT_EQ(cmds[0], "qdisc add link rate 100mbit");
  EXPECT_EQ(cmds[1], "class replace link default prio 7");
}

}  // namespace
}  // namespace lockstep::sched
