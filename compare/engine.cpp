// The engine's conductor (engine_impl.h): setup and settings, parsing and classifying
// each frame and handing it to the part that compares it, time, and the views. What
// spans the parts on a checkpoint, mode change or failover is in engine_epoch.cpp.
#include "compare/engine.h"

#include <algorithm>
#include <array>
#include <new>

#include "compare/engine_impl.h"

namespace lockstep {

namespace {

bool is_nd(const ParsedFrame& f) {
  return f.has_l4 && f.l4_proto == kProtoIcmpv6 && f.icmp_type >= 133 && f.icmp_type <= 137;
}

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

// ---------------------------------------------------------------------------- setup

EngineImpl::EngineImpl(const Settings& s, PolicyTable policy)
    : settings_(s),
      t_(Tuning::from(s)),
      cp_(c_, s.hybrid_threshold),
      held_(s.max_held_frames, c_, cp_),
      frags_(s.frag_max_datagrams, t_, held_, out_, c_),
      out_(held_, frags_, c_),
      conns_(static_cast<uint32_t>(s.max_connections), c_, cp_),
      tcp_(t_, conns_, held_, out_, c_, cp_, DivergeDoor{this, &EngineImpl::diverge_door}),
      dgram_(t_, conns_, held_, out_, frags_, c_, tcp_.normalizer(),
             DivergeDoor{this, &EngineImpl::diverge_door}),
      policy_(std::move(policy)) {
  conns_.set_on_expire(
      [](void* self, Conn& c) { static_cast<EngineImpl*>(self)->tcp_.norm_detach(c); }, this);
  fired_.reserve(1024);
  mode_from_string(settings_.mode, cp_.mode);
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
  Mode m = cp_.mode;
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
  const bool mode_changed = s.mode != settings_.mode;
  settings_ = s;
  policy_ = std::move(policy);
  ++policy_gen_;
  if (norm_changed) tcp_.norm_install(std::move(norm));
  if (s.hybrid_threshold != cp_.hybrid_size()) cp_.resize_hybrid(s.hybrid_threshold);
  t_ = Tuning::from(settings_);
  if (mode_changed) set_mode(m, out_.now());
  return true;
}

// ---------------------------------------------------------------------------- dispatch

bool EngineImpl::push(Side side, uint64_t handle, uint8_t* data, uint32_t len, uint64_t now) {
  out_.set_now(now);
  ParsedFrame f = kFreshFrame;  // vector moves, not a `rep stos` (parse.h)
  parse_fresh_frame_inline(data, len, f);
  return dispatch_inline(side, handle, data, len, now, f, nullptr);
}

// The burst path: the same dispatch per frame, after a pass that parses every frame of a
// group, computes the flow key and hash of those that have one, and prefetches first the
// index buckets, then the connections the buckets name (two dependent misses per frame
// become two overlapped rounds per group). Further rounds (the held frame each VM frame
// meets, its bytes, the LRU neighbours) cost more than they saved: docs/performance.md. Which frames get a key mirrors dispatch: IP
// frames that are not fragments; the rest go without (dispatch computes what it needs).
void EngineImpl::push_burst(std::span<const Engine::Input> in, uint64_t now,
                            std::span<bool> to_pvm) {
  constexpr size_t kGroup = Engine::kBurstGroup;
  out_.set_now(now);
  // Left uninitialised: stage() writes a slot before it is read (default construction
  // would zero all of them on every call).
  union Slots {
    Slots() {}
    Staged at[kGroup];
  } staged;
  for (size_t base = 0; base < in.size(); base += kGroup) {
    const size_t n = std::min(kGroup, in.size() - base);
    for (size_t i = 0; i < n; ++i) stage(in[base + i], staged.at[i]);
    for (size_t i = 0; i < n; ++i) prefetch(staged.at[i]);
    for (size_t i = 0; i < n; ++i) {
      const bool r = process(in[base + i], staged.at[i], now);
      if (base + i < to_pvm.size()) to_pvm[base + i] = r;
    }
  }
}

void EngineImpl::parse_stage(const Engine::Input& x, Staged& s) {
  // Member by member: building the aggregate would zero it first (a `rep stos`).
  new (&s.frame) ParsedFrame(kFreshFrame);
  s.keyed = parse_fresh_frame_inline(x.data, x.len, s.frame) == ParseStatus::ok &&
            !s.frame.is_fragment && (x.side != Side::ingress || s.frame.is_tcp());
  if (s.keyed) {
    const FlowKey k = flow_key_of(s.frame);
    new (&s.flow) Keyed{k, flow_hash(k)};
  }
}

void EngineImpl::prefetch(const Staged& s) const {
  if (!s.keyed) return;
  const Conn* conn = conns_.peek(s.flow.hash);
  if (conn == nullptr) return;
  const char* p = reinterpret_cast<const char*>(conn);
  for (size_t off = 0; off < sizeof(Conn); off += 64) __builtin_prefetch(p + off, 1);
}

bool EngineImpl::dispatch(Side side, uint64_t handle, uint8_t* data, uint32_t len,
                          uint64_t now, const ParsedFrame& f, const Keyed* keyed) {
  return dispatch_inline(side, handle, data, len, now, f, keyed);
}

bool EngineImpl::dispatch_inline(Side side, uint64_t handle, uint8_t* data, uint32_t len,
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

// Every other frame: failover, malformed frames, the modes without compare, policies of
// non-IP and ND frames, fragments. False when the frame was dealt with here; else the
// flow key, its hash, the connection kind and the policy action so far.
bool EngineImpl::classify(Side side, uint64_t handle, uint8_t* data, uint32_t len, uint64_t now,
                          const ParsedFrame& f, const Keyed* keyed, FlowKey& key, uint64_t& hash,
                          ConnKind& kind, PolicyAction& action) {
  const bool pvm = side == Side::pvm;
  if (cp_.failed_over) {
    on_failed_over(side, handle, data, len, now, f);
    return false;
  }

  if (f.status != ParseStatus::ok && f.status != ParseStatus::non_ip) {
    if (pvm && t_.malformed_pass) out_.release_direct(side, handle, ReleaseReason::malformed_pass);
    else out_.drop_direct(side, handle, DropReason::malformed);
    return false;
  }

  if (cp_.mode != Mode::colo && f.status == ParseStatus::ok && f.is_tcp() && !f.is_fragment) {
    // Not comparing, but keep each connection's ISNs and the PVM's stream position so
    // that compare can resume right after the checkpoint that ends this mode.
    tcp_.track_uncompared(side, f, now);
  }

  if (cp_.mode == Mode::passthrough) {
    if (pvm) out_.release_direct(side, handle, ReleaseReason::passthrough);
    else out_.drop_direct(side, handle, DropReason::svm_unmatched_passthrough);
    return false;
  }

  action = PolicyAction::compare;
  if (f.status == ParseStatus::non_ip) action = t_.non_ip_policy;
  else if (is_nd(f)) action = t_.nd_policy;

  if (cp_.mode == Mode::buffer) {
    if (!pvm) {
      out_.drop_direct(side, handle, DropReason::svm_unmatched_passthrough);
      return false;
    }
    if (action == PolicyAction::drop) {
      out_.drop_direct(side, handle, f.status == ParseStatus::non_ip ? DropReason::non_ip
                                                                     : DropReason::policy_drop);
      return false;
    }
    hold_without_conn(side, handle, data, len, now);
    return false;
  }

  if (f.status == ParseStatus::ok && f.is_fragment) {
    on_fragment(side, handle, data, len, now, f);
    return false;
  }

  if (f.status == ParseStatus::non_ip) {
    if (action == PolicyAction::pass) {
      if (pvm) out_.release_direct(side, handle, ReleaseReason::non_ip_pass);
      else out_.drop_direct(side, handle, DropReason::non_ip);
      return false;
    }
    if (action == PolicyAction::drop) {
      out_.drop_direct(side, handle, DropReason::non_ip);
      return false;
    }
    key = non_ip_key(f);
    hash = flow_hash(key);
    kind = ConnKind::non_ip;
  } else {
    key = keyed ? keyed->key : flow_key_of(f);
    hash = keyed ? keyed->hash : flow_hash(key);
    kind = f.is_tcp() ? ConnKind::tcp : ConnKind::datagram;
  }
  return true;
}

void EngineImpl::on_pvm_svm(Side side, uint64_t handle, uint8_t* data, uint32_t len,
                            uint64_t now, const ParsedFrame& f, const Keyed* keyed) {
  const bool pvm = side == Side::pvm;
  FlowKey key;
  uint64_t hash;
  ConnKind kind;
  PolicyAction action;
  // The common frame first, in one test: an IP frame parsed, not a fragment nor ND, in
  // colo mode and before any failover. What classify() would decide for it is known:
  // compare it on its connection, as its flow's policy says.
  if (!cp_.failed_over && cp_.mode == Mode::colo && f.status == ParseStatus::ok &&
      !f.is_fragment && !is_nd(f)) [[likely]] {
    key = keyed ? keyed->key : flow_key_of(f);
    hash = keyed ? keyed->hash : flow_hash(key);
    kind = f.is_tcp() ? ConnKind::tcp : ConnKind::datagram;
    action = PolicyAction::compare;
  } else if (!classify(side, handle, data, len, now, f, keyed, key, hash, kind, action)) {
    return;
  }

  uint32_t ci = conns_.lookup_or_create(key, hash, kind, now, true);
  if (ci == kNil) {
    cp_.request(CheckpointReason::table_full, &key, now);
    if (pvm) hold_without_conn(side, handle, data, len, now);
    else out_.drop_direct(side, handle, DropReason::table_full);
    return;
  }
  conns_.touch(ci, now);
  Conn& c = conns_[ci];
  if (kind != ConnKind::non_ip && action == PolicyAction::compare) action = policy_of(c);
  if (action == PolicyAction::pass) {
    if (pvm) out_.release_direct(side, handle, ReleaseReason::policy_pass);
    else out_.drop_direct(side, handle, DropReason::svm_unmatched_passthrough);
    return;
  }
  if (action == PolicyAction::drop) {
    out_.drop_direct(side, handle, DropReason::policy_drop);
    return;
  }

  if (kind == ConnKind::tcp) {
    tcp_.note_ack(c, side, data, f);
    if (tcp_.match_on_arrival(ci, side, handle, data, f)) return;
  }
  uint32_t idx = held_.alloc(side, handle, data, len, now);
  if (idx == kNil) {
    out_.drop_direct(side, handle, DropReason::held_overflow);
    return;
  }
  held_[idx].conn = ci;
  if (kind == ConnKind::tcp) {
    tcp_.output(ci, idx, f, now);
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
  dgram_.output(ci, idx, now);
}

void EngineImpl::on_failed_over(Side side, uint64_t handle, uint8_t* data, uint32_t len,
                                uint64_t now, const ParsedFrame& f) {
  const bool pvm = side == Side::pvm;
  if (*cp_.failed_over == Survivor::primary) {
    if (pvm) out_.release_direct(side, handle, ReleaseReason::failover);
    else out_.drop_direct(side, handle, DropReason::svm_unmatched_passthrough);
    return;
  }
  if (pvm) {
    out_.drop_direct(side, handle, DropReason::primary_lost);
    return;
  }
  if (f.status == ParseStatus::ok && f.is_tcp()) {
    const uint32_t ci = conns_.lookup_or_create(flow_key_of(f), ConnKind::tcp, now, false);
    if (ci != kNil) tcp_.translate_svm_output(conns_[ci], data, len);
  }
  out_.release_direct(side, handle, ReleaseReason::svm_survivor);
}

// A fragment: reassembled first; a complete datagram then goes where an unfragmented
// one would (its flow's policy, then datagram compare), its fragments chained to it.
void EngineImpl::on_fragment(Side side, uint64_t handle, uint8_t* data, uint32_t len,
                             uint64_t now, const ParsedFrame& f) {
  FlowKey key;
  const uint32_t rep = frags_.input(side, handle, data, len, now, f, key);
  if (rep == kNil) return;
  const bool pvm = side == Side::pvm;
  const uint32_t ci = conns_.lookup_or_create(key, ConnKind::datagram, now, true);
  if (ci == kNil) {
    cp_.request(CheckpointReason::table_full, &key, now);
    if (pvm) {
      held_.push(unowned_, rep);
      held_.arm(rep, now + t_.timeout_ns);
    } else {
      out_.drop_frame(rep, DropReason::table_full);
    }
    return;
  }
  conns_.touch(ci, now);
  switch (policy_of(conns_[ci])) {
    case PolicyAction::pass:
      if (pvm) out_.release_frame(rep, ReleaseReason::policy_pass);
      else out_.drop_frame(rep, DropReason::svm_unmatched_passthrough);
      return;
    case PolicyAction::drop: out_.drop_frame(rep, DropReason::policy_drop); return;
    case PolicyAction::compare: break;
  }
  held_[rep].conn = ci;
  dgram_.output(ci, rep, now);
}

void EngineImpl::hold_without_conn(Side side, uint64_t handle, uint8_t* data, uint32_t len,
                                   uint64_t now) {
  uint32_t idx = held_.alloc(side, handle, data, len, now);
  if (idx == kNil) {
    out_.drop_direct(side, handle, DropReason::held_overflow);
    return;
  }
  held_.push(unowned_, idx);
  held_.arm(idx, now + (cp_.mode == Mode::buffer ? t_.buffer_epoch_ns : t_.timeout_ns));
}

bool EngineImpl::on_ingress(uint64_t handle, uint8_t* data, uint32_t len, uint64_t now,
                            const ParsedFrame& f, const Keyed* keyed) {
  const bool to_pvm = !(cp_.failed_over && *cp_.failed_over == Survivor::secondary);
  if (cp_.failed_over && *cp_.failed_over == Survivor::primary) {
    out_.drop_direct(Side::ingress, handle, DropReason::svm_not_mirrored);
    return to_pvm;
  }
  if (f.status != ParseStatus::ok || !f.is_tcp() || f.is_fragment) {
    out_.forward_direct(handle);
    return to_pvm;
  }
  const uint32_t ci =
      keyed ? conns_.lookup_or_create(keyed->key, keyed->hash, ConnKind::tcp, now, true)
            : conns_.lookup_or_create(flow_key_of(f), ConnKind::tcp, now, true);
  if (ci == kNil) {
    out_.forward_direct(handle);
    ++c_.ingress_untranslated;
    return to_pvm;
  }
  conns_.touch(ci, now);
  tcp_.ingress(ci, handle, data, len, f, now);
  return to_pvm;
}

// ---------------------------------------------------------------------------- time

void EngineImpl::advance(uint64_t now) {
  out_.advance_now(now);
  fired_.clear();
  held_.expire(now, [this](uint32_t id) { fired_.push_back(id); });
  for (uint32_t id : fired_) {
    Held& h = held_[id];
    if (!h.live) continue;
    if (h.side == Side::ingress) {
      if (h.conn != kNil) tcp_.flush_ingress(h.conn, false);
      continue;
    }
    if (h.side == Side::pvm && h.conn != kNil && cp_.mode == Mode::colo &&
        tcp_.deadline(id, now)) {
      continue;
    }
    h.deadline_fired = true;
    if (h.conn == kNil || cp_.mode == Mode::buffer) {
      cp_.request(cp_.mode == Mode::buffer ? CheckpointReason::buffer_epoch
                                           : CheckpointReason::deadline,
                  nullptr, now);
    } else {
      diverge(h.conn, CheckpointReason::deadline, now, id);
    }
  }
  frags_.expire(now);
  conns_.expire_idle(now, t_.idle_ns, t_.linger_ns);
  if (cp_.hybrid_active && cp_.mode == Mode::buffer && !cp_.mode_after_checkpoint &&
      now >= cp_.buffer_since_ns + t_.hybrid_quiet_ns) {
    set_mode(Mode::colo, now);
  }
}

uint64_t EngineImpl::next_deadline() const { return std::min(held_.earliest(), other_deadline()); }

bool EngineImpl::due(uint64_t now) const { return held_.due(now) || other_deadline() <= now; }

uint64_t EngineImpl::other_deadline() const {
  uint64_t t = frags_.deadline_bound();
  if (cp_.hybrid_active && cp_.mode == Mode::buffer && !cp_.mode_after_checkpoint) {
    t = std::min(t, cp_.buffer_since_ns + t_.hybrid_quiet_ns);
  }
  return t;
}

// ---------------------------------------------------------------------------- views

void EngineImpl::list_connections(std::vector<ConnInfo>& out, size_t limit) const {
  for (uint32_t ci = conns_.newest(); ci != kNil && out.size() < limit; ci = conns_.older(ci)) {
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
    info.divergences = conns_.cold(ci).divergences;
    out.push_back(info);
  }
}

size_t EngineImpl::memory_bytes() const {
  const auto& norm = tcp_.normalizer();
  return held_.memory_bytes() + conns_.memory_bytes() + frags_.memory_bytes() +
         (norm ? norm->memory_bytes() : 0);
}

// ---------------------------------------------------------------------------- facade

Engine::Engine(std::unique_ptr<EngineImpl> impl) : impl_(std::move(impl)) {}
Engine::~Engine() = default;

bool Engine::push(Side side, uint64_t handle, uint8_t* data, uint32_t len, uint64_t now_ns) {
  const bool r = impl_->push(side, handle, data, len, now_ns);
  impl_->sync_sink();
  return r;
}
void Engine::push_burst(std::span<const Input> frames, uint64_t now_ns, std::span<bool> to_pvm) {
  impl_->push_burst(frames, now_ns, to_pvm);
  impl_->sync_sink();
}
void Engine::push_burst_multi(std::span<Engine* const> engines, std::span<const Input> in,
                              uint64_t now_ns, std::span<bool> to_pvm) {
  constexpr size_t kGroup = kBurstGroup;
  union Slots {
    Slots() {}
    EngineImpl::Staged at[kGroup];
  } staged;
  std::array<EngineImpl*, kGroup> e;
  for (size_t base = 0; base < in.size(); base += kGroup) {
    const size_t n = std::min(kGroup, in.size() - base);
    // The engines' first lines are fetched while the frames are parsed: with one frame
    // an engine, each would otherwise be a miss in the way of its frame's bucket.
    for (size_t i = 0; i < n; ++i) e[i] = engines[base + i]->impl_.get();
    for (size_t i = 0; i < n; ++i) e[i]->prefetch_hot();
    for (size_t i = 0; i < n; ++i) EngineImpl::parse_stage(in[base + i], staged.at[i]);
    for (size_t i = 0; i < n; ++i) e[i]->prefetch_bucket(staged.at[i]);
    for (size_t i = 0; i < n; ++i) e[i]->prefetch(staged.at[i]);
    for (size_t i = 0; i < n; ++i) {
      e[i]->set_now(now_ns);
      const bool r = e[i]->process(in[base + i], staged.at[i], now_ns);
      e[i]->sync_sink();
      if (base + i < to_pvm.size()) to_pvm[base + i] = r;
    }
  }
}
void Engine::advance(uint64_t now_ns) {
  impl_->advance(now_ns);
  impl_->sync_sink();
}
uint64_t Engine::next_deadline() const { return impl_->next_deadline(); }
bool Engine::due(uint64_t now_ns) const { return impl_->due(now_ns); }
uint64_t Engine::deadline_bound() const { return impl_->deadline_bound(); }
uint32_t Engine::drain(std::span<Action> out) { return impl_->drain(out); }
void Engine::attach_sink(Sink* sink, uint16_t tag) { impl_->attach_sink(sink, tag); }
uint32_t Engine::pending_actions() const { return impl_->pending_actions(); }
std::optional<CheckpointRequest> Engine::take_checkpoint_request() {
  return impl_->take_checkpoint_request();
}
void Engine::request_checkpoint(CheckpointReason reason, uint64_t now_ns) {
  impl_->request_checkpoint(reason, nullptr, now_ns);
  impl_->sync_sink();
}
void Engine::checkpoint_done(uint64_t epoch, uint64_t now_ns) {
  impl_->checkpoint_done(epoch, now_ns);
  impl_->sync_sink();
}
uint64_t Engine::epoch() const { return impl_->epoch(); }
bool Engine::checkpoint_outstanding() const { return impl_->outstanding(); }
void Engine::failover(Survivor survivor, uint64_t now_ns) {
  impl_->failover(survivor, now_ns);
  impl_->sync_sink();
}
void Engine::set_mode(Mode m, uint64_t now_ns) {
  impl_->set_mode(m, now_ns);
  impl_->sync_sink();
}
Mode Engine::mode() const { return impl_->mode(); }
bool Engine::apply_settings(const Settings& s, std::string& error) {
  const bool ok = impl_->apply_settings(s, error);
  impl_->sync_sink();
  return ok;
}
const Settings& Engine::settings() const { return impl_->settings(); }
void Engine::flush_all(uint64_t now_ns) {
  impl_->flush_all(now_ns);
  impl_->sync_sink();
}
const Counters& Engine::counters() const { return impl_->counters(); }
uint64_t Engine::held_frames() const {
  const Counters& c = impl_->counters();
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
