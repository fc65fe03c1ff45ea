#include "dataplane/edge/eal.h"

#include <dirent.h>
#include <rte_build_config.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <sched.h>
#include <unistd.h>

namespace lockstep::dp {

namespace {

// The virtual-device driver names the PMD libraries in `dir` provide ("net_ring" for
// librte_net_ring.so); empty when there is no such directory.
std::vector<std::string> vdev_drivers(const char* dir) {
  std::vector<std::string> out;
  DIR* d = opendir(dir);
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    std::string_view n(e->d_name);
    if (!n.starts_with("librte_net_")) continue;
    n.remove_prefix(11);
    std::string lib(n.substr(0, n.find(".so")));
    // Libraries whose vdev drivers are named otherwise.
    if (lib == "bond") out.push_back("net_bonding");
    else if (lib == "virtio") out.push_back("net_virtio_user");
    else if (lib == "tap") out.push_back("net_tun");
    out.push_back("net_" + lib);
  }
  closedir(d);
  return out;
}

}  // namespace

bool check_port_drivers(const Config& cfg, std::string& error) {
#ifdef RTE_EAL_PMD_PATH
  const auto drivers = vdev_drivers(RTE_EAL_PMD_PATH);
#else
  const std::vector<std::string> drivers;
#endif
  if (drivers.empty()) return true;
  for (const auto& [key, spec] : port_devices(cfg)) {
    std::string name = device_name(spec);
    if (is_pci_address(name)) continue;
    if (name.starts_with("eth_")) name = "net_" + name.substr(4);
    bool known = false;
    for (const auto& d : drivers) known = known || name.starts_with(d);
    if (!known) {
      error = "config key '" + key + "': no DPDK driver for device '" + device_name(spec) +
              "' (a PCI address, or a virtual device such as net_ring0, net_pcap0, "
              "net_af_packet0, net_vhost0, net_tap0)";
      return false;
    }
  }
  return true;
}

std::vector<std::string> eal_arguments(const Config& cfg, const std::vector<std::string>& extra,
                                       const std::string& program) {
  std::vector<std::string> a{program};
  auto given = [&](std::string_view opt) {
    for (const auto& e : extra)
      if (e == opt || e.starts_with(std::string(opt) + "=")) return true;
    return false;
  };
  if (!given("-l") && !given("--lcores") && !given("-c")) {
    if (!cfg.lcores.empty()) {
      a.push_back("-l");
      a.push_back(cfg.lcores);
    } else {
      // Main lcore 0 (the control loop, mostly asleep) plus one lcore per worker. With
      // fewer CPUs than that, workers get a CPU each (round robin) and the main lcore
      // floats over all of them.
      cpu_set_t set;
      CPU_ZERO(&set);
      unsigned cpus = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
      std::vector<unsigned> ids;
      for (unsigned c = 0; c < CPU_SETSIZE && ids.size() < cpus; ++c)
        if (CPU_ISSET(c, &set)) ids.push_back(c);
      if (ids.empty()) ids.push_back(0);
      if (cfg.workers + 1 <= ids.size()) {
        a.push_back("-l");
        std::string l;
        for (unsigned i = 0; i <= cfg.workers; ++i) l += (i ? "," : "") + std::to_string(ids[i]);
        a.push_back(l);
      } else {
        std::string m = "0@(";
        for (size_t i = 0; i < ids.size(); ++i) m += (i ? "," : "") + std::to_string(ids[i]);
        m += ")";
        for (unsigned w = 1; w <= cfg.workers; ++w)
          m += "," + std::to_string(w) + "@" + std::to_string(ids[(w - 1) % ids.size()]);
        a.push_back("--lcores=" + m);
      }
    }
  }
  const auto devices = port_devices(cfg);
  bool any_pci = false;
  for (const auto& [key, spec] : devices)
    if (is_pci_address(device_name(spec))) any_pci = true;
  if (!cfg.hugepages && !given("--no-huge")) a.push_back("--no-huge");
  if (!given("-m") && !given("--socket-mem")) {
    a.push_back("-m");
    a.push_back(std::to_string(cfg.memory_mb));
  }
  if (!any_pci && !given("--no-pci") && !given("-a")) a.push_back("--no-pci");
  if (!given("--file-prefix")) {
    a.push_back("--file-prefix=" + (cfg.file_prefix.empty()
                                        ? "lockstepd-" + std::to_string(getpid())
                                        : cfg.file_prefix));
  }
  if (!given("--log-level")) a.push_back("--log-level=lib.eal:error");
  for (const auto& [key, spec] : devices) {
    if (is_pci_address(device_name(spec))) {
      a.push_back("-a");
    } else {
      a.push_back("--vdev");
    }
    a.push_back(spec);
  }
  for (const auto& e : extra) a.push_back(e);
  return a;
}

bool eal_start(const Config& cfg, const std::vector<std::string>& extra,
               const std::string& program, std::string& error) {
  std::vector<std::string> args = eal_arguments(cfg, extra, program);
  std::vector<char*> argv;
  for (auto& s : args) argv.push_back(s.data());
  argv.push_back(nullptr);
  int rc = rte_eal_init(static_cast<int>(args.size()), argv.data());
  if (rc < 0) {
    std::string joined;
    for (const auto& s : args) joined += " " + s;
    error = "EAL start-up failed (" + std::string(rte_strerror(rte_errno)) + "); arguments:" + joined;
    return false;
  }
  return true;
}

void eal_stop() { rte_eal_cleanup(); }

}  // namespace lockstep::dp
