// Normalization inside the engine: the TCP compare loop for connections that rules
// apply to, datagram equality with spans, and the slot bookkeeping (attach, detach,
// rebase, live rule changes). The rules, databases and streams are in normalize.cpp.
//
// TCP. Each side of a connection with rules has a Hyperscan stream that sees that
// side's bytes in stream order, scanned just before the compare point passes them
// (so before their segments can be released). PVM positions are PVM sequence numbers;
// SVM positions are the SVM's own numbers (raw = PVM position + seq_offset). Matches are
// recorded as spans per side in a small ring (normalize.h).
//
// The compare runs as in tcp_stream.cpp until bytes (or element kinds) differ at a
// position X. Then, per connection:
//
//            bytes equal: cmp moves on (scanned first)
//               ┌───┐
//               ▼   │
//   ┌──────── comparing ◄──────────────────────────────────────────────┐
//   │ mismatch at X │                                                  │ pair found:
//   ▼               │                                                  │ cmp = PVM span end,
//   resolve(X): scan both sides up to X + max_span (as far as bytes    │ seq_offset += SVM
//   are there). A pair = a PVM span starting at or before X and an SVM │ length - PVM length,
//   span of the same rule starting at the same position (raw - offset),│ held SVM segments
//   one of them covering X ───────────────────────────────────────────►┘ renumbered
//   │ no pair, and both sides scanned X + max_span past X (or ended by FIN/RST):
//   │   no span can still cover X ──► diverge (payload_mismatch / event_mismatch)
//   │ no pair yet, bytes missing on a side:
//   └──► waiting(X): nothing is released past X; every new segment of the connection
//        runs resolve(X) again; the held PVM frame's deadline ends the wait (deadline)
//
// A checkpoint (rebase) or a rule change restarts both streams at the compare point:
// both sides then see the same bytes from the same position, so spans stay symmetric.
// Client acks to the SVM use the offset in force at their position: an ack before
// the end of the last length-changing span keeps the previous offset.
//
// Datagrams: block mode over the compared bytes of each datagram; equal iff the bytes
// outside the spans are equal and the spans pair up by rule, in order.
#include <cstring>

#include "compare/engine_impl.h"

namespace lockstep {

namespace {

constexpr unsigned kPvm = 0, kSvm = 1;

uint32_t first_difference(const uint8_t* a, const uint8_t* b, uint32_t n) {
  uint32_t i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return i;
}

}  // namespace

void EngineImpl::norm_install(std::unique_ptr<Normalizer> n) {
  // Per-rule counters follow their rule by name across a change.
  const auto old = c_.normalize;
  const auto old_names = c_.normalize_names;
  c_.normalize = {};
  if (n && old_names) {
    for (size_t i = 0; i < n->rules().size(); ++i) {
      for (size_t j = 0; j < old_names->size() && j < kMaxNormRules; ++j) {
        if ((*old_names)[j] == n->rules()[i].name) c_.normalize[i] = old[j];
      }
    }
  }
  c_.normalize_names = n ? n->names() : nullptr;
  if (n) ++c_.normalize_compiles;
  norm_ = std::move(n);
  ++norm_gen_;  // every connection chooses again; slots of the old rules are gone
  c_.normalize_conns = 0;
  c_.normalize_state_bytes = 0;
}

void EngineImpl::norm_detach(Conn& c) {
  if (c.norm != kNil && norm_ && c.norm_gen == norm_gen_) {
    norm_->detach(c.norm);
    --c_.normalize_conns;
    c_.normalize_state_bytes -= norm_->bytes_per_conn();
  }
  c.norm = kNil;
  c.norm_gen = 0;
}

void EngineImpl::norm_rebase(Conn& c) {
  if (c.norm != kNil && norm_ && c.norm_gen == norm_gen_) norm_->conn(c.norm).started = false;
}

uint32_t EngineImpl::norm_ack_offset(const Conn& c, uint32_t pvm_pos) const {
  if (!norm_ || c.norm_gen != norm_gen_) return c.seq_offset;
  const NormConn& n = norm_->conn(c.norm);
  if (n.has_prev && before(SeqNum(pvm_pos), n.prev_until)) return n.prev_offset;
  return c.seq_offset;
}

bool EngineImpl::norm_scan(Conn& c, unsigned side, SeqNum target) {
  NormConn& n = norm_->conn(c.norm);
  NormSide& sd = n.side[side];
  if (sd.failed) return false;
  const uint32_t off = side == kSvm ? c.seq_offset : 0;
  const HeldList& list = side == kSvm ? c.svm : c.pvm;
  sd.floor = c.cmp + off;
  while (!sd.ended && before(sd.scan, target)) {
    const SeqNum at = sd.scan - off;  // in PVM space, where held segments are numbered
    uint32_t idx = find_cover(held_, list, at);
    if (idx == kNil) break;
    Elem e = elem_at(held_[idx], at);
    if (e.kind == ElemKind::data) {
      if (!norm_->scan(c.norm, side, e.bytes, e.avail, c_)) return false;
    } else if (e.kind == ElemKind::syn) {
      norm_->skip_position(c.norm, side);
    } else {
      sd.ended = true;  // FIN or RST: no byte follows
    }
  }
  return true;
}

EngineImpl::NormVerdict EngineImpl::norm_resolve(Conn& c) {
  NormConn& n = norm_->conn(c.norm);
  const SeqNum x = c.cmp;
  const uint32_t span = norm_->max_span();
  if (!norm_scan(c, kPvm, x + span) || !norm_scan(c, kSvm, x + c.seq_offset + span)) {
    return NormVerdict::diverge;  // no trustworthy spans: byte for byte
  }
  const NormSide& p = n.side[kPvm];
  const NormSide& s = n.side[kSvm];
  for (unsigned i = 0; i < p.count; ++i) {
    const NormSpan& sp = p.spans[i];
    if (after(sp.from, x)) continue;
    for (unsigned j = 0; j < s.count; ++j) {
      const NormSpan& ss = s.spans[j];
      if (ss.rule != sp.rule || ss.from - c.seq_offset != sp.from) continue;
      if (!after(sp.to, x) && !after(ss.to - c.seq_offset, x)) continue;
      // Both VMs matched the rule at the same position: the spans are equal.
      const uint32_t len_p = static_cast<uint32_t>(sp.to.since(sp.from));
      const uint32_t len_s = static_cast<uint32_t>(ss.to.since(ss.from));
      NormRuleCounters& rc = c_.normalize[sp.rule];
      ++rc.spans;
      rc.bytes += len_p;
      c.cmp = sp.to;
      if (len_s != len_p) {
        // From the span's end on, SVM = PVM + the new offset: renumber the SVM's held
        // segments (positions before the end are behind cmp and go as matched).
        const uint32_t d = len_s - len_p;
        ++rc.offsets;
        n.has_prev = true;
        n.prev_offset = c.seq_offset;
        n.prev_until = sp.to;
        c.seq_offset += d;
        for (uint32_t idx = c.svm.head; idx != kNil; idx = held_[idx].next) {
          Held& h = held_[idx];
          if (!h.untranslated) h.seq = h.seq - d;
        }
      }
      n.waiting = false;
      return NormVerdict::skipped;
    }
  }
  const bool p_done = p.ended || !before(p.scan, x + span);
  const bool s_done = s.ended || !before(s.scan, x + c.seq_offset + span);
  if (p_done && s_done) {
    n.waiting = false;
    return NormVerdict::diverge;
  }
  if (!n.waiting || n.wait_at != x) {
    ++c_.normalize_deferred;
    n.waiting = true;
    n.wait_at = x;
  }
  return NormVerdict::wait;
}

bool EngineImpl::norm_tcp_compare(uint32_t ci, uint64_t now) {
  Conn& c = conns_[ci];
  if (c.norm_gen != norm_gen_) {
    // Once per connection (and per rule change): do any rules apply?
    c.norm_gen = norm_gen_;
    c.norm = kNil;
    const uint64_t mask = norm_->mask_for(c.key);
    if (mask != 0) {
      c.norm = norm_->attach(mask);
      if (c.norm == kNil) {
        ++c_.normalize_no_slot;
      } else {
        ++c_.normalize_conns;
        c_.normalize_state_bytes += norm_->bytes_per_conn();
      }
    }
  }
  if (c.norm == kNil) return false;
  // The SVM's numbers must be known (or both sides unnumbered, mid-stream) to place
  // its stream; until then the plain loop runs (it cannot compare untranslated data).
  if (!c.offset_known && (c.pvm_syn || c.svm_syn)) return false;
  NormConn& n = norm_->conn(c.norm);
  if (!n.started) norm_->start(c.norm, c.cmp, c.cmp + c.seq_offset);
  if (n.side[kPvm].failed || n.side[kSvm].failed) return false;

  for (;;) {
    uint32_t p = find_cover(held_, c.pvm, c.cmp);
    if (p == kNil) break;
    uint32_t s = find_cover(held_, c.svm, c.cmp);
    if (s == kNil) break;
    Elem ep = elem_at(held_[p], c.cmp);
    Elem es = elem_at(held_[s], c.cmp);
    if (ep.kind == es.kind) {
      const uint32_t len = ep.kind == ElemKind::data ? (ep.avail < es.avail ? ep.avail : es.avail)
                                                     : 1;
      // Scan before cmp passes these positions: their segments may then be released.
      if (!norm_scan(c, kPvm, c.cmp + len) || !norm_scan(c, kSvm, c.cmp + c.seq_offset + len)) {
        break;  // scan error: counted; the plain loop takes over below
      }
      if (ep.kind != ElemKind::data) {
        c.cmp += 1;
        ++c_.events_compared;
        continue;
      }
      const uint32_t same = first_difference(ep.bytes, es.bytes, len);
      c.cmp += same;
      c.bytes_matched += same;
      c_.bytes_compared += same;
      if (same == len) continue;
    }
    // Elements differ at c.cmp.
    const bool data = ep.kind == ElemKind::data || es.kind == ElemKind::data;
    switch (data ? norm_resolve(c) : NormVerdict::diverge) {
      case NormVerdict::skipped: continue;
      case NormVerdict::wait:
        tcp_release_matched(c);
        return true;
      case NormVerdict::diverge:
        tcp_release_matched(c);
        diverge(ci, ep.kind != es.kind ? CheckpointReason::event_mismatch
                                       : CheckpointReason::payload_mismatch,
                now);
        return true;
    }
  }
  if (n.side[kPvm].failed || n.side[kSvm].failed) return false;
  tcp_release_matched(c);
  return true;
}

bool EngineImpl::norm_dgram_equal(const Held& a, const Held& b) {
  if (!norm_->has_udp_rules() || a.conn == kNil) return false;
  const Conn& c = conns_[a.conn];
  if (c.kind != ConnKind::datagram) return false;
  const uint64_t mask = norm_->mask_for(c.key);
  if (mask == 0) return false;
  constexpr unsigned kMax = 16;
  NormSpan sa[kMax], sb[kMax];
  const uint8_t* pa = compared_bytes(a);
  const uint8_t* pb = compared_bytes(b);
  const int na = norm_->block_spans(pa, a.payload_len, mask, sa, kMax, c_);
  const int nb = norm_->block_spans(pb, b.payload_len, mask, sb, kMax, c_);
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
