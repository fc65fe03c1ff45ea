// Socket helpers for the control plane: endpoint syntax, listen/connect (unix or TCP),
// non-blocking mode, an owning fd. Thin I/O only; no protocol here.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace lockstep::ctrl {

// "unix:/run/x.sock", "/run/x.sock" (a path), "tcp:127.0.0.1:9000" or "127.0.0.1:9000";
// for QEMU's monitor (parse_qmp_endpoint) also "libvirt:URI?domain=NAME" (libvirt_uri.h).
struct Endpoint {
  enum class Kind : uint8_t { unix_path, tcp, libvirt };
  Kind kind = Kind::unix_path;
  std::string path;  // unix
  std::string host;  // tcp (numeric IPv4/IPv6 or a name)
  uint16_t port = 0;
  std::string uri, domain;  // libvirt: connection URI and domain name

  std::string to_string() const;
};

// Sockets only (unix or tcp).
bool parse_endpoint(std::string_view text, Endpoint& out, std::string& error);
// A QEMU monitor: a socket, or a libvirt domain (its QMP through libvirt's pass-through,
// ctrl/qmp_libvirt.h). Whether this build has libvirt is checked by the caller.
bool parse_qmp_endpoint(std::string_view text, Endpoint& out, std::string& error);

// An owning file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) reset(o.release());
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

bool set_nonblocking(int fd);

// Listening socket, non-blocking and close-on-exec. For a unix path, a stale socket file
// (nothing answers a connect) is removed first; a live one is an error, never unlinked.
// `mode` (e.g. 0660) is applied to the unix socket file, and `group` (name or number,
// empty = keep) becomes its group.
Fd listen_endpoint(const Endpoint& ep, std::string& error, unsigned mode = 0660,
                   const std::string& group = {}, int backlog = 16);

// A group name or number as a gid; false with `error` naming it when unknown.
bool resolve_group(const std::string& name, gid_t& gid, std::string& error);

// Blocking connect (then the fd is switched to non-blocking when `nonblocking`).
// A libvirt endpoint gives a local stream that speaks QMP (qmp_libvirt.h) at once.
Fd connect_endpoint(const Endpoint& ep, std::string& error, bool nonblocking = true);

// Starts a non-blocking connect. Returns the socket with `in_progress` set when the
// connection completes later (poll for POLLOUT, then connect_finish). A libvirt endpoint
// never blocks here: libvirt is opened on the bridge's own thread.
Fd connect_start(const Endpoint& ep, bool& in_progress, std::string& error);
// After POLLOUT on a socket from connect_start: true when connected.
bool connect_finish(int fd, std::string& error);

// Monotonic clock in nanoseconds: the one clock read of the control plane's I/O layer.
uint64_t monotonic_ns();
// Wall clock in nanoseconds since the Unix epoch (for heartbeats and logs).
uint64_t realtime_ns();

// Writes every byte (blocking fds) or as much as possible (non-blocking). Returns bytes
// written or -1 on a hard error.
long write_some(int fd, const void* data, size_t len);

}  // namespace lockstep::ctrl
