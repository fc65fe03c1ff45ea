// The connection table (conn_table.h): index, creation, eviction and expiry.
#include "compare/conn_table.h"

namespace lockstep {

namespace {

uint32_t pow2_at_least(uint64_t n) {
  uint32_t p = 1;
  while (p < n && p < (1u << 31)) p <<= 1;
  return p;
}

}  // namespace

// ---------------------------------------------------------------------------- index

// ConnTable::hot_line(): the index's mask and base and the records' base in one line.
static_assert(sizeof(ConnIndex) + sizeof(std::vector<Conn>) <= 64);

ConnIndex::ConnIndex(uint32_t max_conns) {
  const uint32_t n = pow2_at_least(uint64_t{max_conns} * 2);
  buckets_.assign(n, Bucket{});
  mask_ = n - 1;
}

void ConnIndex::insert(uint64_t hash, uint32_t conn) {
  uint32_t i = static_cast<uint32_t>(hash) & mask_;
  while (buckets_[i].conn != kNil) i = (i + 1) & mask_;
  buckets_[i] = Bucket{static_cast<uint32_t>(hash >> 32), conn};
}

void ConnIndex::erase(uint64_t hash, uint32_t conn, const std::vector<Conn>& conns) {
  uint32_t hole = static_cast<uint32_t>(hash) & mask_;
  while (buckets_[hole].conn != conn) {
    if (buckets_[hole].conn == kNil) return;
    hole = (hole + 1) & mask_;
  }
  // Backward-shift deletion: pull later entries of the run into the hole when their
  // home slot is not between the hole and where they sit.
  for (uint32_t j = (hole + 1) & mask_; buckets_[j].conn != kNil; j = (j + 1) & mask_) {
    const uint32_t home = static_cast<uint32_t>(conns[buckets_[j].conn].hash) & mask_;
    if (((j - home) & mask_) >= ((j - hole) & mask_)) {
      buckets_[hole] = buckets_[j];
      hole = j;
    }
  }
  buckets_[hole] = Bucket{};
}

// ---------------------------------------------------------------------------- table

ConnTable::ConnTable(uint32_t max_conns, Counters& c, CheckpointState& cp)
    : index_(max_conns), conns_(max_conns), cold_(max_conns), c_(c), cp_(cp) {
  for (uint32_t i = max_conns; i-- > 0;) {
    conns_[i].lru_next = free_;
    free_ = i;
  }
}

uint32_t ConnTable::create_slow(const FlowKey& k, uint64_t hash, ConnKind kind, uint64_t now) {
  if (free_ == kNil && !evict_one()) {
    ++c_.conns_table_full;
    cp_.request(CheckpointReason::table_full, &k, now);
    return kNil;
  }
  const uint32_t ci = free_;
  free_ = conns_[ci].lru_next;
  Conn& c = conns_[ci];
  c = Conn{};
  cold_[ci] = ConnCold{};
  c.key = k;
  c.hash = hash;
  c.kind = kind;
  c.in_use = true;
  c.last_seen_ns = now;
  index_.insert(hash, ci);
  lru_append(ci);
  ++c_.conns_created;
  ++c_.conns_active;
  return ci;
}

bool ConnTable::evict_one() {
  // Oldest first; only a connection that holds nothing may go, and only one whose state
  // a new connection can do without: a TCP connection with a non-zero ISN offset still
  // needs it to translate the client's acks and the SVM's sequence numbers. After the
  // next checkpoint every offset is zero and any idle connection can go.
  unsigned budget = 64;
  for (uint32_t ci = lru_head_; ci != kNil && budget-- > 0; ci = conns_[ci].lru_next) {
    const Conn& c = conns_[ci];
    const bool needs_state = c.kind == ConnKind::tcp && c.state != TcpState::closed &&
                             (c.seq_offset != 0 || c.ts_offset != 0 ||
                              (c.pvm_syn && !c.offset_known));
    if (!holds(c) && !needs_state) {
      expire(ci);
      return true;
    }
  }
  return false;
}

void ConnTable::expire(uint32_t ci) {
  Conn& c = conns_[ci];
  if (on_expire_) on_expire_(on_expire_ctx_, c);
  index_.erase(c.hash, ci, conns_);
  lru_unlink(ci);
  c.in_use = false;
  c.closing_listed = false;
  c.lru_next = free_;
  free_ = ci;
  ++c_.conns_expired;
  --c_.conns_active;
}

void ConnTable::mark_closed(uint32_t ci, uint64_t now) {
  Conn& c = conns_[ci];
  if (c.state == TcpState::closed) return;
  c.state = TcpState::closed;
  cold_[ci].closed_ns = now;
  if (!c.closing_listed) {
    c.closing_listed = true;
    closing_.push_back(ci);
  }
}

void ConnTable::expire_idle(uint64_t now, uint64_t idle_ns, uint64_t linger_ns) {
  unsigned budget = 64;
  while (lru_head_ != kNil && budget-- > 0) {
    const uint32_t ci = lru_head_;
    Conn& c = conns_[ci];
    if (c.last_seen_ns + idle_ns > now) break;
    if (holds(c)) {
      // Idle but holding output: its deadline handles it; look at the next one later.
      lru_unlink(ci);
      lru_append(ci);
      continue;
    }
    expire(ci);
  }
  budget = 64;
  while (closing_head_ < closing_.size() && budget-- > 0) {
    const uint32_t ci = closing_[closing_head_];
    Conn& c = conns_[ci];
    if (!c.in_use || !c.closing_listed || c.state != TcpState::closed) {
      ++closing_head_;
      continue;
    }
    if (cold_[ci].closed_ns + linger_ns > now) break;
    ++closing_head_;
    c.closing_listed = false;
    if (holds(c)) {
      c.closing_listed = true;
      closing_.push_back(ci);
      continue;
    }
    expire(ci);
  }
  if (closing_head_ > 4096 && closing_head_ * 2 > closing_.size()) {
    closing_.erase(closing_.begin(), closing_.begin() + static_cast<ptrdiff_t>(closing_head_));
    closing_head_ = 0;
  }
}

}  // namespace lockstep
