// Port set-up: find each role's ethdev by device name, configure queues (one tx queue
// per worker; one rx queue, or one per worker with symmetric RSS), start it, and watch
// link and queue-state events (vhost-user peers attaching and detaching).
#pragma once

#include <rte_mempool.h>

#include <array>
#include <string>

#include "dataplane/config.h"
#include "dataplane/stats.h"

namespace lockstep::dp {

struct PortPlan {
  std::array<int, kRoleCount> port{};  // -1 when the role has no port
  bool rss = false;                    // true: every worker reads its own rx queue
  // rx queues configured per role. Software steering: min(workers, what the device has),
  // all read by worker 0 (a device that spreads by itself, e.g. af_packet with qpairs,
  // loses nothing); RSS: one per worker.
  std::array<uint16_t, kRoleCount> nrx{};
};

// Resolves every configured role to a port id (the device must already exist: created
// by EAL --vdev / -a, or by the caller, e.g. rte_eth_from_rings). Decides the steering.
bool plan_ports(const Config& cfg, PortPlan& plan, std::string& error);

// Configures and starts each port; registers link/queue event callbacks that count into
// events[role]. Idempotent per port.
bool start_ports(const Config& cfg, PortPlan& plan, rte_mempool* pool,
                 std::array<PortEvents, kRoleCount>& events, std::string& error);

// Stops (and closes, when close=true) every port of the plan, unregistering callbacks.
void stop_ports(const PortPlan& plan, std::array<PortEvents, kRoleCount>& events, bool close);

}  // namespace lockstep::dp
