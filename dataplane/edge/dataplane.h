// The dataplane as a whole, after EAL start-up: the packet pool, the ports, the workers
// (one engine each), the steering and control rings, and the control plane. lockstepd
// runs it on lcores; tests and the bench drive it step by step on one thread.
#pragma once

#include <rte_mempool.h>

#include <array>
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/daemon/lockstepd_config.h"
#include "dataplane/edge/control.h"
#include "dataplane/edge/packet_socket_drops.h"
#include "dataplane/edge/ports.h"
#include "dataplane/edge/stats.h"
#include "dataplane/edge/worker.h"
#include "dataplane/qos/qos_glue.h"

namespace lockstep::dp {

class Dataplane {
 public:
  // The EAL is up and the devices exist. Creates the pool (or uses `pool` when given:
  // tests share one), configures and starts the ports, builds the workers.
  // `sink`: the checkpointer (lockstepd's link to a real one); null: the simulated one.
  static std::unique_ptr<Dataplane> create(const Config& cfg, std::string& error,
                                           rte_mempool* pool = nullptr,
                                           std::unique_ptr<CheckpointSink> sink = nullptr);
  // Many guests: one checkpointer per guest (resolve_guests order); a null one is
  // simulated with the guest's checkpointer.latency_us.
  static std::unique_ptr<Dataplane> create(const Config& cfg, std::string& error,
                                           rte_mempool* pool,
                                           std::vector<std::unique_ptr<CheckpointSink>> sinks);
  ~Dataplane();
  Dataplane(const Dataplane&) = delete;
  Dataplane& operator=(const Dataplane&) = delete;

  // lockstepd: launches worker i on the i-th EAL worker lcore (needs workers + 1 lcores;
  // the main lcore runs the control loop).
  bool launch(std::string& error);
  // The control loop on the calling thread until stop() or (clock=replay) the end of
  // the inputs; `tick` is called about every `tick_ms` (live display).
  void run_control(void (*tick)(Dataplane&, void*), void* arg, unsigned tick_ms);
  void request_stop() { stop_.store(true); }
  bool stopping() const { return stop_.load(); }
  // Waits for the workers, then finishes each one (flush, apply, send), on this thread.
  void join_and_finish();

  // Live (control thread; workers on lcores or stepped): guest `gc` added with its own
  // checkpointer (null: simulated). A single-pair configuration serves the pair as the
  // guest `default`: a new guest has ports of its own, or shares one of default's only
  // when default has a MAC/VLAN (ports.mac, ports.vlan). Its NICs' new ports are probed (virtual devices) and
  // started, every worker gets an engine per NIC. False + error, nothing changed, when
  // it cannot (a name taken, a port rule broken, a device that does not start).
  bool add_guest(const GuestConfig& gc, std::unique_ptr<CheckpointSink> sink, std::string& error);
  // Live: every worker flushes the guest's NICs (held PVM output released, the rest
  // dropped, counted) and forgets them; ports no other guest uses are stopped and their
  // virtual devices removed. The guest's final counters stay in the report (removed).
  // `held`: release (as at shutdown) or drop the guest's held PVM output (counted,
  // drops.guest_del_held); `released`/`dropped` (when given) receive how many.
  // The guest's own schedulers (guests.NAME.qos.ROLE) are retired once every worker
  // took the change, before its ports stop: their queued frames sent at once, or with
  // --held drop dropped; `qos_sent`/`qos_dropped` (when given) receive how many.
  bool remove_guest(const std::string& name, std::string& error,
                    HeldPolicy held = HeldPolicy::release, uint64_t* released = nullptr,
                    uint64_t* dropped = nullptr, uint64_t* qos_sent = nullptr,
                    uint64_t* qos_dropped = nullptr);
  bool guest_removed(unsigned g) const { return g < removed_.size() && removed_[g]; }

  // Tests and the bench: one iteration of control and every worker on this thread.
  void step(uint64_t now_ns);
  // Tests: stop without lcores (finish every worker at now_ns).
  void finish(uint64_t now_ns);

  // Stops and closes the ports (frees mbufs held by PMD queues).
  void stop_ports(bool close = true);

  Report report() const;
  ControlPlane& control() { return *control_; }
  Worker& worker(unsigned i) { return *workers_[i]; }
  unsigned worker_count() const { return static_cast<unsigned>(workers_.size()); }
  rte_mempool* pool() const { return pool_; }
  const PortPlan& plan() const { return plan_; }
  const Config& config() const { return cfg_; }
  const std::vector<GuestSpec>& guests() const { return guests_; }
  // The guest index of a name; -1 when none.
  int guest_index(std::string_view name) const {
    for (size_t g = 0; g < guests_.size(); ++g)
      if (guests_[g].name == name) return static_cast<int>(g);
    return -1;
  }
  // The egress schedulers (ports with a `qos:` section); null when there are none.
  QosHub* qos() { return qos_.get(); }

 private:
  Dataplane() = default;
  static int lcore_main(void* arg);

  // Runs a live change on every worker and waits (bounded) until each has done it.
  bool run_guest_change(CtrlMsg::Kind kind, GuestChange& c, std::string& error);

  Config cfg_;
  std::vector<GuestSpec> guests_;
  std::vector<bool> removed_;  // by guest index (removed guests keep theirs)
  std::vector<std::string> probed_;  // virtual devices added live (removed with their guest)
  PortPlan plan_;
  rte_mempool* pool_ = nullptr;
  bool own_pool_ = false;
  rte_mempool* jumbo_pool_ = nullptr;
  bool ports_started_ = false;
  bool finished_ = false;
  std::array<PortEvents, kPortRoleCount> events_{};
  void read_device_stats(Report& rep) const;
  mutable PacketSocketDrops sock_drops_;  // net_af_packet ports: kernel ring drops
  Report last_dev_{};  // device counters kept from before the ports were closed
  std::vector<std::unique_ptr<StatsSlot>> slots_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<WorkerRings> rings_;
  std::vector<rte_ring*> steer_rings_;
  std::unique_ptr<ControlPlane> control_;
  std::unique_ptr<QosHub> qos_;
  std::vector<unsigned> lcores_;
  std::atomic<bool> stop_{false};
  std::atomic<unsigned> replay_done_{0};
};

}  // namespace lockstep::dp
