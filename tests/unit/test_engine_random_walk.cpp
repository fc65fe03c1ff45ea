// Random walks of many interleaved TCP connections through the engine, checked against
// StreamOracle (naive reassembly + memcmp). Fixed seeds: every run is the same run.
//
// Each connection: a passive or active open with ISNs anywhere (a third of them within
// a few kilobytes of 2^32, so the stream wraps), a byte stream cut into segments
// independently on the PVM and the SVM, each segment sent with jitter (so segments
// arrive out of order), some retransmitted whole or overlapping earlier bytes, the SVM
// lagging by a per-connection delay that stays within compare_timeout, client ACKs
// (some with SACK blocks), and usually FINs.
//
// Laws checked, as the walk goes:
//   - a PVM data segment is released only when every byte in it was sent by the SVM
//     with the same value (oracle, at the moment of release), a SYN/FIN only once the
//     SVM sent the same event; nothing is released by checkpoint when no checkpoint
//     was asked for;
//   - identical streams: zero checkpoint requests, every PVM frame released;
//   - one differing byte: a checkpoint is requested, and nothing holding the byte
//     (or any unmatched byte) goes out before checkpoint done; after it, the SVM is a
//     copy of the PVM (its later output is the PVM's, numbered like the PVM's) and the
//     walk completes with everything released;
//   - uploads (the client sends data, each VM acknowledges it with its own delayed-ACK
//     pattern, the SVM lagging): no PVM frame is released, other than by a checkpoint,
//     before the SVM has acknowledged every client byte the frame acknowledges; an SVM
//     that stops acknowledging mid-upload is an ack_divergence checkpoint;
//   - per connection, PVM frames are released in the order the PVM sent them;
//   - the SVM-bound client copies carry acks and SACK blocks in the SVM's space (the
//     PVM's after a checkpoint), with valid checksums;
//   - every handle gets one action; conservation holds throughout and at the end.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "tests/support/engine_harness.h"
#include "tests/support/stream_oracle.h"

namespace lockstep::test {
namespace {

constexpr uint64_t kUs = 1'000;
constexpr uint64_t kMs = 1'000'000;

struct WalkConfig {
  uint64_t seed = 1;
  uint32_t conns = 50;
  uint32_t max_len = 20000;     // stream bytes per connection
  uint64_t spread_ns = 200 * kMs;  // connection start times within this
  uint64_t max_lag_ns = 40 * kMs;  // SVM lag per connection
  uint64_t jitter_ns = 5 * kMs;    // per-segment send jitter (reordering)
  double p_retransmit = 0.08;
  double p_close = 0.7;
  double p_early_client_ack = 0.2;  // client ACK before the SVM's SYN/ACK arrives
  bool diverge = false;             // one connection has one differing SVM byte
  bool uploads = false;             // the client sends data, the VMs acknowledge it
  bool svm_stops_acking = false;    // one connection's SVM acks stop mid-upload
};

enum class Kind : uint8_t { syn, data, fin, pure_ack, client };

struct Ev {
  uint64_t t = 0;
  uint64_t order = 0;  // tie-break: generation order
  Side side = Side::pvm;
  uint32_t conn = 0;
  Kind kind = Kind::data;
  uint64_t a = 0, b = 0;  // data: stream range; client: ack offset in a
  bool has_ack = false;
  int64_t vm_ack = -1;    // VM frames: client offset acknowledged (-1: no ACK flag)
  std::vector<std::pair<uint64_t, uint64_t>> sack;  // client: PVM stream offsets
  Bytes frame;
};

struct ConnPlan {
  Conversation conv{Conversation::Params{}};
  uint64_t seed = 0;
  uint64_t len = 0;
  std::optional<uint64_t> diff_at;  // SVM byte differing from the PVM's
  uint64_t lag = 0;
  std::vector<std::pair<uint64_t, uint64_t>> up;  // client segments: (time, end offset)
  std::optional<uint64_t> svm_ack_cap;  // the SVM never acknowledges past this
};

struct Meta {
  Side side = Side::pvm;
  uint32_t conn = 0;
  Kind kind = Kind::data;
  uint64_t a = 0, b = 0;
  bool has_ack = false;
  int64_t vm_ack = -1;
  std::vector<std::pair<uint64_t, uint64_t>> sack;
};

uint32_t pick_isn(std::mt19937_64& rng) {
  switch (rng() % 3) {
    case 0: return 0xffffffffu - static_cast<uint32_t>(rng() % 6000);  // wraps soon
    case 1: return static_cast<uint32_t>(rng());
    default: return static_cast<uint32_t>(rng() % 5000);
  }
}

// Splits [0, len) into segments of 1..1448 bytes (half of them full-sized).
std::vector<std::pair<uint64_t, uint64_t>> segment(std::mt19937_64& rng, uint64_t len) {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  for (uint64_t a = 0; a < len;) {
    uint64_t n = (rng() & 1) ? 1448 : 1 + rng() % 1448;
    uint64_t b = std::min(len, a + n);
    out.emplace_back(a, b);
    a = b;
  }
  return out;
}

class Walk {
 public:
  explicit Walk(const WalkConfig& cfg) : cfg_(cfg), rng_(cfg.seed), h_() {
    h_.set_keep_bytes(false);
    h_.set_keep_bytes(Side::ingress, true);
    h_.set_checkpoint_latency(2 * kMs);
    plan();
  }

  void run() {
    size_t i = 0;
    size_t dones_seen = 0;
    while (i < evs_.size()) {
      Ev& e = evs_[i];
      h_.advance_to(e.t);
      dones_seen = on_done(dones_seen, i);
      check_new_actions();
      Ev& ev = evs_[i];  // on_done may rebuild the tail of evs_
      push(ev);
      ++i;
      dones_seen = on_done(dones_seen, i);
      check_new_actions();
      if (i % 512 == 0) {
        ASSERT_EQ(h_.conservation(), "") << "after " << i << " events";
      }
      if (::testing::Test::HasFatalFailure()) return;
    }
    h_.run_until_idle();
    on_done(dones_seen, evs_.size());
    check_new_actions();
  }

  void expect_identical_outcome() {
    EXPECT_EQ(h_.counters().checkpoint_requests, 0u);
    EXPECT_EQ(h_.counters().checkpoint_triggers, 0u);
    EXPECT_TRUE(h_.checkpoints().empty());
    expect_everything_out();
  }

  void expect_ack_divergent_outcome() {
    ASSERT_GE(h_.checkpoints().size(), 1u) << "an SVM that stopped acknowledging went unnoticed";
    EXPECT_EQ(h_.checkpoints()[0].req.reason, CheckpointReason::ack_divergence)
        << to_string(h_.checkpoints()[0].req.reason);
    EXPECT_EQ(h_.checkpoints().size(), 1u);
    expect_everything_out();
  }

  void expect_divergent_outcome() {
    ASSERT_GE(h_.checkpoints().size(), 1u) << "a differing byte went unnoticed";
    const CheckpointRecord& c = h_.checkpoints()[0];
    EXPECT_EQ(c.req.reason, CheckpointReason::payload_mismatch)
        << to_string(c.req.reason);
    EXPECT_EQ(h_.checkpoints().size(), 1u)
        << "after the checkpoint the SVM copies the PVM: nothing should diverge";
    expect_everything_out();
  }

  EngineHarness& harness() { return h_; }
  uint64_t pvm_frames() const { return pvm_frames_; }

 private:
  void add(Ev e) {
    e.order = next_order_++;
    evs_.push_back(std::move(e));
  }

  Bytes content(const ConnPlan& p, Vm vm, uint64_t a, uint64_t b) const {
    Bytes x = stream_bytes(p.seed, a, static_cast<size_t>(b - a));
    if (vm == Vm::svm && p.diff_at && *p.diff_at >= a && *p.diff_at < b)
      x[static_cast<size_t>(*p.diff_at - a)] ^= 0x5a;
    return x;
  }

  void plan() {
    std::uniform_real_distribution<double> u01(0.0, 1.0);
    uint32_t bad = cfg_.diverge ? static_cast<uint32_t>(rng_() % cfg_.conns) : UINT32_MAX;
    uint32_t deaf = cfg_.svm_stops_acking ? static_cast<uint32_t>(rng_() % cfg_.conns) : UINT32_MAX;
    plans_.reserve(cfg_.conns);
    for (uint32_t k = 0; k < cfg_.conns; ++k) {
      Conversation::Params cp;
      cp.client = ip4_host(0xc0000200u + (k >> 14));
      cp.client_port = static_cast<uint16_t>(10000 + (k & 0x3fff));
      cp.server_port = static_cast<uint16_t>(80 + (k % 3));
      cp.client_isn = pick_isn(rng_);
      cp.pvm_isn = pick_isn(rng_);
      cp.svm_isn = pick_isn(rng_);
      ConnPlan p;
      p.conv = Conversation(cp);
      p.seed = rng_();
      p.len = rng_() % (cfg_.max_len + 1);
      if (k == bad) {
        if (p.len == 0) p.len = 1 + rng_() % (cfg_.max_len + 1);
        p.diff_at = rng_() % p.len;
      }
      p.lag = rng_() % (cfg_.max_lag_ns + 1);
      if (k == deaf) p.svm_ack_cap = 0;  // set to a point of the upload in plan_conn
      plans_.push_back(std::move(p));
      plan_conn(k, u01);
    }
    std::sort(evs_.begin(), evs_.end(), [](const Ev& x, const Ev& y) {
      return x.t != y.t ? x.t < y.t : x.order < y.order;
    });
  }

  void plan_conn(uint32_t k, std::uniform_real_distribution<double>& u01) {
    ConnPlan& p = plans_[k];
    Conversation& c = p.conv;
    uint64_t start = h_.now() + rng_() % (cfg_.spread_ns + 1);
    uint64_t lag = p.lag;
    bool passive = rng_() & 1;
    uint64_t hs_end;
    if (passive) {
      add({start, 0, Side::ingress, k, Kind::client, 0, 0, false, -1, {}, c.client_syn()});
      add({start + 10 * kUs, 0, Side::pvm, k, Kind::syn, 0, 0, false, 0, {}, c.vm_synack(Vm::pvm)});
      add({start + 10 * kUs + lag, 0, Side::svm, k, Kind::syn, 0, 0, false, 0, {},
           c.vm_synack(Vm::svm)});
      uint64_t ack_t = u01(rng_) < cfg_.p_early_client_ack ? start + 20 * kUs
                                                             : start + 30 * kUs + lag;
      add({ack_t, 0, Side::ingress, k, Kind::client, 0, 0, true, -1, {}, c.client_handshake_ack()});
      hs_end = std::max(ack_t, start + 10 * kUs + lag);
    } else {
      add({start, 0, Side::pvm, k, Kind::syn, 0, 0, false, -1, {}, c.vm_syn(Vm::pvm)});
      add({start + lag, 0, Side::svm, k, Kind::syn, 0, 0, false, -1, {}, c.vm_syn(Vm::svm)});
      uint64_t sa = start + lag + 20 * kUs;
      add({sa, 0, Side::ingress, k, Kind::client, 0, 0, true, -1, {}, c.client_synack()});
      add({sa + 20 * kUs, 0, Side::pvm, k, Kind::pure_ack, 0, 0, false, 0, {},
           c.vm_handshake_ack(Vm::pvm)});
      add({sa + 20 * kUs + lag, 0, Side::svm, k, Kind::pure_ack, 0, 0, false, 0, {},
           c.vm_handshake_ack(Vm::svm)});
      hs_end = sa + 20 * kUs + lag;
    }
    uint64_t t0 = hs_end + cfg_.jitter_ns + 1 * kMs;
    uint64_t rate = 200 + rng_() % 1800;  // ns per byte
    uint64_t up_len = 0;
    if (cfg_.uploads) plan_upload(k, hs_end + 100 * kUs, up_len);
    // The client offset a VM has acknowledged by time t (the SVM's view lags by `lag`).
    auto acked = [&p](Vm vm, uint64_t t) -> int64_t {
      uint64_t seen = vm == Vm::svm ? (t > p.lag ? t - p.lag : 0) : t;
      uint64_t off = 0;
      for (auto [ts, end] : p.up) {
        if (ts + 10 * kUs > seen) break;
        off = end;
      }
      if (vm == Vm::svm && p.svm_ack_cap) off = std::min(off, *p.svm_ack_cap);
      return static_cast<int64_t>(off);
    };
    auto vm_frame = [&c](Vm vm, uint8_t flags, uint64_t off, int64_t ack, const Bytes& pl) {
      return build_frame(c.vm_spec(vm, flags, off, static_cast<uint64_t>(ack), pl));
    };
    for (Vm vm : {Vm::pvm, Vm::svm}) {
      Side side = vm == Vm::pvm ? Side::pvm : Side::svm;
      uint64_t base = t0 + (vm == Vm::svm ? lag : 0);
      for (auto [a, b] : segment(rng_, p.len)) {
        uint64_t t = base + b * rate + rng_() % (cfg_.jitter_ns + 1);
        int64_t ack = acked(vm, t);
        add({t, 0, side, k, Kind::data, a, b, false, ack, {},
             vm_frame(vm, kTcpAck | kTcpPsh, a, ack, content(p, vm, a, b))});
        if (u01(rng_) < cfg_.p_retransmit) {
          // whole, or overlapping up to one more segment of earlier bytes
          uint64_t ra = (rng_() & 1) ? a : a - rng_() % (std::min<uint64_t>(a, 1448) + 1);
          uint64_t rt = t + 1 * kMs + rng_() % (20 * kMs);
          int64_t rack = acked(vm, rt);
          add({rt, 0, side, k, Kind::data, ra, b, false, rack, {},
               vm_frame(vm, kTcpAck | kTcpPsh, ra, rack, content(p, vm, ra, b))});
        }
      }
    }
    // Client ACKs, some with a SACK block, acking PVM offsets (the engine only
    // translates them).
    uint64_t acks = rng_() % 4;
    for (uint64_t j = 0; j < acks; ++j) {
      uint64_t o = p.len ? rng_() % (p.len + 1) : 0;
      std::vector<std::pair<uint64_t, uint64_t>> sack;
      if (o + 2 < p.len && (rng_() & 1)) {
        uint64_t l = o + 1 + rng_() % (p.len - o - 1);
        uint64_t r = l + 1 + rng_() % (p.len - l);
        sack.emplace_back(l, r);
      }
      uint64_t t = t0 + o * rate + lag + 2 * kMs;
      add({t, 0, Side::ingress, k, Kind::client, o, 0, true, -1, sack,
           c.client_ack(up_len, o, sack)});
    }
    if (u01(rng_) < cfg_.p_close) {
      uint64_t tf = t0 + p.len * rate + rng_() % (cfg_.jitter_ns + 1) + 1 * kMs;
      int64_t pa = acked(Vm::pvm, tf), sa = acked(Vm::svm, tf + lag);
      add({tf, 0, Side::pvm, k, Kind::fin, p.len, p.len + 1, false, pa, {},
           vm_frame(Vm::pvm, kTcpFin | kTcpAck, p.len, pa, {})});
      add({tf + lag, 0, Side::svm, k, Kind::fin, p.len, p.len + 1, false, sa, {},
           vm_frame(Vm::svm, kTcpFin | kTcpAck, p.len, sa, {})});
      uint64_t tc = tf + lag + 2 * kMs;
      add({tc, 0, Side::ingress, k, Kind::client, p.len + 1, 0, true, -1, {},
           c.client_fin(up_len, p.len + 1)});
    }
  }

  // The client uploads up to 30 kB in segments 20 us apart; the PVM acknowledges every
  // second segment 30 us after it, the SVM every third, `lag` later (two delayed-ACK
  // patterns), both the last one. With svm_ack_cap set, that SVM stops acknowledging at
  // a segment boundary part-way through.
  void plan_upload(uint32_t k, uint64_t t_up, uint64_t& up_len) {
    ConnPlan& p = plans_[k];
    Conversation& c = p.conv;
    up_len = 1 + rng_() % 30000;
    if (p.svm_ack_cap) up_len = std::max<uint64_t>(up_len, 3 * 1448);
    uint64_t i = 0;
    for (uint64_t o = 0; o < up_len; ++i) {
      uint64_t n = std::min<uint64_t>(1448, up_len - o);
      uint64_t t = t_up + i * 20 * kUs;
      add({t, 0, Side::ingress, k, Kind::client, 0, 0, true, -1, {},
           c.client_data(o, stream_bytes(p.seed ^ 0xc11e47, o, n), 0)});
      o += n;
      p.up.emplace_back(t, o);
    }
    if (p.svm_ack_cap) p.svm_ack_cap = p.up[rng_() % (p.up.size() - 1)].second;
    for (size_t j = 0; j < p.up.size(); ++j) {
      auto [t, end] = p.up[j];
      const bool last = j + 1 == p.up.size();
      if (j % 2 == 1 || last) {
        add({t + 30 * kUs, 0, Side::pvm, k, Kind::pure_ack, 0, 0, false,
             static_cast<int64_t>(end), {},
             build_frame(c.vm_spec(Vm::pvm, kTcpAck, 0, end))});
      }
      if (j % 3 == 2 || last) {
        uint64_t a = p.svm_ack_cap ? std::min(end, *p.svm_ack_cap) : end;
        add({t + 30 * kUs + p.lag, 0, Side::svm, k, Kind::pure_ack, 0, 0, false,
             static_cast<int64_t>(a), {}, build_frame(c.vm_spec(Vm::svm, kTcpAck, 0, a))});
      }
    }
  }

  void push(const Ev& e) {
    Meta m;
    m.side = e.side;
    m.conn = e.conn;
    m.kind = e.kind;
    m.a = e.a;
    m.b = e.b;
    m.has_ack = e.has_ack;
    m.vm_ack = e.vm_ack;
    m.sack = e.sack;
    if (e.side == Side::svm) svm_acked_[e.conn] = std::max(svm_acked(e.conn), e.vm_ack);
    if (e.side == Side::pvm) pvm_acked_[e.conn] = std::max(pvm_acked_[e.conn], e.vm_ack);
    if (e.kind == Kind::data) {
      Vm vm = e.side == Side::pvm ? Vm::pvm : Vm::svm;
      Bytes x = e.side == Side::svm && rebased_ ? stream_bytes(plans_[e.conn].seed, e.a, e.b - e.a)
                                                : content(plans_[e.conn], vm, e.a, e.b);
      oracle(e.conn).add(vm, e.a, x);
      if (rebased_) oracle_after(e.conn).add(vm, e.a, x);
    }
    if (e.kind == Kind::syn && e.side == Side::svm) svm_syn_.insert(e.conn);
    if (e.kind == Kind::fin && e.side == Side::svm) svm_fin_.insert(e.conn);
    if (e.side == Side::pvm) {
      ++pvm_frames_;
      // Furthest stream position the PVM reached (a FIN occupies len, so len + 1). At
      // checkpoint done everything before it counts as the PVM's pre-checkpoint output.
      if (e.kind == Kind::data || e.kind == Kind::fin)
        pvm_extent_[e.conn] = std::max(pvm_extent_[e.conn], e.b);
    }
    meta_.push_back(std::move(m));
    uint64_t hd = h_.push(e.side, e.frame);
    ASSERT_EQ(hd, meta_.size()) << "handles are expected to be 1, 2, 3, ...";
  }

  int64_t svm_acked(uint32_t k) const {
    auto it = svm_acked_.find(k);
    return it == svm_acked_.end() ? -1 : it->second;
  }

  StreamOracle& oracle(uint32_t k) { return oracles_[k]; }
  StreamOracle& oracle_after(uint32_t k) { return oracles_after_[k]; }

  // Called after each step: when a checkpoint completed, the SVM becomes a copy of the
  // PVM. Its scheduled output is replaced by copies of the PVM's remaining frames.
  size_t on_done(size_t seen, size_t next) {
    size_t dones = 0;
    for (const auto& c : h_.checkpoints())
      if (c.done_ns) ++dones;
    if (dones == seen) return seen;
    if (!rebased_) {
      rebased_ = true;
      first_done_actions_ = 0;
      for (const auto& c : h_.checkpoints())
        if (c.done_ns) {
          first_done_actions_ = c.actions_before_done;
          break;
        }
    }
    rebase_point_ = pvm_extent_;  // PVM stream position per connection at done
    // The SVM, now a copy of the PVM, has received what the PVM acknowledged.
    for (auto [k, a] : pvm_acked_) svm_acked_[k] = std::max(svm_acked(k), a);
    oracles_after_.clear();
    std::vector<Ev> tail;
    for (size_t j = next; j < evs_.size(); ++j) {
      Ev& e = evs_[j];
      if (e.side == Side::svm) continue;
      if (e.side == Side::pvm) {
        Ev copy = e;
        copy.side = Side::svm;
        copy.t = e.t + 1 + plans_[e.conn].lag / 4;
        tail.push_back(std::move(copy));
      }
      tail.push_back(std::move(e));
    }
    for (auto& e : tail) e.order = next_order_++;
    std::stable_sort(tail.begin(), tail.end(), [](const Ev& x, const Ev& y) {
      return x.t != y.t ? x.t < y.t : x.order < y.order;
    });
    evs_.resize(next);
    for (auto& e : tail) evs_.push_back(std::move(e));
    return dones;
  }

  void check_new_actions() {
    const auto& acts = h_.actions();
    for (; checked_ < acts.size(); ++checked_) {
      const ActionRecord& r = acts[checked_];
      ASSERT_LE(r.handle, meta_.size());
      const Meta& m = meta_[r.handle - 1];
      bool after_done = rebased_ && checked_ >= first_done_actions_;
      if (m.side == Side::pvm) check_pvm(r, m, after_done);
      if (m.side == Side::ingress) check_ingress(r, m, after_done);
      if (m.side == Side::svm) {
        EXPECT_NE(r.kind, ActionKind::release) << "SVM frame released while the PVM lives";
      }
    }
  }

  void check_pvm(const ActionRecord& r, const Meta& m, bool after_done) {
    ASSERT_EQ(r.kind, ActionKind::release)
        << "PVM frame not released: handle " << r.handle << " kind " << int(r.kind)
        << " reason " << int(r.reason);
    auto reason = static_cast<ReleaseReason>(r.reason);
    auto [last, fresh] = last_released_.try_emplace(m.conn, r.handle);
    EXPECT_TRUE(fresh || last->second < r.handle)
        << "conn " << m.conn << ": PVM frame " << r.handle << " released after frame "
        << last->second << " that the PVM sent later";
    last->second = r.handle;
    if (reason == ReleaseReason::checkpoint) {
      EXPECT_TRUE(rebased_ || !h_.checkpoints().empty())
          << "released by checkpoint with no checkpoint";
      EXPECT_TRUE(cfg_.diverge || cfg_.svm_stops_acking) << "checkpoint release in an identical walk";
      return;
    }
    if (!after_done) {
      EXPECT_LE(m.vm_ack, svm_acked(m.conn))
          << "conn " << m.conn << ": PVM frame " << r.handle << " (" << to_string(reason)
          << ") acknowledges client offset " << m.vm_ack << ", the SVM only "
          << svm_acked(m.conn);
    }
    if (m.kind == Kind::pure_ack) return;
    if (m.kind == Kind::syn) {
      EXPECT_TRUE(svm_syn_.count(m.conn)) << "PVM SYN released before the SVM's, conn " << m.conn;
      return;
    }
    if (m.kind == Kind::fin) {
      EXPECT_TRUE(svm_fin_.count(m.conn)) << "PVM FIN released before the SVM's, conn " << m.conn;
    }
    uint64_t a = m.a, b = std::min(m.b, plans_[m.conn].len);
    if (!after_done) {
      EXPECT_TRUE(oracles_[m.conn].matched(a, b))
          << "conn " << m.conn << " PVM bytes [" << a << "," << b
          << ") released (" << to_string(reason) << ") before the SVM sent the same bytes"
          << (plans_[m.conn].diff_at ? " (diverging conn, diff at " +
                                           std::to_string(*plans_[m.conn].diff_at) + ")"
                                     : std::string());
    } else {
      uint64_t p = rebase_point_.count(m.conn) ? rebase_point_.at(m.conn) : 0;
      uint64_t from = std::max(a, p);
      if (from < b) {
        EXPECT_TRUE(oracles_after_[m.conn].matched(from, b))
            << "conn " << m.conn << " PVM bytes [" << from << "," << b
            << ") released (" << to_string(reason) << ") after the checkpoint without the SVM's "
            << "copy; PVM stream position at checkpoint done " << p << ", SVM copy has "
            << oracles_after_[m.conn].contiguous(Vm::svm) << " contiguous, extent "
            << oracles_after_[m.conn].extent(Vm::svm) << ", t " << r.t_ns;
      }
    }
  }

  void check_ingress(const ActionRecord& r, const Meta& m, bool after_done) {
    ASSERT_EQ(r.kind, ActionKind::forward_svm) << "client frame not forwarded, handle " << r.handle;
    ASSERT_TRUE(verify_l4_checksum(r.bytes)) << "bad checksum on SVM-bound client frame";
    if (!m.has_ack) return;
    const Conversation& c = plans_[m.conn].conv;
    Vm space = after_done ? Vm::pvm : Vm::svm;
    Decoded d = decode(r.bytes);
    ASSERT_TRUE(d.ok);
    EXPECT_EQ(d.ack, c.vm_seq(space, m.a))
        << "conn " << m.conn << " client ack not in the " << (after_done ? "PVM" : "SVM")
        << "'s space (PVM space " << c.vm_seq(Vm::pvm, m.a) << ", SVM space "
        << c.vm_seq(Vm::svm, m.a) << "), handle " << r.handle << ", action " << checked_
        << ", t " << r.t_ns;
    ASSERT_EQ(d.sack.size(), m.sack.size());
    for (size_t i = 0; i < m.sack.size(); ++i) {
      EXPECT_EQ(d.sack[i].first, c.vm_seq(space, m.sack[i].first));
      EXPECT_EQ(d.sack[i].second, c.vm_seq(space, m.sack[i].second));
    }
  }

  void expect_everything_out() {
    EXPECT_EQ(h_.check_contract(true), "");
    EXPECT_EQ(h_.conservation(), "");
    EXPECT_EQ(h_.counters().pvm_dropped_total(), 0u);
    EXPECT_EQ(h_.counters().held_pvm, 0u);
    EXPECT_EQ(h_.released_handles(Side::pvm).size(), pvm_frames_);
    EXPECT_EQ(h_.engine().held_frames(), 0u);
  }

  WalkConfig cfg_;
  std::mt19937_64 rng_;
  EngineHarness h_;
  std::vector<ConnPlan> plans_;
  std::vector<Ev> evs_;
  uint64_t next_order_ = 0;
  std::vector<Meta> meta_;
  std::map<uint32_t, StreamOracle> oracles_, oracles_after_;
  std::map<uint32_t, uint64_t> pvm_extent_, rebase_point_;
  std::map<uint32_t, int64_t> svm_acked_, pvm_acked_;  // highest client offset acked
  std::map<uint32_t, uint64_t> last_released_;          // last PVM handle released
  std::set<uint32_t> svm_syn_, svm_fin_;
  size_t checked_ = 0;
  bool rebased_ = false;
  size_t first_done_actions_ = 0;
  uint64_t pvm_frames_ = 0;
};

void run_identical(const WalkConfig& cfg) {
  Walk w(cfg);
  w.run();
  if (::testing::Test::HasFatalFailure()) return;
  w.expect_identical_outcome();
}

void run_ack_divergent(const WalkConfig& cfg) {
  Walk w(cfg);
  w.run();
  if (::testing::Test::HasFatalFailure()) return;
  w.expect_ack_divergent_outcome();
}

void run_divergent(const WalkConfig& cfg) {
  Walk w(cfg);
  w.run();
  if (::testing::Test::HasFatalFailure()) return;
  w.expect_divergent_outcome();
}

TEST(EngineRandomWalk, IdenticalStreamsFewLongConnections) {
  for (uint64_t seed : {0x5eed0001ull, 0x5eed0002ull, 0x5eed0003ull, 0x5eed0004ull}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    WalkConfig cfg;
    cfg.seed = seed;
    cfg.conns = 8;
    cfg.max_len = 200000;
    run_identical(cfg);
    if (HasFatalFailure()) return;
  }
}

TEST(EngineRandomWalk, UploadsAckedWithDifferentPatterns) {
  for (uint64_t seed : {21ull, 22ull, 23ull, 24ull}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    WalkConfig cfg;
    cfg.seed = seed;
    cfg.conns = 40;
    cfg.max_len = 20000;
    cfg.uploads = true;
    run_identical(cfg);
    if (HasFatalFailure()) return;
  }
}

TEST(EngineRandomWalk, SvmStopsAcknowledgingAnUpload) {
  for (uint64_t seed : {31ull, 32ull, 33ull, 34ull}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    WalkConfig cfg;
    cfg.seed = seed;
    cfg.conns = 30;
    cfg.max_len = 20000;
    cfg.uploads = true;
    cfg.svm_stops_acking = true;
    run_ack_divergent(cfg);
    if (HasFatalFailure()) return;
  }
}

TEST(EngineRandomWalk, IdenticalStreamsManyShortConnections) {
  for (uint64_t seed : {11ull, 12ull, 13ull}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    WalkConfig cfg;
    cfg.seed = seed;
    cfg.conns = 300;
    cfg.max_len = 5000;
    run_identical(cfg);
    if (HasFatalFailure()) return;
  }
}

TEST(EngineRandomWalk, IdenticalStreamsThousandsOfConnections) {
  WalkConfig cfg;
  cfg.seed = 0xc0ffee;
  cfg.conns = 3000;
  cfg.max_len = 3000;
  cfg.spread_ns = 500 * kMs;
  run_identical(cfg);
}

TEST(EngineRandomWalk, IdenticalStreamsHeavyReorderAndRetransmission) {
  for (uint64_t seed : {21ull, 22ull}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    WalkConfig cfg;
    cfg.seed = seed;
    cfg.conns = 40;
    cfg.max_len = 30000;
    cfg.jitter_ns = 20 * kMs;
    cfg.p_retransmit = 0.4;
    cfg.max_lag_ns = 30 * kMs;
    run_identical(cfg);
    if (HasFatalFailure()) return;
  }
}

TEST(EngineRandomWalk, OneDifferingByte) {
  for (uint64_t seed = 100; seed < 120; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    WalkConfig cfg;
    cfg.seed = seed;
    cfg.conns = 30;
    cfg.max_len = 20000;
    cfg.diverge = true;
    run_divergent(cfg);
    if (HasFatalFailure()) return;
  }
}

TEST(EngineRandomWalk, OneDifferingByteAmongThousands) {
  WalkConfig cfg;
  cfg.seed = 0xd1ff;
  cfg.conns = 1500;
  cfg.max_len = 3000;
  cfg.diverge = true;
  run_divergent(cfg);
}

// ---------------------------------------------------------------------------------------
// Datagrams: many UDP flows (IPv4 and IPv6, some VLAN-tagged), each a FIFO of datagrams
// of random sizes, some large enough to be fragmented (differently on the PVM and the
// SVM). The SVM lags per flow and swaps neighbours (within datagram_reorder_slack).
// Identical content: no checkpoint, every PVM frame released, per flow in arrival
// order, and a datagram's frames only after the SVM sent an equal datagram.

struct DgramEv {
  uint64_t t = 0, order = 0;
  Side side = Side::pvm;
  uint32_t flow = 0, index = 0;  // index of the datagram within its flow
  Bytes frame;
};

void run_datagram_walk(uint64_t seed, uint32_t flows, uint32_t per_flow) {
  std::mt19937_64 rng(seed);
  std::vector<DgramEv> evs;
  uint64_t order = 0;
  EngineHarness h;
  h.set_keep_bytes(false);
  for (uint32_t f = 0; f < flows; ++f) {
    bool v6 = rng() % 4 == 0;
    IpAddr vm = v6 ? ip6_doc(0x5000 + f) : ip4_host(0xc6336414u);
    IpAddr cl = v6 ? ip6_doc(0x10) : ip4_host(0xc0000200u + f);
    FrameSpec base = udp_spec(vm, cl, static_cast<uint16_t>(2000 + f % 50), 5353, {});
    if (rng() % 5 == 0) base.vlans = {static_cast<uint16_t>(1 + f % 4000)};
    uint64_t start = h.now() + rng() % (100 * kMs);
    uint64_t lag = rng() % (40 * kMs);
    std::vector<uint64_t> pvm_t(per_flow), svm_t(per_flow);
    for (uint32_t i = 0; i < per_flow; ++i) {
      pvm_t[i] = (i ? pvm_t[i - 1] : start) + 1 + rng() % (2 * kMs);
      svm_t[i] = pvm_t[i] + lag;
    }
    // The SVM swaps some neighbouring datagrams (disjoint pairs: within the slack of 2).
    for (uint32_t i = 0; i + 1 < per_flow; ++i)
      if (rng() % 4 == 0) {
        std::swap(svm_t[i], svm_t[i + 1]);
        ++i;
      }
    for (uint32_t i = 0; i < per_flow; ++i) {
      size_t n = (rng() % 8 == 0) ? 1500 + rng() % 3000 : rng() % 600;
      FrameSpec s = base;
      s.payload = stream_bytes(seed ^ f, static_cast<uint64_t>(i) << 20, n);
      s.ip_id = static_cast<uint16_t>(i);
      for (Bytes& fr : fragment_frame(build_frame(s), 1400, 0x7000u + i))
        evs.push_back({pvm_t[i], order++, Side::pvm, f, i, std::move(fr)});
      s.ip_id = static_cast<uint16_t>(0x8000 + i);
      for (Bytes& fr : fragment_frame(build_frame(s), 1000 + 8 * (rng() % 40), 0x9000u + i))
        evs.push_back({svm_t[i], order++, Side::svm, f, i, std::move(fr)});
    }
  }
  std::sort(evs.begin(), evs.end(), [](const DgramEv& a, const DgramEv& b) {
    return a.t != b.t ? a.t < b.t : a.order < b.order;
  });
  std::map<std::pair<uint32_t, uint32_t>, size_t> svm_frames_left;
  for (const auto& e : evs)
    if (e.side == Side::svm) ++svm_frames_left[{e.flow, e.index}];
  std::vector<std::pair<uint32_t, uint32_t>> meta;  // handle-1 -> (flow, index), PVM only
  std::vector<Side> sides;
  std::map<uint32_t, std::set<uint32_t>> svm_done;
  std::map<uint32_t, uint64_t> last_arrival;  // flow -> arrival of last released PVM frame
  size_t checked = 0;
  uint64_t pvm_frames = 0;
  for (size_t i = 0; i < evs.size(); ++i) {
    DgramEv& e = evs[i];
    h.advance_to(e.t);
    if (e.side == Side::svm && --svm_frames_left[{e.flow, e.index}] == 0)
      svm_done[e.flow].insert(e.index);
    if (e.side == Side::pvm) ++pvm_frames;
    meta.emplace_back(e.flow, e.index);
    sides.push_back(e.side);
    h.push(e.side, e.frame);
    const auto& acts = h.actions();
    for (; checked < acts.size(); ++checked) {
      const ActionRecord& r = acts[checked];
      if (r.side != Side::pvm) continue;
      ASSERT_EQ(r.kind, ActionKind::release);
      auto [fl, ix] = meta[r.handle - 1];
      EXPECT_TRUE(svm_done[fl].count(ix))
          << "flow " << fl << " datagram " << ix << " released before the SVM's copy";
      EXPECT_GT(r.arrival + 1, last_arrival[fl]) << "flow " << fl << " released out of order";
      last_arrival[fl] = r.arrival + 1;
    }
    if (::testing::Test::HasFatalFailure()) return;
  }
  h.run_until_idle();
  EXPECT_EQ(h.counters().checkpoint_requests, 0u);
  EXPECT_EQ(h.released_handles(Side::pvm).size(), pvm_frames);
  EXPECT_EQ(h.check_contract(true), "");
  EXPECT_EQ(h.conservation(), "");
  EXPECT_EQ(h.engine().held_frames(), 0u);
}

TEST(EngineRandomWalk, IdenticalDatagramsManyFlowsWithFragments) {
  for (uint64_t seed : {0xda7a01ull, 0xda7a02ull}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    run_datagram_walk(seed, 400, 12);
    if (HasFatalFailure()) return;
  }
}

// The oracle itself, so a broken oracle cannot make the walks vacuous.
TEST(StreamOracle, DecidesIdenticalAndFirstDifference) {
  StreamOracle o;
  Bytes x = stream_bytes(1, 0, 100);
  o.add(Vm::pvm, 0, std::span(x).subspan(0, 60));
  o.add(Vm::pvm, 60, std::span(x).subspan(60));
  o.add(Vm::svm, 50, std::span(x).subspan(50));
  EXPECT_FALSE(o.verdict().identical);
  EXPECT_EQ(o.verdict().first_diff, 0u);
  EXPECT_TRUE(o.matched(50, 100));
  EXPECT_FALSE(o.matched(49, 100));
  o.add(Vm::svm, 0, std::span(x).subspan(0, 50));
  EXPECT_TRUE(o.verdict().identical);
  EXPECT_FALSE(o.first_difference());
  StreamOracle d;
  Bytes y = x;
  y[77] ^= 1;
  d.add(Vm::pvm, 0, x);
  d.add(Vm::svm, 0, y);
  EXPECT_EQ(d.first_difference(), 77u);
  EXPECT_EQ(d.verdict().first_diff, 77u);
  EXPECT_TRUE(d.matched(0, 77));
  EXPECT_FALSE(d.matched(70, 80));
  EXPECT_FALSE(d.inconsistent());
  d.add(Vm::pvm, 10, std::span(y).subspan(10, 70));
  EXPECT_TRUE(d.inconsistent());
}

}  // namespace
}  // namespace lockstep::test
