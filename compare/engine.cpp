// Engine dispatch: parse, classify, connection table, held-frame pool, outcomes,
// checkpoints, modes and failover. TCP and datagram compare live in tcp_stream.cpp and
// datagram.cpp, reassembly in frag.cpp.
#include "compare/engine.h"

#include <algorithm>
#include <new>

#include "compare/engine_impl.h"

namespace lockstep {

namespace {

uint32_t pow2_at_least(uint64_t n) {
  uint32_t p = 1;
  while (p < n && p < (1u << 31)) p <<= 1;
  return p;
}

bool is_nd(const ParsedFrame& f) {
  return f.has_l4 && f.l4_proto == kProtoIcmpv6 && f.icmp_type >= 133 && f.icmp_type <= 137;
}

uint8_t u8(ReleaseReason r) { return static_cast<uint8_t>(r); }
uint8_t u8(DropReason r) { return static_cast<uint8_t>(r); }
unsigned ix(ReleaseReason r) { return static_cast<unsigned>(r); }
unsigned ix(DropReason r) { return static_cast<unsigned>(r); }

// Key of a non-IP frame: the ethertype stands in for the protocol, so that ARP, LLDP and
// friends each get one FIFO per VLAN.
FlowKey non_ip_key(const ParsedFrame& f) {
  FlowKey k;
  k.vlan = f.vlan_count ? static_cast<uint16_t>(f.vlan_tci[0] & 0xfff) : 0;
  k.port_lo = f.ethertype;
  k.proto = 0;
  return k;
}

}  // namespace

// ---------------------------------------------------------------------------- index

ConnIndex::ConnIndex(uint32_t max_conns) {
  uint32_t n = pow2_at_least(uint64_t{max_conns} * 2);
  buckets_.assign(n, Bucket{});
  mask_ = n - 1;
}

uint32_t ConnIndex::find(const FlowKey& k, uint64_t hash, const std::vector<Conn>& conns) const {
  uint32_t tag = static_cast<uint32_t>(hash >> 32);
  for (uint32_t i = static_cast<uint32_t>(hash) & mask_;; i = (i + 1) & mask_) {
    const Bucket& b = buckets_[i];
    if (b.conn == kNil) return kNil;
    if (b.tag == tag && conns[b.conn].key == k) return b.conn;
  }
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
    uint32_t home = static_cast<uint32_t>(conns[buckets_[j].conn].hash) & mask_;
    if (((j - home) & mask_) >= ((j - hole) & mask_)) {
      buckets_[hole] = buckets_[j];
      hole = j;
    }
  }
  buckets_[hole] = Bucket{};
}

// ---------------------------------------------------------------------------- setup

EngineImpl::EngineImpl(const Settings& s, PolicyTable policy)
    : settings_(s),
      policy_(std::move(policy)),
      timers_(static_cast<uint32_t>(s.max_held_frames + s.max_held_frames / 8 + 64)),
      index_(static_cast<uint32_t>(s.max_connections)) {
  uint32_t pool = static_cast<uint32_t>(s.max_held_frames + s.max_held_frames / 8 + 64);
  held_.resize(pool);
  for (uint32_t i = pool; i-- > 0;) {
    held_[i].next = free_held_;
    free_held_ = i;
  }
  held_soft_limit_ = static_cast<uint32_t>(s.max_held_frames);
  conns_.resize(s.max_connections);
  cold_.resize(s.max_connections);
  for (uint32_t i = static_cast<uint32_t>(s.max_connections); i-- > 0;) {
    conns_[i].lru_next = free_conn_;
    free_conn_ = i;
  }
  frags_.resize(s.frag_max_datagrams);
  fired_.reserve(1024);
  out_.reserve(4096);
  checkpoint_times_.assign(std::max<uint64_t>(1, s.hybrid_threshold), 0);
  derive();
  mode_from_string(settings_.mode, mode_);
}

void EngineImpl::derive() {
  timeout_ns_ = settings_.compare_timeout_us * 1000;
  ack_ns_ = settings_.ack_timeout_us * 1000;
  idle_ns_ = settings_.idle_timeout_ms * 1000000;
  linger_ns_ = settings_.closed_linger_ms * 1000000;
  frag_timeout_ns_ = settings_.frag_timeout_ms * 1000000;
  buffer_epoch_ns_ = settings_.buffer_epoch_us * 1000;
  policy_action_from_string(settings_.non_ip_policy, non_ip_policy_);
  policy_action_from_string(settings_.nd_policy, nd_policy_);
  malformed_pass_ = settings_.malformed_policy == "pass";
}

std::unique_ptr<Engine> Engine::create(const Settings& s, std::string& error) {
  // A snapshot may have been built by hand: every value must pass the table's checks.
  for (const SettingInfo& info : settings_table()) {
    Settings checked;
    if (!s.with(info.name, s.get(info.name), checked, error)) return nullptr;
  }
  PolicyTable policy;
  PolicyAction def = PolicyAction::compare;
  policy_action_from_string(s.default_policy, def);
  if (!policy.parse(s.policy_rules, def, error)) return nullptr;
  auto norm = Normalizer::create(s.normalize_rules, static_cast<uint32_t>(s.normalize_max_span),
                                 static_cast<uint32_t>(std::min(s.normalize_max_conns,
                                                                s.max_connections)),
                                 error);
  if (!norm && !error.empty()) return nullptr;
  auto impl = std::make_unique<EngineImpl>(s, std::move(policy));
  impl->norm_install(std::move(norm));
  return std::unique_ptr<Engine>(new Engine(std::move(impl)));
}

bool EngineImpl::apply_settings(const Settings& s, std::string& error) {
  if (s.max_connections != settings_.max_connections ||
      s.max_held_frames != settings_.max_held_frames ||
      s.frag_max_datagrams != settings_.frag_max_datagrams) {
    error = "max_connections, max_held_frames and frag_max_datagrams are fixed at start";
    return false;
  }
  PolicyTable policy;
  PolicyAction def = PolicyAction::compare;
  policy_action_from_string(s.default_policy, def);
  if (!policy.parse(s.policy_rules, def, error)) return false;
  Mode m = mode_;
  if (!mode_from_string(s.mode, m)) {
    error = "setting 'mode': unknown mode '" + s.mode + "'";
    return false;
  }
  // Normalization rules: compiled here, once, only when they (or their bounds) change;
  // a pattern that does not compile refuses the whole snapshot.
  const bool norm_changed = s.normalize_rules != settings_.normalize_rules ||
                            s.normalize_max_span != settings_.normalize_max_span ||
                            s.normalize_max_conns != settings_.normalize_max_conns;
  std::unique_ptr<Normalizer> norm;
  if (norm_changed) {
    norm = Normalizer::create(s.normalize_rules, static_cast<uint32_t>(s.normalize_max_span),
                              static_cast<uint32_t>(std::min(s.normalize_max_conns,
                                                             s.max_connections)),
                              error);
    if (!norm && !error.empty()) return false;
  }
  bool mode_changed = s.mode != settings_.mode;
  settings_ = s;
  policy_ = std::move(policy);
  ++policy_gen_;
  if (norm_changed) norm_install(std::move(norm));
  if (s.hybrid_threshold != checkpoint_times_.size()) {
    checkpoint_times_.assign(std::max<uint64_t>(1, s.hybrid_threshold), 0);
    checkpoint_times_head_ = 0;
  }
  derive();
  if (mode_changed) set_mode(m, last_now_);
  return true;
}

// ---------------------------------------------------------------------------- held pool

void EngineImpl::list_remove(HeldList& l, uint32_t idx, uint32_t prev) {
  uint32_t next = held_[idx].next;
  if (prev == kNil) l.head = next;
  else held_[prev].next = next;
  if (l.tail == idx) l.tail = prev;
  --l.count;
  held_[idx].next = kNil;
}

// ---------------------------------------------------------------------------- outcomes

void EngineImpl::release_frame(uint32_t idx, ReleaseReason why) {
  if (held_[idx].side == Side::pvm) {
    const uint64_t held = last_now_ > held_[idx].arrival_ns ? last_now_ - held_[idx].arrival_ns : 0;
    const unsigned b = latency_bucket(held);
    c_.held_release_ns += held;
    ++c_.hold_hist[b];
    if (why == ReleaseReason::matched) {
      c_.svm_lag_ns += held;
      ++c_.svm_lag_hist[b];
    }
  }
  for (uint32_t j = idx; j != kNil;) {
    Held& h = held_[j];
    uint32_t next = h.frag_next;
    if (h.reasm != kNil) frags_[h.reasm].in_use = false;
    emit(h.handle, ActionKind::release, u8(why), h.side);
    ++c_.released[ix(why)];
    free_held(j);
    j = next;
  }
}

void EngineImpl::drop_frame(uint32_t idx, DropReason why) {
  for (uint32_t j = idx; j != kNil;) {
    Held& h = held_[j];
    uint32_t next = h.frag_next;
    if (h.reasm != kNil) frags_[h.reasm].in_use = false;
    emit(h.handle, ActionKind::drop, u8(why), h.side);
    switch (h.side) {
      case Side::pvm: ++c_.pvm_dropped[ix(why)]; break;
      case Side::svm: ++c_.svm_dropped[ix(why)]; break;
      case Side::ingress: ++c_.ingress_dropped[ix(why)]; break;
    }
    free_held(j);
    j = next;
  }
}

void EngineImpl::free_svm_frame(uint32_t idx) {
  for (uint32_t j = idx; j != kNil;) {
    Held& h = held_[j];
    uint32_t next = h.frag_next;
    if (h.reasm != kNil) frags_[h.reasm].in_use = false;
    emit(h.handle, ActionKind::free, 0, Side::svm);
    ++c_.svm_freed;
    free_held(j);
    j = next;
  }
}

void EngineImpl::forward_ingress(uint32_t idx, bool translated) {
  Held& h = held_[idx];
  if (!translated) ++c_.ingress_untranslated;
  emit(h.handle, ActionKind::forward_svm, 0, Side::ingress);
  ++c_.svm_forwarded;
  free_held(idx);
}

void EngineImpl::drop_direct(Side side, uint64_t handle, DropReason why) {
  emit(handle, ActionKind::drop, u8(why), side);
  switch (side) {
    case Side::pvm: ++c_.pvm_dropped[ix(why)]; break;
    case Side::svm: ++c_.svm_dropped[ix(why)]; break;
    case Side::ingress: ++c_.ingress_dropped[ix(why)]; break;
  }
}

uint32_t EngineImpl::drain(std::span<Action> out) {
  size_t n = std::min(out.size(), out_.size() - out_head_);
  std::copy_n(out_.begin() + static_cast<ptrdiff_t>(out_head_), n, out.begin());
  out_head_ += n;
  if (out_head_ == out_.size()) {
    out_.clear();
    out_head_ = 0;
  } else if (out_head_ > 4096 && out_head_ * 2 > out_.size()) {
    // A caller that never drains everything: drop the consumed prefix now and then.
    out_.erase(out_.begin(), out_.begin() + static_cast<ptrdiff_t>(out_head_));
    out_head_ = 0;
  }
  return static_cast<uint32_t>(n);
}

// ---------------------------------------------------------------------------- connections

uint32_t EngineImpl::lookup_or_create(const FlowKey& k, uint64_t hash, ConnKind kind,
                                      uint64_t now, bool create) {
  uint32_t ci = index_.find(k, hash, conns_);
  if (ci != kNil || !create) return ci;
  if (free_conn_ == kNil && !evict_one(now)) {
    ++c_.conns_table_full;
    request_checkpoint(CheckpointReason::table_full, &k, now);
    return kNil;
  }
  ci = free_conn_;
  free_conn_ = conns_[ci].lru_next;
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

bool EngineImpl::evict_one(uint64_t now) {
  (void)now;
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
    if (!conn_holds(c) && !needs_state) {
      expire_conn(ci);
      return true;
    }
  }
  return false;
}

void EngineImpl::expire_conn(uint32_t ci) {
  Conn& c = conns_[ci];
  norm_detach(c);
  index_.erase(c.hash, ci, conns_);
  lru_unlink(ci);
  c.in_use = false;
  c.closing_listed = false;
  c.lru_next = free_conn_;
  free_conn_ = ci;
  ++c_.conns_expired;
  --c_.conns_active;
}

void EngineImpl::mark_closed(uint32_t ci, uint64_t now) {
  Conn& c = conns_[ci];
  if (c.state == TcpState::closed) return;
  c.state = TcpState::closed;
  cold_[ci].closed_ns = now;
  if (!c.closing_listed) {
    c.closing_listed = true;
    closing_.push_back(ci);
  }
}

void EngineImpl::expire_idle(uint64_t now) {
  unsigned budget = 64;
  while (lru_head_ != kNil && budget-- > 0) {
    uint32_t ci = lru_head_;
    Conn& c = conns_[ci];
    if (c.last_seen_ns + idle_ns_ > now) break;
    if (conn_holds(c)) {
      // Idle but holding output: its deadline handles it; look at the next one later.
      lru_unlink(ci);
      lru_append(ci);
      continue;
    }
    expire_conn(ci);
  }
  budget = 64;
  while (closing_head_ < closing_.size() && budget-- > 0) {
    uint32_t ci = closing_[closing_head_];
    Conn& c = conns_[ci];
    if (!c.in_use || !c.closing_listed || c.state != TcpState::closed) {
      ++closing_head_;
      continue;
    }
    if (cold_[ci].closed_ns + linger_ns_ > now) break;
    ++closing_head_;
    c.closing_listed = false;
    if (conn_holds(c)) {
      c.closing_listed = true;
      closing_.push_back(ci);
      continue;
    }
    expire_conn(ci);
  }
  if (closing_head_ > 4096 && closing_head_ * 2 > closing_.size()) {
    closing_.erase(closing_.begin(), closing_.begin() + static_cast<ptrdiff_t>(closing_head_));
    closing_head_ = 0;
  }
}

// ---------------------------------------------------------------------------- dispatch

bool EngineImpl::push(Side side, uint64_t handle, uint8_t* data, uint32_t len, uint64_t now) {
  last_now_ = now;
  ParsedFrame f = kFreshFrame;  // vector moves, not a `rep stos` (parse.h)
  parse_fresh_frame(data, len, f);
  return dispatch(side, handle, data, len, now, f, nullptr);
}

// The burst path: the same dispatch per frame, after a pass that parses every frame of a
// group, computes the flow key and hash of those that have one, and prefetches first the
// index buckets, then the connections the buckets name (two dependent misses per frame
// become two overlapped rounds per group). Which frames get a key mirrors dispatch: IP
// frames that are not fragments; the rest go without (dispatch computes what it needs).
void EngineImpl::push_burst(std::span<const Engine::Input> in, uint64_t now,
                            std::span<bool> to_pvm) {
  constexpr size_t kGroup = Engine::kBurstGroup;
  last_now_ = now;
  // Left uninitialised: a used slot is written whole before it is read (default
  // construction would zero all of them on every call).
  union Frames {
    Frames() {}
    ParsedFrame at[kGroup];
  } frames;
  union Keys {
    Keys() {}
    Keyed at[kGroup];
  } keys;
  ParsedFrame* f = frames.at;
  Keyed* keyed = keys.at;
  std::array<bool, kGroup> has_key;
  for (size_t base = 0; base < in.size(); base += kGroup) {
    const size_t n = std::min(kGroup, in.size() - base);
    for (size_t i = 0; i < n; ++i) {
      const Engine::Input& x = in[base + i];
      new (&f[i]) ParsedFrame(kFreshFrame);
      has_key[i] = parse_fresh_frame(x.data, x.len, f[i]) == ParseStatus::ok &&
                   !f[i].is_fragment && (x.side != Side::ingress || f[i].is_tcp());
      if (has_key[i]) {
        const FlowKey k = flow_key_of(f[i]);
        new (&keyed[i]) Keyed{k, flow_hash(k)};
        index_.prefetch(keyed[i].hash);
      }
    }
    for (size_t i = 0; i < n; ++i) {
      if (!has_key[i]) continue;
      const uint32_t ci = index_.peek(keyed[i].hash);
      if (ci == kNil) continue;
      const char* p = reinterpret_cast<const char*>(&conns_[ci]);
      for (size_t off = 0; off < sizeof(Conn); off += 64) __builtin_prefetch(p + off, 1);
    }
    for (size_t i = 0; i < n; ++i) {
      const Engine::Input& x = in[base + i];
      const bool r = dispatch(x.side, x.handle, x.data, x.len, now, f[i],
                              has_key[i] ? &keyed[i] : nullptr);
      if (base + i < to_pvm.size()) to_pvm[base + i] = r;
    }
  }
}

bool EngineImpl::dispatch(Side side, uint64_t handle, uint8_t* data, uint32_t len,
                          uint64_t now, const ParsedFrame& f, const Keyed* keyed) {
  unsigned si = static_cast<unsigned>(f.status);
  switch (side) {
    case Side::ingress:
      ++c_.ingress_in;
      ++c_.parse_ingress[si];
      return on_ingress(handle, data, len, now, f, keyed);
    case Side::pvm:
      ++c_.pvm_in;
      ++c_.parse_pvm[si];
      break;
    case Side::svm:
      ++c_.svm_in;
      ++c_.parse_svm[si];
      break;
  }
  on_pvm_svm(side, handle, data, len, now, f, keyed);
  return true;
}

void EngineImpl::on_pvm_svm(Side side, uint64_t handle, uint8_t* data, uint32_t len,
                            uint64_t now, const ParsedFrame& f, const Keyed* keyed) {
  const bool pvm = side == Side::pvm;
  if (failed_over_) {
    if (*failed_over_ == Survivor::primary) {
      if (pvm) release_direct(side, handle, ReleaseReason::failover);
      else drop_direct(side, handle, DropReason::svm_unmatched_passthrough);
      return;
    }
    if (pvm) {
      drop_direct(side, handle, DropReason::primary_lost);
      return;
    }
    if (f.status == ParseStatus::ok && f.is_tcp()) {
      uint32_t ci = lookup_or_create(flow_key_of(f), ConnKind::tcp, now, false);
      if (ci != kNil) tcp_translate_svm_output(conns_[ci], data, len);
    }
    emit(handle, ActionKind::release, u8(ReleaseReason::svm_survivor), side);
    ++c_.released[ix(ReleaseReason::svm_survivor)];
    return;
  }

  if (f.status != ParseStatus::ok && f.status != ParseStatus::non_ip) {
    if (pvm && malformed_pass_) release_direct(side, handle, ReleaseReason::malformed_pass);
    else drop_direct(side, handle, DropReason::malformed);
    return;
  }

  if (mode_ != Mode::colo && f.status == ParseStatus::ok && f.is_tcp() && !f.is_fragment) {
    // Not comparing, but keep each connection's ISNs and the PVM's stream position so
    // that compare can resume right after the checkpoint that ends this mode.
    tcp_track_uncompared(side, f, now);
  }

  if (mode_ == Mode::passthrough) {
    if (pvm) release_direct(side, handle, ReleaseReason::passthrough);
    else drop_direct(side, handle, DropReason::svm_unmatched_passthrough);
    return;
  }

  PolicyAction action = PolicyAction::compare;
  if (f.status == ParseStatus::non_ip) action = non_ip_policy_;
  else if (is_nd(f)) action = nd_policy_;

  if (mode_ == Mode::buffer) {
    if (!pvm) {
      drop_direct(side, handle, DropReason::svm_unmatched_passthrough);
      return;
    }
    if (action == PolicyAction::drop) {
      drop_direct(side, handle, f.status == ParseStatus::non_ip ? DropReason::non_ip
                                                                 : DropReason::policy_drop);
      return;
    }
    hold_without_conn(side, handle, data, len, now);
    return;
  }

  if (f.status == ParseStatus::ok && f.is_fragment) {
    frag_input(side, handle, data, len, now, f);
    return;
  }

  FlowKey key;
  uint64_t hash;
  ConnKind kind;
  if (f.status == ParseStatus::non_ip) {
    if (action == PolicyAction::pass) {
      if (pvm) release_direct(side, handle, ReleaseReason::non_ip_pass);
      else drop_direct(side, handle, DropReason::non_ip);
      return;
    }
    if (action == PolicyAction::drop) {
      drop_direct(side, handle, DropReason::non_ip);
      return;
    }
    key = non_ip_key(f);
    hash = flow_hash(key);
    kind = ConnKind::non_ip;
  } else {
    key = keyed ? keyed->key : flow_key_of(f);
    hash = keyed ? keyed->hash : flow_hash(key);
    kind = f.is_tcp() ? ConnKind::tcp : ConnKind::datagram;
  }

  uint32_t ci = lookup_or_create(key, hash, kind, now, true);
  if (ci == kNil) {
    request_checkpoint(CheckpointReason::table_full, &key, now);
    if (pvm) hold_without_conn(side, handle, data, len, now);
    else drop_direct(side, handle, DropReason::table_full);
    return;
  }
  touch(ci, now);
  Conn& c = conns_[ci];
  if (kind != ConnKind::non_ip && action == PolicyAction::compare) action = policy_of(c);
  if (action == PolicyAction::pass) {
    if (pvm) release_direct(side, handle, ReleaseReason::policy_pass);
    else drop_direct(side, handle, DropReason::svm_unmatched_passthrough);
    return;
  }
  if (action == PolicyAction::drop) {
    drop_direct(side, handle, DropReason::policy_drop);
    return;
  }

  if (kind == ConnKind::tcp) {
    tcp_note_ack(c, side, data, f);
    if (tcp_match_on_arrival(ci, side, handle, data, f)) return;
  }
  uint32_t idx = alloc_held(side, handle, data, len, now);
  if (idx == kNil) {
    drop_direct(side, handle, DropReason::held_overflow);
    return;
  }
  held_[idx].conn = ci;
  if (kind == ConnKind::tcp) {
    tcp_output(ci, idx, f, now);
    return;
  }
  Held& h = held_[idx];
  if (kind == ConnKind::non_ip) {
    h.payload_off = 0;
    h.payload_len = len;
  } else if (f.has_l4 && (f.l4_proto == kProtoIcmp || f.l4_proto == kProtoIcmpv6)) {
    // Type and code, then everything after the checksum.
    h.seq = SeqNum((uint32_t{f.icmp_type} << 8) | f.icmp_code);
    h.payload_off = f.l4_off + 4u;
    h.payload_len = f.l3_end > h.payload_off ? f.l3_end - h.payload_off : 0;
  } else if (f.has_l4) {
    h.payload_off = f.payload_off;
    h.payload_len = f.payload_len;
  } else {
    h.payload_off = f.l4_off;
    h.payload_len = f.l3_end > f.l4_off ? f.l3_end - f.l4_off : 0;
  }
  dgram_output(ci, idx, now);
}

void EngineImpl::hold_without_conn(Side side, uint64_t handle, uint8_t* data, uint32_t len,
                                   uint64_t now) {
  uint32_t idx = alloc_held(side, handle, data, len, now);
  if (idx == kNil) {
    drop_direct(side, handle, DropReason::held_overflow);
    return;
  }
  list_push(unowned_, idx);
  arm_deadline(idx, now + (mode_ == Mode::buffer ? buffer_epoch_ns_ : timeout_ns_));
}

bool EngineImpl::on_ingress(uint64_t handle, uint8_t* data, uint32_t len, uint64_t now,
                            const ParsedFrame& f, const Keyed* keyed) {
  const bool to_pvm = !(failed_over_ && *failed_over_ == Survivor::secondary);
  if (failed_over_ && *failed_over_ == Survivor::primary) {
    drop_direct(Side::ingress, handle, DropReason::svm_not_mirrored);
    return to_pvm;
  }
  if (f.status != ParseStatus::ok || !f.is_tcp() || f.is_fragment) {
    emit(handle, ActionKind::forward_svm, 0, Side::ingress);
    ++c_.svm_forwarded;
    return to_pvm;
  }
  uint32_t ci = keyed ? lookup_or_create(keyed->key, keyed->hash, ConnKind::tcp, now, true)
                      : lookup_or_create(flow_key_of(f), ConnKind::tcp, now, true);
  if (ci == kNil) {
    emit(handle, ActionKind::forward_svm, 0, Side::ingress);
    ++c_.svm_forwarded;
    ++c_.ingress_untranslated;
    return to_pvm;
  }
  touch(ci, now);
  tcp_ingress(ci, handle, data, len, f, now);
  return to_pvm;
}

// ---------------------------------------------------------------------------- time

void EngineImpl::advance(uint64_t now) {
  last_now_ = std::max(last_now_, now);
  fired_.clear();
  timers_.expire(now, [this](uint32_t id) { fired_.push_back(id); });
  for (uint32_t id : fired_) {
    Held& h = held_[id];
    if (!h.live) continue;
    if (h.side == Side::ingress) {
      if (h.conn != kNil) tcp_flush_ingress(h.conn, false);
      continue;
    }
    if (h.side == Side::pvm && h.conn != kNil && mode_ == Mode::colo && tcp_deadline(id, now)) {
      continue;
    }
    h.deadline_fired = true;
    if (h.conn == kNil || mode_ == Mode::buffer) {
      request_checkpoint(mode_ == Mode::buffer ? CheckpointReason::buffer_epoch
                                               : CheckpointReason::deadline,
                         nullptr, now);
    } else {
      diverge(h.conn, CheckpointReason::deadline, now, id);
    }
  }
  frag_expire(now);
  expire_idle(now);
  if (hybrid_active_ && mode_ == Mode::buffer && !mode_after_checkpoint_ &&
      now >= buffer_since_ns_ + settings_.hybrid_quiet_ms * 1000000) {
    set_mode(Mode::colo, now);
  }
}

uint64_t EngineImpl::next_deadline() const { return std::min(timers_.earliest(), other_deadline()); }

bool EngineImpl::due(uint64_t now) const { return timers_.due(now) || other_deadline() <= now; }

uint64_t EngineImpl::other_deadline() const {
  uint64_t t = UINT64_MAX;
  for (uint32_t fi = frag_age_head_; fi != kNil; fi = frags_[fi].next_age) {
    const FragEntry& e = frags_[fi];
    if (e.in_use && !e.complete) {
      t = std::min(t, e.created_ns + frag_timeout_ns_);
      break;
    }
  }
  if (hybrid_active_ && mode_ == Mode::buffer && !mode_after_checkpoint_) {
    t = std::min(t, buffer_since_ns_ + settings_.hybrid_quiet_ms * 1000000);
  }
  return t;
}

// ---------------------------------------------------------------------------- checkpoints

void EngineImpl::diverge(uint32_t ci, CheckpointReason reason, uint64_t now, uint32_t frame) {
  Conn& c = conns_[ci];
  c.diverged = true;
  ++cold_[ci].divergences;
  const bool first = !outstanding_;
  request_checkpoint(reason, &c.key, now);
  if (first && pending_request_) explain(ci, reason, frame, *pending_request_);
}

void EngineImpl::request_checkpoint(CheckpointReason reason, const FlowKey* flow, uint64_t now) {
  ++c_.checkpoint_triggers;
  if (outstanding_) return;
  outstanding_ = true;
  CheckpointRequest r;
  r.epoch = epoch_;
  r.reason = reason;
  r.t_ns = now;
  if (flow) {
    r.flow = *flow;
    r.has_flow = true;
  }
  pending_request_ = r;
  ++c_.checkpoint_requests;
  ++c_.checkpoint_reason[static_cast<unsigned>(reason)];
}

std::optional<CheckpointRequest> EngineImpl::take_checkpoint_request() {
  auto r = pending_request_;
  pending_request_.reset();
  return r;
}

void EngineImpl::release_all_held(ReleaseReason why) {
  const bool pvm_lost = failed_over_ && *failed_over_ == Survivor::secondary;
  for (uint32_t ci = lru_head_; ci != kNil; ci = conns_[ci].lru_next) {
    Conn& c = conns_[ci];
    while (c.pvm.head != kNil) {
      uint32_t idx = list_pop(c.pvm);
      if (pvm_lost) drop_frame(idx, DropReason::primary_lost);
      else release_frame(idx, why);
    }
    while (c.svm.head != kNil) {
      uint32_t idx = list_pop(c.svm);
      if (pvm_lost) {
        tcp_translate_svm_output(c, held_[idx].data, held_[idx].len);
        release_frame(idx, ReleaseReason::svm_survivor);
      } else {
        drop_frame(idx, DropReason::svm_backlog_flushed);
      }
    }
    c.unmatched_pvm = c.unmatched_svm = 0;
  }
  while (unowned_.head != kNil) {
    uint32_t idx = list_pop(unowned_);
    if (pvm_lost) drop_frame(idx, DropReason::primary_lost);
    else release_frame(idx, why);
  }
}

void EngineImpl::checkpoint_done(uint64_t epoch, uint64_t now) {
  last_now_ = std::max(last_now_, now);
  if (epoch < epoch_) {
    ++c_.checkpoint_done_stale;
    return;
  }
  ++c_.checkpoints_done;
  release_all_held(ReleaseReason::checkpoint);
  // The SVM is now a copy of the PVM: rebase every connection.
  for (uint32_t ci = lru_head_; ci != kNil; ci = conns_[ci].lru_next) {
    Conn& c = conns_[ci];
    c.diverged = false;
    c.stale_valid = c.kind == ConnKind::tcp && c.seq_offset != 0;
    c.stale_offset = c.seq_offset;
    c.seq_offset = 0;
    c.ts_offset = 0;
    c.offset_known = true;
    c.ts_known = true;
    if (c.kind == ConnKind::tcp && (c.pvm_syn || c.cmp_valid)) {
      c.cmp = c.pvm_next;
      c.cmp_valid = true;
    }
    c.rebase_seq = c.cmp;
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
    if (c.ingress.head != kNil) tcp_flush_ingress(ci, true);
  }
  epoch_ = epoch + 1;
  outstanding_ = false;
  pending_request_.reset();
  hybrid_on_checkpoint(now);
  if (mode_after_checkpoint_) {
    Mode m = *mode_after_checkpoint_;
    mode_after_checkpoint_.reset();
    if (m != mode_) {
      mode_ = m;
      ++c_.mode_switches;
      if (m == Mode::buffer) buffer_since_ns_ = now;
    }
  }
}

void EngineImpl::hybrid_on_checkpoint(uint64_t now) {
  if (!settings_.hybrid || mode_ != Mode::colo || mode_after_checkpoint_) return;
  size_t n = checkpoint_times_.size();
  checkpoint_times_[checkpoint_times_head_] = now;
  checkpoint_times_head_ = (checkpoint_times_head_ + 1) % n;
  uint64_t oldest = checkpoint_times_[checkpoint_times_head_];  // n checkpoints ago
  if (oldest != 0 && now - oldest <= settings_.hybrid_window_ms * 1000000) {
    hybrid_active_ = true;
    set_mode(Mode::buffer, now);
    std::fill(checkpoint_times_.begin(), checkpoint_times_.end(), 0);
  }
}

void EngineImpl::set_mode(Mode m, uint64_t now) {
  if (failed_over_) return;
  if (m == mode_) {
    mode_after_checkpoint_.reset();
    return;
  }
  settings_.mode = std::string(to_string(m));
  switch (m) {
    case Mode::passthrough:
      release_all_held(ReleaseReason::passthrough);
      for (uint32_t ci = lru_head_; ci != kNil; ci = conns_[ci].lru_next) {
        if (conns_[ci].ingress.head != kNil) tcp_flush_ingress(ci, true);
      }
      mode_ = m;
      ++c_.mode_switches;
      break;
    case Mode::buffer:
      // Held PVM output stays until the next checkpoint; SVM output is no longer needed.
      for (uint32_t ci = lru_head_; ci != kNil; ci = conns_[ci].lru_next) {
        Conn& c = conns_[ci];
        while (c.svm.head != kNil) drop_frame(list_pop(c.svm), DropReason::svm_unmatched_passthrough);
        c.diverged = true;
      }
      mode_ = m;
      buffer_since_ns_ = now;
      ++c_.mode_switches;
      break;
    case Mode::colo:
      // Comparing needs both VMs in step: resume at the next checkpoint.
      mode_after_checkpoint_ = Mode::colo;
      request_checkpoint(CheckpointReason::manual, nullptr, now);
      if (hybrid_active_) hybrid_active_ = false;
      break;
  }
}

void EngineImpl::failover(Survivor s, uint64_t now) {
  last_now_ = std::max(last_now_, now);
  if (failed_over_) return;
  failed_over_ = s;
  ++c_.failovers;
  if (s == Survivor::primary) {
    release_all_held(ReleaseReason::failover);
    for (uint32_t ci = lru_head_; ci != kNil; ci = conns_[ci].lru_next) {
      Conn& c = conns_[ci];
      while (c.ingress.head != kNil) drop_frame(list_pop(c.ingress), DropReason::svm_not_mirrored);
    }
  } else {
    release_all_held(ReleaseReason::failover);  // PVM dropped, SVM released (see above)
    for (uint32_t ci = lru_head_; ci != kNil; ci = conns_[ci].lru_next) {
      if (conns_[ci].ingress.head != kNil) tcp_flush_ingress(ci, true);
    }
  }
  mode_ = Mode::passthrough;
  mode_after_checkpoint_.reset();
  outstanding_ = false;
  pending_request_.reset();
}

void EngineImpl::flush_all(uint64_t now) {
  last_now_ = std::max(last_now_, now);
  const bool pvm_lost = failed_over_ && *failed_over_ == Survivor::secondary;
  for (uint32_t ci = lru_head_; ci != kNil; ci = conns_[ci].lru_next) {
    Conn& c = conns_[ci];
    while (c.pvm.head != kNil) {
      uint32_t idx = list_pop(c.pvm);
      if (pvm_lost) drop_frame(idx, DropReason::primary_lost);
      else release_frame(idx, ReleaseReason::checkpoint);
    }
    while (c.svm.head != kNil) drop_frame(list_pop(c.svm), DropReason::svm_backlog_flushed);
    while (c.ingress.head != kNil) drop_frame(list_pop(c.ingress), DropReason::svm_not_mirrored);
    c.unmatched_pvm = c.unmatched_svm = 0;
  }
  while (unowned_.head != kNil) {
    uint32_t idx = list_pop(unowned_);
    if (pvm_lost) drop_frame(idx, DropReason::primary_lost);
    else release_frame(idx, ReleaseReason::checkpoint);
  }
  for (uint32_t fi = 0; fi < frags_.size(); ++fi) {
    if (frags_[fi].in_use && !frags_[fi].complete) frag_discard(fi, DropReason::frag_timeout);
  }
}

// ---------------------------------------------------------------------------- views

void EngineImpl::list_connections(std::vector<ConnInfo>& out, size_t limit) const {
  for (uint32_t ci = lru_tail_; ci != kNil && out.size() < limit; ci = conns_[ci].lru_prev) {
    const Conn& c = conns_[ci];
    ConnInfo info;
    info.key = c.key;
    switch (c.kind) {
      case ConnKind::tcp:
        info.state = c.state == TcpState::fresh         ? "fresh"
                     : c.state == TcpState::syn         ? "syn"
                     : c.state == TcpState::established ? "established"
                                                        : "closed";
        break;
      case ConnKind::datagram: info.state = "datagram"; break;
      case ConnKind::non_ip: info.state = "non_ip"; break;
    }
    if (c.diverged) info.state += ",diverged";
    info.held_pvm = c.pvm.count;
    info.held_svm = c.svm.count;
    info.bytes_matched = c.bytes_matched;
    info.last_seen_ns = c.last_seen_ns;
    info.svm_seq_offset = static_cast<int32_t>(c.seq_offset);
    info.divergences = cold_[ci].divergences;
    out.push_back(info);
  }
}

size_t EngineImpl::memory_bytes() const {
  size_t frag_bytes = 0;
  for (const auto& e : frags_) frag_bytes += sizeof(FragEntry) + e.buf.capacity();
  return held_.size() * sizeof(Held) + conns_.size() * (sizeof(Conn) + sizeof(ConnCold)) +
         conns_.size() * index_.bytes_per_conn() * 2 + frag_bytes +
         held_.size() * 24 /* timer nodes */ + (norm_ ? norm_->memory_bytes() : 0);
}

// ---------------------------------------------------------------------------- facade

Engine::Engine(std::unique_ptr<EngineImpl> impl) : impl_(std::move(impl)) {}
Engine::~Engine() = default;

bool Engine::push(Side side, uint64_t handle, uint8_t* data, uint32_t len, uint64_t now_ns) {
  return impl_->push(side, handle, data, len, now_ns);
}
void Engine::push_burst(std::span<const Input> frames, uint64_t now_ns, std::span<bool> to_pvm) {
  impl_->push_burst(frames, now_ns, to_pvm);
}
void Engine::advance(uint64_t now_ns) { impl_->advance(now_ns); }
uint64_t Engine::next_deadline() const { return impl_->next_deadline(); }
bool Engine::due(uint64_t now_ns) const { return impl_->due(now_ns); }
uint32_t Engine::drain(std::span<Action> out) { return impl_->drain(out); }
uint32_t Engine::pending_actions() const { return impl_->pending_actions(); }
std::optional<CheckpointRequest> Engine::take_checkpoint_request() {
  return impl_->take_checkpoint_request();
}
void Engine::request_checkpoint(CheckpointReason reason, uint64_t now_ns) {
  impl_->request_checkpoint(reason, nullptr, now_ns);
}
void Engine::checkpoint_done(uint64_t epoch, uint64_t now_ns) {
  impl_->checkpoint_done(epoch, now_ns);
}
uint64_t Engine::epoch() const { return impl_->epoch_; }
bool Engine::checkpoint_outstanding() const { return impl_->outstanding_; }
void Engine::failover(Survivor survivor, uint64_t now_ns) { impl_->failover(survivor, now_ns); }
void Engine::set_mode(Mode m, uint64_t now_ns) { impl_->set_mode(m, now_ns); }
Mode Engine::mode() const { return impl_->mode_; }
bool Engine::apply_settings(const Settings& s, std::string& error) {
  return impl_->apply_settings(s, error);
}
const Settings& Engine::settings() const { return impl_->settings_; }
void Engine::flush_all(uint64_t now_ns) { impl_->flush_all(now_ns); }
const Counters& Engine::counters() const { return impl_->c_; }
uint64_t Engine::held_frames() const {
  const Counters& c = impl_->c_;
  return c.held_pvm + c.held_svm + c.held_ingress;
}
void Engine::list_connections(std::vector<ConnInfo>& out, size_t limit) const {
  impl_->list_connections(out, limit);
}
size_t Engine::bytes_per_connection() {
  // Connection state (hot and cold) plus its share of the index (at most 4 buckets of 8 bytes).
  return sizeof(Conn) + sizeof(ConnCold) + 4 * 8;
}
size_t Engine::memory_bytes() const { return impl_->memory_bytes(); }

}  // namespace lockstep
