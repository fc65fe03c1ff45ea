// The corosync adapter of ClusterCore (ctrl/cluster.h): joins a CPG group, multicasts
// the core's messages CPG_TYPE_AGREED (totally ordered), feeds it the group's
// configuration changes and deliveries and votequorum's quorum notifications, watches one
// network interface's operstate for "yellow", and turns the core's decisions into a
// FailoverController decision and `cluster` events. Thin I/O only: every rule is in the
// core. Its own thread; reconnects to corosync every reconnect_ns while it is away.
// Built only when libcpg and libquorum are found (meson option `corosync`).
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "ctrl/cluster.h"
#include "ctrl/events.h"
#include "ctrl/heartbeat.h"

namespace lockstep::ctrl {

struct ClusterCpgConfig {
  std::string group;                   // CPG group name (one per guest), at most 127 bytes
  ClusterCoreConfig core;
  std::string watch;                   // interface whose link is watched; empty: none
  uint64_t reconnect_ns = 1'000'000'000;
};

class ClusterCpg final : public ClusterControl {
 public:
  ClusterCpg(ClusterCpgConfig cfg, EventQueue& events, FailoverController& failover);
  ~ClusterCpg() override;
  ClusterCpg(const ClusterCpg&) = delete;
  ClusterCpg& operator=(const ClusterCpg&) = delete;

  // Starts the thread. corosync need not be running yet (it is retried); false only for
  // a bad configuration.
  bool start(std::string& error);
  // Sends SHUTDOWN (best effort: a stop is not a failure), leaves the group, joins the thread.
  void stop();

  Json status(uint64_t now_ns) override;
  bool request_failover(const std::string& cause, std::string& error) override;

  // For the adapter's C callbacks.
  void on_deliver(uint32_t nodeid, uint32_t pid, const void* msg, size_t len);
  void on_confchg(const void* members, size_t n_members, const void* left, size_t n_left,
                  const void* joined, size_t n_joined);
  void on_quorum(bool quorate, const uint32_t* view, size_t n);

 private:
  void run();
  bool connect(uint64_t now_ns);
  void disconnect(uint64_t now_ns, const std::string& why);
  void flush(uint64_t now_ns);
  void apply(ClusterCore::Output& o, uint64_t now_ns);
  void note(const std::string& text, uint64_t now_ns);
  bool link_down() const;

  ClusterCpgConfig cfg_;
  EventQueue& events_;
  FailoverController& failover_;
  std::mutex mu_;  // guards core_ (the thread and ctrl commands)
  ClusterCore core_;
  uint64_t cpg_ = 0, quorum_ = 0;  // corosync handles (cpg_handle_t, quorum_handle_t)
  bool connected_ = false;         // the thread's own
  int wake_ = -1;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> connected_seen_{false};
  std::atomic<uint64_t> connects_{0}, disconnects_{0}, send_errors_{0}, try_again_{0},
      refused_{0};
};

}  // namespace lockstep::ctrl
