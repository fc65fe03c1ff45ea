// Frame parsing from bytes: Ethernet, 802.1Q / 802.1ad (QinQ), IPv4 with options,
// IPv6 with extension headers and the fragment header, TCP with options, UDP, ICMP,
// ICMPv6. Every field is decoded explicitly from network byte order; nothing is cast
// onto the buffer. A frame the parser cannot make sense of gets a ParseStatus other
// than `ok`, which the engine counts under that name; the parser never reads past
// `len` and never crashes.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "common/byte_order.h"

namespace lockstep {

// Statuses, declared once: name used by counters, ctrl and docs.
#define LOCKSTEP_PARSE_STATUSES(X)                                          \
  X(ok, "parsed")                                                            \
  X(truncated_l2, "shorter than its Ethernet/VLAN header")                  \
  X(non_ip, "not IPv4 or IPv6 (ARP, LLDP, ...): parsed as L2 only")          \
  X(truncated_l3, "shorter than its IP header")                             \
  X(bad_ip_version, "IP version field does not match the ethertype")        \
  X(bad_ip_header_len, "IPv4 IHL below 5 or past the frame")                \
  X(bad_ip_total_len, "IP length field below the header or past the frame") \
  X(bad_ip_ext_header, "IPv6 extension header chain malformed or too long") \
  X(truncated_l4, "shorter than its TCP/UDP/ICMP header")                   \
  X(bad_tcp_offset, "TCP data offset below 5 or past the segment")          \
  X(bad_tcp_option, "TCP option length malformed")                          \
  X(bad_udp_len, "UDP length field inconsistent with the IP length")

enum class ParseStatus : uint8_t {
#define LOCKSTEP_X(name, help) name,
  LOCKSTEP_PARSE_STATUSES(LOCKSTEP_X)
#undef LOCKSTEP_X
      count_
};
inline constexpr unsigned kParseStatusCount = static_cast<unsigned>(ParseStatus::count_);
std::string_view to_string(ParseStatus s);

enum class L3Kind : uint8_t { none, ipv4, ipv6 };

inline constexpr uint8_t kProtoIcmp = 1;
inline constexpr uint8_t kProtoTcp = 6;
inline constexpr uint8_t kProtoUdp = 17;
inline constexpr uint8_t kProtoIcmpv6 = 58;

inline constexpr uint8_t kTcpFin = 0x01;
inline constexpr uint8_t kTcpSyn = 0x02;
inline constexpr uint8_t kTcpRst = 0x04;
inline constexpr uint8_t kTcpPsh = 0x08;
inline constexpr uint8_t kTcpAck = 0x10;

inline constexpr unsigned kMaxVlanTags = 2;
inline constexpr unsigned kMaxSackBlocks = 4;

// An IP address in 16 bytes; IPv4 is stored as an IPv4-mapped IPv6 address
// (::ffff:a.b.c.d) so that keys and prefixes have one shape for both families.
struct IpAddr {
  std::array<uint8_t, 16> b{};

  static IpAddr v4(uint32_t host_order);  // ::ffff:a.b.c.d
  bool is_v4() const;
  uint32_t v4_host_order() const;  // meaningful only when is_v4()
  friend bool operator==(const IpAddr&, const IpAddr&) = default;
  friend auto operator<=>(const IpAddr&, const IpAddr&) = default;
};

// Offsets are from the start of the frame. Fields of layers that were not reached are
// left at their zero value; `status` tells how far parsing got.
struct ParsedFrame {
  ParseStatus status = ParseStatus::ok;

  // L2
  uint16_t ethertype = 0;  // innermost, after any VLAN tags
  uint8_t vlan_count = 0;
  std::array<uint16_t, kMaxVlanTags> vlan_tci{};  // outer first
  uint16_t l3_off = 0;

  // L3
  L3Kind l3 = L3Kind::none;
  uint8_t l4_proto = 0;   // final protocol after IPv6 extension headers
  uint8_t ttl = 0;        // hop limit for IPv6
  uint16_t l4_off = 0;    // start of the L4 header (or of fragment data)
  uint32_t l3_end = 0;    // end of the IP datagram within the frame (excludes L2 padding)
  IpAddr src, dst;
  uint16_t ip4_checksum_off = 0;  // IPv4 header checksum offset, 0 for IPv6

  // Fragmentation. A fragment that is not the first has no L4 header: `l4_off` is where
  // its data starts and the L4 fields below stay zero.
  bool is_fragment = false;
  bool more_fragments = false;
  uint32_t frag_id = 0;        // IPv4 ID (16 bits) or IPv6 identification (32 bits)
  uint32_t frag_offset = 0;    // in bytes
  uint16_t frag_data_len = 0;  // bytes of fragment data after l4_off

  // L4 (TCP, UDP, ICMP, ICMPv6)
  bool has_l4 = false;
  uint16_t sport = 0, dport = 0;  // ICMP echo: both set to the identifier
  uint16_t l4_checksum_off = 0;
  uint16_t payload_off = 0;   // TCP/UDP payload; ICMP: start of the message body
  uint32_t payload_len = 0;   // excludes L2 padding

  // TCP only
  uint32_t seq = 0, ack = 0;
  uint8_t tcp_flags = 0;
  uint16_t window = 0;
  uint8_t wscale = 0xff;       // 0xff: no window-scale option
  uint8_t sack_count = 0;
  std::array<uint16_t, kMaxSackBlocks> sack_off{};  // offset of each 8-byte SACK block
  bool has_timestamp = false;
  bool sack_permitted = false;  // SACK-permitted option (SYN, SYN/ACK)
  uint16_t ts_off = 0;  // offset of TSval (TSecr follows at +4)
  uint32_t tsval = 0, tsecr = 0;

  // ICMP / ICMPv6 only
  uint8_t icmp_type = 0, icmp_code = 0;

  bool is_ip() const { return l3 != L3Kind::none; }
  bool is_tcp() const { return has_l4 && l4_proto == kProtoTcp; }
  bool is_udp() const { return has_l4 && l4_proto == kProtoUdp; }
};

// Parse `len` bytes of an Ethernet frame. Never reads outside [data, data + len).
ParseStatus parse_frame(const uint8_t* data, uint32_t len, ParsedFrame& out);

// The same into a frame still in its default state (as constructed): nothing is reset
// first, so a frame is initialised once (the engine's per-frame path). Given a frame
// that was written before, fields of layers not reached this time keep old values.
ParseStatus parse_fresh_frame(const uint8_t* data, uint32_t len, ParsedFrame& fresh);

// parse_fresh_frame's parts: the straight-through path for the common frame (inline,
// below) and the general one; the TCP options parser both use.
ParseStatus parse_fresh_frame_general(const uint8_t* data, uint32_t len, ParsedFrame& fresh);
ParseStatus parse_tcp_options_into(const uint8_t* frame, uint32_t begin, uint32_t end,
                                   ParsedFrame& out);

// The fixed TCP header's fields, at `t` (frame offset `l4`): both parse paths'.
inline void read_tcp_header(const uint8_t* t, uint32_t l4, ParsedFrame& out) {
  out.sport = load_be16(t);
  out.dport = load_be16(t + 2);
  out.seq = load_be32(t + 4);
  out.ack = load_be32(t + 8);
  out.tcp_flags = t[13];
  out.window = load_be16(t + 14);
  out.l4_checksum_off = static_cast<uint16_t>(l4 + 16);
}

// The common frame, decoded straight through: untagged IPv4 without options, not a
// fragment, TCP whose header fits the datagram. Writes what the general path below
// would write for it, in one pass (the fields it leaves are already at their defaults in
// a fresh frame); returns false, having written nothing, for any other frame.
inline bool parse_fresh_ipv4_tcp(const uint8_t* data, uint32_t len, ParsedFrame& out,
                                 ParseStatus& status) {
  constexpr uint32_t kOff = 14u;
  if (len < kOff + 20u + 20u) return false;
  const uint8_t* p = data + kOff;
  // Ethertype, version/IHL, fragment bits and protocol, each one compare.
  if (load_be16(data + 12) != 0x0800u || p[0] != 0x45 || p[9] != kProtoTcp ||
      (load_be16(p + 6) & 0x3fffu) != 0) {
    return false;
  }
  const uint32_t total = load_be16(p + 2);
  if (total < 20u + 20u || total > len - kOff) return false;
  const uint8_t* t = p + 20u;
  const uint32_t doff = (uint32_t{t[12]} >> 4) * 4;
  if (doff < 20u || doff > total - 20u) return false;

  constexpr uint32_t l4 = kOff + 20u;
  out.ethertype = 0x0800u;
  out.l3_off = static_cast<uint16_t>(kOff);
  out.l3 = L3Kind::ipv4;
  out.ttl = p[8];
  out.l4_proto = kProtoTcp;
  out.ip4_checksum_off = static_cast<uint16_t>(kOff + 10);
  // ::ffff:a.b.c.d, written in place.
  static constexpr uint8_t kPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  std::memcpy(out.src.b.data(), kPrefix, sizeof kPrefix);
  std::memcpy(out.src.b.data() + 12, p + 12, 4);
  std::memcpy(out.dst.b.data(), kPrefix, sizeof kPrefix);
  std::memcpy(out.dst.b.data() + 12, p + 16, 4);
  const uint32_t end = kOff + total;
  out.l3_end = end;
  out.l4_off = static_cast<uint16_t>(l4);
  read_tcp_header(t, l4, out);
  if (doff > 20u) {
    const ParseStatus s = parse_tcp_options_into(data, l4 + 20u, l4 + doff, out);
    if (s != ParseStatus::ok) {
      status = out.status = s;
      return true;
    }
  }
  out.payload_off = static_cast<uint16_t>(l4 + doff);
  out.payload_len = end - (l4 + doff);
  out.has_l4 = true;
  status = out.status = ParseStatus::ok;
  return true;
}

// parse_fresh_frame with the common frame's path inline (the engine's per-frame path).
inline ParseStatus parse_fresh_frame_inline(const uint8_t* data, uint32_t len,
                                            ParsedFrame& fresh) {
  ParseStatus fast;
  if (parse_fresh_ipv4_tcp(data, len, fresh, fast)) return fast;
  return parse_fresh_frame_general(data, len, fresh);
}

// A frame in its default state, to copy from: defined out of line, so that the copy is
// a handful of vector moves. `ParsedFrame f;` on a per-frame path became a `rep stos`,
// whose start-up cost was half of Engine::push's samples (bench_qemu, 64 B payloads).
extern const ParsedFrame kFreshFrame;

inline IpAddr IpAddr::v4(uint32_t host_order) {
  IpAddr a;
  a.b[10] = 0xff;
  a.b[11] = 0xff;
  store_be32(a.b.data() + 12, host_order);
  return a;
}

}  // namespace lockstep
