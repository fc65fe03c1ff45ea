#include "ctrl/heartbeat_udp.h"

#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "ctrl/native_codec.h"

namespace lockstep::ctrl {

namespace {

bool resolve_udp(const Endpoint& ep, bool passive, sockaddr_storage& out, socklen_t& len,
                 std::string& error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  hints.ai_flags = passive ? AI_PASSIVE : 0;
  addrinfo* res = nullptr;
  std::string port = std::to_string(ep.port);
  int rc = getaddrinfo(ep.host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0 || res == nullptr) {
    error = "resolve " + ep.to_string() + ": " + gai_strerror(rc);
    return false;
  }
  std::memcpy(&out, res->ai_addr, res->ai_addrlen);
  len = res->ai_addrlen;
  freeaddrinfo(res);
  return true;
}

}  // namespace

bool HeartbeatUdp::start(std::string& error) {
  if (cfg_.bind.kind != Endpoint::Kind::tcp) {
    error = "heartbeat bind address must be HOST:PORT";
    return false;
  }
  sockaddr_storage sa{};
  socklen_t len = 0;
  if (!resolve_udp(cfg_.bind, true, sa, len, error)) return false;
  fd_.reset(socket(sa.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd_.valid() || bind(fd_.get(), reinterpret_cast<sockaddr*>(&sa), len) != 0) {
    error = "bind " + cfg_.bind.to_string() + ": " + std::strerror(errno);
    return false;
  }
  sockaddr_storage bound{};
  socklen_t blen = sizeof bound;
  getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&bound), &blen);
  port_ = ntohs(bound.ss_family == AF_INET
                    ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                    : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  for (const auto& p : cfg_.send_to) {
    sockaddr_storage d{};
    socklen_t dl = 0;
    if (p.kind != Endpoint::Kind::tcp || !resolve_udp(p, false, d, dl, error)) {
      if (error.empty()) error = "heartbeat peer must be HOST:PORT";
      return false;
    }
  }
  wake_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  thread_ = std::thread([this] { run(); });
  return true;
}

void HeartbeatUdp::stop() {
  if (thread_.joinable()) {
    uint64_t one = 1;
    if (write(wake_, &one, sizeof one) < 0) {
      // the thread wakes within one interval anyway
    }
    thread_.join();
  }
  if (wake_ >= 0) close(wake_);
  wake_ = -1;
  fd_.reset();
}

void HeartbeatUdp::run() {
  std::vector<std::pair<sockaddr_storage, socklen_t>> dests;
  for (const auto& p : cfg_.send_to) {
    sockaddr_storage d{};
    socklen_t dl = 0;
    std::string error;
    if (resolve_udp(p, false, d, dl, error)) dests.emplace_back(d, dl);
  }
  uint64_t seq = 0;
  uint64_t next = monotonic_ns();
  for (;;) {
    uint64_t now = monotonic_ns();
    if (now >= next) {
      if (!paused_) {
        NativeMessage m = NativeMessage::heartbeat(++seq, realtime_ns());
        m.name = cfg_.name;
        std::string body = native_json(m);
        for (const auto& [d, dl] : dests) {
          if (sendto(fd_.get(), body.data(), body.size(), MSG_NOSIGNAL,
                     reinterpret_cast<const sockaddr*>(&d), dl) < 0) {
            ++send_errors_;
          } else {
            ++sent_;
          }
        }
      }
      next = now + cfg_.interval_ns;
    }
    pollfd p[2] = {{wake_, POLLIN, 0}, {fd_.get(), POLLIN, 0}};
    int timeout = static_cast<int>((next - std::min(next, monotonic_ns())) / 1000000 + 1);
    if (poll(p, 2, timeout) < 0 && errno != EINTR) return;
    if (p[0].revents & POLLIN) return;
    if (p[1].revents & POLLIN) {
      char buf[2048];
      for (int i = 0; i < 64; ++i) {
        ssize_t n = recv(fd_.get(), buf, sizeof buf, 0);
        if (n < 0) break;
        NativeMessage m;
        std::string error;
        if (!decode_native_payload(std::string_view(buf, static_cast<size_t>(n)), m, error) ||
            m.type != NativeType::heartbeat || m.name.empty()) {
          ++invalid_;
          continue;
        }
        ++received_;
        on_beat_(m.name, m.seq);
      }
    }
  }
}

void HeartbeatUdp::metrics(std::vector<MetricSample>& out) const {
  add_sample(out, "lockstep_heartbeat_udp_sent_total", "peer heartbeats sent",
             MetricType::counter, static_cast<double>(sent_.load()));
  add_sample(out, "lockstep_heartbeat_udp_received_total", "peer heartbeats received",
             MetricType::counter, static_cast<double>(received_.load()));
  add_sample(out, "lockstep_heartbeat_udp_invalid_total", "datagrams that were no heartbeat",
             MetricType::counter, static_cast<double>(invalid_.load()));
  add_sample(out, "lockstep_heartbeat_udp_send_errors_total", "heartbeats that could not be sent",
             MetricType::counter, static_cast<double>(send_errors_.load()));
}

}  // namespace lockstep::ctrl
