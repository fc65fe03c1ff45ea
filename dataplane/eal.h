// EAL start-up, in one place: the EAL argument list is built from the config (lcores,
// memory, hugepages or not, file prefix, one --vdev or -a per port) followed by any
// arguments the operator gave after `--`, then rte_eal_init.
#pragma once

#include <string>
#include <vector>

#include "dataplane/config.h"

namespace lockstep::dp {

std::vector<std::string> eal_arguments(const Config& cfg, const std::vector<std::string>& extra,
                                       const std::string& program);

// Initialises the EAL once per process. False + error on failure.
bool eal_start(const Config& cfg, const std::vector<std::string>& extra,
               const std::string& program, std::string& error);
void eal_stop();

}  // namespace lockstep::dp
