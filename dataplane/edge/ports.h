// Port set-up: find each role's ethdev by device name, configure queues (one tx queue
// per worker; one rx queue, or one per worker with symmetric RSS), start it, and watch
// link and queue-state events (vhost-user peers attaching and detaching).
#pragma once

#include <rte_mempool.h>

#include <array>
#include <string>
#include <vector>

#include "dataplane/daemon/lockstepd_config.h"
#include "dataplane/edge/stats.h"

namespace lockstep::dp {

// A guest NIC's ports (a compare unit): its ext, pvm and svm port ids and how frames on
// a shared port are told to be its own.
struct UnitPlan {
  unsigned guest = 0, nic = 0;
  std::array<int, kCompareRoles> port{-1, -1, -1};
  std::array<uint8_t, 6> mac{};
  bool has_mac = false;
  int vlan = -1;
};

struct PortPlan {
  // Per role: the first unit's ext/pvm/svm (the single pair), host and link; -1: none.
  std::array<int, kPortRoleCount> port{};
  bool rss = false;                    // true: every worker reads its own rx queue
  // rx queues configured per port id. Software steering: min(workers, what the device
  // has), all read by worker 0 (a device that spreads by itself, e.g. af_packet with
  // qpairs, loses nothing); RSS: one per worker.
  std::array<uint16_t, RTE_MAX_ETHPORTS> nrx{};
  std::vector<UnitPlan> units;         // every guest's NICs, guest by guest
  struct Used {
    int port;
    PortRole role;
    std::string spec;                  // the device string, for messages
    bool shared;                       // more than one unit on it: frames are classified
  };
  std::vector<Used> used;              // every port once, in plan order
};

// Resolves every configured role to a port id (the device must already exist: created
// by EAL --vdev / -a, or by the caller, e.g. rte_eth_from_rings). Decides the steering.
bool plan_ports(const Config& cfg, PortPlan& plan, std::string& error);

// Configures and starts each port; registers link/queue event callbacks that count into
// events[role]. Idempotent per port.
bool start_ports(const Config& cfg, PortPlan& plan, rte_mempool* pool,
                 std::array<PortEvents, kPortRoleCount>& events, std::string& error);

// One port of the plan (start_ports' step; a guest added live starts its new ports).
bool start_port(const Config& cfg, PortPlan& plan, const PortPlan::Used& used, rte_mempool* pool,
                std::array<PortEvents, kPortRoleCount>& events, std::string& error);
void stop_port(const PortPlan::Used& used, std::array<PortEvents, kPortRoleCount>& events, bool close);

// Stops (and closes, when close=true) every port of the plan, unregistering callbacks.
void stop_ports(const PortPlan& plan, std::array<PortEvents, kPortRoleCount>& events, bool close);

}  // namespace lockstep::dp
