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

[[noreturn]] void usage(int code) {
  std::fprintf(code == 0 ? stdout : stderr,
               "usage: lockstep-checkpointer (--listen ADDR | --connect ADDR) [options]\n"
               "  ADDR: unix:/path, /path, tcp:HOST:PORT or HOST:PORT\n"
               "  --dialect native|qemu     protocol (default native)\n"
               "  --name NAME               name sent in hello (native)\n"
               "  --latency-ms N            answer each request after N ms (default 0)\n"
               "  --begin                   send checkpoint_begin before done (native)\n"
               "  --drop P                  drop an answer with probability P (0..1)\n"
               "  --delay P --delay-ms N    delay an answer by N more ms with probability P\n"
               "  --garble P                send a garbled answer with probability P\n"
               "  --seed S                  random seed for the fault draws (default 1)\n"
               "  --heartbeat-ms N          send heartbeats every N ms (native)\n"
               "  --heartbeat-stop-after N  stop heartbeats after N of them (silent peer)\n"
               "  --periodic-ms N           unsolicited checkpoints every N ms\n"
               "  --die-on-request N        exit(3) when the Nth request arrives, unanswered\n"
               "  --exit-after N            exit(0) after answering N checkpoints\n"
               "  --reconnect-ms N          client: reconnect delay, 0 = exit on disconnect\n"
               "  --failover primary|secondary  send failover after hello (native)\n"
               "  --vnet-hdr                qemu: frames carry the be32 vnet_hdr_len word\n"
               "  --protocol-version N      native: version announced in hello\n"
               "  --log FILE                JSON-lines log (default stdout)\n");
  std::exit(code);
}

bool num(const char* s, uint64_t& out) {
  std::string_view v(s);
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  return ec == std::errc{} && p == v.data() + v.size();
}

bool prob(const char* s, double& out) {
  char* end = nullptr;
  out = std::strtod(s, &end);
  return end != s && *end == '\0' && out >= 0 && out <= 1;
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto val = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "lockstep-checkpointer: %s needs a value\n", a.c_str());
        usage(1);
      }
      return argv[++i];
    };
    auto need_num = [&](uint64_t& out) {
      const char* v = val();
      if (!num(v, out)) {
        std::fprintf(stderr, "lockstep-checkpointer: %s takes a number, got '%s'\n", a.c_str(), v);
        usage(1);
      }
    };
    auto need_prob = [&](double& out) {
      const char* v = val();
      if (!prob(v, out)) {
        std::fprintf(stderr, "lockstep-checkpointer: %s takes a probability 0..1, got '%s'\n",
                     a.c_str(), v);
        usage(1);
      }
    };
    if (a == "-h" || a == "--help") usage(0);
    else if (a == "--listen") o.listen = val();
    else if (a == "--connect") o.connect = val();
    else if (a == "--dialect") {
      std::string d = val();
      if (d == "native") o.dialect = Dialect::native;
      else if (d == "qemu") o.dialect = Dialect::qemu;
      else {
        std::fprintf(stderr, "lockstep-checkpointer: --dialect native|qemu\n");
        usage(1);
      }
    } else if (a == "--name") o.name = val();
    else if (a == "--latency-ms") need_num(o.latency_ms);
    else if (a == "--drop") need_prob(o.drop);
    else if (a == "--delay") need_prob(o.delay);
    else if (a == "--delay-ms") need_num(o.delay_ms);
    else if (a == "--garble") need_prob(o.garble);
    else if (a == "--seed") need_num(o.seed);
    else if (a == "--heartbeat-ms") need_num(o.heartbeat_ms);
    else if (a == "--heartbeat-stop-after") need_num(o.heartbeat_stop_after);
    else if (a == "--periodic-ms") need_num(o.periodic_ms);
    else if (a == "--die-on-request") need_num(o.die_on_request);
    else if (a == "--exit-after") need_num(o.exit_after);
    else if (a == "--reconnect-ms") need_num(o.reconnect_ms);
    else if (a == "--begin") o.begin = true;
    else if (a == "--vnet-hdr") o.vnet_hdr = true;
    else if (a == "--failover") {
      o.failover = val();
      Survivor s;
      if (!survivor_from_string(o.failover, s)) {
        std::fprintf(stderr, "lockstep-checkpointer: --failover primary|secondary\n");
        usage(1);
      }
    } else if (a == "--protocol-version") need_num(o.protocol_version);
    else if (a == "--log") o.log_path = val();
    else {
      std::fprintf(stderr, "lockstep-checkpointer: unknown option '%s'\n", a.c_str());
      usage(1);
    }
  }
  if (o.listen.empty() == o.connect.empty()) {
    std::fprintf(stderr, "lockstep-checkpointer: exactly one of --listen and --connect\n");
    usage(1);
  }
  return o;
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
      put_be32(frame, static_cast<uint32_t>(junk.size()));
      if (o_.dialect == Dialect::qemu && o_.vnet_hdr) put_be32(frame, 0);
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
  Options o = parse(argc, argv);
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
