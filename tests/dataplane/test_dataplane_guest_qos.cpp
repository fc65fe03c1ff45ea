// Schedulers keyed by egress port, per guest (issue 16): a guest's own scheduler
// (guests.NAME.qos.ROLE) shapes its own ports and nobody else's; the top level's
// qos.ROLE reaches a port several guests share even when it is not the role's first
// port; the keys are checked naming them; `-g NAME qos ...` and the metrics address a
// guest's scheduler. On net_ring devices, in stepped time, with two workers (frames
// of the second are handed to worker 0, the schedulers' owner).
#include <gtest/gtest.h>
#include <rte_mempool.h>

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "ctrl/metrics.h"
#include "dataplane/edge/dataplane.h"
#include "dataplane/qos/qos_commands.h"
#include "dataplane/qos/qos_ctrl.h"
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
constexpr unsigned kWorkers = 2;

// 80 kbit/s (10 000 bytes/s) with a 2 KiB burst for what the `slow` class takes.
const char* kSlowScript = R"(
qdisc add ext rate 10gbit burst 64k
class add ext fast prio 0 rate 5gbit ceil 10gbit default
class add ext slow prio 1 rate 80kbit ceil 80kbit burst 2k cburst 2k
)";

Bytes with_mac(Bytes b, bool destination, const std::array<uint8_t, 6>& mac) {
  std::copy(mac.begin(), mac.end(), b.begin() + (destination ? 0 : 6));
  return b;
}

Conversation::Params params(uint16_t client_port) {
  Conversation::Params p;
  p.client_port = client_port;
  return p;
}

// ---- configuration (no EAL) ------------------------------------------------------------

bool load(const std::string& yaml, std::string& err) {
  Config cfg;
  return dp::parse_config(yaml, cfg, err) && dp::validate(cfg, err);
}

TEST(GuestQosConfig, AGuestsOwnSchedulerIsTakenOnItsOwnPortsAndRefusedElsewhere) {
  std::string err;
  // Own ports: taken, as a list or one text, per role of a NIC.
  const char* own = R"(
guests:
  a: {nics: [{ext: p1, pvm: p2, svm: p3}]}
  b:
    nics: [{ext: p4, pvm: p5, svm: p6}]
    qos:
      ext:
        - qdisc add ext rate 1gbit
        - class add ext slow prio 1 rate 1mbit ceil 1mbit default
        - filter add ext guest b class slow
      pvm: "qdisc add pvm rate 1gbit\n"
)";
  Config cfg;
  ASSERT_TRUE(dp::parse_config(own, cfg, err)) << err;
  ASSERT_TRUE(dp::validate(cfg, err)) << err;
  ASSERT_EQ(cfg.guests.size(), 2u);
  EXPECT_FALSE(cfg.guests[0].has_qos());
  EXPECT_NE(cfg.guests[1].qos[0].find("class add ext slow"), std::string::npos);
  EXPECT_NE(cfg.guests[1].qos[1].find("qdisc add pvm"), std::string::npos);
  // --set reaches it too.
  ASSERT_TRUE(dp::apply_override("guests.a.qos.svm=qdisc add svm rate 1gbit", cfg, err)) << err;
  EXPECT_TRUE(dp::validate(cfg, err)) << err;

  // A port shared with another guest: refused naming the key and the way to do it.
  const char* shared = R"(
guests:
  a: {nics: [{ext: p1, pvm: p2, svm: p3, mac: "52:54:00:00:00:0a"}]}
  b:
    nics: [{ext: p1, pvm: p5, svm: p6, mac: "52:54:00:00:00:0b"}]
    qos:
      ext: ["qdisc add ext rate 1gbit"]
)";
  EXPECT_FALSE(load(shared, err));
  EXPECT_NE(err.find("config key 'guests.b.qos.ext'"), std::string::npos) << err;
  EXPECT_NE(err.find("shared with guest 'a'"), std::string::npos) << err;
  EXPECT_NE(err.find("guest b"), std::string::npos) << "names the way: a guest filter: " << err;

  // The role's first port carries the top level's scheduler already.
  const char* twice = R"(
qos:
  ext: ["qdisc add ext rate 1gbit"]
guests:
  a:
    nics: [{ext: p1, pvm: p2, svm: p3}]
    qos:
      ext: ["qdisc add ext rate 1gbit"]
  b: {nics: [{ext: p4, pvm: p5, svm: p6}]}
)";
  EXPECT_FALSE(load(twice, err));
  EXPECT_NE(err.find("config key 'guests.a.qos.ext'"), std::string::npos) << err;
  EXPECT_NE(err.find("already has a scheduler (qos.ext"), std::string::npos) << err;
  // ... but another guest's own port may have its own beside the top level's.
  const char* beside = R"(
qos:
  ext: ["qdisc add ext rate 1gbit"]
guests:
  a: {nics: [{ext: p1, pvm: p2, svm: p3}]}
  b:
    nics: [{ext: p4, pvm: p5, svm: p6}]
    qos: {ext: ["qdisc add ext rate 1gbit"]}
)";
  EXPECT_TRUE(load(beside, err)) << err;

  // Bad lines: the key, the line and the token.
  Config c2;
  ASSERT_TRUE(dp::parse_config("guests:\n  b: {nics: [{ext: p4, pvm: p5, svm: p6}]}\n", c2, err)) << err;
  EXPECT_FALSE(dp::apply_override("guests.b.qos.ext=qdisc add ext rate 1gbit\nclass add ext x prio 9", c2, err));
  EXPECT_NE(err.find("config key 'guests.b.qos.ext': line 2"), std::string::npos) << err;
  EXPECT_NE(err.find("prio"), std::string::npos) << err;
  EXPECT_FALSE(dp::apply_override("guests.b.qos.ext=qdisc add link rate 1gbit", c2, err));
  EXPECT_NE(err.find("config key 'guests.b.qos.ext'"), std::string::npos) << err;
  EXPECT_NE(err.find("'link'"), std::string::npos) << err;
  // Host and link are no guest's ports.
  EXPECT_FALSE(dp::apply_override("guests.b.qos.link=qdisc add link rate 1gbit", c2, err));
  EXPECT_NE(err.find("config key 'guests.b.qos.link'"), std::string::npos) << err;
  EXPECT_NE(err.find("ext, pvm or svm"), std::string::npos) << err;
  // A filter naming a guest the configuration lacks.
  ASSERT_TRUE(dp::apply_override("guests.b.qos.ext=qdisc add ext rate 1gbit\n"
                                 "class add ext s prio 1 rate 1mbit ceil 1mbit\n"
                                 "filter add ext guest zz class s",
                                 c2, err))
      << err;
  EXPECT_FALSE(dp::validate(c2, err));
  EXPECT_NE(err.find("config key 'guests.b.qos.ext': line 3"), std::string::npos) << err;
  EXPECT_NE(err.find("'zz'"), std::string::npos) << err;

  // A guest file (`guest add`) carries the section too.
  dp::GuestConfig gc;
  ASSERT_TRUE(dp::parse_guest_yaml("d", "nics: [{ext: p7, pvm: p8, svm: p9}]\nqos:\n  ext: [\"qdisc add ext rate 1gbit\"]\n",
                                   gc, err))
      << err;
  EXPECT_TRUE(gc.has_qos());
}

// ---- in the dataplane -----------------------------------------------------------------

class DataplaneGuestQos : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!EalEnv::ok_) GTEST_SKIP() << "EAL did not start (no --no-huge memory?)";
  }
};

// What every dataplane here starts from: kWorkers workers, a small pool, no per-lcore
// cache (every mbuf back in the pool at the end).
Config dataplane_config() {
  Config cfg;
  cfg.workers = kWorkers;
  cfg.pool_mbufs = 4095;
  cfg.pool_cache = 0;
  return cfg;
}

// A NIC's three ports (one tx queue per worker), made through a scratch Config.
struct NicRig {
  NicRig(const std::string& tag, dp::NicConfig& nic) {
    Config scratch;
    rig = std::make_unique<RingRig>(tag, std::initializer_list<PortRole>{PortRole::ext, PortRole::pvm, PortRole::svm},
                                    kWorkers, scratch);
    for (unsigned r = 0; r < 3; ++r) nic.ports[r] = scratch.ports[r];
  }
  std::unique_ptr<RingRig> rig;
};

// One guest's connection on its rig (its MAC on a shared port, none on its own).
struct Flow {
  RingRig* rig;
  Conversation conv;
  std::optional<std::array<uint8_t, 6>> mac;
  Bytes to_ext(Bytes b) const { return mac ? with_mac(std::move(b), true, *mac) : b; }
  Bytes from_vm(Bytes b) const { return mac ? with_mac(std::move(b), false, *mac) : b; }
  // Frames of this flow among what was sent on ext (by source MAC on a shared port).
  unsigned count(const std::vector<Bytes>& frames, uint64_t& bytes) const {
    unsigned n = 0;
    for (const auto& f : frames)
      if (!mac || std::equal(mac->begin(), mac->end(), f.begin() + 6)) ++n, bytes += f.size();
    return n;
  }
};

// Runs `fn` (which waits for worker 0) on another thread while this one steps.
void while_stepping(Dataplane& d, uint64_t now, const std::function<void()>& fn) {
  std::atomic<bool> done{false};
  std::thread t([&] {
    fn();
    done = true;
  });
  while (!done) {
    d.step(now);
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  t.join();
}

void open_all(Dataplane& d, std::vector<Flow>& flows, uint64_t& t) {
  rte_mempool* pool = d.pool();
  for (auto& f : flows) ASSERT_TRUE(f.rig->inject(PortRole::ext, pool, f.to_ext(f.conv.client_syn())));
  for (int i = 0; i < 3; ++i) d.step(t += kMs);
  for (auto& f : flows) {
    ASSERT_TRUE(f.rig->inject(PortRole::pvm, pool, f.from_vm(f.conv.vm_synack(Vm::pvm))));
    ASSERT_TRUE(f.rig->inject(PortRole::svm, pool, f.from_vm(f.conv.vm_synack(Vm::svm))));
  }
  for (int i = 0; i < 3; ++i) d.step(t += kMs);
  for (auto& f : flows) ASSERT_TRUE(f.rig->inject(PortRole::ext, pool, f.to_ext(f.conv.client_handshake_ack())));
  for (int i = 0; i < 3; ++i) d.step(t += kMs);
  d.step(t += 1000 * kMs);  // shaped buckets full again after the SYN/ACKs
  for (auto& f : flows)
    for (PortRole r : {PortRole::ext, PortRole::pvm, PortRole::svm}) f.rig->collect(r);
}

// Ten 1000-byte segments per flow, the PVM's and the SVM's alike: released at once.
constexpr unsigned kSegs = 10;
std::vector<uint64_t> send_segments(Dataplane& d, std::vector<Flow>& flows) {
  std::vector<uint64_t> bytes_in(flows.size(), 0);
  for (unsigned i = 0; i < kSegs; ++i)
    for (size_t k = 0; k < flows.size(); ++k) {
      Flow& f = flows[k];
      Bytes out = f.from_vm(f.conv.vm_stream(Vm::pvm, i * 1000, 1000));
      bytes_in[k] += out.size();
      EXPECT_TRUE(f.rig->inject(PortRole::pvm, d.pool(), out));
      EXPECT_TRUE(f.rig->inject(PortRole::svm, d.pool(), f.from_vm(f.conv.vm_stream(Vm::svm, i * 1000, 1000))));
    }
  return bytes_in;
}

void expect_conservation(Dataplane& d, std::vector<RingRig*> rigs, uint64_t now) {
  d.finish(now);
  for (auto* r : rigs)
    for (unsigned role = 0; role < 3; ++role) r->drain(static_cast<PortRole>(role));
  d.stop_ports(true);
  auto rep = d.report();
  EXPECT_EQ(rep.pool_avail, rep.pool_size) << "mbufs not returned";
}

const ctrl::MetricSample* find_sample(const std::vector<ctrl::MetricSample>& s, const std::string& name,
                                      const ctrl::Labels& must) {
  for (const auto& m : s) {
    if (m.name != name) continue;
    bool all = true;
    for (const auto& kv : must)
      all = all && std::find(m.labels.begin(), m.labels.end(), kv) != m.labels.end();
    if (all) return &m;
  }
  return nullptr;
}

TEST_F(DataplaneGuestQos, AGuestsOwnSchedulerShapesItsPortsAndNotTheOtherGuests) {
  Config cfg = dataplane_config();
  std::string err;
  cfg.guests.resize(2);
  cfg.guests[0].name = "a";
  cfg.guests[0].nics.resize(1);
  cfg.guests[1].name = "b";
  cfg.guests[1].nics.resize(1);
  NicRig a0("oqa", cfg.guests[0].nics[0]), b0("oqb", cfg.guests[1].nics[0]);
  // b's own ext scheduler: everything of b at 80 kbit/s. a has none.
  ASSERT_TRUE(dp::apply_override(std::string("guests.b.qos.ext=") + kSlowScript + "filter add ext all class slow\n",
                                 cfg, err))
      << err;
  ASSERT_TRUE(dp::validate(cfg, err)) << err;
  auto dpl = Dataplane::create(cfg, err);
  ASSERT_TRUE(dpl) << err;
  dp::QosHub* hub = dpl->qos();
  ASSERT_NE(hub, nullptr);
  EXPECT_TRUE(hub->ports().empty()) << "no scheduler of the top level";
  EXPECT_TRUE(hub->ports(0).empty()) << "a has none";
  EXPECT_EQ(hub->ports(1), std::vector<std::string>{"ext"});

  std::vector<Flow> flows{{a0.rig.get(), Conversation(params(48000)), std::nullopt},
                          {b0.rig.get(), Conversation(params(48001)), std::nullopt}};
  uint64_t t = 0;
  open_all(*dpl, flows, t);
  const auto bytes_in = send_segments(*dpl, flows);
  for (int i = 0; i < 3; ++i) dpl->step(t += 100000);
  uint64_t a_bytes = 0, b_bytes = 0;
  EXPECT_EQ(flows[0].count(a0.rig->collect(PortRole::ext), a_bytes), kSegs) << "a is not shaped";
  EXPECT_EQ(a_bytes, bytes_in[0]);
  const unsigned b_first = flows[1].count(b0.rig->collect(PortRole::ext), b_bytes);
  EXPECT_GE(b_first, 1u);
  EXPECT_LE(b_first, 2u) << "b gets its 2 KiB burst, no more";
  // 200 ms: at most 2 000 bytes more for b.
  dpl->step(t += 200 * kMs);
  const unsigned b_later = flows[1].count(b0.rig->collect(PortRole::ext), b_bytes);
  EXPECT_LE(b_later, 2u) << "b held to 80 kbit/s";
  EXPECT_LE(b_bytes, 2048u + 2000u + 1100u);
  // Two more seconds: the rest of b's output, byte for byte.
  for (int i = 0; i < 20; ++i) dpl->step(t += 100 * kMs);
  const unsigned b_rest = flows[1].count(b0.rig->collect(PortRole::ext), b_bytes);
  EXPECT_EQ(b_first + b_later + b_rest, kSegs) << "b's output all out, late";
  EXPECT_EQ(b_bytes, bytes_in[1]);

  // The scheduler's own counters: b's frames, in the slow class, on b's port.
  std::vector<dp::QosShowResult> shown;
  while_stepping(*dpl, t, [&] { EXPECT_TRUE(hub->show(1, "ext", true, 5000 * kMs, shown, err)) << err; });
  ASSERT_EQ(shown.size(), 1u);
  EXPECT_EQ(shown[0].guest, "b");
  EXPECT_EQ(shown[0].port_stats.ctr.enq_pkts, kSegs + 1) << "b's SYN/ACK and segments, none of a's";
  uint64_t slow_sent = 0;
  for (const auto& c : shown[0].classes)
    if (c.name == "slow") slow_sent = c.stats.ctr.deq_pkts;
  EXPECT_GE(slow_sent, kSegs);

  // The ctrl commands: -g b addresses b's scheduler; without -g the top level's.
  dp::DataplaneQosControl qc(hub, 5000 * kMs);
  int selected = -1;
  qc.set_guest_source([&] { return selected; });
  ctrl::CommandRegistry reg;
  reg.set_guest_selector([&](const std::string& name, std::string& e) {
    if (name.empty()) return selected = -1, true;
    if (name == "a") return selected = 0, true;
    if (name == "b") return selected = 1, true;
    e = "no guest '" + name + "'";
    return false;
  });
  ctrl::register_qos_commands(reg, qc);
  auto run = [&](std::vector<std::string> words) {
    ctrl::CommandResult res;
    while_stepping(*dpl, t, [&] { res = reg.execute(ctrl::CommandContext{}, words); });
    return res;
  };
  auto r = run({"-g", "b", "qos", "show", "-s"});
  ASSERT_TRUE(r.ok) << r.error;
  ASSERT_EQ(r.result["ports"].size(), 1u);
  EXPECT_EQ(r.result["ports"][0]["guest"], "b");
  EXPECT_NE(r.result["text"].get<std::string>().find("class slow"), std::string::npos);
  r = run({"qos", "class", "change", "ext", "slow", "rate", "800kbit", "ceil", "800kbit"});
  EXPECT_FALSE(r.ok) << "no top-level scheduler on ext";
  EXPECT_NE(r.error.find("carries no scheduler"), std::string::npos) << r.error;
  r = run({"-g", "a", "qos", "show", "ext"});
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("guest 'a' has no scheduler of its own"), std::string::npos) << r.error;
  r = run({"qos", "class", "change", "ext", "slow", "rate", "800kbit", "ceil", "800kbit", "--guest", "b"});
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_TRUE(r.result["applied"].get<bool>());
  EXPECT_EQ(r.result["guest"], "b");
  sched::QosConfig now_cfg;
  ASSERT_TRUE(hub->config(1, "ext", now_cfg));
  bool changed = false;
  for (const auto& c : now_cfg.classes) changed = changed || (c.name == "slow" && c.params.rate == 100000u);
  EXPECT_TRUE(changed) << "800kbit (100 000 bytes/s) in b's control copy";

  // Metrics: b's scheduler carries its guest.
  std::vector<ctrl::MetricSample> samples;
  while_stepping(*dpl, t, [&] { dp::append_qos_metrics(hub, 5000 * kMs, samples); });
  const auto* sent = find_sample(samples, "lockstep_qos_class_sent_bytes_total",
                                 {{"port", "ext"}, {"guest", "b"}, {"class", "slow"}});
  ASSERT_NE(sent, nullptr);
  EXPECT_GE(sent->value, static_cast<double>(bytes_in[1]));
  const auto* up = find_sample(samples, "lockstep_qos_up", {{"port", "ext"}, {"guest", "b"}});
  ASSERT_NE(up, nullptr);
  EXPECT_EQ(up->value, 1.0);

  expect_conservation(*dpl, {a0.rig.get(), b0.rig.get()}, t + kMs);
}

TEST_F(DataplaneGuestQos, TheTopLevelSchedulerReachesASharedPortThatIsNotTheRolesFirst) {
  Config cfg = dataplane_config();
  std::string err;
  // a: ports of its own (the role's first); b and c share three ports, by MAC.
  cfg.guests.resize(3);
  cfg.guests[0].name = "a";
  cfg.guests[0].nics.resize(1);
  NicRig a0("sqa", cfg.guests[0].nics[0]);
  dp::NicConfig shared_nic;
  NicRig sh("sqs", shared_nic);
  const std::array<std::array<uint8_t, 6>, 2> macs{{{0x52, 0x54, 0, 0, 2, 1}, {0x52, 0x54, 0, 0, 2, 2}}};
  for (unsigned g = 1; g < 3; ++g) {
    cfg.guests[g].name = g == 1 ? "b" : "c";
    dp::NicConfig nic = shared_nic;
    nic.mac = macs[g - 1];
    nic.has_mac = true;
    cfg.guests[g].nics.push_back(nic);
  }
  ASSERT_TRUE(dp::apply_override(std::string("qos.ext=") + kSlowScript + "filter add ext guest c class slow\n", cfg, err))
      << err;
  ASSERT_TRUE(dp::validate(cfg, err)) << err;
  auto dpl = Dataplane::create(cfg, err);
  ASSERT_TRUE(dpl) << err;
  dp::QosHub* hub = dpl->qos();
  ASSERT_NE(hub, nullptr);

  std::vector<Flow> flows{{a0.rig.get(), Conversation(params(49000)), std::nullopt},
                          {sh.rig.get(), Conversation(params(49001)), macs[0]},
                          {sh.rig.get(), Conversation(params(49002)), macs[1]}};
  uint64_t t = 0;
  open_all(*dpl, flows, t);
  const auto bytes_in = send_segments(*dpl, flows);
  for (int i = 0; i < 3; ++i) dpl->step(t += 100000);
  uint64_t a_bytes = 0, b_bytes = 0, c_bytes = 0;
  EXPECT_EQ(flows[0].count(a0.rig->collect(PortRole::ext), a_bytes), kSegs) << "a: the first port, default class";
  auto first = sh.rig->collect(PortRole::ext);
  EXPECT_EQ(flows[1].count(first, b_bytes), kSegs) << "b is not shaped";
  EXPECT_EQ(b_bytes, bytes_in[1]);
  const unsigned c_first = flows[2].count(first, c_bytes);
  EXPECT_GE(c_first, 1u);
  EXPECT_LE(c_first, 2u) << "c is shaped on the shared port, which is not ext's first";
  dpl->step(t += 200 * kMs);
  const unsigned c_later = flows[2].count(sh.rig->collect(PortRole::ext), c_bytes);
  EXPECT_LE(c_later, 2u) << "c held to 80 kbit/s";
  for (int i = 0; i < 20; ++i) dpl->step(t += 100 * kMs);
  auto rest = sh.rig->collect(PortRole::ext);
  EXPECT_EQ(c_first + c_later + flows[2].count(rest, c_bytes), kSegs);
  EXPECT_EQ(c_bytes, bytes_in[2]);
  uint64_t ignore = 0;
  EXPECT_EQ(flows[1].count(rest, ignore), 0u) << "b was all out at once";

  // One configuration, one scheduler per port: the first port's and the shared one's.
  std::vector<dp::QosShowResult> shown;
  while_stepping(*dpl, t, [&] { EXPECT_TRUE(hub->show(dp::QosHub::kTopLevel, "ext", true, 5000 * kMs, shown, err)) << err; });
  ASSERT_EQ(shown.size(), 2u);
  EXPECT_TRUE(shown[0].role_first);
  EXPECT_FALSE(shown[1].role_first);
  // Each flow's SYN/ACK and its segments.
  EXPECT_EQ(shown[0].port_stats.ctr.enq_pkts, kSegs + 1) << "a's, on its own port";
  EXPECT_EQ(shown[1].port_stats.ctr.enq_pkts, 2 * (kSegs + 1)) << "b's and c's, on the shared port";
  // A live change reaches both.
  EXPECT_NE(hub->apply("ext", "class change ext slow rate 800kbit ceil 800kbit", err), 0u) << err;
  while_stepping(*dpl, t, [&] { EXPECT_TRUE(hub->show(dp::QosHub::kTopLevel, "ext", false, 5000 * kMs, shown, err)) << err; });
  ASSERT_EQ(shown.size(), 2u);
  for (const auto& s : shown)
    for (const auto& c : s.classes)
      if (c.name == "slow") {
        EXPECT_EQ(c.stats.params.rate, 100000u) << "800kbit in bytes/s";
      }

  expect_conservation(*dpl, {a0.rig.get(), sh.rig.get()}, t + kMs);
}

TEST_F(DataplaneGuestQos, GuestDelRetiresTheGuestsOwnSchedulersSendingOrDroppingTheirQueues) {
  Config cfg = dataplane_config();
  std::string err;
  cfg.guests.resize(3);
  const char* names[] = {"a", "b", "c"};
  for (unsigned g = 0; g < 3; ++g) {
    cfg.guests[g].name = names[g];
    cfg.guests[g].nics.resize(1);
  }
  NicRig a0("dqa", cfg.guests[0].nics[0]), b0("dqb", cfg.guests[1].nics[0]), c0("dqc", cfg.guests[2].nics[0]);
  for (const char* g : {"b", "c"})
    ASSERT_TRUE(dp::apply_override(std::string("guests.") + g + ".qos.ext=" + kSlowScript +
                                       "filter add ext all class slow\n",
                                   cfg, err))
        << err;
  ASSERT_TRUE(dp::validate(cfg, err)) << err;
  auto dpl = Dataplane::create(cfg, err);
  ASSERT_TRUE(dpl) << err;
  dp::QosHub* hub = dpl->qos();
  ASSERT_NE(hub, nullptr);
  std::vector<Flow> flows{{a0.rig.get(), Conversation(params(50000)), std::nullopt},
                          {b0.rig.get(), Conversation(params(50001)), std::nullopt},
                          {c0.rig.get(), Conversation(params(50002)), std::nullopt}};
  uint64_t t = 0;
  open_all(*dpl, flows, t);
  const auto bytes_in = send_segments(*dpl, flows);
  for (int i = 0; i < 3; ++i) dpl->step(t += 100000);
  std::array<uint64_t, 3> bytes{};
  EXPECT_EQ(flows[0].count(a0.rig->collect(PortRole::ext), bytes[0]), kSegs);
  const unsigned b_first = flows[1].count(b0.rig->collect(PortRole::ext), bytes[1]);
  const unsigned c_first = flows[2].count(c0.rig->collect(PortRole::ext), bytes[2]);
  ASSERT_LE(b_first, 2u) << "b's queue holds the rest";
  ASSERT_LE(c_first, 2u) << "c's queue holds the rest";

  // b goes, its queue released: sent at once, unshaped, counted.
  uint64_t rel = 0, drp = 0, qsent = 0, qdrop = 0;
  // (The change runs at the clock's time, later than the test's: the scheduler may send
  // its burst's worth, two frames, shaped, before the rest is released.)
  ASSERT_TRUE(dpl->remove_guest("b", err, dp::HeldPolicy::release, &rel, &drp, &qsent, &qdrop)) << err;
  EXPECT_LE(qsent, kSegs - b_first);
  EXPECT_GE(qsent, kSegs - b_first - 2);
  EXPECT_EQ(qdrop, 0u);
  const unsigned b_rest = flows[1].count(b0.rig->collect(PortRole::ext), bytes[1]);
  EXPECT_EQ(b_first + b_rest, kSegs) << "b's queued output out at its del";
  EXPECT_EQ(bytes[1], bytes_in[1]);
  EXPECT_TRUE(hub->ports(1).empty()) << "b's scheduler is gone";
  EXPECT_EQ(hub->ports(2), std::vector<std::string>{"ext"}) << "c's stays";

  // c goes with --held drop: its queue dropped, counted, nothing more on its port.
  ASSERT_TRUE(dpl->remove_guest("c", err, dp::HeldPolicy::drop, &rel, &drp, &qsent, &qdrop)) << err;
  EXPECT_EQ(qsent, 0u);
  EXPECT_GE(qdrop, kSegs - c_first - 2);
  const unsigned c_shaped = flows[2].count(c0.rig->collect(PortRole::ext), bytes[2]);
  EXPECT_LE(c_shaped, 2u) << "at most the burst's worth, shaped, before the del";
  EXPECT_EQ(c_first + c_shaped + qdrop, kSegs) << "each of c's frames sent or dropped, counted";
  EXPECT_TRUE(hub->ports(2).empty());

  // a goes on: more output, out at once.
  for (unsigned i = 0; i < kSegs; ++i) {
    Flow& f = flows[0];
    ASSERT_TRUE(f.rig->inject(PortRole::pvm, dpl->pool(), f.conv.vm_stream(Vm::pvm, (kSegs + i) * 1000, 1000)));
    ASSERT_TRUE(f.rig->inject(PortRole::svm, dpl->pool(), f.conv.vm_stream(Vm::svm, (kSegs + i) * 1000, 1000)));
  }
  for (int i = 0; i < 3; ++i) dpl->step(t += 100000);
  EXPECT_EQ(flows[0].count(a0.rig->collect(PortRole::ext), bytes[0]), kSegs);
  // The metrics no longer list them.
  std::vector<ctrl::MetricSample> samples;
  while_stepping(*dpl, t, [&] { dp::append_qos_metrics(hub, 5000 * kMs, samples); });
  EXPECT_EQ(find_sample(samples, "lockstep_qos_up", {{"guest", "b"}}), nullptr);
  EXPECT_EQ(find_sample(samples, "lockstep_qos_up", {{"guest", "c"}}), nullptr);

  expect_conservation(*dpl, {a0.rig.get(), b0.rig.get(), c0.rig.get()}, t + kMs);
}

TEST_F(DataplaneGuestQos, GuestAddWithAQosSectionBringsItsSchedulersLiveAndGuestDelTakesThem) {
  Config cfg = dataplane_config();
  std::string err;
  cfg.guests.resize(1);
  cfg.guests[0].name = "a";
  cfg.guests[0].nics.resize(1);
  NicRig a0("lqa", cfg.guests[0].nics[0]);
  dp::GuestConfig d;
  d.name = "d";
  d.nics.resize(1);
  NicRig d0("lqd", d.nics[0]);  // its ports exist; the dataplane starts them at `add`
  ASSERT_TRUE(dp::validate(cfg, err)) << err;
  auto dpl = Dataplane::create(cfg, err);
  ASSERT_TRUE(dpl) << err;
  dp::QosHub* hub = dpl->qos();
  ASSERT_NE(hub, nullptr) << "many guests: a hub, so that guest add can bring schedulers";
  EXPECT_TRUE(hub->ports().empty());

  // a flows while d comes.
  std::vector<Flow> fa{{a0.rig.get(), Conversation(params(51000)), std::nullopt}};
  uint64_t t = 0;
  open_all(*dpl, fa, t);
  const auto a_in = send_segments(*dpl, fa);

  // A bad section is refused naming the key; nothing changes.
  dp::GuestConfig bad = d;
  bad.qos[0] = "qdisc add ext rate 1gbit\nclass add ext x prio 9\n";
  EXPECT_FALSE(dpl->add_guest(bad, nullptr, err));
  EXPECT_NE(err.find("guests.d.qos.ext"), std::string::npos) << err;
  EXPECT_EQ(dpl->guests().size(), 1u);
  // A section naming a guest that is not served, refused naming the key and the token.
  bad.qos[0] = std::string(kSlowScript) + "filter add ext guest zz class slow\n";
  EXPECT_FALSE(dpl->add_guest(bad, nullptr, err));
  EXPECT_NE(err.find("guests.d.qos.ext"), std::string::npos) << err;
  EXPECT_NE(err.find("'zz'"), std::string::npos) << err;
  EXPECT_TRUE(hub->ports(1).empty());

  d.qos[0] = std::string(kSlowScript) + "filter add ext guest d class slow\n";
  ASSERT_TRUE(dpl->add_guest(d, nullptr, err)) << err;
  EXPECT_EQ(hub->ports(1), std::vector<std::string>{"ext"});
  for (int i = 0; i < 3; ++i) dpl->step(t += 100000);
  uint64_t a_bytes = 0;
  EXPECT_EQ(fa[0].count(a0.rig->collect(PortRole::ext), a_bytes), kSegs) << "a went on, unshaped";
  EXPECT_EQ(a_bytes, a_in[0]);

  // d's traffic: shaped by its own scheduler, a's not.
  std::vector<Flow> fd{{d0.rig.get(), Conversation(params(51001)), std::nullopt}};
  open_all(*dpl, fd, t);
  const auto d_in = send_segments(*dpl, fd);
  for (unsigned i = 0; i < kSegs; ++i) {
    ASSERT_TRUE(a0.rig->inject(PortRole::pvm, dpl->pool(), fa[0].conv.vm_stream(Vm::pvm, (kSegs + i) * 1000, 1000)));
    ASSERT_TRUE(a0.rig->inject(PortRole::svm, dpl->pool(), fa[0].conv.vm_stream(Vm::svm, (kSegs + i) * 1000, 1000)));
  }
  for (int i = 0; i < 3; ++i) dpl->step(t += 100000);
  uint64_t d_bytes = 0;
  EXPECT_EQ(fa[0].count(a0.rig->collect(PortRole::ext), a_bytes), kSegs);
  const unsigned d_first = fd[0].count(d0.rig->collect(PortRole::ext), d_bytes);
  EXPECT_GE(d_first, 1u);
  EXPECT_LE(d_first, 2u) << "d held to its class";
  dpl->step(t += 200 * kMs);
  const unsigned d_later = fd[0].count(d0.rig->collect(PortRole::ext), d_bytes);
  EXPECT_LE(d_later, 2u);
  std::vector<dp::QosShowResult> shown;
  while_stepping(*dpl, t, [&] { EXPECT_TRUE(hub->show(1, "ext", true, 5000 * kMs, shown, err)) << err; });
  ASSERT_EQ(shown.size(), 1u);
  EXPECT_EQ(shown[0].guest, "d");
  EXPECT_EQ(shown[0].port_stats.ctr.enq_pkts, kSegs + 1) << "d's SYN/ACK and segments";

  // d goes with its queue: sent at once, every frame of d out, counted.
  uint64_t rel = 0, drp = 0, qsent = 0, qdrop = 0;
  ASSERT_TRUE(dpl->remove_guest("d", err, dp::HeldPolicy::release, &rel, &drp, &qsent, &qdrop)) << err;
  const unsigned d_rest = fd[0].count(d0.rig->collect(PortRole::ext), d_bytes);
  EXPECT_EQ(d_first + d_later + d_rest, kSegs);
  EXPECT_EQ(d_bytes, d_in[0]);
  EXPECT_GE(qsent, kSegs - d_first - d_later - 2);
  EXPECT_EQ(qdrop, 0u);
  EXPECT_TRUE(hub->ports(1).empty());

  expect_conservation(*dpl, {a0.rig.get(), d0.rig.get()}, t + kMs);
}

// A single pair made with a hub (as lockstepd makes it) and no qos section: a guest
// added live brings its own scheduler, which shapes it; the pair, now the guest
// `default`, stays unscheduled.
TEST_F(DataplaneGuestQos, ASinglePairTakesAGuestWithAQosSection) {
  Config cfg = dataplane_config();
  cfg.qos_hub = true;
  std::string err;
  RingRig pair("lqp", {PortRole::ext, PortRole::pvm, PortRole::svm}, kWorkers, cfg);
  dp::GuestConfig d;
  d.name = "d";
  d.nics.resize(1);
  NicRig d0("lqq", d.nics[0]);
  auto dpl = Dataplane::create(cfg, err);
  ASSERT_TRUE(dpl) << err;
  dp::QosHub* hub = dpl->qos();
  ASSERT_NE(hub, nullptr);
  EXPECT_TRUE(hub->schedulers().empty());
  d.qos[0] = std::string(kSlowScript) + "filter add ext guest d class slow\n";
  ASSERT_TRUE(dpl->add_guest(d, nullptr, err)) << err;
  ASSERT_EQ(dpl->guests().size(), 2u);
  EXPECT_EQ(dpl->guests()[0].name, "default");
  EXPECT_EQ(hub->ports(1), std::vector<std::string>{"ext"});
  EXPECT_TRUE(hub->ports(0).empty());

  std::vector<Flow> fp{{&pair, Conversation(params(53000)), std::nullopt}};
  std::vector<Flow> fd{{d0.rig.get(), Conversation(params(53001)), std::nullopt}};
  uint64_t t = 0;
  open_all(*dpl, fp, t);
  open_all(*dpl, fd, t);
  const auto p_in = send_segments(*dpl, fp);
  const auto d_in = send_segments(*dpl, fd);
  for (int i = 0; i < 3; ++i) dpl->step(t += 100000);
  uint64_t p_bytes = 0, d_bytes = 0;
  EXPECT_EQ(fp[0].count(pair.collect(PortRole::ext), p_bytes), kSegs) << "default unshaped";
  EXPECT_EQ(p_bytes, p_in[0]);
  const unsigned d_first = fd[0].count(d0.rig->collect(PortRole::ext), d_bytes);
  EXPECT_GE(d_first, 1u);
  EXPECT_LE(d_first, 2u) << "d held to its class";
  uint64_t rel = 0, drp = 0, qsent = 0, qdrop = 0;
  ASSERT_TRUE(dpl->remove_guest("d", err, dp::HeldPolicy::release, &rel, &drp, &qsent, &qdrop)) << err;
  EXPECT_EQ(d_first + fd[0].count(d0.rig->collect(PortRole::ext), d_bytes), kSegs);
  EXPECT_EQ(d_bytes, d_in[0]);
  expect_conservation(*dpl, {&pair, d0.rig.get()}, t + kMs);
}

// A deleted guest's scheduler slots are taken again: more guests with a qos section come
// and go than the hub has slots at once, on the same devices, and the last one is still
// shaped by its own scheduler.
TEST_F(DataplaneGuestQos, SchedulerSlotsOfDeletedGuestsAreTakenAgain) {
  Config cfg = dataplane_config();
  std::string err;
  cfg.guests.resize(1);
  cfg.guests[0].name = "a";
  cfg.guests[0].nics.resize(1);
  NicRig a0("lqr", cfg.guests[0].nics[0]);
  dp::GuestConfig d;
  d.nics.resize(1);
  NicRig d0("lqs", d.nics[0]);
  ASSERT_TRUE(dp::validate(cfg, err)) << err;
  auto dpl = Dataplane::create(cfg, err);
  ASSERT_TRUE(dpl) << err;
  dp::QosHub* hub = dpl->qos();
  ASSERT_NE(hub, nullptr);
  constexpr unsigned kRounds = 4 * RTE_MAX_ETHPORTS + 8;  // the hub's slots, and more
  uint64_t t = 0;
  for (unsigned i = 0; i < kRounds; ++i) {
    d.name = "d" + std::to_string(i);
    d.qos[0] = std::string(kSlowScript) + "filter add ext guest " + d.name + " class slow\n";
    ASSERT_TRUE(dpl->add_guest(d, nullptr, err)) << "round " << i << ": " << err;
    ASSERT_EQ(hub->schedulers().size(), 1u) << "round " << i;
    dpl->step(t += kMs);
    if (i + 1 == kRounds) break;
    uint64_t rel = 0, drp = 0, qsent = 0, qdrop = 0;
    ASSERT_TRUE(dpl->remove_guest(d.name, err, dp::HeldPolicy::release, &rel, &drp, &qsent, &qdrop))
        << "round " << i << ": " << err;
    ASSERT_TRUE(hub->schedulers().empty()) << "round " << i;
  }
  // The last one's traffic: held to its class by its own scheduler.
  std::vector<Flow> fd{{d0.rig.get(), Conversation(params(52001)), std::nullopt}};
  open_all(*dpl, fd, t);
  send_segments(*dpl, fd);
  for (int i = 0; i < 3; ++i) dpl->step(t += 100000);
  uint64_t d_bytes = 0;
  const unsigned d_first = fd[0].count(d0.rig->collect(PortRole::ext), d_bytes);
  EXPECT_GE(d_first, 1u);
  EXPECT_LE(d_first, 2u) << "the last guest held to its class";
  const int gi = static_cast<int>(dpl->guests().size()) - 1;
  std::vector<dp::QosShowResult> shown;
  while_stepping(*dpl, t, [&] { EXPECT_TRUE(hub->show(gi, "ext", true, 5000 * kMs, shown, err)) << err; });
  ASSERT_EQ(shown.size(), 1u);
  EXPECT_EQ(shown[0].guest, d.name);
  uint64_t rel = 0, drp = 0, qsent = 0, qdrop = 0;
  ASSERT_TRUE(dpl->remove_guest(d.name, err, dp::HeldPolicy::release, &rel, &drp, &qsent, &qdrop)) << err;
  expect_conservation(*dpl, {a0.rig.get(), d0.rig.get()}, t + kMs);
}

}  // namespace
}  // namespace lockstep

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new lockstep::dptest::EalEnv("dpgqos"));
  return RUN_ALL_TESTS();
}
