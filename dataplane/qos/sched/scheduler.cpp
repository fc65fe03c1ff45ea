// The scheduler's state and its enqueue/dequeue paths. Layout: one flat Impl owned by
// the port's tx thread; packets live in a fixed slot pool linked per connection;
// connections live in a two-choice, 8-way set-associative table; connections waiting
// for their bucket sit on a timer wheel; classes are a small array ordered by rank.
#include "dataplane/qos/sched/scheduler.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>

#include "common/hash_mix.h"

namespace lockstep::sched {
namespace {

constexpr uint32_t kWays = 8;

enum class ConnState : uint8_t { free, idle, ready, waiting };

// One connection entry; one cache line. Its key (the caller's conn value) is kept in a
// separate array so that a lookup scans 8 keys in one line before touching entries.
struct alignas(64) Conn {
  uint32_t head = kNil, tail = kNil;  // packet slots, oldest first
  uint32_t qlen = 0, qbytes = 0;
  TbState tb;                         // per-connection bucket (class conn-rate)
  uint32_t next = kNil;               // ready list of its class, or a wheel slot list
  int32_t deficit = 0;                // DRR among the class's connections
  ClassId cls = kNoClass;
  ConnState state = ConnState::free;
  uint16_t pad_ = 0;
  uint32_t drops = 0;
  uint64_t deq_pkts = 0, deq_bytes = 0;
};
static_assert(sizeof(Conn) == 64);

struct Slot {
  uint64_t handle;
  uint32_t len;
  uint32_t next;
};
static_assert(sizeof(Slot) == 16);

struct Class {
  bool in_use = false;
  ClassParams params;
  uint8_t rank = 0;
  bool has_rate = false, has_ceil = false, conn_limited = false;
  TbProfile rate_p, ceil_p, conn_p;
  TbState rate_s, ceil_s;
  uint32_t limit = 0, conn_limit = 0, quantum = 0;
  uint64_t limit_bytes = 0;
  int64_t deficit = 0;                 // DRR among classes of equal prio
  uint32_t head = kNil, tail = kNil;   // ready connections
  uint32_t n_ready = 0, n_waiting = 0, n_conns = 0;
  uint32_t backlog_pkts = 0;
  uint64_t backlog_bytes = 0;
  ClassCounters ctr;
};

uint64_t default_burst(uint64_t rate, uint32_t max_pkt) {
  return std::max<uint64_t>(std::max(kConnQuantum, max_pkt), rate / 100);  // 10 ms
}

uint32_t pow2_at_least(uint32_t v) { return std::bit_ceil(std::max<uint32_t>(v, 16)); }

}  // namespace

uint64_t ClassCounters::drops_total() const {
  uint64_t t = 0;
  for (uint64_t d : drops) t += d;
  return t;
}
uint64_t PortCounters::drops_total() const {
  uint64_t t = 0;
  for (uint64_t d : drops) t += d;
  return t;
}

// ---------------------------------------------------------------- validation

std::string validate(const SchedConfig& c) {
  if (c.max_classes < 1 || c.max_classes > kMaxClasses) return "max_classes must be 1..16";
  if (c.max_connections < 16 || c.max_connections > (1u << 24))
    return "max_connections must be 16..16777216";
  if (c.max_packets < 1 || c.max_packets > (1u << 26)) return "max_packets must be 1..67108864";
  if (c.max_packet_bytes < 64 || c.max_packet_bytes > 65535)
    return "max_packet_bytes must be 64..65535";
  if (!std::has_single_bit(c.wheel_slots) || c.wheel_slots < 64 || c.wheel_slots > (1u << 20))
    return "wheel_slots must be a power of two in 64..1048576";
  if (!std::has_single_bit(c.wheel_slot_ns) || c.wheel_slot_ns > (1u << 24))
    return "wheel_slot_ns must be a power of two up to 16777216";
  return {};
}

namespace {
std::string check_rate(const char* what, uint64_t r) {
  if (r == 0) return {};
  if (r < kTbMinRate || r > kTbMaxRate)
    return std::string(what) + " must be between 8kbit and 10tbit";
  return {};
}
std::string check_depth(const char* what, uint64_t d) {
  if (d > kTbMaxDepth) return std::string(what) + " must be at most 1g (1 GiB)";
  return {};
}
}  // namespace

std::string validate(const SchedConfig& cfg, const ClassParams& p) {
  if (p.prio > kMaxPrio) return "prio must be 0..7";
  std::string e;
  if (!(e = check_rate("rate", p.rate)).empty()) return e;
  if (!(e = check_rate("ceil", p.ceil)).empty()) return e;
  if (!(e = check_rate("conn-rate", p.conn_rate)).empty()) return e;
  if (p.rate && p.ceil && p.ceil < p.rate) return "ceil must not be below rate";
  if (!(e = check_depth("burst", p.burst)).empty()) return e;
  if (!(e = check_depth("cburst", p.cburst)).empty()) return e;
  if (!(e = check_depth("conn-burst", p.conn_burst)).empty()) return e;
  if (p.limit > cfg.max_packets)
    return "limit above the port's packet capacity " + std::to_string(cfg.max_packets);
  const uint32_t lim = p.limit ? p.limit : std::min(kDefaultClassLimit, cfg.max_packets);
  if (p.conn_limit > lim) return "conn-limit above the class limit " + std::to_string(lim);
  if (p.limit_bytes != 0 && p.limit_bytes < cfg.max_packet_bytes)
    return "limit-bytes below max_packet_bytes " + std::to_string(cfg.max_packet_bytes);
  if (p.quantum != 0 && (p.quantum < 64 || p.quantum > (1u << 24)))
    return "quantum must be 64..16m bytes";
  return {};
}

std::string validate(const SchedConfig& cfg, const PortParams& p) {
  (void)cfg;
  std::string e;
  if (!(e = check_rate("port rate", p.rate)).empty()) return e;
  return check_depth("port burst", p.burst);
}

// ---------------------------------------------------------------- state

struct Scheduler::Impl {
  SchedConfig cfg;

  // Packets.
  std::unique_ptr<Slot[]> slots;
  uint32_t free_head = kNil;
  uint32_t queued = 0;
  uint64_t queued_bytes = 0;

  // Connections.
  uint32_t conn_cap = 0, bucket_mask = 0;
  std::unique_ptr<Conn[]> conns;
  std::unique_ptr<uint64_t[]> keys;
  std::unique_ptr<uint8_t[]> occ;  // per bucket: which ways hold an entry
  uint32_t n_conns = 0;
  uint32_t drain_pos = 0;

  // Timer wheel of waiting connections.
  std::unique_ptr<uint32_t[]> wheel;
  std::unique_ptr<uint64_t[]> wheel_bits;
  uint32_t wheel_mask = 0, wheel_shift = 0;
  uint64_t wheel_tick = 0;
  uint32_t n_waiting = 0;

  // Classes, ordered by rank = (prio, id); masks are by rank.
  std::array<Class, kMaxClasses> cls{};
  std::array<ClassId, kMaxClasses> rank_cls{};
  std::array<uint32_t, kMaxPrio + 1> prio_mask{};
  std::array<uint8_t, kMaxPrio + 1> rr_rank{};
  uint32_t ready_mask = 0;

  // Port.
  PortParams port;
  bool shaped = false;
  TbProfile port_p;
  TbState port_s;
  PortCounters pctr;

  uint64_t now = 0;  // latest time seen; time never runs backwards inside

  explicit Impl(const SchedConfig& c) : cfg(c) {
    slots = std::make_unique<Slot[]>(cfg.max_packets);
    for (uint32_t i = 0; i < cfg.max_packets; ++i)
      slots[i] = Slot{0, 0, i + 1 < cfg.max_packets ? i + 1 : kNil};
    free_head = 0;
    conn_cap = pow2_at_least(cfg.max_connections);
    bucket_mask = conn_cap / kWays - 1;
    conns = std::make_unique<Conn[]>(conn_cap);
    keys = std::make_unique<uint64_t[]>(conn_cap);
    occ = std::make_unique<uint8_t[]>(conn_cap / kWays);
    wheel = std::make_unique<uint32_t[]>(cfg.wheel_slots);
    std::fill_n(wheel.get(), cfg.wheel_slots, kNil);
    wheel_bits = std::make_unique<uint64_t[]>((cfg.wheel_slots + 63) / 64);
    wheel_mask = cfg.wheel_slots - 1;
    wheel_shift = static_cast<uint32_t>(std::countr_zero(cfg.wheel_slot_ns));
  }

  uint64_t advance_now(uint64_t t) {
    if (t > now) now = t;
    return now;
  }

  // ---- classes

  void apply_params(Class& c, const ClassParams& p) {
    const uint32_t mp = cfg.max_packet_bytes;
    c.params = p;
    c.has_rate = p.rate != 0;
    c.has_ceil = p.ceil != 0;
    c.conn_limited = p.conn_rate != 0;
    if (c.has_rate) c.rate_p = TbProfile::make(p.rate, p.burst ? p.burst : default_burst(p.rate, mp));
    if (c.has_ceil)
      c.ceil_p = TbProfile::make(p.ceil, p.cburst ? p.cburst : default_burst(p.ceil, mp));
    if (c.conn_limited)
      c.conn_p = TbProfile::make(p.conn_rate,
                                 p.conn_burst ? p.conn_burst : default_burst(p.conn_rate, mp));
    c.limit = p.limit ? p.limit : std::min(kDefaultClassLimit, cfg.max_packets);
    c.conn_limit = p.conn_limit ? p.conn_limit : c.limit;
    c.limit_bytes = p.limit_bytes;
    c.quantum = p.quantum ? p.quantum
                          : static_cast<uint32_t>(std::clamp<uint64_t>(p.rate / 10, kConnQuantum,
                                                                       200000));
  }

  void recompute_ranks() {
    std::array<ClassId, kMaxClasses> ids{};
    uint32_t n = 0;
    for (uint32_t i = 0; i < cfg.max_classes; ++i)
      if (cls[i].in_use) ids[n++] = static_cast<ClassId>(i);
    std::stable_sort(ids.begin(), ids.begin() + n, [&](ClassId a, ClassId b) {
      return cls[a].params.prio < cls[b].params.prio;
    });
    prio_mask.fill(0);
    ready_mask = 0;
    for (uint32_t r = 0; r < n; ++r) {
      Class& c = cls[ids[r]];
      rank_cls[r] = ids[r];
      c.rank = static_cast<uint8_t>(r);
      prio_mask[c.params.prio] |= 1u << r;
      if (c.head != kNil) ready_mask |= 1u << r;
    }
    for (uint32_t p = 0; p <= kMaxPrio; ++p)
      rr_rank[p] = prio_mask[p] ? static_cast<uint8_t>(std::countr_zero(prio_mask[p])) : 0;
  }

  // ---- ready lists

  void push_ready(uint32_t idx, Class& c) {
    Conn& k = conns[idx];
    k.state = ConnState::ready;
    k.deficit = static_cast<int32_t>(kConnQuantum);
    k.next = kNil;
    if (c.tail == kNil) {
      c.head = idx;
      ready_mask |= 1u << c.rank;
    } else {
      conns[c.tail].next = idx;
    }
    c.tail = idx;
    ++c.n_ready;
  }

  void pop_ready_head(Class& c) {
    const uint32_t idx = c.head;
    c.head = conns[idx].next;
    conns[idx].next = kNil;
    if (c.head == kNil) {
      c.tail = kNil;
      ready_mask &= ~(1u << c.rank);
      c.deficit = 0;
    }
    --c.n_ready;
  }

  // ---- wheel

  void wheel_insert(uint32_t idx, uint64_t t_elig) {
    uint64_t tick = (t_elig + cfg.wheel_slot_ns - 1) >> wheel_shift;
    if (tick <= wheel_tick) tick = wheel_tick + 1;
    if (tick > wheel_tick + wheel_mask) tick = wheel_tick + wheel_mask;
    const uint32_t s = static_cast<uint32_t>(tick) & wheel_mask;
    conns[idx].next = wheel[s];
    wheel[s] = idx;
    wheel_bits[s >> 6] |= uint64_t{1} << (s & 63);
    ++n_waiting;
  }

  // Puts a backlogged connection where it belongs: the ready list if its bucket admits
  // its head packet now, else the wheel.
  void place(uint32_t idx, Class& c, uint64_t t) {
    Conn& k = conns[idx];
    if (c.conn_limited) {
      k.tb.refill(c.conn_p, t);
      const uint32_t len = slots[k.head].len;
      if (!k.tb.conforms(c.conn_p, len)) {
        k.state = ConnState::waiting;
        ++c.n_waiting;
        wheel_insert(idx, t + k.tb.wait_ns(c.conn_p, len));
        return;
      }
    } else {
      k.tb.last_ns = t;
    }
    push_ready(idx, c);
  }

  // Detaches every connection due by `t` into one chain (oldest slot first) and places
  // each again.
  void advance_wheel(uint64_t t) {
    const uint64_t target = t >> wheel_shift;
    if (target <= wheel_tick) return;
    if (n_waiting == 0) {
      wheel_tick = target;
      return;
    }
    const uint64_t span = std::min<uint64_t>(target - wheel_tick, uint64_t{wheel_mask} + 1);
    uint32_t pos = static_cast<uint32_t>(wheel_tick + 1) & wheel_mask;
    wheel_tick = target;
    uint32_t chain = kNil, chain_tail = kNil;
    uint64_t left = span;
    while (left != 0) {
      const uint32_t off = pos & 63;
      const uint64_t take = std::min<uint64_t>(64 - off, left);
      uint64_t bits = wheel_bits[pos >> 6] >> off;
      if (take < 64) bits &= (uint64_t{1} << take) - 1;
      while (bits != 0) {
        const uint32_t s = pos + static_cast<uint32_t>(std::countr_zero(bits));
        bits &= bits - 1;
        for (uint32_t i = wheel[s]; i != kNil;) {
          const uint32_t nx = conns[i].next;
          conns[i].next = kNil;
          if (chain_tail == kNil) chain = i; else conns[chain_tail].next = i;
          chain_tail = i;
          i = nx;
        }
        wheel[s] = kNil;
        wheel_bits[s >> 6] &= ~(uint64_t{1} << (s & 63));
      }
      pos = static_cast<uint32_t>((pos + take) & wheel_mask);
      left -= take;
    }
    for (uint32_t i = chain; i != kNil;) {
      const uint32_t nx = conns[i].next;
      Class& c = cls[conns[i].cls];
      --c.n_waiting;
      --n_waiting;
      place(i, c, t);
      i = nx;
    }
  }

  // Takes every connection off the wheel; f(idx) decides where each goes.
  template <class F>
  void empty_wheel(F&& f) {
    uint32_t chain = kNil;
    for (uint32_t w = 0; w <= wheel_mask / 64; ++w) {
      uint64_t bits = wheel_bits[w];
      while (bits != 0) {
        const uint32_t s = w * 64 + static_cast<uint32_t>(std::countr_zero(bits));
        bits &= bits - 1;
        for (uint32_t i = wheel[s]; i != kNil;) {
          const uint32_t nx = conns[i].next;
          conns[i].next = chain;
          chain = i;
          i = nx;
        }
        wheel[s] = kNil;
      }
      wheel_bits[w] = 0;
    }
    while (chain != kNil) {
      const uint32_t nx = conns[chain].next;
      conns[chain].next = kNil;
      --cls[conns[chain].cls].n_waiting;
      --n_waiting;
      f(chain);
      chain = nx;
    }
  }

  // ---- connection table

  void buckets_of(uint64_t key, uint32_t& b1, uint32_t& b2) const {
    const uint64_t h = mix64(key);
    b1 = static_cast<uint32_t>(h) & bucket_mask;
    b2 = static_cast<uint32_t>(h >> 32) & bucket_mask;
    if (b2 == b1) b2 = (b1 + 1) & bucket_mask;
  }

  uint32_t lookup(uint64_t key, ClassId c) const {
    uint32_t b[2];
    buckets_of(key, b[0], b[1]);
    for (uint32_t j = 0; j < 2; ++j) {
      uint32_t m = occ[b[j]];
      while (m != 0) {
        const uint32_t i = b[j] * kWays + static_cast<uint32_t>(std::countr_zero(m));
        m &= m - 1;
        if (keys[i] == key && conns[i].cls == c) return i;
      }
    }
    return kNil;
  }

  void init_conn(uint32_t i, uint64_t key, ClassId c, uint64_t t) {
    Conn& k = conns[i];
    k = Conn{};
    k.cls = c;
    k.state = ConnState::idle;
    Class& cl = cls[c];
    if (cl.conn_limited) k.tb.reset_full(cl.conn_p, t); else k.tb.last_ns = t;
    keys[i] = key;
    ++cl.n_conns;
    ++n_conns;
    ++pctr.conns_created;
  }

  void free_conn(uint32_t i) {
    Conn& k = conns[i];
    --cls[k.cls].n_conns;
    --n_conns;
    k.state = ConnState::free;
    k.cls = kNoClass;
    occ[i / kWays] &= static_cast<uint8_t>(~(1u << (i % kWays)));
  }

  // `hint`: an entry index found for this key earlier in the burst (or kNil); used when
  // it still holds this key and class.
  uint32_t find_or_insert(uint64_t key, ClassId c, uint64_t t, uint32_t hint = kNil) {
    if (hint != kNil && keys[hint] == key && conns[hint].cls == c &&
        conns[hint].state != ConnState::free)
      return hint;
    uint32_t b1, b2;
    buckets_of(key, b1, b2);
    const uint32_t bs[2] = {b1, b2};
    for (uint32_t b : bs) {
      uint32_t m = occ[b];
      while (m != 0) {
        const uint32_t i = b * kWays + static_cast<uint32_t>(std::countr_zero(m));
        m &= m - 1;
        if (keys[i] == key && conns[i].cls == c) return i;
      }
    }
    const uint32_t b = std::popcount(occ[b1]) <= std::popcount(occ[b2]) ? b1 : b2;
    if (occ[b] != 0xff) {
      const uint32_t w = static_cast<uint32_t>(std::countr_one(occ[b]));
      occ[b] |= static_cast<uint8_t>(1u << w);
      init_conn(b * kWays + w, key, c, t);
      return b * kWays + w;
    }
    // Both buckets full: reuse the least recently active idle (empty) entry.
    uint32_t best = kNil;
    uint64_t best_t = UINT64_MAX;
    for (uint32_t bb : bs)
      for (uint32_t w = 0; w < kWays; ++w) {
        const uint32_t i = bb * kWays + w;
        if (conns[i].state == ConnState::idle && conns[i].tb.last_ns < best_t) {
          best = i;
          best_t = conns[i].tb.last_ns;
        }
      }
    if (best == kNil) return kNil;
    --cls[conns[best].cls].n_conns;
    --n_conns;
    ++pctr.conns_evicted;
    init_conn(best, key, c, t);
    return best;
  }

  // First entry holding `key` in either bucket (any class), or kNil.
  uint32_t key_index(uint64_t key, uint32_t bk1, uint32_t bk2) const {
    for (uint32_t b : {bk1, bk2}) {
      uint32_t m = occ[b];
      while (m != 0) {
        const uint32_t i = b * kWays + static_cast<uint32_t>(std::countr_zero(m));
        m &= m - 1;
        if (keys[i] == key) return i;
      }
    }
    return kNil;
  }

  Verdict enqueue_one(const Packet& p, uint64_t t, uint32_t hint) {
    if (p.cls >= cfg.max_classes || !cls[p.cls].in_use) return drop(nullptr, Drop::no_class, p.len);
    Class& c = cls[p.cls];
    if (p.len == 0 || p.len > cfg.max_packet_bytes) return drop(&c, Drop::bad_length, p.len);
    if (c.backlog_pkts >= c.limit) return drop(&c, Drop::queue_full, p.len);
    if (c.limit_bytes != 0 && c.backlog_bytes + p.len > c.limit_bytes)
      return drop(&c, Drop::queue_bytes_full, p.len);
    if (free_head == kNil) return drop(&c, Drop::port_full, p.len);
    const uint32_t idx = find_or_insert(p.conn, p.cls, t, hint);
    if (idx == kNil) return drop(&c, Drop::conn_table_full, p.len);
    Conn& k = conns[idx];
    if (k.qlen >= c.conn_limit) {
      ++k.drops;
      return drop(&c, Drop::conn_queue_full, p.len);
    }
    const uint32_t si = free_head;
    Slot& sl = slots[si];
    free_head = sl.next;
    sl.handle = p.handle;
    sl.len = p.len;
    sl.next = kNil;
    if (k.tail == kNil) k.head = si; else slots[k.tail].next = si;
    k.tail = si;
    ++k.qlen;
    k.qbytes += p.len;
    ++c.backlog_pkts;
    c.backlog_bytes += p.len;
    ++c.ctr.enq_pkts;
    c.ctr.enq_bytes += p.len;
    ++pctr.enq_pkts;
    pctr.enq_bytes += p.len;
    ++queued;
    queued_bytes += p.len;
    if (k.state == ConnState::idle) place(idx, c, t);
    return Verdict{true, Drop::no_class};
  }

  // ---- drops

  Verdict drop(Class* c, Drop why, uint32_t len) {
    const auto r = static_cast<unsigned>(why);
    ++pctr.drops[r];
    if (c != nullptr) {
      ++c->ctr.drops[r];
      c->ctr.drop_bytes[r] += len;
    }
    return Verdict{false, why};
  }

  // ---- class choice for the next packet

  uint32_t head_len(const Class& c) const { return slots[conns[c.head].head].len; }

  // pass 0: the class is under its guaranteed rate; pass 1: under its ceiling.
  bool eligible(Class& c, int pass, uint32_t len, uint64_t t) {
    if (c.has_ceil) {
      c.ceil_s.refill(c.ceil_p, t);
      if (!c.ceil_s.conforms(c.ceil_p, len)) return false;
    }
    if (pass == 1) return true;
    if (!c.has_rate) return false;
    c.rate_s.refill(c.rate_p, t);
    return c.rate_s.conforms(c.rate_p, len);
  }

  // Deficit round robin among the ready classes of one prio level.
  ClassId pick_same_prio(uint32_t prio, uint32_t group, int pass, uint64_t t) {
    uint32_t r = rr_rank[prio];
    ClassId first_ok = kNoClass;
    for (int step = 0; step < 4 * static_cast<int>(kMaxClasses); ++step) {
      const uint32_t above = r < 32 ? group & ~((1u << r) - 1) : 0;
      const uint32_t rr = static_cast<uint32_t>(std::countr_zero(above ? above : group));
      const ClassId id = rank_cls[rr];
      Class& c = cls[id];
      const uint32_t len = head_len(c);
      if (eligible(c, pass, len, t)) {
        if (first_ok == kNoClass) first_ok = id;
        if (c.deficit >= static_cast<int64_t>(len)) {
          rr_rank[prio] = static_cast<uint8_t>(rr);
          return id;
        }
        c.deficit += c.quantum;
      }
      r = rr + 1;
    }
    return first_ok;
  }

  // `shared` tells whether classes of the chosen prio shared by DRR (the class's
  // deficit is charged only then, so a class alone at its level keeps no debt).
  ClassId pick(bool& borrow, bool& shared, uint64_t t) {
    for (int pass = 0; pass < 2; ++pass) {
      uint32_t m = ready_mask;
      while (m != 0) {
        const uint32_t r = static_cast<uint32_t>(std::countr_zero(m));
        m &= m - 1;
        const ClassId id = rank_cls[r];
        Class& c = cls[id];
        if (!eligible(c, pass, head_len(c), t)) continue;
        borrow = pass == 1;
        const uint32_t group = ready_mask & prio_mask[c.params.prio];
        shared = (group & (group - 1)) != 0;
        if (!shared) return id;
        return pick_same_prio(c.params.prio, group, pass, t);
      }
    }
    return kNoClass;
  }

  uint32_t dequeue(uint64_t t, std::span<uint64_t> out) {
    advance_wheel(t);
    if (ready_mask == 0) return 0;
    if (shaped) port_s.refill(port_p, t);
    uint32_t n = 0;
    const uint32_t max = static_cast<uint32_t>(out.size());
    while (n < max && ready_mask != 0) {
      bool borrow = false, shared = false;
      const ClassId id = pick(borrow, shared, t);
      if (id == kNoClass) break;
      Class& c = cls[id];
      const uint32_t idx = c.head;
      Conn& k = conns[idx];
      if (k.next != kNil) __builtin_prefetch(&conns[k.next], 1);
      const uint32_t si = k.head;
      Slot& sl = slots[si];
      const uint32_t len = sl.len;
      if (shaped) {
        if (!port_s.conforms(port_p, len)) {
          ++pctr.shaped_stalls;
          break;
        }
        port_s.charge(len);
      }
      out[n++] = sl.handle;

      k.head = sl.next;
      if (k.head == kNil) k.tail = kNil;
      sl.next = free_head;
      free_head = si;
      --queued;
      queued_bytes -= len;
      --k.qlen;
      k.qbytes -= len;
      ++k.deq_pkts;
      k.deq_bytes += len;
      --c.backlog_pkts;
      c.backlog_bytes -= len;
      ++c.ctr.deq_pkts;
      c.ctr.deq_bytes += len;
      ++pctr.deq_pkts;
      pctr.deq_bytes += len;
      if (borrow) {
        ++c.ctr.borrowed_pkts;
        c.ctr.borrowed_bytes += len;
      } else if (c.has_rate) {
        c.rate_s.charge(len);
      }
      if (c.has_ceil) c.ceil_s.charge(len);
      if (shared) c.deficit -= len;

      if (c.conn_limited) {
        k.tb.refill(c.conn_p, t);
        k.tb.charge(len);
      }
      if (k.qlen == 0) {
        pop_ready_head(c);
        k.state = ConnState::idle;
        continue;
      }
      const uint32_t nl = slots[k.head].len;
      if (c.conn_limited && !k.tb.conforms(c.conn_p, nl)) {
        pop_ready_head(c);
        k.state = ConnState::waiting;
        ++c.n_waiting;
        wheel_insert(idx, t + k.tb.wait_ns(c.conn_p, nl));
        continue;
      }
      k.deficit -= static_cast<int32_t>(len);
      if (k.deficit < static_cast<int32_t>(nl)) {
        while (k.deficit < static_cast<int32_t>(nl)) k.deficit += kConnQuantum;
        if (c.head != c.tail) {  // to the back of the round
          c.head = k.next;
          k.next = kNil;
          conns[c.tail].next = idx;
          c.tail = idx;
        }
      }
    }
    return n;
  }

  // Removes a connection's packets from all lists and class books (control path).
  void detach_everything() {
    empty_wheel([&](uint32_t i) { conns[i].state = ConnState::idle; });
    for (uint32_t id = 0; id < cfg.max_classes; ++id) {
      Class& c = cls[id];
      while (c.head != kNil) {
        conns[c.head].state = ConnState::idle;
        pop_ready_head(c);
      }
    }
  }
};

// ---------------------------------------------------------------- public

Scheduler::Scheduler(const SchedConfig& cfg) : cfg_(cfg), impl_(std::make_unique<Impl>(cfg)) {}
Scheduler::~Scheduler() = default;

uint32_t Scheduler::conn_capacity() const { return impl_->conn_cap; }
uint32_t Scheduler::backlog_pkts() const { return impl_->queued; }
bool Scheduler::class_in_use(ClassId id) const {
  return id < cfg_.max_classes && impl_->cls[id].in_use;
}

std::string Scheduler::set_port(const PortParams& p, uint64_t now_ns) {
  Impl& s = *impl_;
  if (auto e = validate(cfg_, p); !e.empty()) return e;
  const uint64_t t = s.advance_now(now_ns);
  const bool was = s.shaped;
  s.port = p;
  s.shaped = p.rate != 0;
  if (s.shaped) {
    const uint64_t burst =
        p.burst ? p.burst : std::max<uint64_t>(2ull * cfg_.max_packet_bytes, p.rate / 10000);
    s.port_p = TbProfile::make(p.rate, burst);
    if (was) {
      s.port_s.refill(s.port_p, t);
      s.port_s.clamp(s.port_p);
    } else {
      s.port_s.reset_full(s.port_p, t);
    }
  }
  return {};
}

std::string Scheduler::add_class(ClassId id, const ClassParams& p, uint64_t now_ns) {
  Impl& s = *impl_;
  if (id >= cfg_.max_classes) return "class id " + std::to_string(id) + " above max_classes";
  if (s.cls[id].in_use) return "class id " + std::to_string(id) + " already in use";
  if (auto e = validate(cfg_, p); !e.empty()) return e;
  const uint64_t t = s.advance_now(now_ns);
  Class& c = s.cls[id];
  c = Class{};
  c.in_use = true;
  s.apply_params(c, p);
  if (c.has_rate) c.rate_s.reset_full(c.rate_p, t);
  if (c.has_ceil) c.ceil_s.reset_full(c.ceil_p, t);
  s.recompute_ranks();
  return {};
}

std::string Scheduler::change_class(ClassId id, const ClassParams& p, uint64_t now_ns) {
  Impl& s = *impl_;
  if (!class_in_use(id)) return "class id " + std::to_string(id) + " not in use";
  if (auto e = validate(cfg_, p); !e.empty()) return e;
  const uint64_t t = s.advance_now(now_ns);
  Class& c = s.cls[id];
  const ClassParams old = c.params;
  const bool had_rate = c.has_rate, had_ceil = c.has_ceil, was_limited = c.conn_limited;
  if (had_rate) c.rate_s.refill(c.rate_p, t);
  if (had_ceil) c.ceil_s.refill(c.ceil_p, t);
  s.apply_params(c, p);
  if (c.has_rate) {
    if (had_rate) c.rate_s.clamp(c.rate_p); else c.rate_s.reset_full(c.rate_p, t);
  }
  if (c.has_ceil) {
    if (had_ceil) c.ceil_s.clamp(c.ceil_p); else c.ceil_s.reset_full(c.ceil_p, t);
  }
  if (old.conn_rate != p.conn_rate || old.conn_burst != p.conn_burst) {
    // Every connection of the class gets the new bucket; waiting ones are placed again.
    for (uint32_t i = 0; i < s.conn_cap; ++i) {
      Conn& k = s.conns[i];
      if (k.state == ConnState::free || k.cls != id) continue;
      if (!c.conn_limited) continue;
      if (was_limited) {
        k.tb.refill(c.conn_p, t);
        k.tb.clamp(c.conn_p);
      } else {
        k.tb.reset_full(c.conn_p, t);
      }
    }
    s.empty_wheel([&](uint32_t i) {
      Class& ci = s.cls[s.conns[i].cls];
      s.place(i, ci, t);
    });
  }
  if (old.prio != p.prio) s.recompute_ranks();
  return {};
}

std::string Scheduler::delete_class(ClassId id, ClassId move_to, uint64_t now_ns) {
  Impl& s = *impl_;
  if (!class_in_use(id)) return "class id " + std::to_string(id) + " not in use";
  if (id == move_to || !class_in_use(move_to))
    return "backlog of class " + std::to_string(id) + " needs another class in use";
  const uint64_t t = s.advance_now(now_ns);
  Class& from = s.cls[id];
  Class& to = s.cls[move_to];

  // Take the class's connections off the wheel and its ready list.
  s.empty_wheel([&](uint32_t i) {
    if (s.conns[i].cls == id) {
      s.conns[i].state = ConnState::idle;
    } else {
      s.place(i, s.cls[s.conns[i].cls], t);
    }
  });
  while (from.head != kNil) {
    s.conns[from.head].state = ConnState::idle;
    s.pop_ready_head(from);
  }

  // Each connection joins its namesake in `move_to`, or becomes one.
  for (uint32_t i = 0; i < s.conn_cap; ++i) {
    Conn& k = s.conns[i];
    if (k.state == ConnState::free || k.cls != id) continue;
    const uint32_t j = s.lookup(s.keys[i], move_to);
    if (j != kNil) {
      Conn& d = s.conns[j];
      if (k.qlen != 0) {
        if (d.tail == kNil) d.head = k.head; else s.slots[d.tail].next = k.head;
        d.tail = k.tail;
        d.qlen += k.qlen;
        d.qbytes += k.qbytes;
      }
      d.deq_pkts += k.deq_pkts;
      d.deq_bytes += k.deq_bytes;
      d.drops += k.drops;
      const bool activate = d.state == ConnState::idle && d.qlen != 0;
      k.qlen = 0;
      s.free_conn(i);
      if (activate) s.place(j, to, t);
    } else {
      --from.n_conns;
      ++to.n_conns;
      k.cls = move_to;
      if (to.conn_limited) k.tb.reset_full(to.conn_p, t);
      if (k.qlen != 0) s.place(i, to, t);
    }
  }
  to.backlog_pkts += from.backlog_pkts;
  to.backlog_bytes += from.backlog_bytes;
  to.ctr.moved_in_pkts += from.backlog_pkts;
  from.ctr.moved_out_pkts += from.backlog_pkts;
  s.pctr.moved_pkts += from.backlog_pkts;
  from = Class{};
  s.recompute_ranks();
  return {};
}

Verdict Scheduler::enqueue(const Packet& p, uint64_t now_ns) {
  Impl& s = *impl_;
  return s.enqueue_one(p, s.advance_now(now_ns), kNil);
}

uint32_t Scheduler::enqueue_burst(std::span<const Packet> pkts, uint64_t now_ns,
                                  std::span<uint64_t> dropped) {
  Impl& s = *impl_;
  const uint64_t t = s.advance_now(now_ns);
  uint32_t nd = 0;
  // Three passes per group of 32, so that the table's cache misses overlap: hash and
  // prefetch both buckets' keys; find the key and prefetch its entry; enqueue.
  constexpr size_t kGroup = 32;
  uint32_t hint[kGroup];
  uint32_t b1[kGroup], b2[kGroup];
  for (size_t base = 0; base < pkts.size(); base += kGroup) {
    const size_t n = std::min(kGroup, pkts.size() - base);
    const Packet* p = pkts.data() + base;
    for (size_t j = 0; j < n; ++j) {
      s.buckets_of(p[j].conn, b1[j], b2[j]);
      __builtin_prefetch(&s.keys[b1[j] * kWays]);
      __builtin_prefetch(&s.keys[b2[j] * kWays]);
    }
    for (size_t j = 0; j < n; ++j) {
      hint[j] = s.key_index(p[j].conn, b1[j], b2[j]);
      if (hint[j] != kNil) __builtin_prefetch(&s.conns[hint[j]], 1);
    }
    for (size_t j = 0; j < n; ++j)
      if (!s.enqueue_one(p[j], t, hint[j]).queued && nd < dropped.size())
        dropped[nd++] = p[j].handle;
  }
  return nd;
}

uint32_t Scheduler::dequeue_burst(uint64_t now_ns, std::span<uint64_t> out) {
  Impl& s = *impl_;
  return s.dequeue(s.advance_now(now_ns), out);
}

uint64_t Scheduler::next_ready_ns(uint64_t now_ns) {
  Impl& s = *impl_;
  const uint64_t t = s.advance_now(now_ns);
  if (s.queued == 0) return UINT64_MAX;
  uint64_t best = UINT64_MAX;
  uint32_t m = s.ready_mask;
  while (m != 0) {
    const uint32_t r = static_cast<uint32_t>(std::countr_zero(m));
    m &= m - 1;
    Class& c = s.cls[s.rank_cls[r]];
    const uint32_t len = s.head_len(c);
    uint64_t at = t;
    if (c.has_ceil) {
      c.ceil_s.refill(c.ceil_p, t);
      at = t + c.ceil_s.wait_ns(c.ceil_p, len);
    }
    if (s.shaped) {
      s.port_s.refill(s.port_p, t);
      at = std::max(at, t + s.port_s.wait_ns(s.port_p, len));
    }
    best = std::min(best, at);
  }
  if (s.n_waiting != 0) {
    for (uint64_t tick = s.wheel_tick + 1; tick <= s.wheel_tick + s.wheel_mask; ++tick) {
      const uint32_t sl = static_cast<uint32_t>(tick) & s.wheel_mask;
      if (s.wheel_bits[sl >> 6] & (uint64_t{1} << (sl & 63))) {
        best = std::min(best, std::max(t, tick << s.wheel_shift));
        break;
      }
    }
  }
  return best;
}

uint32_t Scheduler::take_any(std::span<uint64_t> out) {
  Impl& s = *impl_;
  if (s.queued == 0) {
    s.drain_pos = 0;
    return 0;
  }
  s.detach_everything();
  uint32_t n = 0;
  while (n < out.size() && s.drain_pos < s.conn_cap) {
    Conn& k = s.conns[s.drain_pos];
    if (k.state == ConnState::free || k.qlen == 0) {
      ++s.drain_pos;
      continue;
    }
    Class& c = s.cls[k.cls];
    const uint32_t si = k.head;
    Slot& sl = s.slots[si];
    out[n++] = sl.handle;
    k.head = sl.next;
    if (k.head == kNil) k.tail = kNil;
    --k.qlen;
    k.qbytes -= sl.len;
    --c.backlog_pkts;
    c.backlog_bytes -= sl.len;
    ++c.ctr.flushed_pkts;
    ++s.pctr.flushed_pkts;
    --s.queued;
    s.queued_bytes -= sl.len;
    sl.next = s.free_head;
    s.free_head = si;
  }
  return n;
}

ClassStats Scheduler::class_stats(ClassId id, uint64_t now_ns) const {
  ClassStats st;
  if (!class_in_use(id)) return st;
  const Class& c = impl_->cls[id];
  st.in_use = true;
  st.params = c.params;
  st.ctr = c.ctr;
  st.backlog_pkts = c.backlog_pkts;
  st.backlog_bytes = c.backlog_bytes;
  st.conns = c.n_conns;
  st.conns_ready = c.n_ready;
  st.conns_throttled = c.n_waiting;
  const uint64_t t = std::max(now_ns, impl_->now);
  if (c.has_rate) {
    TbState x = c.rate_s;
    x.refill(c.rate_p, t);
    st.tokens = x.tokens();
  }
  if (c.has_ceil) {
    TbState x = c.ceil_s;
    x.refill(c.ceil_p, t);
    st.ctokens = x.tokens();
  }
  return st;
}

PortStats Scheduler::port_stats(uint64_t now_ns) const {
  const Impl& s = *impl_;
  PortStats st;
  st.params = s.port;
  st.ctr = s.pctr;
  st.backlog_pkts = s.queued;
  st.backlog_bytes = s.queued_bytes;
  st.conns = s.n_conns;
  if (s.shaped) {
    TbState x = s.port_s;
    x.refill(s.port_p, std::max(now_ns, s.now));
    st.tokens = x.tokens();
  }
  return st;
}

bool Scheduler::conn_at(uint32_t idx, ClassId only, ConnStats& st, uint64_t now_ns) const {
  const Impl& s = *impl_;
  const Conn& k = s.conns[idx];
  if (k.state == ConnState::free || (only != kNoClass && k.cls != only)) return false;
  st = ConnStats{};
  st.conn = s.keys[idx];
  st.cls = k.cls;
  st.deq_pkts = k.deq_pkts;
  st.deq_bytes = k.deq_bytes;
  st.drops = k.drops;
  st.enq_pkts = k.deq_pkts + k.qlen;
  st.backlog_pkts = k.qlen;
  st.backlog_bytes = k.qbytes;
  st.throttled = k.state == ConnState::waiting;
  const Class& c = s.cls[k.cls];
  if (c.conn_limited) {
    TbState x = k.tb;
    x.refill(c.conn_p, std::max(now_ns, s.now));
    st.tokens = x.tokens();
  }
  return true;
}

bool Scheduler::conn_stats(uint64_t conn, ClassId cls, ConnStats& out, uint64_t now_ns) const {
  if (!class_in_use(cls)) return false;
  const uint32_t i = impl_->lookup(conn, cls);
  return i != kNil && conn_at(i, kNoClass, out, now_ns);
}

}  // namespace lockstep::sched
