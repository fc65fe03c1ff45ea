// TCP stream compare (docs/design.md §5.1-3): per connection, the VMs' output compared
// as byte streams in the PVM's sequence space; ISN learning; ACK progress (a PVM frame
// waits until the SVM has acknowledged what it acknowledges); the translation of client
// segments into the SVM's sequence space and of the SVM's output into the PVM's (after a
// failover); normalization rules on the stream (normalize_tcp.cpp).
//
// Owns the TCP fields of a connection record (Conn: cmp, pvm_next, ISNs and offsets,
// ACKs, SACK ranges in ConnCold, state, FIN/RST, the held pvm/svm/ingress lists of a TCP
// connection) and their invariants, written out in tcp_stream.cpp; and the normalizer
// (the rules, their per-connection slots and generation), which datagram compare reads.
// The records themselves are the table's (conn_table.h), the frames the held store's,
// their fates the outcomes'. A divergence goes to the engine through the DivergeDoor.
// Files: tcp_stream.cpp (compare, release, ISNs, deadlines), tcp_ack.cpp (ACK and SACK
// progress, translation), normalize_tcp.cpp (the normalizing loop).
#pragma once

#include <cstdint>
#include <memory>

#include "compare/checkpoint_state.h"
#include "compare/conn_table.h"
#include "compare/counters.h"
#include "compare/held_store.h"
#include "compare/normalize.h"
#include "compare/outcomes.h"
#include "compare/parse.h"
#include "compare/tuning.h"

namespace lockstep {

// A TCP stream element at a position (tcp_stream.cpp, normalize_tcp.cpp, explain.cpp).
enum class ElemKind : uint8_t { syn, data, fin, rst };

struct Elem {
  ElemKind kind;
  const uint8_t* bytes;
  uint32_t avail;
};

// What a segment holds at stream position `pos` (which it must cover).
inline Elem elem_at(const Held& h, SeqNum pos) {
  uint32_t off = static_cast<uint32_t>(pos.since(h.seq));
  const uint32_t syn = (h.tcp_flags & kTcpSyn) ? 1 : 0;
  if (syn && off == 0) return {ElemKind::syn, nullptr, 1};
  off -= syn;
  if (off < h.payload_len) {
    return {ElemKind::data, h.data + h.payload_off + off, h.payload_len - off};
  }
  off -= h.payload_len;
  if ((h.tcp_flags & kTcpFin) && off == 0) return {ElemKind::fin, nullptr, 1};
  return {ElemKind::rst, nullptr, 1};
}

// First held segment covering `pos`, skipping untranslated ones.
inline uint32_t find_cover(const HeldStore& held, const HeldList& l, SeqNum pos) {
  for (uint32_t idx = l.head; idx != kNil; idx = held[idx].next) {
    const Held& h = held[idx];
    if (!h.untranslated && before_eq(h.seq, pos) && before(pos, h.seq + h.ext)) return idx;
  }
  return kNil;
}

class TcpStream {
 public:
  TcpStream(const Tuning& t, ConnTable& conns, HeldStore& held, Outcomes& out, Counters& c,
            const CheckpointState& cp, DivergeDoor diverge)
      : t_(t), conns_(conns), held_(held), pool_(held.pool()), out_(out), c_(c), cp_(cp),
        diverge_(diverge) {}

  // A VM frame of connection ci, before it is held: notes its ACK (note_ack), then
  // match_on_arrival settles the lockstep case without holding it (true: done).
  void note_ack(Conn& c, Side side, const uint8_t* data, const ParsedFrame& f);
  bool match_on_arrival(uint32_t ci, Side side, uint64_t handle, uint8_t* data,
                        const ParsedFrame& f) {
    // Inline, the test that fails for the frame that arrives first (the other side holds
    // nothing, or this one already holds some): the out-of-line rest is for its copy.
    const Conn& c = conns_[ci];
    const bool pvm = side == Side::pvm;
    if ((pvm ? c.pvm : c.svm).count != 0 || (pvm ? c.svm : c.pvm).head == kNil) return false;
    return match_held_copy(ci, side, handle, data, f);
  }
  // A VM frame held as idx (Held::conn set): placed in the stream and compared.
  void output(uint32_t ci, uint32_t idx, const ParsedFrame& f, uint64_t now);
  // A client frame bound for the SVM: translated and forwarded, or held for the offset.
  void ingress(uint32_t ci, uint64_t handle, uint8_t* data, uint32_t len,
               const ParsedFrame& f, uint64_t now);
  // Modes without compare: keeps ISNs, ACKs and the PVM's stream position.
  void track_uncompared(Side side, const ParsedFrame& f, uint64_t now);
  // A held PVM frame's deadline: false when it is a plain deadline divergence for the
  // caller to declare (bytes unmatched); else handled here.
  bool deadline(uint32_t idx, uint64_t now);
  // Sends the held client frames on (translated: with the offset now known).
  void flush_ingress(uint32_t ci, bool translated);
  // Failover to the SVM: its output renumbered into the PVM's sequence space.
  void translate_svm_output(const Conn& c, uint8_t* data, uint32_t len);
  // A checkpoint made the SVM a copy of the PVM: offsets zero, compare from the PVM's
  // stream position, the SVM's ACK the PVM's.
  void rebase(Conn& c);

  // Normalization rules (normalize.h); null without rules: then the only cost on the
  // compare path is a test of the pointer.
  void norm_install(std::unique_ptr<Normalizer> n);
  void norm_detach(Conn& c);
  const std::unique_ptr<Normalizer>& normalizer() const { return norm_; }

 private:
  enum class NormVerdict : uint8_t { skipped, wait, diverge };

  bool match_held_copy(uint32_t ci, Side side, uint64_t handle, uint8_t* data,
                       const ParsedFrame& f);
  void compare(uint32_t ci, uint64_t now);
  void release_matched(Conn& c);
  void note_ack_slow(Conn& c, Side side, const uint8_t* data, const ParsedFrame& f);
  bool ack_ready(const Conn& c, Held& h);
  bool sack_recheck(const Conn& c, Held& h);
  bool sack_covered(const Conn& c, const uint8_t* data, const ParsedFrame& f) const;
  void learn_offset(uint32_t ci);
  void reset_for_reuse(Conn& c);
  void translate_ingress(const Conn& c, uint8_t* data, const ParsedFrame& f);

  bool norm_tcp_compare(uint32_t ci, uint64_t now);
  uint32_t norm_window(Conn& c, unsigned side, SeqNum x, uint32_t& skip, SeqNum& from,
                       bool& done);
  NormVerdict norm_resolve(Conn& c);
  void norm_rebase(Conn& c);
  uint32_t norm_ack_offset(const Conn& c, uint32_t pvm_pos) const;

  const Tuning& t_;
  ConnTable& conns_;
  HeldStore& held_;
  Held* const pool_;  // held_'s frames (HeldStore::pool), read on every frame
  Outcomes& out_;
  Counters& c_;
  const CheckpointState& cp_;
  DivergeDoor diverge_;
  std::unique_ptr<Normalizer> norm_;
  uint32_t norm_gen_ = 1;  // bumped when the rules change; Conn::norm_gen follows
};

// ---------------------------------------------------------------------------- hot helpers
// Inline here: every TCP frame goes through them, and a call per step costs as much as
// the step.

// Whether the SVM has acknowledged every client byte PVM frame h acknowledges: its
// cumulative ACK, and its SACK blocks where they were not covered on arrival (the frame
// is parsed again for those, rarely).
inline bool TcpStream::ack_ready(const Conn& c, Held& h) {
  if (h.has_ack && (!c.svm_ack_seen || before(c.svm_ack, h.ack))) return false;
  return !h.sack_wait || sack_recheck(c, h);
}

// Notes the ACK of a VM frame (tcp_ack.cpp has the rule). Inline for the common frame:
// an ACK without SYN or SACK, and no SVM SACK range to prune.
inline void TcpStream::note_ack(Conn& c, Side side, const uint8_t* data, const ParsedFrame& f) {
  const bool svm = side == Side::svm;
  if ((f.tcp_flags & kTcpSyn) || f.sack_count != 0 || f.sack_permitted ||
      (svm && c.svm_sack_count != 0)) {
    note_ack_slow(c, side, data, f);
    return;
  }
  if (!(f.tcp_flags & kTcpAck)) return;
  if (svm) {
    const SeqNum a = SeqNum(f.ack) - c.client_offset;
    if (!c.svm_ack_seen || after(a, c.svm_ack)) c.svm_ack = a;
    c.svm_ack_seen = true;
  } else {
    const SeqNum a(f.ack);
    if (!c.pvm_ack_seen || after(a, c.pvm_ack)) c.pvm_ack = a;
    c.pvm_ack_seen = true;
  }
}

}  // namespace lockstep
