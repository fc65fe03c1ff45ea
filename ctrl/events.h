// Events the control plane hands to the daemon (and shows in `status`): checkpoint done,
// failover decided, peers lost or back, alarms. Produced on control threads, consumed by
// the daemon's control loop: a mutex-guarded queue with an eventfd to poll on, plus a
// bounded history for `status`.
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "compare/types.h"
#include "ctrl/json_limits.h"

namespace lockstep::ctrl {

#define LOCKSTEP_CTRL_EVENTS(X)                                                      \
  X(checkpoint_done, "the checkpointer finished a checkpoint: release epoch E")      \
  X(failover, "failover decided: the survivor's output is released from now on")    \
  X(peer_suspect, "a peer missed its heartbeat timeout")                             \
  X(peer_lost, "a peer stayed silent past timeout + debounce")                       \
  X(peer_up, "a peer's heartbeat arrived (first time or after suspect/lost)")        \
  X(checkpoint_timeout, "a checkpoint was not done within checkpoint_timeout")       \
  X(alarm, "a condition an operator must look at")                                   \
  X(checkpointer_up, "the checkpointer link is connected and said hello")           \
  X(checkpointer_down, "the checkpointer link is gone")                             \
  X(cluster, "corosync cluster: membership, quorum, a decision (docs/cluster.md)")

enum class EventKind : uint8_t {
#define LOCKSTEP_X(name, help) name,
  LOCKSTEP_CTRL_EVENTS(LOCKSTEP_X)
#undef LOCKSTEP_X
};
std::string_view to_string(EventKind k);

struct Event {
  EventKind kind = EventKind::alarm;
  uint64_t t_ns = 0;        // monotonic time it was decided
  uint64_t epoch = 0;       // checkpoint_done, checkpoint_timeout
  Survivor survivor = Survivor::primary;  // failover
  std::string peer;         // peer_* and checkpointer_*
  std::string detail;       // human text: cause, reason

  Json to_json() const;
};

class EventQueue {
 public:
  explicit EventQueue(size_t history = 64);
  ~EventQueue();
  EventQueue(const EventQueue&) = delete;
  EventQueue& operator=(const EventQueue&) = delete;

  void push(Event e);
  // Moves every pending event into out (appends); returns how many.
  size_t drain(std::vector<Event>& out);
  // Readable (POLLIN) while events are pending; the daemon may poll it.
  int fd() const { return efd_; }
  // The most recent events, oldest first.
  Json history_json() const;
  uint64_t total() const;

 private:
  mutable std::mutex mu_;
  std::deque<Event> pending_;
  std::deque<Event> history_;
  size_t history_cap_;
  uint64_t total_ = 0;
  int efd_ = -1;
};

}  // namespace lockstep::ctrl
