// The checkpoint state machine of the control plane: coalesces requests (one outstanding
// per epoch), starts periodic checkpoints when an epoch grows past its maximum length,
// and applies the timeout policy when a checkpoint is not done in time. Pure: time is an
// argument, outputs are returned, the link (checkpointer_link.h) does the I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "compare/types.h"
#include "ctrl/json_limits.h"

namespace lockstep::ctrl {

enum class TimeoutPolicy : uint8_t {
  retry,     // send the request again (up to max_retries), then alarm
  alarm,     // raise an alarm once and keep waiting
  failover,  // decide failover to `failover_survivor`
};
std::string_view to_string(TimeoutPolicy p);
bool timeout_policy_from_string(std::string_view s, TimeoutPolicy& out);

struct CheckpointPolicy {
  uint64_t max_epoch_ns = 20'000'000'000;  // periodic checkpoint (QEMU x-checkpoint-delay); 0 = off
  uint64_t done_timeout_ns = 5'000'000'000;  // a checkpoint not done by then is timed out
  TimeoutPolicy on_timeout = TimeoutPolicy::retry;
  uint32_t max_retries = 3;
  Survivor failover_survivor = Survivor::primary;
};

#define LOCKSTEP_CHECKPOINT_FSM_COUNTERS(X)                                       \
  X(requests_in, "requests handed to the coordinator")                           \
  X(requests_coalesced, "requests for an epoch already outstanding")             \
  X(requests_stale, "requests for an epoch already checkpointed")                \
  X(requests_sent, "requests sent to the checkpointer (resends included)")       \
  X(requests_resent, "requests sent again after a reconnect or a retry")         \
  X(periodic, "checkpoints started because the epoch reached its maximum length") \
  X(begun, "checkpoint_begin messages")                                          \
  X(done, "checkpoints done")                                                     \
  X(done_unsolicited, "checkpoints done that nobody asked for")                  \
  X(done_stale, "done messages for an epoch already done")                       \
  X(timeouts, "checkpoints not done within the timeout")                         \
  X(retries, "retries after a timeout")                                          \
  X(alarms, "alarms raised after a timeout")                                     \
  X(timeout_failovers, "failovers decided after a timeout")

struct CheckpointFsmCounters {
#define LOCKSTEP_X(name, help) uint64_t name = 0;
  LOCKSTEP_CHECKPOINT_FSM_COUNTERS(LOCKSTEP_X)
#undef LOCKSTEP_X
  Json to_json() const;
};

class CheckpointFsm {
 public:
  enum class OutKind : uint8_t { send_request, checkpoint_done, timeout_alarm, timeout_failover };
  struct Output {
    OutKind kind;
    CheckpointRequest request;  // send_request: what to send; others: epoch in request.epoch
    uint32_t attempt = 1;
  };
  enum class State : uint8_t { idle, pending, outstanding, in_progress };

  CheckpointFsm(const CheckpointPolicy& policy, uint64_t now_ns, uint64_t first_epoch = 0);

  void set_policy(const CheckpointPolicy& p) { policy_ = p; }
  const CheckpointPolicy& policy() const { return policy_; }

  // A divergence (or manual) request from the dataplane.
  void request(const CheckpointRequest& r, uint64_t now_ns, std::vector<Output>& out);
  // The checkpointer started the checkpoint of `epoch`.
  void begin(uint64_t epoch, uint64_t now_ns);
  // Checkpoint done. `epoch` is absent in the QEMU dialect (it names none): the done then
  // applies to the outstanding request, or to the current epoch if none is outstanding.
  void done(std::optional<uint64_t> epoch, uint64_t now_ns, std::vector<Output>& out);
  // Periodic checkpoints and timeouts.
  void tick(uint64_t now_ns, std::vector<Output>& out);
  // Link state: while down nothing is sent (requests wait as pending); when it comes up
  // a pending or outstanding request is (re)sent.
  void link_up(uint64_t now_ns, std::vector<Output>& out);
  void link_down();

  // Earliest time tick() has something to do, or UINT64_MAX.
  uint64_t next_deadline() const;

  State state() const { return state_; }
  uint64_t epoch() const { return epoch_; }  // the epoch not yet checkpointed
  const CheckpointFsmCounters& counters() const { return c_; }
  Json status_json(uint64_t now_ns) const;

 private:
  void send(uint64_t now_ns, std::vector<Output>& out, bool resend);

  CheckpointPolicy policy_;
  CheckpointFsmCounters c_;
  State state_ = State::idle;
  bool link_up_ = false;
  bool timed_out_ = false;   // the outstanding one has passed its timeout
  uint64_t epoch_;
  uint64_t epoch_start_ns_;
  uint64_t sent_ns_ = 0;
  uint64_t last_done_ns_ = 0;
  uint64_t last_duration_ns_ = 0;
  uint32_t attempt_ = 0;
  uint32_t retries_ = 0;
  CheckpointRequest current_{};
};

std::string_view to_string(CheckpointFsm::State s);

}  // namespace lockstep::ctrl
