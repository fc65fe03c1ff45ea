#include "ctrl/qmp_client.h"

#include <poll.h>
#include <sys/socket.h>

#include "ctrl/qmp_codec.h"

namespace lockstep::ctrl {

namespace {

// Reads until a message other than an event arrives, or the deadline.
bool read_answer(int fd, QmpDecoder& dec, uint64_t deadline, QmpMessage& msg, std::string& error) {
  for (;;) {
    QmpStatus st = dec.next(msg);
    if (st == QmpStatus::message && msg.kind != QmpKind::event) return true;
    if (st == QmpStatus::message) continue;
    if (st == QmpStatus::invalid) {
      error = "junk from QEMU: " + dec.last_error();
      return false;
    }
    if (st == QmpStatus::oversize) {
      error = "QMP line too long";
      return false;
    }
    uint64_t now = monotonic_ns();
    if (now >= deadline) {
      error = "QEMU did not answer in time";
      return false;
    }
    pollfd p{fd, POLLIN, 0};
    int ms = static_cast<int>((deadline - now + 999999) / 1000000);
    if (poll(&p, 1, ms) < 0 && errno != EINTR) {
      error = "poll failed";
      return false;
    }
    char buf[4096];
    ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n == 0) {
      error = "QEMU closed the connection";
      return false;
    }
    if (n > 0) dec.push(buf, static_cast<size_t>(n));
  }
}

bool send_all(int fd, const std::string& s, std::string& error) {
  size_t off = 0;
  while (off < s.size()) {
    long n = write_some(fd, s.data() + off, s.size() - off);
    if (n < 0) {
      error = "write to QEMU failed";
      return false;
    }
    if (n == 0) {
      pollfd p{fd, POLLOUT, 0};
      poll(&p, 1, 100);
    }
    off += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

bool qmp_execute(const Endpoint& ep, std::string_view command, const Json& args,
                 uint64_t timeout_ns, Json& reply, std::string& error) {
  uint64_t deadline = monotonic_ns() + timeout_ns;
  Fd fd = connect_endpoint(ep, error, /*nonblocking=*/true);
  if (!fd.valid()) return false;
  QmpDecoder dec;
  QmpMessage msg;
  if (!read_answer(fd.get(), dec, deadline, msg, error)) return false;
  if (msg.kind == QmpKind::error) {  // the libvirt bridge could not reach the domain
    error = msg.error_class + ": " + msg.error_desc;
    return false;
  }
  if (msg.kind != QmpKind::greeting) {
    error = "no QMP greeting";
    return false;
  }
  if (!send_all(fd.get(), encode_qmp_command("qmp_capabilities", Json(), 1), error)) return false;
  if (!read_answer(fd.get(), dec, deadline, msg, error)) return false;
  if (msg.kind != QmpKind::reply) {
    error = "qmp_capabilities refused: " + msg.error_desc;
    return false;
  }
  if (!send_all(fd.get(), encode_qmp_command(command, args, 2), error)) return false;
  if (!read_answer(fd.get(), dec, deadline, msg, error)) return false;
  if (msg.kind == QmpKind::error) {
    error = msg.error_class + ": " + msg.error_desc;
    return false;
  }
  if (msg.kind != QmpKind::reply) {
    error = "unexpected " + std::string(to_string(msg.kind));
    return false;
  }
  reply = msg.value;
  return true;
}

}  // namespace lockstep::ctrl
