#include "tests/qemu/colo_peer.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string_view>

#include "common/byte_order.h"

namespace lockstep::qtest {

namespace {

bool write_all(int fd, const void* data, size_t len) {
  const auto* p = static_cast<const uint8_t*>(data);
  while (len > 0) {
    ssize_t n = ::send(fd, p, len, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        pollfd pf{fd, POLLOUT, 0};
        poll(&pf, 1, 100);
        continue;
      }
      return false;
    }
    p += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

int connect_unix(const std::string& path, int timeout_ms) {
  const uint64_t until = now_ns() + uint64_t(timeout_ms) * 1000000;
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.size() >= sizeof sa.sun_path) return -1;
  std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
  for (;;) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) return fd;
    close(fd);
    if (now_ns() > until) return -1;
    usleep(10000);
  }
}

std::string notify_frame(std::string_view msg, bool vnet) {
  std::string s(vnet ? 8 : 4, '\0');
  store_be32(reinterpret_cast<uint8_t*>(s.data()), static_cast<uint32_t>(msg.size()));
  s += msg;
  return s;
}

bool spawn(Instance& inst, const std::vector<std::string>& argv, std::string& error) {
  const std::string logpath = inst.dir + "/" + inst.name + ".log";
  pid_t pid = fork();
  if (pid < 0) {
    error = "fork failed";
    return false;
  }
  if (pid == 0) {
    int fd = open(logpath.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  inst.pid = pid;
  return true;
}

}  // namespace

uint64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

void sleep_until_ns(uint64_t t) {
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(t / 1000000000ull);
  ts.tv_nsec = static_cast<long>(t % 1000000000ull);
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
  }
}

std::string find_qemu() {
  if (const char* e = getenv("QEMU_SYSTEM"); e && *e) return access(e, X_OK) == 0 ? e : "";
  const char* path = getenv("PATH");
  std::string p = path ? path : "/usr/bin:/bin";
  p += ":/usr/bin";
  std::stringstream ss(p);
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    std::string f = dir + "/qemu-system-x86_64";
    if (!dir.empty() && access(f.c_str(), X_OK) == 0) return f;
  }
  return "";
}

bool start_qemu(Instance& inst, const std::string& qemu, const QemuOptions& o, std::string& error) {
  std::vector<std::string> a{qemu, "-machine", "none", "-nodefaults", "-display", "none",
                             "-monitor", "none", "-serial", "none"};
  for (const char* s : {"pri", "sec", "out", "ntf"}) {
    a.push_back("-chardev");
    a.push_back(std::string("socket,id=") + s + ",path=" + inst.path(s) + ",server=on,wait=off");
  }
  a.push_back("-object");
  a.push_back("iothread,id=it0");
  a.push_back("-object");
  a.push_back("colo-compare,id=cmp0,primary_in=pri,secondary_in=sec,outdev=out,iothread=it0,"
              "notify_dev=ntf,compare_timeout=" + std::to_string(o.compare_timeout_ms) +
              ",expired_scan_cycle=" + std::to_string(o.expired_scan_cycle_ms) +
              ",max_queue_size=" + std::to_string(o.max_queue_size) +
              (o.vnet_hdr ? ",vnet_hdr_support=on" : ""));
  return spawn(inst, a, error);
}

std::vector<std::string> command_words(const std::string& cmd) {
  std::vector<std::string> w;
  std::stringstream ss(cmd);
  std::string one;
  while (ss >> one) w.push_back(one);
  return w;
}

bool spawn_lockstep(Instance& inst, const std::string& cmd, const std::vector<std::string>& props,
                    std::string& error) {
  std::vector<std::string> a = command_words(cmd);
  a.insert(a.end(), props.begin(), props.end());
  return spawn(inst, a, error);
}

bool start_lockstep(Instance& inst, const std::string& cmd, const std::vector<std::string>& props,
                    std::string& error) {
  std::vector<std::string> a{"primary_in=unix:" + inst.path("pri") + ",server",
                             "secondary_in=unix:" + inst.path("sec") + ",server",
                             "outdev=unix:" + inst.path("out") + ",server",
                             "notify_dev=unix:" + inst.path("ntf") + ",server"};
  a.insert(a.end(), props.begin(), props.end());
  return spawn_lockstep(inst, cmd, a, error);
}

std::string stop(Instance& inst) {
  if (inst.pid > 0) {
    kill(inst.pid, SIGTERM);
    int status = 0;
    const uint64_t until = now_ns() + 3'000'000'000ull;
    while (waitpid(inst.pid, &status, WNOHANG) == 0) {
      if (now_ns() > until) {
        kill(inst.pid, SIGKILL);
        waitpid(inst.pid, &status, 0);
        break;
      }
      usleep(5000);
    }
    inst.pid = -1;
  }
  std::ifstream f(inst.dir + "/" + inst.name + ".log");
  std::stringstream ss;
  ss << f.rdbuf();
  inst.log = ss.str();
  return inst.log;
}

Peer::~Peer() {
  stop_reader();
  for (int fd : {pri_, sec_, out_, ntf_}) {
    if (fd >= 0) close(fd);
  }
}

bool Peer::connect(const Instance& inst, bool vnet, std::string& error, int timeout_ms) {
  vnet_ = vnet;
  pri_ = connect_unix(inst.path("pri"), timeout_ms);
  sec_ = connect_unix(inst.path("sec"), timeout_ms);
  out_ = connect_unix(inst.path("out"), timeout_ms);
  ntf_ = connect_unix(inst.path("ntf"), timeout_ms);
  if (pri_ < 0 || sec_ < 0 || out_ < 0 || ntf_ < 0) {
    error = inst.name + ": could not connect to its sockets in " + inst.dir;
    return false;
  }
  int big = 4 << 20;
  for (int fd : {pri_, sec_, out_}) {
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  }
  return true;
}

bool Peer::hello(std::string& error, int timeout_ms) {
  const std::string m = notify_frame("COLO_USERSPACE_PROXY_INIT", vnet_);
  if (!write_all(ntf_, m.data(), m.size())) {
    error = "hello: write failed";
    return false;
  }
  const std::string want = notify_frame("COLO_COMPARE_GET_XEN_INIT", false);
  std::string got;
  const uint64_t until = now_ns() + uint64_t(timeout_ms) * 1000000;
  while (got.size() < want.size() && now_ns() < until) {
    pollfd pf{ntf_, POLLIN, 0};
    if (poll(&pf, 1, 50) <= 0) continue;
    char b[64];
    ssize_t n = recv(ntf_, b, std::min(sizeof b, want.size() - got.size()), 0);
    if (n <= 0) break;
    got.append(b, static_cast<size_t>(n));
  }
  if (got != want) {
    error = "hello: no COLO_COMPARE_GET_XEN_INIT reply";
    return false;
  }
  return true;
}

void Peer::append_framed(std::vector<uint8_t>& buf, const uint8_t* f, uint32_t len) const {
  uint8_t h[8]{};
  store_be32(h, len);
  buf.insert(buf.end(), h, h + (vnet_ ? 8 : 4));
  buf.insert(buf.end(), f, f + len);
}

bool Peer::send_frame(int fd, const uint8_t* f, uint32_t len) {
  uint8_t h[8]{};
  store_be32(h, len);
  iovec iov[2] = {{h, vnet_ ? size_t{8} : size_t{4}}, {const_cast<uint8_t*>(f), len}};
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = 2;
  ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL);
  if (n < 0) return false;
  size_t total = iov[0].iov_len + len;
  if (static_cast<size_t>(n) == total) return true;
  // Short write: finish the rest byte-exactly.
  std::vector<uint8_t> rest(h, h + iov[0].iov_len);
  rest.insert(rest.end(), f, f + len);
  return write_all(fd, rest.data() + n, total - static_cast<size_t>(n));
}

bool Peer::send_raw(bool svm, const uint8_t* p, size_t len) { return write_all(svm ? sec_ : pri_, p, len); }

void Peer::start(uint64_t answer_delay_ns, bool keep_bytes, uint32_t tag_off) {
  configure(answer_delay_ns, keep_bytes, tag_off);
  th_ = std::thread([this] { run(); });
}

void Peer::configure(uint64_t answer_delay_ns, bool keep_bytes, uint32_t tag_off) {
  delay_ = answer_delay_ns;
  keep_ = keep_bytes;
  tag_off_ = tag_off;
  stop_ = false;
  last_activity_ = now_ns();
  ob_.assign(1 << 20, 0);
  ob_len_ = 0;
  nb_.clear();
}

void Peer::stop_reader() {
  if (th_.joinable()) {
    stop_ = true;
    th_.join();
  }
}

void Peer::run() {
  while (!stop_) {
    int timeout = 20;
    const uint64_t at = answer_at_.load();
    if (at != 0) {
      const uint64_t now = now_ns();
      timeout = at <= now ? 0 : static_cast<int>(std::min<uint64_t>((at - now) / 1000000 + 1, 20));
    }
    pump(timeout);
  }
}

bool Peer::pump(int timeout_ms) {
  const size_t hl = vnet_ ? 8 : 4;
  const uint64_t before = released_.load();
  const uint64_t at = answer_at_.load();
  if (at != 0) {
    const uint64_t now = now_ns();
    const int until_answer = at <= now ? 0 : static_cast<int>((at - now) / 1000000 + 1);
    timeout_ms = timeout_ms < 0 ? until_answer : std::min(timeout_ms, until_answer);
  }
  pollfd pf[2] = {{out_, POLLIN, 0}, {ntf_, POLLIN, 0}};
  if (timeout_ms == 0 && ++spins_ % 16 != 0) {
    // Spinning: read outdev straight away (a recv that finds nothing costs what a poll
    // does); notify_dev is looked at on every 16th turn.
    pf[0].revents = POLLIN;
  } else {
    poll(pf, 2, timeout_ms);
  }
  const uint64_t now = now_ns();
  if (pf[0].revents & (POLLIN | POLLHUP | POLLERR)) {
    ssize_t n = recv(out_, ob_.data() + ob_len_, ob_.size() - ob_len_, MSG_DONTWAIT);
    if (n == 0) broken_ = true;
    if (n > 0) {
      ob_len_ += static_cast<size_t>(n);
      size_t pos = 0;
      std::lock_guard lock(mu);
      while (ob_len_ - pos >= hl) {
        const uint32_t len = load_be32(ob_.data() + pos);
        if (len > ob_.size() - hl) {
          broken_ = true;
          break;
        }
        if (ob_len_ - pos < hl + len) break;
        const uint8_t* f = ob_.data() + pos + hl;
        uint32_t tag = 0;
        if (tag_off_ != 0 && len >= tag_off_ + 4) tag = load_be32(f + tag_off_);
        rx.push_back({now, len, tag});
        if (keep_) frames.emplace_back(f, f + len);
        pos += hl + len;
        ++released_;
      }
      std::memmove(ob_.data(), ob_.data() + pos, ob_len_ - pos);
      ob_len_ -= pos;
      last_activity_ = now;
    }
  }
  if (pf[1].revents & (POLLIN | POLLHUP | POLLERR)) {
    char b[4096];
    ssize_t n = recv(ntf_, b, sizeof b, MSG_DONTWAIT);
    if (n == 0) broken_ = true;
    if (n > 0) {
      nb_.insert(nb_.end(), b, b + n);
      size_t pos = 0;
      while (nb_.size() - pos >= 4) {
        const uint32_t len = load_be32(nb_.data() + pos);
        if (nb_.size() - pos < 4 + size_t{len}) break;
        std::string_view msg(reinterpret_cast<const char*>(nb_.data() + pos + 4), len);
        if (msg == "DO_CHECKPOINT") {
          ++do_ckpt_;
          if (answer_at_.load() == 0) answer_at_ = now + delay_;
        }
        pos += 4 + len;
      }
      nb_.erase(nb_.begin(), nb_.begin() + static_cast<long>(pos));
      last_activity_ = now;
    }
  }
  const uint64_t due = answer_at_.load();
  if (due != 0 && now_ns() >= due) {
    const std::string answer = notify_frame("COLO_CHECKPOINT", vnet_);
    write_all(ntf_, answer.data(), answer.size());
    ++answered_;
    answer_at_ = 0;
    last_activity_ = now_ns();
  }
  return released_.load() != before;
}

}  // namespace lockstep::qtest
