// The `qmp` checkpointer link against a real QEMU (qemu-system-x86_64, TCG, no disks):
// connects, reads the version and COLO status, reads and sets x-checkpoint-delay,
// receives STOP/RESUME, survives QEMU being killed and restarted, sends
// x-colo-lost-heartbeat; and a real COLO pair on loopback (docs/qemu-kvm-colo.md).
// Each QEMU gets two monitors: one for the link, one for the test to drive QEMU with.
// Exits 77 (skipped) when qemu-system-x86_64 is not installed.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>

#include "ctrl/qmp_client.h"
#include "ctrl/qmp_codec.h"
#include "qmp_test_util.h"
#include "subprocess.h"

using namespace lockstep;
using namespace lockstep::ctrl;
using namespace lockstep::ctrl::testing;

namespace {

std::string g_qemu;

std::string find_qemu() {
  const char* path = std::getenv("PATH");
  std::string p = path != nullptr ? path : "/usr/bin:/bin";
  size_t pos = 0;
  while (pos <= p.size()) {
    size_t colon = p.find(':', pos);
    std::string dir = p.substr(pos, colon == std::string::npos ? std::string::npos : colon - pos);
    std::string f = dir + "/qemu-system-x86_64";
    if (!dir.empty() && access(f.c_str(), X_OK) == 0) return f;
    if (colon == std::string::npos) break;
    pos = colon + 1;
  }
  return {};
}

bool exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

class Qemu {
 public:
  // `machine`: "none" (no guest, fastest) or "pc" (a 64 MiB TCG guest, for migration).
  bool start(const std::string& name, const std::string& machine, const std::string& extra = {}) {
    name_ = name;
    link_sock_ = temp_path(name + "-qmp.sock");
    drive_sock_ = temp_path(name + "-drive.sock");
    unlink(link_sock_.c_str());
    unlink(drive_sock_.c_str());
    std::vector<std::string> argv = {g_qemu, "-name", name, "-nodefaults", "-display", "none",
                                     "-no-user-config", "-qmp",
                                     "unix:" + link_sock_ + ",server=on,wait=off", "-qmp",
                                     "unix:" + drive_sock_ + ",server=on,wait=off"};
    if (machine == "none") {
      argv.insert(argv.end(), {"-machine", "none"});
    } else {
      argv.insert(argv.end(), {"-machine", "pc,accel=tcg", "-m", "64"});
    }
    if (!extra.empty()) argv.insert(argv.end(), {"-incoming", extra});
    if (!proc_.start(argv, temp_path(name + ".log"))) return false;
    return wait_for([&] { return exists(link_sock_) && exists(drive_sock_); }, 20000);
  }
  void kill() {
    proc_.kill_now();
    unlink(link_sock_.c_str());
    unlink(drive_sock_.c_str());
  }
  ~Qemu() { kill(); }
  // A command on the test's own monitor.
  Json run(const std::string& cmd, const Json& args = Json(), std::string* err = nullptr) {
    Endpoint ep;
    std::string error;
    parse_endpoint("unix:" + drive_sock_, ep, error);
    Json reply;
    if (!qmp_execute(ep, cmd, args, 10'000'000'000, reply, error)) {
      if (err != nullptr) *err = error;
      return nullptr;
    }
    return reply;
  }
  const std::string& link_sock() const { return link_sock_; }
  pid_t pid() const { return proc_.pid(); }

 private:
  Subprocess proc_;
  std::string name_, link_sock_, drive_sock_;
};

class QmpQemu : public QmpLinkFixture {};

TEST_F(QmpQemu, ConnectsReadsVersionReadsAndSetsTheCheckpointDelay) {
  Qemu q;
  ASSERT_TRUE(q.start("qmp-a", "none"));
  start_link(q.link_sock());
  ASSERT_TRUE(wait_event(EventKind::checkpointer_up));
  Json v = q.run("query-version");
  ASSERT_TRUE(v.is_object());
  std::string want = qmp_version_text(v);
  ASSERT_TRUE(wait_for([&] { return coord_->status()["qemu"]["version"] == want; })) << want;
  ASSERT_TRUE(wait_for([&] { return coord_->status()["qemu"]["colo"]["mode"] == "none"; }));

  // The trigger re-sets the value it just read: set one of ours first.
  ASSERT_TRUE(q.run("migrate-set-parameters", Json{{"x-checkpoint-delay", 7321}}).is_object());
  request(0);
  ASSERT_TRUE(wait_for([&] { return coord_->status()["qemu"].value("x_checkpoint_delay_ms", 0) == 7321; }));
  ASSERT_TRUE(wait_for([&] { return qemu_counter("triggers") == 1 && qemu_counter("command_errors") == 0; }));
  Json p = q.run("query-migrate-parameters");
  ASSERT_TRUE(p.is_object());
  EXPECT_EQ(p["x-checkpoint-delay"], 7321);
  // Not in COLO: QEMU takes the value but starts no checkpoint; nothing is released.
  EXPECT_FALSE(wait_event(EventKind::checkpoint_done, nullptr, 500));
  EXPECT_EQ(coord_->status()["checkpoint"]["state"], "outstanding");
}

TEST_F(QmpQemu, StopAndContAreSeenButReleaseNothingOutsideColo) {
  Qemu q;
  ASSERT_TRUE(q.start("qmp-b", "none"));
  start_link(q.link_sock());
  ASSERT_TRUE(wait_event(EventKind::checkpointer_up));
  ASSERT_TRUE(q.run("stop").is_object());
  ASSERT_TRUE(wait_for([&] { return qemu_counter("stops") == 1; }));
  ASSERT_TRUE(q.run("cont").is_object());
  ASSERT_TRUE(wait_for([&] { return qemu_counter("resumes") == 1; }));
  ASSERT_TRUE(wait_for([&] { return qemu_counter("stop_resume_outside_colo") == 1; }));
  EXPECT_EQ(qemu_counter("checkpoints_seen"), 0u);
  EXPECT_EQ(count_events(EventKind::checkpoint_done), 0u);
  EXPECT_EQ(link_counter("protocol_errors"), 0u);
}

TEST_F(QmpQemu, SurvivesQemuKilledAndRestarted) {
  Qemu q;
  ASSERT_TRUE(q.start("qmp-c", "none"));
  start_link(q.link_sock());
  ASSERT_TRUE(wait_event(EventKind::checkpointer_up));
  q.kill();
  ASSERT_TRUE(wait_event(EventKind::checkpointer_down));
  request(0);  // made while QEMU is away: sent once it is back
  // Down for a while: the reconnect interval backs off, failures are counted.
  ASSERT_TRUE(wait_for([&] { return link_counter("connect_failures") >= 3; }));
  ASSERT_TRUE(q.start("qmp-c", "none"));
  ASSERT_TRUE(wait_event(EventKind::checkpointer_up));
  EXPECT_EQ(link_counter("connects"), 2u);
  EXPECT_EQ(link_counter("disconnects"), 1u);
  ASSERT_TRUE(wait_for([&] { return qemu_counter("triggers") == 1; }));
  Json v = q.run("query-version");
  ASSERT_TRUE(v.is_object());
  EXPECT_EQ(coord_->status()["qemu"]["version"], qmp_version_text(v));
}

TEST_F(QmpQemu, FailoverSendsLostHeartbeatAndQemusRefusalIsReported) {
  Qemu q;
  ASSERT_TRUE(q.start("qmp-d", "none"));
  start_link(q.link_sock());
  ASSERT_TRUE(wait_event(EventKind::checkpointer_up));
  std::string error;
  ASSERT_TRUE(failover_.decide(Survivor::primary, "test", monotonic_ns(), error));
  // Outside COLO, QEMU refuses x-colo-lost-heartbeat; the link reports it and stays up.
  ASSERT_TRUE(wait_for([&] { return qemu_counter("lost_heartbeat_sent") == 1 && qemu_counter("command_errors") == 1; }));
  EXPECT_NE(coord_->status().value("last_error", "").find("x-colo"), std::string::npos);
  EXPECT_TRUE(coord_->connected());
}

// Two TCG QEMUs without disks on loopback, x-colo on, migrate: COLO is entered (the SVM
// reports mode secondary). With QEMU 7.2 the PVM then deadlocks on its own big lock after
// the first checkpoint (docs/qemu-kvm-colo.md has the stacks); the link must notice a
// QEMU that stopped answering and keep retrying. A QEMU that gets through runs the full
// cycle: a request from lockstepd and its checkpoint_done.
TEST_F(QmpQemu, ColoPairOnLoopback) {
  Qemu svm, pvm;
  std::string port = std::to_string(20000 + getpid() % 20000);
  ASSERT_TRUE(svm.start("colo-svm", "pc", "tcp:127.0.0.1:" + port));
  ASSERT_TRUE(pvm.start("colo-pvm", "pc"));
  cfg_.qmp_answer_timeout_ns = 3000 * kQmpMs;
  start_link(pvm.link_sock());
  ASSERT_TRUE(wait_event(EventKind::checkpointer_up));
  Json colo_on = Json{{"capabilities", Json::array({Json{{"capability", "x-colo"}, {"state", true}}})}};
  ASSERT_TRUE(svm.run("migrate-set-capabilities", colo_on).is_object());
  ASSERT_TRUE(pvm.run("migrate-set-capabilities", colo_on).is_object());
  ASSERT_TRUE(pvm.run("migrate-set-parameters", Json{{"x-checkpoint-delay", 2000}}).is_object());
  ASSERT_TRUE(pvm.run("migrate", Json{{"uri", "tcp:127.0.0.1:" + port}}).is_object());
  ASSERT_TRUE(wait_for([&] {
    Json s = svm.run("query-colo-status");
    return s.is_object() && s["mode"] == "secondary";
  }, 60000)) << "the SVM never entered COLO";

  bool primary_seen = false;
  bool stuck = wait_for([&] {
    primary_seen = primary_seen || coord_->status()["qemu"]["colo"]["mode"] == "primary";
    return qemu_counter("answer_timeouts") >= 1;
  }, 20000);
  if (stuck) {
    std::string err;
    EXPECT_TRUE(pvm.run("query-status", Json(), &err).is_null()) << "the PVM answers after all";
    ::testing::Test::RecordProperty("qemu_colo", "PVM stopped answering after entering COLO: " + err);
    std::cout << "PVM QEMU stopped answering after entering COLO (the QEMU 7.2 defect in "
                 "docs/qemu-kvm-colo.md); the link gave the connection up and retries\n";
    uint64_t c0 = link_counter("connects") + link_counter("connect_failures") + qemu_counter("answer_timeouts");
    EXPECT_TRUE(wait_for([&] {
      return link_counter("connects") + link_counter("connect_failures") + qemu_counter("answer_timeouts") > c0;
    }, 20000));
    return;
  }
  // A QEMU whose COLO runs: the full cycle.
  ASSERT_TRUE(primary_seen || coord_->status()["qemu"]["colo"]["mode"] == "primary");
  request(coord_->epoch());
  ASSERT_TRUE(wait_event(EventKind::checkpoint_done, nullptr, 30000));
  EXPECT_GE(qemu_counter("checkpoints_seen"), 1u);
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  g_qemu = find_qemu();
  if (g_qemu.empty()) {
    std::printf("qemu-system-x86_64 not found: skipped\n");
    return 77;
  }
  return RUN_ALL_TESTS();
}
