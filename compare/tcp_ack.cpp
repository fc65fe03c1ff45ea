// ACK progress and translation for TCP stream compare (tcp_stream.h).
//
// ACK progress (docs/design.md §5.2): both VMs acknowledge the client's sequence space,
// so their cumulative ACKs (and SACK blocks) are comparable as they are. Per connection
// the highest ACK each VM has sent and up to four ranges the SVM selectively
// acknowledged; a PVM frame leaves only once the SVM has acknowledged every client byte
// it acknowledges (tcp_stream.cpp has the release rule).
//
// Translation: client segments bound for the SVM get ack += seq_offset, SACK edges +=
// seq_offset and TSecr += ts_offset; after a failover to the SVM its output gets seq -=
// seq_offset and TSval -= ts_offset. The TCP checksum is patched incrementally.
#include "compare/checksum.h"
#include "compare/tcp_stream.h"

namespace lockstep {

namespace {

void patch32(uint8_t* field, uint8_t* csum, uint32_t new_value) {
  uint32_t old_value = load_be32(field);
  if (old_value == new_value) return;
  store_be32(field, new_value);
  csum_update32(csum, old_value, new_value);
}

}  // namespace

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

void TcpStream::note_ack_slow(Conn& c, Side side, const uint8_t* data,
                                   const ParsedFrame& f) {
  const bool acks = (f.tcp_flags & kTcpAck) != 0;
  if (acks && (f.tcp_flags & kTcpSyn) && side != Side::ingress) {
    // A SYN/ACK acknowledges the client's ISN + 1: both VMs' must agree, or the SVM's
    // client numbered its bytes otherwise.
    const bool pvm = side == Side::pvm;
    ConnCold& k = conns_.cold_of(c);
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
      sack_add(c, conns_.cold_of(c), SeqNum(load_be32(block)) - c.client_offset,
               SeqNum(load_be32(block + 4)) - c.client_offset);
    }
  }
  if (moved && c.svm_sack_count != 0) sack_prune(c, conns_.cold_of(c));
}

bool TcpStream::sack_covered(const Conn& c, const uint8_t* data,
                                  const ParsedFrame& f) const {
  if (f.sack_count == 0 || !c.svm_sack_seen) return true;  // compared where both use SACK
  if (!c.svm_ack_seen) return false;
  for (unsigned i = 0; i < f.sack_count; ++i) {
    const uint8_t* block = data + f.sack_off[i];
    const SeqNum l(load_be32(block)), r(load_be32(block + 4));
    if (before_eq(r, c.svm_ack)) continue;  // D-SACK or below the cumulative ACK
    const SeqNum from = seq_max(l, c.svm_ack);
    bool covered = false;
    const ConnCold& k = conns_.cold_of(c);
    for (unsigned j = 0; j < c.svm_sack_count && !covered; ++j) {
      covered = before_eq(k.svm_sack[2 * j], from) && before_eq(r, k.svm_sack[2 * j + 1]);
    }
    if (!covered) return false;
  }
  return true;
}

bool TcpStream::sack_recheck(const Conn& c, Held& h) {
  ParsedFrame f = kFreshFrame;
  if (parse_fresh_frame(h.data, h.len, f) == ParseStatus::ok && f.is_tcp() &&
      !sack_covered(c, h.data, f)) {
    return false;
  }
  h.sack_wait = false;
  return true;
}

void TcpStream::translate_ingress(const Conn& c, uint8_t* data, const ParsedFrame& f) {
  if (!f.is_tcp() || f.l4_checksum_off == 0) return;
  uint8_t* csum = data + f.l4_checksum_off;
  if (c.offset_known && (c.seq_offset != 0 || c.norm != kNil)) {
    // With normalization the offset may have changed at a span's end: positions before
    // it keep the previous one (norm_ack_offset).
    auto off = [&](uint32_t pos) {
      return c.norm == kNil ? c.seq_offset : norm_ack_offset(c, pos);
    };
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
  if (t_.translate_timestamps && c.ts_known && c.ts_offset != 0 && f.has_timestamp &&
      f.tsecr != 0) {
    patch32(data + f.ts_off + 4, csum, f.tsecr + c.ts_offset);
    ++c_.tsecr_translated;
  }
}

void TcpStream::translate_svm_output(const Conn& c, uint8_t* data, uint32_t len) {
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
