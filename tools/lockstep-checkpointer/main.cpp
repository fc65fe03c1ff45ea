// lockstep-checkpointer: a reference checkpointer for tests and the demo. It speaks the
// native protocol or QEMU's notify_dev dialect, as client or server, over unix or TCP;
// answers checkpoint requests after a set latency; injects faults (drop, delay, garble
// answers; die mid-checkpoint; stop heartbeats); sends heartbeats. Every action is logged
// as one JSON line on stdout (or --log FILE).
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "common/cli.h"
#include "ctrl/json_limits.h"
#include "ctrl/native_codec.h"
#include "ctrl/net.h"
#include "ctrl/notify_codec.h"

using namespace lockstep;
using namespace lockstep::ctrl;

namespace {

enum class Dialect : uint8_t { native, qemu };

struct Options {
  Dialect dialect = Dialect::native;
  std::string listen, connect;
  std::string name = "lockstep-checkpointer";
  uint64_t latency_ms = 0;
  double drop = 0, delay = 0, garble = 0;
  uint64_t delay_ms = 1000;
  uint64_t seed = 1;
  uint64_t heartbeat_ms = 0;
  uint64_t heartbeat_stop_after = 0;  // stop sending after N heartbeats (0 = never)
  uint64_t periodic_ms = 0;           // unsolicited checkpoints
  uint64_t die_on_request = 0;        // exit(3) upon the Nth request, unanswered
  uint64_t exit_after = 0;            // exit(0) after answering N checkpoints
  uint64_t reconnect_ms = 200;        // client: 0 = exit when the connection ends
  bool begin = false;                 // native: send checkpoint_begin before done
  bool vnet_hdr = false;              // qemu: our frames carry the vnet_hdr_len word
  std::string failover;               // native: send failover(survivor) after hello
  uint64_t protocol_version = kNativeVersion;
  std::string log_path;
};

FILE* g_log = stdout;
uint64_t g_t0 = 0;

void log_line(const std::string& event, const std::string& extra = {}) {
  std::fprintf(g_log, "{\"t_ms\":%llu,\"event\":\"%s\"%s%s}\n",
               static_cast<unsigned long long>((monotonic_ns() - g_t0) / 1000000), event.c_str(),
               extra.empty() ? "" : ",", extra.c_str());
  std::fflush(g_log);
}

std::string jstr(std::string_view s) { return Json(std::string(s)).dump(); }

constexpr int kExitUsage = 2;

// -1: go on; otherwise the exit status (0 after --help/--version, 2 after a usage error).
int parse(int argc, char** argv, Options& o) {
  CLI::App app{"A reference checkpointer for lockstepd's checkpointer link (native or QEMU's\n"
               "colo-compare notify protocol), with fault injection for tests.",
               "lockstep-checkpointer"};
  lockstep::cli::setup(app, {"(--listen ADDR | --connect ADDR) [OPTIONS]"},
                       "ADDR: unix:/path, /path, tcp:HOST:PORT or HOST:PORT.\n"
                       "Exit status: 0 done (--exit-after), 1 runtime failure, 2 bad usage,\n"
                       "3 --die-on-request.");
  const auto probability = CLI::Range(0.0, 1.0);
  auto* listen = app.add_option("--listen", o.listen, "serve one daemon at ADDR")->type_name("ADDR");
  auto* connect = app.add_option("--connect", o.connect, "connect to the daemon at ADDR")
                      ->type_name("ADDR");
  listen->excludes(connect);
  std::string dialect = "native";
  app.add_option("--dialect", dialect, "protocol: native or qemu (default native)")
      ->type_name("native|qemu")
      ->check(CLI::IsMember({"native", "qemu"}));
  app.add_option("--name", o.name, "name sent in hello (native)")->type_name("NAME");
  app.add_option("--latency-ms", o.latency_ms, "answer each request after N ms (default 0)")
      ->type_name("N");
  app.add_flag("--begin", o.begin, "send checkpoint_begin before done (native)");
  app.add_option("--drop", o.drop, "drop an answer with probability P")
      ->type_name("P")->check(probability);
  app.add_option("--delay", o.delay, "delay an answer by --delay-ms more with probability P")
      ->type_name("P")->check(probability);
  app.add_option("--delay-ms", o.delay_ms, "the delay of --delay (default 1000)")
      ->type_name("N");
  app.add_option("--garble", o.garble, "send a garbled answer with probability P")
      ->type_name("P")->check(probability);
  app.add_option("--seed", o.seed, "random seed for the fault draws (default 1)")
      ->type_name("S");
  app.add_option("--heartbeat-ms", o.heartbeat_ms, "send heartbeats every N ms (native)")
      ->type_name("N");
  app.add_option("--heartbeat-stop-after", o.heartbeat_stop_after,
                 "stop heartbeats after N of them (silent peer)")
      ->type_name("N");
  app.add_option("--periodic-ms", o.periodic_ms, "unsolicited checkpoints every N ms")
      ->type_name("N");
  app.add_option("--die-on-request", o.die_on_request,
                 "exit(3) when the Nth request arrives, unanswered")
      ->type_name("N");
  app.add_option("--exit-after", o.exit_after, "exit(0) after answering N checkpoints")
      ->type_name("N");
  app.add_option("--reconnect-ms", o.reconnect_ms,
                 "client: reconnect delay, 0 = exit on disconnect (default 200)")
      ->type_name("N");
  app.add_option("--failover", o.failover, "send failover after hello (native)")
      ->type_name("primary|secondary")
      ->check(CLI::IsMember({"primary", "secondary"}));
  app.add_flag("--vnet-hdr", o.vnet_hdr, "qemu: frames carry the be32 vnet_hdr_len word");
  app.add_option("--protocol-version", o.protocol_version,
                 "native: version announced in hello")
      ->type_name("N");
  app.add_option("--log", o.log_path, "JSON-lines log (default stdout)")->type_name("FILE");
  if (int rc = lockstep::cli::parse(app, argc, argv, kExitUsage); rc >= 0) return rc;
  o.dialect = dialect == "qemu" ? Dialect::qemu : Dialect::native;
  if (o.listen.empty() == o.connect.empty()) {
    return lockstep::cli::usage_error(app, "exactly one of --listen and --connect", kExitUsage);
  }
  return -1;
}

struct Answer {
  uint64_t due_ns;
  uint64_t epoch;
  bool has_epoch;
};

class Checkpointer {
 public:
  explicit Checkpointer(const Options& o) : o_(o), rng_(o.seed), qdec_(false), ndec_() {}

  int run() {
    std::string error;
    if (!parse_endpoint(o_.listen.empty() ? o_.connect : o_.listen, ep_, error)) {
      std::fprintf(stderr, "lockstep-checkpointer: %s\n", error.c_str());
      return 1;
    }
    if (!o_.listen.empty()) {
      lfd_ = listen_endpoint(ep_, error, 0660);
      if (!lfd_.valid()) {
        std::fprintf(stderr, "lockstep-checkpointer: %s\n", error.c_str());
        return 1;
      }
      log_line("listening", "\"endpoint\":" + jstr(ep_.to_string()));
    }
    uint64_t next_connect = 0;
    next_periodic_ = o_.periodic_ms ? monotonic_ns() + o_.periodic_ms * 1000000 : UINT64_MAX;
    for (;;) {
      uint64_t now = monotonic_ns();
      if (o_.listen.empty() && !conn_.valid() && now >= next_connect) {
        conn_ = connect_endpoint(ep_, error, true);
        if (conn_.valid()) {
          on_connected(now);
        } else {
          log_line("connect_failed", "\"error\":" + jstr(error));
          next_connect = now + std::max<uint64_t>(o_.reconnect_ms, 50) * 1000000;
        }
      }
      timers(now);
      uint64_t wake = std::min({next_hb_, next_periodic_, next_connect_if_needed(next_connect),
                                answers_.empty() ? UINT64_MAX : answers_.front().due_ns});
      int timeout = wake == UINT64_MAX ? 1000
                    : wake <= now      ? 0
                                       : static_cast<int>(std::min<uint64_t>((wake - now) / 1000000 + 1, 1000));
      pollfd p[2] = {{lfd_.valid() ? lfd_.get() : -1, POLLIN, 0},
                     {conn_.valid() ? conn_.get() : -1, POLLIN, 0}};
      if (poll(p, 2, timeout) < 0 && errno != EINTR) return 1;
      now = monotonic_ns();
      if (p[0].revents & POLLIN) {
        int fd = accept4(lfd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
          if (conn_.valid()) log_line("replaced");
          conn_.reset(fd);
          on_connected(now);
        }
      }
      if (conn_.valid() && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
        if (!readable(now)) {
          log_line("disconnected");
          conn_.reset();
          answers_.clear();
          if (o_.listen.empty()) {
            if (o_.reconnect_ms == 0) return 0;
            next_connect = now + o_.reconnect_ms * 1000000;
          }
        }
      }
    }
  }

 private:
  uint64_t next_connect_if_needed(uint64_t t) const {
    return o_.listen.empty() && !conn_.valid() ? t : UINT64_MAX;
  }

  void send(const std::string& bytes) {
    if (conn_.valid() && write_some(conn_.get(), bytes.data(), bytes.size()) < 0) {
      log_line("write_failed");
    }
  }

  void on_connected(uint64_t now) {
    log_line("connected", "\"dialect\":" + jstr(o_.dialect == Dialect::native ? "native" : "qemu"));
    ndec_ = NativeDecoder();
    qdec_ = NotifyDecoder(false);
    hb_sent_ = 0;
    if (o_.dialect == Dialect::native) {
      NativeMessage h = NativeMessage::hello("checkpointer", o_.name, {"checkpoint", "heartbeat", "begin"});
      h.version = static_cast<uint32_t>(o_.protocol_version);
      send(encode_native(h));
      log_line("sent", "\"type\":\"hello\",\"version\":" + std::to_string(o_.protocol_version));
      next_hb_ = o_.heartbeat_ms ? now : UINT64_MAX;
      if (!o_.failover.empty()) {
        Survivor s;
        survivor_from_string(o_.failover, s);
        send(encode_native(NativeMessage::failover(s, "requested by lockstep-checkpointer")));
        log_line("sent", "\"type\":\"failover\",\"survivor\":" + jstr(o_.failover));
      }
    } else {
      send(encode_notify(NotifyMessage::proxy_init, o_.vnet_hdr));
      log_line("sent", "\"type\":\"COLO_USERSPACE_PROXY_INIT\"");
    }
  }

  // Returns false when the connection is gone (or must be dropped).
  bool readable(uint64_t now) {
    char buf[16384];
    ssize_t n = recv(conn_.get(), buf, sizeof buf, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return false;
    if (n < 0) return true;
    if (o_.dialect == Dialect::native) {
      ndec_.push(buf, static_cast<size_t>(n));
      NativeMessage m;
      for (;;) {
        NativeStatus st = ndec_.next(m);
        if (st == NativeStatus::need_more) break;
        if (st == NativeStatus::oversize) {
          log_line("oversize");
          return false;
        }
        if (st == NativeStatus::invalid) {
          log_line("invalid", "\"error\":" + jstr(ndec_.last_error()));
          continue;
        }
        std::string extra = "\"type\":" + jstr(to_string(m.type));
        if (m.type == NativeType::checkpoint_request) {
          extra += ",\"epoch\":" + std::to_string(m.epoch) + ",\"reason\":" + jstr(m.reason) +
                   ",\"attempt\":" + std::to_string(m.attempt);
          if (!m.flow.empty()) extra += ",\"flow\":" + jstr(m.flow);
        } else if (m.type == NativeType::heartbeat) {
          extra += ",\"seq\":" + std::to_string(m.seq);
        } else if (m.type == NativeType::failover) {
          extra += ",\"survivor\":" + jstr(to_string_survivor(m.survivor)) + ",\"cause\":" + jstr(m.cause);
        } else if (m.type == NativeType::error) {
          extra += ",\"message\":" + jstr(m.message);
        } else if (m.type == NativeType::hello) {
          extra += ",\"version\":" + std::to_string(m.version) + ",\"name\":" + jstr(m.name);
        }
        log_line("received", extra);
        if (m.type == NativeType::hello) next_epoch_ = std::max(next_epoch_, m.epoch);
        if (m.type == NativeType::checkpoint_request) {
          next_epoch_ = std::max(next_epoch_, m.epoch);
          on_request(now, m.epoch, true);
        }
      }
    } else {
      qdec_.push(buf, static_cast<size_t>(n));
      NotifyMessage m;
      for (;;) {
        NotifyStatus st = qdec_.next(m);
        if (st == NotifyStatus::need_more) break;
        if (st == NotifyStatus::oversize) {
          log_line("oversize");
          return false;
        }
        if (st == NotifyStatus::unknown) {
          log_line("invalid", "\"payload\":" + jstr(std::string(qdec_.last_payload().substr(0, 64))));
          continue;
        }
        log_line("received", "\"type\":" + jstr(notify_text(m)));
        if (m == NotifyMessage::do_checkpoint) on_request(now, 0, false);
      }
    }
    return true;
  }

  void on_request(uint64_t now, uint64_t epoch, bool has_epoch) {
    ++requests_;
    if (o_.die_on_request != 0 && requests_ == o_.die_on_request) {
      log_line("dying", "\"request\":" + std::to_string(requests_));
      std::_Exit(3);
    }
    if (has_epoch) {
      for (const auto& a : answers_) {
        if (a.has_epoch && a.epoch == epoch) {
          log_line("duplicate_request", "\"epoch\":" + std::to_string(epoch));
          return;
        }
      }
    } else if (!answers_.empty()) {
      log_line("coalesced");  // notify_dev sends one DO_CHECKPOINT per detection
      return;
    }
    std::uniform_real_distribution<double> u(0, 1);
    if (o_.drop > 0 && u(rng_) < o_.drop) {
      log_line("fault_drop", "\"epoch\":" + std::to_string(epoch));
      return;
    }
    uint64_t due = now + o_.latency_ms * 1000000;
    if (o_.delay > 0 && u(rng_) < o_.delay) {
      due += o_.delay_ms * 1000000;
      log_line("fault_delay", "\"epoch\":" + std::to_string(epoch) + ",\"extra_ms\":" + std::to_string(o_.delay_ms));
    }
    if (o_.begin && has_epoch) {
      send(encode_native(NativeMessage::begin(epoch)));
      log_line("sent", "\"type\":\"checkpoint_begin\",\"epoch\":" + std::to_string(epoch));
    }
    answers_.push_back({due, epoch, has_epoch});
  }

  void answer(const Answer& a) {
    std::uniform_real_distribution<double> u(0, 1);
    if (o_.garble > 0 && u(rng_) < o_.garble) {
      std::string junk = "\x01garbled\xff{not json";
      std::string frame;
      append_be32(frame, static_cast<uint32_t>(junk.size()));
      if (o_.dialect == Dialect::qemu && o_.vnet_hdr) append_be32(frame, 0);
      frame += junk;
      send(frame);
      log_line("fault_garble", "\"epoch\":" + std::to_string(a.epoch));
      return;
    }
    if (o_.dialect == Dialect::native) {
      send(encode_native(NativeMessage::done(a.epoch)));
      next_epoch_ = std::max(next_epoch_, a.epoch + 1);
      log_line("sent", "\"type\":\"checkpoint_done\",\"epoch\":" + std::to_string(a.epoch));
    } else {
      send(encode_notify(NotifyMessage::colo_checkpoint, o_.vnet_hdr));
      log_line("sent", "\"type\":\"COLO_CHECKPOINT\"");
    }
    ++answered_;
    if (o_.exit_after != 0 && answered_ >= o_.exit_after) {
      log_line("exiting", "\"answered\":" + std::to_string(answered_));
      std::exit(0);
    }
  }

  void timers(uint64_t now) {
    while (!answers_.empty() && answers_.front().due_ns <= now) {
      Answer a = answers_.front();
      answers_.pop_front();
      answer(a);
    }
    if (conn_.valid() && now >= next_hb_) {
      if (o_.heartbeat_stop_after != 0 && hb_sent_ >= o_.heartbeat_stop_after) {
        log_line("heartbeats_stopped", "\"sent\":" + std::to_string(hb_sent_));
        next_hb_ = UINT64_MAX;
      } else {
        send(encode_native(NativeMessage::heartbeat(++hb_seq_, realtime_ns())));
        ++hb_sent_;
        next_hb_ = now + o_.heartbeat_ms * 1000000;
      }
    }
    if (now >= next_periodic_) {
      next_periodic_ = now + o_.periodic_ms * 1000000;
      if (conn_.valid()) {
        log_line("periodic");
        if (o_.dialect == Dialect::native) {
          // The epoch in progress: from lockstepd's hello, its requests and our answers.
          send(encode_native(NativeMessage::done(next_epoch_)));
          log_line("sent", "\"type\":\"checkpoint_done\",\"epoch\":" + std::to_string(next_epoch_));
          ++next_epoch_;
        } else {
          send(encode_notify(NotifyMessage::colo_checkpoint, o_.vnet_hdr));
        }
      }
    }
  }

  Options o_;
  std::mt19937_64 rng_;
  Endpoint ep_;
  Fd lfd_, conn_;
  NotifyDecoder qdec_;
  NativeDecoder ndec_;
  std::deque<Answer> answers_;
  uint64_t next_hb_ = UINT64_MAX, next_periodic_ = UINT64_MAX;
  uint64_t hb_seq_ = 0, hb_sent_ = 0, requests_ = 0, answered_ = 0, next_epoch_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  g_t0 = monotonic_ns();
  Options o;
  if (int rc = parse(argc, argv, o); rc >= 0) return rc;
  if (!o.log_path.empty()) {
    g_log = std::fopen(o.log_path.c_str(), "a");
    if (g_log == nullptr) {
      std::fprintf(stderr, "lockstep-checkpointer: cannot open %s\n", o.log_path.c_str());
      return 1;
    }
  }
  Checkpointer c(o);
  return c.run();
}
