#include "tests/bench/pair_relay.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <memory>

#include "common/byte_order.h"

namespace lockstep::bench {

namespace {

constexpr size_t kBuf = 4 << 20;  // per input; a frame is at most 69,632 bytes

int listen_unix(const std::string& path) {
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.size() >= sizeof a.sun_path) return -1;
  std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
  unlink(path.c_str());
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd, 4) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// One input stream: bytes read, complete frames found in them.
struct Input {
  int fd = -1;
  std::unique_ptr<uint8_t[]> buf = std::make_unique_for_overwrite<uint8_t[]>(kBuf);
  size_t head = 0;    // first byte not yet consumed (written out or dropped)
  size_t parsed = 0;  // end of the last complete frame found
  size_t tail = 0;    // end of the bytes read
  std::deque<size_t> ends;  // PVM: end offsets of complete frames not yet released

  // Reads what is there; false when the peer is gone.
  bool fill() {
    if (tail == kBuf) {  // compact
      std::memmove(buf.get(), buf.get() + head, tail - head);
      for (size_t& e : ends) e -= head;
      parsed -= head;
      tail -= head;
      head = 0;
      if (tail == kBuf) return true;
    }
    const ssize_t n = recv(fd, buf.get() + tail, kBuf - tail, MSG_DONTWAIT);
    if (n == 0) return false;
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    tail += static_cast<size_t>(n);
    return true;
  }
  // Complete frames past `parsed`: counted, and their ends kept when `keep`.
  uint64_t cut(bool keep) {
    uint64_t frames = 0;
    while (tail - parsed >= 4) {
      const size_t end = parsed + 4 + load_be32(buf.get() + parsed);
      if (end > tail) break;
      parsed = end;
      ++frames;
      if (keep) ends.push_back(end);
    }
    return frames;
  }
};

[[noreturn]] void relay(const qtest::Instance& inst) {
  int lfd[4];
  const char* names[4] = {"pri", "sec", "out", "ntf"};
  for (int i = 0; i < 4; ++i) {
    lfd[i] = listen_unix(inst.path(names[i]));
    if (lfd[i] < 0) {
      std::fprintf(stderr, "pair_relay: cannot listen on %s\n", inst.path(names[i]).c_str());
      _exit(1);
    }
  }
  int cfd[4] = {-1, -1, -1, -1};
  for (int i = 0; i < 4; ++i) {
    cfd[i] = accept4(lfd[i], nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (cfd[i] < 0) _exit(1);
  }
  Input pri, sec;
  pri.fd = cfd[0];
  sec.fd = cfd[1];
  const int out = cfd[2], ntf = cfd[3];
  uint64_t svm_ahead = 0;  // SVM frames whose PVM twin is not released yet
  char junk[4096];
  for (uint32_t turn = 0;; ++turn) {
    if (!sec.fill()) _exit(0);
    svm_ahead += sec.cut(false);
    sec.head = sec.parsed;  // SVM frames are only counted
    if (sec.head == sec.tail) sec.head = sec.parsed = sec.tail = 0;
    if (!pri.fill()) _exit(0);
    pri.cut(true);
    // The PVM frames whose twins are in go out in one write.
    size_t upto = pri.head;
    size_t k = 0;
    while (k < pri.ends.size() && k < svm_ahead) upto = pri.ends[k++];
    if (upto > pri.head) {
      const ssize_t n = send(out, pri.buf.get() + pri.head, upto - pri.head, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) _exit(0);
      if (n > 0) {
        pri.head += static_cast<size_t>(n);
        while (!pri.ends.empty() && pri.ends.front() <= pri.head) {
          pri.ends.pop_front();
          --svm_ahead;
        }
      }
    }
    if (pri.head == pri.tail) pri.head = pri.parsed = pri.tail = 0;
    if (turn % 64 == 0) {
      while (recv(ntf, junk, sizeof junk, MSG_DONTWAIT) > 0) {
      }
      while (recv(out, junk, sizeof junk, MSG_DONTWAIT) > 0) {
      }
    }
  }
}

}  // namespace

bool start_pair_relay(qtest::Instance& inst, std::string& error) {
  const pid_t pid = fork();
  if (pid < 0) {
    error = "fork failed";
    return false;
  }
  if (pid == 0) {
    signal(SIGTERM, SIG_DFL);
    relay(inst);
  }
  inst.pid = pid;
  return true;
}

}  // namespace lockstep::bench
