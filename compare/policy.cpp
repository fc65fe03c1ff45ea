#include "compare/policy.h"

#include <arpa/inet.h>

#include <charconv>

namespace lockstep {

namespace {

bool parse_num(std::string_view s, unsigned max, unsigned& out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size() && out <= max;
}

bool parse_proto(std::string_view s, uint16_t& out) {
  if (s == "tcp") out = kProtoTcp;
  else if (s == "udp") out = kProtoUdp;
  else if (s == "icmp") out = kProtoIcmp;
  else if (s == "icmpv6") out = kProtoIcmpv6;
  else if (s == "ip" || s == "any") out = 256;
  else {
    unsigned n = 0;
    if (!parse_num(s, 255, n)) return false;
    out = static_cast<uint16_t>(n);
  }
  return true;
}

bool parse_prefix(std::string_view s, IpAddr& addr, uint8_t& len) {
  size_t slash = s.find('/');
  std::string host(s.substr(0, slash));
  unsigned bits = 0;
  in_addr a4{};
  in6_addr a6{};
  if (inet_pton(AF_INET, host.c_str(), &a4) == 1) {
    addr = IpAddr::v4(ntohl(a4.s_addr));
    bits = 32;
    if (slash != std::string_view::npos && !parse_num(s.substr(slash + 1), 32, bits)) return false;
    len = static_cast<uint8_t>(96 + bits);
    return true;
  }
  if (inet_pton(AF_INET6, host.c_str(), &a6) == 1) {
    for (unsigned i = 0; i < 16; ++i) addr.b[i] = a6.s6_addr[i];
    bits = 128;
    if (slash != std::string_view::npos && !parse_num(s.substr(slash + 1), 128, bits)) return false;
    len = static_cast<uint8_t>(bits);
    return true;
  }
  return false;
}

bool in_prefix(const IpAddr& a, const IpAddr& p, uint8_t len) {
  unsigned full = len / 8, rest = len % 8;
  for (unsigned i = 0; i < full; ++i) {
    if (a.b[i] != p.b[i]) return false;
  }
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (a.b[full] & mask) == (p.b[full] & mask);
}

}  // namespace

bool policy_action_from_string(std::string_view s, PolicyAction& out) {
  if (s == "compare") out = PolicyAction::compare;
  else if (s == "pass") out = PolicyAction::pass;
  else if (s == "drop") out = PolicyAction::drop;
  else return false;
  return true;
}

std::string_view to_string(PolicyAction a) {
  switch (a) {
    case PolicyAction::compare: return "compare";
    case PolicyAction::pass: return "pass";
    case PolicyAction::drop: return "drop";
  }
  return "unknown";
}

bool PolicyTable::parse(std::string_view text, PolicyAction default_action, std::string& error) {
  std::vector<PolicyRule> rules;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find(';', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view rule_text = text.substr(pos, end - pos);
    pos = end + 1;
    while (!rule_text.empty() && rule_text.front() == ' ') rule_text.remove_prefix(1);
    while (!rule_text.empty() && rule_text.back() == ' ') rule_text.remove_suffix(1);
    if (rule_text.empty()) continue;
    auto fail = [&](const std::string& why) {
      error = "policy rule '" + std::string(rule_text) + "': " + why;
      return false;
    };
    size_t eq = rule_text.rfind('=');
    if (eq == std::string_view::npos) return fail("missing '=ACTION'");
    PolicyRule r;
    if (!policy_action_from_string(rule_text.substr(eq + 1), r.action)) {
      return fail("action must be compare, pass or drop");
    }
    std::string_view match = rule_text.substr(0, eq);
    size_t at = match.find('@');
    if (at != std::string_view::npos) {
      if (!parse_prefix(match.substr(at + 1), r.prefix, r.prefix_len)) {
        return fail("bad prefix '" + std::string(match.substr(at + 1)) + "'");
      }
      r.has_prefix = true;
      match = match.substr(0, at);
    }
    size_t colon = match.find(':');
    if (!parse_proto(match.substr(0, colon), r.proto)) {
      return fail("bad protocol '" + std::string(match.substr(0, colon)) +
                  "' (tcp, udp, icmp, icmpv6, ip or 0-255)");
    }
    if (colon != std::string_view::npos) {
      std::string_view ports = match.substr(colon + 1);
      size_t dash = ports.find('-');
      unsigned lo = 0, hi = 0;
      if (!parse_num(ports.substr(0, dash), 65535, lo)) return fail("bad port");
      hi = lo;
      if (dash != std::string_view::npos && !parse_num(ports.substr(dash + 1), 65535, hi)) {
        return fail("bad port range");
      }
      if (hi < lo) return fail("port range upside down");
      r.port_lo = static_cast<uint16_t>(lo);
      r.port_hi = static_cast<uint16_t>(hi);
    }
    rules.push_back(r);
  }
  rules_ = std::move(rules);
  default_ = default_action;
  return true;
}

PolicyAction PolicyTable::lookup(const FlowKey& k) const {
  for (const auto& r : rules_) {
    if (r.proto != 256 && r.proto != k.proto) continue;
    bool port_ok = (k.port_lo >= r.port_lo && k.port_lo <= r.port_hi) ||
                   (k.port_hi >= r.port_lo && k.port_hi <= r.port_hi);
    if (!port_ok) continue;
    if (r.has_prefix && !in_prefix(k.addr_lo, r.prefix, r.prefix_len) &&
        !in_prefix(k.addr_hi, r.prefix, r.prefix_len)) {
      continue;
    }
    return r.action;
  }
  return default_;
}

}  // namespace lockstep
