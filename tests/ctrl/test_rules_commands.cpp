// `rules list|add|del` over a real ctrl socket. The daemon side is the FakeDaemon test
// double, except that settings are applied by building a real compare engine from them,
// so a rule that does not parse or compile is refused exactly as lockstepd refuses it.
#include <gtest/gtest.h>

#include "compare/engine.h"
#include "ctrl/commands.h"
#include "ctrl/ctrl_server.h"
#include "fake_daemon.h"
#include "test_util.h"

using namespace lockstep;
using namespace lockstep::ctrl;
using namespace lockstep::ctrl::testing;

namespace {

class EngineCheckedDaemon : public FakeDaemon {
 public:
  bool apply_settings(const Settings& s, std::string& error) override {
    if (Engine::create(s, error) == nullptr) return false;
    return FakeDaemon::apply_settings(s, error);
  }
};

class RulesCommands : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = temp_path("rules.sock");
    cp_.daemon = &daemon_;
    cp_.failover = &failover_;
    cp_.events = &events_;
    register_standard_commands(registry_, cp_);
    CtrlServerConfig cfg;
    cfg.socket_path = path_;
    server_ = std::make_unique<CtrlServer>(registry_, cfg);
    cp_.server = server_.get();
    std::string error;
    ASSERT_TRUE(server_->start(error)) << error;
  }
  void TearDown() override {
    server_->stop();
    unlink(path_.c_str());
  }
  Json call(const std::string& cmd, std::vector<std::string> args = {}) {
    LineClient c;
    EXPECT_TRUE(c.open(path_));
    return c.call({{"command", cmd}, {"args", args}});
  }

  std::string path_;
  EngineCheckedDaemon daemon_;
  EventQueue events_;
  FailoverController failover_{&events_};
  ControlPlane cp_;
  CommandRegistry registry_;
  std::unique_ptr<CtrlServer> server_;
};

TEST_F(RulesCommands, AddListDelete) {
  Json r = call("rules list");
  ASSERT_EQ(r["ok"], true) << r;
  EXPECT_TRUE(r["result"]["rules"].empty());

  r = call("rules add", {"date", "tcp:80", "Date: [^\\r\\n]*"});
  ASSERT_EQ(r["ok"], true) << r;
  r = call("rules add", {"@smtp"});
  ASSERT_EQ(r["ok"], true) << r;
  r = call("rules list");
  ASSERT_EQ(r["result"]["rules"].size(), 2u) << r;
  EXPECT_EQ(r["result"]["rules"][0], "date tcp:80 Date: [^\\r\\n]*");
  EXPECT_EQ(daemon_.settings().normalize_rules, "date tcp:80 Date: [^\\r\\n]*\n@smtp");

  r = call("rules del", {"date"});
  ASSERT_EQ(r["ok"], true) << r;
  EXPECT_EQ(daemon_.settings().normalize_rules, "@smtp");
  EXPECT_EQ(call("rules del", {"date"})["ok"], false) << "already gone";
}

TEST_F(RulesCommands, RefusesDuplicatesBadRulesAndBadPatterns) {
  ASSERT_EQ(call("rules add", {"id", "tcp:80", "X-Id: [0-9a-f]+"})["ok"], true);
  Json r = call("rules add", {"id", "tcp:80", "Other: x"});
  EXPECT_EQ(r["ok"], false);
  EXPECT_NE(r["error"].get<std::string>().find("exists"), std::string::npos) << r;

  r = call("rules add", {"broken", "tcp:80", "Date: ([a-z"});
  EXPECT_EQ(r["ok"], false) << r;
  EXPECT_NE(r["error"].get<std::string>().find("broken"), std::string::npos) << r;

  r = call("rules add", {"nosel"});
  EXPECT_EQ(r["ok"], false) << r;
  EXPECT_EQ(call("rules add")["ok"], false) << "missing argument";
  // Nothing refused changed the rules in force.
  EXPECT_EQ(daemon_.settings().normalize_rules, "id tcp:80 X-Id: [0-9a-f]+");
}

}  // namespace
