#include "dataplane/dataplane.h"

#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf_dyn.h>
#include <rte_ring.h>

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
  dp->qos_ = QosHub::create(cfg, dp->plan_.port, n, error);
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
  for (unsigned r = 0; r < kRoleCount; ++r) rep.dev_imissed[r] += kernel[r];
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
  for (unsigned r = 0; r < kRoleCount; ++r) {
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
