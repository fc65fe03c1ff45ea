// The held-frame store: the pool every frame the engine keeps lives in, the FIFO lists
// that order held frames (per connection and side, per datagram being reassembled,
// frames held without a connection), and each held frame's deadline (a timer wheel over
// pool indices).
//
// Owns the pool (max_held_frames plus a reserve of one eighth, sized at creation, never
// grown), its free list, the timers and the held_* gauges. Invariants: a frame is live
// from alloc() to free(); it sits on at most one list; it has at most one timer, which
// free() cancels. The bytes are the caller's (engine.h): a Held keeps a pointer. Past
// the soft limit alloc() still succeeds from the reserve, and requests a held_full
// checkpoint: the reserve absorbs frames until it completes.
#pragma once

#include <cstdint>
#include <vector>

#include "compare/checkpoint_state.h"
#include "compare/counters.h"
#include "compare/seqnum.h"
#include "compare/timer_wheel.h"
#include "compare/types.h"

namespace lockstep {

inline constexpr uint32_t kNil = UINT32_MAX;

// A frame the engine holds: PVM output waiting for its match, SVM output waiting for
// the PVM's, or an SVM-bound client frame waiting for the ack offset.
struct Held {
  uint64_t handle = 0;
  uint8_t* data = nullptr;
  uint32_t len = 0;
  uint32_t next = kNil;       // next in the owner's list (arrival order) or the free list
  uint32_t conn = kNil;       // owning connection, kNil for frames held without one
  uint32_t frag_next = kNil;  // further fragments of the same datagram (datagram groups)
  SeqNum seq;                 // TCP: start of the stream extent in PVM space
  SeqNum ack;                 // TCP, PVM: the client byte it acknowledges up to (has_ack)
  uint32_t ext = 0;           // TCP: SYN + payload + FIN + RST positions it occupies
  uint32_t payload_off = 0;   // offset of compared bytes in `data` (or in the reasm buffer)
  uint32_t payload_len = 0;
  uint32_t reasm = kNil;      // reassembly buffer holding the compared bytes, if any
  uint64_t arrival_ns = 0;
  uint8_t tcp_flags = 0;
  Side side = Side::pvm;
  bool matched = false;       // datagram matched, waiting for earlier ones to go
  bool deadline_fired = false;
  bool untranslated = false;  // SVM segment stored with its raw sequence number
  bool has_ack = false;       // TCP, PVM: ACK flag set, `ack` meaningful
  bool sack_wait = false;     // TCP, PVM: SACK blocks the SVM has not acknowledged yet
  bool ack_waited = false;    // TCP, PVM: the SVM had not acknowledged its ACK on arrival
  bool retransmit = false;    // TCP, PVM: every position already matched on arrival
  bool live = false;
};

// Singly linked FIFO of held frames.
struct HeldList {
  uint32_t head = kNil, tail = kNil, count = 0;
};

class HeldStore {
 public:
  // `max_held`: the soft limit; the pool holds an eighth more (plus 64).
  HeldStore(uint64_t max_held, Counters& c, CheckpointState& cp)
      : pool_(static_cast<uint32_t>(max_held + max_held / 8 + 64)),
        timers_(static_cast<uint32_t>(pool_.size())),
        soft_limit_(static_cast<uint32_t>(max_held)),
        c_(c),
        cp_(cp) {
    for (uint32_t i = static_cast<uint32_t>(pool_.size()); i-- > 0;) {
      pool_[i].next = free_;
      free_ = i;
    }
  }

  Held& operator[](uint32_t idx) { return pool_[idx]; }
  const Held& operator[](uint32_t idx) const { return pool_[idx]; }
  // The pool's first frame: it never moves (sized once), so a part on the per-frame
  // path may keep the pointer instead of reaching through the store each time.
  Held* pool() { return pool_.data(); }

  // A live frame, or kNil when the pool (reserve included) is exhausted.
  uint32_t alloc(Side side, uint64_t handle, uint8_t* data, uint32_t len, uint64_t now) {
    const uint32_t idx = free_;
    if (idx == kNil) return kNil;
    if (used_ + 1 >= soft_limit_) cp_.request(CheckpointReason::held_full, nullptr, now);
    Held& h = pool_[idx];
    free_ = h.next;
    h = Held{};
    h.handle = handle;
    h.data = data;
    h.len = len;
    h.side = side;
    h.arrival_ns = now;
    h.live = true;
    ++used_;
    switch (side) {
      case Side::pvm: ++c_.held_pvm; break;
      case Side::svm: ++c_.held_svm; break;
      case Side::ingress: ++c_.held_ingress; break;
    }
    return idx;
  }

  void free(uint32_t idx) {
    Held& h = pool_[idx];
    timers_.cancel(idx);
    switch (h.side) {
      case Side::pvm: --c_.held_pvm; break;
      case Side::svm: --c_.held_svm; break;
      case Side::ingress: --c_.held_ingress; break;
    }
    h.live = false;
    h.next = free_;
    free_ = idx;
    --used_;
  }

  // Whether one more frame would stay below the soft limit (no held_full request).
  bool room_for_one() const { return used_ + 1 < soft_limit_; }
  uint32_t used() const { return used_; }
  size_t capacity() const { return pool_.size(); }

  void push(HeldList& l, uint32_t idx) {
    pool_[idx].next = kNil;
    if (l.tail == kNil) l.head = idx;
    else pool_[l.tail].next = idx;
    l.tail = idx;
    ++l.count;
  }
  uint32_t pop(HeldList& l) {
    const uint32_t idx = l.head;
    if (idx == kNil) return kNil;
    l.head = pool_[idx].next;
    if (l.head == kNil) l.tail = kNil;
    --l.count;
    pool_[idx].next = kNil;
    return idx;
  }
  // Unlinks idx, whose predecessor in l is prev (kNil: idx is the head).
  void remove(HeldList& l, uint32_t idx, uint32_t prev) {
    const uint32_t next = pool_[idx].next;
    if (prev == kNil) l.head = next;
    else pool_[prev].next = next;
    if (l.tail == idx) l.tail = prev;
    --l.count;
    pool_[idx].next = kNil;
  }

  // Deadlines: at most one per frame; arming again moves it.
  void arm(uint32_t idx, uint64_t when) { timers_.schedule(idx, when); }
  void cancel(uint32_t idx) { timers_.cancel(idx); }
  template <class Fire>
  void expire(uint64_t now, Fire&& fire) { timers_.expire(now, static_cast<Fire&&>(fire)); }
  uint64_t earliest() const { return timers_.earliest(); }
  bool due(uint64_t now) const { return timers_.due(now); }
  uint64_t earliest_bound() const { return timers_.earliest_bound(); }  // <= earliest()

  size_t memory_bytes() const { return pool_.size() * (sizeof(Held) + 24 /* timer nodes */); }

 private:
  std::vector<Held> pool_;
  TimerWheel timers_;
  uint32_t free_ = kNil;
  uint32_t used_ = 0;
  uint32_t soft_limit_ = 0;
  Counters& c_;
  CheckpointState& cp_;
};

}  // namespace lockstep
