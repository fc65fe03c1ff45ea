// Internals of the compare engine, shared by engine.cpp (dispatch, table, checkpoints,
// modes), tcp_stream.cpp (TCP byte-stream compare and ack translation), datagram.cpp
// (FIFO datagram compare) and frag.cpp (IP reassembly). Not part of the public API.
//
// Ownership: one EngineImpl per worker thread; every structure below belongs to it.
// Memory is sized at creation: the held-frame pool, the connection pool and its index,
// the timer wheel and the fragment table never grow on the per-frame path.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "compare/counters.h"
#include "compare/engine.h"
#include "compare/normalize.h"
#include "compare/parse.h"
#include "compare/policy.h"
#include "compare/seqnum.h"
#include "compare/timer_wheel.h"

namespace lockstep {

inline constexpr uint32_t kNil = UINT32_MAX;

// A frame the engine holds: PVM output waiting for its match, SVM output waiting for
// the PVM's, or an SVM-bound client frame waiting for the ack offset. The bytes are the
// caller's (see engine.h); the engine keeps a pointer.
struct Held {
  uint64_t handle = 0;
  uint8_t* data = nullptr;
  uint32_t len = 0;
  uint32_t next = kNil;       // next in the owner's list (arrival order) or the free list
  uint32_t conn = kNil;       // owning connection, kNil for frames held without one
  uint32_t frag_next = kNil;  // further fragments of the same datagram (datagram groups)
  SeqNum seq;                 // TCP: start of the stream extent in PVM space
  SeqNum ack;                 // TCP, PVM: the client byte it acknowledges up to (has_ack)
  uint32_t ext = 0;           // TCP: SYN + payload + FIN + RST positions it occupies
  uint32_t payload_off = 0;   // offset of compared bytes in `data` (or in the reasm buffer)
  uint32_t payload_len = 0;
  uint32_t reasm = kNil;      // reassembly buffer holding the compared bytes, if any
  uint64_t arrival_ns = 0;
  uint8_t tcp_flags = 0;
  Side side = Side::pvm;
  bool matched = false;       // datagram matched, waiting for earlier ones to go
  bool deadline_fired = false;
  bool untranslated = false;  // SVM segment stored with its raw sequence number
  bool has_ack = false;       // TCP, PVM: ACK flag set, `ack` meaningful
  bool sack_wait = false;     // TCP, PVM: SACK blocks the SVM has not acknowledged yet
  bool ack_waited = false;    // TCP, PVM: the SVM had not acknowledged its ACK on arrival
  bool retransmit = false;    // TCP, PVM: every position already matched on arrival
  bool live = false;
};

// Singly linked FIFO of held frames.
struct HeldList {
  uint32_t head = kNil, tail = kNil, count = 0;
};

enum class ConnKind : uint8_t { tcp, datagram, non_ip };

inline constexpr unsigned kSvmSackRanges = 4;

// TCP states as seen by the engine (VM output direction drives compare; the client's
// FIN/RST come from ingress):
//
//   new ──PVM/SVM SYN──► syn ──data or ACK──► established ──FIN both ways──► closed
//    │                                              │
//    └──────────────── data mid-stream ─────────────┘ ───────── RST ─────────► closed
//
// closed connections linger (closed_linger_ms) to absorb retransmissions, then expire
// once they hold nothing.
enum class TcpState : uint8_t { fresh, syn, established, closed };

struct Conn {
  FlowKey key;
  uint64_t hash = 0;
  uint64_t last_seen_ns = 0;
  uint64_t bytes_matched = 0;
  HeldList pvm, svm, ingress;   // arrival order
  uint32_t lru_prev = kNil, lru_next = kNil;
  uint32_t unmatched_pvm = 0, unmatched_svm = 0;  // datagrams
  // TCP stream of the VMs' output, compared in the PVM's sequence space.
  SeqNum cmp;                  // every position before it is matched
  SeqNum pvm_next;             // end of the furthest PVM extent seen
  SeqNum pvm_isn, svm_isn;
  uint32_t seq_offset = 0;     // svm = pvm + seq_offset
  uint32_t stale_offset = 0;   // seq_offset before the last rebase (late SVM frames)
  SeqNum rebase_seq;           // compare point set by the last rebase
  uint32_t ts_offset = 0;      // svm TSval = pvm TSval + ts_offset
  // ACK progress (DESIGN.md §5.2): the highest cumulative ACK each VM has sent, in the
  // client's sequence space (the same for both VMs). Read on every frame: kept here, with
  // the compare state; the SVM's SACK ranges and the SYN/ACK bookkeeping are in ConnCold.
  SeqNum pvm_ack, svm_ack;
  // SVM ACK = client byte + client_offset. Zero whenever lockstep mirrors the client (the
  // SVM then sees the client's very segments); learned from the two SYN/ACKs, it is not
  // zero only where the SVM's client was another host (captures of two test worlds).
  uint32_t client_offset = 0;
  uint32_t policy_gen = 0;
  uint32_t norm = kNil;        // normalization slot (normalize.h), kNil: none applies
  uint32_t norm_gen = 0;       // rule generation `norm` was chosen under
  ConnKind kind = ConnKind::tcp;
  TcpState state = TcpState::fresh;
  PolicyAction policy = PolicyAction::compare;
  bool cmp_valid = false;
  bool pvm_seen = false;       // pvm_next is meaningful
  bool pvm_syn = false, svm_syn = false;
  bool offset_known = false;
  bool stale_valid = false;    // stale_offset/rebase_seq meaningful until the next rebase
  bool ts_known = false;
  bool pvm_ts_syn = false, svm_ts_syn = false;
  bool diverged = false;
  bool fin_vm = false, fin_client = false;
  bool closing_listed = false;
  bool in_use = false;
  bool pvm_ack_seen = false, svm_ack_seen = false;
  bool svm_sack_seen = false;  // the SVM uses SACK on this connection
  uint8_t svm_sack_count = 0;  // ranges in ConnCold::svm_sack
};

// What a connection needs only on SYNs, SYN/ACKs and SACK blocks, in a table beside the
// connection table (same index) so that the state every frame reads stays in fewer
// cache lines. Reset with its connection.
struct ConnCold {
  uint64_t closed_ns = 0;  // when the connection closed (its linger starts)
  uint32_t divergences = 0;  // checkpoints this connection's divergences asked for
  // The client ranges the SVM selectively acknowledged above its cumulative ACK
  // (Conn::svm_sack_count of them, merged), [left, right) pairs.
  std::array<SeqNum, 2 * kSvmSackRanges> svm_sack{};
  uint32_t pvm_synack_ack = 0, svm_synack_ack = 0;  // the SYN/ACKs' ACKs
  uint32_t pvm_tsval_syn = 0, svm_tsval_syn = 0;    // the SYNs' TSvals
  bool pvm_synack = false, svm_synack = false;
};

// Fixed-capacity index: open addressing with linear probing and backward-shift
// deletion (no tombstones). Capacity is a power of two, at least twice the connections.
class ConnIndex {
 public:
  explicit ConnIndex(uint32_t max_conns);
  uint32_t find(const FlowKey& k, uint64_t hash, const std::vector<Conn>& conns) const;
  // Burst helpers: the home bucket of a hash into the cache; the connection the first
  // bucket with the hash's tag names (kNil when none before an empty bucket), unverified.
  void prefetch(uint64_t hash) const {
    __builtin_prefetch(&buckets_[static_cast<uint32_t>(hash) & mask_]);
  }
  uint32_t peek(uint64_t hash) const {
    const uint32_t tag = static_cast<uint32_t>(hash >> 32);
    for (uint32_t i = static_cast<uint32_t>(hash) & mask_, n = 0; n < 4; i = (i + 1) & mask_, ++n) {
      const Bucket& b = buckets_[i];
      if (b.conn == kNil) return kNil;
      if (b.tag == tag) return b.conn;
    }
    return kNil;
  }
  void insert(uint64_t hash, uint32_t conn);
  void erase(uint64_t hash, uint32_t conn, const std::vector<Conn>& conns);
  size_t bytes_per_conn() const { return sizeof(Bucket) * 2; }

 private:
  struct Bucket {
    uint32_t tag = 0;  // high bits of the hash
    uint32_t conn = kNil;
  };
  std::vector<Bucket> buckets_;
  uint32_t mask_ = 0;
};

struct FragKey {
  IpAddr src, dst;
  uint32_t id = 0;
  uint8_t proto = 0;
  Side side = Side::pvm;
  uint16_t vlan = 0;
  friend bool operator==(const FragKey&, const FragKey&) = default;
};

// One datagram being reassembled.
struct FragEntry {
  FragKey key;
  bool in_use = false;
  bool have_first = false, have_last = false;
  uint32_t total_len = 0;         // payload length after the IP header, when the last is seen
  uint32_t first_held = kNil;     // frame holding the L4 header (offset 0)
  HeldList frames;                // every fragment frame, arrival order
  std::vector<std::pair<uint32_t, uint32_t>> ranges;  // received [offset, end)
  std::vector<uint8_t> buf;       // reassembled bytes from the end of the IP header
  bool complete = false;
  bool in_age = false;            // linked in the age FIFO
  uint64_t created_ns = 0;
  uint32_t next_age = kNil;       // FIFO of entries by creation time
};

// A TCP stream element at a position (tcp_stream.cpp, normalize_tcp.cpp).
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
inline uint32_t find_cover(const std::vector<Held>& held, const HeldList& l, SeqNum pos) {
  for (uint32_t idx = l.head; idx != kNil; idx = held[idx].next) {
    const Held& h = held[idx];
    if (!h.untranslated && before_eq(h.seq, pos) && before(pos, h.seq + h.ext)) return idx;
  }
  return kNil;
}

class EngineImpl {
 public:
  EngineImpl(const Settings& s, PolicyTable policy);

  // engine.cpp
  bool push(Side side, uint64_t handle, uint8_t* data, uint32_t len, uint64_t now);
  void push_burst(std::span<const Engine::Input> in, uint64_t now, std::span<bool> to_pvm);
  void advance(uint64_t now);
  uint64_t next_deadline() const;
  bool due(uint64_t now) const;
  uint64_t other_deadline() const;  // fragments, hybrid mode: all but held frames
  uint32_t drain(std::span<Action> out);
  uint32_t pending_actions() const { return static_cast<uint32_t>(out_.size() - out_head_); }
  std::optional<CheckpointRequest> take_checkpoint_request();
  void request_checkpoint(CheckpointReason reason, const FlowKey* flow, uint64_t now);
  void checkpoint_done(uint64_t epoch, uint64_t now);
  void failover(Survivor s, uint64_t now);
  void set_mode(Mode m, uint64_t now);
  bool apply_settings(const Settings& s, std::string& error);
  void flush_all(uint64_t now);
  void list_connections(std::vector<ConnInfo>& out, size_t limit) const;
  size_t memory_bytes() const;

  Settings settings_;
  Counters c_;
  Mode mode_ = Mode::colo;
  uint64_t epoch_ = 1;
  bool outstanding_ = false;
  std::optional<CheckpointRequest> pending_request_;
  std::optional<Survivor> failed_over_;
  std::optional<Mode> mode_after_checkpoint_;

 private:
  friend class TcpCompare;

  // Derived from settings_.
  uint64_t timeout_ns_ = 0, ack_ns_ = 0, idle_ns_ = 0, linger_ns_ = 0, frag_timeout_ns_ = 0;
  uint64_t buffer_epoch_ns_ = 0;
  PolicyAction non_ip_policy_ = PolicyAction::pass, nd_policy_ = PolicyAction::pass;
  bool malformed_pass_ = false;
  PolicyTable policy_;
  uint32_t policy_gen_ = 1;
  void derive();

  // Held frames.
  std::vector<Held> held_;
  uint32_t free_held_ = kNil;
  uint32_t held_used_ = 0;
  uint32_t held_soft_limit_ = 0;
  TimerWheel timers_;
  std::vector<uint32_t> fired_;  // scratch for timer callbacks
  uint32_t alloc_held(Side side, uint64_t handle, uint8_t* data, uint32_t len, uint64_t now);
  void free_held(uint32_t idx);
  void list_push(HeldList& l, uint32_t idx);
  uint32_t list_pop(HeldList& l);
  void list_remove(HeldList& l, uint32_t idx, uint32_t prev);
  void arm_deadline(uint32_t idx, uint64_t when);

  // Outcomes: each takes the frame (and its fragments) out of engine ownership.
  std::vector<Action> out_;
  size_t out_head_ = 0;
  void emit(uint64_t handle, ActionKind kind, uint8_t reason, Side side);
  void release_frame(uint32_t idx, ReleaseReason why);
  void drop_frame(uint32_t idx, DropReason why);
  void free_svm_frame(uint32_t idx);
  void forward_ingress(uint32_t idx, bool translated);
  void release_direct(Side side, uint64_t handle, ReleaseReason why);
  void drop_direct(Side side, uint64_t handle, DropReason why);

  // Connections.
  std::vector<Conn> conns_;
  std::vector<ConnCold> cold_;  // same index as conns_
  ConnCold& cold_of(const Conn& c) { return cold_[static_cast<size_t>(&c - conns_.data())]; }
  const ConnCold& cold_of(const Conn& c) const {
    return cold_[static_cast<size_t>(&c - conns_.data())];
  }
  ConnIndex index_;
  uint32_t free_conn_ = kNil;  // linked through lru_next
  uint32_t lru_head_ = kNil, lru_tail_ = kNil;
  std::vector<uint32_t> closing_;  // FIFO ring of closed connections
  size_t closing_head_ = 0;
  uint32_t lookup_or_create(const FlowKey& k, ConnKind kind, uint64_t now, bool create) {
    return lookup_or_create(k, flow_hash(k), kind, now, create);
  }
  uint32_t lookup_or_create(const FlowKey& k, uint64_t hash, ConnKind kind, uint64_t now,
                            bool create);
  void touch(uint32_t ci, uint64_t now);
  void lru_unlink(uint32_t ci);
  void lru_append(uint32_t ci);
  bool evict_one(uint64_t now);
  void expire_conn(uint32_t ci);
  bool conn_holds(const Conn& c) const {
    return c.pvm.count + c.svm.count + c.ingress.count > 0;
  }
  void mark_closed(uint32_t ci, uint64_t now);
  void expire_idle(uint64_t now);
  PolicyAction policy_of(Conn& c);

  // Per-frame dispatch. `keyed`: the frame's flow key and hash computed beforehand (a
  // burst), or null.
  struct Keyed {
    FlowKey key;
    uint64_t hash = 0;
  };
  bool dispatch(Side side, uint64_t handle, uint8_t* data, uint32_t len, uint64_t now,
                const ParsedFrame& f, const Keyed* keyed);
  void on_pvm_svm(Side side, uint64_t handle, uint8_t* data, uint32_t len, uint64_t now,
                  const ParsedFrame& f, const Keyed* keyed);
  bool on_ingress(uint64_t handle, uint8_t* data, uint32_t len, uint64_t now,
                  const ParsedFrame& f, const Keyed* keyed);
  void hold_without_conn(Side side, uint64_t handle, uint8_t* data, uint32_t len, uint64_t now);
  HeldList unowned_;  // PVM frames held without a connection (table full, buffer mode)

  // TCP (tcp_stream.cpp)
  void tcp_output(uint32_t ci, uint32_t idx, const ParsedFrame& f, uint64_t now);
  bool tcp_match_on_arrival(uint32_t ci, Side side, uint64_t handle, uint8_t* data,
                            const ParsedFrame& f);
  void tcp_compare(uint32_t ci, uint64_t now);
  void tcp_release_matched(Conn& c);
  void tcp_note_ack(Conn& c, Side side, const uint8_t* data, const ParsedFrame& f);
  void tcp_note_ack_slow(Conn& c, Side side, const uint8_t* data, const ParsedFrame& f);
  bool tcp_ack_ready(const Conn& c, Held& h);
  bool tcp_sack_recheck(const Conn& c, Held& h);
  bool tcp_sack_covered(const Conn& c, const uint8_t* data, const ParsedFrame& f) const;
  bool tcp_deadline(uint32_t idx, uint64_t now);
  void tcp_learn_offset(uint32_t ci);
  void tcp_ingress(uint32_t ci, uint64_t handle, uint8_t* data, uint32_t len,
                   const ParsedFrame& f, uint64_t now);
  void tcp_reset_for_reuse(Conn& c);
  void tcp_track_uncompared(Side side, const ParsedFrame& f, uint64_t now);
  void tcp_translate_ingress(const Conn& c, uint8_t* data, const ParsedFrame& f);
  void tcp_translate_svm_output(const Conn& c, uint8_t* data, uint32_t len);
  void tcp_flush_ingress(uint32_t ci, bool translated);

  // Normalization (normalize_tcp.cpp; rules in normalize.h). norm_ is null without
  // rules: then the only cost on the compare path is the test of norm_ in tcp_compare.
  std::unique_ptr<Normalizer> norm_;
  uint32_t norm_gen_ = 1;  // bumped when the rules change; Conn::norm_gen follows
  enum class NormVerdict : uint8_t { skipped, wait, diverge };
 public:
  void norm_install(std::unique_ptr<Normalizer> n);
 private:
  bool norm_tcp_compare(uint32_t ci, uint64_t now);
  uint32_t norm_window(Conn& c, unsigned side, SeqNum x, uint32_t& skip, SeqNum& from,
                       bool& done);
  NormVerdict norm_resolve(Conn& c);
  void norm_detach(Conn& c);
  void norm_rebase(Conn& c);
  uint32_t norm_ack_offset(const Conn& c, uint32_t pvm_pos) const;
  bool norm_dgram_equal(const Held& a, const Held& b);

  // Datagrams (datagram.cpp)
  void dgram_output(uint32_t ci, uint32_t idx, uint64_t now);
  void dgram_release_prefix(Conn& c);
  bool dgram_equal(const Held& a, const Held& b);
  const uint8_t* compared_bytes(const Held& h) const;

  // Fragments (frag.cpp)
  std::vector<FragEntry> frags_;
  uint32_t frag_age_head_ = kNil, frag_age_tail_ = kNil;
  void frag_input(Side side, uint64_t handle, uint8_t* data, uint32_t len, uint64_t now,
                  const ParsedFrame& f);
  void frag_complete(uint32_t fi, uint64_t now);
  void frag_discard(uint32_t fi, DropReason why);
  void frag_expire(uint64_t now);

  // Checkpoints and modes.
  // `frame`: the held frame whose deadline fired (deadline, ack_divergence), else kNil.
  void diverge(uint32_t ci, CheckpointReason reason, uint64_t now, uint32_t frame = kNil);
  // explain.cpp: what the request of a divergence on connection ci can say.
  void explain(uint32_t ci, CheckpointReason reason, uint32_t frame, CheckpointRequest& r) const;
  void release_all_held(ReleaseReason why);
  std::vector<uint64_t> checkpoint_times_;  // ring for the hybrid policy
  size_t checkpoint_times_head_ = 0;
  uint64_t buffer_since_ns_ = 0;
  bool hybrid_active_ = false;
  void hybrid_on_checkpoint(uint64_t now);
  uint64_t last_now_ = 0;
};

// ---------------------------------------------------------------------------- hot helpers
// Inline here rather than in engine.cpp: every frame goes through several of them from
// engine.cpp, tcp_stream.cpp and datagram.cpp, and a call per step costs as much as
// the step.

inline uint32_t EngineImpl::alloc_held(Side side, uint64_t handle, uint8_t* data,
                                       uint32_t len, uint64_t now) {
  uint32_t idx = free_held_;
  if (idx == kNil) return kNil;
  if (held_used_ + 1 >= held_soft_limit_) {
    // The reserve above the soft limit absorbs frames until the checkpoint completes.
    request_checkpoint(CheckpointReason::held_full, nullptr, now);
  }
  Held& h = held_[idx];
  free_held_ = h.next;
  h = Held{};
  h.handle = handle;
  h.data = data;
  h.len = len;
  h.side = side;
  h.arrival_ns = now;
  h.live = true;
  ++held_used_;
  switch (side) {
    case Side::pvm: ++c_.held_pvm; break;
    case Side::svm: ++c_.held_svm; break;
    case Side::ingress: ++c_.held_ingress; break;
  }
  return idx;
}

inline void EngineImpl::free_held(uint32_t idx) {
  Held& h = held_[idx];
  timers_.cancel(idx);
  switch (h.side) {
    case Side::pvm: --c_.held_pvm; break;
    case Side::svm: --c_.held_svm; break;
    case Side::ingress: --c_.held_ingress; break;
  }
  h.live = false;
  h.next = free_held_;
  free_held_ = idx;
  --held_used_;
}

inline void EngineImpl::list_push(HeldList& l, uint32_t idx) {
  held_[idx].next = kNil;
  if (l.tail == kNil) l.head = idx;
  else held_[l.tail].next = idx;
  l.tail = idx;
  ++l.count;
}

inline uint32_t EngineImpl::list_pop(HeldList& l) {
  uint32_t idx = l.head;
  if (idx == kNil) return kNil;
  l.head = held_[idx].next;
  if (l.head == kNil) l.tail = kNil;
  --l.count;
  held_[idx].next = kNil;
  return idx;
}

inline void EngineImpl::emit(uint64_t handle, ActionKind kind, uint8_t reason, Side side) {
  out_.push_back(Action{handle, kind, reason, side});
}

inline void EngineImpl::release_direct(Side side, uint64_t handle, ReleaseReason why) {
  emit(handle, ActionKind::release, static_cast<uint8_t>(why), side);
  ++c_.released[static_cast<unsigned>(why)];
}

inline void EngineImpl::lru_unlink(uint32_t ci) {
  Conn& c = conns_[ci];
  if (c.lru_prev != kNil) conns_[c.lru_prev].lru_next = c.lru_next;
  else lru_head_ = c.lru_next;
  if (c.lru_next != kNil) conns_[c.lru_next].lru_prev = c.lru_prev;
  else lru_tail_ = c.lru_prev;
  c.lru_prev = c.lru_next = kNil;
}

inline void EngineImpl::lru_append(uint32_t ci) {
  Conn& c = conns_[ci];
  c.lru_prev = lru_tail_;
  c.lru_next = kNil;
  if (lru_tail_ != kNil) conns_[lru_tail_].lru_next = ci;
  else lru_head_ = ci;
  lru_tail_ = ci;
}

inline void EngineImpl::touch(uint32_t ci, uint64_t now) {
  conns_[ci].last_seen_ns = now;
  if (lru_tail_ != ci) {
    lru_unlink(ci);
    lru_append(ci);
  }
}

inline PolicyAction EngineImpl::policy_of(Conn& c) {
  if (c.policy_gen != policy_gen_) {
    c.policy = policy_.lookup(c.key);
    c.policy_gen = policy_gen_;
  }
  return c.policy;
}

inline void EngineImpl::arm_deadline(uint32_t idx, uint64_t when) { timers_.schedule(idx, when); }

// Whether the SVM has acknowledged every client byte PVM frame h acknowledges: its
// cumulative ACK, and its SACK blocks where they were not covered on arrival (the frame
// is parsed again for those, rarely).
inline bool EngineImpl::tcp_ack_ready(const Conn& c, Held& h) {
  if (h.has_ack && (!c.svm_ack_seen || before(c.svm_ack, h.ack))) return false;
  return !h.sack_wait || tcp_sack_recheck(c, h);
}

// Notes the ACK of a VM frame (tcp_stream.cpp has the rule). Inline for the common frame:
// an ACK without SYN or SACK, and no SVM SACK range to prune.
inline void EngineImpl::tcp_note_ack(Conn& c, Side side, const uint8_t* data,
                                     const ParsedFrame& f) {
  const bool svm = side == Side::svm;
  if ((f.tcp_flags & kTcpSyn) || f.sack_count != 0 || f.sack_permitted ||
      (svm && c.svm_sack_count != 0)) {
    tcp_note_ack_slow(c, side, data, f);
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
