// One 64-bit mixer for hash tables that are not the connection index (the compare
// engine's flow hash is compare/flow_key.h's): MurmurHash3's fmix64 finalizer, every
// input bit flipping each output bit with probability about one half. Header only.
#pragma once

#include <cstdint>

namespace lockstep {

inline uint64_t mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return x;
}

}  // namespace lockstep
