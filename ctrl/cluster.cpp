#include "ctrl/cluster.h"

#include <algorithm>

#include "compare/parse.h"  // load_be32, store_be32

namespace lockstep::ctrl {

std::string_view to_string(ClusterMsg m) {
  switch (m) {
    case ClusterMsg::hello: return "HELLO";
    case ClusterMsg::failover: return "FAILOVER";
    case ClusterMsg::failed: return "FAILED";
    case ClusterMsg::yellow: return "YELLOW";
    case ClusterMsg::unyellow: return "UNYELLOW";
    case ClusterMsg::shutdown: return "SHUTDOWN";
  }
  return "?";
}

bool cluster_msg_valid(uint32_t code) {
  return code >= static_cast<uint32_t>(ClusterMsg::hello) &&
         code <= static_cast<uint32_t>(ClusterMsg::shutdown);
}

namespace {
std::string member_name(ClusterMember m) {
  return "node " + std::to_string(m.nodeid) + " pid " + std::to_string(m.pid);
}
}  // namespace

void encode_cluster_msg(ClusterMsg m, uint32_t seq, uint8_t out[kClusterMsgSize]) {
  store_be32(out, static_cast<uint32_t>(m));
  store_be32(out + 4, seq);
}

std::string_view to_string(ClusterRole r) {
  return r == ClusterRole::primary ? "primary" : "secondary";
}

bool cluster_role_from_string(std::string_view s, ClusterRole& out) {
  if (s == "primary") out = ClusterRole::primary;
  else if (s == "secondary") out = ClusterRole::secondary;
  else return false;
  return true;
}

std::string_view to_string(ClusterState s) {
  switch (s) {
    case ClusterState::joining: return "joining";
    case ClusterState::waiting: return "waiting";
    case ClusterState::paired: return "paired";
    case ClusterState::blocked: return "blocked";
    case ClusterState::survivor: return "survivor";
    case ClusterState::failed: return "failed";
  }
  return "?";
}

void ClusterCore::queue(ClusterMsg m) {
  outbox_.push_back({m, next_seq_++, 0, false});
}

void ClusterCore::joined(ClusterMember self, uint64_t now_ns, Output& out) {
  self_ = self;
  joined_ = true;
  if (!final()) state_ = ClusterState::waiting;
  out.notes.push_back("joined the group as " + member_name(self));
  queue(ClusterMsg::hello);
  if (yellow_) queue(ClusterMsg::yellow);
  if (state_ == ClusterState::failed) queue(ClusterMsg::failed);
  (void)now_ns;
}

void ClusterCore::disconnected(uint64_t now_ns, Output& out) {
  (void)now_ns;
  joined_ = false;
  quorate_ = false;
  members_.clear();
  peers_.clear();
  seen_.clear();
  peer_yellow_ = false;
  // Our messages were for that membership; a new one starts with a new HELLO. A FAILOVER
  // we asked for and never saw delivered is void: the race is run again if asked again.
  outbox_.clear();
  if (!final()) {
    state_ = ClusterState::joining;
    pending_failure_ = false;
    failover_delivered_ = false;
  }
  out.notes.push_back("lost corosync: membership and quorum unknown, nothing is promoted");
}

void ClusterCore::settle(uint64_t now_ns, Output& out) {
  if (final()) return;
  if (state_ == ClusterState::blocked) {
    if (!peers_.empty() && (pending_absent_ || !pending_failure_)) {
      state_ = ClusterState::paired;
      pending_failure_ = false;
      out.notes.push_back("the peer is back before quorum was: no failover");
    }
    return;
  }
  state_ = peers_.empty() ? ClusterState::waiting : ClusterState::paired;
  (void)now_ns;
}

void ClusterCore::config_change(std::span<const ClusterMember> members,
                                std::span<const ClusterMember> left,
                                std::span<const ClusterMember> joined, uint64_t now_ns,
                                Output& out) {
  ++c_.config_changes;
  members_.assign(members.begin(), members.end());
  bool had_peer = !peers_.empty();
  peers_.clear();
  for (auto m : members)
    if (!is_self(m)) peers_.push_back(m);
  bool peer_joined = false;
  for (auto m : joined)
    if (!is_self(m)) {
      out.notes.push_back("member joined: " + member_name(m));
      peer_joined = true;
      peer_shutdown_ = false;
      peer_yellow_ = false;
      yellow_alone_since_ = now_ns;  // our yellow counts against the peer from now on
      if (state_ == ClusterState::survivor)
        out.notes.push_back("the peer rejoined; the failover stands (it runs as secondary)");
    }
  bool peer_left = false;
  for (auto m : left)
    std::erase_if(seen_, [&](const SeqSeen& x) { return x.from == m; });
  for (auto m : left)
    if (!is_self(m)) {
      out.notes.push_back("member left: " + member_name(m));
      peer_left = true;
    }
  if (!in_group()) return;
  if (peer_joined) {
    // The newcomer missed what we said before it came: say it again.
    queue(ClusterMsg::hello);
    if (yellow_) queue(ClusterMsg::yellow);
    if (state_ == ClusterState::failed) queue(ClusterMsg::failed);
  }
  settle(now_ns, out);
  if (peer_left && had_peer) {
    if (peer_shutdown_) {
      peer_shutdown_ = false;
      if (cfg_.role == ClusterRole::primary && !final()) {
        // The SVM is gone on purpose: compare cannot go on, the primary carries on alone.
        decide("cluster: the peer shut down", now_ns, out);
      } else {
        out.notes.push_back("the peer shut down: not promoting (a stop is not a failure)");
      }
      return;
    }
    if (peers_.empty()) {
      uint32_t nodeid = 0;
      for (auto m : left)
        if (!is_self(m)) nodeid = m.nodeid;
      peer_failed("the peer left the group (failed)", true, nodeid, now_ns, out);
    }
  }
}

void ClusterCore::quorum(bool quorate, std::span<const uint32_t> view, uint64_t now_ns,
                         Output& out) {
  view_.assign(view.begin(), view.end());
  if (quorate == quorate_) return;
  quorate_ = quorate;
  out.notes.push_back(quorate ? "quorate" : "quorum lost: this side promotes nothing");
  tick(now_ns, out);
}

void ClusterCore::peer_failed(const std::string& why, bool absent, uint32_t nodeid,
                              uint64_t now_ns, Output& out) {
  ++c_.peer_failures;
  if (final()) {
    out.notes.push_back(why + "; decision already taken: " + decision_);
    return;
  }
  if (state_ == ClusterState::blocked && pending_failure_) return;
  state_ = ClusterState::blocked;
  pending_failure_ = true;
  pending_absent_ = absent;
  pending_nodeid_ = nodeid;
  pending_since_ = now_ns;
  pending_noted_ = false;
  pending_cause_ = "cluster: " + why;
  out.notes.push_back(why + "; acting in " + std::to_string(cfg_.settle_ns / 1000000) +
                      " ms if quorate");
}

void ClusterCore::decide(const std::string& cause, uint64_t now_ns, Output& out) {
  state_ = ClusterState::survivor;
  decision_ = cause;
  decided_ns_ = now_ns;
  out.decide = cfg_.role == ClusterRole::primary ? Survivor::primary : Survivor::secondary;
  out.cause = cause;
  out.notes.push_back("decided: the " + std::string(to_string(cfg_.role)) +
                      " (this side) survives; " + cause);
}

void ClusterCore::fail_self(const std::string& why, uint64_t now_ns, Output& out) {
  state_ = ClusterState::failed;
  decision_ = why;
  decided_ns_ = now_ns;
  pending_failure_ = false;
  queue(ClusterMsg::failed);
  out.notes.push_back("this side is failed: " + why + "; it does not promote");
}

void ClusterCore::deliver(ClusterMember from, std::span<const uint8_t> bytes, uint64_t now_ns,
                          Output& out) {
  ++c_.delivered;
  if (bytes.size() != kClusterMsgSize) {
    ++c_.junk_length;
    return;
  }
  uint32_t code = load_be32(bytes.data());
  uint32_t seq = load_be32(bytes.data() + 4);
  if (!cluster_msg_valid(code)) {
    ++c_.junk_code;
    return;
  }
  auto msg = static_cast<ClusterMsg>(code);
  bool mine = is_self(from);
  if (mine) {
    auto it = std::find_if(outbox_.begin(), outbox_.end(),
                           [&](const Pending& p) { return p.seq == seq && p.msg == msg; });
    if (it == outbox_.end()) {  // a resend's duplicate: acted on already
      ++c_.duplicates;
      return;
    }
    outbox_.erase(it);
    ++c_.own_copies;
  } else {
    // The group keeps each sender's order: a sequence not above the last one delivered
    // from that member is a resend of a message already acted on.
    auto it = std::find_if(seen_.begin(), seen_.end(), [&](const SeqSeen& x) { return x.from == from; });
    if (it != seen_.end() && seq <= it->seq) {
      ++c_.duplicates;
      return;
    }
    if (it != seen_.end()) it->seq = seq;
    else seen_.push_back({from, seq});
  }
  switch (msg) {
    case ClusterMsg::hello:
      if (!mine) {
        peer_hello_ = true;
        out.notes.push_back("HELLO from " + member_name(from));
      }
      break;
    case ClusterMsg::failover:
      if (failover_delivered_) {
        ++c_.late_failover;
        out.notes.push_back("FAILOVER from " + member_name(from) +
                            " delivered after the first one: ignored");
        break;
      }
      failover_delivered_ = true;
      if (mine) {
        if (final()) break;
        if (!quorate_) {
          // Lost quorum since asking: in a partition, the other side may have a first
          // FAILOVER of its own. Nothing is promoted here.
          out.notes.push_back("our FAILOVER was delivered first, but without quorum: not promoting");
        } else {
          decide("cluster: our FAILOVER was delivered first", now_ns, out);
        }
      } else if (!final()) {
        fail_self("the FAILOVER of " + member_name(from) + " was delivered first", now_ns, out);
      }
      break;
    case ClusterMsg::failed:
      if (!mine) peer_failed("the peer reported itself FAILED", false, from.nodeid, now_ns, out);
      break;
    case ClusterMsg::yellow:
      if (!mine) {
        peer_yellow_ = true;
        out.notes.push_back("the peer's watched link is down (yellow)");
      }
      break;
    case ClusterMsg::unyellow:
      if (!mine) {
        // Both were yellow (a shared switch down) and the peer's link came back first:
        // ours now gets its full yellow time from here, not from when it went down, so a
        // switch whose ports come back one after the other fails nobody.
        if (peer_yellow_) yellow_alone_since_ = now_ns;
        peer_yellow_ = false;
        out.notes.push_back("the peer's watched link is back");
      }
      break;
    case ClusterMsg::shutdown:
      if (!mine) {
        peer_shutdown_ = true;
        out.notes.push_back("the peer is shutting down");
      }
      break;
  }
}

void ClusterCore::link(bool down, uint64_t now_ns, Output& out) {
  if (down == yellow_) return;
  yellow_ = down;
  if (down) {
    yellow_since_ = now_ns;
    yellow_alone_since_ = now_ns;
    out.notes.push_back("watched link down (yellow)");
  } else {
    out.notes.push_back("watched link back");
  }
  if (in_group()) queue(down ? ClusterMsg::yellow : ClusterMsg::unyellow);
}

bool ClusterCore::request_failover(const std::string& cause, uint64_t now_ns, Output& out,
                                   std::string& error) {
  (void)now_ns;
  if (state_ == ClusterState::survivor) {
    error = "already decided: " + decision_;
    return false;
  }
  if (state_ == ClusterState::failed) {
    error = "this side is failed (" + decision_ + "): it may not promote";
    return false;
  }
  if (!in_group()) {
    error = "not in the cluster group (corosync not reached)";
    return false;
  }
  if (!quorate_) {
    error = "no quorum: this side may not promote";
    return false;
  }
  if (failover_delivered_) {
    error = "a FAILOVER was delivered already";
    return false;
  }
  for (const auto& p : outbox_)
    if (p.msg == ClusterMsg::failover) {
      error = "a FAILOVER of ours is on its way";
      return false;
    }
  queue(ClusterMsg::failover);
  out.notes.push_back("FAILOVER sent (" + cause + ")");
  return true;
}

void ClusterCore::shutdown(uint64_t now_ns) {
  (void)now_ns;
  if (in_group()) queue(ClusterMsg::shutdown);
}

void ClusterCore::tick(uint64_t now_ns, Output& out) {
  if (state_ == ClusterState::blocked && pending_failure_ &&
      now_ns - pending_since_ >= cfg_.settle_ns) {
    bool back = pending_absent_ &&
                (!peers_.empty() ||
                 std::find(view_.begin(), view_.end(), pending_nodeid_) != view_.end());
    if (back) {
      // The failed peer's node is in the quorate membership again: not a failure we act on.
      pending_failure_ = false;
      state_ = peers_.empty() ? ClusterState::waiting : ClusterState::paired;
      out.notes.push_back("the peer's node is back in the membership: no failover");
    } else if (quorate_) {
      pending_failure_ = false;
      decide(pending_cause_, now_ns, out);
    } else if (!pending_noted_) {
      pending_noted_ = true;
      out.notes.push_back("no quorum: not promoting (blocked until quorum returns)");
    }
  }
  if (yellow_ && !peer_yellow_ && !final() && !peers_.empty() &&
      now_ns - yellow_alone_since_ >= cfg_.yellow_ns)
    fail_self("watched link down for " + std::to_string(cfg_.yellow_ns / 1000000) +
                  " ms while the peer's is up",
              now_ns, out);
}

void ClusterCore::due(uint64_t now_ns, std::vector<Send>& out) {
  if (!in_group()) return;
  for (auto& p : outbox_) {
    if (p.sent_once && now_ns - p.last_sent_ns < cfg_.resend_ns) continue;
    if (p.sent_once) ++c_.resent;
    else ++c_.sent;
    p.sent_once = true;
    p.last_sent_ns = now_ns;
    out.push_back({p.msg, p.seq});
  }
}

Json ClusterCore::to_json(uint64_t now_ns) const {
  Json j;
  j["state"] = to_string(state_);
  j["role"] = to_string(cfg_.role);
  j["quorate"] = quorate_;
  if (joined_) j["self"] = {{"nodeid", self_.nodeid}, {"pid", self_.pid}};
  else j["self"] = nullptr;
  Json m = Json::array();
  for (auto x : members_) m.push_back({{"nodeid", x.nodeid}, {"pid", x.pid}});
  j["members"] = m;
  j["peer_present"] = !peers_.empty();
  j["peer_hello"] = peer_hello_;
  j["yellow"] = yellow_;
  j["peer_yellow"] = peer_yellow_;
  j["yellow_ms"] = yellow_ ? (now_ns - yellow_since_) / 1000000 : 0;
  j["failover_delivered"] = failover_delivered_;
  if (decided_ns_ != 0 || final()) {
    j["decision"] = {{"what", decision_}, {"ago_ms", (now_ns - decided_ns_) / 1000000}};
  } else {
    j["decision"] = nullptr;
  }
  j["outbox"] = outbox_.size();
  j["counters"] = {{"sent", c_.sent},           {"resent", c_.resent},
                   {"delivered", c_.delivered}, {"own_copies", c_.own_copies},
                   {"junk_length", c_.junk_length}, {"junk_code", c_.junk_code},
                   {"duplicates", c_.duplicates},
                   {"late_failover", c_.late_failover},
                   {"config_changes", c_.config_changes},
                   {"peer_failures", c_.peer_failures}};
  return j;
}

}  // namespace lockstep::ctrl
