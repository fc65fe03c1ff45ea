// What the daemon (lockstepd) implements so that the ctrl commands can reach it. The
// handlers run on the ctrl server thread: every method must be safe to call from it and
// return promptly (talk to workers through their rings, never wait on a busy-poll lcore
// without a bound). tests/ctrl/fake_daemon.h holds a test double.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "compare/settings.h"
#include "compare/types.h"
#include "ctrl/json_limits.h"
#include "ctrl/metrics.h"

namespace lockstep::ctrl {

struct CaptureRequest {
  std::string port;      // ext, pvm, svm, host, link, or a port name the daemon knows
  std::string path;      // pcapng file to write; empty = the daemon's default
  uint64_t max_bytes = 64ull << 20;  // the capture stops at this size
  uint32_t snaplen = 65535;
  bool rx = true, tx = true;  // --direction rx|tx|both: frames received, transmitted
};

class DaemonControl {
 public:
  virtual ~DaemonControl() = default;

  // Mode, epoch, ports, workers, held frames... whatever the daemon shows in `status`.
  virtual Json status() = 0;
  // Counters (summed over workers, and per worker/port as the daemon likes). With
  // reset, they are zeroed after being read (the returned values are those before).
  virtual Json stats(bool reset) = 0;
  // Connections whose to_string(FlowKey) contains `filter` (empty: all), at most `limit`.
  virtual Json conns(const std::string& filter, size_t limit) = 0;
  // The settings snapshot in force.
  virtual Settings settings() = 0;
  // Publishes a validated snapshot to every worker (live, no packet lost). False +
  // error when it cannot apply (e.g. a capacity fixed at start).
  virtual bool apply_settings(const Settings& s, std::string& error) = 0;
  // An operator asks for a checkpoint (CheckpointReason::manual).
  virtual bool request_checkpoint(std::string& error) = 0;
  virtual bool set_mode(Mode m, std::string& error) = 0;
  virtual bool capture_start(const CaptureRequest& r, Json& result, std::string& error) = 0;
  virtual bool capture_stop(const std::string& port, Json& result, std::string& error) = 0;
  // The daemon's metric samples (engine counters per worker, ports...).
  virtual void metrics(std::vector<MetricSample>& out) = 0;
  // Extra build facts for `version` (DPDK version...).
  virtual Json version() { return Json::object(); }
};

}  // namespace lockstep::ctrl
