// Heartbeats and the failover decision.
//
// HeartbeatMonitor: peers (the checkpointer, the appliance on the other host) send
// heartbeats. A peer silent for `timeout` becomes suspect; still silent `debounce` later
// it is lost, and its loss action applies (fail over so that the primary or the
// secondary survives, or only alarm). A heartbeat while suspect clears it (a counted
// flap). Pure: time is an argument, events are returned.
//
// FailoverController: the one latch every failover cause goes through (heartbeat loss,
// checkpoint timeout, the checkpointer's failover message, an operator). The first
// decision wins and is final for this process: failing back is the cluster manager's job
// (docs/failover.md). Thread-safe (a mutex; it is called from control threads only).
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "compare/types.h"
#include "ctrl/events.h"
#include "ctrl/json_limits.h"

namespace lockstep::ctrl {

enum class LossAction : uint8_t { failover_primary, failover_secondary, alarm };
std::string_view to_string(LossAction a);
bool loss_action_from_string(std::string_view s, LossAction& out);

enum class PeerState : uint8_t { waiting, up, suspect, lost };
std::string_view to_string(PeerState s);

struct PeerConfig {
  std::string name;
  uint64_t timeout_ns = 1'000'000'000;
  uint64_t debounce_ns = 500'000'000;
  LossAction on_loss = LossAction::alarm;
};

class HeartbeatMonitor {
 public:
  // A decision the caller must act on (emit the events; pass failover to the controller).
  struct Decision {
    Event event;
    std::optional<Survivor> failover;  // set when the loss action is a failover
  };

  void add_peer(const PeerConfig& cfg, uint64_t now_ns);
  bool has_peer(const std::string& name) const;
  // A heartbeat from `peer` with sequence `seq`. Unknown peers are counted and ignored.
  bool beat(const std::string& peer, uint64_t seq, uint64_t now_ns, std::vector<Decision>& out);
  void tick(uint64_t now_ns, std::vector<Decision>& out);
  uint64_t next_deadline() const;

  PeerState state(const std::string& peer) const;
  Json to_json(uint64_t now_ns) const;
  uint64_t unknown_peer_beats() const { return unknown_beats_; }

  struct Peer {
    PeerConfig cfg;
    PeerState state = PeerState::waiting;
    uint64_t last_ns = 0;       // last heartbeat, or when monitoring started
    uint64_t suspect_since = 0;
    uint64_t last_seq = 0;
    bool seen = false;
    uint64_t beats = 0, seq_gaps = 0, seq_reordered = 0, suspects = 0, flaps = 0, losses = 0,
             recoveries = 0;
  };
  const std::vector<Peer>& peers() const { return peers_; }

 private:
  Peer* find(const std::string& name);
  std::vector<Peer> peers_;
  uint64_t unknown_beats_ = 0;
};

class FailoverController {
 public:
  explicit FailoverController(EventQueue* events) : events_(events) {}

  // Decides failover (first caller wins). Returns true when this call decided it; false
  // and `error` when a failover was already decided (naming which).
  bool decide(Survivor s, const std::string& cause, uint64_t now_ns, std::string& error);
  std::optional<Survivor> survivor() const;
  Json to_json(uint64_t now_ns) const;
  uint64_t refused() const;

 private:
  mutable std::mutex mu_;
  EventQueue* events_;
  std::optional<Survivor> survivor_;
  std::string cause_;
  uint64_t decided_ns_ = 0;
  uint64_t refused_ = 0;
};

}  // namespace lockstep::ctrl
