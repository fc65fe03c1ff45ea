// `lockstepctl capture start|stop`: the frames a port receives and the frames lockstepd
// transmits on it, written to a pcapng file by a thread of its own, bounded in size.
//
// Workers copy the frames of a captured port into its byte ring (capture_tap.h): received
// bursts as they are read, transmitted bursts as they are handed to the port's tx burst
// (only the frames the device took). This thread drains the rings about every
// millisecond and writes pcapng: a Section Header Block, one Interface Description Block
// per direction captured (if_name "PORT-rx" / "PORT-tx", if_tsresol nanoseconds), then
// one Enhanced Packet Block per frame with epb_flags inbound (rx) or outbound (tx), in
// the order the workers captured them. Timestamps are the TSC of the burst, turned into
// wall-clock time. The capture ends by itself at max_bytes (stopped_at_max_bytes); a
// frame that found the ring full is counted (copies_dropped), the frame itself never
// affected.
//
// Files go only into one directory (`ctrl.capture_dir`, default /var/lib/lockstep/capture):
// the request names a file, never a path (no '/', no leading '.'), and the file is created
// new (O_CREAT|O_EXCL|O_NOFOLLOW, opened relative to the directory), mode 0640, group the
// ctrl group, so a member of that group can neither overwrite a file of root's nor plant
// a symlink, and other local users cannot read the captured traffic.
#pragma once

#include <array>
#include <atomic>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "dataplane/daemon/daemon_ctl.h"
#include "dataplane/edge/capture_tap.h"
#include "dataplane/edge/dataplane.h"

namespace lockstep::dp {

class Capture final : public DaemonCtl::CaptureHooks {
 public:
  struct Options {
    size_t ring_bytes = 4u << 20;  // per captured port; a power of two
    bool writer_thread = true;     // false (tests): the rings are drained only by stop()
    std::string dir = kDefaultCaptureDir;  // every capture file goes here
    long gid = -1;                 // group of the files (the ctrl group); -1: ours
  };
  static constexpr const char* kDefaultCaptureDir = "/var/lib/lockstep/capture";
  // A capture file name as a request may give it: false with `error` saying why not.
  static bool valid_name(const std::string& name, std::string& error);
  explicit Capture(const Dataplane& dp) : Capture(dp, Options{}) {}
  Capture(const Dataplane& dp, Options o) : dp_(dp), opt_(o) {}
  ~Capture() override;
  Capture(const Capture&) = delete;
  Capture& operator=(const Capture&) = delete;

  bool start(const ctrl::CaptureRequest& r, int guest, ctrl::Json& result,
             std::string& error) override;
  bool start(const ctrl::CaptureRequest& r, ctrl::Json& result, std::string& error) {
    return start(r, -1, result, error);
  }
  // Empty port: every capture under way.
  bool stop(const std::string& port, ctrl::Json& result, std::string& error) override;

 private:
  struct Active {
    bool on = false;
    std::FILE* f = nullptr;
    std::string path;
    uint64_t max_bytes = 0, bytes = 0, frames = 0, frames_rx = 0, frames_tx = 0;
    uint64_t dropped_at_start = 0;
    uint32_t gen = 0;
    int if_rx = -1, if_tx = -1;  // interface ids in the file
    bool full = false;           // max_bytes reached: stopped by itself
    bool write_error = false;
  };
  void run();
  bool drain(unsigned role);  // mu_ held; false: stopped at a record being filled
  ctrl::Json finish(unsigned role);  // mu_ held
  uint64_t tsc_to_unix_ns(uint64_t tsc) const;

  const Dataplane& dp_;
  Options opt_;
  std::mutex mu_;
  std::array<Active, kPortRoleCount> act_{};
  std::array<std::unique_ptr<CaptureRing>, kPortRoleCount> rings_{};
  // Every per-guest filter handed to a ring, kept as long as the rings (a worker may
  // still read one it loaded just before a stop).
  std::vector<std::unique_ptr<CaptureGuestFilter>> filters_;
  uint64_t base_tsc_ = 0, base_unix_ns_ = 0, tsc_hz_ = 1;
  std::thread thread_;
  std::atomic<bool> stop_{false};
};

}  // namespace lockstep::dp
