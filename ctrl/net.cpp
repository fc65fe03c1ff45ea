#include "ctrl/net.h"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <charconv>
#include <cstddef>

#include "ctrl/libvirt_uri.h"
#include "ctrl/qmp_libvirt.h"

namespace lockstep::ctrl {

std::string Endpoint::to_string() const {
  if (kind == Kind::unix_path) return "unix:" + path;
  if (kind == Kind::libvirt) return libvirt_endpoint_text(LibvirtTarget{uri, domain});
  if (host.find(':') != std::string::npos) return "tcp:[" + host + "]:" + std::to_string(port);
  return "tcp:" + host + ":" + std::to_string(port);
}

bool parse_endpoint(std::string_view text, Endpoint& out, std::string& error) {
  out = Endpoint{};
  if (text.empty()) {
    error = "empty endpoint";
    return false;
  }
  auto as_unix = [&](std::string_view p) {
    if (p.empty() || p.size() >= sizeof(sockaddr_un{}.sun_path)) {
      error = "unix socket path empty or longer than " +
              std::to_string(sizeof(sockaddr_un{}.sun_path) - 1) + " bytes";
      return false;
    }
    out.kind = Endpoint::Kind::unix_path;
    out.path = std::string(p);
    return true;
  };
  if (text.starts_with("unix:")) return as_unix(text.substr(5));
  if (text.front() == '/' || text.front() == '.') return as_unix(text);
  std::string_view rest = text.starts_with("tcp:") ? text.substr(4) : text;
  std::string_view host, port;
  if (!rest.empty() && rest.front() == '[') {
    auto close = rest.find(']');
    if (close == std::string_view::npos || close + 1 >= rest.size() || rest[close + 1] != ':') {
      error = "bad endpoint '" + std::string(text) + "' (expected tcp:[v6addr]:port)";
      return false;
    }
    host = rest.substr(1, close - 1);
    port = rest.substr(close + 2);
  } else {
    auto colon = rest.rfind(':');
    if (colon == std::string_view::npos) {
      error = "bad endpoint '" + std::string(text) +
              "' (expected unix:PATH, /PATH, tcp:HOST:PORT or HOST:PORT)";
      return false;
    }
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  }
  unsigned p = 0;
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (ec != std::errc{} || ptr != port.data() + port.size() || p > 65535 || host.empty()) {
    error = "bad endpoint '" + std::string(text) + "' (port must be 0..65535, host non-empty)";
    return false;
  }
  out.kind = Endpoint::Kind::tcp;
  out.host = std::string(host);
  out.port = static_cast<uint16_t>(p);
  return true;
}

bool parse_qmp_endpoint(std::string_view text, Endpoint& out, std::string& error) {
  if (!text.starts_with(kLibvirtPrefix)) return parse_endpoint(text, out, error);
  out = Endpoint{};
  LibvirtTarget t;
  if (!parse_libvirt_endpoint(text, t, error)) return false;
  out.kind = Endpoint::Kind::libvirt;
  out.uri = std::move(t.uri);
  out.domain = std::move(t.domain);
  return true;
}

void Fd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

bool set_nonblocking(int fd) {
  int fl = fcntl(fd, F_GETFL);
  return fl >= 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0;
}

namespace {

std::string errno_text(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

bool unix_addr(const std::string& path, sockaddr_un& sa, socklen_t& len) {
  std::memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  if (path.size() >= sizeof sa.sun_path) return false;
  std::memcpy(sa.sun_path, path.data(), path.size());
  len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  return true;
}

addrinfo* resolve(const Endpoint& ep, bool passive, std::string& error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = passive ? AI_PASSIVE : 0;
  addrinfo* res = nullptr;
  std::string port = std::to_string(ep.port);
  int rc = getaddrinfo(ep.host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0) {
    error = "resolve " + ep.to_string() + ": " + gai_strerror(rc);
    return nullptr;
  }
  return res;
}

}  // namespace

bool resolve_group(const std::string& name, gid_t& gid, std::string& error) {
  unsigned n = 0;
  auto [ptr, ec] = std::from_chars(name.data(), name.data() + name.size(), n);
  if (ec == std::errc{} && ptr == name.data() + name.size()) {
    gid = static_cast<gid_t>(n);
    return true;
  }
  struct group buf{};
  struct group* found = nullptr;
  char tmp[4096];
  if (getgrnam_r(name.c_str(), &buf, tmp, sizeof tmp, &found) != 0 || found == nullptr) {
    error = "unknown group '" + name + "'";
    return false;
  }
  gid = found->gr_gid;
  return true;
}

Fd listen_endpoint(const Endpoint& ep, std::string& error, unsigned mode,
                   const std::string& group, int backlog) {
  if (ep.kind == Endpoint::Kind::libvirt) {
    error = "cannot listen on a libvirt endpoint";
    return {};
  }
  if (ep.kind == Endpoint::Kind::unix_path) {
    sockaddr_un sa;
    socklen_t len;
    if (!unix_addr(ep.path, sa, len)) {
      error = "unix socket path too long: " + ep.path;
      return {};
    }
    // A stale file is removed only if nothing answers on it.
    struct stat st {};
    if (lstat(ep.path.c_str(), &st) == 0) {
      if (!S_ISSOCK(st.st_mode)) {
        error = ep.path + " exists and is not a socket";
        return {};
      }
      Fd probe(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
      if (probe.valid() && connect(probe.get(), reinterpret_cast<sockaddr*>(&sa), len) == 0) {
        error = ep.path + " is in use by a live process";
        return {};
      }
      unlink(ep.path.c_str());
    }
    Fd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd.valid()) {
      error = errno_text("socket");
      return {};
    }
    // fchmod before bind so the file is never reachable with wider permissions.
    fchmod(fd.get(), mode);
    mode_t old = umask(static_cast<mode_t>(~mode & 0777));
    int rc = bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), len);
    umask(old);
    if (rc != 0) {
      error = errno_text(("bind " + ep.path).c_str());
      return {};
    }
    if (chmod(ep.path.c_str(), mode) != 0) {
      error = errno_text(("chmod " + ep.path).c_str());
      return {};
    }
    if (!group.empty()) {
      gid_t gid;
      if (!resolve_group(group, gid, error)) return {};
      if (chown(ep.path.c_str(), static_cast<uid_t>(-1), gid) != 0) {
        error = errno_text(("chown " + ep.path).c_str());
        return {};
      }
    }
    if (listen(fd.get(), backlog) != 0) {
      error = errno_text("listen");
      return {};
    }
    return fd;
  }
  addrinfo* res = resolve(ep, true, error);
  if (res == nullptr) return {};
  Fd out;
  for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
    Fd fd(socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol));
    if (!fd.valid()) continue;
    int one = 1;
    setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd.get(), a->ai_addr, a->ai_addrlen) == 0 && listen(fd.get(), backlog) == 0) {
      out = std::move(fd);
      break;
    }
    error = errno_text(("bind/listen " + ep.to_string()).c_str());
  }
  freeaddrinfo(res);
  if (out.valid()) error.clear();
  return out;
}

Fd connect_endpoint(const Endpoint& ep, std::string& error, bool nonblocking) {
  Fd out;
  if (ep.kind == Endpoint::Kind::libvirt) {
    out = libvirt_qmp_open(ep, error);
    if (!out.valid()) return {};
  } else if (ep.kind == Endpoint::Kind::unix_path) {
    sockaddr_un sa;
    socklen_t len;
    if (!unix_addr(ep.path, sa, len)) {
      error = "unix socket path too long: " + ep.path;
      return {};
    }
    Fd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd.valid() || connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), len) != 0) {
      error = errno_text(("connect " + ep.to_string()).c_str());
      return {};
    }
    out = std::move(fd);
  } else {
    addrinfo* res = resolve(ep, false, error);
    if (res == nullptr) return {};
    for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
      Fd fd(socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol));
      if (!fd.valid()) continue;
      if (connect(fd.get(), a->ai_addr, a->ai_addrlen) == 0) {
        int one = 1;
        setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        out = std::move(fd);
        break;
      }
      error = errno_text(("connect " + ep.to_string()).c_str());
    }
    freeaddrinfo(res);
    if (!out.valid()) return {};
  }
  if (nonblocking) set_nonblocking(out.get());
  error.clear();
  return out;
}

Fd connect_start(const Endpoint& ep, bool& in_progress, std::string& error) {
  in_progress = false;
  auto finish = [&](Fd fd, const sockaddr* sa, socklen_t len) -> Fd {
    if (connect(fd.get(), sa, len) == 0) return fd;
    if (errno == EINPROGRESS) {
      in_progress = true;
      return fd;
    }
    error = errno_text(("connect " + ep.to_string()).c_str());
    return {};
  };
  if (ep.kind == Endpoint::Kind::libvirt) return libvirt_qmp_open(ep, error);
  if (ep.kind == Endpoint::Kind::unix_path) {
    sockaddr_un sa;
    socklen_t len;
    if (!unix_addr(ep.path, sa, len)) {
      error = "unix socket path too long: " + ep.path;
      return {};
    }
    Fd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd.valid()) {
      error = errno_text("socket");
      return {};
    }
    return finish(std::move(fd), reinterpret_cast<sockaddr*>(&sa), len);
  }
  addrinfo* res = resolve(ep, false, error);
  if (res == nullptr) return {};
  Fd fd(socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, res->ai_protocol));
  Fd out;
  if (fd.valid()) {
    int one = 1;
    setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    out = finish(std::move(fd), res->ai_addr, res->ai_addrlen);
  } else {
    error = errno_text("socket");
  }
  freeaddrinfo(res);
  return out;
}

bool connect_finish(int fd, std::string& error) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
    error = std::string("connect: ") + std::strerror(err != 0 ? err : errno);
    return false;
  }
  return true;
}

uint64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

uint64_t realtime_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

long write_some(int fd, const void* data, size_t len) {
  size_t done = 0;
  const char* p = static_cast<const char*>(data);
  while (done < len) {
    ssize_t n = ::send(fd, p + done, len - done, MSG_NOSIGNAL);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    return -1;
  }
  return static_cast<long>(done);
}

}  // namespace lockstep::ctrl
