// A minimal HTTP/1.1 responder for Prometheus scrapes: GET /metrics answers the text
// exposition format, GET /health "ok", anything else 400/404/405/505. Its own thread,
// poll(), bounded requests (8 KiB), bounded clients, a per-connection deadline (2 s for
// the request, 5 s in all); loopback by default. It always accepts: at the client bound
// the oldest client still sending its request is closed, so slow or silent clients cannot
// delay a scrape (tests/ctrl/test_metrics.cpp holds it to that with 40 trickling
// clients). It stays in place of a library server such as cpp-httplib, whose fixed
// thread pool (a thread per connection until its read timeout) lets as many trickling
// clients as it has threads hold every scrape back.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>

#include "ctrl/net.h"

namespace lockstep::ctrl {

inline constexpr std::string_view kDefaultMetricsListen = "tcp:127.0.0.1:9469";

class MetricsHttpServer {
 public:
  // `render` is called on the server thread for each scrape; it must be thread-safe.
  explicit MetricsHttpServer(std::function<std::string()> render) : render_(std::move(render)) {}
  ~MetricsHttpServer() { stop(); }
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  // GET /health: 200 "ok" while `check` returns nothing, else 503 with what it returns
  // (why the daemon is not healthy). Called on the server thread: thread-safe. Set
  // before start; without one /health is always 200.
  void set_health(std::function<std::string()> check) { health_check_ = std::move(check); }

  bool start(const Endpoint& ep, std::string& error);
  // The same on a listening socket handed over by systemd (socket activation); the
  // server owns `fd` from here.
  bool start_on(int fd, std::string& error);
  void stop();
  // The bound TCP port (useful with port 0).
  uint16_t port() const { return port_; }
  uint64_t scrapes() const { return scrapes_.load(); }
  uint64_t bad_requests() const { return bad_.load(); }
  uint64_t health_checks() const { return health_.load(); }
  // Clients closed for a request not sent in time, and to make room for a new client.
  uint64_t timed_out() const { return timed_out_.load(); }
  uint64_t evicted() const { return evicted_.load(); }

 private:
  void run();
  bool start_thread(std::string& error);

  std::function<std::string()> render_;
  std::function<std::string()> health_check_;
  Fd listen_;
  int wake_[2] = {-1, -1};
  std::thread thread_;
  uint16_t port_ = 0;
  std::atomic<uint64_t> scrapes_{0}, bad_{0}, health_{0}, timed_out_{0}, evicted_{0};
};

}  // namespace lockstep::ctrl
