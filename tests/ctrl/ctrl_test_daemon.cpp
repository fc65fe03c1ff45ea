// A stand-in for lockstepd's control side, for the lockstepctl and link tests: the real
// ctrl library (CtrlServer, commands, CheckpointCoordinator, metrics HTTP, sd_notify)
// wired to the FakeDaemon TEST DOUBLE instead of the dataplane. It shows the wiring the
// daemon does. Prints "ready" when listening, then one JSON line per control event.
//   ctrl_test_daemon --socket PATH [--ro-socket PATH] [--max-clients N]
//                    [--checkpointer ADDR [--listen] [--dialect native|qemu]
//                     [--timeout-ms N] [--on-timeout retry|alarm|failover] [--max-epoch-ms N]
//                     [--hb-timeout-ms N] [--hb-debounce-ms N] [--on-loss ACTION]]
//                    [--metrics ADDR]
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "ctrl/checkpointer_link.h"
#include "ctrl/commands.h"
#include "ctrl/ctrl_server.h"
#include "ctrl/metrics_http.h"
#include "ctrl/systemd.h"
#include "fake_daemon.h"

using namespace lockstep;
using namespace lockstep::ctrl;

namespace {

volatile sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

uint64_t ms(const char* s) {
  uint64_t v = 0;
  std::from_chars(s, s + std::strlen(s), v);
  return v * 1000000;
}

}  // namespace

int main(int argc, char** argv) {
  CtrlServerConfig scfg;
  std::string checkpointer, metrics_addr;
  LinkConfig lcfg;
  lcfg.reconnect_ns = 100'000'000;
  lcfg.policy.max_epoch_ns = 0;
  lcfg.policy.done_timeout_ns = 2'000'000'000;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto v = [&]() -> const char* { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--socket") scfg.socket_path = v();
    else if (a == "--ro-socket") scfg.ro_socket_path = v();
    else if (a == "--max-clients") scfg.max_clients = ms(v()) / 1000000;
    else if (a == "--max-message") scfg.max_message = ms(v()) / 1000000;
    else if (a == "--checkpointer") checkpointer = v();
    else if (a == "--listen") lcfg.listen = true;
    else if (a == "--vnet-hdr") lcfg.vnet_hdr = true;
    else if (a == "--dialect") dialect_from_string(v(), lcfg.dialect);
    else if (a == "--timeout-ms") lcfg.policy.done_timeout_ns = ms(v());
    else if (a == "--max-retries") lcfg.policy.max_retries = static_cast<uint32_t>(ms(v()) / 1000000);
    else if (a == "--on-timeout") timeout_policy_from_string(v(), lcfg.policy.on_timeout);
    else if (a == "--max-epoch-ms") lcfg.policy.max_epoch_ns = ms(v());
    else if (a == "--hb-timeout-ms") lcfg.checkpointer_peer.timeout_ns = ms(v());
    else if (a == "--hb-debounce-ms") lcfg.checkpointer_peer.debounce_ns = ms(v());
    else if (a == "--on-loss") loss_action_from_string(v(), lcfg.checkpointer_peer.on_loss);
    else if (a == "--metrics") metrics_addr = v();
    else {
      std::fprintf(stderr, "ctrl_test_daemon: unknown argument %s\n", a.c_str());
      return 1;
    }
  }
  signal(SIGPIPE, SIG_IGN);
  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);

  EventQueue events;
  FailoverController failover(&events);
  testing::FakeDaemon daemon;
  ControlPlane cp;
  cp.daemon = &daemon;
  cp.failover = &failover;
  cp.events = &events;
  cp.start_ns = monotonic_ns();

  std::string error;
  std::unique_ptr<CheckpointCoordinator> coord;
  if (!checkpointer.empty()) {
    if (!parse_endpoint(checkpointer, lcfg.endpoint, error)) {
      std::fprintf(stderr, "ctrl_test_daemon: %s\n", error.c_str());
      return 1;
    }
    coord = std::make_unique<CheckpointCoordinator>(lcfg, events, failover);
    if (!coord->start(error)) {
      std::fprintf(stderr, "ctrl_test_daemon: %s\n", error.c_str());
      return 1;
    }
    cp.coordinator = coord.get();
    daemon.coordinator = coord.get();
  }

  CommandRegistry registry;
  register_standard_commands(registry, cp);
  CtrlServer server(registry, scfg);
  server.set_logger([](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); });
  cp.server = &server;
  if (!server.start(error)) {
    std::fprintf(stderr, "ctrl_test_daemon: %s\n", error.c_str());
    return 1;
  }
  std::unique_ptr<MetricsHttpServer> http;
  if (!metrics_addr.empty()) {
    Endpoint mep;
    http = std::make_unique<MetricsHttpServer>([&cp] { return render_metrics(cp); });
    if (!parse_endpoint(metrics_addr, mep, error) || !http->start(mep, error)) {
      std::fprintf(stderr, "ctrl_test_daemon: %s\n", error.c_str());
      return 1;
    }
    std::printf("{\"metrics_port\":%u}\n", http->port());
  }
  sd_notify_ready("ctrl listening");
  std::printf("ready\n");
  std::fflush(stdout);

  // The daemon's control loop: act on events (here: print them).
  std::vector<Event> batch;
  while (!g_stop) {
    pollfd p{events.fd(), POLLIN, 0};
    poll(&p, 1, 200);
    batch.clear();
    events.drain(batch);
    for (const auto& e : batch) {
      std::printf("%s\n", e.to_json().dump().c_str());
    }
    std::fflush(stdout);
  }
  sd_notify_stopping();
  server.stop();
  if (coord) coord->stop();
  return 0;
}
