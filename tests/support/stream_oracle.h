// StreamOracle: the simplest possible model of what the engine decides for one TCP
// byte stream. Each side's bytes are written into a flat array at their stream offset
// (naive reassembly), and the two arrays are compared with memcmp. No windows, no
// sequence arithmetic: offsets are 64-bit and start at 0 (the byte after the SYN).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "tests/support/frame_builder.h"

namespace lockstep::test {

class StreamOracle {
 public:
  // Records bytes sent by `vm` at stream offset `off`. A side that sends different
  // bytes at an offset it already sent is recorded as inconsistent (a test bug).
  void add(Vm vm, uint64_t off, std::span<const uint8_t> bytes);

  // Length of the gap-free prefix [0, n) the side has sent.
  uint64_t contiguous(Vm vm) const;
  // Highest offset + 1 the side has sent (0 when nothing).
  uint64_t extent(Vm vm) const;
  bool has(Vm vm, uint64_t a, uint64_t b) const;

  // Every byte of [a, b) was sent by both sides and the SVM's equals the PVM's.
  bool matched(uint64_t a, uint64_t b) const;

  // First offset where both sides sent a byte and the bytes differ.
  std::optional<uint64_t> first_difference() const;

  struct Verdict {
    bool identical = false;  // same length, every byte present on both sides and equal
    uint64_t first_diff = 0; // when not identical: first offset differing or missing
  };
  Verdict verdict() const;

  bool inconsistent() const { return inconsistent_; }

 private:
  struct Side {
    std::vector<uint8_t> data;
    std::vector<uint8_t> present;
  };
  Side& side(Vm vm) { return vm == Vm::pvm ? pvm_ : svm_; }
  const Side& side(Vm vm) const { return vm == Vm::pvm ? pvm_ : svm_; }

  Side pvm_, svm_;
  bool inconsistent_ = false;
};

}  // namespace lockstep::test
