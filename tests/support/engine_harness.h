// EngineHarness: drives one compare Engine the way a worker does, with a simulated
// checkpointer, and records every action so tests can assert on fates and order.
//
//   push(side, bytes)  -> handle (the harness keeps the bytes alive until their action)
//   advance_to(t)      -> fires engine deadlines and due checkpoint completions in time
//                         order, draining after each step
//   run_until_idle()   -> advances to each next deadline until nothing is pending
//
// Each action is recorded with the time it was drained and the number of frames pushed
// before it (`pushes_before`), so a test can check what the engine had seen when it
// released a frame. Errors of the contract (a handle named twice, an unknown handle, an
// action of the wrong kind for its side) are collected in `violations()`.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "compare/engine.h"
#include "tests/support/frame_builder.h"

namespace lockstep::test {

struct ActionRecord {
  uint64_t handle = 0;
  ActionKind kind = ActionKind::release;
  uint8_t reason = 0;
  Side side = Side::pvm;        // the side the handle was pushed on
  uint64_t t_ns = 0;            // harness time when drained
  uint64_t pushes_before = 0;   // frames pushed before this action was drained
  uint64_t arrival = 0;         // arrival index of the handle (0-based push order)
  uint64_t epoch_at = 0;        // engine epoch when drained
  Bytes bytes;                  // frame bytes at action time (rewritten), when kept
};

struct CheckpointRecord {
  CheckpointRequest req;
  uint64_t taken_ns = 0;               // when the harness took it
  std::optional<uint64_t> done_ns;     // when checkpoint_done was called
  uint64_t pushes_before = 0;
  size_t actions_before_done = 0;      // actions().size() right before checkpoint_done
  size_t actions_at_done = 0;          // actions().size() right after checkpoint_done
};

class EngineHarness {
 public:
  // Throws std::runtime_error when the engine cannot be created.
  explicit EngineHarness(const Settings& s = Settings::defaults());
  ~EngineHarness();

  // Convenience: defaults with some keys changed (throws on an invalid pair).
  static Settings settings_with(const std::map<std::string, std::string>& kv);

  Engine& engine() { return *engine_; }
  const Counters& counters() const { return engine_->counters(); }

  // --- Time and input ---
  uint64_t now() const { return now_; }
  // Moves time to `t` (>= now): engine deadlines and checkpoint completions that fall
  // in between fire in time order. Drains.
  void advance_to(uint64_t t);
  void advance_by(uint64_t dt) { advance_to(now_ + dt); }
  // Pushes at the current time, drains, handles a checkpoint request. Returns the handle.
  uint64_t push(Side side, const Bytes& frame);
  uint64_t push_at(uint64_t t, Side side, const Bytes& frame) {
    advance_to(t);
    return push(side, frame);
  }
  // Return value of the last push (ingress: whether to send the PVM copy).
  bool last_push_result() const { return last_push_result_; }

  // Advances to each next deadline/checkpoint completion until none is pending or
  // `max_steps` steps were taken (then a violation is recorded). Returns the end time.
  uint64_t run_until_idle(size_t max_steps = 100000);

  // --- Checkpointer ---
  // When on (default), a request is completed `checkpoint_latency_ns` after it is taken.
  void set_auto_checkpoint(bool on) { auto_checkpoint_ = on; }
  void set_checkpoint_latency(uint64_t ns) { checkpoint_latency_ns_ = ns; }
  // Completes the outstanding request (if any) now. Returns whether there was one.
  bool complete_checkpoint();
  // Manual checkpoint: request_checkpoint(manual) then complete now.
  void checkpoint_now();
  const std::vector<CheckpointRecord>& checkpoints() const { return checkpoints_; }

  void failover(Survivor s);
  void set_mode(Mode m);
  void flush_all();

  // --- Recorded actions ---
  void set_keep_bytes(bool on) { keep_bytes_.fill(on); }
  void set_keep_bytes(Side side, bool on) { keep_bytes_[static_cast<size_t>(side)] = on; }
  const std::vector<ActionRecord>& actions() const { return actions_; }
  std::vector<ActionRecord> of_kind(ActionKind k, std::optional<Side> side = {}) const;
  std::vector<ActionRecord> released() const { return of_kind(ActionKind::release); }
  std::vector<uint64_t> released_handles(std::optional<Side> side = {}) const;
  std::vector<ActionRecord> forwarded() const { return of_kind(ActionKind::forward_svm); }
  const ActionRecord* action_of(uint64_t handle) const;  // nullptr: no action yet
  bool has_action(uint64_t handle) const { return action_of(handle) != nullptr; }
  size_t pushed() const { return next_handle_ - 1; }
  size_t outstanding() const { return live_.size(); }  // handles without action

  // --- Laws ---
  const std::vector<std::string>& violations() const { return violations_; }
  // Empty when every handle pushed got exactly one action and nothing else went wrong;
  // else a description. `require_all` = every pushed handle has its action.
  std::string check_contract(bool require_all) const;
  std::string conservation() const { return engine_->counters().conservation_error(); }

 private:
  struct Live {
    Bytes bytes;
    Side side;
    uint64_t arrival;
  };
  void drain();
  void take_request();
  void complete_due(uint64_t t);

  std::unique_ptr<Engine> engine_;
  uint64_t now_ = 1'000'000'000;  // start at 1 s so "time 0" bugs show
  uint64_t next_handle_ = 1;
  bool last_push_result_ = false;
  bool auto_checkpoint_ = true;
  std::array<bool, 3> keep_bytes_{true, true, true};  // by Side
  uint64_t checkpoint_latency_ns_ = 1'000'000;  // 1 ms
  std::unordered_map<uint64_t, Live> live_;
  std::unordered_map<uint64_t, size_t> action_index_;  // handle -> index in actions_
  std::vector<ActionRecord> actions_;
  std::vector<CheckpointRecord> checkpoints_;
  std::optional<size_t> pending_cp_;  // index in checkpoints_ not yet done
  std::vector<std::string> violations_;
  std::vector<Action> buf_;
};

// A handle's fate as text, for readable assertions: "none", "release/matched",
// "drop/policy_drop", "free", "forward_svm".
std::string describe(const EngineHarness& h, uint64_t handle);
std::string released_as(ReleaseReason r);
std::string dropped_as(DropReason r);

// Handshakes through the harness. Handles of the frames pushed, in push order.
struct Opened {
  uint64_t client_syn = 0, pvm_syn = 0, svm_syn = 0, client_ack = 0, pvm_ack = 0, svm_ack = 0;
};
// Passive open (the client connects): client SYN (ingress), PVM SYN/ACK, SVM SYN/ACK,
// client ACK (ingress).
Opened open_passive(EngineHarness& h, Conversation& c);
// Active open (the VM connects): PVM SYN, SVM SYN, client SYN/ACK (ingress), PVM ACK,
// SVM ACK.
Opened open_active(EngineHarness& h, Conversation& c);

// A UDP datagram description between two hosts (IPv4 when both are IPv4-mapped).
FrameSpec udp_spec(const IpAddr& src, const IpAddr& dst, uint16_t sport, uint16_t dport,
                   std::vector<uint8_t> payload);

}  // namespace lockstep::test
