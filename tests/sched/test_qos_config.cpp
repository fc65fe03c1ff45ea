// lockstepd's `qos:` section as the scheduler sees it (dataplane/qos/qos_config.h, pure):
// scripts build a port's configuration; bad lines are refused naming the line and token;
// a configuration built from a script runs in a QosPort and survives live changes.
#include <gtest/gtest.h>

#include "dataplane/qos/qos_config.h"
#include "dataplane/qos/sched/qos_port.h"

namespace lockstep::sched {
namespace {

TEST(QosConfigScript, BuildsThePortConfiguration) {
  QosConfig c;
  std::string err;
  ASSERT_TRUE(dp::build_qos_config("link",
                                   "# heartbeats first\n"
                                   "qdisc add link rate 1gbit\n"
                                   "class add link hb prio 0 rate 10mbit ceil 100mbit\n"
                                   "\n"
                                   "class add link bulk prio 7 rate 500mbit conn-rate 50mbit default\n"
                                   "filter add link proto udp dport 9099 class hb\n",
                                   dp::qos_limits(4095), c, err))
      << err;
  EXPECT_EQ(c.default_class, "bulk");
  ASSERT_NE(c.find_class("hb"), nullptr);
  EXPECT_EQ(c.find_class("hb")->params.prio, 0);
  ASSERT_EQ(c.filters.size(), 1u);
  QosPort port("link", dp::qos_limits(4095));
  EXPECT_EQ(port.reconcile(c, 0), "");
  EXPECT_NE(port.class_id("hb"), kNoClass);
}

TEST(QosConfigScript, RefusesBadLinesNamingLineAndToken) {
  QosConfig c;
  std::string err;
  const auto lim = dp::qos_limits(4095);
  EXPECT_FALSE(dp::build_qos_config("link", "qdisc add link rate 1gbit\nclass add link a prio 9\n", lim, c, err));
  EXPECT_NE(err.find("line 2"), std::string::npos) << err;
  EXPECT_NE(err.find("'9'"), std::string::npos) << err;
  EXPECT_FALSE(dp::build_qos_config("link", "class add host a prio 1\n", lim, c, err));
  EXPECT_NE(err.find("'host'"), std::string::npos) << err;
  EXPECT_FALSE(dp::build_qos_config("link", "qdisc add link rate 1gbit\nfilter add link dport 1 class x\n", lim, c, err));
  EXPECT_NE(err.find("'x'"), std::string::npos) << err;
  EXPECT_FALSE(dp::build_qos_config("link", "qdisc add link rate 1gbit\nclass add link a rate 2gbit\n", lim, c, err));
  EXPECT_NE(err.find("port rate"), std::string::npos) << err;
  EXPECT_FALSE(dp::build_qos_config("link", "class frobnicate link a\n", lim, c, err));
  EXPECT_NE(err.find("frobnicate"), std::string::npos) << err;
}

TEST(QosConfigScript, LimitsNeverQueueMoreThanAQuarterOfThePool) {
  EXPECT_EQ(dp::qos_limits(4095).max_packets, 1023u);
  EXPECT_EQ(dp::qos_limits(1023).max_packets, 255u);
  EXPECT_LE(dp::qos_limits(1u << 24).max_packets, 16384u);
  EXPECT_EQ(validate(dp::qos_limits(32767)), "");
}

}  // namespace
}  // namespace lockstep::sched
