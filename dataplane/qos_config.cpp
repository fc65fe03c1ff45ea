#include "dataplane/qos_config.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "dataplane/sched/spec.h"

namespace lockstep::dp {

sched::SchedConfig qos_limits(uint32_t pool_mbufs) {
  sched::SchedConfig c;
  c.max_classes = sched::kMaxClasses;
  c.max_connections = 16384;
  c.max_packets = std::clamp<uint32_t>(pool_mbufs / 4, 64, 16384);
  c.max_packet_bytes = 9216;
  return c;
}

bool build_qos_config(std::string_view role_name, std::string_view script,
                      const sched::SchedConfig& limits, sched::QosConfig& out,
                      std::string& error) {
  sched::ScriptResult s = sched::parse_script(script);
  if (!s.ok) {
    error = s.error;
    return false;
  }
  sched::QosConfig next = sched::QosConfig::initial(std::string(role_name));
  for (size_t i = 0; i < s.cmds.size(); ++i) {
    const std::string line = "line " + std::to_string(s.lines[i]) + ": ";
    if (s.cmds[i].dev != role_name) {
      error = line + "device '" + s.cmds[i].dev + "' is not this port (write '" +
              std::string(role_name) + "')";
      return false;
    }
    if (auto e = next.apply(s.cmds[i], limits); !e.empty()) {
      error = line + e;
      return false;
    }
  }
  out = std::move(next);
  return true;
}

bool set_qos_key(std::string_view key, std::string_view role_name, std::string_view value,
                 uint32_t pool_mbufs, std::string& script, std::string& error) {
  std::string text(value);
  if (key.ends_with(".file")) {
    std::ifstream in{std::string(value)};
    if (!in) {
      error = "config key '" + std::string(key) + "': cannot read '" + std::string(value) + "'";
      return false;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    text = ss.str();
  }
  sched::QosConfig cfg;
  std::string e;
  if (!build_qos_config(role_name, text, qos_limits(pool_mbufs), cfg, e)) {
    error = "config key '" + std::string(key) + "': " + e;
    return false;
  }
  script = std::move(text);
  return true;
}

}  // namespace lockstep::dp
