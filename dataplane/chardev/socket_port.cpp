#include "dataplane/chardev/socket_port.h"

#include <arpa/inet.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>

namespace lockstep::chardev {

namespace {

bool on_off(std::string_view v, bool& out) {
  if (v == "on" || v == "true" || v == "yes" || v == "1") {
    out = true;
    return true;
  }
  if (v == "off" || v == "false" || v == "no" || v == "0") {
    out = false;
    return true;
  }
  return false;
}

}  // namespace

bool parse_port_spec(std::string_view text, PortSpec& out, std::string& error) {
  out = PortSpec{};
  out.text = std::string(text);
  size_t comma = text.find(',');
  std::string_view addr = text.substr(0, comma);
  if (!addr.starts_with("tcp:") && !addr.starts_with("unix:")) {
    error = "'" + std::string(text) + "': expected tcp:HOST:PORT[,server] or unix:PATH[,server]";
    return false;
  }
  if (!ctrl::parse_endpoint(addr, out.endpoint, error)) {
    error = "'" + std::string(text) + "': " + error;
    return false;
  }
  while (comma != std::string_view::npos) {
    text = text.substr(comma + 1);
    comma = text.find(',');
    std::string_view opt = text.substr(0, comma);
    size_t eq = opt.find('=');
    std::string_view key = opt.substr(0, eq);
    std::string_view val = eq == std::string_view::npos ? "on" : opt.substr(eq + 1);
    bool b = false;
    if (key == "server" && on_off(val, b)) {
      out.server = b;
    } else if ((key == "wait" || key == "nodelay") && on_off(val, b)) {
      // QEMU chardev options without meaning here: accepted
    } else if (key == "reconnect") {
      uint64_t s = 0;
      auto r = std::from_chars(val.data(), val.data() + val.size(), s);
      if (r.ec != std::errc{} || r.ptr != val.data() + val.size() || s == 0 || s > 3600) {
        error = "'" + out.text + "': reconnect wants seconds in 1..3600";
        return false;
      }
      out.reconnect_ns = s * 1'000'000'000ull;
    } else {
      error = "'" + out.text + "': unknown option '" + std::string(opt) + "'";
      return false;
    }
  }
  return true;
}

SocketPort::SocketPort(std::string name, PortSpec spec, int epoll_fd, uint64_t tag)
    : name_(std::move(name)), spec_(std::move(spec)), epfd_(epoll_fd), tag_(tag) {}

SocketPort::~SocketPort() {
  if (spec_.server && spec_.endpoint.kind == ctrl::Endpoint::Kind::unix_path && listen_.valid()) {
    unlink(spec_.endpoint.path.c_str());
  }
}

bool SocketPort::open(std::string& error) {
  if (!spec_.server) return true;
  listen_ = ctrl::listen_endpoint(spec_.endpoint, error, 0660, {}, 4);
  if (!listen_.valid()) {
    error = name_ + ": " + error;
    return false;
  }
  if (spec_.endpoint.kind == ctrl::Endpoint::Kind::tcp) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (getsockname(listen_.get(), reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
      if (ss.ss_family == AF_INET) bound_port_ = ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
      if (ss.ss_family == AF_INET6) bound_port_ = ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
    }
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = tag_ | kListenBit;
  if (epoll_ctl(epfd_, EPOLL_CTL_ADD, listen_.get(), &ev) != 0) {
    error = name_ + ": epoll_ctl failed";
    return false;
  }
  return true;
}

std::string SocketPort::bound() const {
  if (spec_.endpoint.kind == ctrl::Endpoint::Kind::tcp && bound_port_ != 0) {
    ctrl::Endpoint e = spec_.endpoint;
    e.port = bound_port_;
    return e.to_string();
  }
  return spec_.endpoint.to_string();
}

uint64_t SocketPort::next_wake() const {
  if (spec_.server || conn_.valid()) return UINT64_MAX;
  return next_try_;
}

void SocketPort::up(ctrl::Fd fd, uint64_t now) {
  (void)now;
  conn_ = std::move(fd);
  connecting_ = false;
  reg_ = false;
  ++c.connects;
  logged_failure_ = false;
  if (spec_.endpoint.kind == ctrl::Endpoint::Kind::tcp) {
    int one = 1;
    setsockopt(conn_.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  apply_interest();
  std::fprintf(stderr, "lockstep-colo: %s connected (%s)\n", name_.c_str(), spec_.text.c_str());
}

bool SocketPort::poll(uint64_t now) {
  if (spec_.server || conn_.valid() || now < next_try_) return false;
  next_try_ = now + spec_.reconnect_ns;
  bool in_progress = false;
  std::string error;
  ctrl::Fd fd = ctrl::connect_start(spec_.endpoint, in_progress, error);
  if (!fd.valid()) {
    ++c.connect_failures;
    if (!logged_failure_) {
      std::fprintf(stderr, "lockstep-colo: %s: %s (retrying every %llu ms)\n", name_.c_str(),
                   error.c_str(), static_cast<unsigned long long>(spec_.reconnect_ns / 1000000));
      logged_failure_ = true;
    }
    return false;
  }
  if (in_progress) {
    conn_ = std::move(fd);
    connecting_ = true;
    epoll_event ev{};
    ev.events = EPOLLOUT;
    ev.data.u64 = tag_;
    epoll_ctl(epfd_, EPOLL_CTL_ADD, conn_.get(), &ev);
    registered_ = EPOLLOUT;
    reg_ = true;
    return false;
  }
  up(std::move(fd), now);
  return true;
}

bool SocketPort::on_connect_ready(uint64_t now) {
  if (!connecting_) return false;
  std::string error;
  if (!ctrl::connect_finish(conn_.get(), error)) {
    ++c.connect_failures;
    epoll_ctl(epfd_, EPOLL_CTL_DEL, conn_.get(), nullptr);
    reg_ = false;
    conn_.reset();
    connecting_ = false;
    return false;
  }
  ctrl::Fd fd = std::move(conn_);
  epoll_ctl(epfd_, EPOLL_CTL_DEL, fd.get(), nullptr);
  reg_ = false;
  up(std::move(fd), now);
  return true;
}

namespace {

// Who is on the other end of an accepted socket: the process's credentials for a unix
// socket (SO_PEERCRED), the address for TCP.
std::string peer_text(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0 && ss.ss_family != AF_UNIX) {
    char host[INET6_ADDRSTRLEN] = "?";
    uint16_t port = 0;
    if (ss.ss_family == AF_INET) {
      const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
      inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
      port = ntohs(a->sin_port);
    } else if (ss.ss_family == AF_INET6) {
      const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
      inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
      port = ntohs(a->sin6_port);
    }
    return std::string("address ") + host + " port " + std::to_string(port);
  }
  ucred uc{};
  socklen_t n = sizeof uc;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &n) != 0) return "unknown peer";
  return "pid " + std::to_string(uc.pid) + " uid " + std::to_string(uc.uid) + " gid " +
         std::to_string(uc.gid);
}

}  // namespace

bool SocketPort::accept_pending() {
  int fd = accept4(listen_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0) return false;
  ctrl::Fd f(fd);
  std::string who = peer_text(fd);
  if (connected() && !spec_.replace_peer) {
    ++c.refused_peers;
    std::fprintf(stderr,
                 "lockstep-colo: %s: refused a new peer (%s): a peer is connected "
                 "(replace_peer=off)\n",
                 name_.c_str(), who.c_str());
    return false;  // f closes it
  }
  pending_ = std::move(f);
  pending_who_ = std::move(who);
  return true;
}

bool SocketPort::on_accept(uint64_t now) {
  if (!pending_.valid()) return false;
  if (conn_.valid()) {
    ++c.replaced;
    std::fprintf(stderr, "lockstep-colo: %s: the connected peer is replaced by %s (replace_peer=on)\n",
                 name_.c_str(), pending_who_.c_str());
    disconnect(now, "replaced by a new peer");
  }
  up(std::move(pending_), now);
  return true;
}

void SocketPort::disconnect(uint64_t now, const char* why) {
  if (!conn_.valid()) return;
  if (reg_) epoll_ctl(epfd_, EPOLL_CTL_DEL, conn_.get(), nullptr);
  reg_ = false;
  conn_.reset();
  const bool was_up = !connecting_;
  connecting_ = false;
  if (was_up) {
    ++c.disconnects;
    std::fprintf(stderr, "lockstep-colo: %s disconnected: %s\n", name_.c_str(), why);
  }
  next_try_ = now + spec_.reconnect_ns;
}

void SocketPort::want(bool in, bool out) {
  want_in_ = in;
  want_out_ = out;
  if (connected()) apply_interest();
}

void SocketPort::apply_interest() {
  // While reading pauses the peer's close is seen when reading resumes (asking for
  // EPOLLRDHUP then would wake the loop for nothing, level-triggered).
  uint32_t ev = (want_in_ ? EPOLLIN | EPOLLRDHUP : 0u) | (want_out_ ? EPOLLOUT : 0u);
  if (reg_ && ev == registered_) return;
  epoll_event e{};
  e.events = ev;
  e.data.u64 = tag_;
  epoll_ctl(epfd_, reg_ ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, conn_.get(), &e);
  registered_ = ev;
  reg_ = true;
}

}  // namespace lockstep::chardev
