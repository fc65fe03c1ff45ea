#include "ctrl/systemd.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace lockstep::ctrl {

bool sd_notify_send(std::string_view state, std::string& error) {
  const std::string s(state);
  const int rc = ::sd_notify(0, s.c_str());
  if (rc < 0) {
    error = std::string("sd_notify: ") + std::strerror(-rc);
    return false;
  }
  return true;
}

namespace {
bool send_simple(const std::string& state) {
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
  uint64_t usec = 0;
  return ::sd_watchdog_enabled(0, &usec) > 0 ? usec : 0;
}

bool sd_listen_sockets(std::map<std::string, int>& out, std::string& error) {
  out.clear();
  char** names = nullptr;
  const int n = ::sd_listen_fds_with_names(1, &names);
  if (n < 0) {
    error = std::string("socket activation (LISTEN_FDS): ") + std::strerror(-n);
    return false;
  }
  bool ok = true;
  for (int i = 0; i < n; ++i) {
    const int fd = SD_LISTEN_FDS_START + i;
    std::string name = names != nullptr && names[i] != nullptr ? names[i] : "unknown";
    if (ok && ::sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0) {
      error = "socket activation: descriptor " + std::to_string(fd) + " ('" + name +
              "') is not a listening stream socket";
      ok = false;
    }
    if (ok && out.count(name) != 0) {
      error = "socket activation: two sockets named '" + name + "'";
      ok = false;
    }
    if (ok) {
      const int fl = fcntl(fd, F_GETFL);
      if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
        error = "socket activation: fcntl: " + std::string(std::strerror(errno));
        ok = false;
      }
    }
    if (ok) {
      out.emplace(std::move(name), fd);
    } else {
      close(fd);
    }
    if (names != nullptr) std::free(names[i]);
  }
  std::free(names);
  if (!ok) {
    for (auto& [name, fd] : out) close(fd);
    out.clear();
  }
  return ok;
}

}  // namespace lockstep::ctrl
