#include "ctrl/heartbeat.h"

#include <algorithm>

#include "ctrl/native_codec.h"

namespace lockstep::ctrl {

std::string_view to_string(LossAction a) {
  switch (a) {
    case LossAction::failover_primary: return "failover-primary";
    case LossAction::failover_secondary: return "failover-secondary";
    case LossAction::alarm: return "alarm";
  }
  return "?";
}

bool loss_action_from_string(std::string_view s, LossAction& out) {
  for (auto a : {LossAction::failover_primary, LossAction::failover_secondary, LossAction::alarm}) {
    if (s == to_string(a)) {
      out = a;
      return true;
    }
  }
  return false;
}

std::string_view to_string(PeerState s) {
  switch (s) {
    case PeerState::waiting: return "waiting";
    case PeerState::up: return "up";
    case PeerState::suspect: return "suspect";
    case PeerState::lost: return "lost";
  }
  return "?";
}

void HeartbeatMonitor::add_peer(const PeerConfig& cfg, uint64_t now_ns) {
  if (Peer* p = find(cfg.name)) {
    p->cfg = cfg;
    return;
  }
  Peer p;
  p.cfg = cfg;
  p.last_ns = now_ns;
  peers_.push_back(p);
}

bool HeartbeatMonitor::has_peer(const std::string& name) const {
  return std::any_of(peers_.begin(), peers_.end(),
                     [&](const Peer& p) { return p.cfg.name == name; });
}

HeartbeatMonitor::Peer* HeartbeatMonitor::find(const std::string& name) {
  for (auto& p : peers_) {
    if (p.cfg.name == name) return &p;
  }
  return nullptr;
}

namespace {
Event make_event(EventKind k, const std::string& peer, uint64_t now_ns, std::string detail) {
  Event e;
  e.kind = k;
  e.peer = peer;
  e.t_ns = now_ns;
  e.detail = std::move(detail);
  return e;
}
}  // namespace

bool HeartbeatMonitor::beat(const std::string& peer, uint64_t seq, uint64_t now_ns,
                            std::vector<Decision>& out) {
  Peer* p = find(peer);
  if (p == nullptr) {
    ++unknown_beats_;
    return false;
  }
  ++p->beats;
  if (p->seen) {
    if (seq > p->last_seq + 1) p->seq_gaps += seq - p->last_seq - 1;
    if (seq <= p->last_seq) ++p->seq_reordered;
  }
  p->last_seq = std::max(p->last_seq, seq);
  p->last_ns = now_ns;
  switch (p->state) {
    case PeerState::waiting:
      out.push_back({make_event(EventKind::peer_up, peer, now_ns, "first heartbeat"), {}});
      break;
    case PeerState::suspect:
      ++p->flaps;
      out.push_back({make_event(EventKind::peer_up, peer, now_ns, "heartbeat back while suspect"), {}});
      break;
    case PeerState::lost:
      ++p->recoveries;
      out.push_back({make_event(EventKind::peer_up, peer, now_ns,
                                "heartbeat back after loss (failover, if decided, stands)"),
                     {}});
      break;
    case PeerState::up: break;
  }
  p->seen = true;
  p->state = PeerState::up;
  return true;
}

void HeartbeatMonitor::tick(uint64_t now_ns, std::vector<Decision>& out) {
  for (auto& p : peers_) {
    if ((p.state == PeerState::up || p.state == PeerState::waiting) &&
        now_ns >= p.last_ns + p.cfg.timeout_ns) {
      p.state = PeerState::suspect;
      p.suspect_since = p.last_ns + p.cfg.timeout_ns;  // when it became suspect, not when seen
      ++p.suspects;
      out.push_back({make_event(EventKind::peer_suspect, p.cfg.name, now_ns,
                                "no heartbeat for " +
                                    std::to_string((now_ns - p.last_ns) / 1000000) + " ms"),
                     {}});
    }
    if (p.state == PeerState::suspect && now_ns >= p.suspect_since + p.cfg.debounce_ns) {
      p.state = PeerState::lost;
      ++p.losses;
      Decision d{make_event(EventKind::peer_lost, p.cfg.name, now_ns,
                            "silent " + std::to_string((now_ns - p.last_ns) / 1000000) +
                                " ms; action " + std::string(to_string(p.cfg.on_loss))),
                 {}};
      if (p.cfg.on_loss == LossAction::failover_primary) d.failover = Survivor::primary;
      if (p.cfg.on_loss == LossAction::failover_secondary) d.failover = Survivor::secondary;
      out.push_back(d);
    }
  }
}

uint64_t HeartbeatMonitor::next_deadline() const {
  uint64_t t = UINT64_MAX;
  for (const auto& p : peers_) {
    if (p.state == PeerState::up || p.state == PeerState::waiting) {
      t = std::min(t, p.last_ns + p.cfg.timeout_ns);
    } else if (p.state == PeerState::suspect) {
      t = std::min(t, p.suspect_since + p.cfg.debounce_ns);
    }
  }
  return t;
}

PeerState HeartbeatMonitor::state(const std::string& peer) const {
  for (const auto& p : peers_) {
    if (p.cfg.name == peer) return p.state;
  }
  return PeerState::waiting;
}

Json HeartbeatMonitor::to_json(uint64_t now_ns) const {
  Json a = Json::array();
  for (const auto& p : peers_) {
    Json j;
    j["peer"] = p.cfg.name;
    j["state"] = to_string(p.state);
    j["silent_ms"] = (now_ns - std::min(now_ns, p.last_ns)) / 1000000;
    j["timeout_ms"] = p.cfg.timeout_ns / 1000000;
    j["debounce_ms"] = p.cfg.debounce_ns / 1000000;
    j["on_loss"] = to_string(p.cfg.on_loss);
    j["heartbeats"] = p.beats;
    j["last_seq"] = p.last_seq;
    j["seq_gaps"] = p.seq_gaps;
    j["seq_reordered"] = p.seq_reordered;
    j["suspects"] = p.suspects;
    j["flaps"] = p.flaps;
    j["losses"] = p.losses;
    j["recoveries"] = p.recoveries;
    a.push_back(j);
  }
  return a;
}

bool FailoverController::decide(Survivor s, const std::string& cause, uint64_t now_ns,
                                std::string& error) {
  std::lock_guard lock(mu_);
  if (survivor_) {
    ++refused_;
    error = "failover already decided: " + std::string(to_string_survivor(*survivor_)) +
            " survives (" + cause_ + ")";
    return false;
  }
  survivor_ = s;
  cause_ = cause;
  decided_ns_ = now_ns;
  if (events_ != nullptr) {
    Event e;
    e.kind = EventKind::failover;
    e.t_ns = now_ns;
    e.survivor = s;
    e.detail = cause;
    events_->push(e);
  }
  return true;
}

std::optional<Survivor> FailoverController::survivor() const {
  std::lock_guard lock(mu_);
  return survivor_;
}

uint64_t FailoverController::refused() const {
  std::lock_guard lock(mu_);
  return refused_;
}

Json FailoverController::to_json(uint64_t now_ns) const {
  std::lock_guard lock(mu_);
  Json j;
  j["decided"] = survivor_.has_value();
  if (survivor_) {
    j["survivor"] = to_string_survivor(*survivor_);
    j["cause"] = cause_;
    j["ago_ms"] = (now_ns - std::min(now_ns, decided_ns_)) / 1000000;
  }
  j["refused"] = refused_;
  return j;
}

}  // namespace lockstep::ctrl
