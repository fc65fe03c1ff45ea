// The ctrl socket: a unix stream socket carrying one JSON object per line.
//   request  {"command": "config set", "args": ["compare_timeout_us=5000"], "id": 7}
//            (the command may also be split: {"command": "config", "args": ["set", ...]})
//   reply    {"ok": true, "result": {...}, "id": 7}
//            {"ok": false, "error": "...", "id": 7}
// Socket mode 0660 with a configurable group; an optional read-only socket where state-
// changing commands are refused; SO_PEERCRED logged for every state-changing command.
// Bounded line length, JSON depth, output backlog per client and idle time; clients per
// socket (the world-usable read-only socket has a limit of its own, so filling it cannot
// lock the admin socket out) and per uid (root exempt); a client that sends nothing is
// closed after a few seconds. A refused client is told why in one reply line. Its own
// thread with epoll, non-blocking I/O: a slow or junk client never stalls anything.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <memory>
#include <thread>
#include <unordered_map>
#include <vector>

#include "ctrl/command_registry.h"
#include "ctrl/metrics.h"
#include "ctrl/net.h"

namespace lockstep::ctrl {

struct CtrlServerConfig {
  std::string socket_path;            // admin socket (required)
  unsigned mode = 0660;
  std::string group;                  // group name or number; empty = the daemon's
  std::string ro_socket_path;         // read-only socket; empty = none
  unsigned ro_mode = 0666;
  size_t max_message = 64 * 1024;     // one request line
  size_t max_depth = 32;              // JSON nesting
  size_t max_args = 256;
  size_t max_clients = 64;            // admin socket
  size_t max_ro_clients = 64;         // read-only socket (its own: it cannot fill the admin's)
  size_t max_clients_per_uid = 8;     // per socket and uid, but for `cap_exempt_uid`
  long cap_exempt_uid = 0;            // root is never held to the per-uid cap; -1: nobody
  size_t max_backlog = 4 << 20;       // reply bytes queued to one client
  uint64_t idle_timeout_ns = 300'000'000'000;      // after the last request
  uint64_t first_request_timeout_ns = 5'000'000'000;  // a client that has sent nothing yet
  // Listening sockets handed over by systemd (socket activation), non-blocking: used in
  // place of making socket_path / ro_socket_path (the server owns them from start(); their
  // files belong to the socket unit and stay). -1: none.
  int listen_fd = -1;
  int ro_listen_fd = -1;
};

#define LOCKSTEP_CTRL_SERVER_COUNTERS(X)                                           \
  X(clients_accepted, "clients accepted")                                          \
  X(clients_rejected, "clients refused because the client limit was reached")     \
  X(clients_rejected_uid, "clients refused because their uid had too many connections") \
  X(silent_clients_closed, "clients closed because they sent no request in time") \
  X(requests, "requests handled")                                                  \
  X(replies_error, "requests answered with an error")                             \
  X(malformed, "requests that were not valid JSON or not a request object")      \
  X(oversize, "requests longer than the bound (client closed)")                   \
  X(too_deep, "requests nested deeper than the bound")                            \
  X(unknown_command, "requests naming no registered command")                     \
  X(mutating, "state-changing commands run")                                      \
  X(read_only_refused, "state-changing commands refused on the read-only socket") \
  X(slow_clients_dropped, "clients closed because they did not read their replies") \
  X(idle_clients_closed, "clients closed after the idle timeout")

struct CtrlServerCounters {
#define LOCKSTEP_X(name, help) std::atomic<uint64_t> name{0};
  LOCKSTEP_CTRL_SERVER_COUNTERS(LOCKSTEP_X)
#undef LOCKSTEP_X
};

class CtrlServer {
 public:
  using Logger = std::function<void(const std::string& json_line)>;

  CtrlServer(CommandRegistry& registry, CtrlServerConfig cfg);
  ~CtrlServer();
  CtrlServer(const CtrlServer&) = delete;
  CtrlServer& operator=(const CtrlServer&) = delete;

  // Default logger: one JSON line per event on stderr.
  void set_logger(Logger l) { logger_ = std::move(l); }
  bool start(std::string& error);
  void stop();

  const CtrlServerCounters& counters() const { return c_; }
  size_t clients() const { return nclients_.load(); }
  void metrics(std::vector<MetricSample>& out) const;

 private:
  struct Client;
  void run();
  void accept_on(int lfd, bool read_only);
  void on_readable(Client& c);
  void close_client(int fd);
  void handle_line(Client& c, std::string_view line);
  void queue_reply(Client& c, const std::string& text);
  bool flush(Client& c);
  void log(const std::string& line);

  CommandRegistry& registry_;
  CtrlServerConfig cfg_;
  Logger logger_;
  Fd listen_, listen_ro_, epoll_;
  bool owns_path_ = false, owns_ro_path_ = false;  // made here: unlinked at stop()
  int wake_ = -1;
  std::thread thread_;
  CtrlServerCounters c_;
  std::atomic<size_t> nclients_{0};
  std::unordered_map<int, std::unique_ptr<Client>> clients_;  // owned by the thread
  size_t n_admin_ = 0, n_ro_ = 0;                             // owned by the thread
  std::unordered_map<uint64_t, size_t> per_uid_;  // (read_only << 32 | uid) -> clients
};

}  // namespace lockstep::ctrl
