// The control side of the dataplane: messages between the control thread and the
// workers (SPSC rings, one pair per worker), the checkpointer interface, and the
// coalescing of checkpoint requests across workers (one outstanding per epoch).
//
// Ownership: ControlPlane and every CheckpointSink live on the control thread (the EAL
// main lcore in lockstepd). Workers never call them; they only touch their own rings.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "compare/engine.h"
#include "compare/types.h"

struct rte_ring;
struct rte_mbuf;
struct rte_mempool;

namespace lockstep::dp {

inline constexpr uint32_t kAllGuests = UINT32_MAX;

// control -> worker
struct CtrlMsg {
  enum Kind : uint32_t {
    checkpoint_done, set_mode, failover, apply_settings, snapshot_conns,
    add_guest, remove_guest,  // settings: a GuestChange (worker.h) the control side keeps alive
  };
  uint32_t kind = checkpoint_done;
  uint32_t arg = 0;           // Mode or Survivor as an integer
  uint32_t guest = kAllGuests;  // the guest it is for (its NICs' engines); kAllGuests: every one
  uint32_t pad_ = 0;
  uint64_t epoch = 0;         // checkpoint_done: the checkpointer's epoch
  // apply_settings: a SettingsSnapshot the control side keeps alive;
  // snapshot_conns: an array of ConnSnapshot, one per worker (indexed by worker id),
  // that the control side keeps alive.
  const void* settings = nullptr;
};

// A live settings change (`config set`, `rules add|del`) on its way to the workers: each
// worker applies `settings` from its control-message handler and answers in its slot
// (indexed by worker id): applied, or refused with the engine's message.
struct SettingsSnapshot {
  enum State : int { pending = 0, applied = 1, refused = 2 };
  struct Answer {
    std::atomic<int> state{pending};
    std::string error;  // written by the worker before state (release)
  };
  SettingsSnapshot(const Settings& s, unsigned workers)
      : settings(s), answers(std::make_unique<Answer[]>(workers)), count(workers) {}
  Settings settings;
  std::unique_ptr<Answer[]> answers;
  unsigned count;
};

// A worker's connection list, asked for by an operator (`conns`): the control side
// reserves `limit` entries, the worker fills them from its control-message handler
// (never per packet) and sets done.
struct ConnSnapshot {
  std::vector<ConnInfo> conns;
  size_t limit = 0;
  std::atomic<bool> done{false};
};
static_assert(sizeof(CtrlMsg) % 4 == 0);

// worker -> control
struct ReqMsg {
  CheckpointRequest req;
  uint32_t worker = 0;
  uint32_t guest = 0;
};
static_assert(sizeof(ReqMsg) % 4 == 0);

// Speaks to the checkpointer. Called on the control thread only, never per packet.
class CheckpointSink {
 public:
  virtual ~CheckpointSink() = default;
  // A checkpoint is needed (the first request of an epoch, across all workers).
  virtual void request(const CheckpointRequest& req, uint64_t global_epoch, uint64_t now_ns) = 0;
  // Polled by the control loop; true (with the epoch) when the checkpointer reports a
  // checkpoint done.
  virtual bool poll_done(uint64_t now_ns, uint64_t& epoch) = 0;
};

// Completes each request `latency_ns` after it was made (as lockstep-replay does).
class SimulatedCheckpointer final : public CheckpointSink {
 public:
  explicit SimulatedCheckpointer(uint64_t latency_ns) : latency_ns_(latency_ns) {}
  void request(const CheckpointRequest& req, uint64_t global_epoch, uint64_t now_ns) override;
  bool poll_done(uint64_t now_ns, uint64_t& epoch) override;

 private:
  uint64_t latency_ns_;
  std::optional<std::pair<uint64_t, uint64_t>> pending_;  // (due, epoch)
};

// `capture start`: the workers' capture slots (g_capture_tap, capture_burst) are in
// dataplane/edge/capture_tap.h.

struct WorkerRings {
  rte_ring* to_worker = nullptr;    // CtrlMsg, SPSC control -> worker
  rte_ring* from_worker = nullptr;  // ReqMsg, SPSC worker -> control
};

// Creates the two rings of a worker; false + error on failure.
bool create_worker_rings(unsigned worker, unsigned size, WorkerRings& out, std::string& error);
void free_worker_rings(WorkerRings& r);

// Told of every checkpoint request and completion (the daemon's event log), on the
// control thread.
class ControlObserver {
 public:
  virtual ~ControlObserver() = default;
  // `coalesced`: another request of this guest's epoch is already with its checkpointer.
  virtual void on_request(unsigned guest, const CheckpointRequest& req, bool coalesced,
                          uint64_t now_ns) = 0;
  // `took_ns`: since the request that opened it; 0 when the checkpointer checkpointed
  // by itself (no request outstanding).
  virtual void on_done(unsigned guest, uint64_t epoch, uint64_t took_ns, uint64_t now_ns) = 0;
};

// One guest's checkpoints: its checkpointer, and the epoch its NICs share on every
// worker (one outstanding request; the others of the epoch are coalesced into it).
struct GuestControl {
  std::string name;
  std::unique_ptr<CheckpointSink> sink;
  uint64_t epoch = 0;
  bool outstanding = false;
  uint64_t requested_ns = 0;  // when the outstanding request was sent
  uint64_t requests_sent = 0, coalesced = 0, done = 0;
  bool removed = false;
};

class ControlPlane {
 public:
  // One sink per guest, in the dataplane's guest order.
  ControlPlane(std::vector<WorkerRings> rings, std::vector<std::string> names,
               std::vector<std::unique_ptr<CheckpointSink>> sinks);
  void set_observer(ControlObserver* o) { observer_ = o; }

  // One control iteration: collect worker requests, coalesce per guest, ask the guests'
  // checkpointers, broadcast completions. Returns true when it did something.
  bool poll(uint64_t now_ns);

  // Broadcasts (operators, ctrl/): every worker gets the message (m.guest: whose NICs).
  bool broadcast(const CtrlMsg& m);
  // Every worker's ring has room for one more message (the control thread is their only
  // producer: a broadcast right after reaches every worker).
  bool room_for_broadcast() const;
  // A request not from a worker (an operator's manual checkpoint): coalesced like the
  // workers' requests.
  void request(const CheckpointRequest& req, uint64_t now_ns) { request(0, req, now_ns); }
  void request(unsigned guest, const CheckpointRequest& req, uint64_t now_ns);

  // Sums over the guests.
  uint64_t requests_sent() const;
  uint64_t requests_coalesced() const;
  uint64_t checkpoints_done() const;
  // The first guest's (the only one of a single-pair configuration).
  uint64_t epoch() const { return guests_.front().epoch; }
  bool outstanding() const { return guests_.front().outstanding; }
  uint64_t broadcast_failures() const { return broadcast_failures_; }
  unsigned guest_count() const { return static_cast<unsigned>(guests_.size()); }
  // Live guests (control thread): a new one's index is the next; a removed one keeps its
  // index and counters, and takes no more requests.
  void add_guest(std::string name, std::unique_ptr<CheckpointSink> sink);
  void remove_guest(unsigned g);
  const GuestControl& guest(unsigned g) const { return guests_[g]; }

 private:
  std::vector<WorkerRings> rings_;
  std::vector<GuestControl> guests_;
  ControlObserver* observer_ = nullptr;
  uint64_t broadcast_failures_ = 0;
};

}  // namespace lockstep::dp
