#include "dataplane/qos/qos_config.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "dataplane/qos/sched/spec.h"

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

bool build_guest_qos_config(std::string_view guest, std::string_view role_name,
                            std::string_view script, const sched::SchedConfig& limits,
                            sched::QosConfig& out, std::string& error) {
  std::string e;
  if (build_qos_config(role_name, script, limits, out, e)) return true;
  error = "config key 'guests." + std::string(guest) + ".qos." + std::string(role_name) + "': " + e;
  return false;
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
  // `guest NAME` is resolved once the whole file is read (check_qos_guests).
  const sched::GuestNamesScope any_guest({}, true);
  if (!build_qos_config(role_name, text, qos_limits(pool_mbufs), cfg, e)) {
    error = "config key '" + std::string(key) + "': " + e;
    return false;
  }
  script = std::move(text);
  return true;
}

bool set_qos_roles_key(std::string_view key, std::string_view value, std::string& script,
                       std::string& error) {
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
  sched::RoleMap m;
  std::string e;
  // The defaults' ports come from other keys (maybe later in the file): checked here
  // without them, built with them when the dataplane starts.
  if (!sched::build_role_map(text, {}, m, e)) {
    error = "config key '" + std::string(key) + "': " + e;
    return false;
  }
  script = std::move(text);
  return true;
}

namespace {

// The port of "HOST:PORT" / "[V6]:PORT"; nothing when there is none.
bool port_of(std::string_view hp, uint16_t& port) {
  while (!hp.empty() && hp.front() == ' ') hp.remove_prefix(1);
  while (!hp.empty() && hp.back() == ' ') hp.remove_suffix(1);
  const size_t c = hp.rfind(':');
  if (c == std::string_view::npos || c + 1 >= hp.size() || hp.size() - c - 1 > 5) return false;
  uint32_t v = 0;
  for (char ch : hp.substr(c + 1)) {
    if (ch < '0' || ch > '9') return false;
    v = v * 10 + static_cast<uint32_t>(ch - '0');
  }
  if (v == 0 || v > 65535) return false;
  port = static_cast<uint16_t>(v);
  return true;
}

}  // namespace

sched::RoleDefaultsInput role_defaults_from(std::string_view heartbeat_bind,
                                            std::string_view heartbeat_send_to,
                                            std::string_view checkpointer_kind,
                                            std::string_view checkpointer_endpoint) {
  sched::RoleDefaultsInput in;
  auto add = [](std::vector<uint16_t>& v, uint16_t p) {
    if (std::find(v.begin(), v.end(), p) == v.end()) v.push_back(p);
  };
  uint16_t p;
  if (port_of(heartbeat_bind, p)) add(in.heartbeat_udp_ports, p);
  for (size_t b = 0; b <= heartbeat_send_to.size();) {
    size_t e = heartbeat_send_to.find(',', b);
    if (e == std::string_view::npos) e = heartbeat_send_to.size();
    if (port_of(heartbeat_send_to.substr(b, e - b), p)) add(in.heartbeat_udp_ports, p);
    b = e + 1;
  }
  if (checkpointer_kind != "simulated" && checkpointer_endpoint.starts_with("tcp:") &&
      port_of(checkpointer_endpoint.substr(4), p))
    add(in.control_tcp_ports, p);
  return in;
}

}  // namespace lockstep::dp
