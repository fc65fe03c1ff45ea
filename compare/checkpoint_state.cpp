// Checkpoint and epoch state (checkpoint_state.h).
#include "compare/checkpoint_state.h"

#include <algorithm>

namespace lockstep {

bool CheckpointState::request(CheckpointReason reason, const FlowKey* flow, uint64_t now) {
  ++c_.checkpoint_triggers;
  if (outstanding_) return false;
  outstanding_ = true;
  CheckpointRequest r;
  r.epoch = epoch_;
  r.reason = reason;
  r.t_ns = now;
  if (flow) {
    r.flow = *flow;
    r.has_flow = true;
  }
  pending_ = r;
  ++c_.checkpoint_requests;
  ++c_.checkpoint_reason[static_cast<unsigned>(reason)];
  return true;
}

bool CheckpointState::accept_done(uint64_t epoch) {
  if (epoch < epoch_) {
    ++c_.checkpoint_done_stale;
    return false;
  }
  ++c_.checkpoints_done;
  return true;
}

void CheckpointState::complete(uint64_t epoch) {
  epoch_ = epoch + 1;
  outstanding_ = false;
  pending_.reset();
}

bool CheckpointState::hybrid_note(uint64_t now, uint64_t window_ns) {
  const size_t n = times_.size();
  times_[times_head_] = now;
  times_head_ = (times_head_ + 1) % n;
  const uint64_t oldest = times_[times_head_];  // n checkpoints ago
  if (oldest != 0 && now - oldest <= window_ns) {
    std::fill(times_.begin(), times_.end(), 0);
    return true;
  }
  return false;
}

void CheckpointState::resize_hybrid(uint64_t threshold) {
  times_.assign(std::max<uint64_t>(1, threshold), 0);
  times_head_ = 0;
}

}  // namespace lockstep
