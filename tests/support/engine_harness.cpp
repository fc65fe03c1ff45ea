#include "tests/support/engine_harness.h"

#include <algorithm>
#include <array>
#include <limits>
#include <stdexcept>

namespace lockstep::test {
namespace {

constexpr uint64_t kNever = std::numeric_limits<uint64_t>::max();

bool kind_fits_side(ActionKind k, Side s) {
  switch (k) {
    case ActionKind::release: return s == Side::pvm || s == Side::svm;
    case ActionKind::free: return s == Side::svm;
    case ActionKind::drop: return true;
    case ActionKind::forward_svm: return s == Side::ingress;
  }
  return false;
}

std::string kind_name(ActionKind k) {
  switch (k) {
    case ActionKind::release: return "release";
    case ActionKind::free: return "free";
    case ActionKind::drop: return "drop";
    case ActionKind::forward_svm: return "forward_svm";
  }
  return "?";
}

}  // namespace

EngineHarness::EngineHarness(const Settings& s) {
  std::string err;
  engine_ = Engine::create(s, err);
  if (!engine_) throw std::runtime_error("Engine::create failed: " + err);
  buf_.resize(256);
}

EngineHarness::~EngineHarness() = default;

Settings EngineHarness::settings_with(const std::map<std::string, std::string>& kv) {
  Settings out;
  std::string err;
  if (!Settings::defaults().with_all(kv, out, err))
    throw std::invalid_argument("settings: " + err);
  return out;
}

void EngineHarness::drain() {
  for (;;) {
    uint32_t n = engine_->drain(buf_);
    for (uint32_t i = 0; i < n; ++i) {
      const Action& a = buf_[i];
      auto it = live_.find(a.handle);
      if (it == live_.end()) {
        violations_.push_back(
            (action_index_.count(a.handle) ? "second action for handle " : "unknown handle ") +
            std::to_string(a.handle) + " (" + kind_name(a.kind) + ")");
        continue;
      }
      ActionRecord r;
      r.handle = a.handle;
      r.kind = a.kind;
      r.reason = a.reason;
      r.side = it->second.side;
      r.t_ns = now_;
      r.pushes_before = next_handle_ - 1;
      r.arrival = it->second.arrival;
      r.epoch_at = engine_->epoch();
      if (!kind_fits_side(a.kind, r.side))
        violations_.push_back("action " + kind_name(a.kind) + " for a frame pushed on side " +
                              std::string(to_string(r.side)) + ", handle " +
                              std::to_string(a.handle));
      if (a.side != r.side && !(a.kind == ActionKind::release && r.side == Side::svm))
        violations_.push_back("action side " + std::string(to_string(a.side)) +
                              " differs from push side " + std::string(to_string(r.side)) +
                              ", handle " + std::to_string(a.handle));
      if (keep_bytes_[static_cast<size_t>(r.side)]) r.bytes = std::move(it->second.bytes);
      live_.erase(it);
      action_index_[a.handle] = actions_.size();
      actions_.push_back(std::move(r));
    }
    if (n < buf_.size()) break;
  }
}

void EngineHarness::take_request() {
  for (;;) {
    auto req = engine_->take_checkpoint_request();
    if (!req) return;
    CheckpointRecord c;
    c.req = *req;
    c.taken_ns = now_;
    c.pushes_before = next_handle_ - 1;
    if (pending_cp_)
      violations_.push_back("checkpoint request for epoch " + std::to_string(req->epoch) +
                            " while the request for epoch " +
                            std::to_string(checkpoints_[*pending_cp_].req.epoch) +
                            " is outstanding");
    checkpoints_.push_back(c);
    pending_cp_ = checkpoints_.size() - 1;
  }
}

bool EngineHarness::complete_checkpoint() {
  take_request();
  if (!pending_cp_) return false;
  size_t idx = *pending_cp_;
  CheckpointRecord& c = checkpoints_[idx];
  pending_cp_.reset();
  c.done_ns = now_;
  c.actions_before_done = actions_.size();
  engine_->checkpoint_done(c.req.epoch, now_);
  drain();
  checkpoints_[idx].actions_at_done = actions_.size();
  take_request();
  return true;
}

void EngineHarness::checkpoint_now() {
  engine_->request_checkpoint(CheckpointReason::manual, now_);
  drain();
  take_request();
  complete_checkpoint();
}

void EngineHarness::complete_due(uint64_t t) {
  if (!auto_checkpoint_ || !pending_cp_) return;
  const CheckpointRecord& c = checkpoints_[*pending_cp_];
  if (c.taken_ns + checkpoint_latency_ns_ <= t) complete_checkpoint();
}

void EngineHarness::advance_to(uint64_t t) {
  if (t < now_) t = now_;
  for (size_t guard = 0; guard < 1000000; ++guard) {
    uint64_t next = engine_->next_deadline();
    if (auto_checkpoint_ && pending_cp_)
      next = std::min(next, checkpoints_[*pending_cp_].taken_ns + checkpoint_latency_ns_);
    if (next > t) break;
    now_ = std::max(now_, next);
    complete_due(now_);
    engine_->advance(now_);
    drain();
    take_request();
    if (engine_->next_deadline() <= now_ &&
        !(auto_checkpoint_ && pending_cp_ &&
          checkpoints_[*pending_cp_].taken_ns + checkpoint_latency_ns_ <= now_)) {
      violations_.push_back("next_deadline() " + std::to_string(engine_->next_deadline()) +
                            " not after advance(" + std::to_string(now_) + ")");
      break;
    }
  }
  now_ = t;
  engine_->advance(now_);
  drain();
  take_request();
  complete_due(now_);
}

uint64_t EngineHarness::push(Side side, const Bytes& frame) {
  uint64_t h = next_handle_++;
  Live& l = live_[h];
  l.bytes = frame;
  l.side = side;
  l.arrival = h - 1;
  last_push_result_ = engine_->push(side, h, l.bytes.data(),
                                    static_cast<uint32_t>(l.bytes.size()), now_);
  drain();
  take_request();
  complete_due(now_);
  return h;
}

uint64_t EngineHarness::run_until_idle(size_t max_steps) {
  for (size_t i = 0; i < max_steps; ++i) {
    uint64_t next = engine_->next_deadline();
    if (auto_checkpoint_ && pending_cp_)
      next = std::min(next, checkpoints_[*pending_cp_].taken_ns + checkpoint_latency_ns_);
    if (next == kNever) return now_;
    advance_to(std::max(next, now_));
    if (next <= now_ && engine_->next_deadline() <= now_ && !pending_cp_) {
      // advance_to already reported a stuck deadline
      return now_;
    }
  }
  violations_.push_back("run_until_idle: still busy after " + std::to_string(max_steps) +
                        " steps");
  return now_;
}

void EngineHarness::failover(Survivor s) {
  engine_->failover(s, now_);
  drain();
  take_request();
}

void EngineHarness::set_mode(Mode m) {
  engine_->set_mode(m, now_);
  drain();
  take_request();
}

void EngineHarness::flush_all() {
  engine_->flush_all(now_);
  drain();
  take_request();
}

std::vector<ActionRecord> EngineHarness::of_kind(ActionKind k, std::optional<Side> side) const {
  std::vector<ActionRecord> out;
  for (const auto& a : actions_)
    if (a.kind == k && (!side || a.side == *side)) out.push_back(a);
  return out;
}

std::vector<uint64_t> EngineHarness::released_handles(std::optional<Side> side) const {
  std::vector<uint64_t> out;
  for (const auto& a : actions_)
    if (a.kind == ActionKind::release && (!side || a.side == *side)) out.push_back(a.handle);
  return out;
}

const ActionRecord* EngineHarness::action_of(uint64_t handle) const {
  auto it = action_index_.find(handle);
  return it == action_index_.end() ? nullptr : &actions_[it->second];
}

std::string EngineHarness::check_contract(bool require_all) const {
  std::string out;
  for (const auto& v : violations_) out += v + "\n";
  if (require_all && !live_.empty()) {
    out += std::to_string(live_.size()) + " handle(s) without an action, e.g.";
    std::vector<uint64_t> hs;
    for (const auto& [h, l] : live_) hs.push_back(h);
    std::sort(hs.begin(), hs.end());
    for (size_t i = 0; i < hs.size() && i < 8; ++i)
      out += " " + std::to_string(hs[i]) + "(" +
             std::string(to_string(live_.at(hs[i]).side)) + ")";
    out += "\n";
  }
  return out;
}

std::string describe(const EngineHarness& h, uint64_t handle) {
  const ActionRecord* a = h.action_of(handle);
  if (!a) return "none";
  switch (a->kind) {
    case ActionKind::release: return released_as(static_cast<ReleaseReason>(a->reason));
    case ActionKind::drop: return dropped_as(static_cast<DropReason>(a->reason));
    case ActionKind::free: return "free";
    case ActionKind::forward_svm: return "forward_svm";
  }
  return "?";
}

std::string released_as(ReleaseReason r) { return "release/" + std::string(to_string(r)); }
std::string dropped_as(DropReason r) { return "drop/" + std::string(to_string(r)); }

Opened open_passive(EngineHarness& h, Conversation& c) {
  Opened o;
  o.client_syn = h.push(Side::ingress, c.client_syn());
  o.pvm_syn = h.push(Side::pvm, c.vm_synack(Vm::pvm));
  o.svm_syn = h.push(Side::svm, c.vm_synack(Vm::svm));
  o.client_ack = h.push(Side::ingress, c.client_handshake_ack());
  return o;
}

Opened open_active(EngineHarness& h, Conversation& c) {
  Opened o;
  o.pvm_syn = h.push(Side::pvm, c.vm_syn(Vm::pvm));
  o.svm_syn = h.push(Side::svm, c.vm_syn(Vm::svm));
  o.client_syn = h.push(Side::ingress, c.client_synack());
  o.pvm_ack = h.push(Side::pvm, c.vm_handshake_ack(Vm::pvm));
  o.svm_ack = h.push(Side::svm, c.vm_handshake_ack(Vm::svm));
  return o;
}

FrameSpec udp_spec(const IpAddr& src, const IpAddr& dst, uint16_t sport, uint16_t dport,
                   std::vector<uint8_t> payload) {
  FrameSpec s;
  s.src_mac = {0x02, 0x5e, 0, 0, 0, 0x01};
  s.dst_mac = {0x02, 0xc1, 0, 0, 0, 0x01};
  s.src = src;
  s.dst = dst;
  s.proto = kProtoUdp;
  s.sport = sport;
  s.dport = dport;
  s.payload = std::move(payload);
  return s;
}

}  // namespace lockstep::test
