// What a checkpoint request says about its divergence (docs/design.md §5): where the VMs'
// outputs first differ and the bytes of both around that point, so that an operator sees
// the differing field (a date, a counter) without a capture. Runs once per request, never
// per frame; reads the held frames as they are when the divergence is declared.
#include <algorithm>
#include <cstring>

#include "compare/engine_impl.h"

namespace lockstep {

namespace {

uint32_t first_difference(const uint8_t* a, const uint8_t* b, uint32_t n) {
  uint32_t i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return i;
}

// The TCP stream position `at` (PVM numbering) of connection c.
void tcp_position(const Conn& c, SeqNum at, DivergenceDetail& d) {
  d.pvm_seq = at.raw();
  d.has_seq = true;
  if (c.pvm_syn) {
    d.stream_offset = static_cast<uint32_t>(at.since(c.pvm_isn + 1));
    d.has_offset = true;
  }
}

// Payload offset of stream position `at` in segment h (which covers it), or -1 when
// `at` is its SYN or FIN.
int64_t payload_offset(const Held& h, SeqNum at) {
  int64_t off = at.since(h.seq) - ((h.tcp_flags & kTcpSyn) ? 1 : 0);
  return off >= 0 && off < h.payload_len ? off : -1;
}

// Copies up to kExplainBytes of `bytes` [0, len) starting `before` bytes ahead of `at`.
void take(const uint8_t* bytes, uint32_t len, uint32_t at, uint32_t before,
          std::array<uint8_t, kExplainBytes>& out, uint8_t& n) {
  const uint32_t from = at - before;
  const uint32_t count = std::min<uint32_t>(kExplainBytes, len - from);
  std::memcpy(out.data(), bytes + from, count);
  n = static_cast<uint8_t>(count);
}

// The start of the line holding payload byte `at` (within 256 bytes before it, in the
// same segment), up to `at`, into d.line.
void take_line(const uint8_t* bytes, uint32_t at, DivergenceDetail& d) {
  uint32_t start = at;
  while (start > 0 && at - start < 256 && bytes[start - 1] != '\n') --start;
  const uint32_t n = std::min<uint32_t>(kExplainLine, at - start);
  std::memcpy(d.line.data(), bytes + start, n);
  d.line_len = static_cast<uint8_t>(n);
}

}  // namespace

void EngineImpl::explain(uint32_t ci, CheckpointReason reason, uint32_t frame,
                         CheckpointRequest& r) const {
  const Conn& c = conns_[ci];
  DivergenceDetail& d = r.detail;
  if (frame != kNil) {
    const Held& h = held_[frame];
    r.frame_ns = h.arrival_ns;
    d.waiting = h.side;
    if (c.kind == ConnKind::tcp && h.ext != 0 && !h.untranslated) tcp_position(c, h.seq, d);
  }
  if (c.kind == ConnKind::tcp) {
    if (reason == CheckpointReason::ack_divergence && c.pvm_ack_seen && c.svm_ack_seen &&
        after(c.pvm_ack, c.svm_ack)) {
      d.ack_lag = static_cast<uint32_t>(c.pvm_ack.since(c.svm_ack));
    }
    if (reason != CheckpointReason::payload_mismatch &&
        reason != CheckpointReason::event_mismatch) {
      return;
    }
    const uint32_t p = find_cover(held_, c.pvm, c.cmp);
    const uint32_t s = find_cover(held_, c.svm, c.cmp);
    if (p == kNil || s == kNil) return;
    const Held& hp = held_[p];
    const Held& hs = held_[s];
    r.frame_ns = std::max(hp.arrival_ns, hs.arrival_ns);
    const Elem ep = elem_at(hp, c.cmp);
    const Elem es = elem_at(hs, c.cmp);
    uint32_t diff = 0;
    if (ep.kind == ElemKind::data && es.kind == ElemKind::data) {
      diff = first_difference(ep.bytes, es.bytes, std::min(ep.avail, es.avail));
    }
    const SeqNum at = c.cmp + diff;
    tcp_position(c, at, d);
    const int64_t op = payload_offset(hp, at), os = payload_offset(hs, at);
    // Both windows start at the same stream position.
    const uint32_t before = static_cast<uint32_t>(std::min<int64_t>(
        {kExplainBefore, op < 0 ? 0 : op, os < 0 ? 0 : os}));
    d.shown_before = static_cast<uint8_t>(before);
    if (op >= 0) {
      take(hp.data + hp.payload_off, hp.payload_len, static_cast<uint32_t>(op), before, d.pvm,
           d.pvm_len);
      take_line(hp.data + hp.payload_off, static_cast<uint32_t>(op), d);
    }
    if (os >= 0) {
      take(hs.data + hs.payload_off, hs.payload_len, static_cast<uint32_t>(os), before, d.svm,
           d.svm_len);
    }
    return;
  }
  if (reason != CheckpointReason::datagram_mismatch && reason != CheckpointReason::deadline) {
    return;
  }
  // The oldest unmatched datagram of each VM: FIFO matching pairs them (none on the SVM's
  // side: it sent nothing to compare with).
  uint32_t p = c.pvm.head, s = c.svm.head;
  while (p != kNil && held_[p].matched) p = held_[p].next;
  if (p == kNil || s == kNil) return;
  const Held& hp = held_[p];
  const Held& hs = held_[s];
  if (reason != CheckpointReason::deadline) r.frame_ns = std::max(hp.arrival_ns, hs.arrival_ns);
  const uint8_t* bp = dgram_.compared_bytes(hp);
  const uint8_t* bs = dgram_.compared_bytes(hs);
  const uint32_t diff = first_difference(bp, bs, std::min(hp.payload_len, hs.payload_len));
  d.stream_offset = diff;
  d.has_offset = true;
  const uint32_t before = std::min<uint32_t>(kExplainBefore, diff);
  d.shown_before = static_cast<uint8_t>(before);
  take(bp, hp.payload_len, diff, before, d.pvm, d.pvm_len);
  take_line(bp, diff, d);
  take(bs, hs.payload_len, diff, before, d.svm, d.svm_len);
}

}  // namespace lockstep
