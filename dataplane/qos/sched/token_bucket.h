// Token bucket with time as an argument. Rate in bytes per second, depth in bytes.
// Tokens are kept in fixed point (bytes << 32) so that slow rates at fine time steps
// neither lose nor invent credit. A packet of `len` bytes conforms when the bucket holds
// at least min(len, depth) bytes; the charge is the full length, so a packet longer
// than the bucket leaves a debt (never more than one packet) that later credit repays.
// Over any interval T the bytes sent are at most depth + rate * T (+ one packet longer
// than depth); over a long run, exactly rate.
//
// The profile (rate, depth) may be shared by many states (one per connection).
#pragma once

#include <algorithm>
#include <cstdint>

namespace lockstep::sched {

inline constexpr uint64_t kTbMinRate = 1000;                   // bytes/s (8 kbit/s)
inline constexpr uint64_t kTbMaxRate = 1'250'000'000'000ull;   // bytes/s (10 tbit/s)
inline constexpr uint64_t kTbMaxDepth = 1ull << 30;           // bytes (1 GiB)
inline constexpr uint64_t kTbMaxDebt = 65536;                 // bytes: one packet at most

struct TbProfile {
  uint64_t rate = 0;        // bytes per second
  uint64_t depth = 0;       // bytes
  uint64_t per_ns_fp = 0;   // bytes per nanosecond, << 32
  int64_t depth_fp = 0;     // depth << 32
  uint64_t fill_ns = 0;     // time to fill the bucket from its deepest debt

  // rate in [kTbMinRate, kTbMaxRate], depth in [1, kTbMaxDepth]; callers validate.
  static TbProfile make(uint64_t rate_Bps, uint64_t depth_bytes) {
    TbProfile p;
    p.rate = rate_Bps;
    p.depth = depth_bytes;
    constexpr uint64_t kNs = 1'000'000'000ull;
    // rate * 2^32 / 1e9 without overflow, rounded up: a bucket may earn up to 2^-32
    // bytes per ns (0.23 B/s) more than its rate, never less, so that `rate` bytes are
    // there after exactly one second.
    p.per_ns_fp = ((rate_Bps / kNs) << 32) + (((rate_Bps % kNs) << 32) + kNs - 1) / kNs;
    if (p.per_ns_fp == 0) p.per_ns_fp = 1;
    p.depth_fp = static_cast<int64_t>(depth_bytes << 32);
    const uint64_t span = (depth_bytes + kTbMaxDebt) << 32;
    p.fill_ns = (span + p.per_ns_fp - 1) / p.per_ns_fp;
    return p;
  }
};

struct TbState {
  int64_t tokens_fp = 0;  // negative: debt left by a packet longer than the bucket
  uint64_t last_ns = 0;

  void reset_full(const TbProfile& p, uint64_t now) {
    tokens_fp = p.depth_fp;
    last_ns = now;
  }
  // Adds the credit earned since the last refill. Time that goes backwards earns nothing.
  void refill(const TbProfile& p, uint64_t now) {
    if (now <= last_ns) return;
    const uint64_t elapsed = now - last_ns;
    last_ns = now;
    if (elapsed >= p.fill_ns) {
      tokens_fp = p.depth_fp;
      return;
    }
    // elapsed * per_ns_fp < (depth + max debt) << 32 + per_ns_fp < 2^63: no overflow.
    tokens_fp = std::min(p.depth_fp, tokens_fp + static_cast<int64_t>(elapsed * p.per_ns_fp));
  }
  static int64_t need_fp(const TbProfile& p, uint32_t len) {
    return std::min(static_cast<int64_t>(uint64_t{len} << 32), p.depth_fp);
  }
  bool conforms(const TbProfile& p, uint32_t len) const { return tokens_fp >= need_fp(p, len); }
  void charge(uint32_t len) { tokens_fp -= static_cast<int64_t>(uint64_t{len} << 32); }
  // Nanoseconds from the last refill until `len` bytes conform (0 if they do now).
  uint64_t wait_ns(const TbProfile& p, uint32_t len) const {
    const int64_t need = need_fp(p, len);
    if (tokens_fp >= need) return 0;
    return (static_cast<uint64_t>(need - tokens_fp) + p.per_ns_fp - 1) / p.per_ns_fp;
  }
  // After a profile change: never hold more than the new depth.
  void clamp(const TbProfile& p) { tokens_fp = std::min(tokens_fp, p.depth_fp); }
  int64_t tokens() const { return tokens_fp / (int64_t{1} << 32); }
};

}  // namespace lockstep::sched
