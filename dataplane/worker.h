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
#include "dataplane/config.h"
#include "dataplane/control.h"
#include "dataplane/qos_glue.h"
#include "dataplane/stats.h"
#include "dataplane/tx_buffer.h"

namespace lockstep::dp {

inline constexpr unsigned kMaxBurst = 64;
inline constexpr uint8_t kNoRole = 0xff;

struct WorkerSetup {
  unsigned id = 0;
  unsigned count = 1;
  const Config* cfg = nullptr;
  std::array<int, kRoleCount> port{};      // port id per role, -1 when absent
  std::array<uint8_t, RTE_MAX_ETHPORTS> role_of_port{};  // kNoRole when not ours
  bool reads_rx = true;                     // software steering: worker 0 only
  std::array<uint16_t, kRoleCount> rxq_first{}, rxq_count{};  // rx queues this worker reads
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

class Worker {
 public:
  Worker(const WorkerSetup& s, std::unique_ptr<Engine> engine);
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

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
  Engine& engine() { return *engine_; }
  const Engine& engine() const { return *engine_; }
  const WorkerStats& stats() const { return st_; }
  uint64_t replay_checkpoints_requested() const { return replay_requested_; }
  uint64_t replay_checkpoints_done() const { return replay_done_; }

  static uint64_t tsc_to_ns(uint64_t cycles, uint64_t hz);

 private:
  void dispatch_rx(Role r, rte_mbuf* m, uint64_t now_ns);
  void handle(Role r, rte_mbuf* m, uint64_t now_ns);
  void ingress(rte_mbuf* m, uint64_t now_ns);
  void from_vm(Side side, rte_mbuf* m, uint64_t now_ns);
  void engine_burst(Role r, rte_mbuf** bufs, unsigned n, uint64_t now_ns);
  rte_mbuf* private_copy(const rte_mbuf* m);
  rte_mbuf* contiguous(rte_mbuf* m);
  void drop(rte_mbuf* m, DpDrop why);
  void apply_actions(uint64_t now_ns);
  // Every frame leaves through here: the port's scheduler when it has one, else the
  // tx buffer. `traffic` is the frame's role in lockstep, for the scheduler's filters.
  void out(Role r, rte_mbuf* m, sched::Role traffic, uint64_t now_ns) {
    const unsigned i = static_cast<unsigned>(r);
    if (s_.qos.egress[i] != nullptr) s_.qos.egress[i]->add(m, traffic, now_ns);
    else if (s_.qos.handoff[i] != nullptr) handoff_[i].add(m, traffic);
    else tx_[i].add(m);
  }
  void post_checkpoint_requests();
  void control_messages(uint64_t now_ns);
  void flush_tx(uint64_t now_ns);
  unsigned steer_in(uint64_t now_ns);
  uint64_t frame_ts_ns(const rte_mbuf* m) const;
  void replay_collect_requests(uint64_t now_ns);
  void replay_events_until(uint64_t t_ns);

  WorkerSetup s_;
  std::unique_ptr<Engine> engine_;
  std::array<TxBuffer, kRoleCount> tx_{};
  std::array<QosHandoff, kRoleCount> handoff_{};
  WorkerStats st_;
  std::array<Action, kMaxBurst> actions_{};
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
