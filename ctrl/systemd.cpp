#include "ctrl/sd_notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <charconv>
#include <cstddef>
#include <cstdlib>
#include <cstring>

#include "ctrl/net.h"

namespace lockstep::ctrl {

bool sd_notify_send(std::string_view state, std::string& error) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path == nullptr || *path == '\0') return true;
  std::string_view p(path);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (p.size() >= sizeof sa.sun_path || (p[0] != '/' && p[0] != '@')) {
    error = "NOTIFY_SOCKET is not an absolute path or @abstract name";
    return false;
  }
  std::memcpy(sa.sun_path, p.data(), p.size());
  if (p[0] == '@') sa.sun_path[0] = '\0';
  auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + p.size() +
                                    (p[0] == '@' ? 0 : 1));
  Fd fd(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) {
    error = "socket failed";
    return false;
  }
  ssize_t n = sendto(fd.get(), state.data(), state.size(), MSG_NOSIGNAL,
                     reinterpret_cast<sockaddr*>(&sa), len);
  if (n != static_cast<ssize_t>(state.size())) {
    error = std::string("sendto NOTIFY_SOCKET: ") + std::strerror(errno);
    return false;
  }
  return true;
}

namespace {
bool send_simple(std::string state) {
  std::string error;
  return sd_notify_send(state, error);
}
}  // namespace

bool sd_notify_ready(std::string_view status) {
  std::string s = "READY=1";
  if (!status.empty()) s += "\nSTATUS=" + std::string(status);
  return send_simple(s);
}

bool sd_notify_status(std::string_view status) { return send_simple("STATUS=" + std::string(status)); }
bool sd_notify_stopping() { return send_simple("STOPPING=1"); }
bool sd_notify_watchdog() { return send_simple("WATCHDOG=1"); }

uint64_t sd_watchdog_interval_us() {
  const char* usec = std::getenv("WATCHDOG_USEC");
  if (usec == nullptr) return 0;
  const char* pid = std::getenv("WATCHDOG_PID");
  if (pid != nullptr) {
    long p = 0;
    std::string_view s(pid);
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), p);
    if (ec != std::errc{} || p != static_cast<long>(getpid())) return 0;
  }
  uint64_t v = 0;
  std::string_view s(usec);
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc{} ? v : 0;
}

}  // namespace lockstep::ctrl
