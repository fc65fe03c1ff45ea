#include "dataplane/qos/sched/classifier.h"

namespace lockstep::sched {
namespace {

uint64_t word(const IpAddr& a, int half) {
  uint64_t w = 0;
  for (int i = 0; i < 8; ++i) w = (w << 8) | a.b[static_cast<size_t>(half * 8 + i)];
  return w;
}

uint64_t mask_bits(int n) {  // n leading ones in a 64-bit word, n in [0, 64]
  if (n <= 0) return 0;
  if (n >= 64) return ~uint64_t{0};
  return ~uint64_t{0} << (64 - n);
}

bool has_ports(uint8_t proto) { return proto == kProtoTcp || proto == kProtoUdp || proto == 132; }

}  // namespace

IpPrefix IpPrefix::make(const IpAddr& a, uint8_t n, bool is_v4) {
  IpPrefix p;
  p.v4 = is_v4;
  p.len = n;
  const int bits = is_v4 ? 96 + n : n;
  p.mask_hi = mask_bits(bits);
  p.mask_lo = mask_bits(bits - 64);
  p.hi = word(a, 0) & p.mask_hi;
  p.lo = word(a, 1) & p.mask_lo;
  return p;
}

bool IpPrefix::contains(const IpAddr& a, bool a_is_v4) const {
  if (a_is_v4 != v4) return false;
  return (word(a, 0) & mask_hi) == hi && (word(a, 1) & mask_lo) == lo;
}

IpAddr IpPrefix::network() const {
  IpAddr a;
  for (int i = 0; i < 8; ++i) {
    a.b[static_cast<size_t>(i)] = static_cast<uint8_t>(hi >> (56 - 8 * i));
    a.b[static_cast<size_t>(8 + i)] = static_cast<uint8_t>(lo >> (56 - 8 * i));
  }
  return a;
}

bool Match::matches(const FlowFields& f) const {
  if (fields == 0) return true;
  if ((fields & kRole) && f.role != role) return false;
  if ((fields & kGuest) && f.guest != guest) return false;
  const uint32_t ip_fields = kSrc | kDst | kSport | kDport | kPort | kProto | kDscp | kFamily;
  if (!(fields & ip_fields)) return true;
  if (!f.is_ip) return false;
  if ((fields & kFamily) && f.is_v4 == family_v6) return false;
  if ((fields & kProto) && f.proto != proto) return false;
  if ((fields & kDscp) && !(dscp_set & (uint64_t{1} << (f.dscp & 63)))) return false;
  if ((fields & kSrc) && !src.contains(f.src, f.is_v4)) return false;
  if ((fields & kDst) && !dst.contains(f.dst, f.is_v4)) return false;
  if (fields & (kSport | kDport | kPort)) {
    if (!f.has_ports) return false;
    if ((fields & kSport) && !sport.contains(f.sport)) return false;
    if ((fields & kDport) && !dport.contains(f.dport)) return false;
    if ((fields & kPort) && !port.contains(f.sport) && !port.contains(f.dport)) return false;
  }
  return true;
}

std::string Classifier::add(const Filter& f) {
  if (n_ >= kMaxFilters) return "filter table full (" + std::to_string(kMaxFilters) + ")";
  uint32_t at = n_;
  for (uint32_t i = 0; i < n_; ++i) {
    if (filters_[i].pref == f.pref) return "pref " + std::to_string(f.pref) + " already in use";
    if (filters_[i].pref > f.pref && at == n_) at = i;
  }
  for (uint32_t i = n_; i > at; --i) filters_[i] = filters_[i - 1];
  filters_[at] = f;
  ++n_;
  return {};
}

bool Classifier::remove(uint32_t pref) {
  for (uint32_t i = 0; i < n_; ++i)
    if (filters_[i].pref == pref) {
      for (uint32_t j = i + 1; j < n_; ++j) filters_[j - 1] = filters_[j];
      --n_;
      return true;
    }
  return false;
}

FlowFields Classifier::fields_of(const uint8_t* frame, uint32_t len, TrafficRole role, uint16_t guest) {
  FlowFields f;
  f.role = role;
  f.guest = guest;
  ParsedFrame p;
  const ParseStatus st = parse_frame(frame, len, p);
  switch (st) {  // the IP header itself must be sound for addresses and DSCP
    case ParseStatus::ok: case ParseStatus::truncated_l4: case ParseStatus::bad_tcp_offset:
    case ParseStatus::bad_tcp_option: case ParseStatus::bad_udp_len:
      break;
    default:
      return f;
  }
  if (!p.is_ip() || p.l3_off + 2u > len) return f;
  f.is_ip = true;
  f.is_v4 = p.l3 == L3Kind::ipv4;
  f.src = p.src;
  f.dst = p.dst;
  f.proto = p.l4_proto;
  const uint8_t* ip = frame + p.l3_off;
  f.dscp = f.is_v4 ? static_cast<uint8_t>(ip[1] >> 2)
                   : static_cast<uint8_t>(((ip[0] & 0x0f) << 2) | (ip[1] >> 6));
  if (p.has_l4 && has_ports(p.l4_proto)) {
    f.has_ports = true;
    f.sport = p.sport;
    f.dport = p.dport;
  }
  return f;
}

}  // namespace lockstep::sched
