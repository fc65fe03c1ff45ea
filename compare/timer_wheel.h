// A hashed timer wheel over caller-owned ids 0..capacity-1 (the engine uses the index
// of a held frame). schedule/cancel are O(1); expire() visits only the slots that time
// has crossed. Entries further away than one revolution stay in their slot and are
// skipped until their time comes. Time is an argument, in nanoseconds.
//
// earliest() walks the slots, so the wheel keeps a lower bound of it (exact right after
// a walk, still a bound when the earliest timer is cancelled: held frames leave in
// about the order they came, each release cancelling the earliest). due(now) answers
// from the bound while it lies in the future and walks only when it does not, about
// once per timeout instead of once per poll.
//
//   slot = (expires >> kGranularityShift) & (kSlots - 1)
//   [slot 0] -> id 7 -> id 3      each slot: intrusive doubly linked list
//   [slot 1] -> (empty)
//   ...
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

namespace lockstep {

class TimerWheel {
 public:
  static constexpr uint32_t kNone = UINT32_MAX;
  static constexpr unsigned kSlots = 1024;                // power of two
  static constexpr unsigned kGranularityShift = 17;       // ~131 us per slot
  static_assert((kSlots & (kSlots - 1)) == 0);

  explicit TimerWheel(uint32_t capacity) : nodes_(capacity), slots_(kSlots, kNone) {}

  bool armed(uint32_t id) const { return nodes_[id].armed; }
  uint64_t expires(uint32_t id) const { return nodes_[id].expires; }
  uint32_t size() const { return count_; }

  void schedule(uint32_t id, uint64_t expires_ns) {
    if (nodes_[id].armed) cancel(id);
    Node& n = nodes_[id];
    n.expires = expires_ns;
    n.armed = true;
    // A time already behind the cursor goes to the cursor's slot, which expire() visits
    // next; otherwise it would wait a whole revolution.
    uint64_t tick = std::max(expires_ns >> kGranularityShift, cursor_);
    uint32_t s = static_cast<uint32_t>(tick & (kSlots - 1));
    n.slot = s;
    n.prev = kNone;
    n.next = slots_[s];
    if (n.next != kNone) nodes_[n.next].prev = id;
    slots_[s] = id;
    ++count_;
    if (expires_ns < bound_) {  // below every other timer: the earliest
      bound_ = expires_ns;
      exact_ = true;
    }
  }

  void cancel(uint32_t id) {
    Node& n = nodes_[id];
    if (!n.armed) return;
    if (n.prev != kNone) nodes_[n.prev].next = n.next;
    else slots_[n.slot] = n.next;
    if (n.next != kNone) nodes_[n.next].prev = n.prev;
    n.armed = false;
    --count_;
    if (count_ == 0) {
      bound_ = UINT64_MAX;
      exact_ = true;
    } else if (n.expires == bound_) {
      exact_ = false;  // still a lower bound
    }
  }

  // Calls fire(id) for every timer with expires <= now (unscheduled before the call).
  template <class Fire>
  void expire(uint64_t now_ns, Fire&& fire) {
    if (count_ == 0) {
      cursor_ = now_ns >> kGranularityShift;
      return;
    }
    uint64_t last = now_ns >> kGranularityShift;
    uint64_t first = cursor_;
    if (last < first) return;
    if (last - first >= kSlots) first = last - kSlots + 1;  // one revolution covers all
    for (uint64_t tick = first; tick <= last && count_ > 0; ++tick) {
      uint32_t id = slots_[tick & (kSlots - 1)];
      while (id != kNone) {
        uint32_t next = nodes_[id].next;
        if (nodes_[id].expires <= now_ns) {
          cancel(id);
          fire(id);
        }
        id = next;
      }
    }
    // The current slot may still hold entries later within it; revisit it next time.
    cursor_ = last;
    if (bound_ <= now_ns && count_ > 0) {  // every timer left is later than now
      bound_ = now_ns + 1;
      exact_ = false;
    }
  }

  // A lower bound of earliest(), in O(1).
  uint64_t earliest_bound() const { return bound_; }

  // Whether a timer is due at now (earliest() <= now), walking only when the bound says
  // it may be.
  bool due(uint64_t now_ns) const { return bound_ <= now_ns && earliest() <= now_ns; }

  // Earliest expiry among armed timers, or UINT64_MAX. Walks the slots forward from the
  // cursor and stops at the first one holding a timer of that very tick (O(slots) at
  // worst); only when every armed timer is more than a revolution away does it look at
  // them all.
  uint64_t earliest() const {
    if (exact_) return bound_;
    bound_ = walk();
    exact_ = true;
    return bound_;
  }

 private:
  uint64_t walk() const {
    if (count_ == 0) return UINT64_MAX;
    for (uint64_t tick = cursor_; tick < cursor_ + kSlots; ++tick) {
      uint64_t best = UINT64_MAX;
      for (uint32_t id = slots_[tick & (kSlots - 1)]; id != kNone; id = nodes_[id].next) {
        if ((nodes_[id].expires >> kGranularityShift) <= tick) best = std::min(best, nodes_[id].expires);
      }
      if (best != UINT64_MAX) return best;
    }
    uint64_t best = UINT64_MAX;
    for (uint32_t head : slots_) {
      for (uint32_t id = head; id != kNone; id = nodes_[id].next) {
        best = std::min(best, nodes_[id].expires);
      }
    }
    return best;
  }

  struct Node {
    uint64_t expires = 0;
    uint32_t next = kNone, prev = kNone;
    uint32_t slot = 0;
    bool armed = false;
  };
  std::vector<Node> nodes_;
  std::vector<uint32_t> slots_;
  uint64_t cursor_ = 0;
  uint32_t count_ = 0;
  // Lower bound of the earliest expiry; exact_ when it is the earliest itself.
  mutable uint64_t bound_ = UINT64_MAX;
  mutable bool exact_ = true;
};

}  // namespace lockstep
