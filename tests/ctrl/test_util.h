// Small helpers for the ctrl tests: temporary socket paths, a line client with a
// bounded wait, waiting for a condition (bounded; the tests assert outcomes, not speed).
#pragma once

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include "ctrl/json_limits.h"
#include "ctrl/net.h"

namespace lockstep::ctrl::testing {

inline std::string temp_path(const std::string& name) {
  const char* dir = std::getenv("TMPDIR");
  return std::string(dir != nullptr && *dir ? dir : "/tmp") + "/lockstep-test-" +
         std::to_string(getpid()) + "-" + name;
}

// Reads one line (without the newline); empty on timeout or EOF.
inline std::string read_line(int fd, std::string& buf, int timeout_ms = 10000) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    auto nl = buf.find('\n');
    if (nl != std::string::npos) {
      std::string line = buf.substr(0, nl);
      buf.erase(0, nl + 1);
      return line;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) return {};
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    char tmp[65536];
    ssize_t n = recv(fd, tmp, sizeof tmp, 0);
    if (n <= 0) return {};
    buf.append(tmp, static_cast<size_t>(n));
  }
}

struct LineClient {
  Fd fd;
  std::string buf;

  bool open(const std::string& path) {
    std::string error;
    Endpoint ep;
    parse_endpoint("unix:" + path, ep, error);
    fd = connect_endpoint(ep, error, false);
    return fd.valid();
  }
  bool send_raw(const std::string& s) {
    return ::send(fd.get(), s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size());
  }
  Json call(const Json& req) {
    send_raw(req.dump() + "\n");
    return reply();
  }
  Json reply(int timeout_ms = 10000) {
    std::string line = read_line(fd.get(), buf, timeout_ms);
    if (line.empty()) return nullptr;
    return Json::parse(line, nullptr, false);
  }
  // True when the server closed the connection (EOF) within the wait.
  bool closed(int timeout_ms = 10000) {
    pollfd p{fd.get(), POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) return false;
    char c;
    return recv(fd.get(), &c, 1, MSG_PEEK) == 0;
  }
};

// Polls `cond` every 10 ms for up to `timeout_ms`.
inline bool wait_for(const std::function<bool()>& cond, int timeout_ms = 10000) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return cond();
}

}  // namespace lockstep::ctrl::testing
