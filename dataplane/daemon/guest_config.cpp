// The `guests:` share of the configuration: guests.NAME.nics.I.{ext,pvm,svm,mac,vlan} and
// the guest's own engine.* / checkpointer.* keys, their checks, and the guests resolved
// with the top level's defaults. Plain C++, no DPDK (tested without an EAL).
#include <algorithm>
#include <charconv>
#include <map>
#include <set>
#include <tuple>

#include "dataplane/daemon/lockstepd_config.h"
#include "dataplane/qos/qos_config.h"

namespace lockstep::dp {
namespace {

bool valid_guest_name(std::string_view n) {
  if (n.empty() || n.size() > 32) return false;
  for (char c : n)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
          c == '_'))
      return false;
  return true;
}

GuestConfig& guest_named(Config& cfg, std::string_view name) {
  for (auto& g : cfg.guests)
    if (g.name == name) return g;
  cfg.guests.push_back(GuestConfig{std::string(name), {}, {}, {}});
  return cfg.guests.back();
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

bool parse_mac(std::string_view t, std::array<uint8_t, 6>& out) {
  if (t.size() != 17) return false;
  for (unsigned i = 0; i < 6; ++i) {
    int hi = hex_digit(t[i * 3]), lo = hex_digit(t[i * 3 + 1]);
    if (hi < 0 || lo < 0 || (i < 5 && t[i * 3 + 2] != ':' && t[i * 3 + 2] != '-')) return false;
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

std::string format_mac(const std::array<uint8_t, 6>& m) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  for (unsigned i = 0; i < 6; ++i) {
    if (i) s += ':';
    s += kHex[m[i] >> 4];
    s += kHex[m[i] & 15];
  }
  return s;
}

bool set_guest_key(std::string_view key, std::string_view value, Config& cfg, std::string& error) {
  auto bad = [&](std::string_view expect) {
    error = "config key '" + std::string(key) + "': invalid value '" + std::string(value) +
            "' (expected " + std::string(expect) + ")";
    return false;
  };
  if (key == "guests") {
    if (!value.empty()) return bad("a map of guests by name");
    return true;
  }
  std::string_view rest = key.substr(7);  // after "guests."
  const auto dot = rest.find('.');
  const std::string_view name = rest.substr(0, dot);
  if (!valid_guest_name(name)) {
    error = "config key '" + std::string(key) + "': a guest name is 1 to 32 letters, digits, '-' or '_'";
    return false;
  }
  if (dot == std::string_view::npos) {  // `web:` with nothing under it yet
    if (!value.empty()) return bad("the guest's nics, engine and checkpointer keys");
    guest_named(cfg, name);
    return true;
  }
  if (cfg.guests.size() >= kMaxGuests && std::none_of(cfg.guests.begin(), cfg.guests.end(),
                                                       [&](const GuestConfig& g) { return g.name == name; })) {
    error = "config key '" + std::string(key) + "': at most " + std::to_string(kMaxGuests) + " guests";
    return false;
  }
  const std::string_view sub = rest.substr(dot + 1);
  if (sub.starts_with("engine.") || sub == "checkpointer" || sub.starts_with("checkpointer.") ||
      sub.starts_with("peers.")) {
    // Checked now, against a scratch configuration, so that the error names the key;
    // applied over the top level's values by resolve_guests.
    Config scratch;
    std::string e;
    if (!apply_override(std::string(sub) + "=" + std::string(value), scratch, e)) {
      // e names the inner key ("config key 'engine.x': ..."): name the guest's instead.
      const std::string inner = "config key '" + std::string(sub) + "'";
      if (e.starts_with(inner)) e = "config key '" + std::string(key) + "'" + e.substr(inner.size());
      error = e;
      return false;
    }
    guest_named(cfg, name).keys.emplace_back(std::string(sub), std::string(value));
    return true;
  }
  if (sub.starts_with("qos.")) {  // guests.NAME.qos.ROLE[.file]: the guest's own scheduler
    std::string_view rn = sub.substr(4);
    if (rn.ends_with(".file")) rn.remove_suffix(5);
    PortRole r;
    if (!port_role_from_string(rn, r) || static_cast<unsigned>(r) >= kCompareRoles) {
      error = "config key '" + std::string(key) +
              "': unknown port role (a guest's own scheduler is on its ext, pvm or svm ports)";
      return false;
    }
    return set_qos_key(key, rn, value, cfg.pool_mbufs, guest_named(cfg, name).qos[static_cast<unsigned>(r)],
                       error);
  }
  if (sub == "nics" && value.empty()) {  // `nics: []`: refused by validate_guests
    guest_named(cfg, name);
    return true;
  }
  if (!sub.starts_with("nics.")) {
    error = "config key '" + std::string(key) +
            "': unknown key (a guest has nics, engine.*, checkpointer.*, peers.* and qos.*)";
    return false;
  }
  std::string_view nic_rest = sub.substr(5);
  const auto dot2 = nic_rest.find('.');
  unsigned idx = 0;
  const std::string_view idx_text = nic_rest.substr(0, dot2);
  auto [p, ec] = std::from_chars(idx_text.data(), idx_text.data() + idx_text.size(), idx);
  if (ec != std::errc() || p != idx_text.data() + idx_text.size() || idx >= kMaxNicsPerGuest ||
      dot2 == std::string_view::npos) {
    error = "config key '" + std::string(key) + "': expected guests." + std::string(name) +
            ".nics.N.(ext|pvm|svm|mac|vlan), N below " + std::to_string(kMaxNicsPerGuest);
    return false;
  }
  const std::string_view field = nic_rest.substr(dot2 + 1);
  GuestConfig& g = guest_named(cfg, name);
  if (g.nics.size() <= idx) g.nics.resize(idx + 1);
  NicConfig& nic = g.nics[idx];
  for (unsigned r = 0; r < kCompareRoles; ++r) {
    if (field != to_string(static_cast<PortRole>(r))) continue;
    if (value.empty()) return bad("a DPDK device string");
    nic.ports[r] = std::string(value);
    return true;
  }
  if (field == "mac") {
    if (!parse_mac(value, nic.mac)) return bad("a MAC address, 52:54:00:12:34:56");
    if (nic.mac[0] & 1) return bad("a unicast MAC address (the guest NIC's own)");
    nic.has_mac = true;
    return true;
  }
  if (field == "vlan") {
    unsigned v = 0;
    auto [q, ec2] = std::from_chars(value.data(), value.data() + value.size(), v);
    if (ec2 != std::errc() || q != value.data() + value.size() || v > 4095)
      return bad("a VLAN id in [0, 4095]");
    nic.vlan = static_cast<int>(v);
    return true;
  }
  error = "config key '" + std::string(key) + "': unknown key (a NIC has ext, pvm, svm, mac, vlan)";
  return false;
}

std::vector<std::pair<std::string, std::string>> port_devices(const Config& cfg) {
  std::vector<std::pair<std::string, std::string>> out;
  std::set<std::string> seen;
  auto add = [&](std::string key, const std::string& spec) {
    if (!spec.empty() && seen.insert(spec).second) out.emplace_back(std::move(key), spec);
  };
  for (unsigned r = 0; r < kPortRoleCount; ++r)
    add("ports." + std::string(to_string(static_cast<PortRole>(r))), cfg.ports[r]);
  for (const auto& g : cfg.guests)
    for (size_t i = 0; i < g.nics.size(); ++i)
      for (unsigned r = 0; r < kCompareRoles; ++r)
        add("guests." + g.name + ".nics." + std::to_string(i) + "." + std::string(to_string(static_cast<PortRole>(r))),
            g.nics[i].ports[r]);
  return out;
}

Config as_guests_config(const Config& cfg) {
  if (!cfg.guests.empty()) return cfg;
  Config c = cfg;
  GuestConfig g;
  g.name = "default";
  NicConfig nic;
  for (unsigned r = 0; r < kCompareRoles; ++r) {
    nic.ports[r] = cfg.ports[r];
    c.ports[r].clear();
  }
  nic.mac = cfg.default_mac;
  nic.has_mac = cfg.default_has_mac;
  nic.vlan = cfg.default_vlan;
  g.nics.push_back(nic);
  c.guests.push_back(std::move(g));
  c.peers.clear();  // watched by the single pair's link, which goes on as it is
  return c;
}

bool validate_guests(const Config& cfg, std::string& error) {
  if (cfg.guests.empty()) return true;
  for (unsigned r = 0; r < kCompareRoles; ++r) {
    if (!cfg.ports[r].empty()) {
      error = "config key 'ports." + std::string(to_string(static_cast<PortRole>(r))) +
              "': not with 'guests' (each guest's nics name their ports)";
      return false;
    }
  }
  // device -> (role, [(guest, nic)]): a device has one role; a device shared by several
  // NICs tells them apart by MAC and/or VLAN, no two alike.
  struct Use {
    unsigned role;
    std::string first_key;
    std::set<std::tuple<bool, std::array<uint8_t, 6>, int>> classes;
    unsigned nics = 0;
    bool unclassified = false;
  };
  std::map<std::string, Use> uses;
  for (unsigned r : {3u, 4u}) {  // host, link
    if (!cfg.ports[r].empty())
      uses[device_name(cfg.ports[r])] = Use{r, "ports." + std::string(to_string(static_cast<PortRole>(r))), {}, 1, true};
  }
  size_t units = 0;
  for (const auto& g : cfg.guests) {
    if (g.nics.empty()) {
      error = "config key 'guests." + g.name + ".nics': required (at least one NIC)";
      return false;
    }
    for (size_t i = 0; i < g.nics.size(); ++i) {
      const NicConfig& n = g.nics[i];
      ++units;
      const std::string base = "guests." + g.name + ".nics." + std::to_string(i);
      for (unsigned r = 0; r < kCompareRoles; ++r) {
        const std::string key = base + "." + std::string(to_string(static_cast<PortRole>(r)));
        if (n.ports[r].empty()) {
          error = "config key '" + key + "': required";
          return false;
        }
        const std::string dev = device_name(n.ports[r]);
        auto [it, fresh] = uses.try_emplace(dev, Use{r, key, {}, 0, false});
        Use& u = it->second;
        if (u.role != r) {
          error = "config key '" + key + "': device '" + dev + "' already used by " + u.first_key;
          return false;
        }
        if (!fresh && u.unclassified) {
          error = "config key '" + key + "': device '" + dev + "' is shared with " + u.first_key +
                  ": every NIC on a shared port needs its mac and/or vlan";
          return false;
        }
        if (!fresh && !n.classified()) {
          error = "config key '" + base + ".mac': device '" + dev + "' is shared with " +
                  u.first_key + ": every NIC on a shared port needs its mac and/or vlan";
          return false;
        }
        ++u.nics;
        u.unclassified = u.unclassified || !n.classified();
        if (!u.classes.insert({n.has_mac, n.mac, n.vlan}).second) {
          error = "config key '" + base + ".mac': device '" + dev + "' already has a NIC with this "
                  "mac and vlan (" + u.first_key + ")";
          return false;
        }
      }
    }
  }
  if (units > 1024) {
    error = "config key 'guests': at most 1024 NICs in all";
    return false;
  }
  if (cfg.clock == ClockKind::replay && units != 1) {
    error = "config key 'clock': clock=replay runs one guest with one NIC";
    return false;
  }
  std::vector<GuestSpec> specs;
  return resolve_guests(cfg, specs, error);
}

bool resolve_guests(const Config& cfg, std::vector<GuestSpec>& out, std::string& error) {
  out.clear();
  auto top = [&](GuestSpec& g) {
    g.engine = cfg.engine;
    g.checkpointer.kind = cfg.checkpointer;
    g.checkpointer.latency_us = cfg.checkpoint_latency_us;
    g.checkpointer.link = cfg.link;
  };
  if (cfg.guests.empty()) {
    GuestSpec g;
    g.name = "default";
    NicConfig nic;
    for (unsigned r = 0; r < kCompareRoles; ++r) nic.ports[r] = cfg.ports[r];
    nic.mac = cfg.default_mac;
    nic.has_mac = cfg.default_has_mac;
    nic.vlan = cfg.default_vlan;
    g.nics.push_back(nic);
    top(g);
    out.push_back(std::move(g));
    return true;
  }
  for (const auto& gc : cfg.guests) {
    Config c;  // the top level's engine and checkpointer, then the guest's keys
    c.engine = cfg.engine;
    c.checkpointer = cfg.checkpointer;
    c.checkpoint_latency_us = cfg.checkpoint_latency_us;
    c.link = cfg.link;
    for (const auto& [k, v] : gc.keys) {
      if (!apply_override(k + "=" + v, c, error)) {
        error = "guest '" + gc.name + "': " + error;
        return false;
      }
    }
    GuestSpec g;
    g.name = gc.name;
    g.nics = gc.nics;
    g.engine = c.engine;
    g.checkpointer.kind = c.checkpointer;
    g.checkpointer.latency_us = c.checkpoint_latency_us;
    g.checkpointer.link = c.link;
    g.peers = c.peers;
    if (!g.peers.empty() && g.checkpointer.kind == "simulated") {
      error = "config key 'guests." + g.name + ".peers': heartbeat peers are watched by the "
              "guest's checkpointer link (checkpointer.kind native, qemu or qmp)";
      return false;
    }
    if (g.checkpointer.kind != "simulated" && g.checkpointer.link.endpoint.empty()) {
      error = "config key 'guests." + g.name + ".checkpointer.endpoint': required with checkpointer.kind " +
              g.checkpointer.kind;
      return false;
    }
    out.push_back(std::move(g));
  }
  return true;
}

}  // namespace lockstep::dp
