// Canonical flow key, its hash and its text form.
#include "compare/flow_key.h"

#include <cstdio>
#include <cstring>

namespace lockstep {

namespace {

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
