// Datagrams (DESIGN.md §5.4): UDP, ICMP, other IP protocols and, under non_ip_policy
// = compare, non-IP frames. Per flow, PVM and SVM datagrams are matched FIFO by equal
// compared bytes (UDP payload; ICMP type, code and body; the whole datagram for other
// protocols; the whole frame for non-IP). A PVM datagram is released once it and every
// PVM datagram of the flow that arrived before it are matched: release keeps arrival
// order even when the SVM's copies come reordered.
//
// Divergence: a datagram unmatched for compare_timeout, or more than
// datagram_reorder_slack unmatched datagrams on both sides of a flow at once.
#include <cstring>

#include "compare/engine_impl.h"

namespace lockstep {

const uint8_t* EngineImpl::compared_bytes(const Held& h) const {
  if (h.reasm != kNil) return frags_[h.reasm].buf.data() + h.payload_off;
  return h.data + h.payload_off;
}

bool EngineImpl::dgram_equal(const Held& a, const Held& b) {
  if (a.payload_len == b.payload_len && a.seq == b.seq &&
      std::memcmp(compared_bytes(a), compared_bytes(b), a.payload_len) == 0) {
    return true;
  }
  // Rules configured: equal outside spans that pair up by rule (block mode).
  return norm_ && a.seq == b.seq && norm_dgram_equal(a, b);
}

void EngineImpl::dgram_output(uint32_t ci, uint32_t idx, uint64_t now) {
  Conn& c = conns_[ci];
  Held& h = held_[idx];
  const bool pvm = h.side == Side::pvm;
  if (c.diverged) {
    if (pvm) list_push(c.pvm, idx);
    else drop_frame(idx, DropReason::svm_backlog_flushed);
    return;
  }
  if (pvm) {
    uint32_t prev = kNil;
    for (uint32_t s = c.svm.head; s != kNil; prev = s, s = held_[s].next) {
      if (dgram_equal(h, held_[s])) {
        list_remove(c.svm, s, prev);
        free_svm_frame(s);
        --c.unmatched_svm;
        h.matched = true;
        ++c_.datagrams_matched;
        break;
      }
    }
    list_push(c.pvm, idx);
    if (!h.matched) {
      ++c.unmatched_pvm;
      arm_deadline(idx, now + timeout_ns_);
    }
  } else {
    bool matched = false;
    for (uint32_t p = c.pvm.head; p != kNil; p = held_[p].next) {
      Held& hp = held_[p];
      if (!hp.matched && dgram_equal(hp, h)) {
        hp.matched = true;
        timers_.cancel(p);
        --c.unmatched_pvm;
        ++c_.datagrams_matched;
        matched = true;
        break;
      }
    }
    if (matched) {
      free_svm_frame(idx);
    } else {
      list_push(c.svm, idx);
      ++c.unmatched_svm;
      arm_deadline(idx, now + timeout_ns_);
    }
  }
  dgram_release_prefix(c);
  const uint32_t both = c.unmatched_pvm < c.unmatched_svm ? c.unmatched_pvm : c.unmatched_svm;
  if (both > settings_.datagram_reorder_slack) {
    diverge(ci, CheckpointReason::datagram_mismatch, now);
  } else if (c.pvm.count > settings_.reorder_window || c.svm.count > settings_.reorder_window) {
    diverge(ci, CheckpointReason::window_full, now);
  }
}

void EngineImpl::dgram_release_prefix(Conn& c) {
  while (c.pvm.head != kNil && held_[c.pvm.head].matched) {
    release_frame(list_pop(c.pvm), ReleaseReason::matched);
  }
}

}  // namespace lockstep
