// Chardev mode: lockstep as a drop-in for QEMU's colo-compare object. One compare engine
// and one epoll loop over QEMU's four chardev sockets:
//
//   primary_in ──frames──► engine (Side::pvm) ──release──► output queue ──► outdev
//   secondary_in ─frames─► [SynAligner, with filter_rewriter] ─► engine (Side::svm)
//   engine checkpoint request ──► CheckpointFsm ──► "DO_CHECKPOINT" on notify_dev
//   "COLO_CHECKPOINT" on notify_dev ──► engine.checkpoint_done(epoch)
//
// Frames live in a fixed FramePool from the socket read until the engine names their
// handle (and, for a release, until outdev has taken every byte). Nothing is dropped
// for lack of room: an empty pool stops reading the input that needs a buffer, and an
// output queue above `out_queue_frames` stops reading primary_in and secondary_in
// (backpressure toward QEMU's filters), both counted. Sockets reconnect (client) or accept a new
// peer (server). Single-threaded; the only clock read is monotonic_ns() in the loop.
#pragma once

#include <signal.h>

#include <cstdint>
#include <memory>
#include <string>

#include "compare/settings.h"
#include "ctrl/checkpoint_fsm.h"
#include "dataplane/chardev/socket_port.h"

namespace lockstep::chardev {

class ColoCtrl;

struct RunnerConfig {
  std::string id = "colo-compare";
  PortSpec primary_in, secondary_in, outdev;
  bool has_notify = false;
  PortSpec notify_dev;
  bool vnet_hdr = false;         // colo-compare's vnet_hdr_support
  bool filter_rewriter = true;   // the SVM's stream went through filter-rewriter
  Settings settings = Settings::defaults();
  uint32_t jumbo_frames = 256;   // buffers for frames over 2 KiB
  uint32_t out_queue_frames = 4096;  // above this, primary_in is not read
  // After the last socket event, keep polling (epoll_wait with no wait) this long before
  // sleeping: a frame that comes within it is handled without a wake-up (QEMU's
  // iothreads poll the same way, poll-max-ns, 32 us by default). 0: always sleep.
  uint32_t poll_us = 50;
  ctrl::CheckpointPolicy policy;     // periodic off unless asked; retry on timeout
};

class ColoRunner {
 public:
  // Builds the engine, the pool and the ports; server ports listen on return.
  static std::unique_ptr<ColoRunner> create(const RunnerConfig& cfg, std::string& error);
  ~ColoRunner();
  ColoRunner(const ColoRunner&) = delete;
  ColoRunner& operator=(const ColoRunner&) = delete;

  // Runs until SIGINT or SIGTERM (then releases held PVM output as QEMU's object-del
  // does, writes what outdev takes within a second, and returns 0). SIGUSR1 prints the
  // statistics line on stdout.
  int run();
  // Blocks the signals run() takes through its signalfd (SIGINT, SIGTERM, SIGQUIT,
  // SIGUSR1, SIGHUP) in the calling thread; threads started after it (the ctrl server,
  // the metrics listener) inherit the mask, so that no signal reaches them. run() calls
  // it too. The set is returned in `set` when not null.
  static void block_signals(sigset_t* set = nullptr);

  // One JSON object: engine counters, per-port counters, notify, pool, aligner.
  std::string stats_json() const;
  // Where a server port listens ("primary_in", ...), e.g. to learn a TCP port 0.
  std::string bound(const std::string& port) const;
  // The ctrl side (ctrl socket, metrics): before run(); it must outlive run(). The loop
  // then serves its operations at least every 10 ms and logs checkpoints to it.
  void set_ctrl(ColoCtrl* ctl);

  struct Impl;

 private:
  explicit ColoRunner(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace lockstep::chardev
