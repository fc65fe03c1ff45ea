// A poll-mode worker: one per lcore, one compare engine each. A connection is owned by
// exactly one worker (flow_hash of the canonical key modulo the worker count), so no
// connection state is shared. Everything in Worker is owned by the thread that runs it;
// the only shared things are its SPSC rings and the StatsSlot it publishes to.
//
// Per frame:
//   ext rx  -> private contiguous copy for the SVM -> engine(ingress) -> forward_svm -> svm tx
//           -> the original frame -> pvm tx        (unless the engine says no PVM)
//   pvm rx  -> engine(pvm) -> release -> ext tx    (held frames stay as mbufs in the engine)
//   svm rx  -> engine(svm) -> free
//   host rx -> link tx, link rx -> host tx
// A port with a `qos:` configuration sends through its scheduler (qos_glue.h): worker 0
// owns it; other workers hand their frames for it to worker 0.
#pragma once

#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "compare/engine.h"
#include "dataplane/daemon/lockstepd_config.h"
#include "dataplane/edge/control.h"
#include "dataplane/edge/ports.h"
#include "dataplane/edge/stats.h"
#include "dataplane/edge/tx_buffer.h"
#include "dataplane/qos/qos_glue.h"

namespace lockstep::dp {

inline constexpr unsigned kMaxBurst = 64;
inline constexpr uint8_t kNoRole = 0xff;

// A port this worker reads: its role and rx queues.
struct RxPort {
  uint16_t port = 0;
  PortRole role = PortRole::ext;
  uint16_t rxq_first = 0, rxq_count = 0;
};

struct WorkerSetup {
  unsigned id = 0;
  unsigned count = 1;
  const Config* cfg = nullptr;
  std::array<int, kPortRoleCount> port{};      // per role: the first unit's, host, link; -1 absent
  std::array<uint8_t, RTE_MAX_ETHPORTS> role_of_port{};  // kNoRole when not ours
  std::vector<UnitPlan> units;              // the guests' NICs: one engine each
  unsigned guests = 1;
  bool reads_rx = true;                     // software steering: worker 0 only
  std::vector<RxPort> rx;                   // what this worker reads (empty: nothing)
  uint16_t txq = 0;
  rte_mempool* pool = nullptr;
  rte_mempool* jumbo_pool = nullptr;        // contiguous copies of long frames; may be null
  std::vector<rte_ring*> steer_to;          // worker 0, software steering: ring per worker
  rte_ring* steer_from = nullptr;           // workers 1..N-1, software steering
  WorkerRings ctrl;
  StatsSlot* slot = nullptr;
  const std::atomic<bool>* stop = nullptr;
  int timestamp_offset = -1;                // RX timestamp dynfield (clock=replay)
  uint64_t timestamp_flag = 0;
  QosWorkerLinks qos;                       // scheduled egress ports (none: plain tx)
};

// Frames on a port shared by several guest NICs go to the NIC whose MAC (destination of
// a client frame, source of a VM's frame) and VLAN they carry; a broadcast or multicast
// client frame to every NIC of its VLAN on the port. An open-addressing table of
// (MAC, VLAN) -> unit, sized so that a key is found at its home slot (at most three
// lookups a frame, each one probe where the keys spread without collision).
class UnitClassifier {
 public:
  void add(const UnitPlan& u, unsigned unit);
  // The unit of a frame, -1 when none. `by_destination`: a client frame (ext).
  int lookup(const uint8_t* f, uint32_t len, bool by_destination) const {
    if (len < 14) return -1;
    const uint8_t* mac = by_destination ? f : f + 6;
    const int vid = vlan_of(f, len);
    int u = vid >= 0 ? find(key(mac, vid)) : -1;          // MAC and VLAN
    if (u < 0) u = find(key(mac, -1));                    // MAC, any VLAN
    if (u < 0 && vid >= 0) u = find(key(nullptr, vid));  // VLAN only
    return u;
  }
  // Every unit a broadcast/multicast client frame of VLAN `vid` (-1 untagged) goes to.
  void flood(int vid, std::vector<unsigned>& out) const;
  static int vlan_of(const uint8_t* f, uint32_t len) {
    if (len < 16) return -1;
    const unsigned type = f[12] << 8 | f[13];
    if (type != 0x8100 && type != 0x88a8) return -1;
    return (f[14] << 8 | f[15]) & 0xfff;
  }

 private:
  static uint64_t key(const uint8_t* mac, int vlan) {
    uint64_t k = 0;
    if (mac != nullptr)
      for (unsigned i = 0; i < 6; ++i) k = k << 8 | mac[i];
    return k | static_cast<uint64_t>(vlan + 1) << 48;  // vlan -1 (any): 0
  }
  // Fibonacci hashing: the top bits of the product (the keys of one port differ in a few
  // low MAC bits, which the middle bits of the product spread badly).
  uint64_t slot(uint64_t k) const { return (k * 0x9e3779b97f4a7c15ull) >> shift_; }
  int find(uint64_t k) const {
    if (slots_.empty()) return -1;
    for (uint64_t i = slot(k);; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.key == k) return s.unit;
      if (s.key == ~0ull) return -1;
    }
  }
  // Places `entries` in a table of `cap` slots; false when a key is not at its home slot.
  bool place(const std::vector<std::pair<uint64_t, unsigned>>& entries, size_t cap);
  struct Slot {
    uint64_t key = ~0ull;  // ~0: empty
    uint16_t unit = 0;
  };
  std::vector<Slot> slots_;
  uint64_t mask_ = 0;
  unsigned shift_ = 61;
  std::vector<std::pair<int, unsigned>> all_;  // (vlan, unit) for floods
};

// A guest added or removed live (`guest add|del`), on its way to every worker: the
// control side keeps it alive until each worker set its done flag.
struct GuestChange {
  unsigned guest = 0;
  std::vector<UnitPlan> units;                              // add: the guest's NICs
  std::vector<std::vector<std::unique_ptr<Engine>>> engines;  // add: [worker][nic]
  std::vector<RxPort> rx_add;       // ports new to the dataplane (workers that read rx)
  std::vector<uint16_t> rx_remove;  // ports no guest uses any more
  // remove: the ports of the guest's own schedulers (guests.NAME.qos.ROLE); each worker
  // stops using them once its held output went out (the hub retires them after all did).
  std::vector<uint16_t> qos_remove;
  // add: the guest's own schedulers (guests.NAME.qos.ROLE in its file), made by the hub.
  std::vector<QosHub::Added> qos_add;
  HeldPolicy held = HeldPolicy::release;  // remove: the guest's held PVM output
  std::unique_ptr<std::atomic<bool>[]> done;                // per worker
  // remove: per worker, held PVM output released (sent on) and dropped (--held drop);
  // written by the worker before its done flag.
  std::unique_ptr<uint64_t[]> released, dropped;
  explicit GuestChange(unsigned workers)
      : done(new std::atomic<bool>[workers]), released(new uint64_t[workers]()),
        dropped(new uint64_t[workers]()) {
    for (unsigned w = 0; w < workers; ++w) done[w].store(false);
  }
};

class Worker {
 public:
  // One engine per unit of s.units, in that order.
  Worker(const WorkerSetup& s, std::vector<std::unique_ptr<Engine>> engines);
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Control messages only (then their actions sent): a stepped dataplane's live changes.
  void service_control(uint64_t now_ns);

  // One iteration at time now: control messages, rx, engine, deadlines, tx.
  // Returns the frames handled.
  unsigned poll_once(uint64_t now_ns);

  // Busy-polls with the TSC clock until *stop.
  void run_tsc();

  // clock=replay: merges the ext, pvm and svm inputs by RX timestamp (ties: ext, pvm,
  // svm), runs a simulated checkpointer in the same virtual time, and after the end of
  // every input lets virtual time run on until nothing is held. Returns at the end.
  void run_replay();

  // Shutdown (worker stopped): frames still in the steering ring are handled, then the
  // engine flushes (held PVM output released, the rest dropped, counted), actions are
  // applied and tx buffers sent.
  void finish(uint64_t now_ns);

  void publish_stats();
  // The first unit's engine (the only one of a single-pair configuration).
  Engine& engine() { return *units_.front().engine; }
  const Engine& engine() const { return *units_.front().engine; }
  unsigned unit_count() const { return static_cast<unsigned>(units_.size()); }
  Engine& unit_engine(unsigned u) { return *units_[u].engine; }
  const Engine& unit_engine(unsigned u) const { return *units_[u].engine; }
  unsigned unit_guest(unsigned u) const { return units_[u].guest; }
  const WorkerStats& stats() const { return st_; }
  uint64_t replay_checkpoints_requested() const { return replay_requested_; }
  uint64_t replay_checkpoints_done() const { return replay_done_; }

  static uint64_t tsc_to_ns(uint64_t cycles, uint64_t hz);

 private:
  struct Unit {
    std::unique_ptr<Engine> engine;
    std::array<int, kCompareRoles> port{-1, -1, -1};
    unsigned guest = 0;
    // A removed guest's unit has no engine (its index stays: others keep theirs).
  };
  // What a port is to this worker: its role and its unit, or kClassified (shared port:
  // classifier `cls`).
  static constexpr int16_t kClassified = -2;
  struct PortInfo {
    uint8_t role = kNoRole;
    int16_t unit = -1;
    uint16_t cls = 0;
  };

  void dispatch_rx(PortRole r, rte_mbuf* m, uint64_t now_ns);
  void handle(PortRole r, rte_mbuf* m, uint64_t now_ns);
  void ingress(unsigned unit, rte_mbuf* m, uint64_t now_ns);
  void from_vm(unsigned unit, Side side, rte_mbuf* m, uint64_t now_ns);
  void compare_burst(PortRole r, rte_mbuf** bufs, unsigned n, const uint16_t* unit, unsigned only,
                     uint64_t now_ns);
  // A burst from a port: straight into its unit's engine, or classified per unit first.
  void port_burst(const RxPort& p, rte_mbuf** bufs, unsigned n, uint64_t now_ns);
  // The unit of a frame read on `port` (-1: none matches; dropped, counted by the caller);
  // a flooded client frame is copied to every other unit of its VLAN here.
  int unit_of(uint16_t port, PortRole r, rte_mbuf* m, uint64_t now_ns);
  // A guest being removed: its held PVM output released or dropped, counted.
  struct DelFate {
    bool drop_held = false;
    uint64_t released = 0, dropped = 0;
  };
  // Where an action sends its frame (its unit from the tag).
  void route(const Action& a, uint64_t now_ns, DelFate* del = nullptr);
  void take_requests();
  // port_info_, the classifiers and the other units' tx buffers from the live units.
  void rebuild_ports();
  void add_guest(GuestChange& c, uint64_t now_ns);
  void remove_guest(GuestChange& c, uint64_t now_ns);
  rte_mbuf* private_copy(const rte_mbuf* m);
  rte_mbuf* contiguous(rte_mbuf* m);
  void drop(rte_mbuf* m, DpDrop why);
  void apply_actions(uint64_t now_ns);
  // Every frame leaves through here: the port's scheduler when it has one, else the
  // tx buffer. `traffic` is the frame's role in lockstep, for the scheduler's filters.
  // `port`: the unit's port of that role (a guest NIC's own); schedulers are keyed by
  // egress port id (the top level's on the role's first port, a guest's own on its
  // ports).
  // `guest`: the unit's guest, for the scheduler's `guest NAME` filters (none between
  // the hosts).
  void out(PortRole r, rte_mbuf* m, sched::TrafficRole traffic, uint64_t now_ns) {
    out(r, s_.port[static_cast<unsigned>(r)], m, traffic, now_ns);
  }
  void out(PortRole r, int port, rte_mbuf* m, sched::TrafficRole traffic, uint64_t now_ns,
           unsigned guest = sched::kNoGuest) {
    const unsigned i = static_cast<unsigned>(r);
    if (port >= 0) {
      const auto p = static_cast<unsigned>(port);
      const auto g = static_cast<uint16_t>(guest);
      if (s_.qos.egress[p] != nullptr) return s_.qos.egress[p]->add(m, traffic, now_ns, g);
      if (s_.qos.handoff[p] != nullptr) return handoff_[p].add(m, traffic, g);
    }
    if (port == s_.port[i]) return tx_[i].add(m);
    if (port < 0) return drop(m, DpDrop::tx_full);
    tx_port_[static_cast<unsigned>(port)].add(m);
  }
  void control_messages(uint64_t now_ns);
  void flush_tx(uint64_t now_ns);
  unsigned steer_in(uint64_t now_ns);
  uint64_t frame_ts_ns(const rte_mbuf* m) const;
  void replay_collect_requests(uint64_t now_ns);
  void replay_events_until(uint64_t t_ns);

  WorkerSetup s_;
  std::vector<Unit> units_;
  std::array<PortInfo, RTE_MAX_ETHPORTS> port_info_{};
  std::vector<UnitClassifier> cls_;
  std::vector<unsigned> flood_;  // scratch
  std::array<TxBuffer, kPortRoleCount> tx_{};
  // Ports of the other units (not a role's first): plain tx, counted under their role.
  std::array<TxBuffer, RTE_MAX_ETHPORTS> tx_port_{};
  std::vector<int> other_ports_;
  // Scheduled ports: by port id (workers > 0 hand their frames over), and their list.
  std::array<QosHandoff, RTE_MAX_ETHPORTS> handoff_{};
  std::vector<uint16_t> qos_ports_;
  WorkerStats st_;
  Engine::Sink sink_;  // every unit's engine: actions, requests, wake times (by unit)
  uint64_t last_publish_tsc_ = 0;
  uint64_t publish_interval_tsc_ = 0;

  // clock=replay: the simulated checkpointer, in virtual time.
  bool replay_pending_ = false;
  uint64_t replay_due_ns_ = 0;
  // advance() at least this often even with no deadline due: idle and closed connections
  // expire (the engine's deadlines are its held frames', fragments' and modes').
  uint64_t next_housekeep_ns_ = 0;
  uint64_t replay_latency_ns_ = 0;
  uint64_t replay_requested_ = 0, replay_done_ = 0;
};

}  // namespace lockstep::dp
