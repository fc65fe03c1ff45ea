#include "tests/support/frame_builder.h"

#include <algorithm>
#include <stdexcept>

namespace lockstep::test {
namespace {

constexpr uint16_t kEthIpv4 = 0x0800;
constexpr uint16_t kEthIpv6 = 0x86dd;
constexpr uint16_t kTpidQ = 0x8100;
constexpr uint16_t kTpidAd = 0x88a8;
constexpr uint8_t kIp6HopByHop = 0;
constexpr uint8_t kIp6Routing = 43;
constexpr uint8_t kIp6Fragment = 44;
constexpr uint8_t kIp6DestOpts = 60;

void put16(Bytes& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v));
}
void put32(Bytes& b, uint32_t v) {
  put16(b, static_cast<uint16_t>(v >> 16));
  put16(b, static_cast<uint16_t>(v));
}

// Ones' complement sum of 16-bit big-endian words (odd byte padded with zero).
uint32_t sum16(const uint8_t* p, size_t n, uint32_t acc = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) acc += static_cast<uint32_t>((p[i] << 8) | p[i + 1]);
  if (n & 1) acc += static_cast<uint32_t>(p[n - 1] << 8);
  return acc;
}
uint16_t fold(uint32_t acc) {
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  return static_cast<uint16_t>(~acc & 0xffff);
}

uint32_t pseudo_sum(bool v6, const uint8_t* src, const uint8_t* dst, uint8_t proto,
                    uint32_t l4_len) {
  uint32_t acc = 0;
  if (v6) {
    acc = sum16(src, 16, acc);
    acc = sum16(dst, 16, acc);
    acc += l4_len >> 16;
    acc += l4_len & 0xffff;
    acc += proto;
  } else {
    acc = sum16(src, 4, acc);
    acc = sum16(dst, 4, acc);
    acc += proto;
    acc += l4_len;
  }
  return acc;
}

Bytes tcp_options(const TcpOptions& o) {
  Bytes b;
  if (o.mss) {
    b.push_back(2);
    b.push_back(4);
    put16(b, *o.mss);
  }
  if (o.sack_permitted) {
    b.push_back(1);
    b.push_back(1);
    b.push_back(4);
    b.push_back(2);
  }
  if (o.wscale) {
    b.push_back(1);
    b.push_back(3);
    b.push_back(3);
    b.push_back(*o.wscale);
  }
  if (o.timestamp) {
    b.push_back(1);
    b.push_back(1);
    b.push_back(8);
    b.push_back(10);
    put32(b, o.timestamp->first);
    put32(b, o.timestamp->second);
  }
  if (!o.sack.empty()) {
    b.push_back(1);
    b.push_back(1);
    b.push_back(5);
    b.push_back(static_cast<uint8_t>(2 + 8 * o.sack.size()));
    for (const auto& [l, r] : o.sack) {
      put32(b, l);
      put32(b, r);
    }
  }
  while (b.size() % 4) b.push_back(0);  // EOL padding
  if (b.size() > 40) throw std::invalid_argument("TCP options exceed 40 bytes");
  return b;
}

// L4 header + payload, checksum field zero.
Bytes l4_bytes(const FrameSpec& s, bool v6) {
  Bytes b;
  switch (s.proto) {
    case kProtoTcp: {
      Bytes opt = tcp_options(s.tcp);
      put16(b, s.sport);
      put16(b, s.dport);
      put32(b, s.seq);
      put32(b, s.ack);
      b.push_back(static_cast<uint8_t>(((20 + opt.size()) / 4) << 4));
      b.push_back(s.flags);
      put16(b, s.window);
      put16(b, 0);  // checksum
      put16(b, 0);  // urgent
      b.insert(b.end(), opt.begin(), opt.end());
      break;
    }
    case kProtoUdp:
      put16(b, s.sport);
      put16(b, s.dport);
      put16(b, static_cast<uint16_t>(8 + s.payload.size()));
      put16(b, 0);
      break;
    case kProtoIcmp:
    case kProtoIcmpv6:
      b.push_back(s.icmp_type);
      b.push_back(s.icmp_code);
      put16(b, 0);
      put16(b, s.icmp_id);
      put16(b, s.icmp_seq);
      break;
    default:
      break;  // other protocols: payload only
  }
  (void)v6;
  b.insert(b.end(), s.payload.begin(), s.payload.end());
  return b;
}

size_t l4_checksum_pos(uint8_t proto) {
  switch (proto) {
    case kProtoTcp: return 16;
    case kProtoUdp: return 6;
    case kProtoIcmp:
    case kProtoIcmpv6: return 2;
    default: return SIZE_MAX;
  }
}

void put_l2(Bytes& f, const Mac& dst, const Mac& src, const std::vector<uint16_t>& vlans,
            uint16_t ethertype) {
  if (vlans.size() > 2) throw std::invalid_argument("at most 2 VLAN tags");
  f.insert(f.end(), dst.begin(), dst.end());
  f.insert(f.end(), src.begin(), src.end());
  for (size_t i = 0; i < vlans.size(); ++i) {
    put16(f, (vlans.size() == 2 && i == 0) ? kTpidAd : kTpidQ);
    put16(f, vlans[i]);
  }
  put16(f, ethertype);
}

void fix_ip4_checksum(uint8_t* ip) {
  size_t ihl = static_cast<size_t>(ip[0] & 0x0f) * 4;
  store_be16(ip + 10, 0);
  store_be16(ip + 10, fold(sum16(ip, ihl)));
}

// Finds L3: returns offset of the IP header and sets ethertype; SIZE_MAX when short.
size_t l3_offset(const uint8_t* f, size_t len, uint16_t& ethertype) {
  size_t off = 12;
  for (int i = 0; i < 3; ++i) {
    if (off + 2 > len) return SIZE_MAX;
    uint16_t t = load_be16(f + off);
    if (t == kTpidQ || t == kTpidAd) {
      off += 4;
      continue;
    }
    ethertype = t;
    return off + 2;
  }
  return SIZE_MAX;
}

}  // namespace

IpAddr ip4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  IpAddr r;
  r.b[10] = 0xff;
  r.b[11] = 0xff;
  r.b[12] = a;
  r.b[13] = b;
  r.b[14] = c;
  r.b[15] = d;
  return r;
}

IpAddr ip4_host(uint32_t h) {
  return ip4(static_cast<uint8_t>(h >> 24), static_cast<uint8_t>(h >> 16),
             static_cast<uint8_t>(h >> 8), static_cast<uint8_t>(h));
}

IpAddr ip6_doc(uint32_t low) {
  IpAddr r;
  r.b[0] = 0x20;
  r.b[1] = 0x01;
  r.b[2] = 0x0d;
  r.b[3] = 0xb8;
  store_be32(r.b.data() + 12, low);
  return r;
}

bool is_mapped_v4(const IpAddr& a) {
  for (int i = 0; i < 10; ++i)
    if (a.b[static_cast<size_t>(i)] != 0) return false;
  return a.b[10] == 0xff && a.b[11] == 0xff;
}

Bytes build_frame(const FrameSpec& s) {
  Bytes f;
  if (s.raw_ethertype) {
    put_l2(f, s.dst_mac, s.src_mac, s.vlans, *s.raw_ethertype);
    f.insert(f.end(), s.payload.begin(), s.payload.end());
    if (s.pad_to_min && f.size() < 60) f.resize(60, 0);
    return f;
  }
  bool v4 = is_mapped_v4(s.src);
  if (v4 != is_mapped_v4(s.dst)) throw std::invalid_argument("mixed address families");
  bool v6 = !v4;
  put_l2(f, s.dst_mac, s.src_mac, s.vlans, v6 ? kEthIpv6 : kEthIpv4);
  size_t l3 = f.size();
  Bytes l4 = l4_bytes(s, v6);
  size_t ck = l4_checksum_pos(s.proto);

  if (v4) {
    Bytes opt = s.ip_options;
    while (opt.size() % 4) opt.push_back(0);
    if (opt.size() > 40) throw std::invalid_argument("IPv4 options exceed 40 bytes");
    size_t ihl = 20 + opt.size();
    if (ihl + l4.size() > 65535) throw std::invalid_argument("IPv4 datagram over 65535 bytes");
    f.push_back(static_cast<uint8_t>(0x40 | (ihl / 4)));
    f.push_back(s.tos);
    put16(f, static_cast<uint16_t>(ihl + l4.size()));
    put16(f, s.ip_id);
    put16(f, s.dont_fragment ? 0x4000 : 0);
    f.push_back(s.ttl);
    f.push_back(s.proto);
    put16(f, 0);
    f.insert(f.end(), s.src.b.begin() + 12, s.src.b.end());
    f.insert(f.end(), s.dst.b.begin() + 12, s.dst.b.end());
    f.insert(f.end(), opt.begin(), opt.end());
    fix_ip4_checksum(f.data() + l3);
    if (ck != SIZE_MAX && s.proto != kProtoIcmpv6) {
      uint32_t acc = s.proto == kProtoIcmp
                         ? 0
                         : pseudo_sum(false, s.src.b.data() + 12, s.dst.b.data() + 12, s.proto,
                                      static_cast<uint32_t>(l4.size()));
      uint16_t c = fold(sum16(l4.data(), l4.size(), acc));
      if (s.proto == kProtoUdp && c == 0) c = 0xffff;
      store_be16(l4.data() + ck, c);
    }
  } else {
    size_t ext = s.ip6_hop_by_hop ? 8 : 0;
    if (ext + l4.size() > 65535) throw std::invalid_argument("IPv6 payload over 65535 bytes");
    put32(f, 0x60000000u | (static_cast<uint32_t>(s.tos) << 20));
    put16(f, static_cast<uint16_t>(ext + l4.size()));
    f.push_back(s.ip6_hop_by_hop ? kIp6HopByHop : s.proto);
    f.push_back(s.ttl);
    f.insert(f.end(), s.src.b.begin(), s.src.b.end());
    f.insert(f.end(), s.dst.b.begin(), s.dst.b.end());
    if (s.ip6_hop_by_hop) {
      // next header, length 0 (8 bytes), PadN option of 4 data bytes
      const uint8_t hbh[8] = {s.proto, 0, 1, 4, 0, 0, 0, 0};
      f.insert(f.end(), hbh, hbh + 8);
    }
    if (ck != SIZE_MAX && s.proto != kProtoIcmp) {
      uint32_t acc = pseudo_sum(true, s.src.b.data(), s.dst.b.data(), s.proto,
                                static_cast<uint32_t>(l4.size()));
      uint16_t c = fold(sum16(l4.data(), l4.size(), acc));
      if (s.proto == kProtoUdp && c == 0) c = 0xffff;
      store_be16(l4.data() + ck, c);
    }
  }
  f.insert(f.end(), l4.begin(), l4.end());
  if (s.pad_to_min && f.size() < 60) f.resize(60, 0);
  return f;
}

std::vector<Bytes> fragment_frame(const Bytes& frame, size_t max_fragment_data,
                                  uint32_t ipv6_ident) {
  uint16_t et = 0;
  size_t l3 = l3_offset(frame.data(), frame.size(), et);
  if (l3 == SIZE_MAX || (et != kEthIpv4 && et != kEthIpv6))
    throw std::invalid_argument("fragment_frame: not an IP frame");
  size_t chunk = max_fragment_data & ~size_t{7};
  if (chunk == 0) throw std::invalid_argument("fragment_frame: fragment size below 8");
  std::vector<Bytes> out;
  if (et == kEthIpv4) {
    const uint8_t* ip = frame.data() + l3;
    size_t ihl = static_cast<size_t>(ip[0] & 0x0f) * 4;
    size_t total = load_be16(ip + 2);
    size_t data_len = total - ihl;
    if (data_len <= chunk) return {frame};
    for (size_t off = 0; off < data_len; off += chunk) {
      size_t n = std::min(chunk, data_len - off);
      bool more = off + n < data_len;
      Bytes f(frame.begin(), frame.begin() + static_cast<std::ptrdiff_t>(l3 + ihl));
      const uint8_t* src = frame.data() + l3 + ihl + off;
      f.insert(f.end(), src, src + n);
      uint8_t* h = f.data() + l3;
      store_be16(h + 2, static_cast<uint16_t>(ihl + n));
      store_be16(h + 6, static_cast<uint16_t>((more ? 0x2000 : 0) | (off / 8)));
      fix_ip4_checksum(h);
      out.push_back(std::move(f));
    }
    return out;
  }
  // IPv6: the unfragmentable part is the base header plus a hop-by-hop header if any.
  const uint8_t* ip = frame.data() + l3;
  size_t payload_len = load_be16(ip + 4);
  size_t unfrag = 40;
  uint8_t next = ip[6];
  size_t next_pos = l3 + 6;  // where the "next header" byte preceding the fragmentable part is
  if (next == kIp6HopByHop) {
    next_pos = l3 + 40;
    next = frame[l3 + 40];
    unfrag += (static_cast<size_t>(frame[l3 + 41]) + 1) * 8;
  }
  size_t data_len = 40 + payload_len - unfrag;
  if (data_len <= chunk) return {frame};
  for (size_t off = 0; off < data_len; off += chunk) {
    size_t n = std::min(chunk, data_len - off);
    bool more = off + n < data_len;
    Bytes f(frame.begin(), frame.begin() + static_cast<std::ptrdiff_t>(l3 + unfrag));
    f[next_pos] = kIp6Fragment;
    f.push_back(next);
    f.push_back(0);
    put16(f, static_cast<uint16_t>(off | (more ? 1 : 0)));
    put32(f, ipv6_ident);
    const uint8_t* src = frame.data() + l3 + unfrag + off;
    f.insert(f.end(), src, src + n);
    store_be16(f.data() + l3 + 4, static_cast<uint16_t>(unfrag - 40 + 8 + n));
    out.push_back(std::move(f));
  }
  return out;
}

Decoded decode(const uint8_t* f, size_t len) {
  Decoded d;
  uint16_t et = 0;
  size_t l3 = l3_offset(f, len, et);
  if (l3 == SIZE_MAX) return d;
  d.l3_off = l3;
  size_t l4 = 0, end = 0;
  uint8_t proto = 0;
  if (et == kEthIpv4) {
    if (l3 + 20 > len) return d;
    size_t ihl = static_cast<size_t>(f[l3] & 0x0f) * 4;
    size_t total = load_be16(f + l3 + 2);
    if (ihl < 20 || l3 + total > len || total < ihl) return d;
    if ((load_be16(f + l3 + 6) & 0x3fff) != 0) return d;  // fragment
    l4 = l3 + ihl;
    end = l3 + total;
    proto = f[l3 + 9];
  } else if (et == kEthIpv6) {
    if (l3 + 40 > len) return d;
    d.ipv6 = true;
    end = l3 + 40 + load_be16(f + l3 + 4);
    if (end > len) return d;
    proto = f[l3 + 6];
    l4 = l3 + 40;
    while (proto == kIp6HopByHop || proto == kIp6Routing || proto == kIp6DestOpts) {
      if (l4 + 8 > end) return d;
      proto = f[l4];
      l4 += (static_cast<size_t>(f[l4 + 1]) + 1) * 8;
    }
    if (proto == kIp6Fragment) return d;
  } else {
    return d;
  }
  d.l4_off = l4;
  d.l3_end = end;
  d.proto = proto;
  if (proto == kProtoTcp) {
    if (l4 + 20 > end) return d;
    d.seq = load_be32(f + l4 + 4);
    d.ack = load_be32(f + l4 + 8);
    size_t doff = static_cast<size_t>(f[l4 + 12] >> 4) * 4;
    d.flags = f[l4 + 13];
    d.window = load_be16(f + l4 + 14);
    if (doff < 20 || l4 + doff > end) return d;
    for (size_t o = l4 + 20; o < l4 + doff;) {
      uint8_t kind = f[o];
      if (kind == 0) break;
      if (kind == 1) {
        ++o;
        continue;
      }
      if (o + 1 >= l4 + doff) return d;
      size_t olen = f[o + 1];
      if (olen < 2 || o + olen > l4 + doff) return d;
      if (kind == 8 && olen == 10) d.timestamp = {load_be32(f + o + 2), load_be32(f + o + 6)};
      if (kind == 5)
        for (size_t b = o + 2; b + 8 <= o + olen; b += 8)
          d.sack.emplace_back(load_be32(f + b), load_be32(f + b + 4));
      o += olen;
    }
    d.payload_off = l4 + doff;
  } else if (proto == kProtoUdp || proto == kProtoIcmp || proto == kProtoIcmpv6) {
    if (l4 + 8 > end) return d;
    d.payload_off = l4 + 8;
  } else {
    d.payload_off = l4;
  }
  d.payload_len = end - d.payload_off;
  d.ok = true;
  return d;
}

bool verify_l4_checksum(const uint8_t* f, size_t len) {
  Decoded d = decode(f, len);
  if (!d.ok) return false;
  if (!d.ipv6) {
    size_t ihl = static_cast<size_t>(f[d.l3_off] & 0x0f) * 4;
    if (fold(sum16(f + d.l3_off, ihl)) != 0) return false;
  }
  size_t l4_len = d.l3_end - d.l4_off;
  uint32_t acc = 0;
  if (d.proto == kProtoIcmp) {
    if (d.ipv6) return false;
  } else if (d.proto == kProtoTcp || d.proto == kProtoUdp || d.proto == kProtoIcmpv6) {
    if (d.ipv6)
      acc = pseudo_sum(true, f + d.l3_off + 8, f + d.l3_off + 24, d.proto,
                       static_cast<uint32_t>(l4_len));
    else
      acc = pseudo_sum(false, f + d.l3_off + 12, f + d.l3_off + 16, d.proto,
                       static_cast<uint32_t>(l4_len));
    if (d.proto == kProtoUdp && load_be16(f + d.l4_off + 6) == 0 && !d.ipv6) return true;
  } else {
    return true;  // no L4 checksum to check
  }
  return fold(sum16(f + d.l4_off, l4_len, acc)) == 0;
}

Bytes stream_bytes(uint64_t seed, uint64_t offset, size_t n) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) {
    uint64_t x = (offset + i) * 0x9e3779b97f4a7c15ull ^ seed * 0xbf58476d1ce4e5b9ull;
    x ^= x >> 29;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 32;
    b[i] = static_cast<uint8_t>(x);
  }
  return b;
}

// ---------------------------------------------------------------------------------------
// Conversation

Conversation::Conversation(const Params& p)
    : p_(p), client_ts_(p.client_ts), pvm_ts_(p.pvm_ts), svm_ts_(p.svm_ts) {}

void Conversation::add_ts_client(FrameSpec& s) {
  if (!p_.timestamps) return;
  s.tcp.timestamp = std::make_pair(client_ts_++, pvm_ts_ == p_.pvm_ts ? 0u : pvm_ts_ - 1);
}

void Conversation::add_ts_vm(Vm vm, FrameSpec& s) {
  if (!p_.timestamps) return;
  uint32_t& ts = vm == Vm::pvm ? pvm_ts_ : svm_ts_;
  s.tcp.timestamp = std::make_pair(ts++, client_ts_ == p_.client_ts ? 0u : client_ts_ - 1);
}

FrameSpec Conversation::client_spec(uint8_t flags, uint64_t client_off, uint64_t ack_off,
                                    std::span<const uint8_t> payload) {
  FrameSpec s;
  s.src_mac = {0x02, 0xc1, 0, 0, 0, 0x01};
  s.dst_mac = {0x02, 0x5e, 0, 0, 0, 0x01};
  s.vlans = p_.vlans;
  s.src = p_.client;
  s.dst = p_.server;
  s.sport = p_.client_port;
  s.dport = p_.server_port;
  s.seq = client_seq(client_off);
  s.ack = (flags & kTcpAck) ? vm_seq(Vm::pvm, ack_off) : 0;
  s.flags = flags;
  s.ip_id = ip_id_++;
  s.payload.assign(payload.begin(), payload.end());
  add_ts_client(s);
  return s;
}

FrameSpec Conversation::vm_spec(Vm vm, uint8_t flags, uint64_t off, uint64_t ack_off,
                                std::span<const uint8_t> payload) {
  FrameSpec s;
  s.src_mac = {0x02, 0x5e, 0, 0, 0, 0x01};
  s.dst_mac = {0x02, 0xc1, 0, 0, 0, 0x01};
  s.vlans = p_.vlans;
  s.src = p_.server;
  s.dst = p_.client;
  s.sport = p_.server_port;
  s.dport = p_.client_port;
  s.seq = vm_seq(vm, off);
  s.ack = (flags & kTcpAck) ? client_seq(ack_off) : 0;
  s.flags = flags;
  // The two VMs number IP IDs differently; the engine must not care.
  s.ip_id = static_cast<uint16_t>(vm == Vm::pvm ? ip_id_ : 0x8000u + ip_id_);
  ++ip_id_;
  s.ttl = vm == Vm::pvm ? 64 : 63;
  s.window = vm == Vm::pvm ? 64240 : 65160;
  s.payload.assign(payload.begin(), payload.end());
  add_ts_vm(vm, s);
  return s;
}

Bytes Conversation::client_syn() {
  FrameSpec s = client_spec(kTcpSyn, 0, 0);
  s.seq = p_.client_isn;
  s.tcp.mss = 1460;
  s.tcp.sack_permitted = true;
  s.tcp.wscale = 7;
  return build_frame(s);
}

Bytes Conversation::vm_synack(Vm vm) {
  FrameSpec s = vm_spec(vm, kTcpSyn | kTcpAck, 0, 0);
  s.seq = vm_isn(vm);
  s.tcp.mss = 1460;
  s.tcp.sack_permitted = true;
  s.tcp.wscale = 7;
  return build_frame(s);
}

Bytes Conversation::client_handshake_ack() { return build_frame(client_spec(kTcpAck, 0, 0)); }

Bytes Conversation::vm_syn(Vm vm) {
  FrameSpec s = vm_spec(vm, kTcpSyn, 0, 0);
  s.seq = vm_isn(vm);
  s.tcp.mss = 1460;
  s.tcp.sack_permitted = true;
  s.tcp.wscale = 7;
  return build_frame(s);
}

Bytes Conversation::client_synack() {
  FrameSpec s = client_spec(kTcpSyn | kTcpAck, 0, 0);
  s.seq = p_.client_isn;
  s.tcp.mss = 1460;
  s.tcp.sack_permitted = true;
  s.tcp.wscale = 7;
  return build_frame(s);
}

Bytes Conversation::vm_handshake_ack(Vm vm) { return build_frame(vm_spec(vm, kTcpAck, 0, 0)); }

Bytes Conversation::vm_data(Vm vm, uint64_t off, std::span<const uint8_t> payload) {
  return build_frame(vm_spec(vm, kTcpAck | kTcpPsh, off, 0, payload));
}

Bytes Conversation::vm_stream(Vm vm, uint64_t off, size_t n, uint64_t seed) {
  Bytes p = stream_bytes(seed, off, n);
  return vm_data(vm, off, p);
}

Bytes Conversation::vm_pure_ack(Vm vm, uint64_t off) {
  return build_frame(vm_spec(vm, kTcpAck, off, 0));
}

Bytes Conversation::vm_fin(Vm vm, uint64_t off) {
  return build_frame(vm_spec(vm, kTcpFin | kTcpAck, off, 0));
}

Bytes Conversation::vm_rst(Vm vm, uint64_t off) {
  return build_frame(vm_spec(vm, kTcpRst | kTcpAck, off, 0));
}

Bytes Conversation::client_data(uint64_t client_off, std::span<const uint8_t> payload,
                                uint64_t ack_off) {
  return build_frame(client_spec(kTcpAck | kTcpPsh, client_off, ack_off, payload));
}

Bytes Conversation::client_ack(uint64_t client_off, uint64_t ack_off,
                               const std::vector<std::pair<uint64_t, uint64_t>>& sack_offs) {
  FrameSpec s = client_spec(kTcpAck, client_off, ack_off);
  for (const auto& [l, r] : sack_offs) s.tcp.sack.emplace_back(vm_seq(Vm::pvm, l), vm_seq(Vm::pvm, r));
  return build_frame(s);
}

Bytes Conversation::client_fin(uint64_t client_off, uint64_t ack_off) {
  return build_frame(client_spec(kTcpFin | kTcpAck, client_off, ack_off));
}

}  // namespace lockstep::test
