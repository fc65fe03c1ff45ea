// One chardev socket as QEMU's `-chardev socket` would be: TCP or unix, server (listen,
// one peer at a time; while one is connected a newer peer is refused, or replaces it
// when the runner's replace_peer=on says so; either is logged with the newcomer's
// credentials) or client (connect, and
// reconnect after `reconnect` when the peer goes away). Only the connection's life is
// here; framing is chardev_codec.h, what flows is the runner's business. The port keeps
// its epoll registration in step with its sockets.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "ctrl/net.h"

namespace lockstep::chardev {

// "tcp:HOST:PORT[,server[=on|off]][,wait=off][,nodelay][,reconnect=SECONDS]"
// "unix:PATH[,server...]". Options QEMU's socket chardev takes that do not matter here
// (wait, nodelay) are accepted.
struct PortSpec {
  ctrl::Endpoint endpoint;
  bool server = false;
  uint64_t reconnect_ns = 1'000'000'000;
  bool replace_peer = false;  // server: a new peer replaces a connected one (else refused)
  std::string text;  // as given, for logs
};

bool parse_port_spec(std::string_view text, PortSpec& out, std::string& error);

#define LOCKSTEP_PORT_COUNTERS(X)                                                       \
  X(connects, "connections established")                                               \
  X(disconnects, "connections lost or closed")                                         \
  X(replaced, "connections replaced by a newer peer (server, replace_peer=on)")         \
  X(refused_peers, "peers refused because one was connected (server, replace_peer=off)") \
  X(connect_failures, "connect attempts that failed (client)")                         \
  X(frames_in, "frames read")                                                           \
  X(bytes_in, "bytes read")                                                             \
  X(frames_out, "frames written")                                                       \
  X(bytes_out, "bytes written")                                                         \
  X(oversize, "frames over 69,632 bytes (connection closed)")                          \
  X(bad_vnet_len, "frames whose vnet_hdr_len exceeds their length (connection closed)") \
  X(empty_frames, "frames of length 0 (skipped)")                                       \
  X(truncated, "connections closed in the middle of a frame")                          \
  X(pool_waits, "times reading stopped because no frame buffer was free")             \
  X(backpressure, "times reading stopped because the output queue was full")           \
  X(resent_partial, "frames sent again whole after a write was cut by a disconnect")

struct PortCounters {
#define LOCKSTEP_X(name, help) uint64_t name = 0;
  LOCKSTEP_PORT_COUNTERS(LOCKSTEP_X)
#undef LOCKSTEP_X
};

class SocketPort {
 public:
  // `tag` is put in the epoll data: tag for the connection, tag | kListenBit for the
  // listening socket.
  static constexpr uint64_t kListenBit = 1ull << 32;

  SocketPort(std::string name, PortSpec spec, int epoll_fd, uint64_t tag);
  ~SocketPort();
  SocketPort(const SocketPort&) = delete;
  SocketPort& operator=(const SocketPort&) = delete;

  // Server: binds and listens now (errors are returned). Client: connects in poll().
  bool open(std::string& error);

  // Client: starts a connect when due. Returns true when a connection came up now.
  bool poll(uint64_t now);
  // The listening socket is readable: accepts the new peer. False when there was none,
  // or when it was refused (a peer is connected and replace_peer is off: closed, logged
  // with its credentials, counted). True: on_accept() installs it.
  bool accept_pending();
  // Installs the peer accept_pending() took, replacing (logged) any current one. True
  // when a new connection came up.
  bool on_accept(uint64_t now);
  // The connecting socket became writable: true when the connection came up.
  bool on_connect_ready(uint64_t now);

  // Closes the connection (and, for a client, schedules the reconnect).
  void disconnect(uint64_t now, const char* why);

  // Epoll interest for the connection: EPOLLIN when reading, EPOLLOUT when writing.
  void want(bool in, bool out);

  int fd() const { return conn_.get(); }
  bool connected() const { return conn_.valid() && !connecting_; }
  bool connecting() const { return connecting_; }
  // Earliest time poll() has work (client reconnect), or UINT64_MAX.
  uint64_t next_wake() const;
  const std::string& name() const { return name_; }
  const PortSpec& spec() const { return spec_; }
  // The bound address in server mode (TCP port 0 gets its real port).
  std::string bound() const;

  PortCounters c;

 private:
  void up(ctrl::Fd fd, uint64_t now);
  void apply_interest();

  std::string name_;
  PortSpec spec_;
  int epfd_;
  uint64_t tag_;
  ctrl::Fd listen_, conn_, pending_;
  std::string pending_who_;
  bool connecting_ = false;
  bool want_in_ = true, want_out_ = false;
  uint32_t registered_ = 0;  // events registered for conn_ while reg_
  bool reg_ = false;
  uint64_t next_try_ = 0;
  uint16_t bound_port_ = 0;
  bool logged_failure_ = false;
};

}  // namespace lockstep::chardev
