#include "ctrl/ctrl_server.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace lockstep::ctrl {

struct CtrlServer::Client {
  Fd fd;
  bool read_only = false;
  bool spoke = false;  // has sent a byte
  PeerCred cred;
  std::string in, out;
  size_t out_pos = 0;
  uint64_t last_active = 0;
  bool closing = false;   // close once the queued reply is written
  bool want_out = false;  // EPOLLOUT registered
};

namespace {
constexpr uint64_t kWakeTag = 1, kListenTag = 2, kListenRoTag = 3;

std::string path_of(const std::string& spec) {
  Endpoint ep;
  std::string error;
  return parse_endpoint(spec, ep, error) && ep.kind == Endpoint::Kind::unix_path ? ep.path : "";
}
}

CtrlServer::CtrlServer(CommandRegistry& registry, CtrlServerConfig cfg)
    : registry_(registry), cfg_(std::move(cfg)) {
  logger_ = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
}

CtrlServer::~CtrlServer() { stop(); }

bool CtrlServer::start(std::string& error) {
  if (cfg_.listen_fd >= 0) {
    listen_.reset(cfg_.listen_fd);
    cfg_.listen_fd = -1;
  } else {
    Endpoint ep;
    if (!parse_endpoint(cfg_.socket_path, ep, error)) return false;
    if (ep.kind != Endpoint::Kind::unix_path) {
      error = "the ctrl socket must be a unix socket path";
      return false;
    }
    listen_ = listen_endpoint(ep, error, cfg_.mode, cfg_.group, 64);
    if (!listen_.valid()) return false;
    owns_path_ = true;
  }
  if (cfg_.ro_listen_fd >= 0) {
    listen_ro_.reset(cfg_.ro_listen_fd);
    cfg_.ro_listen_fd = -1;
  } else if (!cfg_.ro_socket_path.empty()) {
    Endpoint ro;
    if (!parse_endpoint(cfg_.ro_socket_path, ro, error)) return false;
    if (ro.kind != Endpoint::Kind::unix_path) {
      error = "the read-only ctrl socket must be a unix socket path";
      return false;
    }
    listen_ro_ = listen_endpoint(ro, error, cfg_.ro_mode, cfg_.group, 64);
    if (!listen_ro_.valid()) return false;
    owns_ro_path_ = true;
  }
  epoll_.reset(epoll_create1(EPOLL_CLOEXEC));
  wake_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (!epoll_.valid() || wake_ < 0) {
    error = "epoll/eventfd failed";
    return false;
  }
  auto add = [&](int fd, uint64_t tag) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = tag;
    epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev);
  };
  add(wake_, kWakeTag);
  add(listen_.get(), kListenTag);
  if (listen_ro_.valid()) add(listen_ro_.get(), kListenRoTag);
  thread_ = std::thread([this] { run(); });
  return true;
}

void CtrlServer::stop() {
  if (thread_.joinable()) {
    uint64_t one = 1;
    if (write(wake_, &one, sizeof one) < 0) {
      // eventfd write cannot fail short of a closed fd
    }
    thread_.join();
  }
  clients_.clear();
  per_uid_.clear();
  n_admin_ = n_ro_ = 0;
  nclients_ = 0;
  if (wake_ >= 0) close(wake_);
  wake_ = -1;
  // The socket files go with the sockets (a later start would remove them as stale, but
  // an operator should not find a socket that answers nothing).
  // Sockets from socket activation keep their files: the socket unit listens on.
  if (listen_.valid() && owns_path_) unlink(path_of(cfg_.socket_path).c_str());
  if (listen_ro_.valid() && owns_ro_path_) unlink(path_of(cfg_.ro_socket_path).c_str());
  owns_path_ = owns_ro_path_ = false;
  listen_.reset();
  listen_ro_.reset();
  epoll_.reset();
}

void CtrlServer::log(const std::string& line) {
  if (logger_) logger_(line);
}

void CtrlServer::run() {
  epoll_event events[64];
  for (;;) {
    const int tick_ms = static_cast<int>(
        std::clamp<uint64_t>(std::min(cfg_.first_request_timeout_ns, cfg_.idle_timeout_ns) / 4000000,
                             10, 1000));
    int n = epoll_wait(epoll_.get(), events, 64, tick_ms);
    if (n < 0 && errno != EINTR) return;
    for (int i = 0; i < n; ++i) {
      uint64_t tag = events[i].data.u64;
      if (tag == kWakeTag) return;
      if (tag == kListenTag) {
        accept_on(listen_.get(), false);
        continue;
      }
      if (tag == kListenRoTag) {
        accept_on(listen_ro_.get(), true);
        continue;
      }
      int fd = static_cast<int>(tag >> 8);
      auto it = clients_.find(fd);
      if (it == clients_.end()) continue;
      Client& c = *it->second;
      if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(c);
      if (clients_.count(fd) != 0 && (events[i].events & EPOLLOUT)) {
        if (!flush(c)) close_client(fd);
      }
    }
    uint64_t now = monotonic_ns();
    std::vector<int> idle, silent;
    for (auto& [fd, c] : clients_) {
      if (!c->spoke && now - c->last_active > cfg_.first_request_timeout_ns) silent.push_back(fd);
      else if (now - c->last_active > cfg_.idle_timeout_ns) idle.push_back(fd);
    }
    for (int fd : idle) {
      ++c_.idle_clients_closed;
      close_client(fd);
    }
    for (int fd : silent) {
      ++c_.silent_clients_closed;
      close_client(fd);
    }
  }
}

void CtrlServer::accept_on(int lfd, bool read_only) {
  for (;;) {
    int fd = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    ucred uc{};
    socklen_t len = sizeof uc;
    const bool have_cred = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) == 0;
    const uint64_t uid_key = (uint64_t{read_only} << 32) | (have_cred ? uc.uid : 0xffffffffu);
    const bool capped = !have_cred || cfg_.cap_exempt_uid < 0 ||
                        uc.uid != static_cast<uid_t>(cfg_.cap_exempt_uid);
    auto refuse = [&](const std::string& why) {
      std::string msg = Json{{"ok", false}, {"error", why}}.dump() + "\n";
      write_some(fd, msg.data(), msg.size());
      close(fd);
    };
    const size_t limit = read_only ? cfg_.max_ro_clients : cfg_.max_clients;
    if ((read_only ? n_ro_ : n_admin_) >= limit) {
      ++c_.clients_rejected;
      refuse(std::string("too many clients on the ") + (read_only ? "read-only" : "admin") +
             " ctrl socket (limit " + std::to_string(limit) + "); try again later");
      continue;
    }
    auto it = per_uid_.find(uid_key);
    if (capped && it != per_uid_.end() && it->second >= cfg_.max_clients_per_uid) {
      ++c_.clients_rejected_uid;
      refuse("too many clients of uid " + std::to_string(have_cred ? uc.uid : 0) +
             " on this ctrl socket (limit " + std::to_string(cfg_.max_clients_per_uid) +
             " per uid); close some first");
      continue;
    }
    auto c = std::make_unique<Client>();
    c->fd.reset(fd);
    c->read_only = read_only;
    c->last_active = monotonic_ns();
    if (have_cred) c->cred = PeerCred{uc.pid, uc.uid, uc.gid};
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = static_cast<uint64_t>(fd) << 8;
    if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) continue;  // c closes fd
    ++c_.clients_accepted;
    ++per_uid_[uid_key];
    ++(read_only ? n_ro_ : n_admin_);
    clients_.emplace(fd, std::move(c));
    nclients_ = clients_.size();
  }
}

void CtrlServer::close_client(int fd) {
  epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
  auto it = clients_.find(fd);
  if (it == clients_.end()) return;
  const Client& c = *it->second;
  const uint64_t uid_key = (uint64_t{c.read_only} << 32) | c.cred.uid;
  if (auto u = per_uid_.find(uid_key); u != per_uid_.end() && --u->second == 0) per_uid_.erase(u);
  --(c.read_only ? n_ro_ : n_admin_);
  clients_.erase(it);
  nclients_ = clients_.size();
}

void CtrlServer::on_readable(Client& c) {
  int fd = c.fd.get();
  char buf[16384];
  bool eof = false;
  // Bounded work per wake-up: a flooding client cannot monopolise the thread.
  for (int rounds = 0; rounds < 8 && !c.closing; ++rounds) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n == 0) {
      eof = true;
      break;
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) eof = true;
      break;
    }
    c.last_active = monotonic_ns();
    c.spoke = true;
    c.in.append(buf, static_cast<size_t>(n));
    size_t start = 0;
    for (;;) {
      size_t nl = c.in.find('\n', start);
      if (nl == std::string::npos) break;
      handle_line(c, std::string_view(c.in).substr(start, nl - start));
      start = nl + 1;
      if (c.closing) break;
    }
    c.in.erase(0, start);
    if (!c.closing && c.in.size() > cfg_.max_message) {
      ++c_.oversize;
      ++c_.replies_error;
      queue_reply(c, Json{{"ok", false},
                          {"error", "request longer than " + std::to_string(cfg_.max_message) +
                                        " bytes; closing"}}
                         .dump());
      c.closing = true;
      c.in.clear();
    }
  }
  if (eof && !c.closing) {
    // A last request without its newline (e.g. `printf '{...}' | socat`) is still served.
    if (!c.in.empty()) handle_line(c, c.in);
    c.in.clear();
    c.closing = true;
  }
  if (clients_.count(fd) == 0) return;
  if (!flush(c) || (c.closing && c.out_pos == c.out.size())) close_client(fd);
}

void CtrlServer::handle_line(Client& c, std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.find_first_not_of(" \t") == std::string_view::npos) return;
  ++c_.requests;
  Json reply;
  Json req;
  std::string error;
  auto fail = [&](std::string msg) {
    ++c_.replies_error;
    reply = Json{{"ok", false}, {"error", std::move(msg)}};
    if (req.is_object() && req.contains("id")) reply["id"] = req["id"];
    queue_reply(c, reply.dump(-1, ' ', false, Json::error_handler_t::replace));
  };
  if (!parse_json_bounded(line, cfg_.max_depth, req, error)) {
    if (error.starts_with("JSON nested")) {
      ++c_.too_deep;
    } else {
      ++c_.malformed;
    }
    req = nullptr;
    return fail(error);
  }
  if (!req.is_object() || !req.contains("command") || !req["command"].is_string()) {
    ++c_.malformed;
    return fail("a request is an object with a string \"command\" (and \"args\": [strings])");
  }
  std::vector<std::string> words;
  {
    const std::string& cmd = req["command"].get_ref<const std::string&>();
    size_t i = 0;
    while (i < cmd.size()) {
      size_t j = cmd.find(' ', i);
      if (j == std::string::npos) j = cmd.size();
      if (j > i) words.emplace_back(cmd.substr(i, j - i));
      i = j + 1;
    }
  }
  if (req.contains("args")) {
    const Json& a = req["args"];
    if (!a.is_array() || a.size() > cfg_.max_args) {
      ++c_.malformed;
      return fail("\"args\" must be an array of at most " + std::to_string(cfg_.max_args) +
                  " strings");
    }
    for (const auto& v : a) {
      if (!v.is_string()) {
        ++c_.malformed;
        return fail("\"args\" must hold strings only");
      }
      words.push_back(v.get<std::string>());
    }
  }
  CommandContext ctx;
  ctx.read_only = c.read_only;
  ctx.cred = c.cred;
  ctx.now_ns = monotonic_ns();
  const CommandSpec* spec = nullptr;
  size_t nargs = 0;
  CommandResult r = registry_.execute(ctx, words, &spec, &nargs);
  if (spec == nullptr) ++c_.unknown_command;
  if (spec != nullptr && spec->changes_state(nargs)) {
    if (c.read_only) {
      ++c_.read_only_refused;
    } else if (r.ok) {
      ++c_.mutating;
    }
    Json entry{{"ts_ns", realtime_ns()},  {"event", "ctrl_command"}, {"command", spec->name},
               {"args", words},           {"pid", c.cred.pid},       {"uid", c.cred.uid},
               {"gid", c.cred.gid},       {"socket", c.read_only ? "read-only" : "admin"},
               {"ok", r.ok}};
    if (!r.ok) entry["error"] = r.error;
    log(entry.dump(-1, ' ', false, Json::error_handler_t::replace));
  }
  if (!r.ok) return fail(r.error);
  reply = Json{{"ok", true}, {"result", std::move(r.result)}};
  if (req.contains("id")) reply["id"] = req["id"];
  queue_reply(c, reply.dump(-1, ' ', false, Json::error_handler_t::replace));
}

void CtrlServer::queue_reply(Client& c, const std::string& text) {
  if (c.out.size() - c.out_pos + text.size() > cfg_.max_backlog) {
    ++c_.slow_clients_dropped;
    c.closing = true;
    c.out.clear();
    c.out_pos = 0;
    c.fd.reset();  // flush() then fails and the client is removed
    return;
  }
  if (c.out_pos > 0 && c.out_pos == c.out.size()) {
    c.out.clear();
    c.out_pos = 0;
  }
  c.out += text;
  c.out += '\n';
}

bool CtrlServer::flush(Client& c) {
  if (!c.fd.valid()) return false;
  if (c.out_pos < c.out.size()) {
    long n = write_some(c.fd.get(), c.out.data() + c.out_pos, c.out.size() - c.out_pos);
    if (n < 0) return false;
    c.out_pos += static_cast<size_t>(n);
  }
  bool pending = c.out_pos < c.out.size();
  if (pending != c.want_out) {
    epoll_event ev{};
    ev.events = EPOLLIN | (pending ? EPOLLOUT : 0u);
    ev.data.u64 = static_cast<uint64_t>(c.fd.get()) << 8;
    epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, c.fd.get(), &ev);
    c.want_out = pending;
  }
  if (!pending) {
    c.out.clear();
    c.out_pos = 0;
    if (c.closing) return false;
  }
  return true;
}

void CtrlServer::metrics(std::vector<MetricSample>& out) const {
#define LOCKSTEP_X(name, help)                                                       \
  add_sample(out, "lockstep_ctrl_" #name "_total", help, MetricType::counter,       \
             static_cast<double>(c_.name.load()));
  LOCKSTEP_CTRL_SERVER_COUNTERS(LOCKSTEP_X)
#undef LOCKSTEP_X
  add_sample(out, "lockstep_ctrl_clients", "ctrl clients connected now", MetricType::gauge,
             static_cast<double>(nclients_.load()));
}

}  // namespace lockstep::ctrl
