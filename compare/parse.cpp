// Frame parser: Ethernet (+ up to two VLAN tags), IPv4 / IPv6 (+ extension headers),
// TCP / UDP / ICMP / ICMPv6. Straight-line decoding from network byte order; every
// read is checked against the frame length (or the end of the IP datagram) first.
#include "compare/parse.h"

#include <cstring>

namespace lockstep {

namespace {

constexpr uint16_t kEthHeaderLen = 14;
constexpr uint16_t kEtherIpv4 = 0x0800;
constexpr uint16_t kEtherIpv6 = 0x86dd;
constexpr uint16_t kEtherVlan = 0x8100;     // 802.1Q
constexpr uint16_t kEtherQinq = 0x88a8;     // 802.1ad
constexpr uint16_t kEtherQinqOld = 0x9100;  // pre-standard QinQ

constexpr uint32_t kIpv4MinHeader = 20;
constexpr uint32_t kIpv6Header = 40;
constexpr uint32_t kTcpMinHeader = 20;
constexpr uint32_t kUdpHeader = 8;
constexpr uint32_t kIcmpHeader = 8;

// IPv6 extension headers walked before the upper-layer header.
constexpr uint8_t kIp6HopByHop = 0;
constexpr uint8_t kIp6Routing = 43;
constexpr uint8_t kIp6Fragment = 44;
constexpr uint8_t kIp6Ah = 51;
constexpr uint8_t kIp6DestOpts = 60;
constexpr unsigned kMaxIp6ExtHeaders = 8;

// TCP option kinds.
constexpr uint8_t kOptEol = 0;
constexpr uint8_t kOptNop = 1;
constexpr uint8_t kOptMss = 2;
constexpr uint8_t kOptWscale = 3;
constexpr uint8_t kOptSackPerm = 4;
constexpr uint8_t kOptSack = 5;
constexpr uint8_t kOptTimestamp = 8;
constexpr uint8_t kMaxWscale = 14;  // RFC 7323 §2.3: larger shifts are taken as 14

constexpr bool is_vlan_tpid(uint16_t t) {
  return t == kEtherVlan || t == kEtherQinq || t == kEtherQinqOld;
}

inline ParseStatus done(ParsedFrame& out, ParseStatus s) {
  out.status = s;
  return s;
}

// ::ffff:a.b.c.d from the four address bytes at p, written in place (the parser's per
// frame cost: no temporary, no byte-by-byte copy).
inline void load_v4_mapped(IpAddr& a, const uint8_t* p) {
  static constexpr uint8_t kPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  std::memcpy(a.b.data(), kPrefix, sizeof kPrefix);
  std::memcpy(a.b.data() + 12, p, 4);
}

inline IpAddr load_v6(const uint8_t* p) {
  IpAddr a;
  for (unsigned i = 0; i < 16; ++i) a.b[i] = p[i];
  return a;
}

// TCP options between [p, end). Fills wscale, SACK and timestamp fields.
ParseStatus parse_tcp_options(const uint8_t* frame, uint32_t begin, uint32_t end,
                              ParsedFrame& out) {
  uint32_t i = begin;
  while (i < end) {
    const uint8_t kind = frame[i];
    if (kind == kOptEol) break;
    if (kind == kOptNop) {
      ++i;
      continue;
    }
    if (i + 2 > end) return ParseStatus::bad_tcp_option;
    const uint8_t olen = frame[i + 1];
    if (olen < 2 || i + olen > end) return ParseStatus::bad_tcp_option;
    switch (kind) {
      case kOptMss:
        if (olen != 4) return ParseStatus::bad_tcp_option;
        break;
      case kOptWscale: {
        if (olen != 3) return ParseStatus::bad_tcp_option;
        const uint8_t shift = frame[i + 2];
        out.wscale = shift > kMaxWscale ? kMaxWscale : shift;
        break;
      }
      case kOptSackPerm:
        if (olen != 2) return ParseStatus::bad_tcp_option;
        out.sack_permitted = true;
        break;
      case kOptSack: {
        const uint32_t blocks = (olen - 2u) / 8u;
        if ((olen - 2u) % 8u != 0 || blocks == 0 || blocks > kMaxSackBlocks) {
          return ParseStatus::bad_tcp_option;
        }
        out.sack_count = static_cast<uint8_t>(blocks);
        for (uint32_t k = 0; k < blocks; ++k) {
          out.sack_off[k] = static_cast<uint16_t>(i + 2 + 8 * k);
        }
        break;
      }
      case kOptTimestamp:
        if (olen != 10) return ParseStatus::bad_tcp_option;
        out.has_timestamp = true;
        out.ts_off = static_cast<uint16_t>(i + 2);
        out.tsval = load_be32(frame + i + 2);
        out.tsecr = load_be32(frame + i + 6);
        break;
      default:
        break;  // unknown option: skipped by its length
    }
    i += olen;
  }
  return ParseStatus::ok;
}

// L4 header at out.l4_off, datagram ends at out.l3_end. `first_fragment`: the datagram
// continues in later fragments, so lengths refer to what is present here and a header
// that does not fit is not an error (it is simply not parsed).
ParseStatus parse_l4(const uint8_t* frame, ParsedFrame& out, bool first_fragment) {
  const uint32_t off = out.l4_off;
  const uint32_t end = out.l3_end;
  const uint32_t avail = end - off;
  const uint8_t* p = frame + off;

  switch (out.l4_proto) {
    case kProtoTcp: {
      if (avail < kTcpMinHeader) {
        return first_fragment ? ParseStatus::ok : ParseStatus::truncated_l4;
      }
      const uint32_t doff = (uint32_t{p[12]} >> 4) * 4;
      if (doff < kTcpMinHeader) return ParseStatus::bad_tcp_offset;
      if (doff > avail) return first_fragment ? ParseStatus::ok : ParseStatus::bad_tcp_offset;
      read_tcp_header(p, off, out);
      if (doff > kTcpMinHeader) {
        const ParseStatus s = parse_tcp_options(frame, off + kTcpMinHeader, off + doff, out);
        if (s != ParseStatus::ok) return s;
      }
      out.payload_off = static_cast<uint16_t>(off + doff);
      out.payload_len = end - (off + doff);
      out.has_l4 = true;
      return ParseStatus::ok;
    }
    case kProtoUdp: {
      if (avail < kUdpHeader) {
        return first_fragment ? ParseStatus::ok : ParseStatus::truncated_l4;
      }
      const uint32_t ulen = load_be16(p + 4);
      if (ulen < kUdpHeader) return ParseStatus::bad_udp_len;
      // The UDP length may be shorter than the IP payload (trailing bytes are not part of
      // the datagram), never longer; in a first fragment it covers the whole datagram.
      if (!first_fragment && ulen > avail) return ParseStatus::bad_udp_len;
      out.sport = load_be16(p);
      out.dport = load_be16(p + 2);
      out.l4_checksum_off = static_cast<uint16_t>(off + 6);
      out.payload_off = static_cast<uint16_t>(off + kUdpHeader);
      out.payload_len = (ulen < avail ? ulen : avail) - kUdpHeader;
      out.has_l4 = true;
      return ParseStatus::ok;
    }
    case kProtoIcmp:
    case kProtoIcmpv6: {
      if (avail < kIcmpHeader) {
        return first_fragment ? ParseStatus::ok : ParseStatus::truncated_l4;
      }
      out.icmp_type = p[0];
      out.icmp_code = p[1];
      out.l4_checksum_off = static_cast<uint16_t>(off + 2);
      const bool echo = out.l4_proto == kProtoIcmp
                            ? (out.icmp_type == 8 || out.icmp_type == 0)
                            : (out.icmp_type == 128 || out.icmp_type == 129);
      if (echo) {
        out.sport = load_be16(p + 4);
        out.dport = out.sport;
      }
      out.payload_off = static_cast<uint16_t>(off + kIcmpHeader);
      out.payload_len = avail - kIcmpHeader;
      out.has_l4 = true;
      return ParseStatus::ok;
    }
    default:
      out.payload_off = static_cast<uint16_t>(off);
      out.payload_len = avail;
      return ParseStatus::ok;
  }
}

// Common tail of both IP versions once l4_off / l3_end / fragment fields are set.
ParseStatus finish_ip(const uint8_t* frame, ParsedFrame& out) {
  if (out.is_fragment) {
    out.frag_data_len = static_cast<uint16_t>(out.l3_end - out.l4_off);
    if (out.frag_offset != 0) return done(out, ParseStatus::ok);  // data only, no L4
    return done(out, parse_l4(frame, out, true));
  }
  return done(out, parse_l4(frame, out, false));
}

ParseStatus parse_ipv4(const uint8_t* frame, uint32_t len, ParsedFrame& out) {
  const uint32_t off = out.l3_off;
  if (len - off < kIpv4MinHeader) return done(out, ParseStatus::truncated_l3);
  const uint8_t* p = frame + off;
  if ((p[0] >> 4) != 4) return done(out, ParseStatus::bad_ip_version);
  const uint32_t ihl = uint32_t{p[0] & 0x0fu} * 4;
  if (ihl < kIpv4MinHeader || ihl > len - off) return done(out, ParseStatus::bad_ip_header_len);

  out.l3 = L3Kind::ipv4;
  out.ttl = p[8];
  out.l4_proto = p[9];
  out.ip4_checksum_off = static_cast<uint16_t>(off + 10);
  load_v4_mapped(out.src, p + 12);
  load_v4_mapped(out.dst, p + 16);

  const uint32_t total = load_be16(p + 2);
  if (total < ihl || total > len - off) return done(out, ParseStatus::bad_ip_total_len);
  out.l3_end = off + total;  // anything after is L2 padding
  out.l4_off = static_cast<uint16_t>(off + ihl);

  const uint16_t frag = load_be16(p + 6);
  out.more_fragments = (frag & 0x2000) != 0;
  out.frag_offset = uint32_t{frag & 0x1fffu} * 8;
  if (out.more_fragments || out.frag_offset != 0) {
    out.is_fragment = true;
    out.frag_id = load_be16(p + 4);
  }
  return finish_ip(frame, out);
}

ParseStatus parse_ipv6(const uint8_t* frame, uint32_t len, ParsedFrame& out) {
  const uint32_t off = out.l3_off;
  if (len - off < kIpv6Header) return done(out, ParseStatus::truncated_l3);
  const uint8_t* p = frame + off;
  if ((p[0] >> 4) != 6) return done(out, ParseStatus::bad_ip_version);

  out.l3 = L3Kind::ipv6;
  out.ttl = p[7];
  out.src = load_v6(p + 8);
  out.dst = load_v6(p + 24);

  const uint32_t plen = load_be16(p + 4);
  // Zero is a jumbogram (RFC 2675), which cannot appear on an Ethernet link.
  if (plen == 0 || plen > len - off - kIpv6Header) {
    return done(out, ParseStatus::bad_ip_total_len);
  }
  const uint32_t end = off + kIpv6Header + plen;
  out.l3_end = end;

  uint8_t nh = p[6];
  uint32_t cur = off + kIpv6Header;
  for (unsigned n = 0;; ++n) {
    const bool ext = nh == kIp6HopByHop || nh == kIp6Routing || nh == kIp6DestOpts ||
                     nh == kIp6Fragment || nh == kIp6Ah;
    if (!ext) break;
    if (n == kMaxIp6ExtHeaders) return done(out, ParseStatus::bad_ip_ext_header);
    if (end - cur < 8) return done(out, ParseStatus::bad_ip_ext_header);
    const uint8_t* h = frame + cur;
    if (nh == kIp6Fragment) {
      const uint16_t fo = load_be16(h + 2);
      const uint32_t frag_offset = fo & 0xfff8u;
      const bool more = (fo & 1u) != 0;
      nh = h[0];
      cur += 8;
      // Offset 0 without M is an atomic fragment (RFC 6946): a whole datagram.
      if (more || frag_offset != 0) {
        out.is_fragment = true;
        out.more_fragments = more;
        out.frag_offset = frag_offset;
        out.frag_id = load_be32(h + 4);
        // What follows is the fragmentable part: fragment data for reassembly. The chain
        // stops here in every fragment, so l4_proto (the fragment header's next header)
        // and the data start agree across the fragments of one datagram; a first
        // fragment whose next header is TCP/UDP/ICMP still gets its L4 fields.
        break;
      }
      continue;
    }
    const uint32_t hlen = nh == kIp6Ah ? (uint32_t{h[1]} + 2) * 4 : (uint32_t{h[1]} + 1) * 8;
    if (hlen > end - cur) return done(out, ParseStatus::bad_ip_ext_header);
    nh = h[0];
    cur += hlen;
  }
  out.l4_proto = nh;
  out.l4_off = static_cast<uint16_t>(cur);
  return finish_ip(frame, out);
}

}  // namespace

bool IpAddr::is_v4() const {
  for (unsigned i = 0; i < 10; ++i) {
    if (b[i] != 0) return false;
  }
  return b[10] == 0xff && b[11] == 0xff;
}

uint32_t IpAddr::v4_host_order() const { return load_be32(b.data() + 12); }

std::string_view to_string(ParseStatus s) {
  switch (s) {
#define LOCKSTEP_X(name, help) \
  case ParseStatus::name:      \
    return #name;
    LOCKSTEP_PARSE_STATUSES(LOCKSTEP_X)
#undef LOCKSTEP_X
    case ParseStatus::count_:
      break;
  }
  return "unknown";
}

ParseStatus parse_frame(const uint8_t* data, uint32_t len, ParsedFrame& out) {
  out = kFreshFrame;
  return parse_fresh_frame(data, len, out);
}


ParseStatus parse_tcp_options_into(const uint8_t* frame, uint32_t begin, uint32_t end,
                                   ParsedFrame& out) {
  return parse_tcp_options(frame, begin, end, out);
}

ParseStatus parse_fresh_frame(const uint8_t* data, uint32_t len, ParsedFrame& out) {
  ParseStatus fast;
  if (parse_fresh_ipv4_tcp(data, len, out, fast)) return fast;
  return parse_fresh_frame_general(data, len, out);
}

ParseStatus parse_fresh_frame_general(const uint8_t* data, uint32_t len, ParsedFrame& out) {
  if (len < kEthHeaderLen) return done(out, ParseStatus::truncated_l2);

  uint32_t off = kEthHeaderLen;
  uint16_t type = load_be16(data + 12);
  while (is_vlan_tpid(type)) {
    if (out.vlan_count == kMaxVlanTags) break;  // a third tag: left as an L2 type
    if (len - off < 4) return done(out, ParseStatus::truncated_l2);
    out.vlan_tci[out.vlan_count++] = load_be16(data + off);
    type = load_be16(data + off + 2);
    off += 4;
  }
  out.ethertype = type;
  out.l3_off = static_cast<uint16_t>(off);

  if (type == kEtherIpv4) return parse_ipv4(data, len, out);
  if (type == kEtherIpv6) return parse_ipv6(data, len, out);
  return done(out, ParseStatus::non_ip);
}

}  // namespace lockstep
