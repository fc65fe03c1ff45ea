// lockstepd's side of a QMP conversation with the PVM's QEMU (checkpointer kind `qmp`,
// docs/qemu-kvm-colo.md). Pure: it is fed decoded messages and the time, and returns
// what to send and what happened; CheckpointCoordinator (checkpointer_link.cpp) does the
// socket and turns the outputs into checkpoint-FSM calls and failover decisions.
//
//   connect -> greeting -> qmp_capabilities -> up (query-version, query-colo-status)
//   checkpoint request -> query-migrate-parameters -> migrate-set-parameters
//       {"x-checkpoint-delay": <the value just read>}   (QEMU in COLO state: checkpoint now)
//   STOP ... RESUME, in COLO primary mode -> checkpoint done (ours or QEMU's periodic one)
//   COLO_EXIT {mode, reason} -> failover: mode primary = the primary survives
//   failover decided here -> x-colo-lost-heartbeat
//   an error with no id (QEMU could not read a command; the libvirt bridge cannot reach
//   the domain) -> fail: the connection is given up and retried
//
// Whether a STOP/RESUME pair was a COLO checkpoint is decided by query-colo-status, sent
// at each STOP: the answer (mode "primary") arrives after the STOP and, at the latest,
// just after the RESUME, because QEMU answers commands in order. A pair outside COLO
// (an operator's stop/cont) releases nothing.
//
// Threading: none; the link's control thread owns it.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "compare/types.h"
#include "ctrl/qmp_codec.h"

namespace lockstep::ctrl {

#define LOCKSTEP_QMP_COUNTERS(X)                                                        \
  X(greetings, "QMP greetings received")                                               \
  X(commands_sent, "QMP commands sent")                                                \
  X(replies, "QMP replies received")                                                   \
  X(command_errors, "QMP commands QEMU answered with an error")                         \
  X(unknown_replies, "replies with an id lockstepd did not send")                      \
  X(events, "QMP events received")                                                     \
  X(stops, "STOP events")                                                              \
  X(resumes, "RESUME events")                                                          \
  X(triggers, "checkpoints asked for with migrate-set-parameters x-checkpoint-delay")  \
  X(checkpoints_seen, "STOP/RESUME pairs in COLO primary mode (checkpoints done)")     \
  X(stop_resume_outside_colo, "STOP/RESUME pairs outside COLO (released nothing)")     \
  X(colo_exits, "COLO_EXIT events")                                                    \
  X(lost_heartbeat_sent, "x-colo-lost-heartbeat commands sent")                        \
  X(answer_timeouts, "connections given up because QEMU stopped answering")

struct QmpCounters {
#define LOCKSTEP_X(name, help) uint64_t name = 0;
  LOCKSTEP_QMP_COUNTERS(LOCKSTEP_X)
#undef LOCKSTEP_X
  Json to_json() const;
};

class QmpSession {
 public:
  enum class OutKind : uint8_t {
    send,       // text: bytes to write
    up,         // capabilities negotiated; text: QEMU's version
    begin,      // a STOP: a checkpoint may have started
    done,       // a COLO checkpoint finished (RESUME after STOP, mode primary)
    colo_exit,  // QEMU left COLO; survivor from the event's mode; text: detail
    fail,       // give the connection up (text: why): QEMU stopped answering
    note,       // text: a command error or oddity worth last_error
  };
  struct Output {
    OutKind kind;
    std::string text;
    Survivor survivor = Survivor::primary;
  };

  // answer_timeout_ns: the greeting and every command must be answered within it.
  // poll_ns: query-colo-status this often while up (0: only at STOP and on connect).
  explicit QmpSession(uint64_t answer_timeout_ns = 5'000'000'000, uint64_t poll_ns = 1'000'000'000)
      : answer_timeout_ns_(answer_timeout_ns), poll_ns_(poll_ns) {}

  // A new connection: wait for the greeting.
  void reset(uint64_t now_ns);
  void on_message(const QmpMessage& m, uint64_t now_ns, std::vector<Output>& out);
  // A checkpoint request (the FSM's send_request).
  void request_checkpoint(uint64_t now_ns, std::vector<Output>& out);
  // Make this QEMU take over (x-colo-lost-heartbeat).
  void lost_heartbeat(uint64_t now_ns, std::vector<Output>& out);
  // Answer timeouts and the periodic status poll.
  void tick(uint64_t now_ns, std::vector<Output>& out);
  uint64_t next_deadline() const;

  bool up() const { return up_; }
  bool lost_heartbeat_asked() const { return lost_heartbeat_asked_; }
  const std::string& colo_mode() const { return colo_mode_; }
  const std::string& version() const { return version_; }
  const QmpCounters& counters() const { return c_; }
  Json status_json() const;

 private:
  enum class Purpose : uint8_t {
    capabilities, version, colo_status, stop_colo_status, read_delay, trigger, lost_heartbeat
  };
  struct Pending {
    Purpose purpose;
    uint64_t sent_ns;
    std::string name;
  };
  void send(std::string_view name, const Json& args, Purpose p, uint64_t now_ns, std::vector<Output>& out);
  void on_reply(const QmpMessage& m, Purpose p, uint64_t now_ns, std::vector<Output>& out);
  void on_event(const QmpMessage& m, uint64_t now_ns, std::vector<Output>& out);
  void decide_pair(std::vector<Output>& out);

  uint64_t answer_timeout_ns_, poll_ns_;
  QmpCounters c_;
  bool greeted_ = false, up_ = false, stopped_ = false, resume_waiting_ = false;
  bool lost_heartbeat_asked_ = false;
  uint64_t connected_ns_ = 0, next_poll_ns_ = 0, next_id_ = 1;
  uint32_t stop_queries_ = 0;  // query-colo-status sent at a STOP, not yet answered
  std::map<uint64_t, Pending> pending_;
  std::string version_, colo_mode_ = "unknown", colo_last_mode_, colo_reason_;
  std::optional<uint64_t> checkpoint_delay_ms_;
  std::string last_exit_;
};

}  // namespace lockstep::ctrl
