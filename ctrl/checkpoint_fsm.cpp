#include "ctrl/checkpoint_fsm.h"

#include <algorithm>

#include "compare/flow_key.h"
#include "ctrl/native_codec.h"

namespace lockstep::ctrl {

std::string_view to_string(TimeoutPolicy p) {
  switch (p) {
    case TimeoutPolicy::retry: return "retry";
    case TimeoutPolicy::alarm: return "alarm";
    case TimeoutPolicy::failover: return "failover";
  }
  return "?";
}

bool timeout_policy_from_string(std::string_view s, TimeoutPolicy& out) {
  for (auto p : {TimeoutPolicy::retry, TimeoutPolicy::alarm, TimeoutPolicy::failover}) {
    if (s == to_string(p)) {
      out = p;
      return true;
    }
  }
  return false;
}

std::string_view to_string(CheckpointFsm::State s) {
  switch (s) {
    case CheckpointFsm::State::idle: return "idle";
    case CheckpointFsm::State::pending: return "pending";
    case CheckpointFsm::State::outstanding: return "outstanding";
    case CheckpointFsm::State::in_progress: return "in_progress";
  }
  return "?";
}

Json CheckpointFsmCounters::to_json() const {
  Json j;
#define LOCKSTEP_X(name, help) j[#name] = name;
  LOCKSTEP_CHECKPOINT_FSM_COUNTERS(LOCKSTEP_X)
#undef LOCKSTEP_X
  return j;
}

CheckpointFsm::CheckpointFsm(const CheckpointPolicy& policy, uint64_t now_ns, uint64_t first_epoch)
    : policy_(policy), epoch_(first_epoch), epoch_start_ns_(now_ns) {}

void CheckpointFsm::send(uint64_t now_ns, std::vector<Output>& out, bool resend) {
  ++attempt_;
  ++c_.requests_sent;
  if (resend) ++c_.requests_resent;
  sent_ns_ = now_ns;
  state_ = State::outstanding;
  out.push_back(Output{OutKind::send_request, current_, attempt_});
}

void CheckpointFsm::request(const CheckpointRequest& r, uint64_t now_ns, std::vector<Output>& out) {
  ++c_.requests_in;
  if (r.epoch < epoch_) {
    ++c_.requests_stale;
    return;
  }
  if (state_ != State::idle) {
    ++c_.requests_coalesced;
    return;
  }
  epoch_ = r.epoch;  // the dataplane may number epochs from a later start
  current_ = r;
  attempt_ = 0;
  retries_ = 0;
  timed_out_ = false;
  if (link_up_) {
    send(now_ns, out, false);
  } else {
    state_ = State::pending;
    sent_ns_ = now_ns;
  }
}

void CheckpointFsm::begin(uint64_t epoch, uint64_t now_ns) {
  if (epoch < epoch_) return;
  ++c_.begun;
  if (state_ == State::idle) {
    // The checkpointer started one on its own (its own periodic timer): time it too.
    current_ = CheckpointRequest{};
    current_.epoch = epoch;
    current_.reason = CheckpointReason::periodic;
    current_.t_ns = now_ns;
    attempt_ = 0;
    retries_ = 0;
    timed_out_ = false;
    sent_ns_ = now_ns;
  }
  state_ = State::in_progress;
}

void CheckpointFsm::done(std::optional<uint64_t> epoch, uint64_t now_ns, std::vector<Output>& out) {
  uint64_t e = epoch ? *epoch : (state_ != State::idle ? current_.epoch : epoch_);
  if (e < epoch_) {
    ++c_.done_stale;
    return;
  }
  ++c_.done;
  if (state_ == State::idle) {
    ++c_.done_unsolicited;
  } else {
    last_duration_ns_ = now_ns - std::min(now_ns, sent_ns_);
  }
  epoch_ = e + 1;
  state_ = State::idle;
  timed_out_ = false;
  epoch_start_ns_ = now_ns;
  last_done_ns_ = now_ns;
  Output o{OutKind::checkpoint_done, {}, attempt_};
  o.request.epoch = e;
  o.request.t_ns = now_ns;
  out.push_back(o);
}

void CheckpointFsm::tick(uint64_t now_ns, std::vector<Output>& out) {
  if (state_ == State::idle) {
    if (policy_.max_epoch_ns != 0 && now_ns >= epoch_start_ns_ + policy_.max_epoch_ns) {
      ++c_.periodic;
      CheckpointRequest r;
      r.epoch = epoch_;
      r.reason = CheckpointReason::periodic;
      r.t_ns = now_ns;
      current_ = r;
      attempt_ = 0;
      retries_ = 0;
      timed_out_ = false;
      if (link_up_) {
        send(now_ns, out, false);
      } else {
        state_ = State::pending;
        sent_ns_ = now_ns;
      }
    }
    return;
  }
  if (timed_out_ || now_ns < sent_ns_ + policy_.done_timeout_ns) return;
  ++c_.timeouts;
  Output o{OutKind::timeout_alarm, current_, attempt_};
  switch (policy_.on_timeout) {
    case TimeoutPolicy::retry:
      if (link_up_ && retries_ < policy_.max_retries) {
        ++retries_;
        ++c_.retries;
        send(now_ns, out, true);
        return;
      }
      ++c_.alarms;
      break;
    case TimeoutPolicy::alarm:
      ++c_.alarms;
      break;
    case TimeoutPolicy::failover:
      ++c_.timeout_failovers;
      o.kind = OutKind::timeout_failover;
      break;
  }
  timed_out_ = true;
  out.push_back(o);
}

void CheckpointFsm::link_up(uint64_t now_ns, std::vector<Output>& out) {
  link_up_ = true;
  if (state_ == State::idle) return;
  timed_out_ = false;
  send(now_ns, out, attempt_ > 0);
}

void CheckpointFsm::link_down() { link_up_ = false; }

uint64_t CheckpointFsm::next_deadline() const {
  if (state_ == State::idle) {
    return policy_.max_epoch_ns != 0 ? epoch_start_ns_ + policy_.max_epoch_ns : UINT64_MAX;
  }
  return timed_out_ ? UINT64_MAX : sent_ns_ + policy_.done_timeout_ns;
}

Json CheckpointFsm::status_json(uint64_t now_ns) const {
  Json j;
  j["state"] = to_string(state_);
  j["epoch"] = epoch_;
  j["link_up"] = link_up_;
  if (state_ != State::idle) {
    Json r;
    r["epoch"] = current_.epoch;
    r["reason"] = to_string(current_.reason);
    if (current_.has_flow) r["flow"] = to_string(current_.flow);
    r["attempt"] = attempt_;
    r["age_ms"] = (now_ns - std::min(now_ns, sent_ns_)) / 1000000;
    r["timed_out"] = timed_out_;
    j["current"] = r;
  }
  j["epoch_age_ms"] = (now_ns - std::min(now_ns, epoch_start_ns_)) / 1000000;
  if (last_done_ns_ != 0) j["last_duration_us"] = last_duration_ns_ / 1000;
  Json p;
  p["max_epoch_ms"] = policy_.max_epoch_ns / 1000000;
  p["timeout_ms"] = policy_.done_timeout_ns / 1000000;
  p["on_timeout"] = to_string(policy_.on_timeout);
  p["max_retries"] = policy_.max_retries;
  p["failover_survivor"] = to_string_survivor(policy_.failover_survivor);
  j["policy"] = p;
  j["counters"] = c_.to_json();
  return j;
}

}  // namespace lockstep::ctrl
