// The checkpointer link: lockstepd's side of the conversation with the checkpointer
// (the hypervisor side of COLO). Listens or connects (unix or TCP), speaks the native
// protocol, QEMU's notify_dev dialect or QMP to the PVM's QEMU (qmp_session.h),
// reconnects, sends and watches heartbeats, and
// drives the checkpoint state machine (checkpoint_fsm.h): coalescing, periodic
// checkpoints, the timeout policy.
//
// Threading: CheckpointCoordinator owns one control thread. on_request(), beat(),
// status() and metrics() may be called from any thread. Results come back as Events on
// the EventQueue (checkpoint_done(epoch), failover(survivor), peer_*, checkpoint_timeout,
// checkpointer_up/down); failover decisions go through the FailoverController.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "compare/types.h"
#include "ctrl/checkpoint_fsm.h"
#include "ctrl/events.h"
#include "ctrl/heartbeat.h"
#include "ctrl/metrics.h"
#include "ctrl/net.h"

namespace lockstep::ctrl {

enum class Dialect : uint8_t { native, qemu, qmp };
std::string_view to_string(Dialect d);
bool dialect_from_string(std::string_view s, Dialect& out);

struct LinkConfig {
  Endpoint endpoint;
  bool listen = false;             // true: lockstepd listens, the checkpointer connects
  Dialect dialect = Dialect::native;
  bool vnet_hdr = false;           // qemu: incoming frames carry be32 vnet_hdr_len
  uint64_t reconnect_ns = 500'000'000;
  uint64_t heartbeat_interval_ns = 200'000'000;  // native: our heartbeats; 0 = none
  std::string name = "lockstepd";  // our name in hello
  // The checkpointer as a heartbeat peer (native dialect); empty name = not watched.
  PeerConfig checkpointer_peer{"checkpointer", 1'000'000'000, 500'000'000, LossAction::alarm};
  CheckpointPolicy policy;
  uint64_t first_epoch = 0;
  size_t max_message = 64 * 1024;
  size_t max_out_backlog = 1 << 20;  // bytes queued toward a stuck checkpointer
  // qmp: the greeting and each command must be answered within this, else reconnect.
  uint64_t qmp_answer_timeout_ns = 5'000'000'000;
  uint64_t qmp_poll_ns = 1'000'000'000;  // query-colo-status period (for status)
  // qmp: the reconnect interval doubles after each failed try, up to this.
  uint64_t reconnect_max_ns = 8'000'000'000;
  // qmp: the SVM's QEMU, told x-colo-lost-heartbeat when the secondary is to survive
  // (the link's own QEMU, the PVM's, is told when the primary is).
  std::optional<Endpoint> secondary_qmp;
};

#define LOCKSTEP_LINK_COUNTERS(X)                                                  \
  X(connects, "connections established")                                          \
  X(connect_failures, "connect attempts that failed")                             \
  X(disconnects, "connections lost or closed")                                    \
  X(replaced, "connections replaced by a newer one (listen mode)")                \
  X(messages_in, "messages received")                                             \
  X(messages_out, "messages sent")                                                \
  X(protocol_errors, "invalid or unsupported messages received")                  \
  X(oversize, "frames beyond the size bound (connection closed)")                 \
  X(version_mismatch, "hellos with an unsupported protocol version")              \
  X(heartbeats_sent, "heartbeats sent")                                           \
  X(heartbeats_in, "heartbeats received")                                         \
  X(backlog_overflow, "connections closed because the checkpointer stopped reading") \
  X(requests_after_failover, "checkpoint requests ignored after failover")        \
  X(failovers_from_peer, "failover messages from the checkpointer")             \
  X(failovers_from_qemu, "COLO_EXIT events lockstepd did not cause (qmp)")       \
  X(lost_heartbeat_secondary, "x-colo-lost-heartbeat sent to the SVM's QEMU (qmp)")

struct LinkCounters {
#define LOCKSTEP_X(name, help) uint64_t name = 0;
  LOCKSTEP_LINK_COUNTERS(LOCKSTEP_X)
#undef LOCKSTEP_X
  Json to_json() const;
};

class CheckpointCoordinator {
 public:
  CheckpointCoordinator(LinkConfig cfg, EventQueue& events, FailoverController& failover);
  ~CheckpointCoordinator();
  CheckpointCoordinator(const CheckpointCoordinator&) = delete;
  CheckpointCoordinator& operator=(const CheckpointCoordinator&) = delete;

  // Adds a heartbeat peer fed through beat() (e.g. the appliance on the other host).
  // Before start().
  void add_peer(const PeerConfig& p);

  // Listen mode binds here (errors are returned); connect mode connects in the thread.
  bool start(std::string& error);
  void stop();

  // A checkpoint request from the dataplane's control thread. Never blocks on I/O.
  void on_request(const CheckpointRequest& r);
  // A heartbeat from a peer fed by other I/O.
  void beat(const std::string& peer, uint64_t seq);
  void set_policy(const CheckpointPolicy& p);
  CheckpointPolicy policy() const;

  bool connected() const { return up_.load(); }
  uint64_t epoch() const;
  Json status() const;
  Json peers() const;
  void metrics(std::vector<MetricSample>& out) const;
  // The bound address in listen mode (TCP port 0 gets a real port here).
  Endpoint bound() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::atomic<bool> up_{false};
};

}  // namespace lockstep::ctrl
