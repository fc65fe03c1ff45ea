// The standard ctrl commands (status, stats, conns, config get/set, checkpoint, failover,
// mode, capture, version, metrics), registered on a CommandRegistry and wired to the
// daemon (DaemonControl) and to the control plane's own parts.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "compare/engine.h"
#include "ctrl/cluster.h"
#include "ctrl/command_registry.h"
#include "ctrl/daemon_control.h"
#include "ctrl/event_log.h"
#include "ctrl/events.h"
#include "ctrl/heartbeat.h"
#include "ctrl/metrics.h"

namespace lockstep::ctrl {

class CheckpointCoordinator;
class CtrlServer;

struct ControlPlane {
  DaemonControl* daemon = nullptr;               // required
  FailoverController* failover = nullptr;        // required
  EventQueue* events = nullptr;                  // required
  CheckpointCoordinator* coordinator = nullptr;  // optional (no checkpointer link)
  CtrlServer* server = nullptr;                  // optional (its counters in status/metrics)
  ClusterControl* cluster = nullptr;             // optional (cluster: kind corosync)
  EventLog* log = nullptr;                       // optional: `events`, `explain`
  uint64_t start_ns = 0;                         // monotonic, for uptime
  std::atomic<uint64_t> config_generation{0};    // bumped by each applied `config set`
  // Extra metric sources (e.g. the metrics HTTP server's own counters).
  std::vector<std::function<void(std::vector<MetricSample>&)>> extra_metrics;
};

inline constexpr size_t kDefaultConnsLimit = 100;
inline constexpr size_t kMaxConnsLimit = 100000;

void register_standard_commands(CommandRegistry& reg, ControlPlane& cp);

// `rules list|add|del` over the normalization rules (registered by the standard set).
void register_rules_commands(CommandRegistry& reg, ControlPlane& cp);

// A setting's value as JSON: numbers for u64 settings, true/false for booleans, else the
// text (`config get`, `config set`, config events).
Json setting_value_json(const SettingInfo& info, const std::string& value);

// The settings that differ between two snapshots: {"KEY": {"from": V, "to": V}, ...}
// (values as setting_value_json); empty when none does. For `config` events.
Json settings_change_json(const Settings& before, const Settings& after);

// One connection of `conns` (the daemon adds where it lives, e.g. its worker).
Json conn_json(const ConnInfo& c);

// `stats --rate`: per-second rates of the counters between two `stats` answers taken
// `seconds` apart; gauges keep their latest value.
Json stats_rates(const Json& before, const Json& after, double seconds);

// `events` and `explain` over cp.log (registered by the standard set when it is set).
void register_event_commands(CommandRegistry& reg, ControlPlane& cp);
// explain's answer for the last `n` checkpoint requests of the log (pure, for tests);
// without `with_bytes` (the read-only socket) the guests' bytes are left out.
Json explain_json(const EventLog& log, size_t n, bool with_bytes = true);

// Every metric: the daemon's and the control plane's.
std::vector<MetricSample> collect_metrics(ControlPlane& cp);
std::string render_metrics(ControlPlane& cp);

// The project version this was built from.
std::string_view lockstep_version();

}  // namespace lockstep::ctrl
