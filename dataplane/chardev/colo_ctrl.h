// lockstep-colo behind ctrl/: the DaemonControl the ctrl commands reach when the runner
// (colo_runner.h) has a ctrl socket or a metrics listener, and the event log entries of
// its checkpoints (docs/qemu-colo-compare.md, "Control socket, events and metrics").
//
// Threads. The runner's loop owns the engine and calls service() (at least every 10 ms
// while a ctrl socket exists) and the on_*() hooks. The ctrl server and metrics threads
// call the DaemonControl methods: they read a snapshot the loop publishes under a mutex
// (every 100 ms, and after each operation) and queue operations (settings, mode, manual
// checkpoint, connection list) that the loop runs on its next service(); an operation
// that answers waits for it a bounded time (conns 1 s, settings 2 s).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "compare/counters.h"
#include "compare/engine.h"
#include "ctrl/daemon_control.h"
#include "ctrl/event_log.h"
#include "ctrl/events.h"

namespace lockstep::chardev {

// What the runner shows besides its engine: published with every snapshot.
struct ColoView {
  struct Port {
    std::string name;  // primary_in, secondary_in, outdev, notify_dev
    std::string bound;
    bool connected = false;
    std::vector<std::pair<std::string, uint64_t>> counters;  // LOCKSTEP_PORT_COUNTERS
  };
  std::vector<Port> ports;
  std::vector<std::pair<std::string, uint64_t>> notify;  // the runner's notify counters
  ctrl::Json extra = ctrl::Json::object();  // checkpointer FSM, filter_rewriter, pool
};

class ColoCtrl final : public ctrl::DaemonControl {
 public:
  // The runner's side, called on the loop thread only.
  struct Host {
    virtual ~Host() = default;
    virtual Engine& compare_engine() = 0;
    virtual void view(ColoView& out) = 0;
    // A live settings change the engine accepted (the runner keeps its copy in step).
    virtual void settings_applied(const Settings& s) = 0;
  };

  // `log` and `events` may be null (no event log; no failover events).
  ColoCtrl(std::string id, ctrl::EventLog* log, ctrl::EventQueue* events);
  ~ColoCtrl() override;
  ColoCtrl(const ColoCtrl&) = delete;
  ColoCtrl& operator=(const ColoCtrl&) = delete;

  // How messages on stderr begin ("lockstep-colo", "lockstepd"); before the loop runs.
  void set_prog(std::string prog) { prog_ = std::move(prog); }

  // ---- loop thread ----
  // Set once before the loop runs (and before the ctrl server starts).
  void attach(Host& host, uint64_t now_ns);
  // Runs the queued operations, applies control-plane events (failover), publishes.
  void service(uint64_t now_ns);
  // A request taken from the engine and handed to the checkpoint FSM (coalesced: the
  // FSM had one outstanding for that epoch already).
  void on_request(const CheckpointRequest& r, bool coalesced, uint64_t now_ns);
  // The runner called engine.checkpoint_done(epoch).
  void on_done(uint64_t epoch, uint64_t now_ns);
  // A checkpoint not done within checkpoint_timeout.
  void on_timeout(uint64_t epoch, uint32_t attempt, uint64_t now_ns);
  // Stop: operations still queued are refused (their waiters give up, bounded); the
  // checkpoints of the run are summed up on stderr as `explain` groups them.
  void shutdown();

  // ---- ctrl threads: ctrl::DaemonControl ----
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

 private:
  using OpFn = std::function<void(uint64_t now_ns)>;
  bool post(OpFn fn, std::string* error);
  // Posts `fn` and waits until the loop ran it (at most 2 s).
  bool run_on_loop(OpFn fn, std::string& error);
  // Asks the loop for a fresh snapshot and waits for it a little (100 ms at most).
  void refresh();
  void publish(uint64_t now_ns);
  void log_settings_change(const Settings& before, const Settings& after);
  void log_ports();
  void log_drops(uint64_t now_ns);
  void apply_event(const ctrl::Event& e, uint64_t now_ns);

  std::string id_;
  std::string prog_ = "lockstep-colo";
  ctrl::EventLog* log_;
  ctrl::EventQueue* events_;
  Host* host_ = nullptr;

  mutable std::mutex mu_;
  std::vector<OpFn> ops_;  // ctrl threads -> loop
  bool stopped_ = false;
  // Published by the loop.
  Counters counters_{};
  uint64_t held_ = 0, epoch_ = 0;
  bool outstanding_ = false;
  Mode mode_ = Mode::colo;
  Settings settings_ = Settings::defaults();
  ColoView view_;
  uint64_t requested_ = 0, coalesced_ = 0, done_ = 0, timeouts_ = 0, ops_dropped_ = 0;
  uint64_t settings_refused_ = 0;
  std::string last_settings_error_;
  std::string last_reason_;
  LatencyHist checkpoint_hist_{};  // request to done, log2 us buckets
  uint64_t checkpoint_ns_ = 0;     // their sum
  bool failed_over_ = false;
  Survivor survivor_ = Survivor::primary;
  // stats --reset
  Counters base_counters_{};
  ColoView base_view_;
  uint64_t baseline_ns_ = 0;

  // Loop thread only.
  uint64_t next_publish_ns_ = 0, next_drops_ns_ = 0;
  uint64_t request_ns_ = 0;  // when the outstanding request was taken (0: none)
  std::map<std::string, bool> connected_logged_;
  std::map<std::string, uint64_t> drops_logged_;
  std::vector<ctrl::Event> batch_;
};

}  // namespace lockstep::chardev
