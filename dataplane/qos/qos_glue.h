// The egress scheduler on DPDK ports: what sits between a worker and a port that
// carries a `qos:` configuration (dataplane/qos/sched is the pure core).
//
//   worker -> out(role, port, mbuf, traffic) -> QosEgress (by port id): classify (filters, traffic role),
//            enqueue in bursts -> Scheduler -> dequeue what it allows at now -> tx_burst
//
// Traffic roles. The worker tags each frame with its role as its path tells it (proxy,
// svm_output); frames between the hosts come tagged `other`, and the classifier's parse
// of the frame (done once, for the filters anyway) is matched against the role map
// (sched/roles.h, `qos.roles`) to give them theirs (heartbeat, checkpoint, ...). The
// map is one for the dataplane, changed live like the ports' configurations.
//
// Ownership. A port's scheduler shapes the whole port, so it has one owner: worker 0.
// It owns the QosEgress (QosPort, staging arrays, frames the device did not take) and
// transmits on its own tx queue. Other workers hand their frames for that port to it
// over an MP/SC ring (QosHandoff). The control side (QosHub, on ctrl/control threads,
// serialised by a mutex) validates commands on its copy of each port's QosConfig and
// publishes the new value over an SPSC ring to worker 0, which calls reconcile() between
// bursts: queued packets are kept (a deleted class's backlog moves, counted).
//
// Bounds. At most one burst of frames taken from the scheduler and refused by the
// device waits (in order) for the next poll; the scheduler's queues are bounded by its
// limits; every refusal is counted per class and reason by the scheduler, and what
// never reached a class (handoff ring full) here. No allocation, virtual call or
// std::function per packet. At finish every queued frame is freed (pools end full).
#pragma once

#include <rte_mbuf.h>
#include <rte_ring.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "dataplane/daemon/lockstepd_config.h"
#include "dataplane/edge/stats.h"
#include "dataplane/qos/sched/qos_port.h"
#include "dataplane/qos/sched/roles.h"

namespace lockstep::dp {

inline constexpr unsigned kQosBurst = 64;

// Counters of the glue, per egress port (the scheduler counts per class and reason).
struct QosGlueCounters {
  uint64_t frames_in = 0;       // frames given to the scheduler (after handoff)
  uint64_t handed_off = 0;      // frames other workers passed over the handoff ring
  uint64_t handoff_full = 0;    // dropped: the handoff ring to the owner was full
  uint64_t sched_refused = 0;   // refused by the scheduler (per class/reason there)
  uint64_t tx_sent = 0, tx_bytes = 0;
  uint64_t tx_deferred = 0;     // frames the device did not take at once (sent later)
  uint64_t reconciles = 0;      // configurations applied between bursts
  uint64_t reconcile_errors = 0;
  uint64_t freed_at_stop = 0;   // queued frames freed at finish
  uint64_t roles_applied = 0;   // role maps applied between bursts
  uint64_t del_sent = 0;        // `guest del` of a guest's own scheduler: queued frames sent
  uint64_t del_dropped = 0;     // ... or dropped (--held drop, or the device refused them)
  std::array<uint64_t, sched::kTrafficRoleCount> role_frames{};  // frames in, by traffic role
};

// One egress port's scheduler, owned by worker 0.
class QosEgress {
 public:
  QosEgress(PortRole port_role, const sched::SchedConfig& limits, const sched::QosConfig& initial);
  QosEgress(const QosEgress&) = delete;
  QosEgress& operator=(const QosEgress&) = delete;

  // Called by the owner worker once it knows its tx queue and counters.
  void attach(int port_id, uint16_t txq, PortCounters* counters);

  // Stages one frame; a full stage is classified and enqueued at now. `guest`: the
  // guest whose NIC it leaves (filters `guest NAME`), sched::kNoGuest for none.
  void add(rte_mbuf* m, sched::TrafficRole traffic, uint64_t now_ns, uint16_t guest = sched::kNoGuest) {
    if (n_in_ == kQosBurst) enqueue_staged(now_ns);
    in_[n_in_] = m;
    in_role_[n_in_] = static_cast<uint8_t>(traffic);
    in_guest_[n_in_] = guest;
    ++n_in_;
  }
  // Takes frames other workers handed over (handoff ring), enqueues what is staged,
  // then sends what the scheduler allows at now. Returns frames sent.
  unsigned service(uint64_t now_ns);
  // Applies a configuration value between bursts (keeps every queued packet).
  void reconcile(const sched::QosConfig& target, uint64_t now_ns);
  // Finish: everything staged, handed over, queued or deferred is freed (counted).
  void drain_and_free(uint64_t now_ns);
  // `guest del` of the guest whose scheduler this is (every worker stopped using it):
  // everything staged, handed over, queued or deferred is sent now, unshaped (`drop`
  // false; what the device does not take within a few tries is freed) or freed, each
  // frame counted in del_sent or del_dropped.
  void retire(bool drop, uint64_t now_ns);

  uint64_t next_ready_ns(uint64_t now_ns) { return qos_.scheduler().next_ready_ns(now_ns); }
  const sched::QosPort& port() const { return qos_; }
  sched::QosPort& port() { return qos_; }
  const QosGlueCounters& counters() const { return ctr_; }
  PortRole role() const { return role_; }
  void set_handoff(rte_ring* r) { handoff_ = r; }
  // The role map frames tagged `other` are resolved with (owned by the hub, read and
  // changed only on the owner's thread); null: they stay `other`.
  void set_roles(const sched::RoleMap* m) { roles_ = m; }
  // Enqueues what is staged (a role map change applies to frames staged after it).
  void flush_staged(uint64_t now_ns) { enqueue_staged(now_ns); }
  void count_roles_applied() { ++ctr_.roles_applied; }

 private:
  void enqueue_staged(uint64_t now_ns);
  unsigned transmit(uint64_t now_ns);

  PortRole role_;
  sched::QosPort qos_;
  int port_id_ = -1;
  uint16_t txq_ = 0;
  PortCounters* port_ctr_ = nullptr;
  rte_ring* handoff_ = nullptr;
  const sched::RoleMap* roles_ = nullptr;
  QosGlueCounters ctr_;
  std::array<rte_mbuf*, kQosBurst> in_{};
  std::array<uint8_t, kQosBurst> in_role_{};
  std::array<uint16_t, kQosBurst> in_guest_{};
  uint32_t n_in_ = 0;
  std::array<sched::Packet, kQosBurst> pkts_{};
  std::array<uint64_t, kQosBurst> handles_{};
  std::array<rte_mbuf*, kQosBurst> pend_{};  // taken from the scheduler, not yet sent
  uint32_t pend_first_ = 0, pend_n_ = 0;
};

// A frame on its way from a worker to the port owner, with its traffic role (bits 0..7)
// and its guest (bits 8..23).
struct QosHandoffElem {
  rte_mbuf* m;
  uint64_t role;
  sched::TrafficRole traffic() const { return static_cast<sched::TrafficRole>(role & 0xff); }
  uint16_t guest() const { return static_cast<uint16_t>(role >> 8); }
};
static_assert(sizeof(QosHandoffElem) == 16);

// Worker w > 0: stages frames for a scheduled port and passes them to worker 0.
class QosHandoff {
 public:
  void init(rte_ring* ring, QosGlueCounters* shared_drops) {
    ring_ = ring;
    drops_ = shared_drops;
  }
  void add(rte_mbuf* m, sched::TrafficRole traffic, uint16_t guest = sched::kNoGuest) {
    if (n_ == kQosBurst) flush();
    buf_[n_++] = QosHandoffElem{m, static_cast<uint64_t>(traffic) | (uint64_t{guest} << 8)};
  }
  void flush();

 private:
  rte_ring* ring_ = nullptr;
  QosGlueCounters* drops_ = nullptr;  // handoff_full, counted atomically (several writers)
  std::array<QosHandoffElem, kQosBurst> buf_{};
  uint32_t n_ = 0;
};

// control -> worker 0
struct QosMsg {
  enum Kind : uint32_t { reconcile, show, role_map, retire_release, retire_drop };
  uint32_t kind = reconcile;
  uint32_t sched = 0;  // the scheduler's index in the hub
  uint32_t last = 1;   // reconcile: the last message of its generation (acknowledges it)
  uint32_t reserved = 0;
  uint64_t generation = 0;
  const sched::QosConfig* cfg = nullptr;  // reconcile: kept alive by the hub until acked
  const sched::RoleMap* roles = nullptr;  // roles: kept alive by the hub until acked
};
static_assert(sizeof(QosMsg) % 8 == 0);

// What `show` reports for one port, filled on worker 0.
struct QosShowResult {
  std::string port;   // the port's role ("ext"): the device word of its lines
  std::string guest;  // a guest's own scheduler (guests.NAME.qos.ROLE); empty: top level
  int port_id = -1;
  bool role_first = true;  // the top level's scheduler on the role's first port (no port_id label)
  std::string text;  // tc -s style
  sched::QosConfig config;
  sched::PortStats port_stats;
  struct Class {
    std::string name;
    sched::ClassStats stats;
  };
  std::vector<Class> classes;
  QosGlueCounters glue;
  uint64_t generation = 0;
};

// What a worker needs to reach the schedulers, by egress port id.
struct QosWorkerLinks {
  std::array<QosEgress*, RTE_MAX_ETHPORTS> egress{};  // worker 0: the ports it schedules
  std::array<rte_ring*, RTE_MAX_ETHPORTS> handoff{};  // workers > 0: ring to worker 0
  QosGlueCounters* handoff_drops = nullptr;       // workers > 0 (atomic increments)
  class QosHub* hub = nullptr;                    // worker 0: control messages
};

// A port a guest's NIC uses for a role (what guests.NAME.qos.ROLE schedules).
struct QosGuestPort {
  unsigned guest = 0;
  PortRole role = PortRole::ext;
  int port = -1;
};

// The scheduled ports of one Dataplane, keyed by egress port id: created from Config.qos
// (qos.ROLE: the role's first port, every frame sent on it whichever guest's NIC it
// leaves, and each other port of the role several guests' NICs share, where `guest
// NAME` filters tell them apart) and the guests' own sections (guests.NAME.qos.ROLE: each port of that role only
// this guest's NICs use). Owns the schedulers (used by worker 0), the handoff rings and
// the control side's configuration copies. A scheduler is addressed by its role's name
// and its guest (-1: the top level's); a role with several scheduled ports (shared ones
// of the top level, a guest's own) has one scheduler per port, configured alike.
class QosHub {
 public:
  static constexpr int kTopLevel = -1;
  // Null (and no error) when no port has a qos configuration. `guest_ports`: every
  // (guest, role, port) of the guests' NICs.
  static std::unique_ptr<QosHub> create(const Config& cfg, const std::array<int, kPortRoleCount>& port,
                                        const std::vector<QosGuestPort>& guest_ports,
                                        unsigned workers, std::string& error);
  static std::unique_ptr<QosHub> create(const Config& cfg, const std::array<int, kPortRoleCount>& port,
                                        unsigned workers, std::string& error) {
    return create(cfg, port, {}, workers, error);
  }
  ~QosHub();
  QosHub(const QosHub&) = delete;
  QosHub& operator=(const QosHub&) = delete;

  QosWorkerLinks links(unsigned worker);

  // ---- control side (any control thread)
  // Port names (roles) that carry a scheduler of the top level, or of guest `guest`.
  std::vector<std::string> ports(int guest = kTopLevel) const;
  // Every scheduler: (guest index or kTopLevel, role name), in order (metrics).
  std::vector<std::pair<int, std::string>> schedulers() const;
  // Validates one tc-style command for `port` on the control copy and publishes the
  // result to worker 0. Returns the generation (0 + error when refused).
  uint64_t apply(const std::string& port, const std::string& command, std::string& error) {
    return apply(kTopLevel, port, command, error);
  }
  // The same for guest `guest`'s own scheduler(s) of that role (kTopLevel: the top level's).
  uint64_t apply(int guest, const std::string& port, const std::string& command, std::string& error);
  // True once worker 0 has applied `generation`; waits up to timeout_ns.
  bool wait_applied(uint64_t generation, uint64_t timeout_ns) const;
  // Asks worker 0 for the port's state; waits up to timeout_ns for the answer.
  bool show(const std::string& port, bool stats, uint64_t timeout_ns, QosShowResult& out,
            std::string& error);
  // The same for a guest's own scheduler(s) of that role: one result per port.
  bool show(int guest, const std::string& port, bool stats, uint64_t timeout_ns,
            std::vector<QosShowResult>& out, std::string& error);
  // The control copy of a port's configuration (what `apply` validates against).
  bool config(const std::string& port, sched::QosConfig& out) const { return config(kTopLevel, port, out); }
  bool config(int guest, const std::string& port, sched::QosConfig& out) const;
  // The guest's name, for messages ("" for kTopLevel).
  std::string guest_name(int guest) const;
  // One role map command ("add [pref N] ROLE MATCH...", "replace pref N ...", "del pref
  // N"; sched/roles.h), validated on the control copy and published to worker 0.
  // Returns the generation (0 + error when refused).
  uint64_t apply_role(const std::string& command, std::string& error);
  // The control copy of the role map.
  sched::RoleMap roles() const;
  // The dataplane's guests by index (a filter's `guest NAME`): set when one is added.
  void set_guests(std::vector<std::string> names);

  // `guest del`, after every worker took the change (and stopped using the guest's
  // schedulers): asks worker 0 to retire them (their queued frames sent now, or dropped,
  // counted). Returns the generation to wait for (wait_applied; a stepped dataplane
  // calls poll_messages itself), 0 when the guest has none.
  uint64_t retire_guest(int guest, bool drop);
  // Then: frees them (rings and schedulers); what their queued frames became.
  void free_retired(int guest, uint64_t& sent, uint64_t& dropped);
  // The ports of a guest's own schedulers (live ones).
  std::vector<uint16_t> own_ports(int guest) const;
  // `guest add` with a qos section (guests.NAME.qos.ROLE): creates the guest's schedulers
  // on `ports` (its own, of each role the section names; checked by validate), with
  // `names` the guests' names then. Worker 0 takes them at the guest change
  // (attach_worker); until then nothing uses them. False + error naming the key.
  struct Added {
    unsigned sched = 0;
    uint16_t port = 0;
    PortRole role = PortRole::ext;
    QosEgress* egress = nullptr;
    rte_ring* handoff = nullptr;
  };
  bool add_guest(int guest, const GuestConfig& gc, const std::vector<QosGuestPort>& ports,
                 const std::vector<std::string>& names, unsigned workers, std::vector<Added>& out,
                 std::string& error);
  // The change did not reach the workers: frees what add_guest made.
  void undo_add(int guest);
  // Worker 0, taking a guest change: its view of a scheduler added live.
  void attach_worker(unsigned sched, QosEgress* e) {
    if (sched < n_worker_.load(std::memory_order_acquire)) sched_[sched].live = e;
  }

  // ---- worker 0
  void poll_messages(uint64_t now_ns);
  // Finish (after every worker finished): frees all that is still queued or handed over.
  void finish(uint64_t now_ns);

 private:
  QosHub() = default;
  // The schedulers of (guest, role name), in order; empty when none.
  std::vector<unsigned> find(int guest, const std::string& port) const;
  std::string no_scheduler(int guest, const std::string& port) const;
  std::vector<std::string> ports_locked(int guest) const;  // under mu_
  std::string guest_name_locked(int guest) const;          // under mu_
  bool show_one(unsigned sched, bool stats, uint64_t timeout_ns, QosShowResult& out, std::string& error);
  // `index`: where it went (a freed slot is taken again).
  bool add_scheduler(PortRole role, int port, int guest, const sched::QosConfig& qc, unsigned workers,
                     std::string& error, bool live_now = true, unsigned* index = nullptr);

  // One scheduler: an egress port, its role, its guest (kTopLevel: qos.ROLE).
  struct Sched {
    PortRole role = PortRole::ext;
    int port = -1;
    int guest = kTopLevel;
    bool first = false;  // the top level's on the role's first port
    bool removed = false;  // under mu_: retired and freed (its guest deleted)
    QosEgress* live = nullptr;  // worker 0's view: null once retired (read by worker 0 only)
    uint64_t del_sent = 0, del_dropped = 0;  // written by worker 0 before its ack
    std::unique_ptr<QosEgress> egress;
    rte_ring* handoff = nullptr;
    sched::QosConfig control_cfg;  // under mu_
  };

  sched::SchedConfig limits_;
  sched::RoleMap roles_control_;  // under mu_
  sched::RoleMap roles_worker_;   // worker 0's (the egresses point at it)
  // Slots never move: reserved for kMaxSched, appended (or a freed one taken again)
  // under mu_ by the control side; worker 0 looks at the first n_worker_ only
  // (published with release).
  static constexpr unsigned kMaxSched = 4 * RTE_MAX_ETHPORTS;
  std::vector<Sched> sched_;
  std::atomic<unsigned> n_worker_{0};
  QosGlueCounters handoff_drops_;
  rte_ring* msgs_ = nullptr;  // QosMsg, SPSC: control (under mu_) -> worker 0

  mutable std::mutex mu_;
  std::vector<std::string> guest_names_;  // under mu_ (create: before any other thread)
  struct Published {
    uint64_t generation;
    std::unique_ptr<sched::QosConfig> cfg;
    std::unique_ptr<sched::RoleMap> roles;
  };
  std::vector<Published> published_;  // alive until worker 0 acknowledged them
  uint64_t next_generation_ = 1;
  std::atomic<uint64_t> applied_{0};

  // show: one request at a time (under mu_); worker 0 fills show_ and raises show_done_.
  QosShowResult show_;
  bool show_stats_ = false;
  std::atomic<uint64_t> show_asked_{0}, show_done_{0};
};

}  // namespace lockstep::dp
