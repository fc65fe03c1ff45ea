// The settings table: defaults valid, every key settable, errors name key and range.
#include <gtest/gtest.h>

#include "compare/engine.h"
#include "compare/settings.h"

namespace lockstep {
namespace {

TEST(Settings, DefaultsComeFromTheTableAndMakeAnEngine) {
  Settings s = Settings::defaults();
  EXPECT_EQ(s.mode, "colo");
  EXPECT_EQ(s.compare_timeout_us, 100000u);
  EXPECT_EQ(s.max_connections, 65536u);
  EXPECT_TRUE(s.translate_timestamps);
  EXPECT_FALSE(s.hybrid);
  std::string err;
  EXPECT_NE(Engine::create(s, err), nullptr) << err;
  for (const auto& info : settings_table()) {
    EXPECT_EQ(s.get(info.name), std::string(info.default_value)) << info.name;
    EXPECT_FALSE(info.help.empty()) << info.name;
  }
}

TEST(Settings, EveryKeyAcceptsItsDefaultThroughWith) {
  Settings s = Settings::defaults();
  for (const auto& info : settings_table()) {
    Settings out;
    std::string err;
    EXPECT_TRUE(s.with(info.name, info.default_value, out, err)) << info.name << ": " << err;
  }
}

TEST(Settings, UnknownKeyIsNamed) {
  Settings out;
  std::string err;
  EXPECT_FALSE(Settings::defaults().with("compare_timeout", "5", out, err));
  EXPECT_NE(err.find("unknown setting 'compare_timeout'"), std::string::npos) << err;
}

TEST(Settings, OutOfRangeNamesKeyAndRange) {
  Settings out;
  std::string err;
  EXPECT_FALSE(Settings::defaults().with("compare_timeout_us", "5", out, err));
  EXPECT_NE(err.find("compare_timeout_us"), std::string::npos) << err;
  EXPECT_NE(err.find("[100, 60000000]"), std::string::npos) << err;
  EXPECT_FALSE(Settings::defaults().with("compare_timeout_us", "12abc", out, err));
  EXPECT_FALSE(Settings::defaults().with("compare_timeout_us", "", out, err));
  EXPECT_FALSE(Settings::defaults().with("compare_timeout_us", "-1", out, err));
  EXPECT_FALSE(Settings::defaults().with("compare_timeout_us", "99999999999999999999", out, err));
}

TEST(Settings, ChoicesAndBooleans) {
  Settings out;
  std::string err;
  EXPECT_TRUE(Settings::defaults().with("mode", "buffer", out, err));
  EXPECT_EQ(out.mode, "buffer");
  EXPECT_FALSE(Settings::defaults().with("mode", "fast", out, err));
  EXPECT_NE(err.find("colo|buffer|passthrough"), std::string::npos) << err;
  EXPECT_TRUE(Settings::defaults().with("hybrid", "on", out, err));
  EXPECT_TRUE(out.hybrid);
  EXPECT_FALSE(Settings::defaults().with("hybrid", "maybe", out, err));
  EXPECT_NE(err.find("true or false"), std::string::npos) << err;
}

TEST(Settings, WithLeavesTheSnapshotUntouched) {
  const Settings s = Settings::defaults();
  Settings out;
  std::string err;
  ASSERT_TRUE(s.with("reorder_window", "64", out, err));
  EXPECT_EQ(out.reorder_window, 64u);
  EXPECT_EQ(s.reorder_window, 2048u);
}

TEST(Settings, WithAllStopsAtTheFirstError) {
  Settings out;
  std::string err;
  EXPECT_TRUE(Settings::defaults().with_all({{"hybrid", "true"}, {"hybrid_threshold", "3"}}, out, err));
  EXPECT_EQ(out.hybrid_threshold, 3u);
  EXPECT_FALSE(Settings::defaults().with_all({{"hybrid", "true"}, {"nope", "3"}}, out, err));
  EXPECT_NE(err.find("nope"), std::string::npos);
}

TEST(Settings, BadPolicyRuleRefusedByTheEngine) {
  Settings s;
  std::string err;
  ASSERT_TRUE(Settings::defaults().with("policy_rules", "udp:53=pass;sctp=drop", s, err));
  EXPECT_EQ(Engine::create(s, err), nullptr);
  EXPECT_NE(err.find("sctp"), std::string::npos) << err;
}

TEST(Settings, LiveApplyRefusesFixedCapacities) {
  std::string err;
  auto e = Engine::create(Settings::defaults(), err);
  ASSERT_NE(e, nullptr);
  Settings s;
  ASSERT_TRUE(Settings::defaults().with("max_connections", "1024", s, err));
  EXPECT_FALSE(e->apply_settings(s, err));
  EXPECT_NE(err.find("fixed at start"), std::string::npos);
  ASSERT_TRUE(Settings::defaults().with("compare_timeout_us", "5000", s, err));
  EXPECT_TRUE(e->apply_settings(s, err)) << err;
  EXPECT_EQ(e->settings().compare_timeout_us, 5000u);
}

}  // namespace
}  // namespace lockstep
