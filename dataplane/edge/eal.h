// EAL start-up, in one place: the EAL argument list is built from the config (lcores,
// memory, hugepages or not, file prefix, one --vdev or -a per port) followed by any
// arguments the operator gave after `--`, then rte_eal_init.
#pragma once

#include <string>
#include <vector>

#include "dataplane/daemon/lockstepd_config.h"

namespace lockstep::dp {

std::vector<std::string> eal_arguments(const Config& cfg, const std::vector<std::string>& extra,
                                       const std::string& program);

// Each port that is not a PCI address must name a DPDK virtual device whose driver this
// DPDK has (its PMD directory holds the driver's library; `eth_` is accepted for `net_`).
// Checked before the EAL starts (and by --check-config); false + an error naming the
// key. Without a PMD directory (a static DPDK) nothing is refused here.
bool check_port_drivers(const Config& cfg, std::string& error);

// Initialises the EAL once per process. False + error on failure.
bool eal_start(const Config& cfg, const std::vector<std::string>& extra,
               const std::string& program, std::string& error);
void eal_stop();

}  // namespace lockstep::dp
