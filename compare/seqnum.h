// SeqNum: a TCP sequence number. Only wrap-safe comparisons exist (RFC 1982 serial
// arithmetic on 32 bits); there is deliberately no operator< on the raw value, so a
// `max(ack_a, ack_b)` that is wrong across 2^32 cannot be written by accident.
#pragma once

#include <cstdint>

namespace lockstep {

class SeqNum {
 public:
  constexpr SeqNum() = default;
  constexpr explicit SeqNum(uint32_t raw) : raw_(raw) {}

  constexpr uint32_t raw() const { return raw_; }

  // Signed distance from `from` to this, valid when |distance| < 2^31.
  constexpr int32_t since(SeqNum from) const {
    return static_cast<int32_t>(raw_ - from.raw_);
  }

  constexpr SeqNum operator+(uint32_t n) const { return SeqNum(raw_ + n); }
  constexpr SeqNum operator-(uint32_t n) const { return SeqNum(raw_ - n); }
  constexpr SeqNum& operator+=(uint32_t n) {
    raw_ += n;
    return *this;
  }

  friend constexpr bool operator==(SeqNum a, SeqNum b) = default;
  friend constexpr bool before(SeqNum a, SeqNum b) { return a.since(b) < 0; }
  friend constexpr bool before_eq(SeqNum a, SeqNum b) { return a.since(b) <= 0; }
  friend constexpr bool after(SeqNum a, SeqNum b) { return a.since(b) > 0; }
  friend constexpr bool after_eq(SeqNum a, SeqNum b) { return a.since(b) >= 0; }
  friend constexpr SeqNum seq_max(SeqNum a, SeqNum b) { return after(a, b) ? a : b; }
  friend constexpr SeqNum seq_min(SeqNum a, SeqNum b) { return before(a, b) ? a : b; }

 private:
  uint32_t raw_ = 0;
};

static_assert(sizeof(SeqNum) == 4);
static_assert(before(SeqNum(0xffffff00u), SeqNum(0x10u)), "wraps across 2^32");
static_assert(after(SeqNum(5), SeqNum(0xfffffff0u)));

}  // namespace lockstep
