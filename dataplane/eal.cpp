#include "dataplane/eal.h"

#include <rte_eal.h>
#include <rte_errno.h>
#include <sched.h>
#include <unistd.h>

namespace lockstep::dp {

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
  bool any_pci = false;
  for (const auto& spec : cfg.ports)
    if (!spec.empty() && is_pci_address(device_name(spec))) any_pci = true;
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
  for (const auto& spec : cfg.ports) {
    if (spec.empty()) continue;
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
