// Config loading: YAML is flattened into dotted keys ("pool.mbufs", "engine.mode"), and
// every key, from a file or from `--set`, goes through one table below. So the file
// and the command line accept exactly the same keys with the same checks.
#include "dataplane/daemon/lockstepd_config.h"

#include <yaml-cpp/yaml.h>

#include "dataplane/qos/qos_config.h"
#include "dataplane/qos/sched/spec.h"

#include <charconv>
#include <fstream>
#include <initializer_list>
#include <set>
#include <sstream>

#include "compare/normalize.h"
#include "compare/policy.h"

namespace lockstep::dp {
namespace {

constexpr uint32_t RTE_PKTMBUF_HEADROOM_ = 128;  // DPDK's default headroom (no DPDK include here)

constexpr std::string_view kRoleNames[] = {
#define LOCKSTEP_X(name, help) #name,
    LOCKSTEP_PORT_ROLES(LOCKSTEP_X)
#undef LOCKSTEP_X
};

bool parse_u64(std::string_view v, uint64_t& out) {
  if (v.empty()) return false;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  return ec == std::errc() && p == v.data() + v.size();
}

bool parse_bool(std::string_view v, bool& out) {
  if (v == "true" || v == "yes" || v == "on" || v == "1") return out = true, true;
  if (v == "false" || v == "no" || v == "off" || v == "0") return out = false, true;
  return false;
}

struct U32Key {
  std::string_view key;
  uint32_t Config::*field;
  uint32_t min, max;
};

const U32Key kU32Keys[] = {
    {"workers", &Config::workers, 1, 64},
    {"pool.mbufs", &Config::pool_mbufs, 1023, 16777215},
    {"pool.cache", &Config::pool_cache, 0, 512},
    {"pool.data_room", &Config::mbuf_data_room, 512, 65535 - RTE_PKTMBUF_HEADROOM_},
    {"pool.jumbo_mbufs", &Config::jumbo_mbufs, 0, 1048575},
    {"queues.rx_desc", &Config::rx_desc, 64, 32768},
    {"queues.tx_desc", &Config::tx_desc, 64, 32768},
    {"queues.burst", &Config::burst, 1, 64},
    {"queues.tx_retries", &Config::tx_retries, 0, 1000},
    {"queues.steer_ring", &Config::steer_ring_size, 64, 1048576},
    {"eal.memory_mb", &Config::memory_mb, 64, 1048576},
};

bool one_of(std::string_view v, std::initializer_list<std::string_view> choices) {
  for (auto c : choices)
    if (v == c) return true;
  return false;
}

// A heartbeat peer's loss action, as ctrl/heartbeat.h spells it ('_' accepted for '-').
bool loss_action(std::string_view v, std::string& out) {
  std::string n(v);
  for (auto& c : n)
    if (c == '_') c = '-';
  if (!one_of(n, {"failover-primary", "failover-secondary", "alarm"})) return false;
  out = n;
  return true;
}

// checkpointer.* (but kind and latency_us), ctrl.*, heartbeat.*, peers.NAME.*: the
// values are checked here as far as they can be without ctrl/ (endpoints are parsed
// by lockstepd at start, with an error naming the key).
bool set_ctrl_key(std::string_view key, std::string_view value, Config& cfg, std::string& error) {
  auto bad = [&](std::string_view expect) {
    error = "config key '" + std::string(key) + "': invalid value '" + std::string(value) +
            "' (expected " + std::string(expect) + ")";
    return false;
  };
  auto ms = [&](uint64_t& out, uint64_t min, uint64_t max) {
    uint64_t v = 0;
    if (!parse_u64(value, v) || v < min || v > max)
      return bad("milliseconds in [" + std::to_string(min) + ", " + std::to_string(max) + "]");
    out = v;
    return true;
  };
  auto& l = cfg.link;
  constexpr uint64_t kHour = 3600000;
  if (key == "checkpointer.endpoint") return l.endpoint = std::string(value), true;
  if (key == "checkpointer.listen") return parse_bool(value, l.listen) || bad("true or false");
  if (key == "checkpointer.secondary_qmp") return l.secondary_qmp = std::string(value), true;
  if (key == "checkpointer.vnet_hdr") return parse_bool(value, l.vnet_hdr) || bad("true or false");
  if (key == "checkpointer.max_epoch_ms") return ms(l.max_epoch_ms, 0, kHour);
  if (key == "checkpointer.timeout_ms") return ms(l.timeout_ms, 1, kHour);
  if (key == "checkpointer.reconnect_ms") return ms(l.reconnect_ms, 1, kHour);
  if (key == "checkpointer.heartbeat_timeout_ms") return ms(l.heartbeat_timeout_ms, 0, kHour);
  if (key == "checkpointer.heartbeat_debounce_ms") return ms(l.heartbeat_debounce_ms, 0, kHour);
  if (key == "checkpointer.max_retries") {
    uint64_t v = 0;
    if (!parse_u64(value, v) || v > 1000) return bad("an integer in [0, 1000]");
    l.max_retries = static_cast<uint32_t>(v);
    return true;
  }
  if (key == "checkpointer.on_timeout") {
    if (!one_of(value, {"retry", "alarm", "failover"})) return bad("retry, alarm or failover");
    l.on_timeout = std::string(value);
    return true;
  }
  if (key == "checkpointer.on_loss") {
    if (!loss_action(value, l.on_loss)) return bad("failover-primary, failover-secondary or alarm");
    return true;
  }
  auto& c = cfg.ctrl;
  if (key == "ctrl.socket") {
    if (value.empty()) return bad("a socket path or off");
    c.socket_given = true;
    return c.socket = std::string(value), true;
  }
  if (key == "ctrl.group") return c.group = std::string(value), true;
  if (key == "ctrl.ro_socket") return c.ro_socket = std::string(value), true;
  if (key == "ctrl.capture_dir") {
    if (value.empty() || value[0] != '/') return bad("an absolute directory path");
    return c.capture_dir = std::string(value), true;
  }
  if (key == "ctrl.metrics") {
    if (value.empty()) return bad("tcp:HOST:PORT or off");
    c.metrics_given = true;
    return c.metrics = std::string(value), true;
  }
  auto& h = cfg.heartbeat;
  if (key == "heartbeat.name") {
    if (value.empty()) return bad("a name");
    return h.name = std::string(value), true;
  }
  if (key == "heartbeat.bind") return h.bind = std::string(value), true;
  if (key == "heartbeat.send_to") return h.send_to = std::string(value), true;
  if (key == "heartbeat.interval_ms") return ms(h.interval_ms, 1, 60000);
  auto& cl = cfg.cluster;
  if (key == "cluster.kind") {
    if (!one_of(value, {"none", "corosync"})) return bad("none or corosync");
    return cl.kind = std::string(value), true;
  }
  if (key == "cluster.group") {
    if (value.empty() || value.size() > 127) return bad("a CPG group name of 1 to 127 bytes");
    return cl.group = std::string(value), true;
  }
  if (key == "cluster.role") {
    if (!one_of(value, {"primary", "secondary"})) return bad("primary or secondary");
    return cl.role = std::string(value), true;
  }
  if (key == "cluster.watch") return cl.watch = std::string(value), true;
  if (key == "cluster.yellow_ms") return ms(cl.yellow_ms, 100, kHour);
  if (key == "cluster.settle_ms") return ms(cl.settle_ms, 0, 60000);
  if (key.starts_with("peers.")) {
    auto rest = key.substr(6);
    auto dot = rest.rfind('.');
    if (dot == std::string_view::npos || dot == 0) {
      error = "config key '" + std::string(key) +
              "': expected peers.NAME.timeout_ms, peers.NAME.debounce_ms or peers.NAME.action";
      return false;
    }
    auto& p = cfg.peers[std::string(rest.substr(0, dot))];
    auto field = rest.substr(dot + 1);
    if (field == "timeout_ms") return ms(p.timeout_ms, 1, kHour);
    if (field == "debounce_ms") return ms(p.debounce_ms, 0, kHour);
    if (field == "action") {
      if (!loss_action(value, p.action)) return bad("failover-primary, failover-secondary or alarm");
      return true;
    }
  }
  error = "config key '" + std::string(key) + "': unknown key";
  return false;
}

bool set_key(std::string_view key, std::string_view value, Config& cfg, std::string& error) {
  auto bad = [&](std::string_view expect) {
    error = "config key '" + std::string(key) + "': invalid value '" + std::string(value) +
            "' (expected " + std::string(expect) + ")";
    return false;
  };
  if (key == "guests" || key.starts_with("guests.")) return set_guest_key(key, value, cfg, error);
  if (key.starts_with("engine.")) {
    Settings next;
    if (!cfg.engine.with(key.substr(7), value, next, error)) {
      error = "config key '" + std::string(key) + "': " + error;
      return false;
    }
    cfg.engine = next;
    return true;
  }
  if (key == "qos.roles" || key == "qos.roles.file")  // the role map, one rule a line
    return set_qos_roles_key(key, value, cfg.qos_roles, error);
  if (key.starts_with("qos.")) {  // qos.ROLE or qos.ROLE.file: scheduler commands
    std::string_view rn = key.substr(4);
    if (rn.ends_with(".file")) rn.remove_suffix(5);
    PortRole r;
    if (!port_role_from_string(rn, r)) {
      error = "config key '" + std::string(key) +
              "': unknown port role (expected ext, pvm, svm, host or link; or roles)";
      return false;
    }
    return set_qos_key(key, rn, value, cfg.pool_mbufs, cfg.qos[static_cast<unsigned>(r)], error);
  }
  if (key == "ports.mac") {
    if (!parse_mac(value, cfg.default_mac)) return bad("a MAC address xx:xx:xx:xx:xx:xx");
    cfg.default_has_mac = true;
    return true;
  }
  if (key == "ports.vlan") {
    uint64_t v = 0;
    if (!parse_u64(value, v) || v > 4095) return bad("a VLAN id in [0, 4095]");
    cfg.default_vlan = static_cast<int>(v);
    return true;
  }
  if (key == "guest_del.held") {
    if (!held_policy_from_string(value, cfg.guest_del_held)) return bad("release or drop");
    return true;
  }
  if (key.starts_with("ports.")) {
    PortRole r;
    if (!port_role_from_string(key.substr(6), r)) {
      error = "config key '" + std::string(key) +
              "': unknown port role (expected ext, pvm, svm, host or link)";
      return false;
    }
    cfg.ports[static_cast<unsigned>(r)] = std::string(value);
    return true;
  }
  for (const auto& k : kU32Keys) {
    if (key != k.key) continue;
    uint64_t v = 0;
    if (!parse_u64(value, v) || v < k.min || v > k.max)
      return bad("an integer in [" + std::to_string(k.min) + ", " + std::to_string(k.max) + "]");
    cfg.*k.field = static_cast<uint32_t>(v);
    return true;
  }
  if (key == "lcores") return cfg.lcores = std::string(value), true;
  if (key == "eal.file_prefix") return cfg.file_prefix = std::string(value), true;
  if (key == "eal.hugepages") {
    if (!parse_bool(value, cfg.hugepages)) return bad("true or false");
    return true;
  }
  if (key == "steering") {
    if (value == "software") cfg.steering = Steering::software;
    else if (value == "rss") cfg.steering = Steering::rss;
    else if (value == "auto") cfg.steering = Steering::autodetect;
    else return bad("software, rss or auto");
    return true;
  }
  if (key == "clock") {
    if (value == "tsc") cfg.clock = ClockKind::tsc;
    else if (value == "replay") cfg.clock = ClockKind::replay;
    else return bad("tsc or replay");
    return true;
  }
  if (key == "checkpointer.kind" || key == "checkpointer") {
    if (value != "simulated" && value != "native" && value != "qemu" && value != "qmp")
      return bad("simulated, native, qemu or qmp");
    cfg.checkpointer = std::string(value);
    return true;
  }
  if ((key.starts_with("checkpointer.") && key != "checkpointer.latency_us") || key.starts_with("ctrl.") ||
      key.starts_with("heartbeat.") || key.starts_with("peers.") || key.starts_with("cluster."))
    return set_ctrl_key(key, value, cfg, error);
  if (key == "checkpointer.latency_us") {
    uint64_t v = 0;
    if (!parse_u64(value, v) || v > 60000000) return bad("an integer in [0, 60000000]");
    cfg.checkpoint_latency_us = v;
    return true;
  }
  error = "config key '" + std::string(key) + "': unknown key";
  return false;
}

bool flatten(const YAML::Node& n, const std::string& prefix,
             std::vector<std::pair<std::string, std::string>>& out, std::string& error) {
  if (n.IsMap()) {
    std::set<std::string> seen;  // YAML parsers keep the last of two equal keys: refused
    for (const auto& kv : n) {
      std::string k = kv.first.as<std::string>();
      const std::string full = prefix.empty() ? k : prefix + "." + k;
      if (!seen.insert(k).second) {
        error = "config key '" + full + "': given twice (line " +
                std::to_string(kv.first.Mark().line + 1) + ")";
        return false;
      }
      if (!flatten(kv.second, prefix.empty() ? k : prefix + "." + k, out, error)) return false;
    }
    return true;
  }
  if (n.IsScalar()) {
    out.emplace_back(prefix, n.Scalar());
    return true;
  }
  if (n.IsNull()) {
    if (!prefix.empty()) out.emplace_back(prefix, "");  // an empty document: no keys
    return true;
  }
  if (n.IsSequence() && (prefix.starts_with("qos.") ||
                         (prefix.starts_with("guests.") && prefix.find(".qos.") != std::string::npos))) {  // scheduler commands, one a line
    std::string lines;
    for (const auto& item : n) {
      if (!item.IsScalar()) {
        error = "config key '" + prefix + "': each item must be one command line";
        return false;
      }
      lines += item.Scalar() + "\n";
    }
    out.emplace_back(prefix, lines);
    return true;
  }
  if (n.IsSequence() && prefix.starts_with("guests.") && prefix.ends_with(".nics")) {
    size_t i = 0;  // a guest's NICs: guests.NAME.nics.I.KEY
    if (n.size() == 0) out.emplace_back(prefix, "");  // the guest exists, without NICs
    for (const auto& item : n) {
      if (!item.IsMap()) {
        error = "config key '" + prefix + "': each NIC is a map (ext, pvm, svm, mac, vlan)";
        return false;
      }
      if (!flatten(item, prefix + "." + std::to_string(i++), out, error)) return false;
    }
    return true;
  }
  error = "config key '" + prefix + "': a list is not accepted here";
  return false;
}

}  // namespace

std::string_view to_string(HeldPolicy p) { return p == HeldPolicy::drop ? "drop" : "release"; }

bool held_policy_from_string(std::string_view s, HeldPolicy& out) {
  if (s == "release") return out = HeldPolicy::release, true;
  if (s == "drop") return out = HeldPolicy::drop, true;
  return false;
}

std::string_view to_string(PortRole r) {
  auto i = static_cast<unsigned>(r);
  return i < kPortRoleCount ? kRoleNames[i] : "?";
}

bool port_role_from_string(std::string_view s, PortRole& out) {
  for (unsigned i = 0; i < kPortRoleCount; ++i)
    if (kRoleNames[i] == s) return out = static_cast<PortRole>(i), true;
  return false;
}

std::string_view default_config_yaml() {
  // The demo (tools/demo.sh, tools/demo/netns.sh): lockstepd runs in the ls-dp namespace
  // on the dataplane ends of three veth pairs, through net_af_packet. One worker, the
  // simulated checkpointer. Rings of 4096 frames: the demo shares two cores with the
  // client, both servers and their kernels, and a worker preempted for a few ms would
  // overflow the PMD's default 512 (a lost VM frame costs a checkpoint).
  return R"(# lockstepd embedded default: the self-contained demo (tools/demo.sh).
ports:
  ext: net_af_packet0,iface=ls-ext,framecnt=4096
  pvm: net_af_packet1,iface=ls-pvm,framecnt=4096
  svm: net_af_packet2,iface=ls-svm,framecnt=4096
workers: 1
clock: tsc
checkpointer:
  kind: simulated
  latency_us: 2000
engine:
  compare_timeout_us: 100000
)";
}

bool parse_config(std::string_view yaml_text, Config& out, std::string& error) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml_text));
  } catch (const YAML::Exception& e) {
    error = "config: YAML error at line " + std::to_string(e.mark.line + 1) + ": " + e.msg;
    return false;
  }
  if (!root.IsMap() && !root.IsNull()) {
    error = "config: the top level must be a map of keys";
    return false;
  }
  std::vector<std::pair<std::string, std::string>> kv;
  try {
    if (!flatten(root, "", kv, error)) return false;
  } catch (const YAML::Exception& e) {
    error = "config: " + e.msg;
    return false;
  }
  Config cfg = out;
  for (const auto& [k, v] : kv)
    if (!set_key(k, v, cfg, error)) return false;
  out = cfg;
  return true;
}

bool read_config_text(const std::string& path, std::string& text, std::string& error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = "config: cannot read '" + path + "'";
    return false;
  }
  // Bounded: a config is a few KiB; /dev/zero or a wrong file must not grow us forever.
  text.assign(kMaxConfigBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) {
    error = "config: cannot read '" + path + "'";
    return false;
  }
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > kMaxConfigBytes) {
    error = path + ": config: larger than " + std::to_string(kMaxConfigBytes >> 10) +
            " KiB; not a configuration file?";
    return false;
  }
  if (text.find('\0') != std::string::npos) {
    error = path + ": config: holds a NUL byte; not a configuration file?";
    return false;
  }
  return true;
}

bool load_config_file(const std::string& path, Config& out, std::string& error) {
  std::string text;
  if (!read_config_text(path, text, error)) return false;
  if (!parse_config(text, out, error)) {
    error = path + ": " + error;
    return false;
  }
  return true;
}

bool config_pairs(std::string_view yaml_text, std::vector<std::pair<std::string, std::string>>& out,
                  std::string& error) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml_text));
    if (!root.IsMap() && !root.IsNull()) {
      error = "config: the top level must be a map of keys";
      return false;
    }
    return flatten(root, "", out, error);
  } catch (const YAML::Exception& e) {
    error = "config: YAML error at line " + std::to_string(e.mark.line + 1) + ": " + e.msg;
    return false;
  }
}

bool parse_guest_yaml(const std::string& name, std::string_view yaml_text, GuestConfig& out,
                      std::string& error) {
  std::vector<std::pair<std::string, std::string>> kv;
  try {
    YAML::Node body = YAML::Load(std::string(yaml_text));
    if (!body.IsMap()) {
      error = "guest '" + name + "': the file must be a map (nics, engine, checkpointer)";
      return false;
    }
    YAML::Node root;
    root["guests"][name] = body;
    if (!flatten(root, "", kv, error)) return false;
  } catch (const YAML::Exception& e) {
    error = "guest '" + name + "': YAML error at line " + std::to_string(e.mark.line + 1) + ": " + e.msg;
    return false;
  }
  Config scratch;
  for (const auto& [k, v] : kv)
    if (!set_key(k, v, scratch, error)) return false;
  if (scratch.guests.size() != 1) {
    error = "guest '" + name + "': the file describes no NIC";
    return false;
  }
  out = scratch.guests.front();
  return true;
}

bool apply_override(std::string_view assignment, Config& cfg, std::string& error) {
  auto eq = assignment.find('=');
  if (eq == std::string_view::npos || eq == 0) {
    error = "--set '" + std::string(assignment) + "': expected KEY=VALUE";
    return false;
  }
  return set_key(assignment.substr(0, eq), assignment.substr(eq + 1), cfg, error);
}

std::vector<std::string> qos_guest_names(const Config& cfg) {
  std::vector<std::string> names;
  if (cfg.guests.empty()) names.emplace_back("default");
  for (const auto& g : cfg.guests) names.push_back(g.name);
  return names;
}

bool check_qos_guests(const Config& cfg, std::string& error) {
  const std::vector<std::string> names = qos_guest_names(cfg);
  const sched::GuestNamesScope scope(names);
  for (unsigned r = 0; r < kPortRoleCount; ++r) {
    if (cfg.qos[r].empty()) continue;
    const std::string rn(to_string(static_cast<PortRole>(r)));
    sched::QosConfig qc;
    std::string e;
    if (!build_qos_config(rn, cfg.qos[r], qos_limits(cfg.pool_mbufs), qc, e)) {
      error = "config key 'qos." + rn + "': " + e;
      return false;
    }
  }
  for (const auto& g : cfg.guests) {
    for (unsigned r = 0; r < kCompareRoles; ++r) {
      if (g.qos[r].empty()) continue;
      const std::string rn(to_string(static_cast<PortRole>(r)));
      const std::string key = "guests." + g.name + ".qos." + rn;
      sched::QosConfig qc;
      if (!build_guest_qos_config(g.name, rn, g.qos[r], qos_limits(cfg.pool_mbufs), qc, error))
        return false;
      // Each port of the role the guest's NICs use: its own, and not the top level's.
      const std::string first = cfg.guests.front().nics.empty()
                                    ? std::string()
                                    : device_name(cfg.guests.front().nics.front().ports[r]);
      for (const auto& nic : g.nics) {
        const std::string dev = device_name(nic.ports[r]);
        if (dev.empty()) continue;
        for (const auto& other : cfg.guests) {
          if (other.name == g.name) continue;
          for (const auto& on : other.nics) {
            if (device_name(on.ports[r]) != dev) continue;
            error = "config key '" + key + "': port '" + dev + "' is shared with guest '" + other.name +
                    "': a guest's own scheduler needs ports only its NICs use (on a shared port, "
                    "shape it with the top level's qos." + rn + " and 'filter add " + rn + " guest " +
                    g.name + " class CLASS')";
            return false;
          }
        }
        if (dev == first && !cfg.qos[r].empty()) {
          error = "config key '" + key + "': port '" + dev + "' already has a scheduler (qos." + rn +
                  ", on the role's first port): configure it there (with 'guest " + g.name +
                  "' filters) or drop one of the two";
          return false;
        }
      }
    }
  }
  return true;
}

bool validate(const Config& cfg, std::string& error) {
  if (!validate_guests(cfg, error)) return false;
  if (!check_qos_guests(cfg, error)) return false;
  for (PortRole r : {PortRole::ext, PortRole::pvm, PortRole::svm}) {
    if (cfg.guests.empty() && !cfg.has(r)) {
      error = "config key 'ports." + std::string(to_string(r)) + "': required";
      return false;
    }
  }
  if (cfg.has(PortRole::host) != cfg.has(PortRole::link)) {
    error = std::string("config key 'ports.") + (cfg.has(PortRole::host) ? "link" : "host") +
            "': host and link go together";
    return false;
  }
  for (unsigned i = 0; i < kPortRoleCount; ++i) {
    for (unsigned j = i + 1; j < kPortRoleCount; ++j) {
      if (!cfg.ports[i].empty() && device_name(cfg.ports[i]) == device_name(cfg.ports[j])) {
        error = "config key 'ports." + std::string(to_string(static_cast<PortRole>(j))) +
                "': device '" + device_name(cfg.ports[j]) + "' already used by ports." +
                std::string(to_string(static_cast<PortRole>(i)));
        return false;
      }
    }
  }
  if (cfg.cluster.kind == "corosync" && cfg.cluster.group.empty()) {
    error = "config key 'cluster.group': required with cluster.kind corosync";
    return false;
  }
  if (cfg.clock == ClockKind::replay && cfg.workers != 1) {
    error = "config key 'workers': clock=replay needs exactly 1 worker (deterministic merge)";
    return false;
  }
  if (cfg.checkpointer != "simulated" && cfg.link.endpoint.empty()) {
    error = "config key 'checkpointer.endpoint': required with checkpointer.kind " + cfg.checkpointer;
    return false;
  }
  if (cfg.checkpointer != "simulated" && cfg.clock == ClockKind::replay) {
    error = "config key 'checkpointer.kind': clock=replay runs the simulated checkpointer only";
    return false;
  }
  if (cfg.pool_cache > cfg.pool_mbufs / 2) {
    error = "config key 'pool.cache': at most half of pool.mbufs";
    return false;
  }
  return true;
}

bool check_engine_settings(const Settings& s, std::string& error) {
  PolicyAction def = PolicyAction::compare;
  policy_action_from_string(s.default_policy, def);
  PolicyTable policy;
  if (!policy.parse(s.policy_rules, def, error)) {
    error = "config key 'engine.policy_rules': " + error;
    return false;
  }
  auto norm = Normalizer::create(s.normalize_rules, static_cast<uint32_t>(s.normalize_max_span),
                                 1, error);
  if (!norm && !error.empty()) {
    error = "config key 'engine.normalize_rules': " + error;
    return false;
  }
  return true;
}

std::string device_name(std::string_view spec) {
  return std::string(spec.substr(0, spec.find(',')));
}

bool is_pci_address(std::string_view n) {
  // DDDD:BB:DD.F or BB:DD.F, hex digits.
  auto hex = [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  };
  auto shape = [&](std::string_view s, std::string_view pat) {
    if (s.size() != pat.size()) return false;
    for (size_t i = 0; i < s.size(); ++i)
      if (pat[i] == 'x' ? !hex(s[i]) : s[i] != pat[i]) return false;
    return true;
  };
  return shape(n, "xxxx:xx:xx.x") || shape(n, "xx:xx.x");
}

}  // namespace lockstep::dp
