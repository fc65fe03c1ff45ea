#include "ctrl/metrics_http.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
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
                     const std::string& body, std::string_view extra_header = {}) {
  std::string r = "HTTP/1.1 " + std::to_string(code) + " " + std::string(reason) + "\r\n";
  r += "Content-Type: " + std::string(type) + "\r\n";
  if (!extra_header.empty()) r += std::string(extra_header) + "\r\n";
  r += "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n";
  r += body;
  return r;
}

enum class Parse { incomplete, ok, bad, version };

struct Head {
  Parse verdict = Parse::incomplete;
  std::string_view method, path;
};

bool is_tchar(char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
         std::string_view("!#$%&'*+-.^_`|~").find(ch) != std::string_view::npos;
}

// A request head as RFC 9112 has it, strictly: "METHOD SP TARGET SP HTTP/1.x" CRLF, then
// "Name: value" CRLF lines, then CRLF. Bare LF line ends, stray spaces, an origin-form
// target that does not start with "/", control bytes, an HTTP/1.1 request without Host
// and a request body are refused (bad); another HTTP version is `version`.
Parse parse_head(std::string_view in, Head& h) {
  const size_t end = in.find("\r\n\r\n");
  for (size_t i = 0; i < (end == std::string_view::npos ? in.size() : end); ++i) {
    if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r')) return h.verdict = Parse::bad;
  }
  if (end == std::string_view::npos) return h.verdict = Parse::incomplete;
  std::string_view head = in.substr(0, end + 2);
  const size_t eol = head.find("\r\n");
  const std::string_view line = head.substr(0, eol);
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp1 == 0 || sp2 == std::string_view::npos || sp2 == sp1 + 1 ||
      line.find(' ', sp2 + 1) != std::string_view::npos) {
    return h.verdict = Parse::bad;
  }
  h.method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (!std::all_of(h.method.begin(), h.method.end(), is_tchar)) return h.verdict = Parse::bad;
  if (target.front() != '/' ||
      std::any_of(target.begin(), target.end(), [](char ch) { return ch <= ' ' || ch == 0x7f; })) {
    return h.verdict = Parse::bad;
  }
  h.path = target.substr(0, target.find('?'));
  if (!version.starts_with("HTTP/")) return h.verdict = Parse::bad;
  if (version != "HTTP/1.1" && version != "HTTP/1.0") return h.verdict = Parse::version;
  bool host = false;
  for (size_t pos = eol + 2; pos < head.size();) {
    const size_t next = head.find("\r\n", pos);
    const std::string_view field = head.substr(pos, next - pos);
    pos = next + 2;
    const size_t colon = field.find(':');
    if (colon == 0 || colon == std::string_view::npos) return h.verdict = Parse::bad;
    const std::string_view name = field.substr(0, colon);
    if (!std::all_of(name.begin(), name.end(), is_tchar)) return h.verdict = Parse::bad;
    std::string_view value = field.substr(colon + 1);
    if (std::any_of(value.begin(), value.end(),
                    [](char ch) { return (ch < ' ' && ch != '\t') || ch == 0x7f; })) {
      return h.verdict = Parse::bad;
    }
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    auto is = [&](std::string_view want) {
      return name.size() == want.size() &&
             std::equal(name.begin(), name.end(), want.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) == y;
             });
    };
    if (is("host")) host = true;
    if (is("transfer-encoding") || (is("content-length") && value != "0")) {
      return h.verdict = Parse::bad;  // no request here has a body
    }
  }
  if (version == "HTTP/1.1" && !host) return h.verdict = Parse::bad;
  return h.verdict = Parse::ok;
}

}  // namespace

bool MetricsHttpServer::start(const Endpoint& ep, std::string& error) {
  if (ep.kind != Endpoint::Kind::tcp) {
    listen_ = listen_endpoint(ep, error, 0660);
  } else {
    listen_ = listen_endpoint(ep, error);
  }
  if (!listen_.valid()) return false;
  return start_thread(error);
}

bool MetricsHttpServer::start_on(int fd, std::string& error) {
  listen_.reset(fd);
  return start_thread(error);
}

bool MetricsHttpServer::start_thread(std::string& error) {
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
  auto answer = [this](const Head& h) -> std::string {
    if (h.verdict == Parse::bad) {
      ++bad_;
      return response(400, "Bad Request", "text/plain", "bad request\n");
    }
    if (h.verdict == Parse::version) {
      ++bad_;
      return response(505, "HTTP Version Not Supported", "text/plain", "HTTP/1.1\n");
    }
    const bool head_only = h.method == "HEAD";
    if (h.method != "GET" && !head_only) {
      ++bad_;
      return response(405, "Method Not Allowed", "text/plain", "GET /metrics or /health\n",
                      "Allow: GET, HEAD");
    }
    if (h.path == "/metrics" || h.path == "/") {
      ++scrapes_;
      std::string body = render_();
      return response(200, "OK", "text/plain; version=0.0.4; charset=utf-8",
                      head_only ? std::string{} : body);
    }
    if (h.path == "/health") {
      ++health_;
      const std::string why = health_check_ ? health_check_() : std::string{};
      if (!why.empty()) {
        return response(503, "Service Unavailable", "text/plain",
                        head_only ? std::string{} : why + "\n");
      }
      return response(200, "OK", "text/plain", head_only ? std::string{} : "ok\n");
    }
    ++bad_;
    return response(404, "Not Found", "text/plain", "try /metrics or /health\n");
  };
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
        } else if (Head head; parse_head(c.in, head) != Parse::incomplete) {
          c.out = answer(head);
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
