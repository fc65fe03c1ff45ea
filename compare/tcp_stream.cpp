// TCP as byte streams (DESIGN.md §5.1-3).
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
// ACK progress (DESIGN.md §5.2): both VMs acknowledge the client's sequence space, so
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

#include "compare/checksum.h"
#include "compare/engine_impl.h"

namespace lockstep {

namespace {

// After a rebase: late SVM data (old numbering) lies at most kLateBehind behind the
// rebase point; new SVM data (new numbering) starts at most kNewAhead ahead of it.
constexpr int32_t kLateBehind = 1 << 24;
constexpr int32_t kNewAhead = 1 << 18;

void patch32(uint8_t* field, uint8_t* csum, uint32_t new_value) {
  uint32_t old_value = load_be32(field);
  if (old_value == new_value) return;
  store_be32(field, new_value);
  csum_update32(csum, old_value, new_value);
}

// An SVM segment (not a SYN) sent before the last checkpoint, still numbered the old way,
// arriving late: in the old numbering it ends at or just behind the rebase point, in the
// new one (`seq`, translated) it lies where no new output of the SVM (now a copy of the
// PVM) can be. Were it new data after all (more than kNewAhead ahead right after a
// checkpoint), the deadline catches it.
bool svm_late_after_rebase(const Conn& c, SeqNum raw, SeqNum seq, uint32_t ext) {
  if (!c.stale_valid) return false;
  const SeqNum old = raw - c.stale_offset;
  return before_eq(old + ext, c.rebase_seq) && old.since(c.rebase_seq) > -kLateBehind &&
         (seq.since(c.rebase_seq) > kNewAhead || seq.since(c.rebase_seq) < -kLateBehind);
}

}  // namespace

void EngineImpl::tcp_reset_for_reuse(Conn& c) {
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
  cold_of(c) = ConnCold{};
}

void EngineImpl::tcp_learn_offset(uint32_t ci) {
  Conn& c = conns_[ci];
  if (!c.pvm_syn || !c.svm_syn || c.offset_known) return;
  c.seq_offset = c.svm_isn.raw() - c.pvm_isn.raw();
  c.offset_known = true;
  ++c_.isn_learned;
  if (c.pvm_ts_syn && c.svm_ts_syn) {
    c.ts_offset = cold_of(c).svm_tsval_syn - cold_of(c).pvm_tsval_syn;
    c.ts_known = true;
  }
  for (uint32_t idx = c.svm.head; idx != kNil; idx = held_[idx].next) {
    Held& h = held_[idx];
    if (h.untranslated) {
      h.seq = h.seq - c.seq_offset;
      h.untranslated = false;
    }
  }
  if (c.ingress.head != kNil) tcp_flush_ingress(ci, true);
}

void EngineImpl::tcp_track_uncompared(Side side, const ParsedFrame& f, uint64_t now) {
  const uint8_t fl = f.tcp_flags;
  const uint32_t ext = ((fl & kTcpSyn) ? 1 : 0) + f.payload_len + ((fl & kTcpFin) ? 1 : 0);
  const bool syn = fl & kTcpSyn;
  const bool create = syn || (side == Side::pvm && ext > 0);
  // ACKs too, so that the checkpoint ending this mode knows how far the PVM acknowledged.
  if (!create && !(fl & kTcpAck)) return;
  uint32_t ci = lookup_or_create(flow_key_of(f), ConnKind::tcp, now, create);
  if (ci == kNil) return;
  Conn& c = conns_[ci];
  tcp_note_ack(c, side, nullptr, f);
  if (syn) {
    if (c.state == TcpState::closed && !conn_holds(c)) tcp_reset_for_reuse(c);
    const bool pvm = side == Side::pvm;
    (pvm ? c.pvm_isn : c.svm_isn) = SeqNum(f.seq);
    (pvm ? c.pvm_syn : c.svm_syn) = true;
    (pvm ? c.pvm_ts_syn : c.svm_ts_syn) = f.has_timestamp;
    (pvm ? cold_of(c).pvm_tsval_syn : cold_of(c).svm_tsval_syn) = f.tsval;
    tcp_learn_offset(ci);
  }
  if (side == Side::pvm && ext > 0) {
    SeqNum end = SeqNum(f.seq) + ext;
    c.pvm_next = c.pvm_seen ? seq_max(c.pvm_next, end) : end;
    c.pvm_seen = true;
    c.cmp_valid = true;
  }
}

void EngineImpl::tcp_output(uint32_t ci, uint32_t idx, const ParsedFrame& f, uint64_t now) {
  Conn& c = conns_[ci];
  const bool pvm = held_[idx].side == Side::pvm;
  const uint8_t fl = f.tcp_flags;
  const uint32_t syn = (fl & kTcpSyn) ? 1 : 0;
  const uint32_t fin = (fl & kTcpFin) ? 1 : 0;
  const uint32_t rst = (fl & kTcpRst) ? 1 : 0;

  if (syn && c.state == TcpState::closed && !conn_holds(c)) tcp_reset_for_reuse(c);

  {
    Held& h = held_[idx];
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
      cold_of(c).pvm_tsval_syn = f.tsval;
      if (!c.cmp_valid) {
        c.cmp = SeqNum(f.seq);
        c.cmp_valid = true;
      }
    } else {
      c.svm_isn = SeqNum(f.seq);
      c.svm_syn = true;
      c.svm_ts_syn = f.has_timestamp;
      cold_of(c).svm_tsval_syn = f.tsval;
    }
    if (c.state == TcpState::fresh) c.state = TcpState::syn;
    tcp_learn_offset(ci);
  } else if (c.state == TcpState::fresh || c.state == TcpState::syn) {
    c.state = TcpState::established;
  }

  Held& h = held_[idx];
  if (pvm || c.offset_known) {
    h.seq = pvm ? SeqNum(f.seq) : SeqNum(f.seq) - c.seq_offset;
  } else {
    h.seq = SeqNum(f.seq);
    h.untranslated = c.svm_syn && !c.pvm_syn;
  }
  if (pvm) {
    h.has_ack = (fl & kTcpAck) != 0;
    h.ack = SeqNum(f.ack);
    h.sack_wait = f.sack_count > 0 && !tcp_sack_covered(c, h.data, f);
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
  if (rst) mark_closed(ci, now);
  if (fin) {
    c.fin_vm = true;
    if (c.fin_client) mark_closed(ci, now);
  }

  if (h.ext == 0) {
    // Pure ACK or window update: nothing to compare. The SVM's may have moved its ACK
    // on (waiting PVM frames may go); the PVM's leaves at once when nothing of its flow
    // is held and the SVM has acknowledged what it acknowledges, else it queues.
    if (!pvm) {
      free_svm_frame(idx);
      if (c.pvm.head != kNil && !c.diverged) tcp_release_matched(c);
      return;
    }
    if (c.pvm.head == kNil && tcp_ack_ready(c, h)) {
      release_frame(idx, ReleaseReason::no_payload);
      return;
    }
    list_push(c.pvm, idx);
    if (!c.diverged) arm_deadline(idx, now + ack_ns_);
    return;
  }
  if (!pvm && !syn && svm_late_after_rebase(c, SeqNum(f.seq), h.seq, h.ext)) {
    drop_frame(idx, DropReason::svm_after_checkpoint);
    return;
  }
  if (c.diverged) {
    // A checkpoint is on its way: PVM output waits for it, SVM output is moot.
    if (pvm) list_push(c.pvm, idx);
    else drop_frame(idx, DropReason::svm_backlog_flushed);
    return;
  }
  if (!h.untranslated && before_eq(h.seq + h.ext, c.cmp)) {
    if (!pvm) {
      ++c_.svm_retransmits;
      free_svm_frame(idx);
      if (c.pvm.head != kNil) tcp_release_matched(c);
      return;
    }
    ++c_.pvm_retransmits;
    h.retransmit = true;
    if (c.pvm.head == kNil && tcp_ack_ready(c, h)) {
      release_frame(idx, ReleaseReason::retransmit);
      return;
    }
    list_push(c.pvm, idx);
    arm_deadline(idx, now + ack_ns_);
    return;
  }
  HeldList& list = pvm ? c.pvm : c.svm;
  list_push(list, idx);
  if (list.count > settings_.reorder_window) {
    arm_deadline(idx, now + timeout_ns_);
    diverge(ci, CheckpointReason::window_full, now);
    return;
  }
  // Arriving first (neither side held anything before): the compare loop needs a
  // segment covering `cmp` on both sides, so it would match nothing, and release
  // nothing either (this frame is no retransmission, checked above). Skip it.
  const HeldList& other = pvm ? c.svm : c.pvm;
  if (norm_ || other.count != 0 || list.count != 1) tcp_compare(ci, now);
  // The deadline only for a frame still held: one matched at once never needs a timer.
  // (tcp_compare frees frames but never allocates, so idx is this frame or free.)
  if (held_[idx].live) arm_deadline(idx, now + timeout_ns_);
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
bool EngineImpl::tcp_match_on_arrival(uint32_t ci, Side side, uint64_t handle, uint8_t* data,
                                      const ParsedFrame& f) {
  constexpr uint8_t kEvents = kTcpSyn | kTcpFin | kTcpRst;
  Conn& c = conns_[ci];
  const uint32_t len = f.payload_len;
  if ((f.tcp_flags & kEvents) != 0 || len == 0 || norm_ || c.diverged || !c.cmp_valid ||
      c.state != TcpState::established || held_used_ + 1 >= held_soft_limit_) {
    return false;
  }
  const bool pvm = side == Side::pvm;
  if (!pvm && !c.offset_known) return false;
  HeldList& own = pvm ? c.pvm : c.svm;
  HeldList& other = pvm ? c.svm : c.pvm;
  if (own.count != 0 || other.head == kNil) return false;
  const SeqNum seq = pvm ? SeqNum(f.seq) : SeqNum(f.seq) - c.seq_offset;
  if (seq != c.cmp) return false;
  const Held& o = held_[other.head];
  if (o.untranslated || o.seq != seq || o.ext != len || o.payload_len != len) return false;
  if (!pvm && svm_late_after_rebase(c, SeqNum(f.seq), seq, len)) return false;
  // The PVM's copy (this frame or the held one) must also have its ACK covered.
  if (pvm ? ((f.tcp_flags & kTcpAck) &&
             (!c.svm_ack_seen || before(c.svm_ack, SeqNum(f.ack)) ||
              (f.sack_count > 0 && !tcp_sack_covered(c, data, f))))
          : !tcp_ack_ready(c, held_[other.head])) {
    return false;
  }
  if (std::memcmp(o.data + o.payload_off, data + f.payload_off, len) != 0) return false;

  if (pvm) c.pvm_next = c.pvm_seen ? seq_max(c.pvm_next, seq + len) : seq + len;
  c.pvm_seen |= pvm;
  c.cmp += len;
  c.bytes_matched += len;
  c_.bytes_compared += len;
  if (pvm) {
    release_direct(Side::pvm, handle, ReleaseReason::matched);
    free_svm_frame(list_pop(c.svm));
    if (c.svm.head != kNil) tcp_release_matched(c);
  } else {
    release_frame(list_pop(c.pvm), ReleaseReason::matched);
    if (c.pvm.head != kNil) tcp_release_matched(c);
    emit(handle, ActionKind::free, 0, Side::svm);
    ++c_.svm_freed;
  }
  return true;
}

void EngineImpl::tcp_compare(uint32_t ci, uint64_t now) {
  Conn& c = conns_[ci];
  if (c.diverged || !c.cmp_valid) return;
  // Rules configured: connections they apply to take the normalizing loop.
  if (norm_ && norm_tcp_compare(ci, now)) return;
  for (;;) {
    uint32_t p = find_cover(held_, c.pvm, c.cmp);
    if (p == kNil) break;
    uint32_t s = find_cover(held_, c.svm, c.cmp);
    if (s == kNil) break;
    Elem ep = elem_at(held_[p], c.cmp);
    Elem es = elem_at(held_[s], c.cmp);
    if (ep.kind != es.kind) {
      diverge(ci, CheckpointReason::event_mismatch, now);
      return;
    }
    if (ep.kind == ElemKind::data) {
      uint32_t n = ep.avail < es.avail ? ep.avail : es.avail;
      if (std::memcmp(ep.bytes, es.bytes, n) != 0) {
        diverge(ci, CheckpointReason::payload_mismatch, now);
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
  tcp_release_matched(c);
}

void EngineImpl::tcp_release_matched(Conn& c) {
  while (c.pvm.head != kNil) {
    Held& h = held_[c.pvm.head];
    if (h.ext != 0 && (h.untranslated || !before_eq(h.seq + h.ext, c.cmp))) break;
    if (!tcp_ack_ready(c, h)) break;
    if (h.ack_waited) {
      const uint64_t waited = last_now_ > h.arrival_ns ? last_now_ - h.arrival_ns : 0;
      ++c_.pvm_ack_waits;
      c_.pvm_ack_wait_ns += waited;
      ++c_.ack_wait_hist[ack_wait_bucket(waited)];
    }
    release_frame(list_pop(c.pvm), h.ext == 0     ? ReleaseReason::no_payload
                                   : h.retransmit ? ReleaseReason::retransmit
                                                  : ReleaseReason::matched);
  }
  while (c.svm.head != kNil) {
    const Held& h = held_[c.svm.head];
    if (h.untranslated || !before_eq(h.seq + h.ext, c.cmp)) break;
    free_svm_frame(list_pop(c.svm));
  }
}

// ---------------------------------------------------------------------------- ACK progress

namespace {

// Adds [l, r) to the SVM's selectively acknowledged ranges, merging what overlaps or
// touches; when every slot is taken the range with the lowest right edge gives way (the
// SVM's cumulative ACK reaches it first).
void sack_add(Conn& c, ConnCold& k, SeqNum l, SeqNum r) {
  if (!before(l, r)) return;
  for (unsigned i = 0; i < c.svm_sack_count;) {
    const SeqNum rl = k.svm_sack[2 * i], rr = k.svm_sack[2 * i + 1];
    if (before_eq(rl, r) && before_eq(l, rr)) {
      l = seq_min(l, rl);
      r = seq_max(r, rr);
      --c.svm_sack_count;
      k.svm_sack[2 * i] = k.svm_sack[2 * c.svm_sack_count];
      k.svm_sack[2 * i + 1] = k.svm_sack[2 * c.svm_sack_count + 1];
      continue;
    }
    ++i;
  }
  unsigned slot = c.svm_sack_count;
  if (slot == kSvmSackRanges) {
    slot = 0;
    for (unsigned i = 1; i < kSvmSackRanges; ++i) {
      if (before(k.svm_sack[2 * i + 1], k.svm_sack[2 * slot + 1])) slot = i;
    }
  } else {
    ++c.svm_sack_count;
  }
  k.svm_sack[2 * slot] = l;
  k.svm_sack[2 * slot + 1] = r;
}

// Drops the ranges the SVM's cumulative ACK has reached.
void sack_prune(Conn& c, ConnCold& k) {
  for (unsigned i = 0; i < c.svm_sack_count;) {
    if (before_eq(k.svm_sack[2 * i + 1], c.svm_ack)) {
      --c.svm_sack_count;
      k.svm_sack[2 * i] = k.svm_sack[2 * c.svm_sack_count];
      k.svm_sack[2 * i + 1] = k.svm_sack[2 * c.svm_sack_count + 1];
      continue;
    }
    ++i;
  }
}

}  // namespace

void EngineImpl::tcp_note_ack_slow(Conn& c, Side side, const uint8_t* data,
                                   const ParsedFrame& f) {
  const bool acks = (f.tcp_flags & kTcpAck) != 0;
  if (acks && (f.tcp_flags & kTcpSyn) && side != Side::ingress) {
    // A SYN/ACK acknowledges the client's ISN + 1: both VMs' must agree, or the SVM's
    // client numbered its bytes otherwise.
    const bool pvm = side == Side::pvm;
    ConnCold& k = cold_of(c);
    (pvm ? k.pvm_synack_ack : k.svm_synack_ack) = f.ack;
    (pvm ? k.pvm_synack : k.svm_synack) = true;
    if (k.pvm_synack && k.svm_synack && k.svm_synack_ack != k.pvm_synack_ack &&
        c.client_offset == 0) {
      c.client_offset = k.svm_synack_ack - k.pvm_synack_ack;
      ++c_.client_offsets;
      if (c.svm_ack_seen) c.svm_ack = c.svm_ack - c.client_offset;  // noted before it
    }
  }
  if (side == Side::pvm) {
    if (acks) {
      c.pvm_ack = c.pvm_ack_seen ? seq_max(c.pvm_ack, SeqNum(f.ack)) : SeqNum(f.ack);
      c.pvm_ack_seen = true;
    }
    return;
  }
  if (side != Side::svm) return;
  if (f.sack_permitted) c.svm_sack_seen = true;
  if (!acks) return;
  const SeqNum ack = SeqNum(f.ack) - c.client_offset;
  const bool moved = !c.svm_ack_seen || after(ack, c.svm_ack);
  if (moved) {
    c.svm_ack = ack;
    c.svm_ack_seen = true;
  }
  if (f.sack_count != 0 && data != nullptr) {
    c.svm_sack_seen = true;
    for (unsigned i = 0; i < f.sack_count; ++i) {
      const uint8_t* block = data + f.sack_off[i];
      sack_add(c, cold_of(c), SeqNum(load_be32(block)) - c.client_offset,
               SeqNum(load_be32(block + 4)) - c.client_offset);
    }
  }
  if (moved && c.svm_sack_count != 0) sack_prune(c, cold_of(c));
}

bool EngineImpl::tcp_sack_covered(const Conn& c, const uint8_t* data,
                                  const ParsedFrame& f) const {
  if (f.sack_count == 0 || !c.svm_sack_seen) return true;  // compared where both use SACK
  if (!c.svm_ack_seen) return false;
  for (unsigned i = 0; i < f.sack_count; ++i) {
    const uint8_t* block = data + f.sack_off[i];
    const SeqNum l(load_be32(block)), r(load_be32(block + 4));
    if (before_eq(r, c.svm_ack)) continue;  // D-SACK or below the cumulative ACK
    const SeqNum from = seq_max(l, c.svm_ack);
    bool covered = false;
    const ConnCold& k = cold_of(c);
    for (unsigned j = 0; j < c.svm_sack_count && !covered; ++j) {
      covered = before_eq(k.svm_sack[2 * j], from) && before_eq(r, k.svm_sack[2 * j + 1]);
    }
    if (!covered) return false;
  }
  return true;
}

bool EngineImpl::tcp_sack_recheck(const Conn& c, Held& h) {
  ParsedFrame f = kFreshFrame;
  if (parse_fresh_frame(h.data, h.len, f) == ParseStatus::ok && f.is_tcp() &&
      !tcp_sack_covered(c, h.data, f)) {
    return false;
  }
  h.sack_wait = false;
  return true;
}

// A held PVM frame's timer fired. Returns false when it is a divergence for the caller
// to declare as a deadline (bytes still unmatched); otherwise handles it: a frame whose
// bytes are matched but whose ACK the SVM has not reached diverges with ack_divergence
// once it is ack_timeout_us old (its timer is moved there before that); a frame waiting
// only behind an earlier one of its flow leaves that one's deadline to speak.
bool EngineImpl::tcp_deadline(uint32_t idx, uint64_t now) {
  Held& h = held_[idx];
  Conn& c = conns_[h.conn];
  if (c.kind != ConnKind::tcp || h.side != Side::pvm || c.diverged) return false;
  const bool matched =
      h.ext == 0 || (!h.untranslated && c.cmp_valid && before_eq(h.seq + h.ext, c.cmp));
  if (!matched) return false;
  if (tcp_ack_ready(c, h)) {
    tcp_release_matched(c);
    return true;
  }
  if (now < h.arrival_ns + ack_ns_) {
    arm_deadline(idx, h.arrival_ns + ack_ns_);
    return true;
  }
  diverge(h.conn, CheckpointReason::ack_divergence, now, idx);
  return true;
}

void EngineImpl::tcp_ingress(uint32_t ci, uint64_t handle, uint8_t* data, uint32_t len,
                             const ParsedFrame& f, uint64_t now) {
  Conn& c = conns_[ci];
  const uint8_t fl = f.tcp_flags;
  if ((fl & kTcpSyn) && !(fl & kTcpAck) && c.state == TcpState::closed && !conn_holds(c)) {
    tcp_reset_for_reuse(c);
  }
  if (fl & kTcpRst) mark_closed(ci, now);
  if (fl & kTcpFin) {
    c.fin_client = true;
    if (c.fin_vm) mark_closed(ci, now);
  }
  const bool needs_offset =
      (fl & kTcpAck) || f.sack_count > 0 || (f.has_timestamp && f.tsecr != 0);
  const bool wait = c.ingress.count > 0 ||
                    (needs_offset && !c.offset_known && c.pvm_syn && !c.svm_syn &&
                     settings_.hold_svm_ingress && !failed_over_);
  if (wait) {
    uint32_t idx = alloc_held(Side::ingress, handle, data, len, now);
    if (idx != kNil) {
      held_[idx].conn = ci;
      if (c.ingress.count == 0) {
        ++c_.ingress_waited_isn;
        arm_deadline(idx, now + timeout_ns_);
      }
      list_push(c.ingress, idx);
      return;
    }
    ++c_.ingress_untranslated;  // nothing can be held: send it on as it is
  } else {
    if (needs_offset && !c.offset_known && c.pvm_syn && !c.svm_syn) ++c_.ingress_untranslated;
    tcp_translate_ingress(c, data, f);
  }
  emit(handle, ActionKind::forward_svm, 0, Side::ingress);
  ++c_.svm_forwarded;
}

void EngineImpl::tcp_flush_ingress(uint32_t ci, bool translated) {
  Conn& c = conns_[ci];
  while (c.ingress.head != kNil) {
    uint32_t idx = list_pop(c.ingress);
    if (translated) {
      ParsedFrame f = kFreshFrame;
      if (parse_fresh_frame(held_[idx].data, held_[idx].len, f) == ParseStatus::ok && f.is_tcp()) {
        tcp_translate_ingress(c, held_[idx].data, f);
      }
    }
    forward_ingress(idx, translated);
  }
}

void EngineImpl::tcp_translate_ingress(const Conn& c, uint8_t* data, const ParsedFrame& f) {
  if (!f.is_tcp() || f.l4_checksum_off == 0) return;
  uint8_t* csum = data + f.l4_checksum_off;
  if (c.offset_known && (c.seq_offset != 0 || c.norm != kNil)) {
    // With normalization the offset may have changed at a span's end: positions before
    // it keep the previous one (norm_ack_offset).
    auto off = [&](uint32_t pos) { return c.norm == kNil ? c.seq_offset : norm_ack_offset(c, pos); };
    if (f.tcp_flags & kTcpAck) {
      patch32(data + f.l4_off + 8, csum, f.ack + off(f.ack));
      ++c_.acks_translated;
    }
    for (unsigned i = 0; i < f.sack_count; ++i) {
      uint8_t* block = data + f.sack_off[i];
      const uint32_t left = load_be32(block), right = load_be32(block + 4);
      patch32(block, csum, left + off(left));
      patch32(block + 4, csum, right + off(right));
      ++c_.sacks_translated;
    }
  }
  if (settings_.translate_timestamps && c.ts_known && c.ts_offset != 0 && f.has_timestamp &&
      f.tsecr != 0) {
    patch32(data + f.ts_off + 4, csum, f.tsecr + c.ts_offset);
    ++c_.tsecr_translated;
  }
}

void EngineImpl::tcp_translate_svm_output(const Conn& c, uint8_t* data, uint32_t len) {
  ParsedFrame f = kFreshFrame;
  if (parse_fresh_frame(data, len, f) != ParseStatus::ok || !f.is_tcp() || f.l4_checksum_off == 0) {
    return;
  }
  uint8_t* csum = data + f.l4_checksum_off;
  if (c.offset_known && c.seq_offset != 0) patch32(data + f.l4_off + 4, csum, f.seq - c.seq_offset);
  if (c.ts_known && c.ts_offset != 0 && f.has_timestamp) {
    patch32(data + f.ts_off, csum, f.tsval - c.ts_offset);
  }
}

}  // namespace lockstep
