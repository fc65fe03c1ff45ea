// The ctrl socket over real unix sockets: every standard command, malformed JSON,
// oversized and deep messages, unknown commands, many clients at once, the client
// limit, the read-only socket, slow clients, peer-credential logging, socket mode.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "ctrl/commands.h"
#include "ctrl/ctrl_server.h"
#include "ctrl/event_log.h"
#include "fake_daemon.h"
#include "test_util.h"

using namespace lockstep;
using namespace lockstep::ctrl;
using namespace lockstep::ctrl::testing;

namespace {

class CtrlServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = temp_path("ctrl.sock");
    ro_path_ = temp_path("ctrl-ro.sock");
    cp_.daemon = &daemon_;
    cp_.failover = &failover_;
    cp_.events = &events_;
    cp_.start_ns = monotonic_ns();
    register_standard_commands(registry_, cp_);
  }
  void TearDown() override {
    if (server_) server_->stop();
    unlink(path_.c_str());
    unlink(ro_path_.c_str());
  }
  void start(CtrlServerConfig cfg = {}) {
    cfg.socket_path = path_;
    if (cfg.ro_socket_path == "ro") cfg.ro_socket_path = ro_path_;
    server_ = std::make_unique<CtrlServer>(registry_, cfg);
    server_->set_logger([this](const std::string& l) {
      std::lock_guard lock(log_mu_);
      log_.push_back(l);
    });
    cp_.server = server_.get();
    std::string error;
    ASSERT_TRUE(server_->start(error)) << error;
  }
  Json call(const std::string& cmd, std::vector<std::string> args = {}) {
    LineClient c;
    EXPECT_TRUE(c.open(path_));
    return c.call({{"command", cmd}, {"args", args}});
  }

  std::string path_, ro_path_;
  FakeDaemon daemon_;
  EventQueue events_;
  FailoverController failover_{&events_};
  ControlPlane cp_;
  CommandRegistry registry_;
  std::unique_ptr<CtrlServer> server_;
  std::mutex log_mu_;
  std::vector<std::string> log_;
};

}  // namespace

TEST_F(CtrlServerTest, SocketModeIs0660) {
  start();
  struct stat st {};
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0660u);
}

TEST_F(CtrlServerTest, ConfigurableGroup) {
  CtrlServerConfig cfg;
  cfg.group = std::to_string(getgid());
  start(cfg);
  struct stat st {};
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_gid, getgid());
  server_->stop();
  unlink(path_.c_str());
  CtrlServerConfig bad;
  bad.socket_path = path_;
  bad.group = "no-such-group-lockstep";
  CtrlServer other(registry_, bad);
  std::string error;
  EXPECT_FALSE(other.start(error));
  EXPECT_NE(error.find("unknown group"), std::string::npos) << error;
}

TEST_F(CtrlServerTest, LiveSocketIsNotStolen) {
  start();
  CommandRegistry other;
  CtrlServerConfig cfg;
  cfg.socket_path = path_;
  CtrlServer second(other, cfg);
  std::string error;
  EXPECT_FALSE(second.start(error));
  EXPECT_NE(error.find("in use"), std::string::npos) << error;
  EXPECT_EQ(call("version")["ok"], true);  // the first one still answers
}

TEST_F(CtrlServerTest, StatusVersionHelpList) {
  start();
  Json s = call("status");
  ASSERT_EQ(s["ok"], true) << s;
  EXPECT_EQ(s["result"]["daemon"]["mode"], "colo");
  EXPECT_EQ(s["result"]["failover"]["decided"], false);
  EXPECT_TRUE(s["result"].contains("uptime_s"));
  EXPECT_EQ(call("status", {"x"})["ok"], false);

  Json v = call("version");
  EXPECT_EQ(v["result"]["ctrl_protocol"], 1);
  EXPECT_EQ(v["result"]["daemon"], "test double");

  Json l = call("list-commands");
  for (const char* c : {"status", "stats", "conns", "config get", "config set", "checkpoint",
                        "failover", "mode", "capture start", "capture stop", "version", "help",
                        "list-commands", "metrics"}) {
    EXPECT_NE(std::find(l["result"].begin(), l["result"].end(), c), l["result"].end()) << c;
  }
  Json h = call("help", {"config", "set"});
  EXPECT_EQ(h["result"]["usage"], "config set KEY=VALUE...");
  EXPECT_EQ(h["result"]["mutating"], true);
  EXPECT_EQ(call("help")["result"].size(), l["result"].size());
  EXPECT_EQ(call("help", {"nope"})["ok"], false);
}

TEST_F(CtrlServerTest, Stats) {
  start();
  Json s = call("stats");
  ASSERT_EQ(s["ok"], true);
  EXPECT_EQ(s["result"]["pvm_in"], 100);
  EXPECT_EQ(call("stats", {"--bogus"})["ok"], false);
  Json r = call("stats", {"--reset"});
  EXPECT_EQ(r["result"]["pvm_in"], 100);  // values before the reset
  EXPECT_EQ(call("stats")["result"]["pvm_in"], 0);
  EXPECT_EQ(call("stats", {"--reset", "--rate"})["ok"], false);
  EXPECT_EQ(call("stats", {"nosuchsection"})["ok"], false);
  Json nz = call("stats", {"--nonzero"})["result"];
  EXPECT_FALSE(nz.contains("svm_in")) << nz.dump() << ": zeros hidden";
}

TEST_F(CtrlServerTest, Conns) {
  start();
  EXPECT_EQ(call("conns")["result"].size(), 3u);
  EXPECT_EQ(call("conns", {"udp"})["result"].size(), 1u);
  EXPECT_EQ(call("conns", {"--limit", "2"})["result"].size(), 2u);
  EXPECT_EQ(call("conns", {"tcp", "--limit", "1"})["result"].size(), 1u);
  EXPECT_EQ(call("conns", {"--limit"})["ok"], false);
  EXPECT_EQ(call("conns", {"--limit", "0"})["ok"], false);
  EXPECT_EQ(call("conns", {"--limit", "x"})["ok"], false);
  EXPECT_EQ(call("conns", {"--limit", "100001"})["ok"], false);
  EXPECT_EQ(call("conns", {"a", "b"})["ok"], false);
  EXPECT_EQ(call("conns", {"--what"})["ok"], false);
}

TEST_F(CtrlServerTest, ConfigGetAndSet) {
  start();
  Json all = call("config", {"get"});
  ASSERT_EQ(all["ok"], true) << all;
  EXPECT_EQ(all["result"].size(), settings_table().size());
  Json one = call("config get", {"compare_timeout_us"});
  EXPECT_EQ(one["result"]["value"], 100000) << "numbers are JSON numbers";
  EXPECT_EQ(one["result"]["min"], 100);
  EXPECT_EQ(call("config get", {"nope"})["ok"], false);
  EXPECT_EQ(call("config get", {"a", "b"})["ok"], false);

  Json set = call("config set", {"compare_timeout_us=5000", "mode=buffer"});
  ASSERT_EQ(set["ok"], true) << set;
  EXPECT_EQ(set["result"]["changed"]["compare_timeout_us"], 5000);
  EXPECT_EQ(set["result"]["generation"], 1);
  EXPECT_EQ(daemon_.current.compare_timeout_us, 5000u);
  EXPECT_EQ(call("config get", {"mode"})["result"]["value"], "buffer");

  Json range = call("config set", {"compare_timeout_us=1"});
  ASSERT_EQ(range["ok"], false);
  std::string err = range["error"];
  EXPECT_NE(err.find("compare_timeout_us"), std::string::npos) << err;
  EXPECT_NE(err.find("100"), std::string::npos) << err;  // the range
  EXPECT_EQ(call("config set", {"nosuchkey=1"})["ok"], false);
  EXPECT_EQ(call("config set", {"novalue"})["ok"], false);
  EXPECT_EQ(call("config set", {"=3"})["ok"], false);
  EXPECT_EQ(call("config set")["ok"], false);
  // All or nothing: a bad pair leaves the good one unapplied.
  EXPECT_EQ(call("config set", {"reorder_window=64", "mode=bogus"})["ok"], false);
  EXPECT_EQ(daemon_.current.reorder_window, 2048u);
  // The daemon may refuse a valid value it cannot apply live.
  Json fixed = call("config set", {"max_connections=1024"});
  EXPECT_EQ(fixed["ok"], false);
  EXPECT_EQ(daemon_.settings_applied, 1);
}

TEST_F(CtrlServerTest, CheckpointModeFailover) {
  start();
  EXPECT_EQ(call("checkpoint")["ok"], true);
  EXPECT_EQ(daemon_.checkpoints_requested, 1);
  EXPECT_EQ(call("checkpoint", {"now"})["ok"], false);
  Json pol = call("checkpoint-policy");  // no checkpointer link in this test
  EXPECT_EQ(pol["ok"], false);
  EXPECT_EQ(pol["error"], "no checkpointer link");

  EXPECT_EQ(call("mode", {"passthrough"})["result"]["mode"], "passthrough");
  EXPECT_EQ(daemon_.mode, Mode::passthrough);
  EXPECT_EQ(call("mode", {"turbo"})["ok"], false);
  EXPECT_EQ(call("mode")["ok"], false);

  EXPECT_EQ(call("failover")["ok"], false);
  EXPECT_EQ(call("failover", {"both"})["ok"], false);
  Json f = call("failover", {"secondary"});
  ASSERT_EQ(f["ok"], true) << f;
  EXPECT_EQ(*failover_.survivor(), Survivor::secondary);
  Json again = call("failover", {"primary"});
  EXPECT_EQ(again["ok"], false);
  Json st = call("status");
  EXPECT_EQ(st["result"]["failover"]["survivor"], "secondary");
  EXPECT_EQ(st["result"]["events"].back()["event"], "failover");
  // Wall-clock times, as the audit log's, not the monotonic clock's nanoseconds.
  const Json& ev = st["result"]["events"].back();
  EXPECT_FALSE(ev.contains("t_ns")) << ev;
  ASSERT_TRUE(ev.contains("time")) << ev;
  uint64_t when = 0;
  ASSERT_TRUE(parse_time(ev["time"].get<std::string>(), wall_now_ns(), when)) << ev;
  EXPECT_LT(wall_now_ns() - when, 60'000'000'000ull) << ev;
  // Every state-changing command was logged with the peer's credentials.
  std::lock_guard lock(log_mu_);
  bool found = false;
  for (const auto& l : log_) {
    Json j = Json::parse(l);
    if (j["command"] == "failover" && j["ok"] == true) {
      found = true;
      EXPECT_EQ(j["pid"], getpid());
      EXPECT_EQ(j["uid"], getuid());
    }
  }
  EXPECT_TRUE(found);
}

TEST_F(CtrlServerTest, Capture) {
  start();
  EXPECT_EQ(call("capture")["ok"], false);
  EXPECT_EQ(call("capture start")["ok"], false);
  Json s = call("capture start", {"pvm", "/tmp/x.pcapng", "--max-bytes", "1000"});
  ASSERT_EQ(s["ok"], true) << s;
  EXPECT_EQ(s["result"]["max_bytes"], 1000);
  EXPECT_EQ(call("capture start", {"pvm"})["ok"], false);  // already
  EXPECT_EQ(call("capture start", {"nic9"})["ok"], false);
  EXPECT_EQ(call("capture start", {"svm", "--snaplen", "0"})["ok"], false);
  EXPECT_EQ(call("capture start", {"svm", "--max-bytes"})["ok"], false);
  EXPECT_EQ(call("capture start", {"svm", "a", "b"})["ok"], false);
  EXPECT_EQ(call("capture stop", {"svm"})["ok"], false);
  EXPECT_EQ(call("capture start", {"svm", "--direction"})["ok"], false);
  EXPECT_EQ(call("capture start", {"svm", "--direction", "in"})["ok"], false);
  Json d = call("capture start", {"svm", "--direction", "tx", "--snaplen", "128"});
  ASSERT_EQ(d["ok"], true) << d;
  EXPECT_EQ(d["result"]["direction"], "tx");
  EXPECT_EQ(d["result"]["snaplen"], 128);
  EXPECT_EQ(call("capture stop", {"svm"})["ok"], true);
  EXPECT_EQ(call("capture start", {"ext", "--direction", "rx"})["result"]["direction"], "rx");
  EXPECT_EQ(call("capture stop", {"pvm"})["ok"], true);
  EXPECT_EQ(call("capture stop")["ok"], true);
}

TEST_F(CtrlServerTest, Metrics) {
  start();
  Json m = call("metrics");
  ASSERT_EQ(m["ok"], true);
  std::string text = m["result"]["text"];
  EXPECT_NE(text.find("# TYPE lockstep_pvm_in_total counter"), std::string::npos);
  EXPECT_NE(text.find("lockstep_pvm_in_total{worker=\"0\"} 100"), std::string::npos);
  EXPECT_NE(text.find("lockstep_ctrl_requests_total"), std::string::npos);
  EXPECT_NE(text.find("lockstep_failover_decided{survivor=\"none\"} 0"), std::string::npos);
}

TEST_F(CtrlServerTest, MalformedAndUnknownKeepTheConnection) {
  start();
  LineClient c;
  ASSERT_TRUE(c.open(path_));
  const char* bad[] = {"{", "not json", "[1,2]", "42", "{\"args\":[]}", "{\"command\":5}",
                       "{\"command\":\"status\",\"args\":\"x\"}",
                       "{\"command\":\"status\",\"args\":[1]}", "\"status\""};
  for (const char* b : bad) {
    c.send_raw(std::string(b) + "\n");
    Json r = c.reply();
    ASSERT_TRUE(r.is_object()) << b;
    EXPECT_EQ(r["ok"], false) << b;
    EXPECT_TRUE(r["error"].is_string());
  }
  Json u = c.call({{"command", "frobnicate"}, {"id", 9}});
  EXPECT_EQ(u["ok"], false);
  EXPECT_EQ(u["id"], 9);
  EXPECT_NE(std::string(u["error"]).find("unknown command"), std::string::npos);
  Json e = c.call({{"command", ""}});
  EXPECT_EQ(e["ok"], false);
  // Still usable, ids echoed, blank lines ignored, CRLF accepted.
  c.send_raw("\n\r\n{\"command\":\"version\",\"id\":\"a\"}\r\n");
  Json ok = c.reply();
  EXPECT_EQ(ok["ok"], true);
  EXPECT_EQ(ok["id"], "a");
  EXPECT_GE(server_->counters().malformed.load(), 8u);
  EXPECT_EQ(server_->counters().unknown_command.load(), 2u);
}

TEST_F(CtrlServerTest, PipelinedRequestsAnsweredInOrder) {
  start();
  LineClient c;
  ASSERT_TRUE(c.open(path_));
  std::string batch;
  for (int i = 0; i < 50; ++i) batch += Json{{"command", "version"}, {"id", i}}.dump() + "\n";
  c.send_raw(batch);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(c.reply()["id"], i);
}

TEST_F(CtrlServerTest, LastRequestWithoutNewlineIsServed) {
  start();
  LineClient c;
  ASSERT_TRUE(c.open(path_));
  c.send_raw(R"({"command":"version"})");
  shutdown(c.fd.get(), SHUT_WR);
  EXPECT_EQ(c.reply()["ok"], true);
}

TEST_F(CtrlServerTest, OversizedMessageClosesTheClient) {
  CtrlServerConfig cfg;
  cfg.max_message = 1024;
  start(cfg);
  LineClient c;
  ASSERT_TRUE(c.open(path_));
  c.send_raw(std::string(4096, 'x'));
  Json r = c.reply();
  ASSERT_TRUE(r.is_object());
  EXPECT_EQ(r["ok"], false);
  EXPECT_NE(std::string(r["error"]).find("longer than 1024"), std::string::npos);
  EXPECT_TRUE(c.closed());
  EXPECT_EQ(server_->counters().oversize.load(), 1u);
  EXPECT_EQ(call("version")["ok"], true);
}

TEST_F(CtrlServerTest, DeepJsonRejected) {
  start();
  LineClient c;
  ASSERT_TRUE(c.open(path_));
  std::string deep = "{\"command\":\"status\",\"x\":" + std::string(100, '[') +
                     std::string(100, ']') + "}";
  c.send_raw(deep + "\n");
  Json r = c.reply();
  EXPECT_EQ(r["ok"], false);
  EXPECT_NE(std::string(r["error"]).find("deeper"), std::string::npos);
  EXPECT_EQ(server_->counters().too_deep.load(), 1u);
  // Brackets inside strings do not count.
  Json ok = c.call({{"command", "conns"}, {"args", {std::string(200, '[')}}});
  EXPECT_EQ(ok["ok"], true);
}

TEST_F(CtrlServerTest, ManyClientsAtOnce) {
  CtrlServerConfig cfg;
  cfg.max_clients = 64;
  start(cfg);
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 32; ++t) {
    threads.emplace_back([&, t] {
      LineClient c;
      if (!c.open(path_)) return;
      for (int i = 0; i < 20; ++i) {
        Json r = c.call({{"command", i % 2 ? "status" : "stats"}, {"id", t * 100 + i}});
        if (r.is_object() && r["ok"] == true && r["id"] == t * 100 + i) ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 32 * 20);
}

TEST_F(CtrlServerTest, ClientLimitRefusesPolitely) {
  CtrlServerConfig cfg;
  cfg.max_clients = 4;
  start(cfg);
  std::vector<LineClient> held(4);
  for (auto& c : held) ASSERT_TRUE(c.open(path_));
  ASSERT_TRUE(wait_for([&] { return server_->clients() == 4; }));
  LineClient extra;
  ASSERT_TRUE(extra.open(path_));
  Json r = extra.reply();
  ASSERT_TRUE(r.is_object());
  EXPECT_EQ(r["ok"], false);
  EXPECT_NE(std::string(r["error"]).find("too many clients"), std::string::npos);
  EXPECT_TRUE(wait_for([&] { return server_->counters().clients_rejected.load() == 1; }));
  held.pop_back();  // a slot frees up
  ASSERT_TRUE(wait_for([&] { return server_->clients() == 3; }));
  EXPECT_EQ(call("version")["ok"], true);
}

// Issue 18, 3: the world-usable read-only socket had the admin socket's client limit: any
// local user could fill it and lock root out.
TEST_F(CtrlServerTest, AFullReadOnlySocketLeavesTheAdminSocketFree) {
  CtrlServerConfig cfg;
  cfg.ro_socket_path = "ro";
  cfg.max_clients = 4;
  cfg.max_ro_clients = 4;
  cfg.max_clients_per_uid = 100;
  start(cfg);
  std::vector<LineClient> held(4);
  for (auto& c : held) ASSERT_TRUE(c.open(ro_path_));
  ASSERT_TRUE(wait_for([&] { return server_->clients() == 4; }));
  LineClient extra;
  ASSERT_TRUE(extra.open(ro_path_));
  Json r = extra.reply();
  ASSERT_TRUE(r.is_object());
  EXPECT_NE(std::string(r["error"]).find("read-only"), std::string::npos) << r;
  EXPECT_EQ(call("version")["ok"], true) << "the admin socket is locked out";
  EXPECT_EQ(call("checkpoint")["ok"], true);
}

TEST_F(CtrlServerTest, PerUidCapRefusesWithTheReason) {
  CtrlServerConfig cfg;
  cfg.ro_socket_path = "ro";
  cfg.max_clients_per_uid = 3;
  cfg.cap_exempt_uid = -1;  // the test runs as root: hold root to the cap too
  start(cfg);
  std::vector<LineClient> held(3);
  for (auto& c : held) ASSERT_TRUE(c.open(ro_path_));
  ASSERT_TRUE(wait_for([&] { return server_->clients() == 3; }));
  LineClient extra;
  ASSERT_TRUE(extra.open(ro_path_));
  Json r = extra.reply();
  ASSERT_TRUE(r.is_object());
  EXPECT_EQ(r["ok"], false);
  EXPECT_NE(std::string(r["error"]).find("per uid"), std::string::npos) << r;
  EXPECT_TRUE(wait_for([&] { return server_->counters().clients_rejected_uid.load() == 1; }));
  EXPECT_EQ(call("version")["ok"], true) << "the cap is per socket";
  held.pop_back();
  ASSERT_TRUE(wait_for([&] { return server_->clients() == 2; }));
  LineClient again;
  ASSERT_TRUE(again.open(ro_path_));
  EXPECT_EQ(again.call({{"command", "version"}})["ok"], true);
}

TEST_F(CtrlServerTest, ClientsThatSendNothingAreClosedSoon) {
  CtrlServerConfig cfg;
  cfg.first_request_timeout_ns = 200'000'000;
  start(cfg);
  LineClient silent, talking;
  ASSERT_TRUE(silent.open(path_));
  ASSERT_TRUE(talking.open(path_));
  EXPECT_EQ(talking.call({{"command", "version"}})["ok"], true);
  ASSERT_TRUE(wait_for([&] { return server_->counters().silent_clients_closed.load() == 1; }));
  EXPECT_EQ(server_->clients(), 1u);
  EXPECT_EQ(talking.call({{"command", "version"}})["ok"], true) << "a client that spoke stays";
}

TEST_F(CtrlServerTest, JunkAndSilentClientsDoNotStallOthers) {
  start();
  LineClient silent, partial;
  ASSERT_TRUE(silent.open(path_));
  ASSERT_TRUE(partial.open(path_));
  partial.send_raw("{\"command\":\"sta");  // never finished
  for (int i = 0; i < 10; ++i) EXPECT_EQ(call("version")["ok"], true);
}

TEST_F(CtrlServerTest, ClientThatNeverReadsIsDropped) {
  CtrlServerConfig cfg;
  cfg.max_backlog = 64 * 1024;
  start(cfg);
  LineClient slow;
  ASSERT_TRUE(slow.open(path_));
  int small = 4096;
  setsockopt(slow.fd.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  std::string req = Json{{"command", "metrics"}}.dump() + "\n";
  std::string batch;
  for (int i = 0; i < 400; ++i) batch += req;
  // Send without reading until the server gives up on us.
  bool dropped = wait_for([&] {
    if (::send(slow.fd.get(), batch.data(), batch.size(), MSG_NOSIGNAL | MSG_DONTWAIT) < 0 &&
        errno != EAGAIN) {
      return true;
    }
    return server_->counters().slow_clients_dropped.load() > 0;
  });
  EXPECT_TRUE(dropped);
  EXPECT_EQ(call("version")["ok"], true);
}

TEST_F(CtrlServerTest, ReadOnlySocketRefusesStateChanges) {
  CtrlServerConfig cfg;
  cfg.ro_socket_path = "ro";
  start(cfg);
  struct stat st {};
  ASSERT_EQ(stat(ro_path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0666u);
  LineClient ro;
  ASSERT_TRUE(ro.open(ro_path_));
  EXPECT_EQ(ro.call({{"command", "status"}})["ok"], true);
  EXPECT_EQ(ro.call({{"command", "stats"}})["ok"], true);
  EXPECT_EQ(ro.call({{"command", "config get"}})["ok"], true);
  for (Json req : {Json{{"command", "config set"}, {"args", {"mode=buffer"}}},
                   Json{{"command", "failover"}, {"args", {"primary"}}},
                   Json{{"command", "mode"}, {"args", {"buffer"}}},
                   Json{{"command", "checkpoint"}},
                   Json{{"command", "stats"}, {"args", {"--reset"}}},
                   Json{{"command", "capture start"}, {"args", {"pvm"}}}}) {
    Json r = ro.call(req);
    EXPECT_EQ(r["ok"], false) << req;
    EXPECT_NE(std::string(r["error"]).find("read-only"), std::string::npos) << r;
  }
  EXPECT_FALSE(failover_.survivor());
  EXPECT_EQ(daemon_.mode, Mode::colo);
  EXPECT_EQ(daemon_.resets, 0);
  EXPECT_EQ(server_->counters().read_only_refused.load(), 6u);
}

TEST(CommandRegistry, ArityDuplicatesExceptions) {
  CommandRegistry r;
  EXPECT_TRUE(r.add({"boom", "", "throws", 0, 0, false,
                     [](const CommandContext&, const Args&) -> CommandResult {
                       throw std::runtime_error("kaput");
                     }}));
  EXPECT_FALSE(r.add({"boom", "", "dup", 0, 0, false,
                      [](const CommandContext&, const Args&) { return CommandResult::success(); }}));
  EXPECT_FALSE(r.add({"", "", "empty", 0, 0, false,
                      [](const CommandContext&, const Args&) { return CommandResult::success(); }}));
  CommandContext ctx;
  CommandResult res = r.execute(ctx, {"boom"});
  EXPECT_FALSE(res.ok);
  EXPECT_NE(res.error.find("kaput"), std::string::npos);
  res = r.execute(ctx, {"boom", "extra"});
  EXPECT_FALSE(res.ok);
  EXPECT_EQ(res.error, "usage: boom");
  EXPECT_FALSE(r.execute(ctx, {}).ok);
}
