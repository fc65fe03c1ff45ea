// `lockstepctl capture start|stop`: the frames received on a port, written to a pcap
// file (classic libpcap format, Ethernet) by a thread of its own, bounded in size.
// Workers copy each received burst of a captured port into a ring (control.h,
// CaptureTap); this thread drains the rings and writes. Timestamps are taken when the
// frames are written (within about a millisecond of their arrival). A full ring or an
// empty capture pool drops the copy, counted; the frame itself is never affected.
#pragma once

#include <rte_mempool.h>
#include <rte_ring.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>

#include "dataplane/daemon_control.h"
#include "dataplane/dataplane.h"

namespace lockstep::dp {

class Capture final : public DaemonCtl::CaptureHooks {
 public:
  explicit Capture(const Dataplane& dp) : dp_(dp) {}
  ~Capture() override;
  Capture(const Capture&) = delete;
  Capture& operator=(const Capture&) = delete;

  bool start(const ctrl::CaptureRequest& r, ctrl::Json& result, std::string& error) override;
  // Empty port: every capture under way.
  bool stop(const std::string& port, ctrl::Json& result, std::string& error) override;

 private:
  struct Active {
    bool on = false;
    std::FILE* f = nullptr;
    std::string path;
    uint64_t max_bytes = 0, bytes = 0, frames = 0;
    uint64_t dropped_at_start = 0;
    bool full = false;  // max_bytes reached: stopped by itself
  };
  void run();
  void drain(unsigned role, bool write);
  ctrl::Json finish(unsigned role);  // mu_ held

  const Dataplane& dp_;
  std::mutex mu_;
  std::array<Active, kRoleCount> act_{};
  std::array<rte_ring*, kRoleCount> rings_{};
  rte_mempool* pool_ = nullptr;
  std::thread thread_;
  std::atomic<bool> stop_{false};
};

}  // namespace lockstep::dp
