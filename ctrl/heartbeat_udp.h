// Heartbeats between appliances (lockstepd on the PVM host <-> lockstepd on the SVM host)
// over UDP: one datagram per interval to each peer, the native protocol's heartbeat
// message with the sender's name ({"type":"heartbeat","seq":N,"time_ns":T,"name":"a"}).
// Received heartbeats are handed to a callback (CheckpointCoordinator::beat), which
// feeds the HeartbeatMonitor. Its own thread; thin I/O only. Send it over more than one
// path (several peers entries with the same name) to tell a cut link from a dead host.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "ctrl/metrics.h"
#include "ctrl/net.h"

namespace lockstep::ctrl {

struct HeartbeatUdpConfig {
  std::string name;                // ours, in every datagram
  Endpoint bind;                   // host:port to receive on (port 0: any)
  std::vector<Endpoint> send_to;   // where our heartbeats go
  uint64_t interval_ns = 100'000'000;
};

class HeartbeatUdp {
 public:
  using OnBeat = std::function<void(const std::string& peer, uint64_t seq)>;

  HeartbeatUdp(HeartbeatUdpConfig cfg, OnBeat on_beat)
      : cfg_(std::move(cfg)), on_beat_(std::move(on_beat)) {}
  ~HeartbeatUdp() { stop(); }
  HeartbeatUdp(const HeartbeatUdp&) = delete;
  HeartbeatUdp& operator=(const HeartbeatUdp&) = delete;

  bool start(std::string& error);
  void stop();
  uint16_t port() const { return port_; }
  // Stops or resumes sending (receiving goes on); for tests and maintenance.
  void pause_sending(bool paused) { paused_ = paused; }
  void metrics(std::vector<MetricSample>& out) const;

  uint64_t sent() const { return sent_.load(); }
  uint64_t received() const { return received_.load(); }
  uint64_t invalid() const { return invalid_.load(); }

 private:
  void run();

  HeartbeatUdpConfig cfg_;
  OnBeat on_beat_;
  Fd fd_;
  int wake_ = -1;
  std::thread thread_;
  uint16_t port_ = 0;
  std::atomic<bool> paused_{false};
  std::atomic<uint64_t> sent_{0}, received_{0}, invalid_{0}, send_errors_{0};
};

}  // namespace lockstep::ctrl
