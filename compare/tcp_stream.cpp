// TCP as byte streams (docs/design.md §5.1-3).
//
// Per connection the engine compares the VMs' output at equal stream offsets in the
// PVM's sequence space. `cmp` is the compare point: every position before it has been
// matched. Held segments of each side sit in arrival order; the segment covering `cmp`
// on each side is found, the element at `cmp` (SYN, data bytes, FIN, RST) is compared,
// and `cmp` moves on. Segmentation does not matter: a 100-byte segment is matched by
// two 50-byte ones, or by an overlapping retransmission.
//
//   PVM  [1000 ....... 1100)[1100 .. 1150)         held in arrival order
//   SVM  [1000 .. 1050)[1050 ......... 1150)       seq translated: raw - seq_offset
//          cmp ─► 1000 ──► 1050 ──► 1100 ──► 1150   each step: memcmp of the overlap
//
// The reorder window of a side is the number of segments it may hold; past it a
// checkpoint is requested (nothing is dropped).
//
// ISN learning: the VMs' SYN (active open) or SYN/ACK (passive open) give pvm_isn and
// svm_isn, seq_offset = svm_isn - pvm_isn. The SYN/ACK that arrives second fixes the
// offset; SVM segments that came before it are stored raw and translated then:
//
//   fresh ──PVM SYN──► pvm_syn ──SVM SYN──► offset known
//     └────SVM SYN──► svm_syn (SVM segments raw) ──PVM SYN──► offset known, translate
//
// ACK progress (docs/design.md §5.2): both VMs acknowledge the client's sequence space, so
// their cumulative ACKs (and SACK blocks) are comparable as they are. Per connection the
// engine keeps the highest ACK each VM has sent and the ranges the SVM selectively
// acknowledged. A PVM frame leaves only once the SVM has acknowledged every client byte
// it acknowledges: releasing it earlier would let the client forget bytes the SVM may
// never have received. ACK numbers are not compared frame by frame; the SVM only has to
// catch up, within ack_timeout_us, or the connection diverges (ack_divergence). Per
// connection PVM frames leave in arrival order: a held frame blocks the later ones.
//
//   PVM  data ack=300  ack=500  ack=700         held until the SVM's ACK reaches theirs
//   SVM  data ack=300 ─────────────── ack=700   releases all three, in order
//
// Client segments bound for the SVM get ack += seq_offset, SACK edges += seq_offset and
// TSecr += ts_offset, with the TCP checksum patched incrementally. A client segment
// that needs the offset before the SVM's SYN/ACK has arrived waits (hold_svm_ingress)
// until it does, a checkpoint makes the offset zero, or compare_timeout passes.
#include <cstring>

#include "compare/tcp_stream.h"

namespace lockstep {

namespace {

// After a rebase: late SVM data (old numbering) lies at most kLateBehind behind the
// rebase point; new SVM data (new numbering) starts at most kNewAhead ahead of it.
constexpr int32_t kLateBehind = 1 << 24;
constexpr int32_t kNewAhead = 1 << 18;

// An SVM segment (not a SYN) sent before the last checkpoint, still numbered the old way,
// arriving late: in the old numbering it ends at or just behind the rebase point, in the
// new one (`seq`, translated) it lies where no new output of the SVM (now a copy of the
// PVM) can be. Were it new data after all (more than kNewAhead ahead right after a
// checkpoint), the deadline catches it.
// `c.stale_valid` first: the numbering before the rebase is in ConnCold.
bool svm_late_after_rebase(const ConnCold& c, SeqNum raw, SeqNum seq, uint32_t ext) {
  const SeqNum old = raw - c.stale_offset;
  return before_eq(old + ext, c.rebase_seq) && old.since(c.rebase_seq) > -kLateBehind &&
         (seq.since(c.rebase_seq) > kNewAhead || seq.since(c.rebase_seq) < -kLateBehind);
}

}  // namespace

void TcpStream::reset_for_reuse(Conn& c) {
  norm_detach(c);
  Conn fresh;
  fresh.key = c.key;
  fresh.hash = c.hash;
  fresh.last_seen_ns = c.last_seen_ns;
  fresh.lru_prev = c.lru_prev;
  fresh.lru_next = c.lru_next;
  fresh.kind = c.kind;
  fresh.in_use = true;
  fresh.closing_listed = c.closing_listed;
  c = fresh;
  conns_.cold_of(c) = ConnCold{};
}

void TcpStream::learn_offset(uint32_t ci) {
  Conn& c = conns_[ci];
  if (!c.pvm_syn || !c.svm_syn || c.offset_known) return;
  c.seq_offset = c.svm_isn.raw() - c.pvm_isn.raw();
  c.offset_known = true;
  ++c_.isn_learned;
  if (c.pvm_ts_syn && c.svm_ts_syn) {
    c.ts_offset = conns_.cold_of(c).svm_tsval_syn - conns_.cold_of(c).pvm_tsval_syn;
    c.ts_known = true;
  }
  for (uint32_t idx = c.svm.head; idx != kNil; idx = pool_[idx].next) {
    Held& h = pool_[idx];
    if (h.untranslated) {
      h.seq = h.seq - c.seq_offset;
      h.untranslated = false;
    }
  }
  if (c.ingress.head != kNil) flush_ingress(ci, true);
}

void TcpStream::track_uncompared(Side side, const ParsedFrame& f, uint64_t now) {
  const uint8_t fl = f.tcp_flags;
  const uint32_t ext = ((fl & kTcpSyn) ? 1 : 0) + f.payload_len + ((fl & kTcpFin) ? 1 : 0);
  const bool syn = fl & kTcpSyn;
  const bool create = syn || (side == Side::pvm && ext > 0);
  // ACKs too, so that the checkpoint ending this mode knows how far the PVM acknowledged.
  if (!create && !(fl & kTcpAck)) return;
  uint32_t ci = conns_.lookup_or_create(flow_key_of(f), ConnKind::tcp, now, create);
  if (ci == kNil) return;
  Conn& c = conns_[ci];
  note_ack(c, side, nullptr, f);
  if (syn) {
    if (c.state == TcpState::closed && !ConnTable::holds(c)) reset_for_reuse(c);
    const bool pvm = side == Side::pvm;
    (pvm ? c.pvm_isn : c.svm_isn) = SeqNum(f.seq);
    (pvm ? c.pvm_syn : c.svm_syn) = true;
    (pvm ? c.pvm_ts_syn : c.svm_ts_syn) = f.has_timestamp;
    (pvm ? conns_.cold_of(c).pvm_tsval_syn : conns_.cold_of(c).svm_tsval_syn) = f.tsval;
    learn_offset(ci);
  }
  if (side == Side::pvm && ext > 0) {
    SeqNum end = SeqNum(f.seq) + ext;
    c.pvm_next = c.pvm_seen ? seq_max(c.pvm_next, end) : end;
    c.pvm_seen = true;
    c.cmp_valid = true;
  }
}

void TcpStream::output(uint32_t ci, uint32_t idx, const ParsedFrame& f, uint64_t now) {
  Conn& c = conns_[ci];
  const bool pvm = pool_[idx].side == Side::pvm;
  const uint8_t fl = f.tcp_flags;
  const uint32_t syn = (fl & kTcpSyn) ? 1 : 0;
  const uint32_t fin = (fl & kTcpFin) ? 1 : 0;
  const uint32_t rst = (fl & kTcpRst) ? 1 : 0;

  if (syn && c.state == TcpState::closed && !ConnTable::holds(c)) reset_for_reuse(c);

  {
    Held& h = pool_[idx];
    h.tcp_flags = fl;
    h.payload_off = f.payload_off;
    h.payload_len = f.payload_len;
    h.ext = syn + f.payload_len + fin + rst;
  }

  if (syn) {
    if (pvm) {
      c.pvm_isn = SeqNum(f.seq);
      c.pvm_syn = true;
      c.pvm_ts_syn = f.has_timestamp;
      conns_.cold_of(c).pvm_tsval_syn = f.tsval;
      if (!c.cmp_valid) {
        c.cmp = SeqNum(f.seq);
        c.cmp_valid = true;
      }
    } else {
      c.svm_isn = SeqNum(f.seq);
      c.svm_syn = true;
      c.svm_ts_syn = f.has_timestamp;
      conns_.cold_of(c).svm_tsval_syn = f.tsval;
    }
    if (c.state == TcpState::fresh) c.state = TcpState::syn;
    learn_offset(ci);
  } else if (c.state == TcpState::fresh || c.state == TcpState::syn) {
    c.state = TcpState::established;
  }

  Held& h = pool_[idx];
  if (pvm || c.offset_known) {
    h.seq = pvm ? SeqNum(f.seq) : SeqNum(f.seq) - c.seq_offset;
  } else {
    h.seq = SeqNum(f.seq);
    h.untranslated = c.svm_syn && !c.pvm_syn;
  }
  if (pvm) {
    h.has_ack = (fl & kTcpAck) != 0;
    h.ack = SeqNum(f.ack);
    h.sack_wait = f.sack_count > 0 && !sack_covered(c, h.data, f);
    h.ack_waited = (h.has_ack && (!c.svm_ack_seen || before(c.svm_ack, h.ack))) || h.sack_wait;
    if (h.ext > 0) {
      c.pvm_next = c.pvm_seen ? seq_max(c.pvm_next, h.seq + h.ext) : h.seq + h.ext;
      c.pvm_seen = true;
    }
  }
  if (!c.cmp_valid && !h.untranslated && h.ext > 0) {
    c.cmp = h.seq;
    c.cmp_valid = true;
  }
  if (rst) conns_.mark_closed(ci, now);
  if (fin) {
    c.fin_vm = true;
    if (c.fin_client) conns_.mark_closed(ci, now);
  }

  if (h.ext == 0) {
    // Pure ACK or window update: nothing to compare. The SVM's may have moved its ACK
    // on (waiting PVM frames may go); the PVM's leaves at once when nothing of its flow
    // is held and the SVM has acknowledged what it acknowledges, else it queues.
    if (!pvm) {
      out_.free_svm_frame(idx);
      if (c.pvm.head != kNil && !c.diverged) release_matched(c);
      return;
    }
    if (c.pvm.head == kNil && ack_ready(c, h)) {
      out_.release_frame(idx, ReleaseReason::no_payload);
      return;
    }
    held_.push(c.pvm, idx);
    if (!c.diverged) held_.arm(idx, now + t_.ack_ns);
    return;
  }
  if (!pvm && !syn && c.stale_valid &&
      svm_late_after_rebase(conns_.cold_of(c), SeqNum(f.seq), h.seq, h.ext)) {
    out_.drop_frame(idx, DropReason::svm_after_checkpoint);
    return;
  }
  if (c.diverged) {
    // A checkpoint is on its way: PVM output waits for it, SVM output is moot.
    if (pvm) held_.push(c.pvm, idx);
    else out_.drop_frame(idx, DropReason::svm_backlog_flushed);
    return;
  }
  if (!h.untranslated && before_eq(h.seq + h.ext, c.cmp)) {
    if (!pvm) {
      ++c_.svm_retransmits;
      out_.free_svm_frame(idx);
      if (c.pvm.head != kNil) release_matched(c);
      return;
    }
    ++c_.pvm_retransmits;
    h.retransmit = true;
    if (c.pvm.head == kNil && ack_ready(c, h)) {
      out_.release_frame(idx, ReleaseReason::retransmit);
      return;
    }
    held_.push(c.pvm, idx);
    held_.arm(idx, now + t_.ack_ns);
    return;
  }
  HeldList& list = pvm ? c.pvm : c.svm;
  held_.push(list, idx);
  if (list.count > t_.reorder_window) {
    held_.arm(idx, now + t_.timeout_ns);
    diverge_(ci, CheckpointReason::window_full, now);
    return;
  }
  // Arriving first (neither side held anything before): the compare loop needs a
  // segment covering `cmp` on both sides, so it would match nothing, and release
  // nothing either (this frame is no retransmission, checked above). Skip it.
  const HeldList& other = pvm ? c.svm : c.pvm;
  if (norm_ || other.count != 0 || list.count != 1) compare(ci, now);
  // The deadline only for a frame still held: one matched at once never needs a timer.
  // (tcp_compare frees frames but never allocates, so idx is this frame or free.)
  if (pool_[idx].live) held_.arm(idx, now + t_.timeout_ns);
}

// The lockstep case, decided before the frame is held: the VMs emit the same segments,
// one side's copy waits alone at the compare point and the other side's arrives. What
// the general path (hold, tcp_compare, tcp_release_matched) would do is then known in
// advance, and done here without holding, comparing element by element or arming a
// timer. Invariants that make it the same outcome, action for action and count for count:
//   - no SYN/FIN/RST and payload: no state, ISN or close change; ext == payload_len;
//   - established, cmp_valid, not diverged, no normalizer: tcp_compare would run its
//     plain loop;
//   - this side holds nothing and the other side's head starts at `cmp` with the same
//     extent: the loop matches exactly that pair (the other side's copy is the first
//     covering `cmp`; this side has nothing past the new `cmp`), then stops;
//   - held_used_ + 1 below the soft limit: holding it would neither fail nor request a
//     held_full checkpoint;
//   - an SVM segment's offset is known and it is not a late one from before a rebase.
// Outcome, in the general path's order: PVM releases first (this frame or the held one,
// then any later held PVM segment now wholly before `cmp`), then SVM frees.
bool TcpStream::match_held_copy(uint32_t ci, Side side, uint64_t handle, uint8_t* data,
                                const ParsedFrame& f) {
  constexpr uint8_t kEvents = kTcpSyn | kTcpFin | kTcpRst;
  Conn& c = conns_[ci];
  const uint32_t len = f.payload_len;
  if ((f.tcp_flags & kEvents) != 0 || len == 0 || norm_ || c.diverged || !c.cmp_valid ||
      c.state != TcpState::established || !held_.room_for_one()) {
    return false;
  }
  const bool pvm = side == Side::pvm;
  if (!pvm && !c.offset_known) return false;
  HeldList& own = pvm ? c.pvm : c.svm;
  HeldList& other = pvm ? c.svm : c.pvm;
  if (own.count != 0 || other.head == kNil) return false;
  const SeqNum seq = pvm ? SeqNum(f.seq) : SeqNum(f.seq) - c.seq_offset;
  if (seq != c.cmp) return false;
  const Held& o = pool_[other.head];
  if (o.untranslated || o.seq != seq || o.ext != len || o.payload_len != len) return false;
  if (!pvm && c.stale_valid && svm_late_after_rebase(conns_.cold_of(c), SeqNum(f.seq), seq, len))
    return false;
  // The PVM's copy (this frame or the held one) must also have its ACK covered.
  if (pvm ? ((f.tcp_flags & kTcpAck) &&
             (!c.svm_ack_seen || before(c.svm_ack, SeqNum(f.ack)) ||
              (f.sack_count > 0 && !sack_covered(c, data, f))))
          : !ack_ready(c, pool_[other.head])) {
    return false;
  }
  if (std::memcmp(o.data + o.payload_off, data + f.payload_off, len) != 0) return false;

  if (pvm) c.pvm_next = c.pvm_seen ? seq_max(c.pvm_next, seq + len) : seq + len;
  c.pvm_seen |= pvm;
  c.cmp += len;
  c.bytes_matched += len;
  c_.bytes_compared += len;
  if (pvm) {
    out_.release_direct(Side::pvm, handle, ReleaseReason::matched);
    out_.free_svm_frame(held_.pop(c.svm));
    if (c.svm.head != kNil) release_matched(c);
  } else {
    out_.release_frame(held_.pop(c.pvm), ReleaseReason::matched);
    if (c.pvm.head != kNil) release_matched(c);
    out_.emit(handle, ActionKind::free, 0, Side::svm);
    ++c_.svm_freed;
  }
  return true;
}

void TcpStream::compare(uint32_t ci, uint64_t now) {
  Conn& c = conns_[ci];
  if (c.diverged || !c.cmp_valid) return;
  // Rules configured: connections they apply to take the normalizing loop.
  if (norm_ && norm_tcp_compare(ci, now)) return;
  for (;;) {
    uint32_t p = find_cover(held_, c.pvm, c.cmp);
    if (p == kNil) break;
    uint32_t s = find_cover(held_, c.svm, c.cmp);
    if (s == kNil) break;
    Elem ep = elem_at(pool_[p], c.cmp);
    Elem es = elem_at(pool_[s], c.cmp);
    if (ep.kind != es.kind) {
      diverge_(ci, CheckpointReason::event_mismatch, now);
      return;
    }
    if (ep.kind == ElemKind::data) {
      uint32_t n = ep.avail < es.avail ? ep.avail : es.avail;
      if (std::memcmp(ep.bytes, es.bytes, n) != 0) {
        diverge_(ci, CheckpointReason::payload_mismatch, now);
        return;
      }
      c.cmp += n;
      c.bytes_matched += n;
      c_.bytes_compared += n;
    } else {
      c.cmp += 1;
      ++c_.events_compared;
    }
  }
  release_matched(c);
}

void TcpStream::release_matched(Conn& c) {
  while (c.pvm.head != kNil) {
    Held& h = pool_[c.pvm.head];
    if (h.ext != 0 && (h.untranslated || !before_eq(h.seq + h.ext, c.cmp))) break;
    if (!ack_ready(c, h)) break;
    if (h.ack_waited) {
      const uint64_t waited = out_.now() > h.arrival_ns ? out_.now() - h.arrival_ns : 0;
      ++c_.pvm_ack_waits;
      c_.pvm_ack_wait_ns += waited;
      ++c_.ack_wait_hist[ack_wait_bucket(waited)];
    }
    out_.release_frame(held_.pop(c.pvm), h.ext == 0     ? ReleaseReason::no_payload
                                   : h.retransmit ? ReleaseReason::retransmit
                                                  : ReleaseReason::matched);
  }
  while (c.svm.head != kNil) {
    const Held& h = pool_[c.svm.head];
    if (h.untranslated || !before_eq(h.seq + h.ext, c.cmp)) break;
    out_.free_svm_frame(held_.pop(c.svm));
  }
}

// A held PVM frame's timer fired. Returns false when it is a divergence for the caller
// to declare as a deadline (bytes still unmatched); otherwise handles it: a frame whose
// bytes are matched but whose ACK the SVM has not reached diverges with ack_divergence
// once it is ack_timeout_us old (its timer is moved there before that); a frame waiting
// only behind an earlier one of its flow leaves that one's deadline to speak.
bool TcpStream::deadline(uint32_t idx, uint64_t now) {
  Held& h = pool_[idx];
  Conn& c = conns_[h.conn];
  if (c.kind != ConnKind::tcp || h.side != Side::pvm || c.diverged) return false;
  const bool matched =
      h.ext == 0 || (!h.untranslated && c.cmp_valid && before_eq(h.seq + h.ext, c.cmp));
  if (!matched) return false;
  if (ack_ready(c, h)) {
    release_matched(c);
    return true;
  }
  if (now < h.arrival_ns + t_.ack_ns) {
    held_.arm(idx, h.arrival_ns + t_.ack_ns);
    return true;
  }
  diverge_(h.conn, CheckpointReason::ack_divergence, now, idx);
  return true;
}

void TcpStream::ingress(uint32_t ci, uint64_t handle, uint8_t* data, uint32_t len,
                             const ParsedFrame& f, uint64_t now) {
  Conn& c = conns_[ci];
  const uint8_t fl = f.tcp_flags;
  if ((fl & kTcpSyn) && !(fl & kTcpAck) && c.state == TcpState::closed && !ConnTable::holds(c)) {
    reset_for_reuse(c);
  }
  if (fl & kTcpRst) conns_.mark_closed(ci, now);
  if (fl & kTcpFin) {
    c.fin_client = true;
    if (c.fin_vm) conns_.mark_closed(ci, now);
  }
  const bool needs_offset =
      (fl & kTcpAck) || f.sack_count > 0 || (f.has_timestamp && f.tsecr != 0);
  const bool wait = c.ingress.count > 0 ||
                    (needs_offset && !c.offset_known && c.pvm_syn && !c.svm_syn &&
                     t_.hold_svm_ingress && !cp_.failed_over);
  if (wait) {
    uint32_t idx = held_.alloc(Side::ingress, handle, data, len, now);
    if (idx != kNil) {
      pool_[idx].conn = ci;
      if (c.ingress.count == 0) {
        ++c_.ingress_waited_isn;
        held_.arm(idx, now + t_.timeout_ns);
      }
      held_.push(c.ingress, idx);
      return;
    }
    ++c_.ingress_untranslated;  // nothing can be held: send it on as it is
  } else {
    if (needs_offset && !c.offset_known && c.pvm_syn && !c.svm_syn) ++c_.ingress_untranslated;
    translate_ingress(c, data, f);
  }
  out_.emit(handle, ActionKind::forward_svm, 0, Side::ingress);
  ++c_.svm_forwarded;
}

void TcpStream::flush_ingress(uint32_t ci, bool translated) {
  Conn& c = conns_[ci];
  while (c.ingress.head != kNil) {
    uint32_t idx = held_.pop(c.ingress);
    if (translated) {
      ParsedFrame f = kFreshFrame;
      if (parse_fresh_frame(pool_[idx].data, pool_[idx].len, f) == ParseStatus::ok && f.is_tcp()) {
        translate_ingress(c, pool_[idx].data, f);
      }
    }
    out_.forward_ingress(idx, translated);
  }
}

void TcpStream::rebase(Conn& c) {
  ConnCold& cold = conns_.cold_of(c);
  c.stale_valid = c.kind == ConnKind::tcp && c.seq_offset != 0;
  cold.stale_offset = c.seq_offset;
  c.seq_offset = 0;
  c.ts_offset = 0;
  c.offset_known = true;
  c.ts_known = true;
  if (c.kind == ConnKind::tcp && (c.pvm_syn || c.cmp_valid)) {
    c.cmp = c.pvm_next;
    c.cmp_valid = true;
  }
  cold.rebase_seq = c.cmp;
  // The SVM has received what the PVM has: its ACK is the PVM's.
  if (c.pvm_ack_seen) {
    c.svm_ack = c.svm_ack_seen ? seq_max(c.svm_ack, c.pvm_ack) : c.pvm_ack;
    c.svm_ack_seen = true;
  }
  c.svm_sack_count = 0;
  c.client_offset = 0;
  norm_rebase(c);
  c.svm_syn = c.pvm_syn;
  c.svm_isn = c.pvm_isn;
}

}  // namespace lockstep
