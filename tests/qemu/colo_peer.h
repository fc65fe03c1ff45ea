// The outside of a colo-compare instance, QEMU's or lockstep-colo's: start it on four
// unix sockets in a directory, connect as QEMU's filters would (primary_in and
// secondary_in written, outdev read) and as the checkpointer on notify_dev (each
// DO_CHECKPOINT answered with COLO_CHECKPOINT after a delay; requests that arrive while
// one is being answered are coalesced, as QEMU's migration thread coalesces them).
// Shared by the differential suite and bench_qemu.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace lockstep::qtest {

uint64_t now_ns();
void sleep_until_ns(uint64_t t);

// The QEMU binary (QEMU_SYSTEM or qemu-system-x86_64 on PATH), or "" when missing.
std::string find_qemu();

struct Instance {
  Instance() = default;
  Instance(std::string n, std::string d) : name(std::move(n)), dir(std::move(d)) {}
  std::string name;   // "qemu", "lockstep", ...
  std::string dir;    // sockets dir-name-{pri,sec,out,ntf}
  pid_t pid = -1;
  std::string log;    // stdout+stderr of the process
  std::string path(const char* sock) const { return dir + "/" + name + "-" + sock; }
};

struct QemuOptions {
  uint32_t compare_timeout_ms = 3000;
  uint32_t expired_scan_cycle_ms = 1000;
  uint32_t max_queue_size = 1024;
  bool vnet_hdr = false;
};

// Starts qemu-system-x86_64 -machine none with one colo-compare object (colo-anchors.md
// Appendix A) on unix sockets.
bool start_qemu(Instance& inst, const std::string& qemu, const QemuOptions& o, std::string& error);
// Starts lockstep with server sockets and the given extra properties. `cmd` is the
// binary, optionally followed by words separated by spaces that come before the
// properties: "lockstep-colo" or "lockstepd --colo-compare".
bool start_lockstep(Instance& inst, const std::string& cmd, const std::vector<std::string>& props,
                    std::string& error);
// `cmd` split at spaces.
std::vector<std::string> command_words(const std::string& cmd);
// Starts lockstep with exactly these properties (no sockets of its own); its output goes
// to dir/NAME.log.
bool spawn_lockstep(Instance& inst, const std::string& cmd, const std::vector<std::string>& props,
                    std::string& error);
// SIGTERM (SIGKILL after 3 s). Returns the process's output (lockstep-colo prints its
// statistics line last).
std::string stop(Instance& inst);

struct Rx {
  uint64_t t_ns;
  uint32_t len;
  uint32_t tag;  // be32 at the configured tag offset (bench), else 0
};

class Peer {
 public:
  ~Peer();
  // Connects to the four sockets (retrying until `timeout_ms`).
  bool connect(const Instance& inst, bool vnet, std::string& error, int timeout_ms = 10000);
  // Sends COLO_USERSPACE_PROXY_INIT and waits for COLO_COMPARE_GET_XEN_INIT.
  bool hello(std::string& error, int timeout_ms = 3000);

  // Starts the reader thread. keep_bytes: keep every released frame's bytes (suite);
  // tag_off: where the bench's be32 tag sits in the frame (0 = none).
  void start(uint64_t answer_delay_ns, bool keep_bytes, uint32_t tag_off = 0);
  void stop_reader();
  // Without a reader thread (the bench: one thread, so that the driver never competes
  // with the instance under test for a core by spinning): configure once, then pump()
  // waits up to timeout_ms for outdev or notify_dev, reads what is there, answers a due
  // DO_CHECKPOINT; true when frames were released. Rx::t_ns is when poll() returned.
  void configure(uint64_t answer_delay_ns, bool keep_bytes, uint32_t tag_off = 0);
  bool pump(int timeout_ms);

  // Blocking writes of one framed frame (or of many, pre-framed, in one write).
  bool send_pvm(const uint8_t* f, uint32_t len) { return send_frame(pri_, f, len); }
  bool send_svm(const uint8_t* f, uint32_t len) { return send_frame(sec_, f, len); }
  bool send_raw(bool svm, const uint8_t* p, size_t len);
  void append_framed(std::vector<uint8_t>& buf, const uint8_t* f, uint32_t len) const;

  // Counters, readable while the reader runs.
  uint64_t released() const { return released_.load(); }
  uint64_t do_checkpoints() const { return do_ckpt_.load(); }
  uint64_t answered() const { return answered_.load(); }
  uint64_t last_activity_ns() const { return last_activity_.load(); }
  bool answer_pending() const { return answer_at_.load() != 0; }
  bool broken() const { return broken_.load(); }

  // After stop_reader() (or under the lock while running).
  std::vector<std::vector<uint8_t>> frames;  // keep_bytes
  std::vector<Rx> rx;
  std::mutex mu;

 private:
  bool send_frame(int fd, const uint8_t* f, uint32_t len);
  void run();

  int pri_ = -1, sec_ = -1, out_ = -1, ntf_ = -1;
  bool vnet_ = false, keep_ = false;
  uint32_t tag_off_ = 0;
  uint64_t delay_ = 0;
  std::vector<uint8_t> ob_, nb_;  // outdev and notify_dev bytes not yet parsed
  size_t ob_len_ = 0;
  uint32_t spins_ = 0;
  std::thread th_;
  std::atomic<bool> stop_{false}, broken_{false};
  std::atomic<uint64_t> released_{0}, do_ckpt_{0}, answered_{0}, last_activity_{0}, answer_at_{0};
};

}  // namespace lockstep::qtest
