// lockstepd behind ctrl/: the DaemonControl the ctrl commands reach, and the
// CheckpointSink that hands the dataplane's coalesced checkpoint requests to ctrl's
// CheckpointCoordinator.
//
// Threads. The ctrl server thread calls the DaemonControl methods; they only read a
// snapshot the control loop publishes (under a mutex) and queue operations. The control
// loop (EAL main lcore) calls service() and on_event(): it runs the queued operations on
// the workers' control rings (the only producer of those rings), publishes the counters,
// and acts on control-plane events. Workers are never touched from the ctrl thread.
#pragma once

#include <array>
#include <map>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "ctrl/checkpointer_link.h"
#include "ctrl/daemon_control.h"
#include "ctrl/event_log.h"
#include "ctrl/events.h"
#include "dataplane/edge/control.h"
#include "dataplane/edge/dataplane.h"
#include "dataplane/edge/stats.h"

namespace lockstep::dp {

// Requests go to the coordinator; the control loop feeds back the epochs of the
// checkpoint_done events it drains (done()), which poll_done() then reports.
class CoordinatorSink final : public CheckpointSink {
 public:
  explicit CoordinatorSink(ctrl::CheckpointCoordinator& c) : coord_(c) {}
  void request(const CheckpointRequest& req, uint64_t global_epoch, uint64_t now_ns) override;
  bool poll_done(uint64_t now_ns, uint64_t& epoch) override;
  void done(uint64_t epoch) { done_.push_back(epoch); }

 private:
  ctrl::CheckpointCoordinator& coord_;
  std::deque<uint64_t> done_;
};

class DaemonCtl final : public ctrl::DaemonControl, private ControlObserver {
 public:
  // `sink`: the coordinator's sink when a real checkpointer is configured, else null.
  DaemonCtl(Dataplane& dp, CoordinatorSink* sink, std::string checkpointer_kind);
  ~DaemonCtl() override;

  // Control loop, main thread.
  void service(uint64_t now_ns);
  void on_event(const ctrl::Event& e, uint64_t now_ns);
  // Many guests: guest `g`'s checkpointer (null sink: simulated) and its link's events.
  void set_guest_link(unsigned g, CoordinatorSink* sink, std::string kind);
  void on_guest_event(unsigned g, const ctrl::Event& e, uint64_t now_ns);

  // The guest the per-guest calls of the current ctrl command address (`-g NAME`; empty:
  // none named). Ctrl server thread only: commands run one at a time there.
  bool select_guest(const std::string& name, std::string& error);
  // The guest a read shows: the one named, else -1 (all of them). Also what `-g NAME
  // qos ...` addresses (the guest's own schedulers).
  int guest_for_read() const { return selected_; }
  // `guests`: every guest with its NICs, epoch, mode and state.
  ctrl::Json guests();
  // `guest add|del` (ctrl thread): run by the control loop, waited for (bounded).
  bool add_guest(const GuestConfig& gc, ctrl::Json& result, std::string& error);
  // `held`: what becomes of the guest's held PVM output; null: the configuration's
  // guest_del.held. The reply says how many frames were released and dropped.
  bool remove_guest(const std::string& name, const HeldPolicy* held, ctrl::Json& result,
                    std::string& error);
  // Makes a new guest's checkpointer link (lockstepd; control loop). Null sink + true:
  // simulated.
  using LinkFactory = std::function<bool(unsigned g, const GuestSpec& spec,
                                         std::unique_ptr<CheckpointSink>& sink,
                                         CoordinatorSink*& coord_sink, std::string& error)>;
  void set_link_factory(LinkFactory f) { link_factory_ = std::move(f); }
  // Told (control loop) when a guest was removed: its link is stopped there.
  void set_on_guest_removed(std::function<void(unsigned g)> f) { on_guest_removed_ = std::move(f); }
  // Total frames polled by the workers at the last publication (watchdog progress).
  uint64_t polls() const;
  // Empty while the workers poll (their poll count moved within `stall_ns`); else why
  // not. Thread-safe (GET /health).
  std::string workers_health(uint64_t now_ns, uint64_t stall_ns) const;

  // DaemonControl, ctrl server thread.
  ctrl::Json status() override;
  ctrl::Json stats(bool reset) override;
  ctrl::Json conns(const std::string& filter, size_t limit) override;
  Settings settings() override;
  bool apply_settings(const Settings& s, std::string& error) override;
  bool request_checkpoint(std::string& error) override;
  bool set_mode(Mode m, std::string& error) override;
  bool capture_start(const ctrl::CaptureRequest& r, ctrl::Json& result, std::string& error) override;
  bool capture_stop(const std::string& port, ctrl::Json& result, std::string& error) override;
  void metrics(std::vector<ctrl::MetricSample>& out) override;
  ctrl::Json version() override;

  // The capture facility (set by lockstepd when built); null: capture refused.
  struct CaptureHooks {
    virtual ~CaptureHooks() = default;
    // `guest` >= 0 (`-g NAME`): that guest's frames only; -1: the whole role.
    virtual bool start(const ctrl::CaptureRequest& r, int guest, ctrl::Json& result,
                       std::string& error) = 0;
    virtual bool stop(const std::string& port, ctrl::Json& result, std::string& error) = 0;
  };
  void set_capture(CaptureHooks* c) { capture_ = c; }
  // The operator's event log (checkpoint requests and completions, failovers, mode and
  // settings changes, drops); before the dataplane starts. Null: no log.
  void set_event_log(ctrl::EventLog* log);

 private:
  struct Snapshots {  // one ConnSnapshot per worker, alive until every worker answered
    explicit Snapshots(unsigned n) : slot(new ConnSnapshot[n]), count(n) {}
    std::unique_ptr<ConnSnapshot[]> slot;
    unsigned count;
    bool all_done() const;
  };
  struct GuestOp {  // guest add|del between the ctrl thread and the control loop
    GuestConfig config;
    std::string name;
    HeldPolicy held = HeldPolicy::release;  // del
    uint64_t released = 0, dropped = 0;     // del: the held PVM output's fate
    uint64_t qos_sent = 0, qos_dropped = 0;  // del: its own schedulers' queued frames
    bool ok = false;
    std::string error;
    std::atomic<bool> done{false};
  };
  struct Op {
    enum Kind : uint8_t { broadcast, manual_checkpoint, add_guest, remove_guest } kind = broadcast;
    unsigned guest = 0;  // manual_checkpoint: whose
    std::shared_ptr<GuestOp> guest_op;
    CtrlMsg msg{};
    std::shared_ptr<Snapshots> snaps;  // keeps a conns snapshot alive
    std::shared_ptr<SettingsSnapshot> settings;  // keeps a settings change alive
  };
  // What the workers would refuse, found here first: policy rules that do not parse,
  // normalization rules that do not compile, an unknown mode.
  bool check_live(const Settings& s, const Settings& cur, std::string& error);
  // The guest a change is for: the one named, else the only one; -1 + error with several.
  int guest_for_change(std::string& error) const;
  bool multi() const { return multi_.load(std::memory_order_acquire); }
  void publish(uint64_t now_ns);
  void post(Op op);
  // ControlObserver (control loop).
  void on_request(unsigned guest, const CheckpointRequest& req, bool coalesced,
                  uint64_t now_ns) override;
  void on_done(unsigned guest, uint64_t epoch, uint64_t took_ns, uint64_t now_ns) override;
  void log_settings_change(const Settings& before, const Settings& after);
  void log_drops(uint64_t now_ns);

  Dataplane& dp_;
  CoordinatorSink* sink_;
  std::string kind_;
  CaptureHooks* capture_ = nullptr;

  mutable std::mutex mu_;
  std::vector<Op> ops_;            // ctrl thread -> control loop
  Report report_;                  // published by the control loop
  WorkerStats baseline_;           // `stats --reset`: counters shown relative to this
  uint64_t baseline_ns_ = 0;
  Settings settings_;
  Mode mode_;
  // Per guest (index as in the dataplane): settings, mode, checkpointer.
  std::vector<Settings> guest_settings_;
  std::vector<Mode> guest_mode_;
  std::vector<CoordinatorSink*> guest_sinks_;
  std::vector<std::string> guest_kinds_;
  std::vector<std::optional<Survivor>> guest_failed_over_;
  int selected_ = -1;  // ctrl thread: the guest of the command being run
  std::vector<std::string> names_;      // by guest index (under mu_: the ctrl thread reads)
  std::vector<ctrl::Json> nics_json_;   // by guest index, for `guests`
  std::array<std::string, kCompareRoles> first_ports_;  // the first NIC's, for `status`
  // Started with `guests:`, or a guest added to the single pair (then `default`).
  std::atomic<bool> multi_{false};
  std::vector<bool> removed_;
  LinkFactory link_factory_;
  std::function<void(unsigned g)> on_guest_removed_;
  void run_guest_op(Op& op);
  // guest add|del: posted to the control loop, waited for (10 s at most).
  bool post_and_wait(Op op, const char* what, std::string& error);
  uint64_t epoch_ = 0;
  bool outstanding_ = false;
  std::optional<Survivor> failed_over_;  // applied to the workers
  uint64_t failover_ns_ = 0;
  uint64_t ops_dropped_ = 0, events_seen_ = 0;
  uint64_t settings_refused_ = 0;  // live changes refused (before or by the workers)
  std::string last_settings_error_;
  ctrl::EventLog* log_ = nullptr;
  uint64_t polls_seen_ = 0, polls_moved_ns_ = 0;  // when the poll count last moved
  LatencyHist checkpoint_hist_{};  // request to done, log2 us buckets
  uint64_t checkpoint_ns_ = 0;     // their sum
  std::string last_reason_;        // of the last checkpoint request sent

  // Control loop only.
  uint64_t next_publish_ns_ = 0;
  uint64_t next_drops_ns_ = 0;
  std::map<std::string, uint64_t> drops_logged_;  // drop counters at the last drops event
  std::deque<std::shared_ptr<Snapshots>> inflight_;
  std::deque<std::shared_ptr<SettingsSnapshot>> settings_inflight_;  // until every worker answered
};

}  // namespace lockstep::dp
