// lockstepctl: the command-line client of lockstepd's ctrl socket.
//   lockstepctl [-s SOCKET] [-j [--pretty]] [-t SECONDS] COMMAND [ARG...]
// Exit status: 0 ok, 1 usage or connection failure, 2 the daemon rejected the command.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "ctrl/json_limits.h"
#include "ctrl/net.h"
#include "render.h"

#ifndef LOCKSTEP_VERSION
#define LOCKSTEP_VERSION "unknown"
#endif

using lockstep::ctrl::Json;

namespace {

constexpr const char* kDefaultSocket = "/run/lockstep/lockstep.ctl";
constexpr size_t kMaxReply = 64 << 20;

void usage(FILE* f) {
  std::fprintf(f,
               "usage: lockstepctl [OPTIONS] COMMAND [ARG...]\n"
               "  -s, --socket PATH   ctrl socket (default $LOCKSTEP_CTL_SOCKET or %s)\n"
               "  -j, --json          print the reply's result as JSON\n"
               "      --pretty        indent JSON output\n"
               "  -t, --timeout SEC   give up after SEC seconds (default 5)\n"
               "  -h, --help          this text; 'lockstepctl help [COMMAND]' asks the daemon\n"
               "  -V, --version       lockstepctl's version\n"
               "Commands come from the daemon: 'lockstepctl list-commands'.\n"
               "Exit status: 0 ok, 1 usage or connection failure, 2 rejected by the daemon.\n",
               kDefaultSocket);
}

int fail(const std::string& msg) {
  std::fprintf(stderr, "lockstepctl: %s\n", msg.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string socket_path;
  if (const char* env = std::getenv("LOCKSTEP_CTL_SOCKET"); env != nullptr && *env) socket_path = env;
  if (socket_path.empty()) socket_path = kDefaultSocket;
  bool json = false, pretty = false;
  double timeout_s = 5;
  int i = 1;
  for (; i < argc; ++i) {
    std::string a = argv[i];
    if (a.empty() || a[0] != '-') break;
    if (a == "--") {
      ++i;
      break;
    }
    auto value = [&](std::string& out) {
      auto eq = a.find('=');
      if (a.starts_with("--") && eq != std::string::npos) {
        out = a.substr(eq + 1);
        return true;
      }
      if (i + 1 >= argc) return false;
      out = argv[++i];
      return true;
    };
    std::string v;
    if (a == "-h" || a == "--help") {
      usage(stdout);
      return 0;
    } else if (a == "-V" || a == "--version") {
      std::printf("lockstepctl %s\n", LOCKSTEP_VERSION);
      return 0;
    } else if (a == "-j" || a == "--json") {
      json = true;
    } else if (a == "--pretty") {
      pretty = true;
    } else if (a == "-s" || a == "--socket" || a.starts_with("--socket=")) {
      if (!value(socket_path) || socket_path.empty()) return fail("-s needs a socket path");
    } else if (a == "-t" || a == "--timeout" || a.starts_with("--timeout=")) {
      char* end = nullptr;
      if (!value(v)) return fail("-t needs a number of seconds");
      timeout_s = std::strtod(v.c_str(), &end);
      if (end == v.c_str() || *end != '\0' || !(timeout_s > 0) || timeout_s > 3600) {
        return fail("-t takes seconds in (0, 3600], got '" + v + "'");
      }
    } else {
      usage(stderr);
      return fail("unknown option '" + a + "'");
    }
  }
  if (i >= argc) {
    usage(stderr);
    return 1;
  }
  std::string command = argv[i++];
  std::vector<std::string> args(argv + i, argv + argc);

  lockstep::ctrl::Endpoint ep;
  std::string error;
  if (!lockstep::ctrl::parse_endpoint(socket_path.find(':') == std::string::npos ||
                                              socket_path[0] == '/'
                                          ? "unix:" + socket_path
                                          : socket_path,
                                      ep, error) ||
      ep.kind != lockstep::ctrl::Endpoint::Kind::unix_path) {
    return fail("bad socket path '" + socket_path + "'");
  }
  lockstep::ctrl::Fd fd = lockstep::ctrl::connect_endpoint(ep, error, true);
  if (!fd.valid()) return fail(error + " (is lockstepd running? -s or LOCKSTEP_CTL_SOCKET)");

  Json req{{"command", command}, {"args", args}};
  std::string line = req.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
  uint64_t deadline = lockstep::ctrl::monotonic_ns() + static_cast<uint64_t>(timeout_s * 1e9);
  size_t sent = 0;
  bool send_failed = false;  // the daemon may have closed after telling us why: read it
  std::string reply;
  while (true) {
    uint64_t now = lockstep::ctrl::monotonic_ns();
    if (now >= deadline) return fail("no reply within " + std::to_string(timeout_s) + " s");
    const bool sending = sent < line.size() && !send_failed;
    pollfd p{fd.get(), static_cast<short>(sending ? POLLOUT | POLLIN : POLLIN), 0};
    int rc = poll(&p, 1, static_cast<int>((deadline - now) / 1000000 + 1));
    if (rc < 0 && errno != EINTR) return fail(std::string("poll: ") + std::strerror(errno));
    if (rc <= 0) continue;
    // Read first: a daemon that refuses us (too many clients) writes its reason and closes.
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      char buf[65536];
      ssize_t n = recv(fd.get(), buf, sizeof buf, 0);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (n <= 0) {
        if (reply.empty()) {
          return fail(send_failed ? "connection lost while sending"
                                  : "the daemon closed the connection without a reply");
        }
        break;
      }
      reply.append(buf, static_cast<size_t>(n));
      if (reply.find('\n') != std::string::npos) break;
      if (reply.size() > kMaxReply) return fail("reply larger than 64 MiB");
      continue;
    }
    if ((p.revents & POLLOUT) && sending) {
      long n = lockstep::ctrl::write_some(fd.get(), line.data() + sent, line.size() - sent);
      if (n < 0) {
        send_failed = true;
        continue;
      }
      sent += static_cast<size_t>(n);
    }
  }
  reply = reply.substr(0, reply.find('\n'));
  Json r = Json::parse(reply, nullptr, false);
  if (r.is_discarded() || !r.is_object() || !r.contains("ok")) {
    return fail("malformed reply from the daemon");
  }
  int indent = pretty ? 2 : -1;
  if (!r.value("ok", false)) {
    std::string err = r.contains("error") && r["error"].is_string() ? r["error"].get<std::string>()
                                                                   : "rejected";
    if (json) std::printf("%s\n", r.dump(indent, ' ', false, Json::error_handler_t::replace).c_str());
    std::fprintf(stderr, "lockstepctl: %s\n", err.c_str());
    return 2;
  }
  const Json& result = r.contains("result") ? r["result"] : Json(nullptr);
  if (json) {
    std::printf("%s\n", result.dump(indent, ' ', false, Json::error_handler_t::replace).c_str());
  } else {
    std::string out = lockstep::ctl::render_human(command, result);
    std::fwrite(out.data(), 1, out.size(), stdout);
  }
  return 0;
}
