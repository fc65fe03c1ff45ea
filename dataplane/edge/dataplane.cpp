#include "dataplane/edge/dataplane.h"

#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf_dyn.h>
#include <rte_ring.h>
#include <rte_bus.h>
#include <rte_dev.h>

#include <algorithm>
#include <cstdio>

#include <chrono>
#include <thread>

namespace lockstep::dp {
namespace {

struct LaunchArg {
  Dataplane* dp;
  Worker* worker;
  bool replay;
  std::atomic<unsigned>* replay_done;
};
std::vector<LaunchArg> g_launch;  // lives while lcores run; one Dataplane per process

uint64_t now_tsc_ns() { return Worker::tsc_to_ns(rte_rdtsc(), rte_get_tsc_hz()); }

}  // namespace

std::unique_ptr<Dataplane> Dataplane::create(const Config& cfg, std::string& error,
                                             rte_mempool* pool,
                                             std::unique_ptr<CheckpointSink> sink) {
  std::vector<std::unique_ptr<CheckpointSink>> sinks;
  sinks.push_back(std::move(sink));
  return create(cfg, error, pool, std::move(sinks));
}

std::unique_ptr<Dataplane> Dataplane::create(const Config& cfg, std::string& error,
                                             rte_mempool* pool,
                                             std::vector<std::unique_ptr<CheckpointSink>> sinks) {
  if (!validate(cfg, error)) return nullptr;
  std::unique_ptr<Dataplane> dp(new Dataplane());
  dp->cfg_ = cfg;
  if (!resolve_guests(cfg, dp->guests_, error)) return nullptr;
  dp->removed_.assign(dp->guests_.size(), false);
  if (!plan_ports(cfg, dp->plan_, error)) return nullptr;

  if (pool == nullptr) {
    pool = rte_pktmbuf_pool_create("ls_pkt", cfg.pool_mbufs, cfg.pool_cache, 0,
                                   static_cast<uint16_t>(cfg.mbuf_data_room + RTE_PKTMBUF_HEADROOM),
                                   static_cast<int>(rte_socket_id()));
    if (pool == nullptr) {
      error = "config key 'pool.mbufs': cannot create a pool of " + std::to_string(cfg.pool_mbufs) +
              " mbufs: " + rte_strerror(rte_errno) + " (raise eal.memory_mb?)";
      return nullptr;
    }
    dp->own_pool_ = true;
  }
  dp->pool_ = pool;
  if (cfg.jumbo_mbufs > 0) {
    std::string jname = "ls_jumbo";
    if (!dp->own_pool_) jname += std::to_string(reinterpret_cast<uintptr_t>(dp.get()) & 0xffff);
    dp->jumbo_pool_ = rte_pktmbuf_pool_create(jname.c_str(), cfg.jumbo_mbufs, 0, 0, UINT16_MAX,
                                              static_cast<int>(rte_socket_id()));
    if (dp->jumbo_pool_ == nullptr) {
      error = "config key 'pool.jumbo_mbufs': cannot create a pool of " +
              std::to_string(cfg.jumbo_mbufs) + " 64 KiB mbufs: " + rte_strerror(rte_errno) +
              " (raise eal.memory_mb, or set 0)";
      return nullptr;
    }
  }

  int ts_off = -1;
  uint64_t ts_flag = 0;
  if (cfg.clock == ClockKind::replay) {
    if (rte_mbuf_dyn_rx_timestamp_register(&ts_off, &ts_flag) != 0) {
      error = "clock=replay: cannot register the RX timestamp field";
      return nullptr;
    }
  }

  if (!start_ports(cfg, dp->plan_, pool, dp->events_, error)) {
    dp->stop_ports(false);
    return nullptr;
  }
  dp->ports_started_ = true;
  dp->sock_drops_.attach(cfg.ports);

  const unsigned n = cfg.workers;
  error.clear();
  std::vector<QosGuestPort> guest_ports;
  for (const UnitPlan& u : dp->plan_.units)
    for (unsigned r = 0; r < kCompareRoles; ++r)
      guest_ports.push_back(QosGuestPort{u.guest, static_cast<PortRole>(r), u.port[r]});
  dp->qos_ = QosHub::create(cfg, dp->plan_.port, guest_ports, n, error);
  if (!dp->qos_ && !error.empty()) return nullptr;
  const bool software = n > 1 && !dp->plan_.rss;
  if (software) {
    dp->steer_rings_.resize(n, nullptr);
    for (unsigned w = 1; w < n; ++w) {
      std::string name = "ls_steer_w" + std::to_string(w);
      dp->steer_rings_[w] = rte_ring_create(name.c_str(), cfg.steer_ring_size, SOCKET_ID_ANY,
                                            RING_F_SP_ENQ | RING_F_SC_DEQ);
      if (dp->steer_rings_[w] == nullptr) {
        error = "cannot create steering ring: " + std::string(rte_strerror(rte_errno));
        return nullptr;
      }
    }
  }
  for (unsigned w = 0; w < n; ++w) {
    WorkerRings rings;
    if (!create_worker_rings(w, 1024, rings, error)) return nullptr;
    dp->rings_.push_back(rings);
  }
  for (unsigned w = 0; w < n; ++w) {
    // One engine per guest NIC, with its guest's settings.
    std::vector<std::unique_ptr<Engine>> engines;
    for (const UnitPlan& u : dp->plan_.units) {
      auto engine = Engine::create(dp->guests_[u.guest].engine, error);
      if (!engine) {
        error = (cfg.guests.empty() ? "engine settings: "
                                    : "guest '" + dp->guests_[u.guest].name + "' engine settings: ") +
                error;
        return nullptr;
      }
      engines.push_back(std::move(engine));
    }
    dp->slots_.push_back(std::make_unique<StatsSlot>());
    WorkerSetup s;
    s.id = w;
    s.count = n;
    s.cfg = &dp->cfg_;
    s.port = dp->plan_.port;
    s.units = dp->plan_.units;
    s.guests = static_cast<unsigned>(dp->guests_.size());
    s.role_of_port.fill(kNoRole);
    for (const auto& used : dp->plan_.used)
      s.role_of_port[static_cast<unsigned>(used.port)] = static_cast<uint8_t>(used.role);
    s.reads_rx = dp->plan_.rss || w == 0;
    for (const auto& used : dp->plan_.used) {
      RxPort rx;
      rx.port = static_cast<uint16_t>(used.port);
      rx.role = used.role;
      rx.rxq_first = static_cast<uint16_t>(dp->plan_.rss ? w : 0);
      rx.rxq_count = dp->plan_.rss ? 1 : (w == 0 ? dp->plan_.nrx[rx.port] : 0);
      if (rx.rxq_count > 0) s.rx.push_back(rx);
    }
    s.txq = static_cast<uint16_t>(w);
    s.pool = pool;
    s.jumbo_pool = dp->jumbo_pool_;
    if (software) {
      if (w == 0) s.steer_to = dp->steer_rings_;
      else s.steer_from = dp->steer_rings_[w];
    }
    s.ctrl = dp->rings_[w];
    s.slot = dp->slots_.back().get();
    s.stop = &dp->stop_;
    s.timestamp_offset = ts_off;
    s.timestamp_flag = ts_flag;
    if (dp->qos_) s.qos = dp->qos_->links(w);
    dp->workers_.push_back(std::make_unique<Worker>(s, std::move(engines)));
  }
  sinks.resize(dp->guests_.size());
  std::vector<std::string> names;
  for (size_t g = 0; g < dp->guests_.size(); ++g) {
    names.push_back(dp->guests_[g].name);
    if (!sinks[g])
      sinks[g] = std::make_unique<SimulatedCheckpointer>(dp->guests_[g].checkpointer.latency_us * 1000);
  }
  dp->control_ = std::make_unique<ControlPlane>(dp->rings_, std::move(names), std::move(sinks));
  return dp;
}

Dataplane::~Dataplane() {
  if (!finished_ && !workers_.empty()) finish(now_tsc_ns());
  if (ports_started_) stop_ports(true);
  workers_.clear();
  for (auto& r : rings_) free_worker_rings(r);
  for (auto* r : steer_rings_) rte_ring_free(r);
  if (own_pool_) rte_mempool_free(pool_);
  rte_mempool_free(jumbo_pool_);
}

int Dataplane::lcore_main(void* arg) {
  auto* a = static_cast<LaunchArg*>(arg);
  if (a->replay) {
    a->worker->run_replay();
    a->replay_done->fetch_add(1);
  } else {
    a->worker->run_tsc();
  }
  return 0;
}

bool Dataplane::launch(std::string& error) {
  lcores_.clear();
  unsigned id;
  RTE_LCORE_FOREACH_WORKER(id) lcores_.push_back(id);
  if (lcores_.size() < workers_.size()) {
    error = "config key 'workers': " + std::to_string(workers_.size()) + " worker(s) need " +
            std::to_string(workers_.size() + 1) + " lcores (main + workers); EAL has " +
            std::to_string(lcores_.size() + 1) + " (config key 'lcores')";
    return false;
  }
  g_launch.clear();
  g_launch.reserve(workers_.size());
  for (auto& w : workers_)
    g_launch.push_back({this, w.get(), cfg_.clock == ClockKind::replay, &replay_done_});
  for (size_t i = 0; i < workers_.size(); ++i) {
    int rc = rte_eal_remote_launch(lcore_main, &g_launch[i], lcores_[i]);
    if (rc != 0) {
      error = "cannot launch worker " + std::to_string(i) + " on lcore " + std::to_string(lcores_[i]);
      request_stop();
      return false;
    }
  }
  return true;
}

void Dataplane::run_control(void (*tick)(Dataplane&, void*), void* arg, unsigned tick_ms) {
  auto next_tick = std::chrono::steady_clock::now() + std::chrono::milliseconds(tick_ms);
  while (!stop_.load()) {
    bool did = cfg_.clock == ClockKind::replay ? false : control_->poll(now_tsc_ns());
    if (cfg_.clock == ClockKind::replay && replay_done_.load() == workers_.size()) break;
    if (tick && std::chrono::steady_clock::now() >= next_tick) {
      tick(*this, arg);
      next_tick += std::chrono::milliseconds(tick_ms);
    }
    if (!did) std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
}

void Dataplane::join_and_finish() {
  stop_.store(true);
  for (size_t i = 0; i < workers_.size() && i < lcores_.size(); ++i) rte_eal_wait_lcore(lcores_[i]);
  finish(now_tsc_ns());
}

void Dataplane::step(uint64_t now_ns) {
  control_->poll(now_ns);
  for (auto& w : workers_) w->poll_once(now_ns);
}

void Dataplane::finish(uint64_t now_ns) {
  if (finished_) return;
  finished_ = true;
  for (auto& w : workers_) w->finish(now_ns);
  if (qos_) qos_->finish(now_ns);  // after every worker: frames handed over are freed too
}

bool Dataplane::run_guest_change(CtrlMsg::Kind kind, GuestChange& c, std::string& error) {
  CtrlMsg m;
  m.kind = kind;
  m.settings = &c;
  // All or none: a worker that got it reads `c`, which must outlive its answer.
  if (!control_->room_for_broadcast() || !control_->broadcast(m)) {
    error = "a worker's control ring is full; try again";
    return false;
  }
  const uint64_t now = now_tsc_ns();
  if (lcores_.empty()) {  // stepped on this thread (tests)
    for (auto& w : workers_) w->service_control(now);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (unsigned w = 0; w < workers_.size(); ++w) {
    while (!c.done[w].load(std::memory_order_acquire)) {
      if (std::chrono::steady_clock::now() > deadline) {
        // Never returns with a change half-applied in the dark: the workers poll, so
        // this only happens when one is stuck; the process is not safe to run on.
        std::fprintf(stderr, "lockstepd: worker %u did not take a guest change within 5 s\n", w);
        std::abort();
      }
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }
  return true;
}

bool Dataplane::add_guest(const GuestConfig& gc, std::unique_ptr<CheckpointSink> sink,
                          std::string& error) {
  if (cfg_.clock == ClockKind::replay) {
    error = "guest add: not with clock=replay";
    return false;
  }
  if (gc.has_qos() && !qos_) {  // a dataplane made without a hub (not lockstepd's)
    error = "guest add: guests." + gc.name + ".qos: this dataplane has no QoS hub, so no "
            "scheduler can be added live: put the guest and its qos section in the "
            "configuration and restart, or leave the section out";
    return false;
  }
  for (const auto& g : cfg_.guests) {
    if (g.name == gc.name) {
      error = "guest add: a guest named '" + gc.name + "' is already served";
      return false;
    }
  }
  // The rules of a configuration that has it from the start (a single pair: the guest
  // `default`, which has no MAC unless ports.mac/ports.vlan give it one).
  if (cfg_.guests.empty() && !cfg_.default_has_mac && cfg_.default_vlan < 0) {
    for (size_t n = 0; n < gc.nics.size(); ++n)
      for (unsigned r = 0; r < kCompareRoles; ++r)
        if (device_name(gc.nics[n].ports[r]) == device_name(cfg_.ports[r])) {
          const std::string role(to_string(static_cast<PortRole>(r)));
          error = "config key 'guests." + gc.name + ".nics." + std::to_string(n) + "." + role +
                  "': device '" + device_name(cfg_.ports[r]) +
                  "' is the single-pair guest 'default''s port (ports." + role +
                  "), which has no mac or vlan to tell its frames apart: give '" + gc.name +
                  "' ports of its own, or set ports.mac (ports.vlan) and restart";
          return false;
        }
  }
  Config next = as_guests_config(cfg_);
  next.guests.push_back(gc);
  if (!validate(next, error)) return false;
  std::vector<GuestSpec> specs;
  if (!resolve_guests(next, specs, error)) return false;
  const GuestSpec spec = specs.back();
  const unsigned gi = static_cast<unsigned>(guests_.size());
  if (gi >= kMaxGuests) {
    error = "guest add: at most " + std::to_string(kMaxGuests) + " guests in a lockstepd's life";
    return false;
  }
  if (!control_->room_for_broadcast()) {
    error = "guest add: a worker's control ring is full; try again";
    return false;
  }
  // Ports: the guest's devices, probed when new, started once.
  std::vector<PortPlan::Used> fresh;
  std::vector<std::string> fresh_probed;
  auto undo = [&] {
    // What this add probed goes; a device that was there stays, stopped (see remove_guest).
    for (const auto& u : fresh)
      stop_port(u, events_,
                std::find(fresh_probed.begin(), fresh_probed.end(), device_name(u.spec)) !=
                    fresh_probed.end());
    for (const auto& d : fresh_probed) rte_eal_hotplug_remove("vdev", d.c_str());  // best effort
  };
  GuestChange change(worker_count());
  change.guest = gi;
  for (unsigned n = 0; n < spec.nics.size(); ++n) {
    const NicConfig& nic = spec.nics[n];
    UnitPlan u;
    u.guest = gi;
    u.nic = n;
    u.mac = nic.mac;
    u.has_mac = nic.has_mac;
    u.vlan = nic.vlan;
    for (unsigned r = 0; r < kCompareRoles; ++r) {
      const std::string dev = device_name(nic.ports[r]);
      uint16_t id = 0;
      if (rte_eth_dev_get_port_by_name(dev.c_str(), &id) != 0) {
        if (is_pci_address(dev) || rte_dev_probe(nic.ports[r].c_str()) != 0 ||
            rte_eth_dev_get_port_by_name(dev.c_str(), &id) != 0) {
          error = "config key 'guests." + gc.name + ".nics." + std::to_string(n) + "." +
                  std::string(to_string(static_cast<PortRole>(r))) + "': cannot create device '" +
                  nic.ports[r] + "'";
          undo();
          return false;
        }
        fresh_probed.push_back(dev);
      }
      u.port[r] = id;
      bool known = false;
      for (const auto& used : plan_.used) known = known || used.port == id;
      for (const auto& used : fresh) known = known || used.port == id;
      if (!known) {
        PortPlan::Used used{id, static_cast<PortRole>(r), nic.ports[r], false};
        if (!start_port(cfg_, plan_, used, pool_, events_, error)) {
          undo();
          return false;
        }
        fresh.push_back(used);
        RxPort rx;
        rx.port = id;
        rx.role = static_cast<PortRole>(r);
        rx.rxq_first = 0;
        rx.rxq_count = plan_.nrx[id];
        change.rx_add.push_back(rx);
      }
    }
    change.units.push_back(u);
  }
  // An engine per NIC for every worker, made here (off the workers' path).
  change.engines.resize(worker_count());
  for (unsigned w = 0; w < worker_count(); ++w) {
    for (size_t n = 0; n < change.units.size(); ++n) {
      auto e = Engine::create(spec.engine, error);
      if (!e) {
        error = "guest '" + gc.name + "' engine settings: " + error;
        undo();
        return false;
      }
      change.engines[w].push_back(std::move(e));
    }
  }
  // RSS: each worker reads its own queue of a new port, as of the others.
  if (plan_.rss) {
    for (auto& rx : change.rx_add) rx.rxq_count = 1;
  }
  // Its own schedulers (checked with the configuration above), taken by the workers with
  // the change.
  if (gc.has_qos()) {
    std::vector<QosGuestPort> mine;
    for (const UnitPlan& u : change.units)
      for (unsigned r = 0; r < kCompareRoles; ++r)
        if (!gc.qos[r].empty()) mine.push_back(QosGuestPort{gi, static_cast<PortRole>(r), u.port[r]});
    std::vector<std::string> names;
    for (const auto& g : guests_) names.push_back(g.name);
    names.push_back(spec.name);
    if (!qos_->add_guest(static_cast<int>(gi), gc, mine, names, worker_count(), change.qos_add, error)) {
      undo();
      return false;
    }
  }
  for (auto& used : fresh) plan_.used.push_back(used);
  for (auto& u : change.units) plan_.units.push_back(u);
  guests_.push_back(spec);
  removed_.push_back(false);
  if (cfg_.guests.empty()) {
    Config full = as_guests_config(cfg_);
    full.peers = cfg_.peers;  // still watched by the single pair's link
    cfg_ = std::move(full);
  }
  cfg_.guests.push_back(gc);
  if (qos_) {
    std::vector<std::string> names;
    for (const auto& g : guests_) names.push_back(g.name);
    qos_->set_guests(std::move(names));
  }
  for (auto& d : fresh_probed) probed_.push_back(d);
  if (!sink) sink = std::make_unique<SimulatedCheckpointer>(spec.checkpointer.latency_us * 1000);
  control_->add_guest(spec.name, std::move(sink));
  // RSS workers read queue w of a new port: each worker's copy is adjusted by its id.
  if (!run_guest_change(CtrlMsg::add_guest, change, error)) {
    if (qos_) qos_->undo_add(static_cast<int>(gi));  // no worker took them
    return false;
  }
  return true;
}

bool Dataplane::remove_guest(const std::string& name, std::string& error, HeldPolicy held,
                             uint64_t* released, uint64_t* dropped, uint64_t* qos_sent,
                             uint64_t* qos_dropped) {
  const int gi = guest_index(name);
  if (gi < 0 || removed_[static_cast<unsigned>(gi)]) {
    error = "guest del: no guest '" + name + "'";
    return false;
  }
  const unsigned g = static_cast<unsigned>(gi);
  unsigned live = 0;
  for (size_t i = 0; i < removed_.size(); ++i) live += removed_[i] ? 0 : 1;
  if (live == 1) {
    error = "guest del: '" + name + "' is the last guest (stop lockstepd instead)";
    return false;
  }
  // Ports only this guest's NICs use.
  GuestChange change(worker_count());
  change.guest = g;
  change.held = held;
  std::vector<PortPlan::Used> gone;
  for (const auto& used : plan_.used) {
    if (used.role != PortRole::ext && used.role != PortRole::pvm && used.role != PortRole::svm) continue;
    bool mine = false, others = false;
    for (const auto& u : plan_.units) {
      const bool on = u.port[static_cast<unsigned>(used.role)] == used.port;
      if (!on) continue;
      if (u.guest == g) mine = true;
      else if (!removed_[u.guest]) others = true;
    }
    if (mine && !others && used.port != plan_.port[static_cast<unsigned>(used.role)]) {
      gone.push_back(used);
      change.rx_remove.push_back(static_cast<uint16_t>(used.port));
    }
  }
  if (qos_) change.qos_remove = qos_->own_ports(static_cast<int>(g));
  if (!run_guest_change(CtrlMsg::remove_guest, change, error)) return false;
  // Every worker stopped using the guest's own schedulers: worker 0 retires them (their
  // queues sent or dropped, counted) while their ports still run; then they are freed.
  uint64_t q_sent = 0, q_dropped = 0;
  if (qos_ && !change.qos_remove.empty()) {
    const uint64_t gen = qos_->retire_guest(static_cast<int>(g), held == HeldPolicy::drop);
    if (gen != 0) {
      if (lcores_.empty()) qos_->poll_messages(now_tsc_ns());  // stepped on this thread (tests)
      if (!qos_->wait_applied(gen, 5'000'000'000ull)) {
        std::fprintf(stderr, "lockstepd: worker 0 did not retire guest %s's schedulers within 5 s\n",
                     name.c_str());
        std::abort();  // freeing them under a running worker is not safe
      }
      qos_->free_retired(static_cast<int>(g), q_sent, q_dropped);
    }
  }
  if (qos_sent != nullptr) *qos_sent = q_sent;
  if (qos_dropped != nullptr) *qos_dropped = q_dropped;
  uint64_t rel = 0, drp = 0;
  for (unsigned w = 0; w < worker_count(); ++w) rel += change.released[w], drp += change.dropped[w];
  if (released != nullptr) *released = rel;
  if (dropped != nullptr) *dropped = drp;
  removed_[g] = true;
  control_->remove_guest(g);
  cfg_.guests.erase(std::remove_if(cfg_.guests.begin(), cfg_.guests.end(),
                                   [&](const GuestConfig& c) { return c.name == name; }),
                    cfg_.guests.end());
  for (const auto& used : gone) {
    read_device_stats(last_dev_);
    const std::string dev = device_name(used.spec);
    const auto it = std::find(probed_.begin(), probed_.end(), dev);
    // A device made by guest add goes (a later add makes it again from its devargs); one
    // there from the start (EAL arguments, a PCI NIC) is only stopped: its port stays, so
    // that a later guest add on it (the guest back after its VMs restarted) starts it.
    stop_port(used, events_, it != probed_.end());
    plan_.used.erase(std::remove_if(plan_.used.begin(), plan_.used.end(),
                                    [&](const PortPlan::Used& u) { return u.port == used.port; }),
                     plan_.used.end());
    if (it != probed_.end()) {
      rte_eal_hotplug_remove("vdev", dev.c_str());
      probed_.erase(it);
    }
  }
  return true;
}

void Dataplane::read_device_stats(Report& rep) const {
  for (const auto& used : plan_.used) {
    const unsigned r = static_cast<unsigned>(used.role);
    rte_eth_stats st{};
    if (rte_eth_stats_get(static_cast<uint16_t>(used.port), &st) != 0) continue;
    rep.dev_imissed[r] += st.imissed;
    rep.dev_ierrors[r] += st.ierrors;
    rep.dev_rx_nombuf[r] += st.rx_nombuf;
    rep.dev_oerrors[r] += st.oerrors;
  }
  // net_af_packet: the kernel's drops on a full socket ring, which the PMD does not count.
  const auto kernel = sock_drops_.read();
  for (unsigned r = 0; r < kPortRoleCount; ++r) rep.dev_imissed[r] += kernel[r];
}

void Dataplane::stop_ports(bool close) {
  if (ports_started_) read_device_stats(last_dev_);
  sock_drops_.detach();
  lockstep::dp::stop_ports(plan_, events_, close);
  ports_started_ = false;
}

Report Dataplane::report() const {
  Report rep;
  for (size_t i = 0; i < slots_.size(); ++i) {
    // Stepped on this thread (tests, bench): read the workers directly; on lcores: the
    // snapshot each worker publishes.
    WorkerStats s;
    if (lcores_.empty()) {
      workers_[i]->publish_stats();  // sums its NICs' engines into its stats
      s = workers_[i]->stats();
    } else {
      s = slots_[i]->read();
    }
    rep.workers.push_back(s);
    rep.total += s;
  }
  for (unsigned r = 0; r < kPortRoleCount; ++r) {
    rep.has_port[r] = plan_.port[r] >= 0;
    rep.link_up[r] = events_[r].link_up.load();
    rep.link_down[r] = events_[r].link_down.load();
    rep.queue_state[r] = events_[r].queue_state.load();
  }
  if (cfg_.clock == ClockKind::replay) {
    for (const auto& w : workers_) {
      rep.checkpoint_requests += w->replay_checkpoints_requested();
      rep.checkpoints_done += w->replay_checkpoints_done();
    }
  } else {
    rep.checkpoint_requests = control_->requests_sent();
    rep.checkpoint_coalesced = control_->requests_coalesced();
    rep.checkpoints_done = control_->checkpoints_done();
  }
  rep.guests.resize(guests_.size());
  for (size_t g = 0; g < guests_.size(); ++g) {
    GuestReport& gr = rep.guests[g];
    gr.name = guests_[g].name;
    gr.nics = static_cast<unsigned>(guests_[g].nics.size());
    gr.removed = removed_[g];
    if (g < rep.total.guests.size()) gr.stats = rep.total.guests[g];
    if (cfg_.clock == ClockKind::replay) {
      gr.checkpoint_requests = rep.checkpoint_requests;
      gr.checkpoints_done = rep.checkpoints_done;
    } else {
      const GuestControl& c = control_->guest(static_cast<unsigned>(g));
      gr.epoch = c.epoch;
      gr.outstanding = c.outstanding;
      gr.checkpoint_requests = c.requests_sent;
      gr.checkpoint_coalesced = c.coalesced;
      gr.checkpoints_done = c.done;
    }
  }
  if (ports_started_) {
    read_device_stats(rep);
  } else {
    rep.dev_imissed = last_dev_.dev_imissed;
    rep.dev_ierrors = last_dev_.dev_ierrors;
    rep.dev_rx_nombuf = last_dev_.dev_rx_nombuf;
    rep.dev_oerrors = last_dev_.dev_oerrors;
  }
  rep.pool_size = pool_->size;
  rep.pool_avail = rte_mempool_avail_count(pool_);
  if (jumbo_pool_) {
    rep.pool_size += jumbo_pool_->size;
    rep.pool_avail += rte_mempool_avail_count(jumbo_pool_);
  }
  rep.tsc_hz = rte_get_tsc_hz();
  return rep;
}

}  // namespace lockstep::dp
