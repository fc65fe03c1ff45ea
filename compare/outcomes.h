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
#include <memory>
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
    grow(4096);
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
  // Inline and without a call: every frame queues at least one action. The queue grows
  // (doubling) only for a caller that lets more than its initial 4,096 actions pile up.
  // With a sink (Engine::attach_sink) the actions go to the sink's queue, tagged.
  [[gnu::always_inline]] void emit(uint64_t handle, ActionKind kind, uint8_t reason, Side side) {
    if (sink_ != nullptr) {
      sink_->push_back(Action{handle, kind, reason, side, tag_});
      return;
    }
    if (size_ == cap_) [[unlikely]] grow(cap_ * 2);
    Action& a = buf_[size_++];
    a.handle = handle;
    a.kind = kind;
    a.reason = reason;
    a.side = side;
    a.tag = 0;
  }
  // From now on actions go to `q` tagged `tag` (Engine::attach_sink); what waits moves too.
  void redirect(std::vector<Action>* q, uint16_t tag) {
    for (size_t i = head_; i < size_; ++i) {
      q->push_back(buf_[i]);
      q->back().tag = tag;
    }
    size_ = head_ = 0;
    sink_ = q;
    tag_ = tag;
  }

  uint32_t drain(std::span<Action> out) {
    const size_t n = std::min(out.size(), size_ - head_);
    const Action* from = buf_.get() + head_;
    if (n <= 4) {
      // The usual drain (a pair, a frame or two): element copies, not a memmove call.
      for (size_t i = 0; i < n && i < 4; ++i) out[i] = from[i];
    } else {
      std::copy_n(from, n, out.begin());
    }
    head_ += n;
    if (head_ == size_) {
      size_ = 0;
      head_ = 0;
    } else if (head_ > 4096 && head_ * 2 > size_) {
      compact();
    }
    return static_cast<uint32_t>(n);
  }
  uint32_t pending() const { return static_cast<uint32_t>(size_ - head_); }

 private:
  void count_drop(Side side, DropReason why);
  void compact();
  [[gnu::noinline, gnu::cold]] void grow(size_t cap);
  void leave(Held& h);  // the reassembly buffer goes back, if any

  HeldStore& held_;
  Held* const pool_;  // held_'s pool (HeldStore::pool)
  FragTable& frags_;
  Counters& c_;
  std::unique_ptr<Action[]> buf_;  // the queue: [head_, size_) not yet drained
  size_t size_ = 0;
  size_t cap_ = 0;
  std::vector<Action>* sink_ = nullptr;  // a sink's queue (then buf_ stays empty)
  uint16_t tag_ = 0;
  size_t head_ = 0;
  uint64_t now_ = 0;
};

}  // namespace lockstep
