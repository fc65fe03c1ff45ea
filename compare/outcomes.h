// Outcomes: what becomes of the frames. Owns the queue of actions the caller drains
// (engine.h) and the counting of every fate: released (with its reason and, for the
// PVM, the time it was held), dropped (with its reason, per side), SVM output freed,
// client frames forwarded to the SVM. A held frame leaves the engine here: its
// fragments (a reassembled datagram chains them) leave with it, its reassembly buffer
// goes back to the fragment table, its pool slot is freed.
//
// Invariant (conservation, docs/design.md §5.7): every frame given to the
// engine is named in exactly one action, and counted once, with that action.
//
// The latency histograms need the time of release: the engine sets it (set_now) before
// each operation, as the time is an argument everywhere else.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

#include "compare/counters.h"
#include "compare/engine.h"
#include "compare/held_store.h"

namespace lockstep {

class FragTable;

class Outcomes {
 public:
  Outcomes(HeldStore& held, FragTable& frags, Counters& c)
      : held_(held), pool_(held.pool()), frags_(frags), c_(c) {
    out_.reserve(4096);
  }

  uint64_t now() const { return now_; }
  void set_now(uint64_t now) { now_ = now; }
  void advance_now(uint64_t now) { now_ = std::max(now_, now); }

  // Held frames (with their chained fragments) leaving the engine.
  void release_frame(uint32_t idx, ReleaseReason why);
  void drop_frame(uint32_t idx, DropReason why);
  void free_svm_frame(uint32_t idx);
  void forward_ingress(uint32_t idx, bool translated);
  // Frames never held.
  void release_direct(Side side, uint64_t handle, ReleaseReason why) {
    emit(handle, ActionKind::release, static_cast<uint8_t>(why), side);
    ++c_.released[static_cast<unsigned>(why)];
  }
  void drop_direct(Side side, uint64_t handle, DropReason why);
  void free_direct(uint64_t handle) {
    emit(handle, ActionKind::free, 0, Side::svm);
    ++c_.svm_freed;
  }
  void forward_direct(uint64_t handle) {
    emit(handle, ActionKind::forward_svm, 0, Side::ingress);
    ++c_.svm_forwarded;
  }
  void emit(uint64_t handle, ActionKind kind, uint8_t reason, Side side) {
    q_->push_back(Action{handle, kind, reason, side, tag_});
  }
  // From now on actions go to `q` tagged `tag` (Engine::attach_sink); what waits moves too.
  void redirect(std::vector<Action>* q, uint16_t tag) {
    for (size_t i = head_; i < out_.size(); ++i) {
      q->push_back(out_[i]);
      q->back().tag = tag;
    }
    out_.clear();
    head_ = 0;
    q_ = q;
    tag_ = tag;
  }

  uint32_t drain(std::span<Action> out) {
    const size_t n = std::min(out.size(), out_.size() - head_);
    std::copy_n(out_.begin() + static_cast<ptrdiff_t>(head_), n, out.begin());
    head_ += n;
    if (head_ == out_.size()) {
      out_.clear();
      head_ = 0;
    } else if (head_ > 4096 && head_ * 2 > out_.size()) {
      compact();
    }
    return static_cast<uint32_t>(n);
  }
  uint32_t pending() const { return static_cast<uint32_t>(out_.size() - head_); }

 private:
  void count_drop(Side side, DropReason why);
  void compact();
  void leave(Held& h);  // the reassembly buffer goes back, if any

  HeldStore& held_;
  Held* const pool_;  // held_'s pool (HeldStore::pool)
  FragTable& frags_;
  Counters& c_;
  std::vector<Action> out_;
  std::vector<Action>* q_ = &out_;  // where emit() puts actions: out_, or a sink's queue
  uint16_t tag_ = 0;
  size_t head_ = 0;
  uint64_t now_ = 0;
};

}  // namespace lockstep
