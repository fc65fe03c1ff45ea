// Helpers for the QMP link tests: a coordinator fixture with event waits, and a scripted
// QMP peer (a unix socket server run from the test thread) for the replay tests.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "ctrl/checkpointer_link.h"
#include "test_util.h"

namespace lockstep::ctrl::testing {

inline constexpr uint64_t kQmpMs = 1'000'000;

class QmpLinkFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    cfg_.dialect = Dialect::qmp;
    cfg_.reconnect_ns = 50 * kQmpMs;
    cfg_.reconnect_max_ns = 400 * kQmpMs;
    cfg_.qmp_answer_timeout_ns = 2000 * kQmpMs;
    cfg_.qmp_poll_ns = 200 * kQmpMs;
    cfg_.policy.max_epoch_ns = 0;
    cfg_.policy.done_timeout_ns = 5000 * kQmpMs;
    cfg_.policy.on_timeout = TimeoutPolicy::alarm;
    cfg_.checkpointer_peer.name.clear();
  }
  void TearDown() override {
    if (coord_) coord_->stop();
  }
  void start_link(const std::string& sock) {
    std::string error;
    ASSERT_TRUE(parse_endpoint("unix:" + sock, cfg_.endpoint, error)) << error;
    coord_ = std::make_unique<CheckpointCoordinator>(cfg_, events_, failover_);
    ASSERT_TRUE(coord_->start(error)) << error;
  }
  bool wait_event(EventKind kind, Event* out = nullptr, int timeout_ms = 10000) {
    return wait_for(
        [&] {
          events_.drain(seen_);
          taken_.resize(seen_.size());
          for (size_t i = 0; i < seen_.size(); ++i) {
            if (seen_[i].kind == kind && !taken_[i]) {
              taken_[i] = true;
              if (out != nullptr) *out = seen_[i];
              return true;
            }
          }
          return false;
        },
        timeout_ms);
  }
  size_t count_events(EventKind kind) {
    events_.drain(seen_);
    size_t n = 0;
    for (const auto& e : seen_) n += e.kind == kind;
    return n;
  }
  void request(uint64_t epoch) {
    CheckpointRequest q;
    q.epoch = epoch;
    q.reason = CheckpointReason::payload_mismatch;
    coord_->on_request(q);
  }
  Json qemu_counters() { return coord_->status()["qemu"]["counters"]; }
  uint64_t qemu_counter(const char* name) { return qemu_counters()[name].get<uint64_t>(); }
  uint64_t link_counter(const char* name) { return coord_->status()["link"][name].get<uint64_t>(); }

  LinkConfig cfg_;
  EventQueue events_;
  FailoverController failover_{&events_};
  std::unique_ptr<CheckpointCoordinator> coord_;
  std::vector<Event> seen_;
  std::vector<bool> taken_;
};

// A QMP peer that says what the test tells it to, line by line (replaying QEMU's own
// messages where the tests need QEMU states that a real QEMU cannot reach here).
class ScriptedQmpPeer {
 public:
  bool listen(const std::string& path) {
    Endpoint ep;
    std::string error;
    if (!parse_endpoint("unix:" + path, ep, error)) return false;
    lfd_ = listen_endpoint(ep, error, 0600);
    return lfd_.valid();
  }
  bool accept(int timeout_ms = 10000) {
    pollfd p{lfd_.get(), POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) return false;
    int fd = accept4(lfd_.get(), nullptr, nullptr, SOCK_CLOEXEC);
    conn_ = Fd(fd);
    buf_.clear();
    return conn_.valid();
  }
  bool send(const std::string& text) {
    return ::send(conn_.get(), text.data(), text.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(text.size());
  }
  // Reads the next command; null on timeout.
  Json command(int timeout_ms = 10000) {
    std::string line = read_line(conn_.get(), buf_, timeout_ms);
    if (line.empty()) return nullptr;
    return Json::parse(line, nullptr, false);
  }
  // Reads a command, checks its name, answers with `ret` echoing its id.
  Json expect_and_return(const std::string& name, const std::string& ret_json) {
    Json c = command();
    EXPECT_TRUE(c.is_object()) << "no command (expected " << name << ")";
    if (!c.is_object()) return c;
    EXPECT_EQ(c.value("execute", ""), name);
    send("{\"return\": " + ret_json + ", \"id\": " + c["id"].dump() + "}\r\n");
    return c;
  }
  void drop() { conn_.reset(); }

 private:
  Fd lfd_, conn_;
  std::string buf_;
};

// QEMU 7.2's exact lines (Debian 12's qemu-system-x86 7.2.22), captured from a real QEMU.
inline const char* kQemu72Greeting =
    "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 22, \"minor\": 2, \"major\": 7}, "
    "\"package\": \"Debian 1:7.2+dfsg-7+deb12u18+b3\"}, \"capabilities\": [\"oob\"]}}\r\n";
inline const char* kQemu72Version =
    "{\"qemu\": {\"micro\": 22, \"minor\": 2, \"major\": 7}, \"package\": \"Debian 1:7.2+dfsg-7+deb12u18+b3\"}";
inline const char* kColoPrimary = "{\"last-mode\": \"none\", \"mode\": \"primary\", \"reason\": \"none\"}";
inline const char* kColoNone = "{\"last-mode\": \"primary\", \"mode\": \"none\", \"reason\": \"request\"}";
inline const char* kMigrateParams =
    "{\"cpu-throttle-tailslow\": false, \"xbzrle-cache-size\": 67108864, \"cpu-throttle-initial\": 20, "
    "\"announce-max\": 550, \"decompress-threads\": 2, \"compress-threads\": 8, \"compress-level\": 1, "
    "\"multifd-channels\": 2, \"multifd-zstd-level\": 1, \"announce-initial\": 50, "
    "\"block-incremental\": false, \"compress-wait-thread\": true, \"downtime-limit\": 300, "
    "\"tls-authz\": \"\", \"multifd-compression\": \"none\", \"announce-rounds\": 5, "
    "\"announce-step\": 100, \"tls-creds\": \"\", \"multifd-zlib-level\": 1, \"max-cpu-throttle\": 99, "
    "\"max-postcopy-bandwidth\": 0, \"tls-hostname\": \"\", \"throttle-trigger-threshold\": 50, "
    "\"max-bandwidth\": 134217728, \"x-checkpoint-delay\": 20000, \"cpu-throttle-increment\": 10}";
inline std::string qmp_event(const std::string& name, const std::string& data = {}) {
  std::string s = "{\"timestamp\": {\"seconds\": 1796528678, \"microseconds\": 558890}, \"event\": \"" + name + "\"";
  if (!data.empty()) s += ", \"data\": " + data;
  return s + "}\r\n";
}

}  // namespace lockstep::ctrl::testing
