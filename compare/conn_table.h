// The connection table: one record per flow (TCP connection, datagram flow, non-IP
// ethertype per VLAN), found by an open-addressing index over the flow hash, ordered by
// last use (LRU) for eviction and idle expiry, with a FIFO of closed TCP connections
// that linger before they go.
//
// Owns the records (hot `Conn` and cold `ConnCold`, same index), the index, the free
// list, the LRU list and the closing FIFO. Invariants: fixed capacity sized at creation
// (a full table is a counted verdict and a table_full checkpoint request, never a
// reallocation); every record in use is in the index and on the LRU list exactly once;
// eviction and expiry take only a record that holds no frame (held output is never
// discarded), and eviction spares TCP state that translation still needs. What the
// fields of a record mean is the compare parts' (tcp_stream.h, datagram.h); the table
// only creates, finds, orders and frees records. The normalization slot of a record
// that goes is given back through the hook set by the engine (set_on_expire).
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "compare/checkpoint_state.h"
#include "compare/counters.h"
#include "compare/flow_key.h"
#include "compare/held_store.h"
#include "compare/policy.h"
#include "compare/seqnum.h"

namespace lockstep {

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

// Three cache lines exactly (aligned, 192 bytes): what is read only after a rebase
// or on SYNs is in ConnCold.
struct alignas(64) Conn {
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
  uint32_t ts_offset = 0;      // svm TSval = pvm TSval + ts_offset
  // ACK progress (docs/design.md §5.2): the highest cumulative ACK each VM has sent, in
  // the client's sequence space (the same for both VMs). Read on every frame: kept here,
  // with the compare state; the SVM's SACK ranges and the SYN/ACK bookkeeping are in
  // ConnCold.
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
  bool stale_valid = false;    // ConnCold's stale_offset/rebase_seq meaningful until the
                               // next rebase
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

// What a connection needs only on SYNs, SYN/ACKs, SACK blocks and after a rebase, in a
// table beside the connection table (same index) so that the state every frame reads
// stays in fewer cache lines. Reset with its connection.
struct ConnCold {
  uint64_t closed_ns = 0;  // when the connection closed (its linger starts)
  uint32_t divergences = 0;  // checkpoints this connection's divergences asked for
  // The client ranges the SVM selectively acknowledged above its cumulative ACK
  // (Conn::svm_sack_count of them, merged), [left, right) pairs.
  std::array<SeqNum, 2 * kSvmSackRanges> svm_sack{};
  uint32_t pvm_synack_ack = 0, svm_synack_ack = 0;  // the SYN/ACKs' ACKs
  uint32_t pvm_tsval_syn = 0, svm_tsval_syn = 0;    // the SYNs' TSvals
  uint32_t stale_offset = 0;  // Conn::seq_offset before the last rebase (late SVM frames)
  SeqNum rebase_seq;          // compare point set by the last rebase
  bool pvm_synack = false, svm_synack = false;
};

// Fixed-capacity index: open addressing with linear probing and backward-shift
// deletion (no tombstones). Capacity is a power of two, at least twice the connections.
class ConnIndex {
 public:
  explicit ConnIndex(uint32_t max_conns);
  uint32_t find(const FlowKey& k, uint64_t hash, const std::vector<Conn>& conns) const {
    const uint32_t tag = static_cast<uint32_t>(hash >> 32);
    for (uint32_t i = static_cast<uint32_t>(hash) & mask_;; i = (i + 1) & mask_) {
      const Bucket& b = buckets_[i];
      if (b.conn == kNil) return kNil;
      if (b.tag == tag && conns[b.conn].key == k) return b.conn;
    }
  }
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
  // The mask before the vector: with the table's alignment, both and the records' base
  // lie in one cache line (the first line a frame of a cold table reads).
  uint32_t mask_ = 0;
  std::vector<Bucket> buckets_;
};

class alignas(64) ConnTable {
 public:
  ConnTable(uint32_t max_conns, Counters& c, CheckpointState& cp);

  Conn& operator[](uint32_t ci) { return conns_[ci]; }
  const Conn& operator[](uint32_t ci) const { return conns_[ci]; }
  ConnCold& cold(uint32_t ci) { return cold_[ci]; }
  const ConnCold& cold(uint32_t ci) const { return cold_[ci]; }
  ConnCold& cold_of(const Conn& c) { return cold_[index_of(c)]; }
  const ConnCold& cold_of(const Conn& c) const { return cold_[index_of(c)]; }
  uint32_t index_of(const Conn& c) const { return static_cast<uint32_t>(&c - conns_.data()); }
  size_t capacity() const { return conns_.size(); }

  // The record of flow k, created when absent and `create` (the oldest idle record that
  // may go makes room in a full table); kNil when absent, or when the table is full:
  // then counted (conns_table_full) and a table_full checkpoint requested.
  uint32_t lookup_or_create(const FlowKey& k, uint64_t hash, ConnKind kind, uint64_t now,
                            bool create) {
    const uint32_t ci = index_.find(k, hash, conns_);
    if (ci != kNil || !create) return ci;
    return create_slow(k, hash, kind, now);
  }
  uint32_t lookup_or_create(const FlowKey& k, ConnKind kind, uint64_t now, bool create) {
    return lookup_or_create(k, flow_hash(k), kind, now, create);
  }

  // Burst helpers (ConnIndex). hot_line(): the line with the index's base and mask and
  // the records' base, which every lookup reads first.
  const void* hot_line() const { return &index_; }
  void prefetch(uint64_t hash) const { index_.prefetch(hash); }
  const Conn* peek(uint64_t hash) const {
    const uint32_t ci = index_.peek(hash);
    return ci == kNil ? nullptr : &conns_[ci];
  }

  // Marks use at `now`: the record becomes the newest.
  void touch(uint32_t ci, uint64_t now) {
    conns_[ci].last_seen_ns = now;
    if (lru_tail_ != ci) {
      lru_unlink(ci);
      lru_append(ci);
    }
  }
  // A TCP connection closed (RST, or FIN both ways): it lingers, then goes.
  void mark_closed(uint32_t ci, uint64_t now);
  // Expires, a bounded number per call, idle records and closed ones past their linger
  // that hold nothing.
  void expire_idle(uint64_t now, uint64_t idle_ns, uint64_t linger_ns);

  static bool holds(const Conn& c) { return c.pvm.count + c.svm.count + c.ingress.count > 0; }

  // Records in use, oldest first: for (ci = oldest(); ci != kNil; ci = newer(ci)).
  uint32_t oldest() const { return lru_head_; }
  uint32_t newest() const { return lru_tail_; }
  uint32_t newer(uint32_t ci) const { return conns_[ci].lru_next; }
  uint32_t older(uint32_t ci) const { return conns_[ci].lru_prev; }

  // Called with each record that goes, before it is freed.
  void set_on_expire(void (*fn)(void*, Conn&), void* ctx) {
    on_expire_ = fn;
    on_expire_ctx_ = ctx;
  }

  size_t memory_bytes() const {
    return conns_.size() * (sizeof(Conn) + sizeof(ConnCold)) +
           conns_.size() * index_.bytes_per_conn() * 2;
  }

 private:
  uint32_t create_slow(const FlowKey& k, uint64_t hash, ConnKind kind, uint64_t now);
  bool evict_one();
  void expire(uint32_t ci);
  void lru_unlink(uint32_t ci) {
    Conn& c = conns_[ci];
    if (c.lru_prev != kNil) conns_[c.lru_prev].lru_next = c.lru_next;
    else lru_head_ = c.lru_next;
    if (c.lru_next != kNil) conns_[c.lru_next].lru_prev = c.lru_prev;
    else lru_tail_ = c.lru_prev;
    c.lru_prev = c.lru_next = kNil;
  }
  void lru_append(uint32_t ci) {
    Conn& c = conns_[ci];
    c.lru_prev = lru_tail_;
    c.lru_next = kNil;
    if (lru_tail_ != kNil) conns_[lru_tail_].lru_next = ci;
    else lru_head_ = ci;
    lru_tail_ = ci;
  }

  // The index and the records first, in the table's first line (hot_line()).
  ConnIndex index_;
  std::vector<Conn> conns_;
  std::vector<ConnCold> cold_;  // same index as conns_
  uint32_t free_ = kNil;  // linked through lru_next
  uint32_t lru_head_ = kNil, lru_tail_ = kNil;
  std::vector<uint32_t> closing_;  // FIFO ring of closed connections
  size_t closing_head_ = 0;
  Counters& c_;
  CheckpointState& cp_;
  void (*on_expire_)(void*, Conn&) = nullptr;
  void* on_expire_ctx_ = nullptr;
};

}  // namespace lockstep
