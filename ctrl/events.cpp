#include "ctrl/events.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>

#include "ctrl/event_log.h"
#include "ctrl/native_codec.h"
#include "ctrl/net.h"

namespace lockstep::ctrl {

namespace {
constexpr std::string_view kEventNames[] = {
#define LOCKSTEP_X(name, help) #name,
    LOCKSTEP_CTRL_EVENTS(LOCKSTEP_X)
#undef LOCKSTEP_X
};
}  // namespace

std::string_view to_string(EventKind k) { return kEventNames[static_cast<unsigned>(k)]; }

Json Event::to_json() const {
  Json j;
  j["event"] = to_string(kind);
  j["t_ns"] = t_ns;
  switch (kind) {
    case EventKind::checkpoint_done:
    case EventKind::checkpoint_timeout: j["epoch"] = epoch; break;
    case EventKind::failover: j["survivor"] = to_string_survivor(survivor); break;
    default: break;
  }
  if (!peer.empty()) j["peer"] = peer;
  if (!detail.empty()) j["detail"] = detail;
  return j;
}

EventQueue::EventQueue(size_t history)
    : history_cap_(history), efd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

EventQueue::~EventQueue() {
  if (efd_ >= 0) close(efd_);
}

void EventQueue::push(Event e) {
  std::lock_guard lock(mu_);
  ++total_;
  history_.push_back(e);
  if (history_.size() > history_cap_) history_.pop_front();
  pending_.push_back(std::move(e));
  uint64_t one = 1;
  if (efd_ >= 0 && write(efd_, &one, sizeof one) < 0) {
    // the counter is saturated or gone: readers still see pending events
  }
}

size_t EventQueue::drain(std::vector<Event>& out) {
  std::lock_guard lock(mu_);
  uint64_t v;
  if (efd_ >= 0 && read(efd_, &v, sizeof v) < 0) {
    // nothing to reset
  }
  size_t n = pending_.size();
  for (auto& e : pending_) out.push_back(std::move(e));
  pending_.clear();
  return n;
}

Json EventQueue::history_json() const {
  // Operators read wall-clock times: each event's monotonic time, moved onto the wall
  // clock by the two clocks' difference now.
  const uint64_t mono = monotonic_ns(), wall = wall_now_ns();
  std::lock_guard lock(mu_);
  Json a = Json::array();
  for (const auto& e : history_) {
    Json j = e.to_json();
    j.erase("t_ns");
    j["time"] = format_wall(wall - std::min(wall, mono - std::min(mono, e.t_ns)));
    a.push_back(std::move(j));
  }
  return a;
}

uint64_t EventQueue::total() const {
  std::lock_guard lock(mu_);
  return total_;
}

}  // namespace lockstep::ctrl
