#include "ctrl/metrics_http.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <vector>

namespace lockstep::ctrl {

namespace {

constexpr size_t kMaxRequest = 8192;
constexpr size_t kMaxClients = 64;
constexpr size_t kAcceptsPerWake = 64;
// A request's head must arrive within this (a scraper sends it at once); the whole
// exchange, reply included, within kClientDeadlineNs.
constexpr uint64_t kHeadDeadlineNs = 2'000'000'000;
constexpr uint64_t kClientDeadlineNs = 5'000'000'000;

struct Client {
  Fd fd;
  std::string in, out;
  size_t out_pos = 0;
  uint64_t accepted = 0, deadline = 0;
  bool responded = false;
};

std::string response(int code, std::string_view reason, std::string_view type,
                     const std::string& body) {
  std::string r = "HTTP/1.1 " + std::to_string(code) + " " + std::string(reason) + "\r\n";
  r += "Content-Type: " + std::string(type) + "\r\n";
  r += "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n";
  r += body;
  return r;
}

}  // namespace

bool MetricsHttpServer::start(const Endpoint& ep, std::string& error) {
  if (ep.kind != Endpoint::Kind::tcp) {
    listen_ = listen_endpoint(ep, error, 0660);
  } else {
    listen_ = listen_endpoint(ep, error);
  }
  if (!listen_.valid()) return false;
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getsockname(listen_.get(), reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
    if (ss.ss_family == AF_INET) port_ = ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    if (ss.ss_family == AF_INET6) port_ = ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  }
  if (pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) {
    error = "pipe failed";
    return false;
  }
  thread_ = std::thread([this] { run(); });
  return true;
}

void MetricsHttpServer::stop() {
  if (thread_.joinable()) {
    char c = 'q';
    if (write(wake_[1], &c, 1) < 0) {
      // the thread also stops on the next poll timeout check
    }
    thread_.join();
  }
  for (int& f : wake_) {
    if (f >= 0) close(f);
    f = -1;
  }
  listen_.reset();
}

void MetricsHttpServer::run() {
  std::vector<Client> clients;
  std::vector<pollfd> pfds;
  for (;;) {
    pfds.clear();
    pfds.push_back({wake_[0], POLLIN, 0});
    // Always listening: a full house makes room (below), so a scrape is never queued
    // behind clients that trickle their request (slowloris) or never send one.
    pfds.push_back({listen_.get(), POLLIN, 0});
    for (auto& c : clients) {
      pfds.push_back({c.fd.get(), static_cast<short>(c.responded ? POLLOUT : POLLIN), 0});
    }
    int rc = poll(pfds.data(), pfds.size(), 500);
    if (rc < 0 && errno != EINTR) return;
    if (pfds[0].revents & POLLIN) return;
    uint64_t now = monotonic_ns();
    std::vector<Client> fresh;
    if (pfds[1].revents & POLLIN) {
      for (size_t k = 0; k < kAcceptsPerWake; ++k) {
        int fd = accept4(listen_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) break;
        Client c;
        c.fd.reset(fd);
        c.accepted = now;
        c.deadline = now + kClientDeadlineNs;
        fresh.push_back(std::move(c));
      }
    }
    for (size_t i = 0; i < clients.size() && i + 2 < pfds.size(); ++i) {
      Client& c = clients[i];
      short ev = pfds[i + 2].revents;
      if (!c.responded && (ev & (POLLIN | POLLHUP | POLLERR))) {
        char buf[2048];
        ssize_t n = recv(c.fd.get(), buf, sizeof buf, 0);
        if (n <= 0) {
          c.fd.reset();
          continue;
        }
        c.in.append(buf, static_cast<size_t>(n));
        if (c.in.size() > kMaxRequest) {
          ++bad_;
          c.out = response(431, "Request Header Fields Too Large", "text/plain", "too large\n");
          c.responded = true;
        } else if (c.in.find("\r\n\r\n") != std::string::npos ||
                   c.in.find("\n\n") != std::string::npos) {
          std::string_view line(c.in);
          line = line.substr(0, line.find_first_of("\r\n"));
          auto sp1 = line.find(' ');
          auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
          std::string_view method = line.substr(0, sp1);
          std::string_view target = sp1 == std::string_view::npos
                                        ? std::string_view{}
                                        : line.substr(sp1 + 1, sp2 == std::string_view::npos
                                                                   ? std::string_view::npos
                                                                   : sp2 - sp1 - 1);
          target = target.substr(0, target.find('?'));
          if (method != "GET" && method != "HEAD") {
            ++bad_;
            c.out = response(405, "Method Not Allowed", "text/plain", "GET /metrics\n");
          } else if (target == "/metrics" || target == "/") {
            ++scrapes_;
            std::string body = render_();
            c.out = response(200, "OK", "text/plain; version=0.0.4; charset=utf-8",
                             method == "HEAD" ? std::string{} : body);
          } else {
            ++bad_;
            c.out = response(404, "Not Found", "text/plain", "try /metrics\n");
          }
          c.responded = true;
        }
      }
      if (c.responded && c.fd.valid()) {
        long n = write_some(c.fd.get(), c.out.data() + c.out_pos, c.out.size() - c.out_pos);
        if (n < 0) {
          c.fd.reset();
          continue;
        }
        c.out_pos += static_cast<size_t>(n);
        if (c.out_pos == c.out.size()) c.fd.reset();
      }
      if (c.fd.valid() && (now > c.deadline || (!c.responded && now - c.accepted > kHeadDeadlineNs))) {
        ++timed_out_;
        c.fd.reset();
      }
    }
    std::erase_if(clients, [](const Client& c) { return !c.fd.valid(); });
    // Room for the newcomers: the oldest clients still sending their request go first
    // (an answered one is only being written to and leaves by itself).
    for (auto& c : fresh) {
      if (clients.size() >= kMaxClients) {
        auto victim = clients.end();
        for (auto it = clients.begin(); it != clients.end(); ++it)
          if (!it->responded && (victim == clients.end() || it->accepted < victim->accepted)) victim = it;
        if (victim == clients.end()) continue;  // every one is being answered: c is closed
        ++evicted_;
        clients.erase(victim);
      }
      clients.push_back(std::move(c));
    }
  }
}

}  // namespace lockstep::ctrl
