// Incremental checksum update equals a full recomputation.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "compare/checksum.h"
#include "compare/parse.h"

namespace lockstep {
namespace {

uint16_t full(const std::vector<uint8_t>& b) {
  return static_cast<uint16_t>(~csum_fold(csum_partial(b.data(), b.size(), 0)));
}

TEST(Checksum, IncrementalMatchesFull) {
  std::mt19937_64 rng(11);
  for (int round = 0; round < 2000; ++round) {
    std::vector<uint8_t> b(40 + rng() % 60);
    for (auto& x : b) x = static_cast<uint8_t>(rng());
    b[16] = b[17] = 0;
    store_be16(&b[16], full(b));  // checksum field at 16, as in TCP
    ASSERT_EQ(full(b), 0u) << "a buffer carrying its checksum sums to zero";
    size_t at = 4 * (1 + rng() % 3);  // a 32-bit field not overlapping the checksum
    uint32_t old_v = load_be32(&b[at]);
    uint32_t new_v = static_cast<uint32_t>(rng());
    store_be32(&b[at], new_v);
    csum_update32(&b[16], old_v, new_v);
    std::vector<uint8_t> z = b;
    z[16] = z[17] = 0;
    uint16_t want = full(z);
    ASSERT_EQ(load_be16(&b[16]), want) << "round " << round;
  }
}

TEST(Checksum, OddLengthAndFold) {
  const uint8_t b[] = {0xff, 0xff, 0xff};
  // 0xffff + 0xff00 (odd byte padded with zero) = 0x1feff -> 0xff00
  EXPECT_EQ(csum_fold(csum_partial(b, 3, 0)), 0xff00u);
  EXPECT_EQ(csum_fold(0x1ffffu), 0x0001u);
  EXPECT_EQ(csum_fold(0xffffu), 0xffffu);
}

}  // namespace
}  // namespace lockstep
