// lockstepd: the appliance. Loads the config (a file or the embedded demo default),
// applies `--set` overrides, starts the EAL and the dataplane, runs the control loop on
// the main lcore until SIGINT/SIGTERM (or the end of the inputs with clock=replay), then
// stops cleanly: engines flushed, counters printed, every mbuf back in its pool.
#include <rte_cycles.h>
#include <rte_lcore.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "compare/engine.h"
#include "dataplane/config.h"
#include "dataplane/dataplane.h"
#include "dataplane/eal.h"

namespace {

using lockstep::dp::Config;
using lockstep::dp::Dataplane;

std::atomic<bool> g_signalled{false};

void on_signal(int) { g_signalled.store(true); }

constexpr const char* kUsage = R"(usage: lockstepd [options] [-- EAL arguments]
  --config FILE        YAML configuration (default: the embedded demo configuration)
  --set KEY=VALUE      override one key (ports.ext=..., workers=2, engine.mode=buffer, ...)
  --stats-json FILE    write the final counters as JSON at exit
  --display            live display of the counters, refreshed every second
  --duration SECONDS   stop by itself after this long (0: until SIGINT/SIGTERM)
  --print-config       print the embedded default configuration and exit
  --check-config       load and validate the configuration, then exit
  -h, --help           this help
Every engine setting is a key under engine. (see compare/settings.h); a wrong key or
value is refused at start with a message naming the key.
)";

struct Options {
  std::string config_file;
  std::vector<std::string> sets;
  std::string stats_json;
  bool display = false;
  bool check_only = false;
  double duration_s = 0;
  std::vector<std::string> eal_extra;
};

struct DisplayState {
  bool tty = false;
  std::chrono::steady_clock::time_point start;
  uint64_t last_released = 0, last_bytes = 0;
};

void display_tick(Dataplane& dp, void* arg) {
  auto* ds = static_cast<DisplayState*>(arg);
  auto rep = dp.report();
  const auto& t = rep.total;
  uint64_t released = t.engine.released_pvm();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - ds->start).count();
  if (ds->tty) std::printf("\033[H\033[2J");
  std::printf("lockstepd  up %.0f s   mode %s   workers %u\n", secs,
              dp.config().engine.mode.c_str(), dp.worker_count());
  std::printf("  connections   active %-8llu total %llu\n",
              static_cast<unsigned long long>(t.engine.conns_active),
              static_cast<unsigned long long>(t.engine.conns_created));
  std::printf("  compared      %llu bytes (+%llu/s), %llu datagrams\n",
              static_cast<unsigned long long>(t.engine.bytes_compared),
              static_cast<unsigned long long>(t.engine.bytes_compared - ds->last_bytes),
              static_cast<unsigned long long>(t.engine.datagrams_matched));
  std::printf("  released      %llu frames (+%llu/s), held now %llu\n",
              static_cast<unsigned long long>(released),
              static_cast<unsigned long long>(released - ds->last_released),
              static_cast<unsigned long long>(t.held_frames));
  std::printf("  checkpoints   requested %llu, done %llu\n",
              static_cast<unsigned long long>(rep.checkpoint_requests),
              static_cast<unsigned long long>(rep.checkpoints_done));
  std::printf("  ports         ext rx %llu tx %llu | pvm rx %llu tx %llu | svm rx %llu tx %llu\n",
              static_cast<unsigned long long>(t.port[0].rx), static_cast<unsigned long long>(t.port[0].tx),
              static_cast<unsigned long long>(t.port[1].rx), static_cast<unsigned long long>(t.port[1].tx),
              static_cast<unsigned long long>(t.port[2].rx), static_cast<unsigned long long>(t.port[2].tx));
  if (!ds->tty) std::printf("\n");
  std::fflush(stdout);
  ds->last_released = released;
  ds->last_bytes = t.engine.bytes_compared;
}

struct StopState {
  Dataplane* dp;
  std::chrono::steady_clock::time_point deadline;
  bool bounded;
  DisplayState* display;
  std::chrono::steady_clock::time_point next_display;
};

void control_tick(Dataplane& dp, void* arg) {
  auto* st = static_cast<StopState*>(arg);
  if (g_signalled.load() || (st->bounded && std::chrono::steady_clock::now() >= st->deadline))
    dp.request_stop();
  if (st->display && std::chrono::steady_clock::now() >= st->next_display) {
    st->next_display += std::chrono::seconds(1);
    display_tick(dp, st->display);
  }
}

int parse_args(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](std::string& out) {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "lockstepd: %s needs a value\n", a.c_str());
        return false;
      }
      out = argv[++i];
      return true;
    };
    std::string v;
    if (a == "--") {
      for (++i; i < argc; ++i) o.eal_extra.push_back(argv[i]);
    } else if (a == "--config") {
      if (!value(o.config_file)) return 2;
    } else if (a == "--set") {
      if (!value(v)) return 2;
      o.sets.push_back(v);
    } else if (a == "--stats-json") {
      if (!value(o.stats_json)) return 2;
    } else if (a == "--display") {
      o.display = true;
    } else if (a == "--duration") {
      if (!value(v)) return 2;
      char* end = nullptr;
      o.duration_s = std::strtod(v.c_str(), &end);
      if (end == v.c_str() || *end != '\0' || o.duration_s < 0) {
        std::fprintf(stderr, "lockstepd: --duration: not a number of seconds: %s\n", v.c_str());
        return 2;
      }
    } else if (a == "--print-config") {
      std::fputs(std::string(lockstep::dp::default_config_yaml()).c_str(), stdout);
      return 0;
    } else if (a == "--check-config") {
      o.check_only = true;
    } else if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else {
      std::fprintf(stderr, "lockstepd: unknown option %s\n%s", a.c_str(), kUsage);
      return 2;
    }
  }
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  if (int rc = parse_args(argc, argv, opt); rc >= 0) return rc;

  Config cfg;
  std::string error;
  bool ok = opt.config_file.empty()
                ? lockstep::dp::parse_config(lockstep::dp::default_config_yaml(), cfg, error)
                : lockstep::dp::load_config_file(opt.config_file, cfg, error);
  for (const auto& s : opt.sets) {
    if (!ok) break;
    ok = lockstep::dp::apply_override(s, cfg, error);
  }
  if (ok) ok = lockstep::dp::validate(cfg, error);
  if (ok && !lockstep::Engine::create(cfg.engine, error)) {  // e.g. policy rules that do not parse
    error = "config key 'engine.policy_rules' (or another engine key): " + error;
    ok = false;
  }
  if (!ok) {
    std::fprintf(stderr, "lockstepd: %s\n", error.c_str());
    return 2;
  }
  if (opt.check_only) {
    std::printf("configuration ok\n");
    return 0;
  }

  if (!lockstep::dp::eal_start(cfg, opt.eal_extra, "lockstepd", error)) {
    std::fprintf(stderr, "lockstepd: %s\n", error.c_str());
    return 1;
  }
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);

  int exit_code = 0;
  {
    auto dp = Dataplane::create(cfg, error);
    if (!dp) {
      std::fprintf(stderr, "lockstepd: %s\n", error.c_str());
      lockstep::dp::eal_stop();
      return 2;
    }
    if (!dp->launch(error)) {
      std::fprintf(stderr, "lockstepd: %s\n", error.c_str());
      dp->join_and_finish();
      lockstep::dp::eal_stop();
      return 2;
    }
    std::fprintf(stderr, "lockstepd: running, %u worker(s), %s steering, clock %s\n",
                 dp->worker_count(), dp->plan().rss ? "rss" : "software",
                 cfg.clock == lockstep::dp::ClockKind::replay ? "replay" : "tsc");
    DisplayState ds;
    ds.tty = isatty(STDOUT_FILENO);
    ds.start = std::chrono::steady_clock::now();
    StopState st{dp.get(),
                 std::chrono::steady_clock::now() +
                     std::chrono::milliseconds(static_cast<int64_t>(opt.duration_s * 1000)),
                 opt.duration_s > 0, opt.display ? &ds : nullptr,
                 std::chrono::steady_clock::now() + std::chrono::seconds(1)};
    dp->run_control(control_tick, &st, 50);
    dp->join_and_finish();
    dp->stop_ports(true);
    auto rep = dp->report();
    std::fputs(rep.text().c_str(), stdout);
    if (!opt.stats_json.empty()) {
      std::ofstream out(opt.stats_json);
      out << rep.json();
      if (!out) {
        std::fprintf(stderr, "lockstepd: cannot write %s\n", opt.stats_json.c_str());
        exit_code = 1;
      }
    }
    if (rep.pool_avail != rep.pool_size) {
      std::fprintf(stderr, "lockstepd: %llu mbufs not returned to the pool\n",
                   static_cast<unsigned long long>(rep.pool_size - rep.pool_avail));
      exit_code = 1;
    }
  }
  lockstep::dp::eal_stop();
  return exit_code;
}
