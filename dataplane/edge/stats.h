// Dataplane counters: per worker, per port role and per reason. A worker writes only its
// own WorkerStats; it publishes a copy (with its engine's counters) through a seqlock a
// few times a second, which the control thread and the live display read. Readers sum.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "compare/counters.h"
#include "dataplane/daemon/lockstepd_config.h"

namespace lockstep::dp {

// Why the dataplane (not the engine) dropped a frame. Declared once.
#define LOCKSTEP_DP_DROPS(X)                                                             \
  X(mirror_nomem, "no mbuf for the SVM copy of a client frame: the frame is dropped")    \
  X(too_long, "frame longer than an mbuf's data room: cannot be made contiguous")        \
  X(steer_full, "software steering ring to the owning worker full")                      \
  X(tx_full, "tx queue still full after the bounded retries")                            \
  X(pvm_not_mirrored, "client frame not sent to the PVM (engine: no PVM after failover)") \
  X(ctrl_ring_full, "checkpoint request could not be posted to the control thread")       \
  X(unclassified, "frame on a port shared by guests that matches no guest NIC (mac/vlan)") \
  X(guest_del_held, "held PVM output of a guest removed with 'guest del --held drop'")

enum class DpDrop : uint8_t {
#define LOCKSTEP_X(name, help) name,
  LOCKSTEP_DP_DROPS(LOCKSTEP_X)
#undef LOCKSTEP_X
      count_
};
inline constexpr unsigned kDpDropCount = static_cast<unsigned>(DpDrop::count_);
std::string_view to_string(DpDrop d);

struct PortCounters {
  uint64_t rx = 0, rx_bytes = 0;
  uint64_t tx = 0, tx_bytes = 0;
  uint64_t tx_dropped = 0;  // not sent after the bounded retries (also in drops[tx_full])
  uint64_t tx_retries = 0;  // extra tx_burst calls on a full queue
};

// One guest's share of a worker: its NICs' engines summed.
struct GuestStats {
  Counters engine;
  uint64_t held_frames = 0;
  uint64_t frames = 0;                 // frames into its engines
  uint64_t checkpoint_requests_posted = 0;
  uint64_t checkpoints_applied = 0;
  // `guest del`: its held PVM output released (sent) or dropped (--held drop).
  uint64_t del_released = 0, del_dropped = 0;
  GuestStats& operator+=(const GuestStats& o);
};

struct WorkerStats {
  std::array<PortCounters, kPortRoleCount> port{};
  std::array<uint64_t, kDpDropCount> drops{};
  uint64_t frames = 0;        // frames handled (rx + steered in)
  uint64_t steered_out = 0;   // frames handed to another worker
  uint64_t busy_cycles = 0;   // TSC cycles in polls that handled frames
  uint64_t idle_cycles = 0;   // TSC cycles in empty polls
  uint64_t polls = 0;
  uint64_t checkpoint_requests_posted = 0;
  uint64_t checkpoints_applied = 0;
  uint64_t settings_applied = 0;   // live settings snapshots in force on this worker
  uint64_t settings_refused = 0;   // snapshots its engine could not apply (kept the old)
  Counters engine;
  uint64_t held_frames = 0;
  std::vector<GuestStats> guests;  // by guest index (sized at start, never resized after)

  WorkerStats& operator+=(const WorkerStats& o);
};

// Single writer (the worker), many readers; readers retry while a write is in flight.
class StatsSlot {
 public:
  // Room for every guest: a publish never reallocates what a reader may be copying.
  StatsSlot() { data_.guests.reserve(kMaxGuests); }
  void publish(const WorkerStats& s);
  WorkerStats read() const;

 private:
  alignas(64) std::atomic<uint32_t> seq_{0};
  WorkerStats data_;
};

// Link events seen by the interrupt thread, per role (vhost attach/detach, tap up/down).
struct PortEvents {
  std::atomic<uint64_t> link_up{0}, link_down{0}, queue_state{0};
  std::atomic<bool> up{false};
};

// One guest in a Report.
struct GuestReport {
  std::string name;
  unsigned nics = 0;
  bool removed = false;              // `guest del`: its counters as they were
  uint64_t epoch = 0;
  bool outstanding = false;          // a checkpoint request with its checkpointer
  uint64_t checkpoint_requests = 0, checkpoint_coalesced = 0, checkpoints_done = 0;
  GuestStats stats;                  // summed over the workers
};

// What the daemon prints at exit and writes with --stats-json.
struct Report {
  std::vector<WorkerStats> workers;
  WorkerStats total;
  std::array<uint64_t, kPortRoleCount> link_up{}, link_down{}, queue_state{};
  std::array<bool, kPortRoleCount> has_port{};
  // Device counters (rte_eth_stats) at the last read: frames the device itself dropped.
  std::array<uint64_t, kPortRoleCount> dev_imissed{}, dev_ierrors{}, dev_rx_nombuf{}, dev_oerrors{};
  uint64_t checkpoint_requests = 0;  // sent to the checkpointer (coalesced across workers)
  uint64_t checkpoint_coalesced = 0;
  uint64_t checkpoints_done = 0;
  uint64_t pool_size = 0, pool_avail = 0;
  uint64_t tsc_hz = 0;
  std::vector<GuestReport> guests;   // every guest, in configuration order

  std::string text() const;
  std::string json() const;
};

}  // namespace lockstep::dp
