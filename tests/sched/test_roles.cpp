// The role map: the defaults (lockstepd's heartbeat and checkpointer ports, QEMU's COLO
// ports), first match by pref, `defaults` inside a script, live add/replace/del, frames
// parsed from bytes (TCP/UDP, IPv4/IPv6, VLAN, non-IP), bad rules refused naming the
// word and token.
#include "dataplane/qos/sched/roles.h"

#include <gtest/gtest.h>

#include "dataplane/qos/sched/spec.h"
#include "tests/support/frame_builder.h"

namespace lockstep::sched {
namespace {

using test::Bytes;

Bytes frame(uint8_t proto, uint16_t sport, uint16_t dport, bool v6 = false,
            std::vector<uint16_t> vlans = {}) {
  test::FrameSpec s;
  s.src = v6 ? test::ip6_doc(1) : test::ip4(192, 168, 10, 1);
  s.dst = v6 ? test::ip6_doc(2) : test::ip4(192, 168, 10, 2);
  s.proto = proto;
  s.sport = sport;
  s.dport = dport;
  s.vlans = std::move(vlans);
  s.payload.assign(32, 0x5a);
  return test::build_frame(s);
}

TrafficRole role_of(const RoleMap& m, const Bytes& f) {
  return m.resolve(Classifier::fields_of(f.data(), static_cast<uint32_t>(f.size()), TrafficRole::other));
}

RoleMap defaults_map(RoleDefaultsInput in = {{9099}, {9009}}) {
  RoleMap m;
  std::string err;
  const auto d = default_role_rules(in);
  EXPECT_TRUE(build_role_map("", d, m, err)) << err;
  return m;
}

TEST(RoleMap, DefaultsTagColoTrafficBothDirections) {
  const RoleMap m = defaults_map();
  // lockstep's heartbeats (UDP 9099, either side) and the checkpointer link (TCP 9009).
  EXPECT_EQ(role_of(m, frame(kProtoUdp, 40000, 9099)), TrafficRole::heartbeat);
  EXPECT_EQ(role_of(m, frame(kProtoUdp, 9099, 40000)), TrafficRole::heartbeat);
  EXPECT_EQ(role_of(m, frame(kProtoTcp, 9009, 50000)), TrafficRole::heartbeat);
  // QEMU's COLO ports: migration/checkpoint, NBD block replication, the redirector's SVM
  // output stream, the mirror stream.
  EXPECT_EQ(role_of(m, frame(kProtoTcp, 50001, 9998)), TrafficRole::checkpoint);
  EXPECT_EQ(role_of(m, frame(kProtoTcp, 9998, 50001)), TrafficRole::checkpoint) << "the acks too";
  EXPECT_EQ(role_of(m, frame(kProtoTcp, 50002, 10809)), TrafficRole::block_replication);
  EXPECT_EQ(role_of(m, frame(kProtoTcp, 50002, 9999)), TrafficRole::block_replication);
  EXPECT_EQ(role_of(m, frame(kProtoTcp, 50003, 9004)), TrafficRole::svm_output);
  EXPECT_EQ(role_of(m, frame(kProtoTcp, 50004, 9003)), TrafficRole::proxy);
  // Not these: UDP on a TCP port, other ports, IPv6 and VLAN-tagged alike, non-IP.
  EXPECT_EQ(role_of(m, frame(kProtoUdp, 50001, 9998)), TrafficRole::other);
  EXPECT_EQ(role_of(m, frame(kProtoTcp, 50001, 80)), TrafficRole::other);
  EXPECT_EQ(role_of(m, frame(kProtoTcp, 50001, 9998, true)), TrafficRole::checkpoint);
  EXPECT_EQ(role_of(m, frame(kProtoTcp, 50001, 10809, false, {7})), TrafficRole::block_replication);
  test::FrameSpec arp;
  arp.raw_ethertype = 0x0806;
  arp.payload.assign(28, 0);
  EXPECT_EQ(role_of(m, test::build_frame(arp)), TrafficRole::other);
  // Without heartbeat or checkpointer settings, no heartbeat rule at all.
  const RoleMap bare = defaults_map({});
  EXPECT_EQ(role_of(bare, frame(kProtoUdp, 40000, 9099)), TrafficRole::other);
  EXPECT_EQ(role_of(bare, frame(kProtoTcp, 1, 9998)), TrafficRole::checkpoint);
}

TEST(RoleMap, DefaultsAreDeduplicatedAndOrderedHeartbeatFirst) {
  // A heartbeat port that collides with a QEMU default keeps the heartbeat role.
  const auto d = default_role_rules({{9099, 9099}, {9998}});
  ASSERT_FALSE(d.empty());
  EXPECT_EQ(d[0].role, TrafficRole::heartbeat);
  size_t n9099 = 0, n9998 = 0;
  for (const auto& r : d) {
    n9099 += r.match.proto == kProtoUdp && r.match.port.lo == 9099;
    n9998 += r.match.proto == kProtoTcp && r.match.port.lo == 9998;
  }
  EXPECT_EQ(n9099, 1u);
  EXPECT_EQ(n9998, 1u);
  const RoleMap m = defaults_map({{}, {9998}});
  EXPECT_EQ(role_of(m, frame(kProtoTcp, 1, 9998)), TrafficRole::heartbeat);
}

TEST(RoleMap, ScriptRulesFirstMatchByPrefAndDefaultsInPlace) {
  RoleMap m;
  std::string err;
  const auto d = default_role_rules({{9099}, {}});
  // Operator rules before the defaults: 9998 is block replication here (first match),
  // a source prefix makes a checkpoint role; the defaults follow.
  ASSERT_TRUE(build_role_map("block_replication proto tcp port 9998\n"
                             "# comment line\n"
                             "\n"
                             "checkpoint src 10.9.0.0/16 proto tcp\n"
                             "defaults\n"
                             "pref 5 heartbeat proto udp dport 7000-7010\n",
                             d, m, err))
      << err;
  EXPECT_EQ(m.rules().front().pref, 5u);
  EXPECT_EQ(m.rules().front().role, TrafficRole::heartbeat);
  EXPECT_EQ(role_of(m, frame(kProtoTcp, 1, 9998)), TrafficRole::block_replication);
  EXPECT_EQ(role_of(m, frame(kProtoUdp, 1, 7005)), TrafficRole::heartbeat);
  EXPECT_EQ(role_of(m, frame(kProtoUdp, 1, 7011)), TrafficRole::other);
  EXPECT_EQ(role_of(m, frame(kProtoUdp, 1, 9099)), TrafficRole::heartbeat) << "from the defaults";
  test::FrameSpec s;
  s.src = test::ip4(10, 9, 3, 4);
  s.dst = test::ip4(10, 8, 0, 1);
  s.sport = 1234;
  s.dport = 80;
  EXPECT_EQ(role_of(m, test::build_frame(s)), TrafficRole::checkpoint);
  // Rules given without `defaults`: the defaults are not there.
  RoleMap only;
  ASSERT_TRUE(build_role_map("checkpoint proto tcp port 8888", d, only, err)) << err;
  EXPECT_EQ(only.rules().size(), 1u);
  EXPECT_EQ(role_of(only, frame(kProtoTcp, 1, 8888)), TrafficRole::checkpoint);
  EXPECT_EQ(role_of(only, frame(kProtoTcp, 1, 9998)), TrafficRole::other);
  // The text form reads back to the same rule.
  for (const RoleRule& r : m.rules()) {
    RoleParse p = parse_role_line(format_role_rule(r));
    ASSERT_TRUE(p.ok) << format_role_rule(r) << ": " << p.error;
    EXPECT_EQ(*p.cmd.pref, r.pref);
    EXPECT_EQ(p.cmd.role, r.role);
    EXPECT_EQ(format_match(p.cmd.match), format_match(r.match));
  }
}

TEST(RoleMap, LiveCommandsAddReplaceDelete) {
  RoleMap m = defaults_map({{}, {}});
  const size_t before = m.rules().size();
  auto run = [&](const char* line) {
    RoleParse p = parse_role_command(line);
    if (!p.ok) return p.error;
    return apply_role_command(m, p.cmd);
  };
  EXPECT_EQ(run("role add pref 1 checkpoint proto tcp dport 8888"), "");
  EXPECT_EQ(role_of(m, frame(kProtoTcp, 1, 8888)), TrafficRole::checkpoint);
  EXPECT_EQ(run("qos role replace pref 1 block_replication proto tcp dport 8888"), "");
  EXPECT_EQ(role_of(m, frame(kProtoTcp, 1, 8888)), TrafficRole::block_replication);
  EXPECT_EQ(run("add heartbeat proto udp port 6000"), "");
  EXPECT_EQ(m.rules().back().pref, m.rules()[m.rules().size() - 2].pref + 10) << "auto pref";
  EXPECT_EQ(role_of(m, frame(kProtoUdp, 6000, 1)), TrafficRole::heartbeat);
  EXPECT_EQ(run("del pref 1"), "");
  EXPECT_EQ(role_of(m, frame(kProtoTcp, 1, 8888)), TrafficRole::other);
  EXPECT_EQ(m.rules().size(), before + 1);
  // Refused, nothing changes.
  EXPECT_NE(run("add pref 10 checkpoint proto tcp port 1").find("exists"), std::string::npos);
  EXPECT_NE(run("del pref 77").find("no role rule with pref 77"), std::string::npos);
  EXPECT_NE(run("replace pref 78 checkpoint all").find("no role rule"), std::string::npos);
  EXPECT_EQ(m.rules().size(), before + 1);
}

TEST(RoleMap, BadRulesAreRefusedNamingTheToken) {
  auto err_of = [](const char* line) { return parse_role_line(line).error; };
  EXPECT_NE(err_of("chekpoint proto tcp port 9998").find("'chekpoint'"), std::string::npos);
  EXPECT_NE(err_of("checkpoint proto tcp port 99999").find("99999"), std::string::npos);
  EXPECT_NE(err_of("checkpoint proto tcpp").find("tcpp"), std::string::npos);
  EXPECT_NE(err_of("checkpoint speed 10").find("'speed'"), std::string::npos);
  EXPECT_NE(err_of("checkpoint").find("missing match"), std::string::npos);
  EXPECT_NE(err_of("checkpoint role heartbeat").find("'role'"), std::string::npos);
  EXPECT_NE(err_of("checkpoint port").find("port: missing value"), std::string::npos);
  EXPECT_NE(err_of("pref x checkpoint all").find("pref"), std::string::npos);
  EXPECT_NE(err_of("checkpoint src 10.0.0.0/8 dst 2001:db8::/32").find("address families"),
            std::string::npos);
  EXPECT_NE(parse_role_command("role drop pref 1").error.find("'drop'"), std::string::npos);
  EXPECT_NE(parse_role_command("role del").error.find("pref N"), std::string::npos);
  EXPECT_NE(parse_role_command("role del pref 1 heartbeat").error.find("'heartbeat'"),
            std::string::npos);
  EXPECT_NE(parse_role_command("role replace checkpoint all").error.find("pref N"), std::string::npos);
  RoleMap m;
  std::string err;
  EXPECT_FALSE(build_role_map("checkpoint proto tcp port 9998\nheartbeat udp 9099\n", {}, m, err));
  EXPECT_NE(err.find("line 2"), std::string::npos) << err;
  EXPECT_NE(err.find("'udp'"), std::string::npos) << err;
  EXPECT_FALSE(build_role_map("pref 10 checkpoint all\npref 10 heartbeat all\n", {}, m, err));
  EXPECT_NE(err.find("line 2"), std::string::npos) << err;
  EXPECT_TRUE(m.rules().empty()) << "a refused script leaves the map as it was";
  // The table is bounded.
  std::string many;
  for (unsigned i = 0; i < RoleMap::kMaxRules + 1; ++i)
    many += "checkpoint proto tcp port " + std::to_string(1000 + i) + "\n";
  EXPECT_FALSE(build_role_map(many, {}, m, err));
  EXPECT_NE(err.find("full"), std::string::npos) << err;
}

}  // namespace
}  // namespace lockstep::sched
