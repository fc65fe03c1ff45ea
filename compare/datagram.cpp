// Datagram compare (datagram.h; docs/design.md §5.4): UDP, ICMP, other IP protocols
// and, under non_ip_policy = compare, non-IP frames. Per flow, PVM and SVM datagrams
// are matched FIFO by equal compared bytes (UDP payload; ICMP type, code and body; the
// whole datagram for other protocols; the whole frame for non-IP). A PVM datagram is
// released once it and every PVM datagram of the flow that arrived before it are
// matched: release keeps arrival order even when the SVM's copies come reordered.
//
// Divergence: a datagram unmatched for compare_timeout, or more than
// datagram_reorder_slack unmatched datagrams on both sides of a flow at once.
#include <cstring>

#include "compare/datagram.h"

namespace lockstep {

bool DatagramCompare::equal(const Held& a, const Held& b) {
  if (a.payload_len == b.payload_len && a.seq == b.seq &&
      std::memcmp(compared_bytes(a), compared_bytes(b), a.payload_len) == 0) {
    return true;
  }
  // Rules configured: equal outside spans that pair up by rule (block mode).
  return norm_ && a.seq == b.seq && norm_equal(a, b);
}

void DatagramCompare::output(uint32_t ci, uint32_t idx, uint64_t now) {
  Conn& c = conns_[ci];
  Held& h = held_[idx];
  const bool pvm = h.side == Side::pvm;
  if (c.diverged) {
    if (pvm) held_.push(c.pvm, idx);
    else out_.drop_frame(idx, DropReason::svm_backlog_flushed);
    return;
  }
  if (pvm) {
    uint32_t prev = kNil;
    for (uint32_t s = c.svm.head; s != kNil; prev = s, s = held_[s].next) {
      if (equal(h, held_[s])) {
        held_.remove(c.svm, s, prev);
        out_.free_svm_frame(s);
        --c.unmatched_svm;
        h.matched = true;
        ++c_.datagrams_matched;
        break;
      }
    }
    held_.push(c.pvm, idx);
    if (!h.matched) {
      ++c.unmatched_pvm;
      held_.arm(idx, now + t_.timeout_ns);
    }
  } else {
    bool matched = false;
    for (uint32_t p = c.pvm.head; p != kNil; p = held_[p].next) {
      Held& hp = held_[p];
      if (!hp.matched && equal(hp, h)) {
        hp.matched = true;
        held_.cancel(p);
        --c.unmatched_pvm;
        ++c_.datagrams_matched;
        matched = true;
        break;
      }
    }
    if (matched) {
      out_.free_svm_frame(idx);
    } else {
      held_.push(c.svm, idx);
      ++c.unmatched_svm;
      held_.arm(idx, now + t_.timeout_ns);
    }
  }
  release_prefix(c);
  const uint32_t both = c.unmatched_pvm < c.unmatched_svm ? c.unmatched_pvm : c.unmatched_svm;
  if (both > t_.datagram_reorder_slack) {
    diverge_(ci, CheckpointReason::datagram_mismatch, now);
  } else if (c.pvm.count > t_.reorder_window || c.svm.count > t_.reorder_window) {
    diverge_(ci, CheckpointReason::window_full, now);
  }
}

void DatagramCompare::release_prefix(Conn& c) {
  while (c.pvm.head != kNil && held_[c.pvm.head].matched) {
    out_.release_frame(held_.pop(c.pvm), ReleaseReason::matched);
  }
}

// Rules configured (UDP): equal iff the bytes outside the spans are equal and the spans
// pair up by rule, in order (block mode over each datagram's compared bytes).
bool DatagramCompare::norm_equal(const Held& a, const Held& b) {
  if (!norm_->has_rules(kProtoUdp) || a.conn == kNil) return false;
  const Conn& c = conns_[a.conn];
  if (c.kind != ConnKind::datagram) return false;
  const uint64_t mask = norm_->mask_for(c.key);
  if (mask == 0) return false;
  constexpr unsigned kMax = 16;
  NormSpan sa[kMax], sb[kMax];
  const uint8_t* pa = compared_bytes(a);
  const uint8_t* pb = compared_bytes(b);
  const int na = norm_->spans(kProtoUdp, pa, a.payload_len, 0, mask, true, sa, kMax, c_);
  const int nb = norm_->spans(kProtoUdp, pb, b.payload_len, 0, mask, true, sb, kMax, c_);
  if (na <= 0 || na != nb) return false;
  uint32_t ia = 0, ib = 0;
  for (int k = 0; k <= na; ++k) {
    const uint32_t ea = k < na ? sa[k].from.raw() : a.payload_len;
    const uint32_t eb = k < na ? sb[k].from.raw() : b.payload_len;
    if (ea - ia != eb - ib || std::memcmp(pa + ia, pb + ib, ea - ia) != 0) return false;
    if (k < na) {
      if (sa[k].rule != sb[k].rule) return false;
      ia = sa[k].to.raw();
      ib = sb[k].to.raw();
    }
  }
  for (int k = 0; k < na; ++k) {
    NormRuleCounters& rc = c_.normalize[sa[k].rule];
    ++rc.spans;
    const uint32_t la = sa[k].to.raw() - sa[k].from.raw();
    rc.bytes += la;
    if (la != sb[k].to.raw() - sb[k].from.raw()) ++rc.offsets;
  }
  return true;
}

}  // namespace lockstep
