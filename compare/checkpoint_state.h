// Checkpoint and epoch state of one engine: the current epoch, the one outstanding
// checkpoint request per epoch, the mode (and the mode to take at the next checkpoint),
// the failover survivor, and the hybrid policy's ring of recent checkpoint times.
//
// Owns those fields and their invariants: at most one request is outstanding per epoch
// and it keeps the first reason and flow (later triggers are only counted); an epoch
// closes only with a checkpoint-done for it or a later one; after a failover there is no
// request and no mode change. What a checkpoint means for frames and connections (release
// the held output, rebase every connection) is the engine's (engine.cpp), which calls
// complete() once it has done that.
//
// Also here: DivergeDoor, the one way the compare parts (tcp_stream.h, datagram.h)
// report a divergence back to the engine, off the per-frame path.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "compare/counters.h"
#include "compare/engine.h"
#include "compare/flow_key.h"

namespace lockstep {

class CheckpointState {
 public:
  CheckpointState(Counters& c, uint64_t hybrid_threshold) : c_(c) {
    resize_hybrid(hybrid_threshold);
  }

  // Counts the trigger; the first of the epoch becomes the request (true then).
  bool request(CheckpointReason reason, const FlowKey* flow, uint64_t now);
  std::optional<CheckpointRequest> take() {
    auto r = pending_;
    pending_.reset();
    return r;
  }
  bool waiting() const { return pending_.has_value(); }
  // The request waiting to be taken, to be filled in further (explain), or null.
  CheckpointRequest* pending() { return pending_ ? &*pending_ : nullptr; }
  // Checkpoint-done for `epoch`: false (counted stale) for an epoch already closed.
  bool accept_done(uint64_t epoch);
  // After the engine has released and rebased: the next epoch begins.
  void complete(uint64_t epoch);
  // Failover: no request stays outstanding, no mode waits for a checkpoint.
  void clear_for_failover() {
    mode_after_checkpoint.reset();
    outstanding_ = false;
    pending_.reset();
  }

  uint64_t epoch() const { return epoch_; }
  bool outstanding() const { return outstanding_; }

  // Hybrid policy: notes a checkpoint at `now`; true when `threshold` of them came
  // within `window_ns` (the ring is then cleared).
  bool hybrid_note(uint64_t now, uint64_t window_ns);
  void resize_hybrid(uint64_t threshold);
  size_t hybrid_size() const { return times_.size(); }

  // The mode and what goes with it; written by the engine's mode changes.
  Mode mode = Mode::colo;
  std::optional<Mode> mode_after_checkpoint;
  std::optional<Survivor> failed_over;
  uint64_t buffer_since_ns = 0;  // when buffer mode began (hybrid: when to go back)
  bool hybrid_active = false;    // buffer mode was entered by the hybrid policy

 private:
  Counters& c_;
  uint64_t epoch_ = 1;
  bool outstanding_ = false;
  std::optional<CheckpointRequest> pending_;
  std::vector<uint64_t> times_;  // ring of recent checkpoint times
  size_t times_head_ = 0;
};

// How a compare part declares a divergence on connection `ci` (`frame`: the held frame
// whose deadline fired, else kNil): the engine marks the connection, requests the
// checkpoint and explains it. A plain function pointer: divergences are rare, and the
// parts need not know the engine.
struct DivergeDoor {
  void* engine = nullptr;
  void (*fn)(void* engine, uint32_t ci, CheckpointReason reason, uint64_t now,
             uint32_t frame) = nullptr;
  void operator()(uint32_t ci, CheckpointReason reason, uint64_t now,
                  uint32_t frame = UINT32_MAX) const {
    fn(engine, ci, reason, now, frame);
  }
};

}  // namespace lockstep
