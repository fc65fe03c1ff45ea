// Canonical flow key, its hash and its text form.
#include "compare/flow_key.h"

#include <bit>
#include <cstdio>
#include <cstring>

namespace lockstep {

namespace {

// Big-endian 64-bit load: comparing two of them orders bytes as memcmp does.
inline uint64_t load_be64(const uint8_t* p) {
  return (uint64_t{load_be32(p)} << 32) | load_be32(p + 4);
}

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

inline uint64_t mix_in(uint64_t h, uint64_t w) {
  h ^= w;
  h *= 0xbf58476d1ce4e5b9ull;
  return h ^ (h >> 31);
}

inline uint64_t fmix64(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return h;
}

std::string_view proto_name(uint8_t proto) {
  switch (proto) {
    case kProtoTcp:
      return "tcp";
    case kProtoUdp:
      return "udp";
    case kProtoIcmp:
      return "icmp";
    case kProtoIcmpv6:
      return "icmpv6";
    default:
      return {};
  }
}

void append_endpoint(std::string& s, const IpAddr& a, uint16_t port) {
  if (a.is_v4()) {
    s += to_string(a);
  } else {
    s += '[';
    s += to_string(a);
    s += ']';
  }
  s += ':';
  s += std::to_string(port);
}

}  // namespace

FlowKey flow_key_of(const ParsedFrame& f, bool* from_lo) {
  FlowKey k{};
  k.vlan = f.vlan_count != 0 ? static_cast<uint16_t>(f.vlan_tci[0] & 0x0fffu) : 0;
  if (!f.is_ip()) {
    if (from_lo != nullptr) *from_lo = true;
    return k;
  }
  k.proto = f.l4_proto;
  const bool lo = endpoint_le(f.src, f.sport, f.dst, f.dport);
  if (lo) {
    k.addr_lo = f.src;
    k.port_lo = f.sport;
    k.addr_hi = f.dst;
    k.port_hi = f.dport;
  } else {
    k.addr_lo = f.dst;
    k.port_lo = f.dport;
    k.addr_hi = f.src;
    k.port_hi = f.sport;
  }
  if (from_lo != nullptr) *from_lo = lo;
  return k;
}

uint64_t flow_hash(const FlowKey& k) {
  // The key's 40 bytes as five little-endian words: both addresses, then ports, VLAN and
  // protocol packed in the order of the struct (the padding byte is zero).
  uint64_t h = 0x9e3779b97f4a7c15ull;
  h = mix_in(h, load_le64(k.addr_lo.b.data()));
  h = mix_in(h, load_le64(k.addr_lo.b.data() + 8));
  h = mix_in(h, load_le64(k.addr_hi.b.data()));
  h = mix_in(h, load_le64(k.addr_hi.b.data() + 8));
  h = mix_in(h, uint64_t{k.port_lo} | (uint64_t{k.port_hi} << 16) | (uint64_t{k.vlan} << 32) |
                    (uint64_t{k.proto} << 48));
  return fmix64(h);
}

std::string to_string(const IpAddr& a) {
  char buf[48];
  if (a.is_v4()) {
    std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", a.b[12], a.b[13], a.b[14], a.b[15]);
    return buf;
  }
  uint16_t g[8];
  for (unsigned i = 0; i < 8; ++i) g[i] = load_be16(a.b.data() + 2 * i);
  // RFC 5952: the longest run of two or more zero groups (first on ties) becomes "::".
  int best = -1, best_len = 0;
  for (int i = 0; i < 8;) {
    if (g[i] != 0) {
      ++i;
      continue;
    }
    int j = i;
    while (j < 8 && g[j] == 0) ++j;
    if (j - i > best_len && j - i >= 2) {
      best = i;
      best_len = j - i;
    }
    i = j;
  }
  std::string s;
  for (int i = 0; i < 8;) {
    if (i == best) {
      s += "::";
      i += best_len;
      continue;
    }
    if (!s.empty() && s.back() != ':') s += ':';
    std::snprintf(buf, sizeof buf, "%x", g[i]);
    s += buf;
    ++i;
  }
  return s;
}

std::string to_string(const FlowKey& k) {
  std::string s;
  const bool non_ip = k.proto == 0 && k.addr_lo == IpAddr{} && k.addr_hi == IpAddr{};
  if (non_ip) {
    s = "non-ip";
  } else {
    const std::string_view name = proto_name(k.proto);
    if (name.empty()) {
      s = "proto " + std::to_string(k.proto);
    } else {
      s = name;
    }
    s += ' ';
    append_endpoint(s, k.addr_lo, k.port_lo);
    s += " <-> ";
    append_endpoint(s, k.addr_hi, k.port_hi);
  }
  if (k.vlan != 0) {
    s += " vlan ";
    s += std::to_string(k.vlan);
  }
  return s;
}

}  // namespace lockstep
