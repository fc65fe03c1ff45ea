// The `qmp` checkpointer link without a live QEMU: the QMP codec on QEMU's exact lines and
// on junk, and the link against a scripted QMP peer that REPLAYS QEMU 7.2's messages
// (greeting, replies, STOP/RESUME/COLO_EXIT events as QEMU emits them; captured from
// Debian 12's qemu-system-x86 7.2.22). The replay stands in for a QEMU in COLO state,
// which this QEMU cannot reach here (docs/qemu-kvm-colo.md, "A COLO pair on loopback").
// The live-QEMU tests are test_qmp_qemu.cpp.
#include <gtest/gtest.h>

#include "ctrl/qmp_codec.h"
#include "ctrl/qmp_session.h"
#include "qmp_test_util.h"

using namespace lockstep;
using namespace lockstep::ctrl;
using namespace lockstep::ctrl::testing;

namespace {

std::vector<QmpMessage> decode_all(QmpDecoder& d, std::vector<QmpStatus>* statuses = nullptr) {
  std::vector<QmpMessage> v;
  for (;;) {
    QmpMessage m;
    QmpStatus st = d.next(m);
    if (statuses != nullptr) statuses->push_back(st);
    if (st == QmpStatus::need_more || st == QmpStatus::oversize) break;
    if (st == QmpStatus::message) v.push_back(m);
  }
  return v;
}

TEST(QmpCodec, DecodesQemusLinesSplitAnywhere) {
  std::string all = std::string(kQemu72Greeting) + "{\"return\": {}, \"id\": 1}\r\n" +
                    qmp_event("STOP") +
                    "{\"id\": 8, \"error\": {\"class\": \"GenericError\", \"desc\": \"The feature 'colo' is not enabled\"}}\r\n" +
                    qmp_event("COLO_EXIT", "{\"mode\": \"primary\", \"reason\": \"error\"}");
  for (size_t split = 1; split < all.size(); split += 7) {
    QmpDecoder d;
    d.push(all.data(), split);
    auto a = decode_all(d);
    d.push(all.data() + split, all.size() - split);
    auto b = decode_all(d);
    a.insert(a.end(), b.begin(), b.end());
    ASSERT_EQ(a.size(), 5u) << "split at " << split;
    EXPECT_EQ(a[0].kind, QmpKind::greeting);
    EXPECT_EQ(qmp_version_text(a[0].value["version"]), "7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)");
    EXPECT_EQ(a[1].kind, QmpKind::reply);
    EXPECT_EQ(a[1].id, 1);
    EXPECT_EQ(a[2].kind, QmpKind::event);
    EXPECT_EQ(a[2].event, "STOP");
    EXPECT_EQ(a[2].timestamp_us, 1796528678558890u);
    EXPECT_EQ(a[3].kind, QmpKind::error);
    EXPECT_EQ(a[3].error_class, "GenericError");
    EXPECT_EQ(a[4].event, "COLO_EXIT");
    EXPECT_EQ(a[4].value["reason"], "error");
  }
}

TEST(QmpCodec, JunkIsInvalidAndTheStreamGoesOn) {
  QmpDecoder d;
  std::string s = "garbage\r\n{\"return\": \r\n[1,2]\r\n{\"event\": 5}\r\n{\"QMP\": 1}\r\n"
                  "{\"nothing\": 1}\r\n" + std::string(40, '[') + "\r\n\r\n{\"return\": {}, \"id\": 3}\r\n";
  d.push(s.data(), s.size());
  std::vector<QmpStatus> st;
  auto msgs = decode_all(d, &st);
  size_t invalid = 0;
  for (auto x : st) invalid += x == QmpStatus::invalid;
  EXPECT_EQ(invalid, 7u);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].id, 3);
  EXPECT_FALSE(d.dead());
}

TEST(QmpCodec, OversizeLineKillsTheReader) {
  QmpDecoder d(128);
  std::string s(200, 'x');
  d.push(s.data(), s.size());
  QmpMessage m;
  EXPECT_EQ(d.next(m), QmpStatus::oversize);
  EXPECT_TRUE(d.dead());
  d.push("{}\n", 3);
  EXPECT_EQ(d.next(m), QmpStatus::oversize);
}

TEST(QmpCodec, EncodesCommandsWithIds) {
  EXPECT_EQ(encode_qmp_command("qmp_capabilities", Json(), 1),
            "{\"execute\":\"qmp_capabilities\",\"id\":1}\n");
  EXPECT_EQ(encode_qmp_command("migrate-set-parameters", Json{{"x-checkpoint-delay", 200}}, 7),
            "{\"arguments\":{\"x-checkpoint-delay\":200},\"execute\":\"migrate-set-parameters\",\"id\":7}\n");
}

TEST(QmpSession, AnswerTimeoutGivesTheConnectionUp) {
  QmpSession s(1000, 0);
  std::vector<QmpSession::Output> out;
  s.reset(0);
  s.tick(999, out);
  EXPECT_TRUE(out.empty());
  s.tick(1000, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, QmpSession::OutKind::fail);
  EXPECT_EQ(s.counters().answer_timeouts, 1u);
}

class QmpReplay : public QmpLinkFixture {
 protected:
  void SetUp() override {
    QmpLinkFixture::SetUp();
    static int n = 0;
    sock_ = temp_path("qmp-replay-" + std::to_string(++n) + ".sock");
    unlink(sock_.c_str());
    ASSERT_TRUE(peer_.listen(sock_));
  }
  void TearDown() override {
    QmpLinkFixture::TearDown();
    unlink(sock_.c_str());
  }
  // Greeting and the link's opening commands, QEMU in COLO primary mode.
  void open(const char* colo = kColoPrimary) {
    ASSERT_TRUE(peer_.accept());
    ASSERT_TRUE(peer_.send(kQemu72Greeting));
    peer_.expect_and_return("qmp_capabilities", "{}");
    peer_.expect_and_return("query-version", kQemu72Version);
    peer_.expect_and_return("query-colo-status", colo);
    ASSERT_TRUE(wait_event(EventKind::checkpointer_up));
  }
  // Answers every query-colo-status (periodic polls and the one sent at a STOP) with
  // `colo` until another command arrives (returned) or `total_ms` passed (null).
  Json next_non_poll(const char* colo = kColoPrimary, int total_ms = 10000) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(total_ms);
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now()).count();
      if (left <= 0) return nullptr;
      Json c = peer_.command(static_cast<int>(left));
      if (!c.is_object()) return c;
      if (c.value("execute", "") != "query-colo-status") return c;
      peer_.send("{\"return\": " + std::string(colo) + ", \"id\": " + c["id"].dump() + "}\r\n");
    }
  }
  void reply(const Json& c, const std::string& ret) {
    peer_.send("{\"return\": " + ret + ", \"id\": " + c["id"].dump() + "}\r\n");
  }

  std::string sock_;
  ScriptedQmpPeer peer_;
};

TEST_F(QmpReplay, RequestBecomesCheckpointDelayTriggerDoneAtResume) {
  start_link(sock_);
  open();
  ASSERT_TRUE(wait_for([&] { return coord_->status()["qemu"]["colo"]["mode"] == "primary"; }));
  Json s = coord_->status();
  EXPECT_EQ(s["dialect"], "qmp");
  EXPECT_EQ(s["qemu"]["version"], "7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)");
  EXPECT_EQ(s["qemu"]["colo"]["mode"], "primary");

  request(0);
  Json c = next_non_poll();
  ASSERT_TRUE(c.is_object());
  EXPECT_EQ(c["execute"], "query-migrate-parameters");
  reply(c, kMigrateParams);
  c = next_non_poll();
  ASSERT_TRUE(c.is_object());
  EXPECT_EQ(c["execute"], "migrate-set-parameters");
  EXPECT_EQ(c["arguments"], (Json{{"x-checkpoint-delay", 20000}}));
  reply(c, "{}");
  // QEMU 7.2 checkpoints: STOP, then RESUME once the SVM loaded the state.
  peer_.send(qmp_event("STOP"));
  c = peer_.command();
  ASSERT_TRUE(c.is_object());
  EXPECT_EQ(c["execute"], "query-colo-status");
  peer_.send(qmp_event("RESUME"));  // before the answer: the link waits for it
  EXPECT_FALSE(wait_event(EventKind::checkpoint_done, nullptr, 200));
  reply(c, kColoPrimary);
  Event e;
  ASSERT_TRUE(wait_event(EventKind::checkpoint_done, &e));
  EXPECT_EQ(e.epoch, 0u);
  EXPECT_EQ(coord_->epoch(), 1u);
  EXPECT_EQ(qemu_counter("triggers"), 1u);
  EXPECT_EQ(qemu_counter("checkpoints_seen"), 1u);
  EXPECT_EQ(coord_->status()["qemu"]["x_checkpoint_delay_ms"], 20000);
}

TEST_F(QmpReplay, QemusOwnPeriodicCheckpointReleasesTheEpoch) {
  start_link(sock_);
  open();
  ASSERT_TRUE(wait_for([&] { return coord_->status()["qemu"]["colo"]["mode"] == "primary"; }));
  peer_.send(qmp_event("STOP"));
  EXPECT_TRUE(next_non_poll(kColoPrimary, 500).is_null());  // answers the STOP's query
  peer_.send(qmp_event("RESUME"));
  Event e;
  ASSERT_TRUE(wait_event(EventKind::checkpoint_done, &e));
  EXPECT_EQ(e.epoch, 0u);
  Json c = coord_->status()["checkpoint"]["counters"];
  EXPECT_EQ(c["begun"], 1);  // QEMU's own: begun at the STOP, nobody asked
  EXPECT_EQ(c["requests_sent"], 0);
  EXPECT_EQ(c["done"], 1);
  EXPECT_EQ(qemu_counter("checkpoints_seen"), 1u);
}

TEST_F(QmpReplay, StopContOutsideColoReleasesNothing) {
  start_link(sock_);
  open("{\"last-mode\": \"none\", \"mode\": \"none\", \"reason\": \"none\"}");
  request(0);
  Json c = next_non_poll("{\"last-mode\": \"none\", \"mode\": \"none\", \"reason\": \"none\"}");
  ASSERT_TRUE(c.is_object());
  reply(c, kMigrateParams);
  c = next_non_poll("{\"last-mode\": \"none\", \"mode\": \"none\", \"reason\": \"none\"}");
  reply(c, "{}");
  peer_.send(qmp_event("STOP"));
  c = next_non_poll("{\"last-mode\": \"none\", \"mode\": \"none\", \"reason\": \"none\"}", 600);
  EXPECT_TRUE(c.is_null());  // only polls came
  peer_.send(qmp_event("RESUME"));
  ASSERT_TRUE(wait_for([&] { return qemu_counter("stop_resume_outside_colo") == 1; }));
  EXPECT_EQ(count_events(EventKind::checkpoint_done), 0u);
  EXPECT_EQ(coord_->epoch(), 0u);
}

TEST_F(QmpReplay, ColoExitFromQemuIsFollowed) {
  start_link(sock_);
  open();
  peer_.send(qmp_event("COLO_EXIT", "{\"mode\": \"primary\", \"reason\": \"error\"}"));
  Event e;
  ASSERT_TRUE(wait_event(EventKind::failover, &e));
  EXPECT_EQ(e.survivor, Survivor::primary);
  EXPECT_NE(e.detail.find("reason error"), std::string::npos) << e.detail;
  EXPECT_EQ(link_counter("failovers_from_qemu"), 1u);
  // QEMU left COLO by itself: it is not told x-colo-lost-heartbeat.
  Json c = next_non_poll(kColoNone, 600);
  EXPECT_TRUE(c.is_null()) << c.dump();
  EXPECT_EQ(qemu_counter("lost_heartbeat_sent"), 0u);
}

TEST_F(QmpReplay, FailoverDecidedHereTellsTheSurvivorsQemu) {
  start_link(sock_);
  open();
  std::string error;
  ASSERT_TRUE(failover_.decide(Survivor::primary, "peer lost", monotonic_ns(), error));
  Json c = next_non_poll();
  ASSERT_TRUE(c.is_object());
  EXPECT_EQ(c["execute"], "x-colo-lost-heartbeat");
  reply(c, "{}");
  peer_.send(qmp_event("COLO_EXIT", "{\"mode\": \"primary\", \"reason\": \"request\"}"));
  ASSERT_TRUE(wait_for([&] { return qemu_counter("colo_exits") == 1; }));
  EXPECT_EQ(link_counter("failovers_from_qemu"), 0u);  // ours, not followed twice
}

TEST_F(QmpReplay, JunkTruncatedAndDisconnectsAreCountedNotFatal) {
  start_link(sock_);
  open();
  peer_.send("this is not json\r\n{\"return\": {\r\n{\"return\": {}, \"id\": 999}\r\n");
  ASSERT_TRUE(wait_for([&] { return link_counter("protocol_errors") >= 2; }));
  EXPECT_EQ(qemu_counter("unknown_replies"), 1u);
  EXPECT_TRUE(coord_->connected());
  // A truncated line, then the peer goes away: a counted disconnect and a reconnect.
  peer_.send("{\"event\": \"STO");
  peer_.drop();
  ASSERT_TRUE(wait_event(EventKind::checkpointer_down));
  open();
  EXPECT_GE(link_counter("connects"), 2u);
  EXPECT_GE(link_counter("disconnects"), 1u);
}

TEST_F(QmpReplay, SilentQemuIsGivenUpAndRetried) {
  start_link(sock_);
  ASSERT_TRUE(peer_.accept());  // ... and never greets
  ASSERT_TRUE(wait_for([&] { return qemu_counter("answer_timeouts") >= 1; }, 10000));
  open();
  EXPECT_TRUE(coord_->connected());
}

TEST_F(QmpReplay, RequestWhileDownIsSentAfterReconnect) {
  start_link(sock_);
  request(0);
  open();
  Json c = next_non_poll();
  ASSERT_TRUE(c.is_object());
  EXPECT_EQ(c["execute"], "query-migrate-parameters");
}

}  // namespace

namespace {

// An error without an id: what the libvirt bridge (ctrl/qmp_libvirt.h) sends when it
// cannot reach the domain, and QEMU for a command it could not read. The connection is
// given up at once with the error as the reason: before the greeting a failed connect,
// after it a disconnect; then the link tries again.
TEST_F(QmpReplay, ErrorWithoutIdEndsTheConnection) {
  start_link(sock_);
  ASSERT_TRUE(peer_.accept());
  peer_.send("{\"error\": {\"class\": \"LibvirtError\", \"desc\": \"domain 'pvm' is not running\"}}\r\n");
  ASSERT_TRUE(wait_for([&] { return link_counter("connect_failures") >= 1; }));
  EXPECT_EQ(coord_->status()["last_error"], "LibvirtError: domain 'pvm' is not running");
  EXPECT_EQ(link_counter("connects"), 0u);
  open();
  EXPECT_EQ(link_counter("connects"), 1u);
  peer_.send("{\"error\": {\"class\": \"LibvirtError\", \"desc\": \"domain 'pvm' stopped\"}}\r\n");
  ASSERT_TRUE(wait_event(EventKind::checkpointer_down));
  EXPECT_EQ(link_counter("disconnects"), 1u);
  EXPECT_EQ(coord_->status()["last_error"], "LibvirtError: domain 'pvm' stopped");
  open();
  EXPECT_EQ(link_counter("connects"), 2u);
}

}  // namespace
