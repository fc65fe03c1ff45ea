// Many guests in one dataplane (`guests:`), in process on net_ring ports, stepped on the
// test thread with explicit time: three guests, one with two NICs, on their own ports;
// the same guests on ports shared through MAC/VLAN classification; and the guest keys of
// the configuration (no EAL needed for those).
//
// What must hold: a divergence on one NIC of a guest checkpoints that guest once and
// releases the held output of all its NICs; the other guests keep flowing, byte-exact,
// without a checkpoint or an added hold; every guest's counters obey conservation, and
// every mbuf is back in the pool at the end.
#include <gtest/gtest.h>
#include <rte_mempool.h>

#include <memory>
#include <string>
#include <vector>

#include "dataplane/edge/dataplane.h"
#include "dataplane/qos/sched/spec.h"
#include "tests/dataplane/eal_env.h"
#include "tests/dataplane/ring_rig.h"
#include "tests/support/frame_builder.h"

namespace lockstep {
namespace {

using dp::Config;
using dp::Dataplane;
using dp::PortRole;
using dptest::EalEnv;
using dptest::RingRig;
using test::Bytes;
using test::Conversation;
using test::Vm;

constexpr uint64_t kMs = 1000000;

// ---- configuration (no EAL) ------------------------------------------------------------

TEST(GuestConfig, ParsesGuestsNicsAndOwnSettingsOverTheTopLevel) {
  const char* yaml = R"(
guests:
  web:
    nics:
      - ext: net_ring_a
        pvm: net_ring_b
        svm: net_ring_c
      - ext: net_ring_d
        pvm: net_ring_e
        svm: net_ring_f
    engine:
      compare_timeout_us: 7000
  db:
    nics:
      - {ext: net_ring_g, pvm: net_ring_h, svm: net_ring_i, mac: "52:54:00:00:00:07", vlan: 12}
    checkpointer:
      latency_us: 300
engine:
  compare_timeout_us: 9000
checkpointer:
  latency_us: 800
)";
  Config cfg;
  std::string err;
  ASSERT_TRUE(dp::parse_config(yaml, cfg, err)) << err;
  ASSERT_TRUE(dp::validate(cfg, err)) << err;
  std::vector<dp::GuestSpec> g;
  ASSERT_TRUE(dp::resolve_guests(cfg, g, err)) << err;
  ASSERT_EQ(g.size(), 2u);
  EXPECT_EQ(g[0].name, "web");
  ASSERT_EQ(g[0].nics.size(), 2u);
  EXPECT_EQ(g[0].nics[1].ports[1], "net_ring_e");
  EXPECT_EQ(g[0].engine.compare_timeout_us, 7000u) << "the guest's own key";
  EXPECT_EQ(g[0].checkpointer.latency_us, 800u) << "the top level's, though it comes later";
  EXPECT_EQ(g[1].engine.compare_timeout_us, 9000u) << "the top level's, though it comes later";
  EXPECT_EQ(g[1].checkpointer.latency_us, 300u);
  EXPECT_TRUE(g[1].nics[0].has_mac);
  EXPECT_EQ(dp::format_mac(g[1].nics[0].mac), "52:54:00:00:00:07");
  EXPECT_EQ(g[1].nics[0].vlan, 12);
  // Every device once, named by its key (the EAL's --vdev list).
  auto devices = dp::port_devices(cfg);
  ASSERT_EQ(devices.size(), 9u);
  EXPECT_EQ(devices[4].first, "guests.web.nics.1.pvm");
  // --set reaches a guest's keys too.
  ASSERT_TRUE(dp::apply_override("guests.db.engine.compare_timeout_us=1234", cfg, err)) << err;
  ASSERT_TRUE(dp::resolve_guests(cfg, g, err)) << err;
  EXPECT_EQ(g[1].engine.compare_timeout_us, 1234u);
}

TEST(GuestConfig, HeartbeatPeersBelongToAGuestsLink) {
  const char* yaml = R"(
heartbeat: {bind: "127.0.0.1:7000"}
guests:
  a:
    nics: [{ext: p1, pvm: p2, svm: p3}]
    checkpointer: {kind: native, endpoint: "unix:/run/a.sock"}
    peers:
      other-host: {timeout_ms: 300, action: failover-primary}
)";
  Config cfg;
  std::string err;
  ASSERT_TRUE(dp::parse_config(yaml, cfg, err)) << err;
  ASSERT_TRUE(dp::validate(cfg, err)) << err;
  std::vector<dp::GuestSpec> g;
  ASSERT_TRUE(dp::resolve_guests(cfg, g, err)) << err;
  ASSERT_EQ(g[0].peers.size(), 1u);
  EXPECT_EQ(g[0].peers.at("other-host").timeout_ms, 300u);
  EXPECT_EQ(g[0].peers.at("other-host").action, "failover-primary");
  // A simulated checkpointer has no link to watch them.
  Config sim;
  ASSERT_TRUE(dp::parse_config("guests:\n  a:\n    nics: [{ext: p1, pvm: p2, svm: p3}]\n"
                               "    peers: {x: {timeout_ms: 100}}\n",
                               sim, err))
      << err;
  EXPECT_FALSE(dp::validate(sim, err));
  EXPECT_NE(err.find("guests.a.peers"), std::string::npos) << err;
}

TEST(GuestConfig, WithoutGuestsTheSinglePairIsOneGuestNamedDefault) {
  Config cfg;
  std::string err;
  ASSERT_TRUE(dp::parse_config("ports: {ext: net_ring_x, pvm: net_ring_y, svm: net_ring_z}\n", cfg, err))
      << err;
  std::vector<dp::GuestSpec> g;
  ASSERT_TRUE(dp::resolve_guests(cfg, g, err)) << err;
  ASSERT_EQ(g.size(), 1u);
  EXPECT_EQ(g[0].name, "default");
  EXPECT_EQ(g[0].nics[0].ports[2], "net_ring_z");
}

TEST(GuestConfig, RefusesWhatCannotWorkNamingTheKey) {
  struct Case {
    const char* yaml;
    const char* key;  // the error names it
  };
  const Case cases[] = {
      // a shared port needs every NIC on it classified
      {"guests:\n  a: {nics: [{ext: p1, pvm: p2, svm: p3}]}\n  b: {nics: [{ext: p1, pvm: p4, svm: p5}]}\n",
       "guests.b.nics.0"},
      // two NICs on one port alike
      {"guests:\n  a: {nics: [{ext: p1, pvm: p2, svm: p3, vlan: 5}]}\n"
       "  b: {nics: [{ext: p1, pvm: p4, svm: p5, vlan: 5}]}\n",
       "guests.b.nics.0.mac"},
      // one device in two roles
      {"guests:\n  a: {nics: [{ext: p1, pvm: p1, svm: p3}]}\n", "guests.a.nics.0.pvm"},
      {"guests:\n  a: {nics: [{ext: p1, pvm: p2}]}\n", "guests.a.nics.0.svm"},
      {"guests:\n  a: {nics: [{ext: p1, pvm: p2, svm: p3, mac: 01:00:5e:00:00:01}]}\n",
       "guests.a.nics.0.mac"},
      {"guests:\n  a: {nics: [{ext: p1, pvm: p2, svm: p3, vlan: 4096}]}\n", "guests.a.nics.0.vlan"},
      {"guests:\n  a: {nics: [{ext: p1, pvm: p2, svm: p3, colour: red}]}\n", "guests.a.nics.0.colour"},
      {"guests:\n  a: {nics: [{ext: p1, pvm: p2, svm: p3}], engine: {compare_timeout_us: x}}\n",
       "guests.a.engine.compare_timeout_us"},
      {"guests:\n  a: {nics: [{ext: p1, pvm: p2, svm: p3}], checkpointer: {kind: native}}\n",
       "guests.a.checkpointer.endpoint"},
      {"guests:\n  'a b': {nics: [{ext: p1, pvm: p2, svm: p3}]}\n", "guests.a b"},
      {"guests:\n  a: {nics: []}\n", "guests.a.nics"},
      {"ports: {ext: p0}\nguests:\n  a: {nics: [{ext: p1, pvm: p2, svm: p3}]}\n", "ports.ext"},
  };
  for (const auto& c : cases) {
    Config cfg;
    std::string err;
    bool ok = dp::parse_config(c.yaml, cfg, err) && dp::validate(cfg, err);
    EXPECT_FALSE(ok) << c.yaml;
    EXPECT_NE(err.find(c.key), std::string::npos) << c.yaml << " -> " << err;
  }
}


TEST(GuestConfig, GuestDelHeldPortsMacAndQosGuestFiltersAreCheckedAtLoad) {
  Config cfg;
  std::string err;
  ASSERT_TRUE(dp::parse_config("guest_del:\n  held: drop\n"
                               "ports: {ext: p1, pvm: p2, svm: p3, mac: '52:54:00:00:00:01', vlan: 7}\n",
                               cfg, err))
      << err;
  ASSERT_TRUE(dp::validate(cfg, err)) << err;
  EXPECT_EQ(cfg.guest_del_held, dp::HeldPolicy::drop);
  std::vector<dp::GuestSpec> g;
  ASSERT_TRUE(dp::resolve_guests(cfg, g, err)) << err;
  EXPECT_TRUE(g[0].nics[0].has_mac) << "the single pair's MAC: its NIC's";
  EXPECT_EQ(g[0].nics[0].vlan, 7);
  // as_guests_config: the single pair as the guest `default`.
  Config full = dp::as_guests_config(cfg);
  ASSERT_EQ(full.guests.size(), 1u);
  EXPECT_EQ(full.guests[0].name, "default");
  EXPECT_EQ(full.guests[0].nics[0].ports[0], "p1");
  EXPECT_TRUE(full.ports[0].empty());
  EXPECT_TRUE(dp::validate(full, err)) << err;
  // Junk refused naming the key.
  Config junk;
  EXPECT_FALSE(dp::parse_config("guest_del: {held: keep}\nports: {ext: p1, pvm: p2, svm: p3}\n", junk, err));
  EXPECT_NE(err.find("guest_del.held"), std::string::npos) << err;
  EXPECT_NE(err.find("release or drop"), std::string::npos) << err;
  EXPECT_FALSE(dp::apply_override("ports.mac=01:02", junk, err));
  EXPECT_NE(err.find("ports.mac"), std::string::npos) << err;

  // A scheduler filter naming a guest: resolved to the guest's index once the file's
  // guests are known (qos: may come first); an unknown one is refused naming the key,
  // the line and the token.
  const std::string qos_then_guests = R"(
qos:
  ext:
    - qdisc add ext rate 1gbit
    - class add ext slow prio 1 rate 1mbit ceil 1mbit
    - filter add ext guest GUEST class slow
guests:
  a: {nics: [{ext: p1, pvm: p2, svm: p3, mac: "52:54:00:00:00:0a"}]}
  b: {nics: [{ext: p1, pvm: p4, svm: p5, mac: "52:54:00:00:00:0b"}]}
)";
  auto with = [&](const std::string& guest) {
    std::string y = qos_then_guests;
    y.replace(y.find("GUEST"), 5, guest);
    return y;
  };
  Config ok;
  ASSERT_TRUE(dp::parse_config(with("b"), ok, err)) << err;
  EXPECT_TRUE(dp::validate(ok, err)) << err;
  Config unknown;
  const bool refused = !dp::parse_config(with("zz"), unknown, err) || !dp::validate(unknown, err);
  EXPECT_TRUE(refused);
  EXPECT_NE(err.find("qos.ext"), std::string::npos) << err;
  EXPECT_NE(err.find("line 3"), std::string::npos) << err;
  EXPECT_NE(err.find("'zz'"), std::string::npos) << err;
  // The pure parser: the name resolved to its index, shown back as written.
  const std::vector<std::string> names{"a", "b"};
  sched::ParseResult pr;
  {
    const sched::GuestNamesScope scope(names);
    pr = sched::parse_command("filter add ext guest b proto tcp class slow");
  }
  ASSERT_TRUE(pr.ok) << pr.error;
  EXPECT_EQ(pr.cmd.filter.match.guest, 1u);
  EXPECT_NE(sched::format_match(pr.cmd.filter.match).find("guest b"), std::string::npos);
  EXPECT_FALSE(sched::parse_command("filter add ext guest b class slow").ok)
      << "without the guests known, a guest name is refused";
}

// ---- three guests, four NICs, each NIC on its own ports -------------------------------


// The classifier of a shared port: every NIC's (MAC, VLAN) found, a NIC with a MAC on
// any VLAN and a NIC by VLAN only as fallbacks, in that order, and nothing else matched;
// at 256 NICs as at 2 (each add rebuilds the table, larger while keys collide).
TEST(UnitClassifier, FindsEveryNicByMacAndVlanAtAnySize) {
  auto frame = [](unsigned unit, int vlan, bool client) {
    std::vector<uint8_t> f(64, 0);
    const uint8_t mac[6] = {0x52, 0x54, 0x00, static_cast<uint8_t>(unit >> 8),
                            static_cast<uint8_t>(unit), 0x01};
    std::copy(mac, mac + 6, f.begin() + (client ? 0 : 6));
    f[client ? 6 : 0] = 0x02;  // the other side's MAC: unicast, not a NIC's
    if (vlan >= 0) {
      f[12] = 0x81, f[13] = 0x00, f[14] = static_cast<uint8_t>(vlan >> 8),
      f[15] = static_cast<uint8_t>(vlan), f[16] = 0x08;
    } else {
      f[12] = 0x08;
    }
    return f;
  };
  for (unsigned n : {2u, 7u, 64u, 256u}) {
    dp::UnitClassifier c;
    for (unsigned u = 0; u < n; ++u) {
      dp::UnitPlan p;
      p.mac = {0x52, 0x54, 0x00, static_cast<uint8_t>(u >> 8), static_cast<uint8_t>(u), 0x01};
      p.has_mac = true;
      p.vlan = u % 3 == 0 ? static_cast<int>(10 + u) : -1;  // a third on a VLAN of their own
      c.add(p, u);
    }
    dp::UnitPlan by_vlan;  // VLAN 4000: whatever MAC
    by_vlan.vlan = 4000;
    c.add(by_vlan, n);
    for (unsigned u = 0; u < n; ++u) {
      const int vlan = u % 3 == 0 ? static_cast<int>(10 + u) : -1;
      for (bool client : {true, false}) {
        auto f = frame(u, vlan, client);
        EXPECT_EQ(c.lookup(f.data(), static_cast<uint32_t>(f.size()), client), static_cast<int>(u))
            << n << " NICs, NIC " << u;
      }
      // A NIC with a MAC on any VLAN takes that MAC on every VLAN; one on a VLAN does
      // not take its MAC on another, where VLAN 4000's NIC takes every MAC.
      auto other = frame(u, 4000, true);
      EXPECT_EQ(c.lookup(other.data(), static_cast<uint32_t>(other.size()), true),
                vlan < 0 ? static_cast<int>(u) : static_cast<int>(n));
      auto untagged = frame(u, -1, true);
      EXPECT_EQ(c.lookup(untagged.data(), static_cast<uint32_t>(untagged.size()), true),
                vlan < 0 ? static_cast<int>(u) : -1);
    }
    auto stranger = frame(n + 1000, -1, true);
    EXPECT_EQ(c.lookup(stranger.data(), static_cast<uint32_t>(stranger.size()), true), -1);
    auto stranger_vlan = frame(n + 1000, 4000, false);
    EXPECT_EQ(c.lookup(stranger_vlan.data(), static_cast<uint32_t>(stranger_vlan.size()), false),
              static_cast<int>(n));
    EXPECT_EQ(c.lookup(stranger.data(), 13, true), -1);  // shorter than an Ethernet header
  }
}
class DataplaneGuests : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!EalEnv::ok_) GTEST_SKIP() << "EAL did not start (no --no-huge memory?)";
  }
};

// A NIC's rig: its three ports, made through a scratch Config.
struct NicRig {
  NicRig(const std::string& tag, dp::NicConfig& nic) {
    Config scratch;
    rig = std::make_unique<RingRig>(tag, std::initializer_list<PortRole>{PortRole::ext, PortRole::pvm, PortRole::svm},
                                    1, scratch);
    for (unsigned r = 0; r < 3; ++r) nic.ports[r] = scratch.ports[r];
  }
  std::unique_ptr<RingRig> rig;
};

Conversation::Params params(uint16_t client_port) {
  Conversation::Params p;
  p.client_port = client_port;
  return p;
}

struct Flow {
  RingRig* rig;
  Conversation conv;
};

TEST_F(DataplaneGuests, DivergenceOnOneNicCheckpointsItsGuestOnceAndTheOthersFlow) {
  Config cfg;
  cfg.pool_mbufs = 4095;
  cfg.pool_cache = 0;
  cfg.checkpoint_latency_us = 1000;
  std::string err;
  ASSERT_TRUE(dp::apply_override("engine.compare_timeout_us=10000", cfg, err)) << err;
  cfg.guests.resize(3);
  cfg.guests[0].name = "a";
  cfg.guests[0].nics.resize(2);
  cfg.guests[1].name = "b";
  cfg.guests[1].nics.resize(1);
  cfg.guests[2].name = "c";
  cfg.guests[2].nics.resize(1);
  cfg.guests[2].keys.emplace_back("engine.compare_timeout_us", "50000");  // its own settings
  NicRig a0("ga0", cfg.guests[0].nics[0]), a1("ga1", cfg.guests[0].nics[1]);
  NicRig b0("gb0", cfg.guests[1].nics[0]), c0("gc0", cfg.guests[2].nics[0]);
  auto dpl = Dataplane::create(cfg, err);
  ASSERT_TRUE(dpl) << err;
  ASSERT_EQ(dpl->guests().size(), 3u);
  EXPECT_EQ(dpl->guests()[2].engine.compare_timeout_us, 50000u);
  rte_mempool* pool = dpl->pool();

  std::vector<Flow> flows{{a0.rig.get(), Conversation(params(41000))},
                          {a1.rig.get(), Conversation(params(41001))},
                          {b0.rig.get(), Conversation(params(41002))},
                          {c0.rig.get(), Conversation(params(41003))}};
  uint64_t t = 0;
  for (auto& f : flows) ASSERT_TRUE(f.rig->inject(PortRole::ext, pool, f.conv.client_syn()));
  dpl->step(t += kMs);
  for (auto& f : flows) {
    ASSERT_TRUE(f.rig->inject(PortRole::pvm, pool, f.conv.vm_synack(Vm::pvm)));
    ASSERT_TRUE(f.rig->inject(PortRole::svm, pool, f.conv.vm_synack(Vm::svm)));
  }
  dpl->step(t += kMs);
  for (auto& f : flows) {
    ASSERT_EQ(f.rig->collect(PortRole::ext).size(), 1u) << "each NIC's SYN/ACK released on its own ext";
    ASSERT_EQ(f.rig->collect(PortRole::pvm).size(), 1u) << "each client SYN mirrored on its own NIC";
    ASSERT_EQ(f.rig->collect(PortRole::svm).size(), 1u);
    ASSERT_TRUE(f.rig->inject(PortRole::ext, pool, f.conv.client_handshake_ack()));
  }
  dpl->step(t += kMs);
  for (auto& f : flows) f.rig->collect(PortRole::pvm), f.rig->collect(PortRole::svm);

  // Guest a: NIC 0 holds PVM output the SVM has not produced yet; NIC 1 diverges.
  Bytes a0_out = flows[0].conv.vm_stream(Vm::pvm, 0, 300);
  ASSERT_TRUE(a0.rig->inject(PortRole::pvm, pool, a0_out));
  Bytes a1_out = flows[1].conv.vm_stream(Vm::pvm, 0, 400, 1);
  ASSERT_TRUE(a1.rig->inject(PortRole::pvm, pool, a1_out));
  ASSERT_TRUE(a1.rig->inject(PortRole::svm, pool, flows[1].conv.vm_stream(Vm::svm, 0, 400, 2)));
  // Guests b and c agree: released in the same step, byte-exact.
  Bytes b_out = flows[2].conv.vm_stream(Vm::pvm, 0, 500);
  Bytes c_out = flows[3].conv.vm_stream(Vm::pvm, 0, 600);
  ASSERT_TRUE(b0.rig->inject(PortRole::pvm, pool, b_out));
  ASSERT_TRUE(b0.rig->inject(PortRole::svm, pool, flows[2].conv.vm_stream(Vm::svm, 0, 500)));
  ASSERT_TRUE(c0.rig->inject(PortRole::pvm, pool, c_out));
  ASSERT_TRUE(c0.rig->inject(PortRole::svm, pool, flows[3].conv.vm_stream(Vm::svm, 0, 600)));
  dpl->step(t += 100000);  // 0.1 ms: less than the checkpoint latency
  auto b_rel = b0.rig->collect(PortRole::ext);
  auto c_rel = c0.rig->collect(PortRole::ext);
  ASSERT_EQ(b_rel.size(), 1u) << "guest b is not held by guest a's divergence";
  EXPECT_EQ(b_rel[0], b_out);
  ASSERT_EQ(c_rel.size(), 1u) << "guest c is not held by guest a's divergence";
  EXPECT_EQ(c_rel[0], c_out);
  EXPECT_TRUE(a0.rig->collect(PortRole::ext).empty()) << "held: the SVM has not answered";
  EXPECT_TRUE(a1.rig->collect(PortRole::ext).empty()) << "held: diverged, checkpoint pending";

  for (int i = 0; i < 4; ++i) dpl->step(t += kMs);  // the checkpoint (1 ms) is done
  auto a0_rel = a0.rig->collect(PortRole::ext);
  auto a1_rel = a1.rig->collect(PortRole::ext);
  ASSERT_EQ(a1_rel.size(), 1u) << "the diverged NIC's output released by the checkpoint";
  EXPECT_EQ(a1_rel[0], a1_out);
  ASSERT_EQ(a0_rel.size(), 1u) << "the guest's other NIC released by the same checkpoint";
  EXPECT_EQ(a0_rel[0], a0_out);

  // More from b after a's checkpoint: still released at once.
  Bytes b_more = flows[2].conv.vm_stream(Vm::pvm, 500, 200);
  ASSERT_TRUE(b0.rig->inject(PortRole::pvm, pool, b_more));
  ASSERT_TRUE(b0.rig->inject(PortRole::svm, pool, flows[2].conv.vm_stream(Vm::svm, 500, 200)));
  dpl->step(t += 100000);
  auto b_rel2 = b0.rig->collect(PortRole::ext);
  ASSERT_EQ(b_rel2.size(), 1u);
  EXPECT_EQ(b_rel2[0], b_more);

  auto rep = dpl->report();
  ASSERT_EQ(rep.guests.size(), 3u);
  EXPECT_EQ(rep.guests[0].name, "a");
  EXPECT_EQ(rep.guests[0].nics, 2u);
  EXPECT_EQ(rep.guests[0].checkpoint_requests, 1u) << "one checkpoint for the guest";
  EXPECT_EQ(rep.guests[0].checkpoints_done, 1u);
  EXPECT_EQ(rep.guests[0].epoch, 1u);
  EXPECT_EQ(rep.guests[1].checkpoint_requests, 0u);
  EXPECT_EQ(rep.guests[1].checkpoints_done, 0u);
  EXPECT_EQ(rep.guests[2].checkpoint_requests, 0u);
  EXPECT_EQ(rep.guests[1].stats.engine.released_pvm(), 3u);  // SYN/ACK + 2 segments
  EXPECT_EQ(rep.guests[2].stats.engine.released_pvm(), 2u);
  EXPECT_EQ(rep.guests[0].stats.engine.released_pvm(), 4u);
  EXPECT_GT(rep.guests[0].stats.engine.checkpoint_reason[static_cast<unsigned>(
                CheckpointReason::payload_mismatch)],
            0u);

  dpl->finish(t + kMs);
  for (auto* r : {a0.rig.get(), a1.rig.get(), b0.rig.get(), c0.rig.get()})
    for (unsigned role = 0; role < 3; ++role) r->drain(static_cast<PortRole>(role));
  dpl->stop_ports(true);
  rep = dpl->report();
  for (const auto& g : rep.guests)
    EXPECT_EQ(g.stats.engine.conservation_error(), "") << "guest " << g.name;
  EXPECT_EQ(rep.total.engine.conservation_error(), "");
  EXPECT_EQ(rep.pool_avail, rep.pool_size) << "mbufs not returned";
}

// ---- guests added and removed live, under traffic ---------------------------------------

TEST_F(DataplaneGuests, GuestsAreAddedAndRemovedLiveUnderTraffic) {
  Config cfg;
  cfg.pool_mbufs = 4095;
  cfg.pool_cache = 0;
  cfg.checkpoint_latency_us = 1000;
  std::string err;
  ASSERT_TRUE(dp::apply_override("engine.compare_timeout_us=10000", cfg, err)) << err;
  cfg.guests.resize(2);
  cfg.guests[0].name = "a";
  cfg.guests[0].nics.resize(1);
  cfg.guests[1].name = "b";
  cfg.guests[1].nics.resize(1);
  NicRig a0("la0", cfg.guests[0].nics[0]), b0("lb0", cfg.guests[1].nics[0]);
  dp::GuestConfig d;
  d.name = "d";
  d.nics.resize(1);
  NicRig d0("ld0", d.nics[0]);  // its ports exist; the dataplane starts them at `add`
  auto dpl = Dataplane::create(cfg, err);
  ASSERT_TRUE(dpl) << err;
  rte_mempool* pool = dpl->pool();
  Conversation ca(params(43000)), cb(params(43001)), cd(params(43002));
  uint64_t t = 0;
  auto open = [&](RingRig& rig, Conversation& c) {
    ASSERT_TRUE(rig.inject(PortRole::ext, pool, c.client_syn()));
    dpl->step(t += kMs);
    ASSERT_TRUE(rig.inject(PortRole::pvm, pool, c.vm_synack(Vm::pvm)));
    ASSERT_TRUE(rig.inject(PortRole::svm, pool, c.vm_synack(Vm::svm)));
    dpl->step(t += kMs);
    ASSERT_TRUE(rig.inject(PortRole::ext, pool, c.client_handshake_ack()));
    dpl->step(t += kMs);
    EXPECT_EQ(rig.collect(PortRole::ext).size(), 1u);
    rig.collect(PortRole::pvm), rig.collect(PortRole::svm);
  };
  open(*a0.rig, ca);
  open(*b0.rig, cb);

  // A guest that is not valid is refused, nothing changes.
  dp::GuestConfig bad = d;
  bad.name = "a";
  EXPECT_FALSE(dpl->add_guest(bad, nullptr, err));
  EXPECT_NE(err.find("already"), std::string::npos) << err;
  dp::GuestConfig clash = d;
  clash.name = "e";
  clash.nics[0].ports[1] = cfg.guests[0].nics[0].ports[1];  // a's PVM port, unclassified
  EXPECT_FALSE(dpl->add_guest(clash, nullptr, err));
  EXPECT_EQ(dpl->guests().size(), 2u);

  // Guest b holds output (its SVM has not answered) when d is added and b removed.
  Bytes b_out = cb.vm_stream(Vm::pvm, 0, 300);
  ASSERT_TRUE(b0.rig->inject(PortRole::pvm, pool, b_out));
  dpl->step(t += kMs);
  ASSERT_TRUE(b0.rig->collect(PortRole::ext).empty());
  ASSERT_TRUE(dpl->add_guest(d, nullptr, err)) << err;
  ASSERT_EQ(dpl->guests().size(), 3u);
  open(*d0.rig, cd);
  Bytes d_out = cd.vm_stream(Vm::pvm, 0, 200);
  ASSERT_TRUE(d0.rig->inject(PortRole::pvm, pool, d_out));
  ASSERT_TRUE(d0.rig->inject(PortRole::svm, pool, cd.vm_stream(Vm::svm, 0, 200)));
  dpl->step(t += 100000);
  auto d_rel = d0.rig->collect(PortRole::ext);
  ASSERT_EQ(d_rel.size(), 1u) << "the added guest is compared and released";
  EXPECT_EQ(d_rel[0], d_out);

  ASSERT_TRUE(dpl->remove_guest("b", err)) << err;
  auto b_rel = b0.rig->collect(PortRole::ext);
  ASSERT_EQ(b_rel.size(), 1u) << "a removed guest's held PVM output is released";
  EXPECT_EQ(b_rel[0], b_out);
  EXPECT_TRUE(dpl->guest_removed(1));
  EXPECT_FALSE(dpl->remove_guest("b", err));
  // b's ports are no longer read: a frame there stays in its ring.
  ASSERT_TRUE(b0.rig->inject(PortRole::pvm, pool, cb.vm_stream(Vm::pvm, 300, 10)));
  dpl->step(t += kMs);
  EXPECT_TRUE(b0.rig->collect(PortRole::ext).empty());
  // a keeps flowing.
  Bytes a_out = ca.vm_stream(Vm::pvm, 0, 400);
  ASSERT_TRUE(a0.rig->inject(PortRole::pvm, pool, a_out));
  ASSERT_TRUE(a0.rig->inject(PortRole::svm, pool, ca.vm_stream(Vm::svm, 0, 400)));
  dpl->step(t += 100000);
  auto a_rel = a0.rig->collect(PortRole::ext);
  ASSERT_EQ(a_rel.size(), 1u);
  EXPECT_EQ(a_rel[0], a_out);

  auto rep = dpl->report();
  ASSERT_EQ(rep.guests.size(), 3u);
  EXPECT_TRUE(rep.guests[1].removed);
  EXPECT_EQ(rep.guests[1].stats.engine.released_pvm(), 2u) << "its counters stay";
  EXPECT_EQ(rep.guests[1].stats.held_frames, 0u);
  EXPECT_EQ(rep.guests[2].name, "d");
  EXPECT_EQ(rep.guests[2].stats.engine.released_pvm(), 2u);
  EXPECT_EQ(rep.checkpoint_requests, 0u);

  dpl->finish(t + kMs);
  for (auto* r : {a0.rig.get(), b0.rig.get(), d0.rig.get()})
    for (unsigned role = 0; role < 3; ++role) r->drain(static_cast<PortRole>(role));
  dpl->stop_ports(true);
  rep = dpl->report();
  for (const auto& g : rep.guests)
    EXPECT_EQ(g.stats.engine.conservation_error(), "") << "guest " << g.name;
  EXPECT_EQ(rep.pool_avail, rep.pool_size) << "mbufs not returned";
}

// ---- the same on ports shared by every guest (a vSwitch hands them over one port) -----

Bytes with_mac(Bytes b, bool destination, const std::array<uint8_t, 6>& mac) {
  std::copy(mac.begin(), mac.end(), b.begin() + (destination ? 0 : 6));
  return b;
}

TEST_F(DataplaneGuests, SharedPortsAreSplitByMacAndVlan) {
  Config cfg;
  cfg.pool_mbufs = 4095;
  cfg.pool_cache = 0;
  std::string err;
  ASSERT_TRUE(dp::apply_override("engine.compare_timeout_us=10000", cfg, err)) << err;
  Config scratch;
  RingRig rig("gsh", {PortRole::ext, PortRole::pvm, PortRole::svm}, 1, scratch);
  const std::array<std::array<uint8_t, 6>, 3> macs{{{0x52, 0x54, 0, 0, 0, 1},
                                                    {0x52, 0x54, 0, 0, 0, 2},
                                                    {0x52, 0x54, 0, 0, 0, 3}}};
  cfg.guests.resize(3);
  for (unsigned g = 0; g < 3; ++g) {
    cfg.guests[g].name = "g" + std::to_string(g);
    dp::NicConfig nic;
    for (unsigned r = 0; r < 3; ++r) nic.ports[r] = scratch.ports[r];
    nic.mac = macs[g];
    nic.has_mac = true;
    cfg.guests[g].nics.push_back(nic);
  }
  ASSERT_TRUE(dp::validate(cfg, err)) << err;
  auto dpl = Dataplane::create(cfg, err);
  ASSERT_TRUE(dpl) << err;
  rte_mempool* pool = dpl->pool();
  std::vector<Conversation> conv;
  for (unsigned g = 0; g < 3; ++g) conv.emplace_back(params(static_cast<uint16_t>(42000 + g)));

  uint64_t t = 0;
  for (unsigned g = 0; g < 3; ++g)
    ASSERT_TRUE(rig.inject(PortRole::ext, pool, with_mac(conv[g].client_syn(), true, macs[g])));
  dpl->step(t += kMs);
  auto to_pvm = rig.collect(PortRole::pvm);
  ASSERT_EQ(to_pvm.size(), 3u);
  rig.collect(PortRole::svm);
  for (unsigned g = 0; g < 3; ++g) {
    ASSERT_TRUE(rig.inject(PortRole::pvm, pool, with_mac(conv[g].vm_synack(Vm::pvm), false, macs[g])));
    ASSERT_TRUE(rig.inject(PortRole::svm, pool, with_mac(conv[g].vm_synack(Vm::svm), false, macs[g])));
  }
  dpl->step(t += kMs);
  EXPECT_EQ(rig.collect(PortRole::ext).size(), 3u);
  for (unsigned g = 0; g < 3; ++g)
    ASSERT_TRUE(rig.inject(PortRole::ext, pool, with_mac(conv[g].client_handshake_ack(), true, macs[g])));
  dpl->step(t += kMs);
  rig.collect(PortRole::pvm), rig.collect(PortRole::svm);

  // Guest 1 diverges; 0 and 2 agree.
  std::vector<Bytes> outs;
  for (unsigned g = 0; g < 3; ++g) {
    outs.push_back(with_mac(conv[g].vm_stream(Vm::pvm, 0, 256, 1), false, macs[g]));
    ASSERT_TRUE(rig.inject(PortRole::pvm, pool, outs.back()));
    ASSERT_TRUE(rig.inject(PortRole::svm, pool,
                           with_mac(conv[g].vm_stream(Vm::svm, 0, 256, g == 1 ? 2 : 1), false, macs[g])));
  }
  // A frame for no guest's MAC, and one from an unknown VM MAC: dropped, counted.
  std::array<uint8_t, 6> stranger{0x52, 0x54, 0, 0, 0, 9};
  ASSERT_TRUE(rig.inject(PortRole::ext, pool, with_mac(conv[0].client_ack(0, 0), true, stranger)));
  ASSERT_TRUE(rig.inject(PortRole::pvm, pool, with_mac(conv[0].vm_pure_ack(Vm::pvm, 256), false, stranger)));
  // A broadcast from the clients (ARP-like): every guest's PVM and SVM gets it.
  Bytes bcast = with_mac(conv[0].client_ack(0, 0), true, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff});
  ASSERT_TRUE(rig.inject(PortRole::ext, pool, bcast));
  dpl->step(t += 100000);
  auto rel = rig.collect(PortRole::ext);
  ASSERT_EQ(rel.size(), 2u) << "guests 0 and 2 released at once";
  EXPECT_EQ(rel[0], outs[0]);
  EXPECT_EQ(rel[1], outs[2]);
  EXPECT_EQ(rig.collect(PortRole::pvm).size(), 3u) << "the broadcast reaches each guest's PVM";
  for (int i = 0; i < 4; ++i) dpl->step(t += kMs);
  rel = rig.collect(PortRole::ext);
  ASSERT_EQ(rel.size(), 1u) << "guest 1 released by its checkpoint";
  EXPECT_EQ(rel[0], outs[1]);
  auto rep = dpl->report();
  EXPECT_EQ(rep.total.drops[static_cast<unsigned>(dp::DpDrop::unclassified)], 2u);
  EXPECT_EQ(rep.guests[1].checkpoint_requests, 1u);
  EXPECT_EQ(rep.guests[0].checkpoint_requests, 0u);
  EXPECT_EQ(rep.guests[2].checkpoint_requests, 0u);

  dpl->finish(t + kMs);
  for (unsigned role = 0; role < 3; ++role) rig.drain(static_cast<PortRole>(role));
  dpl->stop_ports(true);
  rep = dpl->report();
  for (const auto& g : rep.guests)
    EXPECT_EQ(g.stats.engine.conservation_error(), "") << "guest " << g.name;
  EXPECT_EQ(rep.pool_avail, rep.pool_size) << "mbufs not returned";
}


// ---- guest del --held drop: the held PVM output dropped, counted ------------------------

TEST_F(DataplaneGuests, GuestDelReleasesOrDropsTheHeldOutputAsAsked) {
  Config cfg;
  cfg.pool_mbufs = 4095;
  cfg.pool_cache = 0;
  std::string err;
  ASSERT_TRUE(dp::apply_override("engine.compare_timeout_us=100000", cfg, err)) << err;
  cfg.guests.resize(3);
  const char* names[] = {"a", "b", "c"};
  std::vector<std::unique_ptr<NicRig>> rigs;
  for (unsigned g = 0; g < 3; ++g) {
    cfg.guests[g].name = names[g];
    cfg.guests[g].nics.resize(1);
    rigs.push_back(std::make_unique<NicRig>(std::string("hd") + names[g], cfg.guests[g].nics[0]));
  }
  auto dpl = Dataplane::create(cfg, err);
  ASSERT_TRUE(dpl) << err;
  rte_mempool* pool = dpl->pool();
  std::vector<Conversation> conv;
  for (unsigned g = 0; g < 3; ++g) conv.emplace_back(params(static_cast<uint16_t>(44000 + g)));
  uint64_t t = 0;
  for (unsigned g = 0; g < 3; ++g) {
    RingRig& rig = *rigs[g]->rig;
    ASSERT_TRUE(rig.inject(PortRole::ext, pool, conv[g].client_syn()));
    dpl->step(t += kMs);
    ASSERT_TRUE(rig.inject(PortRole::pvm, pool, conv[g].vm_synack(Vm::pvm)));
    ASSERT_TRUE(rig.inject(PortRole::svm, pool, conv[g].vm_synack(Vm::svm)));
    dpl->step(t += kMs);
    ASSERT_TRUE(rig.inject(PortRole::ext, pool, conv[g].client_handshake_ack()));
    dpl->step(t += kMs);
    ASSERT_EQ(rig.collect(PortRole::ext).size(), 1u);
    rig.collect(PortRole::pvm), rig.collect(PortRole::svm);
  }
  // b holds two segments, c one: their SVMs have not answered.
  ASSERT_TRUE(rigs[1]->rig->inject(PortRole::pvm, pool, conv[1].vm_stream(Vm::pvm, 0, 300)));
  ASSERT_TRUE(rigs[1]->rig->inject(PortRole::pvm, pool, conv[1].vm_stream(Vm::pvm, 300, 300)));
  Bytes c_out = conv[2].vm_stream(Vm::pvm, 0, 200);
  ASSERT_TRUE(rigs[2]->rig->inject(PortRole::pvm, pool, c_out));
  dpl->step(t += kMs);
  ASSERT_TRUE(rigs[1]->rig->collect(PortRole::ext).empty());
  ASSERT_TRUE(rigs[2]->rig->collect(PortRole::ext).empty());

  uint64_t released = 99, dropped = 99;
  ASSERT_TRUE(dpl->remove_guest("b", err, dp::HeldPolicy::drop, &released, &dropped)) << err;
  EXPECT_EQ(dropped, 2u) << "b's held PVM output dropped";
  EXPECT_EQ(released, 0u);
  EXPECT_TRUE(rigs[1]->rig->collect(PortRole::ext).empty()) << "nothing of b's reaches its clients";
  ASSERT_TRUE(dpl->remove_guest("c", err, dp::HeldPolicy::release, &released, &dropped)) << err;
  EXPECT_EQ(released, 1u);
  EXPECT_EQ(dropped, 0u);
  auto c_rel = rigs[2]->rig->collect(PortRole::ext);
  ASSERT_EQ(c_rel.size(), 1u) << "c's held PVM output released, as at shutdown";
  EXPECT_EQ(c_rel[0], c_out);

  auto rep = dpl->report();
  EXPECT_EQ(rep.guests[1].stats.del_dropped, 2u);
  EXPECT_EQ(rep.guests[1].stats.del_released, 0u);
  EXPECT_EQ(rep.guests[2].stats.del_released, 1u);
  EXPECT_EQ(rep.guests[2].stats.del_dropped, 0u);
  EXPECT_EQ(rep.total.drops[static_cast<unsigned>(dp::DpDrop::guest_del_held)], 2u)
      << "counted under its drop reason";
  EXPECT_EQ(dp::to_string(dp::DpDrop::guest_del_held), "guest_del_held");

  dpl->finish(t + kMs);
  for (auto& r : rigs)
    for (unsigned role = 0; role < 3; ++role) r->rig->drain(static_cast<PortRole>(role));
  dpl->stop_ports(true);
  rep = dpl->report();
  for (const auto& gr : rep.guests)
    EXPECT_EQ(gr.stats.engine.conservation_error(), "") << "guest " << gr.name;
  EXPECT_EQ(rep.pool_avail, rep.pool_size) << "mbufs not returned";
}

// ---- guest add on a single-pair configuration: the pair is the guest `default` ----------

TEST_F(DataplaneGuests, GuestAddOnASinglePairMakesItTheGuestDefault) {
  Config cfg;
  cfg.pool_mbufs = 4095;
  cfg.pool_cache = 0;
  std::string err;
  ASSERT_TRUE(dp::apply_override("engine.compare_timeout_us=10000", cfg, err)) << err;
  RingRig rig("spd", {PortRole::ext, PortRole::pvm, PortRole::svm}, 1, cfg);  // ports.ext/pvm/svm
  ASSERT_TRUE(cfg.guests.empty());
  dp::GuestConfig n;
  n.name = "n";
  n.nics.resize(1);
  NicRig n0("spn", n.nics[0]);
  auto dpl = Dataplane::create(cfg, err);
  ASSERT_TRUE(dpl) << err;
  rte_mempool* pool = dpl->pool();

  // One that wants default's ext port: default has no MAC to tell its frames apart.
  dp::GuestConfig clash = n;
  clash.name = "x";
  clash.nics[0].ports[0] = cfg.ports[0];
  clash.nics[0].mac = {0x52, 0x54, 0, 0, 0, 0x33};
  clash.nics[0].has_mac = true;
  EXPECT_FALSE(dpl->add_guest(clash, nullptr, err));
  EXPECT_NE(err.find("single-pair guest 'default'"), std::string::npos) << err;
  EXPECT_NE(err.find("ports.mac"), std::string::npos) << err;
  EXPECT_EQ(dpl->guests().size(), 1u);

  ASSERT_TRUE(dpl->add_guest(n, nullptr, err)) << err;
  ASSERT_EQ(dpl->guests().size(), 2u);
  EXPECT_EQ(dpl->guests()[0].name, "default");
  EXPECT_EQ(dpl->guest_index("n"), 1);
  EXPECT_EQ(dpl->config().guests.size(), 2u) << "the configuration is a guests: map now";

  Conversation cd(params(45000)), cn(params(45001));
  uint64_t t = 0;
  for (auto [r, c] : {std::pair{&rig, &cd}, std::pair{n0.rig.get(), &cn}}) {
    ASSERT_TRUE(r->inject(PortRole::ext, pool, c->client_syn()));
    dpl->step(t += kMs);
    ASSERT_TRUE(r->inject(PortRole::pvm, pool, c->vm_synack(Vm::pvm)));
    ASSERT_TRUE(r->inject(PortRole::svm, pool, c->vm_synack(Vm::svm)));
    dpl->step(t += kMs);
    ASSERT_EQ(r->collect(PortRole::ext).size(), 1u);
    ASSERT_TRUE(r->inject(PortRole::ext, pool, c->client_handshake_ack()));
    dpl->step(t += kMs);
    r->collect(PortRole::pvm), r->collect(PortRole::svm);
  }
  // n diverges and checkpoints alone; default flows.
  ASSERT_TRUE(n0.rig->inject(PortRole::pvm, pool, cn.vm_stream(Vm::pvm, 0, 100, 1)));
  ASSERT_TRUE(n0.rig->inject(PortRole::svm, pool, cn.vm_stream(Vm::svm, 0, 100, 2)));
  Bytes d_out = cd.vm_stream(Vm::pvm, 0, 100);
  ASSERT_TRUE(rig.inject(PortRole::pvm, pool, d_out));
  ASSERT_TRUE(rig.inject(PortRole::svm, pool, cd.vm_stream(Vm::svm, 0, 100)));
  dpl->step(t += 100000);
  auto d_rel = rig.collect(PortRole::ext);
  ASSERT_EQ(d_rel.size(), 1u);
  EXPECT_EQ(d_rel[0], d_out);
  for (int i = 0; i < 4; ++i) dpl->step(t += kMs);
  EXPECT_EQ(n0.rig->collect(PortRole::ext).size(), 1u) << "released by its own checkpoint";
  auto rep = dpl->report();
  EXPECT_EQ(rep.guests[1].checkpoint_requests, 1u);
  EXPECT_EQ(rep.guests[0].checkpoint_requests, 0u);
  // And removed again: default goes on.
  ASSERT_TRUE(dpl->remove_guest("n", err)) << err;
  EXPECT_FALSE(dpl->remove_guest("default", err)) << "the last guest stays";

  dpl->finish(t + kMs);
  for (auto* r : {&rig, n0.rig.get()})
    for (unsigned role = 0; role < 3; ++role) r->drain(static_cast<PortRole>(role));
  dpl->stop_ports(true);
  rep = dpl->report();
  EXPECT_EQ(rep.pool_avail, rep.pool_size) << "mbufs not returned";
}

TEST_F(DataplaneGuests, GuestAddSharesTheSinglePairsPortWhenDefaultHasAMac) {
  Config cfg;
  cfg.pool_mbufs = 4095;
  cfg.pool_cache = 0;
  std::string err;
  RingRig rig("spm", {PortRole::ext, PortRole::pvm, PortRole::svm}, 1, cfg);
  const std::array<uint8_t, 6> dmac{0x52, 0x54, 0, 0, 0, 0x0d}, smac{0x52, 0x54, 0, 0, 0, 0x5e};
  ASSERT_TRUE(dp::apply_override("ports.mac=52:54:00:00:00:0d", cfg, err)) << err;
  dp::GuestConfig s;
  s.name = "s";
  s.nics.resize(1);
  NicRig s0("sps", s.nics[0]);
  s.nics[0].ports[0] = cfg.ports[0];  // default's ext, classified by MAC
  s.nics[0].mac = smac;
  s.nics[0].has_mac = true;
  auto dpl = Dataplane::create(cfg, err);
  ASSERT_TRUE(dpl) << err;
  rte_mempool* pool = dpl->pool();
  ASSERT_TRUE(dpl->add_guest(s, nullptr, err)) << err;

  Conversation cd(params(46000)), cs(params(46001));
  uint64_t t = 0;
  ASSERT_TRUE(rig.inject(PortRole::ext, pool, with_mac(cd.client_syn(), true, dmac)));
  ASSERT_TRUE(rig.inject(PortRole::ext, pool, with_mac(cs.client_syn(), true, smac)));
  ASSERT_TRUE(rig.inject(PortRole::ext, pool, with_mac(cs.client_syn(), true, {0x52, 0x54, 0, 0, 0, 0x77})));
  dpl->step(t += kMs);
  EXPECT_EQ(rig.collect(PortRole::pvm).size(), 1u) << "default's client frame to default's PVM";
  EXPECT_EQ(s0.rig->collect(PortRole::pvm).size(), 1u) << "s's client frame to s's PVM";
  ASSERT_TRUE(rig.inject(PortRole::pvm, pool, with_mac(cd.vm_synack(Vm::pvm), false, dmac)));
  ASSERT_TRUE(rig.inject(PortRole::svm, pool, with_mac(cd.vm_synack(Vm::svm), false, dmac)));
  ASSERT_TRUE(s0.rig->inject(PortRole::pvm, pool, with_mac(cs.vm_synack(Vm::pvm), false, smac)));
  ASSERT_TRUE(s0.rig->inject(PortRole::svm, pool, with_mac(cs.vm_synack(Vm::svm), false, smac)));
  dpl->step(t += kMs);
  EXPECT_EQ(rig.collect(PortRole::ext).size(), 2u) << "both SYN/ACKs released on the shared ext";
  auto rep = dpl->report();
  EXPECT_EQ(rep.total.drops[static_cast<unsigned>(dp::DpDrop::unclassified)], 1u)
      << "the frame for neither MAC";
  EXPECT_EQ(rep.guests[1].stats.engine.released_pvm(), 1u);
  EXPECT_EQ(rep.guests[0].stats.engine.released_pvm(), 1u);

  dpl->finish(t + kMs);
  for (auto* r : {&rig, s0.rig.get()})
    for (unsigned role = 0; role < 3; ++role) r->drain(static_cast<PortRole>(role));
  dpl->stop_ports(true);
  rep = dpl->report();
  EXPECT_EQ(rep.pool_avail, rep.pool_size) << "mbufs not returned";
}

// ---- one scheduler on a shared ext port shapes each guest apart (`guest NAME`) ----------

TEST_F(DataplaneGuests, ASchedulerOnASharedPortShapesOneGuestAndNotTheOther) {
  Config cfg;
  cfg.pool_mbufs = 4095;
  cfg.pool_cache = 0;
  std::string err;
  Config scratch;
  RingRig rig("gqs", {PortRole::ext, PortRole::pvm, PortRole::svm}, 1, scratch);
  const std::array<std::array<uint8_t, 6>, 2> macs{{{0x52, 0x54, 0, 0, 1, 1}, {0x52, 0x54, 0, 0, 1, 2}}};
  cfg.guests.resize(2);
  for (unsigned g = 0; g < 2; ++g) {
    cfg.guests[g].name = g == 0 ? "a" : "b";
    dp::NicConfig nic;
    for (unsigned r = 0; r < 3; ++r) nic.ports[r] = scratch.ports[r];
    nic.mac = macs[g];
    nic.has_mac = true;
    cfg.guests[g].nics.push_back(nic);
  }
  // b: 80 kbit/s (10 000 bytes/s) with a 2 KiB burst; a: the unshaped default.
  ASSERT_TRUE(dp::apply_override("qos.ext=qdisc add ext rate 10gbit burst 64k\n"
                                 "class add ext fast prio 0 rate 5gbit ceil 10gbit default\n"
                                 "class add ext slow prio 1 rate 80kbit ceil 80kbit burst 2k cburst 2k\n"
                                 "filter add ext guest b class slow\n",
                                 cfg, err))
      << err;
  ASSERT_TRUE(dp::validate(cfg, err)) << err;
  auto dpl = Dataplane::create(cfg, err);
  ASSERT_TRUE(dpl) << err;
  ASSERT_NE(dpl->qos(), nullptr);
  rte_mempool* pool = dpl->pool();
  std::vector<Conversation> conv;
  for (unsigned g = 0; g < 2; ++g) conv.emplace_back(params(static_cast<uint16_t>(47000 + g)));
  uint64_t t = 0;
  for (unsigned g = 0; g < 2; ++g)
    ASSERT_TRUE(rig.inject(PortRole::ext, pool, with_mac(conv[g].client_syn(), true, macs[g])));
  dpl->step(t += kMs);
  for (unsigned g = 0; g < 2; ++g) {
    ASSERT_TRUE(rig.inject(PortRole::pvm, pool, with_mac(conv[g].vm_synack(Vm::pvm), false, macs[g])));
    ASSERT_TRUE(rig.inject(PortRole::svm, pool, with_mac(conv[g].vm_synack(Vm::svm), false, macs[g])));
  }
  dpl->step(t += kMs);
  for (unsigned g = 0; g < 2; ++g)
    ASSERT_TRUE(rig.inject(PortRole::ext, pool, with_mac(conv[g].client_handshake_ack(), true, macs[g])));
  dpl->step(t += kMs);
  // Let b's bucket fill again after its SYN/ACK, then start clean.
  dpl->step(t += 1000 * kMs);
  auto count = [&](const std::vector<Bytes>& frames, unsigned g, uint64_t& bytes) {
    unsigned n = 0;
    for (const auto& f : frames)
      if (std::equal(macs[g].begin(), macs[g].end(), f.begin() + 6)) ++n, bytes += f.size();
    return n;
  };
  rig.collect(PortRole::ext), rig.collect(PortRole::pvm), rig.collect(PortRole::svm);

  // Ten 1000-byte segments from each guest, compared and released at once.
  constexpr unsigned kSegs = 10;
  uint64_t a_bytes_in = 0, b_bytes_in = 0;
  for (unsigned i = 0; i < kSegs; ++i)
    for (unsigned g = 0; g < 2; ++g) {
      Bytes out = with_mac(conv[g].vm_stream(Vm::pvm, i * 1000, 1000), false, macs[g]);
      (g == 0 ? a_bytes_in : b_bytes_in) += out.size();
      ASSERT_TRUE(rig.inject(PortRole::pvm, pool, out));
      ASSERT_TRUE(rig.inject(PortRole::svm, pool, with_mac(conv[g].vm_stream(Vm::svm, i * 1000, 1000), false, macs[g])));
    }
  dpl->step(t += 100000);
  dpl->step(t += 100000);
  auto first = rig.collect(PortRole::ext);
  uint64_t a_bytes = 0, b_bytes = 0;
  EXPECT_EQ(count(first, 0, a_bytes), kSegs) << "a is not shaped: all out at once";
  EXPECT_EQ(a_bytes, a_bytes_in);
  const unsigned b_first = count(first, 1, b_bytes);
  EXPECT_GE(b_first, 1u);
  EXPECT_LE(b_first, 2u) << "b gets its 2 KiB burst, no more";
  // 200 ms later: at most 2 000 bytes more for b (two frames), none for a (all out).
  dpl->step(t += 200 * kMs);
  auto later = rig.collect(PortRole::ext);
  uint64_t ignore = 0;
  const unsigned b_later = count(later, 1, b_bytes);
  EXPECT_LE(b_later, 2u) << "b held to 80 kbit/s";
  EXPECT_EQ(count(later, 0, ignore), 0u);
  // Two more seconds: the rest of b's output, in order, byte for byte.
  for (int i = 0; i < 20; ++i) dpl->step(t += 100 * kMs);
  auto rest = rig.collect(PortRole::ext);
  EXPECT_EQ(b_first + b_later + count(rest, 1, b_bytes), kSegs) << "b's output all out, late";
  EXPECT_EQ(b_bytes, b_bytes_in);

  // Live: a filter naming a guest that is not served is refused, naming it.
  EXPECT_EQ(dpl->qos()->apply("ext", "filter add ext guest zz class slow", err), 0u);
  EXPECT_NE(err.find("unknown guest 'zz'"), std::string::npos) << err;

  dpl->finish(t + kMs);
  for (unsigned role = 0; role < 3; ++role) rig.drain(static_cast<PortRole>(role));
  dpl->stop_ports(true);
  auto rep = dpl->report();
  EXPECT_EQ(rep.pool_avail, rep.pool_size) << "mbufs not returned";
}

}  // namespace
}  // namespace lockstep

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new lockstep::dptest::EalEnv("dpguests"));
  return RUN_ALL_TESTS();
}
