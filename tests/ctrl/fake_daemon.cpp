#include "fake_daemon.h"

#include <algorithm>

#include "ctrl/net.h"

namespace lockstep::ctrl::testing {

namespace {
const char* const kConns[] = {
    "tcp 10.0.0.1:80 <-> 10.0.0.2:41000",
    "tcp 10.0.0.1:443 <-> 10.0.0.3:52000",
    "udp 10.0.0.1:53 <-> 10.0.0.2:33000",
};
const char* const kPorts[] = {"ext", "pvm", "svm", "host", "link"};
}  // namespace

FakeDaemon::FakeDaemon() : current(Settings::defaults()) {
  counters.pvm_in = 100;
  counters.svm_in = 98;
  counters.held_pvm = 2;
  counters.released[static_cast<unsigned>(ReleaseReason::matched)] = 98;
  counters.checkpoint_reason[static_cast<unsigned>(CheckpointReason::payload_mismatch)] = 1;
}

Json FakeDaemon::status() {
  std::lock_guard lock(mu);
  return {{"mode", to_string(mode)}, {"workers", 1}, {"held_pvm", counters.held_pvm},
          {"test_double", true}};
}

Json FakeDaemon::stats(bool reset) {
  std::lock_guard lock(mu);
  Json j = Json::object();
  for (const auto& [k, v] : counters.flatten()) j[k] = v;
  if (reset) {
    counters = Counters{};
    ++resets;
  }
  return j;
}

Json FakeDaemon::conns(const std::string& filter, size_t limit) {
  Json a = Json::array();
  for (const char* c : kConns) {
    if (a.size() >= limit) break;
    if (!filter.empty() && std::string(c).find(filter) == std::string::npos) continue;
    a.push_back({{"flow", c}, {"state", "established"}, {"held_pvm", 0}});
  }
  return a;
}

Settings FakeDaemon::settings() {
  std::lock_guard lock(mu);
  return current;
}

bool FakeDaemon::apply_settings(const Settings& s, std::string& error) {
  std::lock_guard lock(mu);
  if (s.max_connections != current.max_connections) {
    error = "max_connections is fixed at start (restart to change it)";
    return false;
  }
  current = s;
  ++settings_applied;
  return true;
}

bool FakeDaemon::request_checkpoint(std::string&) {
  std::lock_guard lock(mu);
  ++checkpoints_requested;
  if (coordinator != nullptr) {
    CheckpointRequest r;
    r.epoch = coordinator->epoch();
    r.reason = CheckpointReason::manual;
    r.t_ns = monotonic_ns();
    coordinator->on_request(r);
  }
  return true;
}

bool FakeDaemon::set_mode(Mode m, std::string&) {
  std::lock_guard lock(mu);
  mode = m;
  return true;
}

bool FakeDaemon::capture_start(const CaptureRequest& r, Json& result, std::string& error) {
  std::lock_guard lock(mu);
  if (std::find(std::begin(kPorts), std::end(kPorts), r.port) == std::end(kPorts)) {
    error = "unknown port '" + r.port + "' (ext, pvm, svm, host, link)";
    return false;
  }
  if (std::find(capturing.begin(), capturing.end(), r.port) != capturing.end()) {
    error = "port " + r.port + " is already being captured";
    return false;
  }
  capturing.push_back(r.port);
  result = {{"port", r.port},
            {"file", r.path.empty() ? "/tmp/lockstep-" + r.port + ".pcapng" : r.path},
            {"max_bytes", r.max_bytes},
            {"snaplen", r.snaplen},
            {"direction", r.rx && r.tx ? "both" : r.rx ? "rx" : "tx"}};
  return true;
}

bool FakeDaemon::capture_stop(const std::string& port, Json& result, std::string& error) {
  std::lock_guard lock(mu);
  if (port.empty()) {
    result = {{"stopped", capturing}};
    capturing.clear();
    return true;
  }
  auto it = std::find(capturing.begin(), capturing.end(), port);
  if (it == capturing.end()) {
    error = "no capture on port '" + port + "'";
    return false;
  }
  capturing.erase(it);
  result = {{"stopped", Json::array({port})}};
  return true;
}

void FakeDaemon::metrics(std::vector<MetricSample>& out) {
  std::lock_guard lock(mu);
  append_engine_counters(counters, {{"worker", "0"}}, out);
}

Json FakeDaemon::version() { return {{"daemon", "test double"}}; }

}  // namespace lockstep::ctrl::testing
