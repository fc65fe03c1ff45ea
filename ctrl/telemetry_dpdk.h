// The control plane's counters as DPDK telemetry commands, readable with
// usertools/dpdk-telemetry.py:
//   /lockstep/metrics[,PREFIX]  {"lockstep_pvm_in_total/worker/0": 123,
//                                "lockstep_released_total/worker/0/reason/matched": 9, ...}
//                               (DPDK allows only [A-Za-z0-9_/] in names, so labels are
//                               /key/value segments; at most 256 entries per answer:
//                               filter with PREFIX)
//   /lockstep/names             the distinct metric names
// Built only with DPDK (lockstep_ctrl_dpdk); the dataplane calls it after rte_eal_init.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "ctrl/metrics.h"

namespace lockstep::ctrl {

using MetricsSource = std::function<std::vector<MetricSample>()>;

// Registers the commands; `source` is called on DPDK's telemetry thread and must be
// thread-safe. Returns false with error if a registration failed.
bool register_dpdk_telemetry(MetricsSource source, std::string& error);

}  // namespace lockstep::ctrl
