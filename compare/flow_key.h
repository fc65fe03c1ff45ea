// Canonical flow key: both directions of a connection, and the PVM's and the SVM's
// copies of it, map to one key. The two endpoints are ordered (lower address/port
// first), so the key and its hash are symmetric by construction.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>

#include "compare/parse.h"

namespace lockstep {

struct FlowKey {
  IpAddr addr_lo, addr_hi;
  uint16_t port_lo = 0, port_hi = 0;
  uint16_t vlan = 0;  // outer VLAN id (12 bits), 0 when untagged
  uint8_t proto = 0;
  uint8_t pad_ = 0;   // keeps the struct free of indeterminate padding bytes

  // Byte-wise: the layout has no padding, so this is memberwise equality in one compare.
  friend bool operator==(const FlowKey& a, const FlowKey& b) {
    return std::memcmp(&a, &b, sizeof(FlowKey)) == 0;
  }
};
static_assert(sizeof(FlowKey) == 40);
static_assert(std::has_unique_object_representations_v<FlowKey>);
static_assert(offsetof(FlowKey, addr_hi) == 16 && offsetof(FlowKey, port_lo) == 32 &&
              offsetof(FlowKey, port_hi) == 34 && offsetof(FlowKey, vlan) == 36 &&
              offsetof(FlowKey, proto) == 38 && offsetof(FlowKey, pad_) == 39);

// Key of an IP frame, with whether the frame travels from the `lo` endpoint to the
// `hi` one. Fragments that are not first carry no ports: their key has ports zero and
// they are looked up through the fragment table instead.
inline FlowKey flow_key_of(const ParsedFrame& f, bool* from_lo = nullptr);

// Symmetric by construction (the key is canonical); a 64-bit mix good for power-of-two
// tables. Same value on every host and run (no random seed), so replay is repeatable.
inline uint64_t flow_hash(const FlowKey& k);

// "tcp 10.0.0.1:80 <-> 10.0.0.2:41000" (VLAN shown when set). For events and logs.
std::string to_string(const FlowKey& k);
std::string to_string(const IpAddr& a);

// ---------------------------------------------------------------------------- inline
// Both run for every frame the engine sees: defined here so that they inline.

namespace flow_key_detail {

// Big-endian 64-bit loads (common/byte_order.h): comparing two of them orders bytes as
// memcmp does.
using lockstep::load_be64;

// Orders two endpoints: address bytes first (as memcmp would, in two word compares),
// then port.
inline bool endpoint_le(const IpAddr& a, uint16_t pa, const IpAddr& b, uint16_t pb) {
  const uint64_t a0 = load_be64(a.b.data()), b0 = load_be64(b.b.data());
  if (a0 != b0) return a0 < b0;
  const uint64_t a1 = load_be64(a.b.data() + 8), b1 = load_be64(b.b.data() + 8);
  if (a1 != b1) return a1 < b1;
  return pa <= pb;
}

// Little-endian 64-bit load, so the hash is the same on every host.
inline uint64_t load_le64(const uint8_t* p) {
  uint64_t v = 0;
  if constexpr (std::endian::native == std::endian::little) {
    std::memcpy(&v, p, sizeof v);
  } else {
    for (unsigned i = 0; i < 8; ++i) v |= uint64_t{p[i]} << (8 * i);
  }
  return v;
}

// 64x64 -> 128-bit product, folded: every bit of both inputs reaches the middle bits of
// the result, and both halves are kept.
#if defined(__SIZEOF_INT128__)
__extension__ using u128 = unsigned __int128;
inline uint64_t fold_mul(uint64_t a, uint64_t b) {
  const u128 p = static_cast<u128>(a) * b;
  return static_cast<uint64_t>(p) ^ static_cast<uint64_t>(p >> 64);
}
#else
inline uint64_t fold_mul(uint64_t a, uint64_t b) {  // the same value from 32-bit halves
  const uint64_t al = a & 0xffffffffu, ah = a >> 32, bl = b & 0xffffffffu, bh = b >> 32;
  const uint64_t ll = al * bl, lh = al * bh, hl = ah * bl, hh = ah * bh;
  const uint64_t mid = (ll >> 32) + (lh & 0xffffffffu) + (hl & 0xffffffffu);
  const uint64_t lo = (ll & 0xffffffffu) | (mid << 32);
  const uint64_t hi = hh + (lh >> 32) + (hl >> 32) + (mid >> 32);
  return lo ^ hi;
}
#endif

}  // namespace flow_key_detail

inline FlowKey flow_key_of(const ParsedFrame& f, bool* from_lo) {
  FlowKey k{};
  const uint16_t vlan = f.vlan_count != 0 ? static_cast<uint16_t>(f.vlan_tci[0] & 0x0fffu) : 0;
  k.vlan = vlan;
  if (!f.is_ip()) {
    if (from_lo != nullptr) *from_lo = true;
    return k;
  }
  bool lo;
  if (f.l3 == L3Kind::ipv4) {
    // Both addresses are ::ffff:a.b.c.d: their first twelve bytes are equal, so the
    // order is that of the IPv4 addresses, then of the ports (endpoint_le's, cheaper).
    const uint32_t s = load_be32(f.src.b.data() + 12), d = load_be32(f.dst.b.data() + 12);
    lo = s != d ? s < d : f.sport <= f.dport;
  } else {
    lo = flow_key_detail::endpoint_le(f.src, f.sport, f.dst, f.dport);
  }
  k.addr_lo = lo ? f.src : f.dst;
  k.addr_hi = lo ? f.dst : f.src;
  const uint16_t port_lo = lo ? f.sport : f.dport, port_hi = lo ? f.dport : f.sport;
  if constexpr (std::endian::native == std::endian::little) {
    // Ports, VLAN and protocol in one 64-bit store: the key is copied and hashed right
    // after, by 64-bit loads, and a load that spans several smaller stores still in
    // flight cannot take its bytes from them (a stall of a dozen cycles per frame).
    const uint64_t tail = uint64_t{port_lo} | (uint64_t{port_hi} << 16) |
                          (uint64_t{vlan} << 32) | (uint64_t{f.l4_proto} << 48);
    std::memcpy(&k.port_lo, &tail, sizeof tail);
  } else {
    k.port_lo = port_lo;
    k.port_hi = port_hi;
    k.proto = f.l4_proto;
  }
  if (from_lo != nullptr) *from_lo = lo;
  return k;
}

inline uint64_t flow_hash(const FlowKey& k) {
  using namespace flow_key_detail;
  // The key's 40 bytes as five little-endian words: both addresses, then ports, VLAN
  // and protocol in the order of the struct, the zero padding byte last. The fifth word
  // is one load: port_lo | port_hi << 16 | vlan << 32 | proto << 48 (asserted below).
  // Three independent folded multiplies, then one over their results: the words are
  // not mixed one after another, so the hash is ready a dozen cycles after the loads
  // (a chain of five rounds took three times that, on every lookup).
  const auto* b = reinterpret_cast<const uint8_t*>(&k);
  uint64_t w4;
  if constexpr (std::endian::native == std::endian::little) {
    w4 = load_le64(b + 32);
  } else {
    w4 = uint64_t{k.port_lo} | (uint64_t{k.port_hi} << 16) | (uint64_t{k.vlan} << 32) |
         (uint64_t{k.proto} << 48);
  }
  const uint64_t x = fold_mul(load_le64(b) ^ 0xa0761d6478bd642full, load_le64(b + 8) ^ 0xe7037ed1a0b428dbull);
  const uint64_t y = fold_mul(load_le64(b + 16) ^ 0x8ebc6af09c88c6e3ull, load_le64(b + 24) ^ 0x589965cc75374cc3ull);
  const uint64_t z = fold_mul(w4 ^ 0x1d8e4e27c47d124full, 0x9e3779b97f4a7c15ull);
  return fold_mul(x ^ 0xbf58476d1ce4e5b9ull, y ^ z ^ 0x94d049bb133111ebull);
}

}  // namespace lockstep
