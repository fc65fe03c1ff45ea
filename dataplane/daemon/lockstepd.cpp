// lockstepd: the appliance. Loads the config (a file or the embedded demo default),
// applies `--set` overrides, starts the EAL and the dataplane, runs the control loop on
// the main lcore until SIGINT/SIGTERM (or the end of the inputs with clock=replay), then
// stops cleanly: engines flushed, counters printed, every mbuf back in its pool.
// With --colo-compare its ports are QEMU's four chardev sockets instead (no EAL, no NIC,
// no vhost): the drop-in for QEMU's colo-compare object (docs/qemu-colo-compare.md).
#include <rte_cycles.h>
#include <rte_lcore.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/cli.h"
#include "compare/engine.h"
#include "ctrl/checkpointer_link.h"
#include "ctrl/commands.h"
#include "ctrl/ctrl_server.h"
#include "ctrl/heartbeat_udp.h"
#include "ctrl/libvirt_uri.h"
#ifdef LOCKSTEP_HAVE_COROSYNC
#include "ctrl/cluster_cpg.h"
#endif
#include "ctrl/metrics_http.h"
#include "ctrl/qmp_libvirt.h"
#include "ctrl/systemd.h"
#include "ctrl/telemetry_dpdk.h"
#include "dataplane/chardev/colo_options.h"
#include "dataplane/daemon/capture.h"
#include "dataplane/daemon/daemon_ctl.h"
#include "dataplane/daemon/lockstepd_config.h"
#include "dataplane/edge/dataplane.h"
#include "dataplane/edge/eal.h"
#include "dataplane/qos/qos_ctrl.h"


namespace {

using lockstep::dp::Config;
using lockstep::dp::Dataplane;

std::atomic<bool> g_signalled{false};
std::atomic<bool> g_reload{false};

void on_signal(int) { g_signalled.store(true); }
void on_hangup(int) { g_reload.store(true); }

constexpr const char* kDescription =
    "The lockstep appliance: mirrors client traffic to a COLO VM pair, compares their "
    "output\nand releases what both produced (DPDK dataplane, ctrl socket, metrics).";

constexpr const char* kFooter =
    "Every engine setting is a key under engine. (see compare/settings.h); a wrong key or\n"
    "value is refused at start with a message naming the key (exit 2).\n"
    "SIGINT, SIGTERM, SIGQUIT: stop (held output released, counters printed). SIGHUP: read\n"
    "the configuration again; live engine settings are applied, other changed keys are\n"
    "logged and need a restart.\n"
    "Under systemd the ctrl and metrics sockets may come from socket activation\n"
    "(lockstepd.socket, FileDescriptorName=ctrl, ctrl-ro and metrics).";

struct Options {
  std::string config_file;
  std::vector<std::string> sets;
  std::string stats_json;
  bool display = false;
  bool check_only = false;
  double duration_s = 0;
  std::vector<std::string> eal_extra;
  bool colo = false;
  std::vector<std::string> colo_args;  // the words after --colo-compare
};

struct DisplayState {
  bool tty = false;
  const lockstep::ctrl::EventLog* log = nullptr;  // the last checkpoint's explanation
  std::chrono::steady_clock::time_point start;
  uint64_t last_released = 0, last_bytes = 0;
};

// The last checkpoint request sent, as `lockstepctl explain` names it: time, reason,
// flow, stream offset and the line that differs. Empty when there was none.
std::string last_checkpoint(const lockstep::ctrl::EventLog& log) {
  const auto recent = log.last_of("checkpoint_request", 8);
  for (auto it = recent.rbegin(); it != recent.rend(); ++it) {
    if (it->value("coalesced", false)) continue;
    std::string what = it->value("time", "").substr(11, 8) + "  " + it->value("reason", "?");
    if (it->contains("flow")) what += "  " + it->value("flow", "");
    if (it->contains("stream_offset")) {
      what += "  offset " + std::to_string(it->value("stream_offset", uint64_t{0}));
    }
    std::string line = it->value("line", "");
    if (line.size() > 40) line = line.substr(line.size() - 40);
    if (!line.empty()) what += "  at \"" + line + "\"";
    return what;
  }
  return {};
}

void display_tick(Dataplane& dp, void* arg) {
  auto* ds = static_cast<DisplayState*>(arg);
  auto rep = dp.report();
  const auto& t = rep.total;
  uint64_t released = t.engine.released_pvm();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - ds->start).count();
  if (ds->tty) std::printf("\033[H\033[2J");
  std::printf("lockstepd  up %.0f s   mode %s   workers %u\n", secs,
              dp.config().engine.mode.c_str(), dp.worker_count());
  std::printf("  connections   active %-8llu total %llu\n",
              static_cast<unsigned long long>(t.engine.conns_active),
              static_cast<unsigned long long>(t.engine.conns_created));
  std::printf("  compared      %llu bytes (+%llu/s), %llu datagrams\n",
              static_cast<unsigned long long>(t.engine.bytes_compared),
              static_cast<unsigned long long>(t.engine.bytes_compared - ds->last_bytes),
              static_cast<unsigned long long>(t.engine.datagrams_matched));
  std::printf("  released      %llu frames (+%llu/s), held now %llu\n",
              static_cast<unsigned long long>(released),
              static_cast<unsigned long long>(released - ds->last_released),
              static_cast<unsigned long long>(t.held_frames));
  std::printf("  checkpoints   requested %llu, done %llu\n",
              static_cast<unsigned long long>(rep.checkpoint_requests),
              static_cast<unsigned long long>(rep.checkpoints_done));
  uint64_t spans = 0;
  for (const auto& r : t.engine.normalize) spans += r.spans;
  if (spans != 0) {
    std::printf("  normalized    %llu differing fields masked by the rules\n",
                static_cast<unsigned long long>(spans));
  }
  if (ds->log != nullptr) {
    const std::string last = last_checkpoint(*ds->log);
    if (!last.empty()) std::printf("  last          %s\n", last.c_str());
  }
  std::printf("  ports         ext rx %llu tx %llu | pvm rx %llu tx %llu | svm rx %llu tx %llu\n",
              static_cast<unsigned long long>(t.port[0].rx), static_cast<unsigned long long>(t.port[0].tx),
              static_cast<unsigned long long>(t.port[1].rx), static_cast<unsigned long long>(t.port[1].tx),
              static_cast<unsigned long long>(t.port[2].rx), static_cast<unsigned long long>(t.port[2].tx));
  if (!ds->tty) std::printf("\n");
  std::fflush(stdout);
  ds->last_released = released;
  ds->last_bytes = t.engine.bytes_compared;
}

struct StopState {
  Dataplane* dp;
  std::chrono::steady_clock::time_point deadline;
  bool bounded;
  DisplayState* display;
  std::chrono::steady_clock::time_point next_display;
};

namespace ctrl = lockstep::ctrl;
using lockstep::dp::DaemonCtl;

// A guest's checkpointer (`guests:`): its link and the events it raises.
struct GuestLink {
  unsigned guest = 0;
  std::string name, kind;
  ctrl::EventQueue events;
  ctrl::FailoverController failover{&events};
  std::unique_ptr<ctrl::CheckpointCoordinator> coord;   // null: simulated
  lockstep::dp::CoordinatorSink* sink = nullptr;        // owned by the dataplane's control
  std::atomic<bool> removed{false};                     // `guest del`: link stopped
};

// The control plane around the dataplane (ctrl/README.md, "How the daemon plugs in").
struct CtrlStack {
  ctrl::EventQueue events;
  ctrl::EventLog log;  // `lockstepctl events`, `explain`
  ctrl::FailoverController failover{&events};
  std::unique_ptr<ctrl::CheckpointCoordinator> coord;
  lockstep::dp::CoordinatorSink* sink = nullptr;  // owned by the dataplane's control
  // Before the heartbeat receiver: it routes to them until it is gone.
  std::vector<std::unique_ptr<GuestLink>> guest_links;  // `guests:`: one per guest
  struct PeerRoutes {  // heartbeat sender -> the guests' links that watch it
    std::mutex mu;
    std::multimap<std::string, ctrl::CheckpointCoordinator*> by_peer;
  } peer_routes;
  std::unique_ptr<ctrl::HeartbeatUdp> heartbeat;
#ifdef LOCKSTEP_HAVE_COROSYNC
  std::unique_ptr<ctrl::ClusterCpg> cluster;  // cluster.kind corosync
#endif
  std::unique_ptr<DaemonCtl> daemon;
  std::unique_ptr<lockstep::dp::Capture> capture;  // `capture start|stop`
  std::unique_ptr<lockstep::dp::DataplaneQosControl> qos;  // `qos ...` commands
  ctrl::ControlPlane cp;
  ctrl::CommandRegistry registry;
  std::unique_ptr<ctrl::CtrlServer> server;
  std::unique_ptr<ctrl::MetricsHttpServer> http;
  std::map<std::string, int> activated;  // sockets from systemd, by FileDescriptorName=
  std::vector<ctrl::Event> batch;
  uint64_t watchdog_half_ns = 0, next_watchdog_ns = 0, last_polls = 0;
};

// GET /health: healthy while the workers poll and, with a checkpointer link, the link
// is up; else the first reason it is not.
std::string health(const CtrlStack& cs) {
  std::string why = cs.daemon ? cs.daemon->workers_health(ctrl::monotonic_ns(), 2'000'000'000)
                              : std::string("starting");
  if (why.empty() && cs.coord && !cs.coord->connected()) why = "checkpointer link down";
  for (const auto& gl : cs.guest_links)
    if (why.empty() && gl->coord && !gl->removed.load() && !gl->coord->connected())
      why = "guest " + gl->name + ": checkpointer link down";
  return why;
}

bool loss_action(const std::string& s, ctrl::LossAction& out) {
  return ctrl::loss_action_from_string(s, out);
}

// The checkpointer link from the config (checked before the EAL starts).
// `prefix`: where the keys are ("" at the top level, "guests.NAME." for a guest's).
bool link_config(const lockstep::dp::CheckpointerSettings& ck, const std::string& heartbeat_name,
                 const std::string& prefix, ctrl::LinkConfig& l, std::string& error) {
  const auto& c = ck.link;
  if (!ctrl::dialect_from_string(ck.kind, l.dialect)) {
    error = "config key '" + prefix + "checkpointer.kind': " + ck.kind + " is not a link dialect";
    return false;
  }
  // QEMU's monitor may be reached through libvirt (qmp only; ctrl/qmp_libvirt.h).
  auto monitor = [&](const char* key, const std::string& text, ctrl::Endpoint& ep) {
    bool qmp = l.dialect == ctrl::Dialect::qmp;
    if (!qmp && text.starts_with(ctrl::kLibvirtPrefix)) {
      error = "config key '" + prefix + key + "': a libvirt endpoint needs checkpointer.kind qmp";
      return false;
    }
    if (!(qmp ? ctrl::parse_qmp_endpoint(text, ep, error) : ctrl::parse_endpoint(text, ep, error))) {
      error = "config key '" + prefix + key + "': " + error;
      return false;
    }
    if (ep.kind == ctrl::Endpoint::Kind::libvirt && !ctrl::libvirt_qmp_available()) {
      error = "config key '" + prefix + key + "': this lockstepd was built without libvirt "
              "(libvirt-qemu, meson option libvirt); give QEMU's QMP socket (unix:PATH) instead";
      return false;
    }
    return true;
  };
  if (!monitor("checkpointer.endpoint", c.endpoint, l.endpoint)) return false;
  l.listen = c.listen;
  if (l.dialect == ctrl::Dialect::qmp && l.listen) {
    error = "config key '" + prefix + "checkpointer.listen': kind qmp connects to QEMU's monitor";
    return false;
  }
  if (!c.secondary_qmp.empty()) {
    ctrl::Endpoint ep;
    if (l.dialect != ctrl::Dialect::qmp) {
      error = "config key '" + prefix + "checkpointer.secondary_qmp': only with checkpointer.kind qmp";
      return false;
    }
    if (!monitor("checkpointer.secondary_qmp", c.secondary_qmp, ep)) return false;
    l.secondary_qmp = ep;
  }
  l.vnet_hdr = c.vnet_hdr;
  l.reconnect_ns = c.reconnect_ms * 1000000;
  l.policy.max_epoch_ns = c.max_epoch_ms * 1000000;
  l.policy.done_timeout_ns = c.timeout_ms * 1000000;
  l.policy.max_retries = c.max_retries;
  ctrl::timeout_policy_from_string(c.on_timeout, l.policy.on_timeout);
  if (c.heartbeat_timeout_ms == 0) {
    l.checkpointer_peer.name.clear();
  } else {
    l.checkpointer_peer.timeout_ns = c.heartbeat_timeout_ms * 1000000;
    l.checkpointer_peer.debounce_ns = c.heartbeat_debounce_ms * 1000000;
    loss_action(c.on_loss, l.checkpointer_peer.on_loss);
  }
  l.name = heartbeat_name;
  return true;
}

lockstep::dp::CheckpointerSettings top_checkpointer(const Config& cfg) {
  lockstep::dp::CheckpointerSettings c;
  c.kind = cfg.checkpointer;
  c.latency_us = cfg.checkpoint_latency_us;
  c.link = cfg.link;
  return c;
}

bool link_config(const Config& cfg, ctrl::LinkConfig& l, std::string& error) {
  return link_config(top_checkpointer(cfg), cfg.heartbeat.name, "", l, error);
}

bool heartbeat_config(const Config& cfg, ctrl::HeartbeatUdpConfig& h, std::string& error) {
  h.name = cfg.heartbeat.name;
  h.interval_ns = cfg.heartbeat.interval_ms * 1000000;
  if (!ctrl::parse_endpoint(cfg.heartbeat.bind, h.bind, error)) {
    error = "config key 'heartbeat.bind': " + error;
    return false;
  }
  std::string list = cfg.heartbeat.send_to;
  size_t pos = 0;
  while (pos < list.size()) {
    size_t comma = list.find(',', pos);
    std::string one = list.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    pos = comma == std::string::npos ? list.size() : comma + 1;
    if (one.empty()) continue;
    ctrl::Endpoint ep;
    if (!ctrl::parse_endpoint(one, ep, error)) {
      error = "config key 'heartbeat.send_to': " + error;
      return false;
    }
    h.send_to.push_back(ep);
  }
  return true;
}

bool check_ctrl_config(const Config& cfg, std::string& error) {
  if (!cfg.guests.empty()) {
    // Each guest its own checkpointer link, and its own heartbeat peers
    // (guests.NAME.peers); the host only receives the datagrams (heartbeat.bind).
    if (!cfg.peers.empty()) {
      error = "config key 'peers': with 'guests', heartbeat peers belong to a guest "
              "(guests.NAME.peers.PEER.*: the guest's checkpointer link watches them)";
      return false;
    }
    if (!cfg.heartbeat.bind.empty()) {
      ctrl::HeartbeatUdpConfig h;
      if (!heartbeat_config(cfg, h, error)) return false;
    }
    std::vector<lockstep::dp::GuestSpec> guests;
    if (!lockstep::dp::resolve_guests(cfg, guests, error)) return false;
    for (const auto& g : guests) {
      if (g.checkpointer.kind == "simulated") continue;
      ctrl::LinkConfig l;
      if (!link_config(g.checkpointer, cfg.heartbeat.name + "/" + g.name, "guests." + g.name + ".", l,
                       error))
        return false;
    }
  } else if (cfg.checkpointer != "simulated") {
    ctrl::LinkConfig l;
    if (!link_config(cfg, l, error)) return false;
  } else if (!cfg.peers.empty() || !cfg.heartbeat.bind.empty()) {
    error = "config key 'peers': heartbeat peers are watched by the checkpointer link "
            "(checkpointer.kind native, qemu or qmp), not by the simulated checkpointer";
    return false;
  }
  if (!cfg.heartbeat.bind.empty()) {
    ctrl::HeartbeatUdpConfig h;
    if (!heartbeat_config(cfg, h, error)) return false;
  }
#ifndef LOCKSTEP_HAVE_COROSYNC
  if (cfg.cluster.kind == "corosync") {
    error = "config key 'cluster.kind': this lockstepd was built without corosync (libcpg, libquorum)";
    return false;
  }
#endif
  if (cfg.ctrl.metrics != "off") {
    ctrl::Endpoint ep;
    if (!ctrl::parse_endpoint(cfg.ctrl.metrics, ep, error) || ep.kind != ctrl::Endpoint::Kind::tcp) {
      error = "config key 'ctrl.metrics': expected tcp:HOST:PORT or off";
      return false;
    }
  }
  return true;
}

// A guest's heartbeat peers: watched by its link, their datagrams routed to it.
void add_guest_peers(CtrlStack& cs, GuestLink& gl, const lockstep::dp::GuestSpec& spec) {
  for (const auto& [name, p] : spec.peers) {
    ctrl::PeerConfig pc;
    pc.name = name;
    pc.timeout_ns = p.timeout_ms * 1000000;
    pc.debounce_ns = p.debounce_ms * 1000000;
    loss_action(p.action, pc.on_loss);
    gl.coord->add_peer(pc);
    std::lock_guard lock(cs.peer_routes.mu);
    cs.peer_routes.by_peer.emplace(name, gl.coord.get());
  }
}

// Guest `g`'s checkpointer (at start, or for `guest add`): its link, with its events on
// a queue of its own, started; `sink` the dataplane's end (left null: simulated).
bool start_guest_link(const Config& cfg, CtrlStack& cs, unsigned g, const lockstep::dp::GuestSpec& spec,
                      std::unique_ptr<lockstep::dp::CheckpointSink>& sink, std::string& error) {
  auto gl = std::make_unique<GuestLink>();
  gl->guest = g;
  gl->name = spec.name;
  gl->kind = spec.checkpointer.kind;
  if (gl->kind != "simulated") {
    ctrl::LinkConfig l;
    if (!link_config(spec.checkpointer, cfg.heartbeat.name + "/" + spec.name,
                     "guests." + spec.name + ".", l, error))
      return false;
    gl->coord = std::make_unique<ctrl::CheckpointCoordinator>(l, gl->events, gl->failover);
    add_guest_peers(cs, *gl, spec);
    if (!gl->coord->start(error)) {
      error = "guest '" + spec.name + "': checkpointer link (" + spec.checkpointer.link.endpoint +
              "): " + error;
      return false;
    }
    auto s = std::make_unique<lockstep::dp::CoordinatorSink>(*gl->coord);
    gl->sink = s.get();
    sink = std::move(s);
  }
  cs.guest_links.push_back(std::move(gl));
  return true;
}

// Many guests: each guest's checkpointer link, its events on a queue of its own.
bool start_guest_links(const Config& cfg, CtrlStack& cs,
                       std::vector<std::unique_ptr<lockstep::dp::CheckpointSink>>& sinks,
                       std::string& error) {
  std::vector<lockstep::dp::GuestSpec> guests;
  if (!lockstep::dp::resolve_guests(cfg, guests, error)) return false;
  sinks.resize(guests.size());
  for (size_t g = 0; g < guests.size(); ++g) {
    if (!start_guest_link(cfg, cs, static_cast<unsigned>(g), guests[g], sinks[g], error)) return false;
  }
  // The heartbeats of every guest's peers arrive on the host's one socket; each goes to
  // the links that watch its sender.
  if (!cfg.heartbeat.bind.empty()) {
    ctrl::HeartbeatUdpConfig h;
    if (!heartbeat_config(cfg, h, error)) return false;
    auto* routes = &cs.peer_routes;
    cs.heartbeat = std::make_unique<ctrl::HeartbeatUdp>(h, [routes](const std::string& peer, uint64_t seq) {
      std::lock_guard lock(routes->mu);
      auto [a, b] = routes->by_peer.equal_range(peer);
      for (auto it = a; it != b; ++it) it->second->beat(peer, seq);
    });
    if (!cs.heartbeat->start(error)) {
      error = "config key 'heartbeat.bind': " + error;
      return false;
    }
  }
  return true;
}

// The coordinator comes before the dataplane (it is the dataplane's checkpoint sink).
bool start_link(const Config& cfg, CtrlStack& cs, std::unique_ptr<lockstep::dp::CheckpointSink>& sink,
                std::string& error) {
  if (cfg.checkpointer == "simulated") return true;
  ctrl::LinkConfig l;
  if (!link_config(cfg, l, error)) return false;
  cs.coord = std::make_unique<ctrl::CheckpointCoordinator>(l, cs.events, cs.failover);
  for (const auto& [name, p] : cfg.peers) {
    ctrl::PeerConfig pc;
    pc.name = name;
    pc.timeout_ns = p.timeout_ms * 1000000;
    pc.debounce_ns = p.debounce_ms * 1000000;
    loss_action(p.action, pc.on_loss);
    cs.coord->add_peer(pc);
  }
  if (!cs.coord->start(error)) {
    error = "checkpointer link (" + cfg.link.endpoint + "): " + error;
    return false;
  }
  auto s = std::make_unique<lockstep::dp::CoordinatorSink>(*cs.coord);
  cs.sink = s.get();
  sink = std::move(s);
  if (!cfg.heartbeat.bind.empty()) {
    ctrl::HeartbeatUdpConfig h;
    if (!heartbeat_config(cfg, h, error)) return false;
    auto* coord = cs.coord.get();
    cs.heartbeat = std::make_unique<ctrl::HeartbeatUdp>(
        h, [coord](const std::string& peer, uint64_t seq) { coord->beat(peer, seq); });
    if (!cs.heartbeat->start(error)) {
      error = "config key 'heartbeat.bind': " + error;
      return false;
    }
  }
  return true;
}

// The ctrl socket, the metrics listener, DPDK telemetry. A default address that cannot
// be bound (another lockstepd holds it) is a warning; one given explicitly is an error.
bool start_ctrl(const Config& cfg, Dataplane& dp, CtrlStack& cs, std::string& error) {
  cs.daemon = std::make_unique<DaemonCtl>(dp, cs.sink, cfg.checkpointer);
  for (const auto& gl : cs.guest_links) cs.daemon->set_guest_link(gl->guest, gl->sink, gl->kind);
  lockstep::dp::Capture::Options capture_opt;
  capture_opt.dir = cfg.ctrl.capture_dir;
  if (!cfg.ctrl.group.empty()) {
    gid_t gid;
    if (!ctrl::resolve_group(cfg.ctrl.group, gid, error)) {
      error = "config key 'ctrl.group': " + error;
      return false;
    }
    capture_opt.gid = static_cast<long>(gid);
  }
  cs.capture = std::make_unique<lockstep::dp::Capture>(dp, capture_opt);
  cs.daemon->set_capture(cs.capture.get());
  cs.cp.daemon = cs.daemon.get();
  cs.cp.failover = &cs.failover;
  cs.cp.events = &cs.events;
  cs.cp.log = &cs.log;
  cs.daemon->set_event_log(&cs.log);
  cs.log.append("start", {{"version", ctrl::lockstep_version()},
                          {"checkpointer", cfg.checkpointer},
                          {"workers", dp.worker_count()}});
  cs.cp.coordinator = cs.coord.get();
  cs.cp.start_ns = ctrl::monotonic_ns();
#ifdef LOCKSTEP_HAVE_COROSYNC
  if (cfg.cluster.kind == "corosync") {
    ctrl::ClusterCpgConfig cc;
    cc.group = cfg.cluster.group;
    ctrl::cluster_role_from_string(cfg.cluster.role, cc.core.role);
    cc.core.yellow_ns = cfg.cluster.yellow_ms * 1000000;
    cc.core.settle_ns = cfg.cluster.settle_ms * 1000000;
    cc.watch = cfg.cluster.watch;
    cs.cluster = std::make_unique<ctrl::ClusterCpg>(cc, cs.events, cs.failover);
    if (!cs.cluster->start(error)) {
      error = "config key 'cluster.group': " + error;
      return false;
    }
    cs.cp.cluster = cs.cluster.get();
    std::fprintf(stderr, "lockstepd: cluster: corosync group %s, role %s\n", cc.group.c_str(),
                 cfg.cluster.role.c_str());
  }
#endif
  ctrl::register_standard_commands(cs.registry, cs.cp);
  // Many guests: `-g NAME` on a per-guest command, and the list of guests.
  auto* daemon = cs.daemon.get();
  cs.registry.set_guest_selector(
      [daemon](const std::string& name, std::string& err) { return daemon->select_guest(name, err); });
  cs.registry.add(
      {"guest add", "NAME --config FILE",
       "serve one more guest, live: FILE holds its nics, engine and checkpointer keys (as "
       "guests.NAME in a configuration)",
       3, 3, true, [daemon](const ctrl::CommandContext& ctx, const ctrl::Args& a) {
         if (a[1] != "--config") return ctrl::CommandResult::failure("usage: guest add NAME --config FILE");
         // The file names devices lockstepd (root) creates, vhost sockets and pcap files
         // included: from a ctrl-group member only a file root owns and only root may
         // change, as the configuration itself.
         if (ctx.cred.uid != 0) {
           struct stat st {};
           if (lstat(a[2].c_str(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != 0 ||
               (st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
             return ctrl::CommandResult::failure(
                 "guest add: " + a[2] + " must be a regular file owned by root and writable by root "
                 "only (or ask as root)");
         }
         std::string text, err;
         lockstep::dp::GuestConfig gc;
         if (!lockstep::dp::read_config_text(a[2], text, err) ||
             !lockstep::dp::parse_guest_yaml(a[0], text, gc, err))
           return ctrl::CommandResult::failure(err);
         ctrl::Json result;
         if (!daemon->add_guest(gc, result, err)) return ctrl::CommandResult::failure(err);
         return ctrl::CommandResult::success(result);
       }});
  cs.registry.add({"guest del", "NAME [--held release|drop]",
                   "stop serving a guest, live: its held PVM output is released (or, --held "
                   "drop, dropped; default guest_del.held), the rest dropped, counted; ports "
                   "only it used are removed",
                   1, 3, true, [daemon](const ctrl::CommandContext&, const ctrl::Args& a) {
                     lockstep::dp::HeldPolicy held{};
                     const lockstep::dp::HeldPolicy* chosen = nullptr;
                     if (a.size() == 2 || (a.size() == 3 && a[1] != "--held"))
                       return ctrl::CommandResult::failure(
                           "usage: guest del NAME [--held release|drop]");
                     if (a.size() == 3) {
                       if (!lockstep::dp::held_policy_from_string(a[2], held))
                         return ctrl::CommandResult::failure(
                             "guest del: --held takes release or drop, not '" + a[2] + "'");
                       chosen = &held;
                     }
                     std::string err;
                     ctrl::Json result;
                     if (!daemon->remove_guest(a[0], chosen, result, err))
                       return ctrl::CommandResult::failure(err);
                     return ctrl::CommandResult::success(result);
                   }});
  // A guest removed live: its link stops, its heartbeat peers are no longer routed.
  daemon->set_on_guest_removed([&cs](unsigned g) {
    for (auto& gl : cs.guest_links) {
      if (gl->guest != g || !gl->coord) continue;
      {
        std::lock_guard lock(cs.peer_routes.mu);
        for (auto it = cs.peer_routes.by_peer.begin(); it != cs.peer_routes.by_peer.end();)
          it = it->second == gl->coord.get() ? cs.peer_routes.by_peer.erase(it) : std::next(it);
      }
      gl->removed.store(true);
      gl->coord->stop();
    }
  });
  // A guest added live gets its checkpointer link here (control loop).
  daemon->set_link_factory([&cs, &cfg](unsigned g, const lockstep::dp::GuestSpec& spec,
                                       std::unique_ptr<lockstep::dp::CheckpointSink>& sink,
                                       lockstep::dp::CoordinatorSink*& coord_sink, std::string& err) {
    if (!start_guest_link(cfg, cs, g, spec, sink, err)) return false;
    coord_sink = cs.guest_links.back()->sink;
    return true;
  });
  cs.registry.add({"guests", "",
                   "the guests this lockstepd serves: NICs, epoch, mode, state, checkpoints", 0, 0,
                   false, [daemon](const ctrl::CommandContext&, const ctrl::Args&) {
                     return ctrl::CommandResult::success({{"guests", daemon->guests()}});
                   }});
  cs.qos = std::make_unique<lockstep::dp::DataplaneQosControl>(dp.qos());
  // `-g NAME qos ...`: the guest's own schedulers (guests.NAME.qos.ROLE).
  cs.qos->set_guest_source([daemon = cs.daemon.get()] { return daemon ? daemon->guest_for_read() : -1; });
  ctrl::register_qos_commands(cs.registry, *cs.qos);
  // Sockets handed over by systemd (lockstepd.socket) take the place of the configured
  // ones; their files and modes are the socket unit's.
  auto take = [&cs](std::string_view name) {
    auto it = cs.activated.find(std::string(name));
    if (it == cs.activated.end()) return -1;
    const int fd = it->second;
    cs.activated.erase(it);
    return fd;
  };
  const int ctrl_fd = take(ctrl::kSocketNameCtrl);
  const int ro_fd = take(ctrl::kSocketNameCtrlRo);
  const int metrics_fd = take(ctrl::kSocketNameMetrics);
  for (const auto& [name, fd] : cs.activated) {
    std::fprintf(stderr, "lockstepd: warning: socket activation: unknown socket name '%s' "
                 "(FileDescriptorName= ctrl, ctrl-ro or metrics); closed\n", name.c_str());
    close(fd);
  }
  cs.activated.clear();
  if (cfg.ctrl.socket != "off" || ctrl_fd >= 0) {
    ctrl::CtrlServerConfig sc;
    sc.socket_path = ctrl_fd >= 0 ? "systemd:" + std::string(ctrl::kSocketNameCtrl) : cfg.ctrl.socket;
    sc.group = cfg.ctrl.group;
    sc.ro_socket_path = cfg.ctrl.ro_socket;
    sc.listen_fd = ctrl_fd;
    sc.ro_listen_fd = ro_fd;
    if (ctrl_fd < 0 && !cfg.ctrl.socket_given && cfg.ctrl.socket.starts_with("/run/lockstep/"))
      mkdir("/run/lockstep", 0750);  // systemd makes it (RuntimeDirectory); by hand, we do
    cs.server = std::make_unique<ctrl::CtrlServer>(cs.registry, sc);
    cs.cp.server = cs.server.get();
    if (!cs.server->start(error)) {
      error = "config key 'ctrl.socket' (" + cfg.ctrl.socket + "): " + error;
      if (cfg.ctrl.socket_given) return false;
      std::fprintf(stderr, "lockstepd: warning: %s; running without a ctrl socket\n", error.c_str());
      cs.cp.server = nullptr;
      cs.server.reset();
    } else if (ctrl_fd >= 0) {
      std::fprintf(stderr, "lockstepd: ctrl socket from systemd (socket activation)%s\n",
                   ro_fd >= 0 ? ", read-only socket too" : "");
    } else {
      std::fprintf(stderr, "lockstepd: ctrl socket %s\n", cfg.ctrl.socket.c_str());
    }
  } else if (ro_fd >= 0) {
    close(ro_fd);
  }
  if (metrics_fd >= 0) {
    auto* cp = &cs.cp;
    cs.http = std::make_unique<ctrl::MetricsHttpServer>([cp] { return ctrl::render_metrics(*cp); });
    cs.http->set_health([&cs] { return health(cs); });
    if (!cs.http->start_on(metrics_fd, error)) {
      error = "metrics socket from systemd: " + error;
      return false;
    }
    std::fprintf(stderr, "lockstepd: metrics on the socket from systemd (port %u)\n",
                 cs.http->port());
  } else if (cfg.ctrl.metrics != "off") {
    ctrl::Endpoint ep;
    auto* cp = &cs.cp;
    cs.http = std::make_unique<ctrl::MetricsHttpServer>([cp] { return ctrl::render_metrics(*cp); });
    cs.http->set_health([&cs] { return health(cs); });
    if (!ctrl::parse_endpoint(cfg.ctrl.metrics, ep, error) || !cs.http->start(ep, error)) {
      error = "config key 'ctrl.metrics' (" + cfg.ctrl.metrics + "): " + error;
      if (cfg.ctrl.metrics_given) return false;
      std::fprintf(stderr, "lockstepd: warning: %s; running without metrics\n", error.c_str());
      cs.http.reset();
    } else {
      std::fprintf(stderr, "lockstepd: metrics on port %u\n", cs.http->port());
    }
  }
  auto* cp = &cs.cp;
  std::string terr;
  if (!ctrl::register_dpdk_telemetry([cp] { return ctrl::collect_metrics(*cp); }, terr))
    std::fprintf(stderr, "lockstepd: warning: DPDK telemetry: %s\n", terr.c_str());
  uint64_t wd_us = ctrl::sd_watchdog_interval_us();
  cs.watchdog_half_ns = wd_us * 500;
  return true;
}

void stop_ctrl(CtrlStack& cs) {
#ifdef LOCKSTEP_HAVE_COROSYNC
  if (cs.cluster) cs.cluster->stop();
#endif
  if (cs.server) cs.server->stop();
  if (cs.http) cs.http->stop();
}

// Called every millisecond by the control loop (main lcore).
void ctrl_tick(Dataplane& dp, CtrlStack& cs) {
  uint64_t now = ctrl::monotonic_ns();
  cs.batch.clear();
  cs.events.drain(cs.batch);
  for (const auto& e : cs.batch) cs.daemon->on_event(e, now);
  for (auto& gl : cs.guest_links) {
    cs.batch.clear();
    gl->events.drain(cs.batch);
    for (const auto& e : cs.batch) cs.daemon->on_guest_event(gl->guest, e, now);
  }
  cs.daemon->service(now);
  if (cs.watchdog_half_ns != 0 && now >= cs.next_watchdog_ns) {
    // WATCHDOG=1 only while the workers make progress (their poll counts move).
    uint64_t polls = cs.daemon->polls();
    if (polls != cs.last_polls || dp.worker_count() == 0) ctrl::sd_notify_watchdog();
    cs.last_polls = polls;
    cs.next_watchdog_ns = now + cs.watchdog_half_ns;
  }
}

struct Reload;
void start_reload(Reload& rl, CtrlStack& cs);

struct TickState {
  StopState* stop;
  CtrlStack* cs;
  std::chrono::steady_clock::time_point next_slow;
  Reload* reload;
};

void control_tick(Dataplane& dp, void* arg) {
  auto* ts = static_cast<TickState*>(arg);
  ctrl_tick(dp, *ts->cs);
  auto now = std::chrono::steady_clock::now();
  if (now < ts->next_slow) return;
  ts->next_slow = now + std::chrono::milliseconds(50);
  auto* st = ts->stop;
  if (g_signalled.load() || (st->bounded && now >= st->deadline)) dp.request_stop();
  if (g_reload.exchange(false) && ts->reload != nullptr) start_reload(*ts->reload, *ts->cs);
  if (st->display && now >= st->next_display) {
    st->next_display += std::chrono::seconds(1);
    display_tick(dp, st->display);
  }
}

// ---- SIGHUP: the configuration file read again ----
//
// The file (or the embedded default) and the --set overrides are loaded and checked as at
// start. Engine settings that may change live and differ from what was loaded before are
// applied through the same path as `config set` (compiled first, confirmed by every
// worker); any other key that differs (ports, workers, pools, ctrl, checkpointer, and the
// engine's capacities) is left as it is, with a log line saying it needs a restart. A
// file that does not load changes nothing. Runs on a thread of its own: applying waits
// for the workers, whose control messages the control loop delivers.

using Pairs = std::map<std::string, std::string>;

bool load_for(const Options& o, Config& cfg, Pairs& pairs, std::string& error) {
  std::string text;
  if (o.config_file.empty()) {
    text = std::string(lockstep::dp::default_config_yaml());
  } else if (!lockstep::dp::read_config_text(o.config_file, text, error)) {
    return false;
  }
  std::vector<std::pair<std::string, std::string>> kv;
  if (!lockstep::dp::config_pairs(text, kv, error) ||
      !lockstep::dp::parse_config(text, cfg, error)) {
    if (!o.config_file.empty()) error = o.config_file + ": " + error;
    return false;
  }
  for (const auto& set : o.sets) {
    if (!lockstep::dp::apply_override(set, cfg, error)) return false;
    kv.emplace_back(set.substr(0, set.find('=')), set.substr(set.find('=') + 1));
  }
  pairs.clear();
  for (auto& [k, v] : kv) pairs[k] = v;
  return lockstep::dp::validate(cfg, error) && check_ctrl_config(cfg, error) &&
         lockstep::dp::check_engine_settings(cfg.engine, error) &&
         lockstep::dp::check_port_drivers(cfg, error);
}

struct Reload {
  Options opt;
  Pairs pairs;  // the keys in force, as loaded (at start, then by each reload)
  std::thread thread;
  std::atomic<bool> busy{false};
  ~Reload() {
    if (thread.joinable()) thread.join();
  }
};

bool live_engine_key(const std::string& key) {
  if (!key.starts_with("engine.")) return false;
  const std::string n = key.substr(7);
  return n != "max_connections" && n != "max_held_frames" && n != "frag_max_datagrams";
}

void reload(Reload& rl, lockstep::dp::DaemonCtl& daemon, ctrl::ControlPlane& cp) {
  const std::string what = rl.opt.config_file.empty() ? "the embedded configuration"
                                                      : rl.opt.config_file;
  Config next;
  Pairs np;
  std::string error;
  if (!load_for(rl.opt, next, np, error)) {
    std::fprintf(stderr, "lockstepd: SIGHUP: %s refused, nothing changed: %s\n", what.c_str(),
                 error.c_str());
    return;
  }
  lockstep::Settings s = daemon.settings();
  std::vector<std::string> engine_keys;
  bool refused_any = false;
  Pairs keys = rl.pairs;
  keys.insert(np.begin(), np.end());
  for (const auto& [k, unused] : keys) {
    auto o = rl.pairs.find(k), n = np.find(k);
    const bool same = (o == rl.pairs.end()) == (n == np.end()) &&
                      (o == rl.pairs.end() || o->second == n->second);
    if (same) continue;
    if (!live_engine_key(k)) {
      std::fprintf(stderr,
                   "lockstepd: SIGHUP: key '%s' changed: not changeable while running, "
                   "not applied (restart to apply it)\n",
                   k.c_str());
      refused_any = true;
      continue;
    }
    const std::string name = k.substr(7);
    const std::string value = n != np.end() ? n->second : next.engine.get(name);
    lockstep::Settings t;
    if (!s.with(name, value, t, error)) {
      std::fprintf(stderr, "lockstepd: SIGHUP: key '%s': %s; nothing changed\n", k.c_str(),
                   error.c_str());
      return;
    }
    s = t;
    engine_keys.push_back(k);
  }
  if (engine_keys.empty()) {
    std::fprintf(stderr, "lockstepd: SIGHUP: %s reloaded: no live-changeable key changed%s\n",
                 what.c_str(), refused_any ? " (see above)" : "");
    return;
  }
  if (!daemon.apply_settings(s, error)) {
    std::fprintf(stderr, "lockstepd: SIGHUP: engine settings refused, nothing changed: %s\n",
                 error.c_str());
    return;
  }
  ++cp.config_generation;
  std::string list;
  for (const auto& k : engine_keys) {
    list += (list.empty() ? "" : ", ") + k;
    if (np.count(k)) rl.pairs[k] = np[k];
    else rl.pairs.erase(k);
  }
  std::fprintf(stderr, "lockstepd: SIGHUP: %s reloaded: applied %s\n", what.c_str(), list.c_str());
}

void start_reload(Reload& rl, CtrlStack& cs) {
  if (rl.busy.exchange(true)) {
    std::fprintf(stderr, "lockstepd: SIGHUP: a reload is under way; this one is skipped\n");
    return;
  }
  if (rl.thread.joinable()) rl.thread.join();
  rl.thread = std::thread([&rl, &cs] {
    reload(rl, *cs.daemon, cs.cp);
    rl.busy.store(false);
  });
}

// The command line: lockstepd's options (CLI11), then "--" and EAL arguments, or
// --colo-compare and colo-compare properties (QEMU's key=value syntax, parsed by
// dataplane/chardev). -1: go on; otherwise the exit status.
int parse_args(int argc, char** argv, Options& o) {
  constexpr int kExitUsage = 2;
  std::vector<std::string> words(argv + 1, argv + argc);
  // The words after "--" are the EAL's; the words after --colo-compare are colo-compare's.
  for (size_t i = 0; i < words.size(); ++i) {
    if (words[i] == "--") {
      o.eal_extra.assign(words.begin() + static_cast<std::ptrdiff_t>(i) + 1, words.end());
      words.resize(i);
      break;
    }
    if (words[i] == "--colo-compare") {
      o.colo = true;
      o.colo_args.assign(words.begin() + static_cast<std::ptrdiff_t>(i) + 1, words.end());
      words.resize(i);
      break;
    }
  }
  CLI::App app{kDescription, "lockstepd"};
  lockstep::cli::setup(app,
                       {"[OPTIONS] [-- EAL-ARGUMENTS]",
                        "--colo-compare primary_in=SPEC secondary_in=SPEC outdev=SPEC "
                        "[PROPERTY=VALUE]..."},
                       kFooter);
  std::vector<std::string> ignored;  // --colo-compare: split off above, listed in --help
  std::vector<std::string> sets;
  app.add_option("--config", o.config_file,
                 "YAML configuration (default: the embedded demo configuration)")
      ->type_name("FILE");
  app.add_option("--set", sets, "override one key (ports.ext=..., workers=2, ...); repeatable")
      ->option_text("KEY=VALUE")
      ->allow_extra_args(false)
      ->check([](const std::string& v) {
        auto eq = v.find('=');
        return eq == std::string::npos || eq == 0 ? "expected KEY=VALUE, got '" + v + "'"
                                                  : std::string();
      });
  app.add_option("--stats-json", o.stats_json, "write the final counters as JSON at exit")
      ->type_name("FILE");
  app.add_flag("--display", o.display, "live display of the counters, refreshed every second");
  app.add_option("--duration", o.duration_s,
                 "stop by itself after this long (0: until SIGINT/SIGTERM)")
      ->type_name("SECONDS")
      ->check([](const std::string& v) {
        char* end = nullptr;
        const double d = std::strtod(v.c_str(), &end);
        return end == v.c_str() || *end != '\0' || !(d >= 0)
                   ? "not a number of seconds (0 or more): '" + v + "'"
                   : std::string();
      });
  bool print_config = false;
  app.add_flag("--print-config", print_config,
               "print the configuration (--config's file, else the embedded default) and\n"
               "the --set overrides, then exit");
  app.add_flag("--check-config", o.check_only, "load and validate the configuration, then exit");
  // Shorthands for ctrl.* keys; applied with the --set options in command-line order.
  const std::pair<const char*, const char*> shorthands[] = {
      {"--ctrl-socket", "ctrl.socket"},   {"--ctrl-group", "ctrl.group"},
      {"--ctrl-ro-socket", "ctrl.ro_socket"}, {"--capture-dir", "ctrl.capture_dir"},
      {"--metrics", "ctrl.metrics"}};
  const char* const shorthand_help[] = {
      "ctrl socket (ctrl.socket; /run/lockstep/lockstep.ctl; off: none)",
      "group owning the ctrl socket, mode 0660 (ctrl.group)",
      "read-only ctrl socket, mode 0666 (ctrl.ro_socket)",
      "where `capture start` writes (ctrl.capture_dir)",
      "Prometheus listener (ctrl.metrics; tcp:127.0.0.1:9469; off: none)"};
  const char* const shorthand_type[] = {"PATH", "GROUP", "PATH", "DIR", "ADDR"};
  std::vector<std::vector<std::string>> shorthand_values(std::size(shorthands));
  std::vector<CLI::Option*> shorthand_opts;
  for (size_t i = 0; i < std::size(shorthands); ++i) {
    shorthand_opts.push_back(app.add_option(shorthands[i].first, shorthand_values[i],
                                            shorthand_help[i])
                                 ->option_text(shorthand_type[i])
                                 ->allow_extra_args(false));
  }
  CLI::Option* set_opt = app.get_option("--set");
  app.add_option("--colo-compare", ignored,
               "run as QEMU's colo-compare object: each later word is a\n"
               "property or --set KEY=VALUE (--colo-compare --help)")
      ->option_text("PROPERTY=VALUE...");
  if (int rc = lockstep::cli::parse(app, std::move(words), kExitUsage); rc >= 0) return rc;
  // --set and the shorthands in the order given.
  std::vector<size_t> next(std::size(shorthands) + 1, 0);
  for (const CLI::Option* opt : app.parse_order()) {
    if (opt == set_opt) {
      o.sets.push_back(sets[next.back()++]);
      continue;
    }
    for (size_t i = 0; i < shorthand_opts.size(); ++i) {
      if (opt == shorthand_opts[i]) {
        o.sets.push_back(std::string(shorthands[i].second) + "=" +
                         shorthand_values[i][next[i]++]);
      }
    }
  }
  if (print_config) {
    // The configuration this command line would run: --config's file (or the embedded
    // default), then the --set overrides in the order they apply.
    if (o.config_file.empty()) {
      std::fputs(std::string(lockstep::dp::default_config_yaml()).c_str(), stdout);
    } else {
      std::ifstream in(o.config_file);
      std::stringstream text;
      text << in.rdbuf();
      if (!in) {
        std::fprintf(stderr, "lockstepd: cannot read %s\n", o.config_file.c_str());
        return 2;
      }
      std::fputs(text.str().c_str(), stdout);
    }
    if (!o.sets.empty()) {
      std::printf("# overridden on the command line (--set, in this order):\n");
      for (const auto& kv : o.sets) std::printf("#   %s\n", kv.c_str());
    }
    return 0;
  }
  return -1;
}

// --colo-compare: one engine on QEMU's chardev sockets, until SIGINT/SIGTERM. The
// DPDK-side options (--config, --set, --ctrl-socket, --metrics, EAL arguments) do not
// apply: the ctrl socket and metrics are the properties ctrl_socket= and metrics=.
int run_colo_compare(const Options& o) {
  if (!o.config_file.empty() || !o.sets.empty() || !o.eal_extra.empty() || o.display ||
      o.duration_s > 0 || o.check_only || !o.stats_json.empty()) {
    std::fprintf(stderr, "lockstepd: --colo-compare takes colo-compare properties only "
                         "(engine settings as --set KEY=VALUE after it; the ctrl socket and "
                         "metrics as ctrl_socket=PATH, metrics=tcp:HOST:PORT)\n");
    return 2;
  }
  return lockstep::colo::run_main(o.colo_args, "lockstepd", "lockstepd --colo-compare",
                                  lockstep::cli::version());
}

}  // namespace

int main(int argc, char** argv) {
#ifdef LOCKSTEP_HAVE_LIBVIRT
  ctrl::enable_libvirt_qmp();  // checkpointer endpoints libvirt:URI?domain=NAME
#endif
  Options opt;
  if (int rc = parse_args(argc, argv, opt); rc >= 0) return rc;
  if (opt.colo) return run_colo_compare(opt);

  Config cfg;
  std::string error;
  Reload rl;
  rl.opt = opt;
  bool ok = load_for(opt, cfg, rl.pairs, error);
  if (ok && !lockstep::Engine::create(cfg.engine, error)) {
    error = "config key 'engine': " + error;
    ok = false;
  }
  if (!ok) {
    std::fprintf(stderr, "lockstepd: %s\n", error.c_str());
    return 2;
  }
  if (opt.check_only) {
    std::printf("configuration ok\n");
    return 0;
  }

  // Socket activation: taken before the EAL starts (and its variables unset).
  std::map<std::string, int> activated;
  if (!ctrl::sd_listen_sockets(activated, error)) {
    std::fprintf(stderr, "lockstepd: %s\n", error.c_str());
    return 2;
  }
  std::signal(SIGHUP, on_hangup);  // from here on a SIGHUP never ends lockstepd
  if (!lockstep::dp::eal_start(cfg, opt.eal_extra, "lockstepd", error)) {
    std::fprintf(stderr, "lockstepd: %s\n", error.c_str());
    return 1;
  }
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::signal(SIGQUIT, on_signal);
  std::signal(SIGPIPE, SIG_IGN);

  int exit_code = 0;
  {
    CtrlStack cs;
    cs.activated = std::move(activated);
    std::vector<std::unique_ptr<lockstep::dp::CheckpointSink>> sinks(1);
    if (cfg.guests.empty() ? !start_link(cfg, cs, sinks[0], error)
                           : !start_guest_links(cfg, cs, sinks, error)) {
      std::fprintf(stderr, "lockstepd: %s\n", error.c_str());
      lockstep::dp::eal_stop();
      return 2;
    }
    // A single pair may become many guests (guest add), each with its own schedulers.
    cfg.qos_hub = cfg.clock != lockstep::dp::ClockKind::replay;
    auto dp = Dataplane::create(cfg, error, nullptr, std::move(sinks));
    if (!dp) {
      std::fprintf(stderr, "lockstepd: %s\n", error.c_str());
      lockstep::dp::eal_stop();
      return 2;
    }
    if (!start_ctrl(cfg, *dp, cs, error)) {
      std::fprintf(stderr, "lockstepd: %s\n", error.c_str());
      stop_ctrl(cs);
      dp.reset();
      lockstep::dp::eal_stop();
      return 2;
    }
    if (!dp->launch(error)) {
      std::fprintf(stderr, "lockstepd: %s\n", error.c_str());
      dp->join_and_finish();
      lockstep::dp::eal_stop();
      return 2;
    }
    std::fprintf(stderr, "lockstepd: running, %u worker(s), %s steering, clock %s\n",
                 dp->worker_count(), dp->plan().rss ? "rss" : "software",
                 cfg.clock == lockstep::dp::ClockKind::replay ? "replay" : "tsc");
    DisplayState ds;
    ds.tty = isatty(STDOUT_FILENO);
    ds.log = &cs.log;
    ds.start = std::chrono::steady_clock::now();
    StopState st{dp.get(),
                 std::chrono::steady_clock::now() +
                     std::chrono::milliseconds(static_cast<int64_t>(opt.duration_s * 1000)),
                 opt.duration_s > 0, opt.display ? &ds : nullptr,
                 std::chrono::steady_clock::now() + std::chrono::seconds(1)};
    TickState ts{&st, &cs, std::chrono::steady_clock::now(), &rl};
    ctrl::sd_notify_ready("ports up, ctrl listening");
    dp->run_control(control_tick, &ts, 1);
    ctrl::sd_notify_stopping();
    // Why it checkpointed, as `lockstepctl explain` would say (the most frequent first).
    // The 8 most frequent groups, then up to 8 more whose last request names the line
    // that differs (a rare explained mismatch must not hide behind a storm of others).
    const ctrl::Json why = ctrl::explain_json(cs.log, 1000);
    size_t rank = 0, shown = 0, more = 0;
    for (const auto& g : why["groups"]) {
      std::string line = g["last"].value("line", "");
      if (++rank > 8 && (line.empty() || shown >= 16)) {
        ++more;
        continue;
      }
      ++shown;
      if (line.size() > 40) line = line.substr(line.size() - 40);
      std::fprintf(stderr, "lockstepd: checkpoints: %llu x %s  %s%s\n",
                   static_cast<unsigned long long>(g.value("count", uint64_t{0})),
                   g.value("reason", "?").c_str(), g.value("flow", "").c_str(),
                   line.empty() ? "" : ("  at \"" + line + "\"").c_str());
    }
    if (more > 0)
      std::fprintf(stderr, "lockstepd: checkpoints: %zu more group(s): lockstepctl explain\n", more);
    if (rl.thread.joinable()) rl.thread.join();  // a reload's wait ends as the dataplane stops
    stop_ctrl(cs);
    dp->join_and_finish();
    dp->stop_ports(true);
    auto rep = dp->report();
    std::fputs(rep.text().c_str(), stdout);
    if (!opt.stats_json.empty()) {
      std::ofstream out(opt.stats_json);
      out << rep.json();
      if (!out) {
        std::fprintf(stderr, "lockstepd: cannot write %s\n", opt.stats_json.c_str());
        exit_code = 1;
      }
    }
    if (rep.pool_avail != rep.pool_size) {
      std::fprintf(stderr, "lockstepd: %llu mbufs not returned to the pool\n",
                   static_cast<unsigned long long>(rep.pool_size - rep.pool_avail));
      exit_code = 1;
    }
  }
  lockstep::dp::eal_stop();
  return exit_code;
}
