// The EAL for an in-process dataplane test binary (GoogleTest environment).
#pragma once

#include <gtest/gtest.h>
#include <rte_eal.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace lockstep::dptest {

// The EAL for an in-process test binary, started once (no hugepages, no PCI), with a
// file prefix unique to the binary and process. Tests skip when it did not start.
class EalEnv : public ::testing::Environment {
 public:
  explicit EalEnv(std::string tag) : tag_(std::move(tag)) {}
  void SetUp() override {
    std::string prefix = "--file-prefix=" + tag_ + std::to_string(getpid());
    std::vector<std::string> args = {"test", "-l", "0", "--no-huge", "-m", "256", "--no-pci",
                                     "--no-shconf", prefix, "--log-level=lib.eal:error",
                                     "--no-telemetry"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    ok_ = rte_eal_init(static_cast<int>(argv.size()), argv.data()) >= 0;
  }
  void TearDown() override {
    if (ok_) rte_eal_cleanup();
  }
  static inline bool ok_ = false;

 private:
  std::string tag_;
};

}  // namespace lockstep::dptest
