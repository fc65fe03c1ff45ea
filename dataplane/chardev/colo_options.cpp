#include "dataplane/chardev/colo_options.h"

#include <signal.h>

#include <charconv>
#include <cstdio>
#include <map>
#include <memory>
#include <string_view>

#include "common/cli.h"
#include "ctrl/command_registry.h"
#include "ctrl/commands.h"
#include "ctrl/ctrl_server.h"
#include "ctrl/heartbeat.h"
#include "ctrl/metrics_http.h"
#include "ctrl/net.h"
#include "ctrl/systemd.h"
#include "dataplane/chardev/colo_ctrl.h"

namespace lockstep::colo {

namespace {

bool to_u64(std::string_view v, uint64_t& out) {
  auto r = std::from_chars(v.data(), v.data() + v.size(), out);
  return r.ec == std::errc{} && r.ptr == v.data() + v.size() && !v.empty();
}

bool on_off(std::string_view v, bool& out) {
  if (v == "on" || v == "true" || v == "yes") {
    out = true;
    return true;
  }
  if (v == "off" || v == "false" || v == "no") {
    out = false;
    return true;
  }
  return false;
}

// The runner's default held-frame capacity: the engine's default (262,144, sized for a
// DPDK mempool) would make a 600 MB heap pool; 16,384 frames is far more than QEMU's
// queues hold and costs ~45 MB. `--set max_held_frames=N` overrides it.
constexpr const char* kRunnerMaxHeld = "16384";

}  // namespace

std::string usage(const std::string& command) {
  return "usage: " + command + R"( primary_in=SPEC secondary_in=SPEC outdev=SPEC [notify_dev=SPEC]
                     [compare_timeout=MS] [expired_scan_cycle=MS] [max_queue_size=N]
                     [vnet_hdr_support=on|off] [iothread=ID] [id=NAME]
                     [filter_rewriter=on|off] [checkpoint_timeout=MS] [checkpoint_period=MS]
                     [jumbo_frames=N] [out_queue_frames=N] [poll_us=US] [replace_peer=on|off]
                     [ctrl_socket=PATH] [ctrl_ro_socket=PATH] [metrics=tcp:HOST:PORT]
                     [--set KEY=VALUE]...

lockstep's compare engine in place of QEMU's colo-compare object, on the same chardev
sockets (docs/qemu-colo-compare.md).

  SPEC                 unix:PATH[,server] | tcp:HOST:PORT[,server][,reconnect=SECONDS]
                       (server: listen, as QEMU's server=on; else connect and reconnect).
                       Prefer unix sockets: a server's socket file is mode 0660, while a
                       TCP server port can be reached by every local user
  primary_in           frames the PVM sent (from filter-redirector); released to outdev
  secondary_in         frames the SVM sent; compared, never released
  outdev               released PVM frames, same framing
  notify_dev           the checkpointer: DO_CHECKPOINT out, COLO_CHECKPOINT in
  compare_timeout      ms a PVM frame may wait for its SVM match (compare_timeout_us)
  expired_scan_cycle   accepted; lockstep has a deadline per frame, no scan
  max_queue_size       accepted as reorder_window (segments per side and connection);
                       lockstep never drops at a cap: a full window requests a checkpoint
  vnet_hdr_support     frames carry be32 vnet_hdr_len after the length (default off)
  iothread, id         accepted (id names this instance in logs and statistics)
  filter_rewriter      the SVM host runs QEMU's filter-rewriter (default on): align the
                       SVM's SYN/ACKs with the PVM's; off: raw SVM streams, lockstep
                       learns sequence offsets itself
  checkpoint_timeout   ms before an unanswered DO_CHECKPOINT is sent again (default 5000)
  checkpoint_period    ms: request a checkpoint when an epoch grows this long (0 = off)
  jumbo_frames         buffers for frames over 2 KiB (default 256)
  out_queue_frames     released frames queued toward outdev before primary_in stops
                       being read (default 4096)
  poll_us              after the last socket event, poll this many microseconds before
                       sleeping in epoll (default 50, 0 = always sleep; 0..1000000)
  replace_peer         a server socket with a connected peer: off (default) refuses a
                       new peer, on lets it replace the connected one (QEMU's behaviour);
                       either is logged with the new peer's pid/uid/gid or address
  ctrl_socket          lockstepctl's socket (mode 0660): status, stats, conns, config
                       get|set, checkpoint, mode, events, explain, metrics (default
                       none); `lockstepctl --socket PATH ...`
  ctrl_ro_socket       a read-only ctrl socket (mode 0666), with ctrl_socket
  metrics              Prometheus listener, tcp:HOST:PORT (port 0: any; the port is
                       logged as "metrics on port N"); default none
  --set KEY=VALUE      any engine setting (compare/settings.h; lockstep-replay
                       --list-settings prints them); KEY may carry lockstepd's
                       "engine." prefix
  -h, --help           print this help and exit
  -V, --version        print the version and exit

SIGUSR1 prints a JSON statistics line on stdout; SIGHUP is logged and changes nothing
(there is no configuration file: the settings are this command line, or `config set`
on the ctrl socket; held output is kept); SIGINT, SIGTERM and SIGQUIT release held PVM
output, print the statistics and exit.
)";
}

bool parse_options(int argc, char** argv, Options& out, std::string& error) {
  out = Options{};
  std::map<std::string, std::string> set;
  set["max_held_frames"] = kRunnerMaxHeld;
  bool have_pri = false, have_sec = false, have_out = false;
  bool replace_peer = false;
  auto& rc = out.runner;
  rc.policy.max_epoch_ns = 0;  // colo-compare asks only on divergence
  rc.policy.on_timeout = ctrl::TimeoutPolicy::retry;
  rc.policy.max_retries = UINT32_MAX;  // as QEMU repeats its notification every scan

  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--set") {
      if (i + 1 >= argc) {
        error = "--set wants KEY=VALUE";
        return false;
      }
      a = argv[++i];
      const size_t eq = a.find('=');
      if (eq == std::string_view::npos || eq == 0) {
        error = "--set wants KEY=VALUE, got '" + std::string(a) + "'";
        return false;
      }
      std::string_view k = a.substr(0, eq);
      if (k.starts_with("engine.")) k.remove_prefix(7);  // as lockstepd's --set names it
      set[std::string(k)] = std::string(a.substr(eq + 1));
      continue;
    }
    const size_t eq = a.find('=');
    if (eq == std::string_view::npos || a.starts_with("-")) {
      error = "unexpected argument '" + std::string(a) + "' (properties are KEY=VALUE)";
      return false;
    }
    const std::string key(a.substr(0, eq));
    const std::string_view val = a.substr(eq + 1);
    uint64_t n = 0;
    bool b = false;
    auto bad = [&](const char* what) {
      error = key + "=" + std::string(val) + ": " + what;
      return false;
    };
    if (key == "primary_in" || key == "secondary_in" || key == "outdev" || key == "notify_dev") {
      chardev::PortSpec spec;
      if (!chardev::parse_port_spec(val, spec, error)) {
        error = key + ": " + error;
        return false;
      }
      if (key == "primary_in") rc.primary_in = spec, have_pri = true;
      if (key == "secondary_in") rc.secondary_in = spec, have_sec = true;
      if (key == "outdev") rc.outdev = spec, have_out = true;
      if (key == "notify_dev") rc.notify_dev = spec, rc.has_notify = true;
    } else if (key == "compare_timeout") {
      if (!to_u64(val, n) || n == 0 || n > 60000) return bad("milliseconds in 1..60000");
      set["compare_timeout_us"] = std::to_string(n * 1000);
    } else if (key == "expired_scan_cycle") {
      if (!to_u64(val, n) || n == 0 || n > UINT32_MAX) return bad("milliseconds, at least 1");
      out.notes.push_back("expired_scan_cycle ignored: every held frame has its own deadline");
    } else if (key == "max_queue_size") {
      if (!to_u64(val, n) || n == 0) return bad("a positive count");
      set["reorder_window"] = std::to_string(std::min<uint64_t>(std::max<uint64_t>(n, 4), 65536));
    } else if (key == "vnet_hdr_support") {
      if (!on_off(val, b)) return bad("on or off");
      rc.vnet_hdr = b;
    } else if (key == "iothread") {
      out.notes.push_back("iothread ignored: lockstep-colo is its own thread");
    } else if (key == "id") {
      rc.id = std::string(val);
    } else if (key == "filter_rewriter") {
      if (!on_off(val, b)) return bad("on or off");
      rc.filter_rewriter = b;
    } else if (key == "checkpoint_timeout") {
      if (!to_u64(val, n) || n == 0 || n > 3600000) return bad("milliseconds in 1..3600000");
      rc.policy.done_timeout_ns = n * 1'000'000;
    } else if (key == "checkpoint_period") {
      if (!to_u64(val, n) || n > 3600000) return bad("milliseconds in 0..3600000");
      rc.policy.max_epoch_ns = n * 1'000'000;
    } else if (key == "jumbo_frames") {
      if (!to_u64(val, n) || n == 0 || n > 65536) return bad("a count in 1..65536");
      rc.jumbo_frames = static_cast<uint32_t>(n);
    } else if (key == "poll_us") {
      if (!to_u64(val, n) || n > 1000000) return bad("microseconds in 0..1000000");
      rc.poll_us = static_cast<uint32_t>(n);
    } else if (key == "replace_peer") {
      if (!on_off(val, b)) return bad("on or off");
      replace_peer = b;
    } else if (key == "ctrl_socket" || key == "ctrl_ro_socket") {
      if (val.empty() || val.size() >= 108) return bad("a socket path (1..107 characters)");
      (key == "ctrl_socket" ? out.ctrl_socket : out.ctrl_ro_socket) = std::string(val);
    } else if (key == "metrics") {
      ctrl::Endpoint ep;
      std::string perr;
      if (val == "off") {
        out.metrics.clear();
      } else if (!ctrl::parse_endpoint(val, ep, perr) || ep.kind != ctrl::Endpoint::Kind::tcp) {
        return bad("expected tcp:HOST:PORT or off");
      } else {
        out.metrics = std::string(val);
      }
    } else if (key == "out_queue_frames") {
      if (!to_u64(val, n) || n == 0 || n > (1u << 22)) return bad("a count in 1..4194304");
      rc.out_queue_frames = static_cast<uint32_t>(n);
    } else {
      error = "unknown property '" + key + "'";
      return false;
    }
  }
  if (!have_pri || !have_sec || !have_out) {
    error = "primary_in, secondary_in and outdev are required";
    return false;
  }
  if (!out.ctrl_ro_socket.empty() && out.ctrl_socket.empty()) {
    error = "ctrl_ro_socket needs ctrl_socket (the admin socket)";
    return false;
  }
  if (!out.ctrl_ro_socket.empty() && out.ctrl_ro_socket == out.ctrl_socket) {
    error = "ctrl_ro_socket and ctrl_socket must be different paths";
    return false;
  }
  if (!Settings::defaults().with_all(set, rc.settings, error)) return false;
  for (chardev::PortSpec* p : {&rc.primary_in, &rc.secondary_in, &rc.outdev, &rc.notify_dev})
    p->replace_peer = replace_peer;
  return true;
}

namespace {

// The control plane around the runner (as lockstepd's, less the checkpointer link,
// cluster and capture): the ctrl socket, /metrics, the event log.
struct CtrlStack {
  ctrl::EventQueue events;
  ctrl::EventLog log;  // `lockstepctl events`, `explain`
  ctrl::FailoverController failover{&events};
  std::unique_ptr<chardev::ColoCtrl> daemon;
  ctrl::ControlPlane cp;
  ctrl::CommandRegistry registry;
  std::unique_ptr<ctrl::CtrlServer> server;
  std::unique_ptr<ctrl::MetricsHttpServer> http;

  void stop() {
    if (server) server->stop();
    if (http) http->stop();
  }
  ~CtrlStack() { stop(); }
};

bool start_ctrl(const Options& opt, const std::string& prog, CtrlStack& cs, std::string& error) {
  cs.daemon = std::make_unique<chardev::ColoCtrl>(opt.runner.id, &cs.log, &cs.events);
  cs.daemon->set_prog(prog);
  cs.cp.daemon = cs.daemon.get();
  cs.cp.failover = &cs.failover;
  cs.cp.events = &cs.events;
  cs.cp.log = &cs.log;
  cs.cp.start_ns = ctrl::monotonic_ns();
  cs.log.append("start", {{"version", ctrl::lockstep_version()},
                          {"mode", "colo-compare"},
                          {"id", opt.runner.id}});
  ctrl::register_standard_commands(cs.registry, cs.cp);
  if (!opt.ctrl_socket.empty()) {
    ctrl::CtrlServerConfig sc;
    sc.socket_path = opt.ctrl_socket;
    sc.ro_socket_path = opt.ctrl_ro_socket;
    cs.server = std::make_unique<ctrl::CtrlServer>(cs.registry, sc);
    cs.cp.server = cs.server.get();
    if (!cs.server->start(error)) {
      error = "ctrl_socket=" + opt.ctrl_socket + ": " + error;
      return false;
    }
    std::fprintf(stderr, "%s: ctrl socket %s\n", prog.c_str(), opt.ctrl_socket.c_str());
  }
  if (!opt.metrics.empty()) {
    ctrl::Endpoint ep;
    auto* cp = &cs.cp;
    cs.http = std::make_unique<ctrl::MetricsHttpServer>([cp] { return ctrl::render_metrics(*cp); });
    if (!ctrl::parse_endpoint(opt.metrics, ep, error) || !cs.http->start(ep, error)) {
      error = "metrics=" + opt.metrics + ": " + error;
      return false;
    }
    std::fprintf(stderr, "%s: metrics on port %u\n", prog.c_str(), cs.http->port());
  }
  return true;
}

}  // namespace

int run_main(const std::vector<std::string>& words, const std::string& prog,
             const std::string& command, const std::string& version) {
  (void)version;  // lockstep::cli::version(), the same meson project version
  // The options (--set, --help, --version) through CLI11; the properties stay QEMU's
  // KEY=VALUE words, read by parse_options in command-line order.
  CLI::App app{"", prog};
  cli::setup(app, {});
  bool help = false;
  app.set_help_flag();
  app.add_flag("-h,--help", help, "print this help and exit");
  std::vector<std::string> sets, props;
  CLI::Option* set_opt = app.add_option("--set", sets)->type_name("KEY=VALUE")->allow_extra_args(false);
  CLI::Option* prop_opt = app.add_option("properties", props)->type_name("PROPERTY=VALUE");
  if (int rc = cli::parse(app, words, 2); rc >= 0) return rc;
  if (help) {
    std::fputs(usage(command).c_str(), stdout);
    return 0;
  }
  std::vector<std::string> argv{prog};
  size_t next_set = 0, next_prop = 0;
  for (const CLI::Option* o : app.parse_order()) {
    if (o == set_opt) {
      argv.push_back("--set");
      argv.push_back(sets[next_set++]);
    } else if (o == prop_opt) {
      argv.push_back(props[next_prop++]);
    }
  }
  std::vector<char*> av;
  for (auto& w : argv) av.push_back(w.data());
  Options opt;
  std::string error;
  if (!parse_options(static_cast<int>(av.size()), av.data(), opt, error)) {
    return cli::usage_error(app, error, 2);
  }
  signal(SIGPIPE, SIG_IGN);
  for (const auto& n : opt.notes) std::fprintf(stderr, "%s: %s\n", prog.c_str(), n.c_str());
  auto runner = chardev::ColoRunner::create(opt.runner, error);
  if (!runner) {
    std::fprintf(stderr, "%s: %s\n", prog.c_str(), error.c_str());
    return 1;
  }
  std::unique_ptr<CtrlStack> cs;
  if (!opt.ctrl_socket.empty() || !opt.metrics.empty()) {
    chardev::ColoRunner::block_signals();  // before the ctrl threads: the loop takes them
    cs = std::make_unique<CtrlStack>();
    if (!start_ctrl(opt, prog, *cs, error)) {
      std::fprintf(stderr, "%s: %s\n", prog.c_str(), error.c_str());
      return 1;
    }
    runner->set_ctrl(cs->daemon.get());
  }
  const auto& rc = opt.runner;
  std::fprintf(stderr, "%s: %s ready: primary_in=%s secondary_in=%s outdev=%s%s%s\n", prog.c_str(),
               rc.id.c_str(), runner->bound("primary_in").c_str(),
               runner->bound("secondary_in").c_str(), runner->bound("outdev").c_str(),
               rc.has_notify ? " notify_dev=" : "",
               rc.has_notify ? runner->bound("notify_dev").c_str() : "");
  ctrl::sd_notify_ready("colo-compare sockets up");
  const int status = runner->run();
  ctrl::sd_notify_stopping();
  if (cs) cs->stop();  // no ctrl thread reaches the runner from here on
  return status;
}

}  // namespace lockstep::colo
