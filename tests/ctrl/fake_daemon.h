// A TEST DOUBLE of the daemon side of the ctrl socket (DaemonControl). The real daemon
// (lockstepd, dataplane/) is built in parallel; this double keeps settings, mode,
// counters, a few connections and captures in memory so that every ctrl command can be
// exercised over a real socket. It records what it was asked.
#pragma once

#include <mutex>
#include <string>
#include <vector>

#include "compare/counters.h"
#include "ctrl/checkpointer_link.h"
#include "ctrl/daemon_control.h"

namespace lockstep::ctrl::testing {

class FakeDaemon : public DaemonControl {
 public:
  FakeDaemon();

  Json status() override;
  Json stats(bool reset) override;
  Json conns(const std::string& filter, size_t limit) override;
  Settings settings() override;
  bool apply_settings(const Settings& s, std::string& error) override;
  bool request_checkpoint(std::string& error) override;
  bool set_mode(Mode m, std::string& error) override;
  bool capture_start(const CaptureRequest& r, Json& result, std::string& error) override;
  bool capture_stop(const std::string& port, Json& result, std::string& error) override;
  void metrics(std::vector<MetricSample>& out) override;
  Json version() override;

  // When set, `checkpoint` goes to it as a manual request (as lockstepd would route the
  // engine's request).
  CheckpointCoordinator* coordinator = nullptr;

  std::mutex mu;
  Settings current;
  Mode mode = Mode::colo;
  Counters counters;
  std::vector<std::string> capturing;
  int checkpoints_requested = 0;
  int settings_applied = 0;
  int resets = 0;
};

}  // namespace lockstep::ctrl::testing
