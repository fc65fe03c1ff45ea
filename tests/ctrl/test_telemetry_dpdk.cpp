// The /lockstep/ DPDK telemetry commands over DPDK's real telemetry socket
// (dpdk_telemetry.v2, SOCK_SEQPACKET), as dpdk-telemetry.py reads them. EAL runs with
// --no-huge --no-pci and a unique --file-prefix; no lcore polls.
#include <gtest/gtest.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include "ctrl/json_limits.h"
#include "ctrl/metrics.h"
#include "ctrl/telemetry_dpdk.h"

using namespace lockstep;
using namespace lockstep::ctrl;

namespace {

int g_fd = -1;

Json query(const std::string& cmd) {
  if (send(g_fd, cmd.data(), cmd.size(), 0) < 0) return nullptr;
  std::string buf(65536, '\0');
  ssize_t n = recv(g_fd, buf.data(), buf.size(), 0);
  if (n <= 0) return nullptr;
  return Json::parse(buf.substr(0, static_cast<size_t>(n)), nullptr, false);
}

}  // namespace

TEST(TelemetryDpdk, MetricsAndNames) {
  Json m = query("/lockstep/metrics");
  ASSERT_TRUE(m.is_object()) << m;
  const Json& d = m["/lockstep/metrics"];
  EXPECT_EQ(d["lockstep_pvm_in_total/worker/0"], 42);
  EXPECT_EQ(d["lockstep_released_total/worker/0/reason/matched"], 40);

  Json f = query("/lockstep/metrics,lockstep_released");
  for (auto it = f["/lockstep/metrics"].begin(); it != f["/lockstep/metrics"].end(); ++it) {
    EXPECT_EQ(it.key().rfind("lockstep_released", 0), 0u) << it.key();
  }
  EXPECT_GT(f["/lockstep/metrics"].size(), 5u);
  EXPECT_LE(f["/lockstep/metrics"].size(), 256u);

  Json n = query("/lockstep/names");
  ASSERT_TRUE(n["/lockstep/names"].is_array());
  bool found = false;
  for (const auto& x : n["/lockstep/names"]) found |= x == "lockstep_held_pvm";
  EXPECT_TRUE(found);

  Json list = query("/");
  std::string all = list.dump();
  EXPECT_NE(all.find("/lockstep/metrics"), std::string::npos);
}

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  std::string prefix = "lockstep-ctrl-telemetry-" + std::to_string(getpid());
  const char* eal[] = {"test_telemetry_dpdk", "--no-huge", "-m", "256", "--no-pci",
                       "--file-prefix", prefix.c_str(), "--log-level", "lib.eal:error"};
  if (rte_eal_init(static_cast<int>(std::size(eal)), const_cast<char**>(eal)) < 0) {
    std::fprintf(stderr, "rte_eal_init failed: %s\n", rte_strerror(rte_errno));
    return 1;
  }
  std::string error;
  bool ok = register_dpdk_telemetry(
      [] {
        Counters c;
        c.pvm_in = 42;
        c.released[static_cast<unsigned>(ReleaseReason::matched)] = 40;
        std::vector<MetricSample> s;
        append_engine_counters(c, {{"worker", "0"}}, s);
        return s;
      },
      error);
  if (!ok) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 1;
  }
  std::string path = std::string(rte_eal_get_runtime_dir()) + "/dpdk_telemetry.v2";
  g_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::strncpy(sa.sun_path, path.c_str(), sizeof sa.sun_path - 1);
  bool connected = false;
  for (int i = 0; i < 500 && !connected; ++i) {  // the telemetry thread may start late
    connected = connect(g_fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
    if (!connected) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (!connected) {
    std::fprintf(stderr, "cannot connect to %s\n", path.c_str());
    return 1;
  }
  char hello[4096];
  if (recv(g_fd, hello, sizeof hello, 0) <= 0) return 1;  // {"version":..,"pid":..}
  int rc = RUN_ALL_TESTS();
  close(g_fd);
  rte_eal_cleanup();
  return rc;
}
