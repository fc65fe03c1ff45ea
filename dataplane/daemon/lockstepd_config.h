// lockstepd's configuration: ports by role, workers, pools, clock, checkpointer and the
// engine's settings. Loaded from YAML (a file, or the embedded default used by the demo),
// then overridden by `--set key=value` pairs; every error names its key. No DPDK here:
// this file is plain C++ so that it is tested without an EAL.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "compare/settings.h"

namespace lockstep::dp {

// Port roles (docs/design.md §2). Declared once: the enum, the config key and the help.
#define LOCKSTEP_PORT_ROLES(X)                                            \
  X(ext, "client side: ingress in, released PVM output out")              \
  X(pvm, "primary VM: ingress copy out, PVM output in")                   \
  X(svm, "secondary VM: ack-translated ingress copy out, SVM output in")  \
  X(host, "host side of other COLO traffic, forwarded to link")           \
  X(link, "inter-host link, forwarded to host")

enum class PortRole : uint8_t {
#define LOCKSTEP_X(name, help) name,
  LOCKSTEP_PORT_ROLES(LOCKSTEP_X)
#undef LOCKSTEP_X
      count_
};
inline constexpr unsigned kPortRoleCount = static_cast<unsigned>(PortRole::count_);
std::string_view to_string(PortRole r);
bool port_role_from_string(std::string_view s, PortRole& out);

enum class ClockKind : uint8_t {
  tsc,     // real time from the TSC
  replay,  // the RX timestamp of each frame (net_pcap): deterministic pcap runs
};

enum class Steering : uint8_t { software, rss, autodetect };

// The checkpointer link (checkpointer.kind native, qemu or qmp). Times in ms.
struct CheckpointerLink {
  std::string endpoint;        // unix:/path, /path, tcp:HOST:PORT; qmp: also libvirt:URI?domain=NAME
  bool listen = false;         // true: lockstepd listens, the checkpointer connects
  bool vnet_hdr = false;       // qemu: frames carry the be32 vnet_hdr_len word
  // qmp: the SVM's QEMU monitor (a socket or libvirt:URI?domain=NAME), told
  // x-colo-lost-heartbeat when the secondary survives.
  std::string secondary_qmp;
  uint64_t max_epoch_ms = 20000;  // periodic checkpoint without divergence; 0 = off
  uint64_t timeout_ms = 5000;  // a checkpoint not done by then follows on_timeout
  std::string on_timeout = "retry";  // retry | alarm | failover
  uint32_t max_retries = 3;
  uint64_t reconnect_ms = 500;
  // The checkpointer as a heartbeat peer (native dialect).
  uint64_t heartbeat_timeout_ms = 1000, heartbeat_debounce_ms = 500;
  std::string on_loss = "alarm";  // failover-primary | failover-secondary | alarm
};

// The operator side: ctrl socket, metrics listener.
struct CtrlConfig {
  std::string socket = "/run/lockstep/lockstep.ctl";  // "off": no ctrl socket
  std::string group;           // group owning the socket (mode 0660); empty: ours
  std::string ro_socket;       // read-only socket (mode 0666); empty: none
  std::string metrics = "tcp:127.0.0.1:9469";  // Prometheus listener; "off": none
  std::string capture_dir = "/var/lib/lockstep/capture";  // `capture start` files, only here
  // Whether the key was given (file or --set): a default that cannot be bound (another
  // lockstepd holds it) only warns; an explicit one is an error at start.
  bool socket_given = false, metrics_given = false;
};

// Heartbeats to and from the appliance on the other host (UDP, ctrl/heartbeat_udp.h).
struct HeartbeatConfig {
  std::string name = "lockstepd";  // ours, in every datagram
  std::string bind;                // host:port to receive on; empty: no UDP heartbeats
  std::string send_to;             // comma-separated host:port list
  uint64_t interval_ms = 100;
};

struct PeerSettings {
  uint64_t timeout_ms = 1000, debounce_ms = 500;
  std::string action = "alarm";    // failover-primary | failover-secondary | alarm
};

// Cluster membership and failover from corosync (ctrl/cluster*.h, docs/cluster.md).
struct ClusterSettings {
  std::string kind = "none";       // none | corosync
  std::string group;               // CPG group, one per guest (the pacemaker resource's name)
  std::string role = "primary";    // the VM this host runs: primary | secondary
  std::string watch;               // interface watched for "yellow"; empty: none
  uint64_t yellow_ms = 10000;      // watched link down this long, peer's up: this side fails
  uint64_t settle_ms = 500;        // a peer failure is acted on this late, with that quorum
};

// Many guests per lockstepd (`guests:`). A guest's NIC: its own ext, pvm and svm ports,
// or ports shared with other guests' NICs (a vSwitch hands many guests' traffic over one
// port) told apart by the guest's MAC (destination of client frames, source of the VMs'
// frames) and/or VLAN. A NIC is a compare unit: its own engine on every worker; the
// guest's NICs share one checkpoint epoch (docs/guests.md).
inline constexpr unsigned kCompareRoles = 3;  // ext, pvm, svm: the roles a NIC has
inline constexpr unsigned kMaxGuests = 256;
inline constexpr unsigned kMaxNicsPerGuest = 8;

struct NicConfig {
  std::array<std::string, kCompareRoles> ports{};  // ext, pvm, svm device strings
  std::array<uint8_t, 6> mac{};
  bool has_mac = false;
  int vlan = -1;                                    // 0..4095; -1: any (untagged included)
  bool classified() const { return has_mac || vlan >= 0; }
};

struct GuestConfig {
  std::string name;
  std::vector<NicConfig> nics;
  // The guest's own engine.* and checkpointer.* keys, in file order, applied over the
  // top level's (resolve_guests): the top level gives every guest its defaults,
  // wherever it stands in the file.
  std::vector<std::pair<std::string, std::string>> keys;
  // The guest's own egress schedulers (guests.NAME.qos.ROLE[.file], ROLE ext, pvm or
  // svm): one on each port of that role only this guest's NICs use; checked at load.
  std::array<std::string, kCompareRoles> qos{};
  bool has_qos() const {
    for (const auto& q : qos)
      if (!q.empty()) return true;
    return false;
  }
};

// What `guest del` does with the guest's held PVM output (guest_del.held, or
// `guest del NAME --held release|drop`): release it, as at shutdown, or drop it,
// counted (drops.guest_del_held, the guest's del_dropped).
enum class HeldPolicy : uint8_t { release, drop };
std::string_view to_string(HeldPolicy p);
bool held_policy_from_string(std::string_view s, HeldPolicy& out);

struct CheckpointerSettings {
  std::string kind = "simulated";  // simulated | native | qemu | qmp
  uint64_t latency_us = 1000;      // simulated
  CheckpointerLink link;
};

// One guest as the dataplane and the daemon run it: every default resolved.
struct GuestSpec {
  std::string name;
  std::vector<NicConfig> nics;
  Settings engine = Settings::defaults();
  CheckpointerSettings checkpointer;
  // guests.NAME.peers.PEER.*: heartbeat peers its checkpointer link watches (the UDP
  // heartbeats come in on the host's heartbeat.bind).
  std::map<std::string, PeerSettings> peers;
};

struct Config {
  // DPDK device string per role ("net_ring0", "net_pcap0,rx_pcap=a.pcap", "0000:03:00.0").
  // ext, pvm and svm are required; host and link go together.
  std::array<std::string, kPortRoleCount> ports{};

  uint32_t workers = 1;          // poll-mode workers, one lcore each
  std::string lcores;            // EAL -l list; empty: 0..workers (main lcore 0 = control)
  Steering steering = Steering::autodetect;

  uint32_t pool_mbufs = 32767;   // mbufs in the packet pool (2^q - 1)
  uint32_t pool_cache = 256;     // per-lcore cache
  uint32_t mbuf_data_room = 2176;  // bytes per mbuf (RTE_MBUF_DEFAULT_BUF_SIZE)
  // Contiguous copies of frames longer than mbuf_data_room (jumbo, GRO/TSO captures)
  // come from a second pool of 64 KiB mbufs; 0 disables it (such frames are dropped,
  // counted as too_long).
  uint32_t jumbo_mbufs = 255;
  uint32_t rx_desc = 1024, tx_desc = 1024;
  uint32_t burst = 32;
  uint32_t tx_retries = 4;       // tx attempts before the rest of a burst is dropped, counted
  uint32_t steer_ring_size = 4096;

  uint32_t memory_mb = 256;      // EAL -m
  bool hugepages = false;        // false: --no-huge
  std::string file_prefix;       // EAL --file-prefix; empty: lockstepd-<pid>

  ClockKind clock = ClockKind::tsc;

  // The checkpointer. "simulated": completes each request latency_us later (in replay
  // time with clock=replay). "native" / "qemu": a real checkpointer over the link below
  // (ctrl/checkpointer_link.h), in that dialect.
  std::string checkpointer = "simulated";
  uint64_t checkpoint_latency_us = 1000;
  CheckpointerLink link;

  CtrlConfig ctrl;
  HeartbeatConfig heartbeat;
  std::map<std::string, PeerSettings> peers;  // heartbeat peers by name (peers.NAME.*)
  ClusterSettings cluster;

  Settings engine = Settings::defaults();

  // Egress schedulers: per port role, tc-style commands (qos.ROLE, qos.ROLE.file;
  // dataplane/qos/qos_config.h), checked at load. Empty: the port sends unscheduled.
  std::array<std::string, kPortRoleCount> qos{};
  // A QoS hub even without a scheduler (a single pair without qos:), so that a guest added
  // live may bring its own (lockstepd sets it; not part of the configuration file).
  bool qos_hub = false;
  // The role map for frames between the hosts (qos.roles, qos.roles.file; one rule a
  // line, dataplane/qos/sched/roles.h). Empty: the defaults, from the heartbeat and checkpointer keys.
  std::string qos_roles;

  // Guests by name, in file order. Empty: one guest, "default", made of ports.ext/pvm/svm,
  // engine.* and checkpointer.* (the single-pair configuration).
  std::vector<GuestConfig> guests;
  // The single-pair guest's MAC and VLAN (ports.mac, ports.vlan): what tells its frames
  // apart once a guest added live shares one of its ports.
  std::array<uint8_t, 6> default_mac{};
  bool default_has_mac = false;
  int default_vlan = -1;
  // `guest del` without --held (guest_del.held).
  HeldPolicy guest_del_held = HeldPolicy::release;

  bool has(PortRole r) const { return !ports[static_cast<unsigned>(r)].empty(); }
  const std::string& port(PortRole r) const { return ports[static_cast<unsigned>(r)]; }
};

// The embedded default: the demo's namespaces attached through net_tap.
std::string_view default_config_yaml();

// Parses YAML text into `out` (starting from built-in defaults). False + error naming
// the key on any unknown key, bad type, or out-of-range value.
bool parse_config(std::string_view yaml_text, Config& out, std::string& error);
bool load_config_file(const std::string& path, Config& out, std::string& error);
// The text of a config file, at most kMaxConfigBytes and without NUL bytes.
bool read_config_text(const std::string& path, std::string& text, std::string& error);
// The dotted keys and values of YAML text, in file order (as parse_config sees them);
// duplicate keys refused.
bool config_pairs(std::string_view yaml_text, std::vector<std::pair<std::string, std::string>>& out,
                  std::string& error);

// Applies one `--set key=value` override: "workers=2", "ports.ext=net_ring0",
// "engine.compare_timeout_us=2000", "checkpointer.latency_us=500", ...
bool apply_override(std::string_view assignment, Config& cfg, std::string& error);

// Cross-field checks (required roles, host/link pairs, clock=replay needs one worker, ...).
bool validate(const Config& cfg, std::string& error);

// The engine's rule texts, parsed and compiled as the engine will: policy rules that do
// not parse or normalization rules that do not compile are refused naming their key.
bool check_engine_settings(const Settings& s, std::string& error);

// The guests with every default applied (one, "default", without `guests:`); false +
// error naming the key when a guest's own keys do not apply.
bool resolve_guests(const Config& cfg, std::vector<GuestSpec>& out, std::string& error);
// Every port device of the configuration with the key that names it ("ports.ext",
// "guests.web.nics.1.pvm"), each device string once (a shared port is one device).
std::vector<std::pair<std::string, std::string>> port_devices(const Config& cfg);
// The configuration as a `guests:` map: itself when it has one, else the single pair as
// the guest `default` (its ports, ports.mac/ports.vlan; top-level engine and checkpointer
// keys apply to it as to any guest; its top-level peers stay with its running link and
// are left out). What `guest add` checks a new guest against.
Config as_guests_config(const Config& cfg);
// guests.NAME.* (set_key's share of the guest keys; dataplane/daemon/guest_config.cpp).
bool set_guest_key(std::string_view key, std::string_view value, Config& cfg, std::string& error);
// The guest checks of validate(): NICs complete, shared ports classified, names unique.
bool validate_guests(const Config& cfg, std::string& error);
bool parse_mac(std::string_view text, std::array<uint8_t, 6>& out);
// `guest add NAME --config FILE`: the file holds what `guests.NAME` holds in a
// configuration (nics, engine, checkpointer); errors name the guests.NAME.* key.
bool parse_guest_yaml(const std::string& name, std::string_view yaml_text, GuestConfig& out,
                      std::string& error);
std::string format_mac(const std::array<uint8_t, 6>& mac);

// The guest names a filter's `guest NAME` resolves against, the index being the
// dataplane's guest index: the `guests:` map in order, or the single pair's "default".
std::vector<std::string> qos_guest_names(const Config& cfg);
// The `qos.ROLE` and `guests.NAME.qos.ROLE` sections checked against the configuration's
// guests (a filter naming a guest the configuration lacks is refused naming the key, the
// line and the token) and ports (a guest's own scheduler needs ports no other guest's
// NIC uses, and none that already has a scheduler: the top level's is on the role's
// first port).
bool check_qos_guests(const Config& cfg, std::string& error);

// A config file larger than this is refused (load_config_file).
inline constexpr size_t kMaxConfigBytes = 1 << 20;

// The device name of a DPDK device string: the part before the first comma.
std::string device_name(std::string_view spec);
// True for a PCI address (DDDD:BB:DD.F or BB:DD.F).
bool is_pci_address(std::string_view name);

}  // namespace lockstep::dp
