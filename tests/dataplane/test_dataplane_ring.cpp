// In-process dataplane tests on net_ring ports: mirror, SVM ack translation, compare and
// release, checkpoints through the control rings, bad input, steering across two
// workers, and pool conservation (every mbuf back in its pool at the end). The workers
// are stepped on the test thread with explicit time, so nothing depends on timing.
#include <gtest/gtest.h>
#include <rte_eal.h>
#include <rte_mempool.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "compare/parse.h"
#include "dataplane/edge/dataplane.h"
#include "tests/dataplane/eal_env.h"
#include "tests/dataplane/ring_rig.h"
#include "tests/support/frame_builder.h"

namespace lockstep {
namespace {

using dp::Config;
using dp::Dataplane;
using dp::PortRole;
using dptest::RingRig;
using test::Bytes;
using test::Conversation;
using test::Vm;

using dptest::EalEnv;

constexpr uint64_t kMs = 1000000;

struct Fixture {
  explicit Fixture(const std::string& tag, unsigned workers = 1,
                   std::initializer_list<PortRole> roles = {PortRole::ext, PortRole::pvm, PortRole::svm}) {
    cfg.workers = workers;
    cfg.pool_mbufs = 4095;
    cfg.pool_cache = 0;  // every free mbuf is in the ring: avail == size is exact
    cfg.checkpoint_latency_us = 1000;
    std::string err;
    Settings s;
    EXPECT_TRUE(cfg.engine.with("compare_timeout_us", "10000", s, err)) << err;
    cfg.engine = s;
    rig = std::make_unique<RingRig>(tag, roles, workers, cfg);
    dp = Dataplane::create(cfg, error);
  }
  ~Fixture() {
    dp.reset();
    rig.reset();
  }
  rte_mempool* pool() { return dp->pool(); }
  bool inject(PortRole r, const Bytes& b) { return rig->inject(r, pool(), b); }
  // Finishes the workers, takes every frame out of the rings, stops the ports and
  // checks that every mbuf went back to the pool.
  void expect_conservation(uint64_t now) {
    dp->finish(now);
    for (unsigned r = 0; r < dp::kPortRoleCount; ++r) rig->drain(static_cast<PortRole>(r));
    dp->stop_ports(true);
    auto rep = dp->report();
    EXPECT_EQ(rep.pool_avail, rep.pool_size) << "mbufs not returned";
    EXPECT_EQ(rep.total.engine.conservation_error(), "");
  }

  Config cfg;
  std::string error;
  std::unique_ptr<RingRig> rig;
  std::unique_ptr<Dataplane> dp;
};

Conversation::Params conv_params(uint16_t client_port = 40000) {
  Conversation::Params p;
  p.client_port = client_port;
  p.pvm_isn = 500000;
  p.svm_isn = 900000;
  return p;
}

// Handshake through the dataplane; returns the time after it.
uint64_t handshake(Fixture& f, Conversation& c, uint64_t t) {
  EXPECT_TRUE(f.inject(PortRole::ext, c.client_syn()));
  f.dp->step(t += kMs);
  EXPECT_TRUE(f.inject(PortRole::pvm, c.vm_synack(Vm::pvm)));
  EXPECT_TRUE(f.inject(PortRole::svm, c.vm_synack(Vm::svm)));
  f.dp->step(t += kMs);
  EXPECT_TRUE(f.inject(PortRole::ext, c.client_handshake_ack()));
  f.dp->step(t += kMs);
  return t;
}

class DataplaneRing : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!EalEnv::ok_) GTEST_SKIP() << "EAL did not start (no --no-huge memory?)";
  }
};

TEST_F(DataplaneRing, MirrorsIngressToBothVmsAndTranslatesTheSvmAck) {
  Fixture f("mir");
  ASSERT_TRUE(f.rig->ok());
  ASSERT_TRUE(f.dp) << f.error;
  Conversation c(conv_params());
  Bytes syn = c.client_syn();
  ASSERT_TRUE(f.inject(PortRole::ext, syn));
  f.dp->step(kMs);
  auto to_pvm = f.rig->collect(PortRole::pvm);
  auto to_svm = f.rig->collect(PortRole::svm);
  ASSERT_EQ(to_pvm.size(), 1u);
  ASSERT_EQ(to_svm.size(), 1u);
  EXPECT_EQ(to_pvm[0], syn) << "the PVM gets the client's frame untouched";
  EXPECT_EQ(to_svm[0], syn) << "a SYN carries no ack to translate";

  Bytes pvm_synack = c.vm_synack(Vm::pvm);
  ASSERT_TRUE(f.inject(PortRole::pvm, pvm_synack));
  ASSERT_TRUE(f.inject(PortRole::svm, c.vm_synack(Vm::svm)));
  f.dp->step(2 * kMs);
  auto released = f.rig->collect(PortRole::ext);
  ASSERT_EQ(released.size(), 1u) << "the PVM's SYN/ACK is released once the SVM's matches";
  EXPECT_EQ(released[0], pvm_synack);

  Bytes ack = c.client_handshake_ack();
  ASSERT_TRUE(f.inject(PortRole::ext, ack));
  f.dp->step(3 * kMs);
  to_pvm = f.rig->collect(PortRole::pvm);
  to_svm = f.rig->collect(PortRole::svm);
  ASSERT_EQ(to_pvm.size(), 1u);
  ASSERT_EQ(to_svm.size(), 1u);
  EXPECT_EQ(to_pvm[0], ack);
  auto d = test::decode(to_svm[0]);
  ASSERT_TRUE(d.ok);
  EXPECT_EQ(d.ack, c.vm_seq(Vm::svm, 0)) << "ack translated into the SVM's sequence space";
  EXPECT_TRUE(test::verify_l4_checksum(to_svm[0]));
  f.expect_conservation(10 * kMs);
}

TEST_F(DataplaneRing, ReleasesMatchedOutputWhateverTheSegmentation) {
  Fixture f("seg");
  ASSERT_TRUE(f.dp) << f.error;
  Conversation c(conv_params());
  uint64_t t = handshake(f, c, 0);
  f.rig->collect(PortRole::ext);
  Bytes pvm = c.vm_stream(Vm::pvm, 0, 1000);
  ASSERT_TRUE(f.inject(PortRole::pvm, pvm));
  f.dp->step(t += kMs);
  EXPECT_TRUE(f.rig->collect(PortRole::ext).empty()) << "held until the SVM's bytes arrive";
  ASSERT_TRUE(f.inject(PortRole::svm, c.vm_stream(Vm::svm, 0, 400)));
  ASSERT_TRUE(f.inject(PortRole::svm, c.vm_stream(Vm::svm, 400, 600)));
  f.dp->step(t += kMs);
  auto released = f.rig->collect(PortRole::ext);
  ASSERT_EQ(released.size(), 1u);
  EXPECT_EQ(released[0], pvm);
  auto rep = f.dp->report();
  EXPECT_EQ(rep.checkpoint_requests, 0u);
  EXPECT_EQ(rep.total.engine.bytes_compared, 1000u);
  f.expect_conservation(t + kMs);
}

TEST_F(DataplaneRing, DivergenceRequestsOneCheckpointThenReleases) {
  Fixture f("div");
  ASSERT_TRUE(f.dp) << f.error;
  Conversation c(conv_params());
  uint64_t t = handshake(f, c, 0);
  f.rig->collect(PortRole::ext);
  Bytes pvm = c.vm_stream(Vm::pvm, 0, 500, 1);
  ASSERT_TRUE(f.inject(PortRole::pvm, pvm));
  ASSERT_TRUE(f.inject(PortRole::svm, c.vm_stream(Vm::svm, 0, 500, 2)));  // other bytes
  for (int i = 0; i < 5; ++i) f.dp->step(t += kMs);  // request, then 1 ms latency
  auto rep = f.dp->report();
  EXPECT_EQ(rep.checkpoint_requests, 1u);
  EXPECT_EQ(rep.checkpoints_done, 1u);
  auto released = f.rig->collect(PortRole::ext);
  ASSERT_EQ(released.size(), 1u) << "held output released by the checkpoint";
  EXPECT_EQ(released[0], pvm);
  f.expect_conservation(t + kMs);
}

TEST_F(DataplaneRing, DeadlineWithoutSvmOutputRequestsACheckpoint) {
  Fixture f("ddl");
  ASSERT_TRUE(f.dp) << f.error;
  Conversation c(conv_params());
  uint64_t t = handshake(f, c, 0);
  f.rig->collect(PortRole::ext);
  ASSERT_TRUE(f.inject(PortRole::pvm, c.vm_stream(Vm::pvm, 0, 300)));
  f.dp->step(t += kMs);
  EXPECT_TRUE(f.rig->collect(PortRole::ext).empty());
  f.dp->step(t += 20 * kMs);  // past compare_timeout (10 ms)
  f.dp->step(t += 2 * kMs);   // checkpoint done after 1 ms
  f.dp->step(t += kMs);
  EXPECT_EQ(f.rig->collect(PortRole::ext).size(), 1u);
  EXPECT_EQ(f.dp->report().checkpoint_requests, 1u);
  f.expect_conservation(t + kMs);
}

TEST_F(DataplaneRing, BadInputIsCountedAndNothingCrashes) {
  Fixture f("bad");
  ASSERT_TRUE(f.dp) << f.error;
  std::vector<Bytes> junk;
  junk.push_back(Bytes(1, 0xff));                     // runt
  junk.push_back(Bytes(13, 0x00));                    // shorter than Ethernet
  junk.push_back(Bytes(60, 0xab));                    // garbage
  Conversation c(conv_params());
  Bytes bad_len = c.vm_stream(Vm::pvm, 0, 100);
  bad_len[16] = 0xff;                                 // IPv4 total length past the frame
  bad_len[17] = 0xff;
  junk.push_back(bad_len);
  Bytes bad_ihl = c.vm_stream(Vm::pvm, 0, 100);
  bad_ihl[14] = 0x41;                                 // IHL 1
  junk.push_back(bad_ihl);
  Bytes trunc = c.vm_stream(Vm::pvm, 0, 100);
  trunc.resize(40);                                   // cut inside TCP
  junk.push_back(trunc);
  uint64_t t = 0;
  for (int round = 0; round < 20; ++round) {
    for (const auto& j : junk) {
      ASSERT_TRUE(f.inject(PortRole::ext, j));
      ASSERT_TRUE(f.inject(PortRole::pvm, j));
      ASSERT_TRUE(f.inject(PortRole::svm, j));
    }
    f.dp->step(t += kMs);
  }
  for (int i = 0; i < 50; ++i) f.dp->step(t += 10 * kMs);
  auto rep = f.dp->report();
  EXPECT_EQ(rep.total.port[0].rx, 20 * junk.size());
  EXPECT_EQ(rep.total.engine.pvm_in, 20 * junk.size());
  uint64_t parse_failures = 0;
  for (unsigned i = 1; i < kParseStatusCount; ++i) parse_failures += rep.total.engine.parse_pvm[i];
  EXPECT_GT(parse_failures, 0u) << "malformed PVM frames are counted by reason";
  f.expect_conservation(t + kMs);
}

TEST_F(DataplaneRing, HostAndLinkAreForwarded) {
  Fixture f("fwd", 1, {PortRole::ext, PortRole::pvm, PortRole::svm, PortRole::host, PortRole::link});
  ASSERT_TRUE(f.dp) << f.error;
  Conversation c(conv_params());
  Bytes a = c.vm_stream(Vm::pvm, 0, 200), b = c.vm_stream(Vm::svm, 0, 300);
  ASSERT_TRUE(f.inject(PortRole::host, a));
  ASSERT_TRUE(f.inject(PortRole::link, b));
  f.dp->step(kMs);
  auto on_link = f.rig->collect(PortRole::link);
  auto on_host = f.rig->collect(PortRole::host);
  ASSERT_EQ(on_link.size(), 1u);
  ASSERT_EQ(on_host.size(), 1u);
  EXPECT_EQ(on_link[0], a);
  EXPECT_EQ(on_host[0], b);
  f.expect_conservation(2 * kMs);
}

TEST_F(DataplaneRing, TwoWorkersSteerEveryConnectionToOneOwnerInOrder) {
  Fixture f("two", 2);
  ASSERT_TRUE(f.dp) << f.error;
  ASSERT_FALSE(f.dp->plan().rss) << "net_ring has no RSS: software steering";
  constexpr int kFlows = 16, kSegs = 8;
  std::vector<std::unique_ptr<Conversation>> convs;
  uint64_t t = 0;
  for (int i = 0; i < kFlows; ++i) {
    convs.push_back(std::make_unique<Conversation>(conv_params(static_cast<uint16_t>(41000 + i))));
    t = handshake(f, *convs.back(), t);
  }
  f.rig->collect(PortRole::ext);
  for (int s = 0; s < kSegs; ++s) {
    for (auto& c : convs) {
      ASSERT_TRUE(f.inject(PortRole::pvm, c->vm_stream(Vm::pvm, static_cast<uint64_t>(s) * 100, 100)));
      ASSERT_TRUE(f.inject(PortRole::svm, c->vm_stream(Vm::svm, static_cast<uint64_t>(s) * 100, 100)));
    }
    f.dp->step(t += kMs);
  }
  for (int i = 0; i < 4; ++i) f.dp->step(t += kMs);
  auto released = f.rig->collect(PortRole::ext);
  ASSERT_EQ(released.size(), static_cast<size_t>(kFlows * kSegs));
  // Per connection, release order is stream order.
  std::map<uint16_t, uint32_t> last_seq;
  for (const auto& r : released) {
    auto d = test::decode(r);
    ASSERT_TRUE(d.ok);
    uint16_t port = static_cast<uint16_t>((r[d.l4_off + 2] << 8) | r[d.l4_off + 3]);
    auto it = last_seq.find(port);
    if (it != last_seq.end()) {
      EXPECT_GT(d.seq, it->second) << "order kept within a flow";
    }
    last_seq[port] = d.seq;
  }
  auto rep = f.dp->report();
  EXPECT_GT(rep.workers[0].frames, 0u);
  EXPECT_GT(rep.workers[1].frames, 0u) << "both workers own connections";
  EXPECT_GT(rep.workers[0].steered_out, 0u);
  EXPECT_EQ(rep.checkpoint_requests, 0u);
  f.expect_conservation(t + kMs);
}

TEST_F(DataplaneRing, WrongConfigIsRefusedNamingTheKey) {
  Config cfg;
  std::string err;
  EXPECT_FALSE(dp::apply_override("engine.compare_timeout_us=5", cfg, err));
  EXPECT_NE(err.find("compare_timeout_us"), std::string::npos) << err;
  EXPECT_FALSE(dp::apply_override("workers=0", cfg, err));
  EXPECT_NE(err.find("workers"), std::string::npos) << err;
  EXPECT_FALSE(dp::apply_override("ports.vm=net_ring0", cfg, err));
  EXPECT_NE(err.find("ports.vm"), std::string::npos) << err;
  EXPECT_FALSE(dp::parse_config("pool:\n  mbufs: lots\n", cfg, err));
  EXPECT_NE(err.find("pool.mbufs"), std::string::npos) << err;
  EXPECT_FALSE(dp::parse_config("bogus: 1\n", cfg, err));
  EXPECT_NE(err.find("bogus"), std::string::npos) << err;
  Config ok;
  ASSERT_TRUE(dp::parse_config(dp::default_config_yaml(), ok, err)) << err;
  EXPECT_TRUE(dp::validate(ok, err)) << err;
  ok.ports[static_cast<unsigned>(PortRole::svm)].clear();
  EXPECT_FALSE(dp::validate(ok, err));
  EXPECT_NE(err.find("ports.svm"), std::string::npos) << err;
  // A port name that does not exist is refused by the dataplane, naming the role.
  Config missing;
  missing.ports = {"net_ring_nope_a", "net_ring_nope_b", "net_ring_nope_c", "", ""};
  EXPECT_EQ(Dataplane::create(missing, err), nullptr);
  EXPECT_NE(err.find("ports.ext"), std::string::npos) << err;
}

}  // namespace
}  // namespace lockstep

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new lockstep::dptest::EalEnv("dpring"));
  return RUN_ALL_TESTS();
}
