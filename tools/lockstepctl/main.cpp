// lockstepctl: the command-line client of lockstepd's ctrl socket.
//   lockstepctl [-s SOCKET] [-j [--pretty]] [-t SECONDS] COMMAND [ARG...] [-j] [--pretty]
//   lockstepctl help [COMMAND]    lockstepctl COMMAND --help
// Exit status: 0 ok, 1 usage or connection failure, 2 the daemon rejected the command.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "catalog.h"
#include "common/cli.h"
#include "ctrl/json_limits.h"
#include "ctrl/net.h"
#include "render.h"

using lockstep::ctrl::Json;

namespace {

constexpr const char* kDefaultSocket = "/run/lockstep/lockstep.ctl";
constexpr size_t kMaxReply = 64 << 20;
constexpr int kExitUsage = 1;
constexpr int kExitRejected = 2;

int fail(const std::string& msg) {
  std::fprintf(stderr, "lockstepctl: %s\n", msg.c_str());
  return 1;
}

struct Options {
  std::string socket_path;
  bool json = false, pretty = false, help = false;
  double timeout_s = 5;
  std::string guest;               // -g: appended to the words as --guest NAME
  std::vector<std::string> words;  // COMMAND [ARG...]
};

// Talking. The ctrl socket of `o`, connected; invalid with `error` (`unreachable` when
// no daemon listens).
lockstep::ctrl::Fd connect_ctl(const Options& o, std::string& error, bool& unreachable) {
  unreachable = false;
  lockstep::ctrl::Endpoint ep;
  const std::string& socket_path = o.socket_path;
  if (!lockstep::ctrl::parse_endpoint(socket_path.find(':') == std::string::npos ||
                                              socket_path[0] == '/'
                                          ? "unix:" + socket_path
                                          : socket_path,
                                      ep, error) ||
      ep.kind != lockstep::ctrl::Endpoint::Kind::unix_path) {
    error = "bad socket path '" + socket_path + "'";
    return {};
  }
  lockstep::ctrl::Fd fd = lockstep::ctrl::connect_endpoint(ep, error, true);
  if (!fd.valid()) {
    error += " (is lockstepd running? -s or LOCKSTEP_CTL_SOCKET)";
    unreachable = true;
  }
  return fd;
}

// Sends `line` and reads until the first newline of the reply (returned without it),
// within `timeout_s`. A daemon that refuses us (too many clients) writes its reason and
// closes: the reply is read first, and a failed send still reads it.
bool send_and_read(int fd, const std::string& line, double timeout_s, std::string& reply,
                   std::string& error) {
  const uint64_t deadline =
      lockstep::ctrl::monotonic_ns() + static_cast<uint64_t>(timeout_s * 1e9);
  size_t sent = 0;
  bool send_failed = false;
  while (true) {
    const uint64_t now = lockstep::ctrl::monotonic_ns();
    if (now >= deadline) {
      error = "no reply within " + std::to_string(timeout_s) + " s";
      return false;
    }
    const bool sending = sent < line.size() && !send_failed;
    pollfd p{fd, static_cast<short>(sending ? POLLOUT | POLLIN : POLLIN), 0};
    const int rc = poll(&p, 1, static_cast<int>((deadline - now) / 1000000 + 1));
    if (rc < 0 && errno != EINTR) {
      error = std::string("poll: ") + std::strerror(errno);
      return false;
    }
    if (rc <= 0) continue;
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      char buf[65536];
      const ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (n <= 0) {
        if (reply.empty()) {
          error = send_failed ? "connection lost while sending"
                              : "the daemon closed the connection without a reply";
          return false;
        }
        break;
      }
      reply.append(buf, static_cast<size_t>(n));
      if (reply.find('\n') != std::string::npos) break;
      if (reply.size() > kMaxReply) {
        error = "reply larger than 64 MiB";
        return false;
      }
      continue;
    }
    if ((p.revents & POLLOUT) && sending) {
      const long n = lockstep::ctrl::write_some(fd, line.data() + sent, line.size() - sent);
      if (n < 0) {
        send_failed = true;
        continue;
      }
      sent += static_cast<size_t>(n);
    }
  }
  reply = reply.substr(0, reply.find('\n'));
  return true;
}

// One request, one reply line. False with `error`; `unreachable` when no daemon listens.
bool exchange(const Options& o, const std::string& command, const std::vector<std::string>& args,
              Json& r, std::string& error, bool& unreachable) {
  lockstep::ctrl::Fd fd = connect_ctl(o, error, unreachable);
  if (!fd.valid()) return false;
  const Json req{{"command", command}, {"args", args}};
  const std::string line = req.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
  std::string reply;
  if (!send_and_read(fd.get(), line, o.timeout_s, reply, error)) return false;
  r = Json::parse(reply, nullptr, false);
  if (r.is_discarded() || !r.is_object() || !r.contains("ok")) {
    error = "malformed reply from the daemon";
    return false;
  }
  return true;
}

// Printing.
void print_json(const Json& j, bool pretty) {
  std::printf("%s\n", j.dump(pretty ? 2 : -1, ' ', false, Json::error_handler_t::replace).c_str());
}

// The command's name among `words` (which may carry arguments): the longest prefix the
// built-in list knows, else every word.
std::string command_name(const std::vector<std::string>& words) {
  std::string name, best;
  for (size_t i = 0; i < words.size() && i < 4; ++i) {
    name += (i ? " " : "") + words[i];
    if (!lockstep::ctl::builtin_help(name).is_null()) best = name;
  }
  return best.empty() ? name : best;
}

// `help` without a command: the built-in list, extended by the daemon's when it answers.
int help_list(const Options& o) {
  Json r;
  std::string error;
  bool unreachable = false;
  Json list = lockstep::ctl::builtin_commands();
  if (exchange(o, "help", {}, r, error, unreachable)) {
    if (r.value("ok", false) && r.contains("result")) {
      list = lockstep::ctl::merge_command_lists(r["result"], list);
    }
  } else if (!o.json) {
    std::fprintf(stderr, "lockstepctl: %s; the built-in command list follows\n", error.c_str());
  }
  if (o.json) {
    print_json(list, o.pretty);
  } else {
    std::string out = lockstep::ctl::render_command_list(list, lockstep::cli::kHelpColumns);
    std::fwrite(out.data(), 1, out.size(), stdout);
  }
  return 0;
}

// `help COMMAND` and `COMMAND --help`: the daemon's answer, or the built-in one when no
// daemon is reachable.
int help_command(const Options& o, const std::vector<std::string>& words) {
  const std::string name = command_name(words);
  Json r;
  std::string error;
  bool unreachable = false;
  Json help;
  std::vector<std::string> name_words;
  for (size_t b = 0, e; b <= name.size(); b = e + 1) {
    e = std::min(name.find(' ', b), name.size());
    name_words.push_back(name.substr(b, e - b));
  }
  if (exchange(o, "help", name_words, r, error, unreachable)) {
    if (!r.value("ok", false)) {
      if (o.json) print_json(r, o.pretty);
      std::fprintf(stderr, "lockstepctl: %s\n",
                   r.contains("error") && r["error"].is_string()
                       ? r["error"].get<std::string>().c_str()
                       : "rejected");
      return kExitRejected;
    }
    help = r.contains("result") ? r["result"] : Json(nullptr);
  } else if (!unreachable) {
    return fail(error);
  } else {
    help = lockstep::ctl::builtin_help(name);
    if (help.is_null()) {
      std::fprintf(stderr, "lockstepctl: unknown command '%s' (try 'lockstepctl help')\n",
                   name.c_str());
      return kExitRejected;
    }
  }
  if (o.json) {
    print_json(help, o.pretty);
  } else if (help.is_object() && help.contains("usage")) {
    std::string out = lockstep::ctl::render_command_help(help, lockstep::cli::kHelpColumns);
    std::fwrite(out.data(), 1, out.size(), stdout);
  } else {
    std::string out = lockstep::ctl::render_human("help", help);
    std::fwrite(out.data(), 1, out.size(), stdout);
  }
  return 0;
}

// Options before the command are lockstepctl's; after it, only -j/--json, --pretty and
// -h/--help are (every other word goes to the command: `qos show -s`, `stats --reset`).
// "--" ends lockstepctl's options.
int parse(int argc, char** argv, Options& o) {
  if (const char* env = std::getenv("LOCKSTEP_CTL_SOCKET"); env != nullptr && *env) {
    o.socket_path = env;
  }
  if (o.socket_path.empty()) o.socket_path = kDefaultSocket;
  CLI::App app{"Sends one command to lockstepd over its ctrl socket and prints the reply.",
               "lockstepctl"};
  lockstep::cli::setup(app,
                       {"[OPTIONS] COMMAND [ARG...]", "help [COMMAND]", "COMMAND --help"},
                       "Options -j, --json and --pretty may also follow the command.\n"
                       "'lockstepctl help' lists the commands (a running daemon adds its own).\n"
                       "Exit status: 0 ok, 1 usage or connection failure, 2 rejected by the "
                       "daemon.");
  app.add_option("-s,--socket", o.socket_path,
                 std::string("ctrl socket ($LOCKSTEP_CTL_SOCKET, else ") + kDefaultSocket +
                     ")")
      ->type_name("PATH")
      ->check([](const std::string& v) {
        return v.empty() ? std::string("needs a socket path") : std::string();
      });
  app.add_flag("-j,--json", o.json, "print the reply's result as JSON");
  app.add_flag("--pretty", o.pretty, "indent JSON output");
  app.add_option("-g,--guest", o.guest,
                 "the guest a command is for (lockstepd with guests:)")
      ->type_name("NAME");
  app.add_option("-t,--timeout", o.timeout_s, "give up after SEC seconds (default 5)")
      ->type_name("SEC")
      ->check([](const std::string& v) {
        char* end = nullptr;
        double d = std::strtod(v.c_str(), &end);
        return end == v.c_str() || *end != '\0' || !(d > 0) || d > 3600
                   ? "takes seconds in (0, 3600], got '" + v + "'"
                   : std::string();
      });
  app.prefix_command();
  if (int rc = lockstep::cli::parse(app, argc, argv, kExitUsage); rc >= 0) return rc;
  std::vector<std::string> rest = app.remaining();
  auto with_guest = [&o] {
    if (o.guest.empty()) return;
    o.words.push_back("--guest");
    o.words.push_back(o.guest);
  };
  if (!rest.empty() && rest.front() == "--") {
    rest.erase(rest.begin());
    o.words = std::move(rest);
    with_guest();
    return -1;
  }
  if (rest.empty()) {
    std::fputs(app.help().c_str(), stderr);
    return kExitUsage;
  }
  // CLI11 hands an unknown option before the command on with the rest.
  if (rest.front().size() > 1 && rest.front()[0] == '-') {
    return lockstep::cli::usage_error(app, "unknown option '" + rest.front() + "'", kExitUsage);
  }
  CLI::App after{"", "lockstepctl"};
  after.set_help_flag();
  after.add_flag("-j,--json", o.json);
  after.add_flag("--pretty", o.pretty);
  after.add_flag("-h,--help", o.help);
  after.allow_extras();
  if (int rc = lockstep::cli::parse(after, rest, kExitUsage); rc >= 0) return rc;
  o.words = after.remaining();
  if (auto dd = std::find(o.words.begin(), o.words.end(), "--"); dd != o.words.end()) {
    o.words.erase(dd);
  }
  with_guest();
  return -1;
}

// `events -f`: prints what the log holds (or what --since selects), then asks every half
// second for the events after the last one seen, until interrupted or the daemon goes.
// JSON: one event object per line.
int follow_events(const Options& o, std::vector<std::string> args) {
  uint64_t last = 0;
  bool first = true;
  for (;;) {
    std::vector<std::string> a = args;
    if (!first) {
      // --since only selects the first batch; then everything after the last seen.
      for (size_t i = 0; i + 1 < a.size();) {
        if (a[i] == "--since" || a[i] == "--after") {
          a.erase(a.begin() + static_cast<std::ptrdiff_t>(i), a.begin() + static_cast<std::ptrdiff_t>(i) + 2);
        } else {
          ++i;
        }
      }
      a.push_back("--after");
      a.push_back(std::to_string(last));
    }
    Json r;
    std::string error;
    bool unreachable = false;
    if (!exchange(o, "events", a, r, error, unreachable)) return fail(error);
    if (!r.value("ok", false)) {
      std::fprintf(stderr, "lockstepctl: %s\n", r.value("error", std::string("rejected")).c_str());
      return kExitRejected;
    }
    const Json& res = r["result"];
    if (o.json) {
      for (const Json& e : res.value("events", Json::array())) print_json(e, false);
    } else {
      const std::string text = res.value("text", "");
      std::fwrite(text.data(), 1, text.size(), stdout);
    }
    std::fflush(stdout);
    last = std::max(last, res.value("last_seq", uint64_t{0}));
    first = false;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

// A command's reply: its result (JSON or for people), or the daemon's refusal on stderr.
// The exit status.
int print_reply(const Options& o, const std::string& command, const Json& r) {
  if (!r.value("ok", false)) {
    std::string err = r.contains("error") && r["error"].is_string() ? r["error"].get<std::string>()
                                                                   : "rejected";
    if (o.json) print_json(r, o.pretty);
    std::fprintf(stderr, "lockstepctl: %s\n", err.c_str());
    return kExitRejected;
  }
  const Json& result = r.contains("result") ? r["result"] : Json(nullptr);
  if (o.json) {
    print_json(result, o.pretty);
  } else {
    std::string out = lockstep::ctl::render_human(command, result);
    std::fwrite(out.data(), 1, out.size(), stdout);
  }
  return 0;
}

// Takes -f/--follow out of `events`' arguments: whether it was there.
bool take_follow(std::vector<std::string>& args) {
  auto f = std::find_if(args.begin(), args.end(),
                        [](const std::string& w) { return w == "-f" || w == "--follow"; });
  if (f == args.end()) return false;
  args.erase(f);
  return true;
}

}  // namespace

// Parse, talk, print.
int main(int argc, char** argv) {
  Options o;
  if (int rc = parse(argc, argv, o); rc >= 0) return rc;
  if (o.help || (!o.words.empty() && o.words.front() == "help")) {
    std::vector<std::string> words = o.words;
    if (!o.help) words.erase(words.begin());
    return words.empty() ? help_list(o) : help_command(o, words);
  }
  if (o.words.empty()) return fail("no command given (try 'lockstepctl help')");
  const std::string command = o.words.front();
  std::vector<std::string> args(o.words.begin() + 1, o.words.end());
  if (command == "events" && take_follow(args)) return follow_events(o, args);
  Json r;
  std::string error;
  bool unreachable = false;
  if (!exchange(o, command, args, r, error, unreachable)) return fail(error);
  return print_reply(o, command, r);
}
