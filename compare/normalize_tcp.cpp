// Normalization inside the engine: the TCP compare loop for connections that rules
// apply to, datagram equality with spans, and the slot bookkeeping (attach, detach,
// rebase, live rule changes). The rules, databases and streams are in normalize.cpp.
//
// TCP. Per connection with rules, each side keeps the last max_span bytes before the
// compare point (its tail, normalize.h). The compare runs as in tcp_stream.cpp, the
// compared bytes going to the tails, until bytes (or element kinds) differ at a
// position X. Then, per connection:
//
//            bytes equal: cmp moves on, tails follow
//               ┌───┐
//               ▼   │
//   ┌──────── comparing ◄──────────────────────────────────────────────┐
//   │ difference at X                                                  │ pair found:
//   ▼                                                                  │ cmp = PVM span end,
//   resolve(X): each side's window [X - max_span, X + max_span) from   │ seq_offset += SVM
//   its tail and its held segments (as far as they are contiguous),   │ length - PVM length,
//   scanned (block mode). A pair = a PVM span starting at or before X  │ held SVM segments
//   and an SVM span of the same rule at the same position (raw -       │ renumbered
//   offset), both ending past X ──────────────────────────────────────►┘
//   │ no pair, and both windows full (max_span bytes past X) or ended by FIN/RST:
//   │   no span can cover X ──► diverge (payload_mismatch / event_mismatch)
//   │ no pair yet, bytes missing on a side:
//   └──► waiting(X): nothing is released past X; every new segment of the connection
//        runs resolve(X) again; the held PVM frame's deadline ends the wait (deadline)
//
// PVM positions are PVM sequence numbers; SVM positions are the SVM's own numbers
// (raw = PVM position + seq_offset). A checkpoint (rebase) or a rule change empties
// both tails at the compare point: both sides then look at the same bytes from the same
// position, so spans stay symmetric. Client acks to the SVM use the offset in force at
// their position: an ack before the end of the last length-changing span keeps the
// previous offset.
//
// Datagrams: block mode over the compared bytes of each datagram; equal iff the bytes
// outside the spans are equal and the spans pair up by rule, in order.
#include <cstring>

#include "compare/tcp_stream.h"

namespace lockstep {

namespace {

constexpr unsigned kPvm = 0, kSvm = 1;

uint32_t first_difference(const uint8_t* a, const uint8_t* b, uint32_t n) {
  uint32_t i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return i;
}

}  // namespace

void TcpStream::norm_install(std::unique_ptr<Normalizer> n) {
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

void TcpStream::norm_detach(Conn& c) {
  if (c.norm != kNil && norm_ && c.norm_gen == norm_gen_) {
    norm_->detach(c.norm);
    --c_.normalize_conns;
    c_.normalize_state_bytes -= norm_->bytes_per_conn();
  }
  c.norm = kNil;
  c.norm_gen = 0;
}

void TcpStream::norm_rebase(Conn& c) {
  if (c.norm != kNil && norm_ && c.norm_gen == norm_gen_) norm_->conn(c.norm).started = false;
}

uint32_t TcpStream::norm_ack_offset(const Conn& c, uint32_t pvm_pos) const {
  if (!norm_ || c.norm_gen != norm_gen_) return c.seq_offset;
  const NormConn& n = norm_->conn(c.norm);
  if (n.has_prev && before(SeqNum(pvm_pos), n.prev_until)) return n.prev_offset;
  return c.seq_offset;
}

// Fills the window of one side around X (PVM space): the tail's bytes from
// X - max_span (or as far back as it goes), then held bytes from X while contiguous, up
// to X + max_span. A sentinel byte first when the window does not start at the stream's
// start, so that `^` cannot match there. Returns the bytes (sentinel included); `skip`
// is 1 with a sentinel, `from` the position of the first real byte, `done` whether no
// further byte can change what the window holds (full, or FIN/RST).
uint32_t TcpStream::norm_window(Conn& c, unsigned side, SeqNum x, uint32_t& skip, SeqNum& from,
                                 bool& done) {
  const uint32_t span = norm_->max_span();
  const uint32_t off = side == kSvm ? c.seq_offset : 0;
  const NormTail& t = norm_->conn(c.norm).tail[side];
  const SeqNum xs = x + off;  // == t.end
  const uint32_t back = t.len < span ? t.len : span;
  from = xs - back;
  skip = t.has_anchor && from == t.anchor ? 0 : 1;
  uint8_t* w = norm_->window(side);
  w[0] = 0;
  uint32_t n = skip + norm_->tail_copy(c.norm, side, from, w + skip);
  const HeldList& list = side == kSvm ? c.svm : c.pvm;
  uint32_t ahead = 0;
  done = false;
  while (ahead < span) {
    const SeqNum at = x + ahead;  // PVM space, where held segments are numbered
    uint32_t idx = find_cover(held_, list, at);
    if (idx == kNil) break;
    Elem e = elem_at(pool_[idx], at);
    if (e.kind != ElemKind::data) {
      done = true;  // FIN or RST: no byte follows (a SYN cannot follow data)
      break;
    }
    const uint32_t k = e.avail < span - ahead ? e.avail : span - ahead;
    std::memcpy(w + n, e.bytes, k);
    n += k;
    ahead += k;
  }
  if (ahead >= span) done = true;
  return n;
}

TcpStream::NormVerdict TcpStream::norm_resolve(Conn& c) {
  NormConn& nc = norm_->conn(c.norm);
  const SeqNum x = c.cmp;
  NormSpan sp[kNormMaxSpans], ss[kNormMaxSpans];
  uint32_t skip[2];
  SeqNum from[2];
  bool done[2];
  int count[2];
  NormSpan* out[2] = {sp, ss};
  for (unsigned side : {kPvm, kSvm}) {
    const uint32_t n = norm_window(c, side, x, skip[side], from[side], done[side]);
    count[side] = norm_->spans(kProtoTcp, norm_->window(side), n, skip[side], nc.mask, false,
                               out[side], kNormMaxSpans, c_);
    if (count[side] < 0) return NormVerdict::diverge;  // no trustworthy spans
  }
  for (int i = 0; i < count[kPvm]; ++i) {
    const SeqNum pf = from[kPvm] + sp[i].from.raw(), pt = from[kPvm] + sp[i].to.raw();
    if (after(pf, x)) continue;
    for (int j = 0; j < count[kSvm]; ++j) {
      if (ss[j].rule != sp[i].rule) continue;
      const SeqNum sf = from[kSvm] + ss[j].from.raw(), st = from[kSvm] + ss[j].to.raw();
      if (sf - c.seq_offset != pf) continue;
      // Both must end past X (bytes before X are compared and may be released; with
      // equal bytes up to X the first match ends at the same place on both sides).
      if (!after(pt, x) || !after(st - c.seq_offset, x)) continue;
      // Both VMs matched the rule at the same position: the spans are equal. Their
      // bytes past X go to the tails, from the windows.
      const uint32_t len_p = static_cast<uint32_t>(pt.since(pf));
      const uint32_t len_s = static_cast<uint32_t>(st.since(sf));
      const uint32_t past_p = static_cast<uint32_t>(pt.since(x));
      const uint32_t past_s = static_cast<uint32_t>(st.since(x + c.seq_offset));
      const uint32_t xi_p = skip[kPvm] + static_cast<uint32_t>(x.since(from[kPvm]));
      const uint32_t xi_s =
          skip[kSvm] + static_cast<uint32_t>((x + c.seq_offset).since(from[kSvm]));
      norm_->tail_append(c.norm, kPvm, norm_->window(kPvm) + xi_p, past_p);
      norm_->tail_append(c.norm, kSvm, norm_->window(kSvm) + xi_s, past_s);
      NormRuleCounters& rc = c_.normalize[sp[i].rule];
      ++rc.spans;
      rc.bytes += len_p;
      c.cmp = pt;
      if (len_s != len_p) {
        // From the span's end on, SVM = PVM + the new offset: renumber the SVM's held
        // segments (positions before the end are behind cmp and go as matched).
        const uint32_t d = len_s - len_p;
        ++rc.offsets;
        nc.has_prev = true;
        nc.prev_offset = c.seq_offset;
        nc.prev_until = pt;
        c.seq_offset += d;
        for (uint32_t idx = c.svm.head; idx != kNil; idx = pool_[idx].next) {
          Held& h = pool_[idx];
          if (!h.untranslated) h.seq = h.seq - d;
        }
      }
      nc.waiting = false;
      return NormVerdict::skipped;
    }
  }
  if (done[kPvm] && done[kSvm]) {
    nc.waiting = false;
    return NormVerdict::diverge;
  }
  if (!nc.waiting || nc.wait_at != x) {
    ++c_.normalize_deferred;
    nc.waiting = true;
    nc.wait_at = x;
  }
  return NormVerdict::wait;
}

bool TcpStream::norm_tcp_compare(uint32_t ci, uint64_t now) {
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

  for (;;) {
    uint32_t p = find_cover(held_, c.pvm, c.cmp);
    if (p == kNil) break;
    uint32_t s = find_cover(held_, c.svm, c.cmp);
    if (s == kNil) break;
    Elem ep = elem_at(pool_[p], c.cmp);
    Elem es = elem_at(pool_[s], c.cmp);
    if (ep.kind == es.kind) {
      const uint32_t len = ep.kind == ElemKind::data ? (ep.avail < es.avail ? ep.avail : es.avail)
                                                     : 1;
      if (ep.kind != ElemKind::data) {
        c.cmp += 1;
        ++c_.events_compared;
        if (ep.kind == ElemKind::syn) {
          // The stream's first byte follows: `^` may match there.
          norm_->tail_restart(c.norm, kPvm, c.cmp, true);
          norm_->tail_restart(c.norm, kSvm, c.cmp + c.seq_offset, true);
        }
        continue;
      }
      const uint32_t same = std::memcmp(ep.bytes, es.bytes, len) == 0
                                ? len
                                : first_difference(ep.bytes, es.bytes, len);
      // Compared bytes go to the tails before their segments can be released.
      norm_->tail_append(c.norm, kPvm, ep.bytes, same);
      norm_->tail_append(c.norm, kSvm, es.bytes, same);
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
        release_matched(c);
        return true;
      case NormVerdict::diverge:
        release_matched(c);
        diverge_(ci, ep.kind != es.kind ? CheckpointReason::event_mismatch
                                       : CheckpointReason::payload_mismatch,
                now);
        return true;
    }
  }
  release_matched(c);
  return true;
}

}  // namespace lockstep
