// Parser tests on hand-built frames: every layer, every status, VLAN/QinQ, IPv4
// options, IPv6 extension headers and fragments, TCP options, truncation at every length.
#include <gtest/gtest.h>

#include <cstdint>
#include <initializer_list>
#include <vector>

#include "compare/parse.h"
#include "tests/support/frame_builder.h"

namespace lockstep {
namespace {

using Bytes = std::vector<uint8_t>;

// ---- a tiny local frame builder (fields in network byte order, no checksums) ----

void put16(Bytes& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v));
}
void put32(Bytes& b, uint32_t v) {
  put16(b, static_cast<uint16_t>(v >> 16));
  put16(b, static_cast<uint16_t>(v));
}
Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

struct Tag {
  uint16_t tpid;
  uint16_t tci;
};

Bytes eth(uint16_t type, std::initializer_list<Tag> tags = {}) {
  Bytes b = {0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02};
  for (const Tag& t : tags) {
    put16(b, t.tpid);
    put16(b, t.tci);
  }
  put16(b, type);
  return b;
}

struct V4 {
  uint8_t proto = kProtoTcp;
  uint32_t src = 0x0a000001, dst = 0x0a000002;
  uint8_t ttl = 64;
  uint16_t id = 0x1234;
  bool mf = false;
  uint32_t frag_offset = 0;  // bytes, multiple of 8
  Bytes options{};            // multiple of 4
  int total_override = -1;
  int ihl_override = -1;
  uint8_t version = 4;
};

Bytes ipv4(const V4& h, const Bytes& payload) {
  Bytes b;
  const size_t hl = 20 + h.options.size();
  const int ihl = h.ihl_override >= 0 ? h.ihl_override : static_cast<int>(hl / 4);
  b.push_back(static_cast<uint8_t>((h.version << 4) | ihl));
  b.push_back(0);
  put16(b, static_cast<uint16_t>(h.total_override >= 0 ? h.total_override
                                                       : static_cast<int>(hl + payload.size())));
  put16(b, h.id);
  put16(b, static_cast<uint16_t>((h.mf ? 0x2000 : 0) | (h.frag_offset / 8)));
  b.push_back(h.ttl);
  b.push_back(h.proto);
  put16(b, 0);
  put32(b, h.src);
  put32(b, h.dst);
  b.insert(b.end(), h.options.begin(), h.options.end());
  b.insert(b.end(), payload.begin(), payload.end());
  return b;
}

std::array<uint8_t, 16> v6addr(uint8_t last) {
  std::array<uint8_t, 16> a{0x20, 0x01, 0x0d, 0xb8};
  a[15] = last;
  return a;
}

struct V6 {
  uint8_t next = kProtoTcp;
  std::array<uint8_t, 16> src = v6addr(1), dst = v6addr(2);
  uint8_t hop_limit = 60;
  int plen_override = -1;
  uint8_t version = 6;
};

// `payload` includes any extension headers.
Bytes ipv6(const V6& h, const Bytes& payload) {
  Bytes b;
  b.push_back(static_cast<uint8_t>(h.version << 4));
  b.push_back(0);
  put16(b, 0);
  put16(b, static_cast<uint16_t>(h.plen_override >= 0 ? h.plen_override
                                                      : static_cast<int>(payload.size())));
  b.push_back(h.next);
  b.push_back(h.hop_limit);
  b.insert(b.end(), h.src.begin(), h.src.end());
  b.insert(b.end(), h.dst.begin(), h.dst.end());
  b.insert(b.end(), payload.begin(), payload.end());
  return b;
}

// Generic extension header (hop-by-hop, routing, destination options): 8*(units+1) bytes.
Bytes ext6(uint8_t next, uint8_t units) {
  Bytes b(8u * (units + 1u), 0);
  b[0] = next;
  b[1] = units;
  return b;
}
Bytes ah6(uint8_t next, uint8_t len_field) {
  Bytes b(4u * (len_field + 2u), 0);
  b[0] = next;
  b[1] = len_field;
  return b;
}
Bytes frag6(uint8_t next, uint32_t offset_bytes, bool more, uint32_t id) {
  Bytes b = {next, 0};
  put16(b, static_cast<uint16_t>(offset_bytes | (more ? 1 : 0)));
  put32(b, id);
  return b;
}

struct Tcp {
  uint16_t sport = 41000, dport = 80;
  uint32_t seq = 1000, ack = 2000;
  uint8_t flags = kTcpAck;
  uint16_t window = 512;
  Bytes options{};  // padded by the caller to a multiple of 4
  int doff_override = -1;
};

Bytes tcp(const Tcp& t, const Bytes& payload) {
  Bytes b;
  put16(b, t.sport);
  put16(b, t.dport);
  put32(b, t.seq);
  put32(b, t.ack);
  const int doff = t.doff_override >= 0 ? t.doff_override
                                        : static_cast<int>((20 + t.options.size()) / 4);
  b.push_back(static_cast<uint8_t>(doff << 4));
  b.push_back(t.flags);
  put16(b, t.window);
  put16(b, 0);
  put16(b, 0);
  b.insert(b.end(), t.options.begin(), t.options.end());
  b.insert(b.end(), payload.begin(), payload.end());
  return b;
}

Bytes udp(uint16_t sport, uint16_t dport, const Bytes& payload, int len_override = -1) {
  Bytes b;
  put16(b, sport);
  put16(b, dport);
  put16(b, static_cast<uint16_t>(len_override >= 0 ? len_override
                                                   : static_cast<int>(8 + payload.size())));
  put16(b, 0);
  b.insert(b.end(), payload.begin(), payload.end());
  return b;
}

Bytes icmp(uint8_t type, uint8_t code, uint16_t id, uint16_t seq, const Bytes& body) {
  Bytes b = {type, code, 0, 0};
  put16(b, id);
  put16(b, seq);
  b.insert(b.end(), body.begin(), body.end());
  return b;
}

Bytes data(size_t n, uint8_t fill = 0xab) { return Bytes(n, fill); }

ParsedFrame parse(const Bytes& b, ParseStatus expect = ParseStatus::ok) {
  ParsedFrame f;
  const ParseStatus s = parse_frame(b.data(), static_cast<uint32_t>(b.size()), f);
  EXPECT_EQ(s, expect) << to_string(s);
  EXPECT_EQ(f.status, s);
  return f;
}

// ---- L2 ----

TEST(ParseL2, ShortFrames) {
  for (size_t n = 0; n < 14; ++n) {
    const Bytes b(n, 0);
    ParsedFrame f;
    EXPECT_EQ(parse_frame(b.data(), static_cast<uint32_t>(n), f), ParseStatus::truncated_l2);
    EXPECT_FALSE(f.is_ip());
  }
  ParsedFrame f;
  EXPECT_EQ(parse_frame(nullptr, 0, f), ParseStatus::truncated_l2);
}

TEST(ParseL2, NonIp) {
  const Bytes arp = cat({eth(0x0806), data(28)});
  const ParsedFrame f = parse(arp, ParseStatus::non_ip);
  EXPECT_EQ(f.ethertype, 0x0806);
  EXPECT_EQ(f.l3_off, 14);
  EXPECT_EQ(f.vlan_count, 0);
  EXPECT_FALSE(f.is_ip());
  EXPECT_EQ(f.l3, L3Kind::none);
}

TEST(ParseL2, NonIpBehindVlan) {
  const ParsedFrame f =
      parse(cat({eth(0x88cc, {{0x8100, 0x2007}}), data(30)}), ParseStatus::non_ip);
  EXPECT_EQ(f.ethertype, 0x88cc);
  EXPECT_EQ(f.vlan_count, 1);
  EXPECT_EQ(f.vlan_tci[0], 0x2007);
  EXPECT_EQ(f.l3_off, 18);
}

TEST(ParseL2, SingleVlan) {
  const Bytes b = cat({eth(0x0800, {{0x8100, 0xa005}}), ipv4({}, tcp({}, data(10)))});
  const ParsedFrame f = parse(b);
  EXPECT_EQ(f.vlan_count, 1);
  EXPECT_EQ(f.vlan_tci[0], 0xa005);
  EXPECT_EQ(f.ethertype, 0x0800);
  EXPECT_EQ(f.l3_off, 18);
  EXPECT_TRUE(f.is_tcp());
  EXPECT_EQ(f.payload_len, 10u);
}

TEST(ParseL2, QinQBothTpids) {
  for (uint16_t outer : {uint16_t{0x88a8}, uint16_t{0x9100}, uint16_t{0x8100}}) {
    const Bytes b =
        cat({eth(0x86dd, {{outer, 0x0064}, {0x8100, 0x00c8}}), ipv6({}, tcp({}, data(3)))});
    const ParsedFrame f = parse(b);
    EXPECT_EQ(f.vlan_count, 2);
    EXPECT_EQ(f.vlan_tci[0], 0x0064);
    EXPECT_EQ(f.vlan_tci[1], 0x00c8);
    EXPECT_EQ(f.l3_off, 22);
    EXPECT_EQ(f.l3, L3Kind::ipv6);
    EXPECT_TRUE(f.is_tcp());
  }
}

TEST(ParseL2, ThirdTagIsNonIp) {
  const Bytes b = cat({eth(0x0800, {{0x88a8, 1}, {0x8100, 2}, {0x8100, 3}}),
                       ipv4({}, tcp({}, {}))});
  const ParsedFrame f = parse(b, ParseStatus::non_ip);
  EXPECT_EQ(f.vlan_count, 2);
  EXPECT_EQ(f.ethertype, 0x8100);
  EXPECT_EQ(f.l3_off, 22);
  EXPECT_FALSE(f.is_ip());
}

TEST(ParseL2, TruncatedInsideVlanTag) {
  Bytes b = eth(0x0800, {{0x8100, 5}});
  b.resize(16);  // TPID present, TCI + inner type cut
  parse(b, ParseStatus::truncated_l2);
  b = eth(0x0800, {{0x88a8, 5}, {0x8100, 6}});
  b.resize(20);
  const ParsedFrame f = parse(b, ParseStatus::truncated_l2);
  EXPECT_EQ(f.vlan_count, 1);
}

// ---- IPv4 ----

TEST(ParseIpv4, TcpFields) {
  Tcp t;
  t.sport = 1234;
  t.dport = 443;
  t.seq = 0xfffffff0u;
  t.ack = 0x01020304u;
  t.flags = kTcpAck | kTcpPsh;
  t.window = 0xfedc;
  V4 h;
  h.ttl = 33;
  const Bytes b = cat({eth(0x0800), ipv4(h, tcp(t, data(100)))});
  const ParsedFrame f = parse(b);
  EXPECT_EQ(f.l3, L3Kind::ipv4);
  EXPECT_TRUE(f.is_ip());
  EXPECT_EQ(f.l4_proto, kProtoTcp);
  EXPECT_EQ(f.ttl, 33);
  EXPECT_EQ(f.l3_off, 14);
  EXPECT_EQ(f.l4_off, 34);
  EXPECT_EQ(f.l3_end, b.size());
  EXPECT_EQ(f.ip4_checksum_off, 24);
  EXPECT_TRUE(f.src.is_v4());
  EXPECT_EQ(f.src.v4_host_order(), 0x0a000001u);
  EXPECT_EQ(f.dst.v4_host_order(), 0x0a000002u);
  EXPECT_FALSE(f.is_fragment);
  EXPECT_TRUE(f.is_tcp());
  EXPECT_FALSE(f.is_udp());
  EXPECT_EQ(f.sport, 1234);
  EXPECT_EQ(f.dport, 443);
  EXPECT_EQ(f.seq, 0xfffffff0u);
  EXPECT_EQ(f.ack, 0x01020304u);
  EXPECT_EQ(f.tcp_flags, kTcpAck | kTcpPsh);
  EXPECT_EQ(f.window, 0xfedc);
  EXPECT_EQ(f.l4_checksum_off, 34 + 16);
  EXPECT_EQ(f.payload_off, 54);
  EXPECT_EQ(f.payload_len, 100u);
  EXPECT_EQ(f.wscale, 0xff);
  EXPECT_EQ(f.sack_count, 0);
  EXPECT_FALSE(f.has_timestamp);
}

TEST(ParseIpv4, OptionsShiftL4) {
  V4 h;
  h.proto = kProtoUdp;
  h.options = {0x94, 0x04, 0x00, 0x00, 0x01, 0x01, 0x01, 0x00};  // router alert, NOPs, EOL
  const Bytes b = cat({eth(0x0800), ipv4(h, udp(53, 5353, data(7)))});
  const ParsedFrame f = parse(b);
  EXPECT_EQ(f.l4_off, 14 + 28);
  EXPECT_TRUE(f.is_udp());
  EXPECT_EQ(f.payload_off, 14 + 28 + 8);
  EXPECT_EQ(f.payload_len, 7u);
}

TEST(ParseIpv4, MaxOptions) {
  V4 h;
  h.options = Bytes(40, 0x01);
  const ParsedFrame f = parse(cat({eth(0x0800), ipv4(h, tcp({}, data(1)))}));
  EXPECT_EQ(f.l4_off, 14 + 60);
  EXPECT_EQ(f.payload_len, 1u);
}

TEST(ParseIpv4, L2PaddingTrimmed) {
  // A 40-byte IPv4 datagram padded to the 60-byte Ethernet minimum.
  Bytes b = cat({eth(0x0800), ipv4({}, tcp({}, {}))});
  ASSERT_EQ(b.size(), 54u);
  b.resize(60, 0);
  const ParsedFrame f = parse(b);
  EXPECT_EQ(f.l3_end, 54u);
  EXPECT_EQ(f.payload_len, 0u);
  EXPECT_EQ(f.payload_off, 54);

  Bytes u = cat({eth(0x0800), ipv4({.proto = kProtoUdp}, udp(1, 2, data(2)))});
  u.resize(60, 0xee);
  const ParsedFrame g = parse(u);
  EXPECT_EQ(g.l3_end, 14u + 20 + 10);
  EXPECT_EQ(g.payload_len, 2u);
}

TEST(ParseIpv4, BadVersion) {
  V4 h;
  h.version = 6;
  parse(cat({eth(0x0800), ipv4(h, tcp({}, {}))}), ParseStatus::bad_ip_version);
  V6 h6;
  h6.version = 4;
  parse(cat({eth(0x86dd), ipv6(h6, tcp({}, {}))}), ParseStatus::bad_ip_version);
}

TEST(ParseIpv4, BadHeaderLen) {
  for (int ihl : {0, 1, 4}) {
    V4 h;
    h.ihl_override = ihl;
    parse(cat({eth(0x0800), ipv4(h, tcp({}, {}))}), ParseStatus::bad_ip_header_len);
  }
  V4 h;
  h.ihl_override = 15;  // 60 bytes but only 20 + 3 present
  parse(cat({eth(0x0800), ipv4(h, data(3))}), ParseStatus::bad_ip_header_len);
}

TEST(ParseIpv4, BadTotalLen) {
  V4 h;
  h.total_override = 19;
  parse(cat({eth(0x0800), ipv4(h, tcp({}, {}))}), ParseStatus::bad_ip_total_len);
  h.total_override = 41;  // one byte past the frame
  parse(cat({eth(0x0800), ipv4(h, tcp({}, {}))}), ParseStatus::bad_ip_total_len);
}

TEST(ParseIpv4, TruncatedL3) {
  Bytes b = cat({eth(0x0800), ipv4({}, {})});
  for (size_t n = 14; n < 34; ++n) {
    ParsedFrame f;
    EXPECT_EQ(parse_frame(b.data(), static_cast<uint32_t>(n), f), ParseStatus::truncated_l3);
    EXPECT_EQ(f.l3_off, 14);
    EXPECT_EQ(f.ethertype, 0x0800);
  }
}

TEST(ParseIpv4, OtherProtocol) {
  V4 h;
  h.proto = 47;  // GRE
  const ParsedFrame f = parse(cat({eth(0x0800), ipv4(h, data(24))}));
  EXPECT_FALSE(f.has_l4);
  EXPECT_EQ(f.l4_proto, 47);
  EXPECT_EQ(f.payload_off, f.l4_off);
  EXPECT_EQ(f.payload_off, 34);
  EXPECT_EQ(f.payload_len, 24u);
}

TEST(ParseIpv4, EmptyDatagramOtherProtocol) {
  V4 h;
  h.proto = 59;
  const ParsedFrame f = parse(cat({eth(0x0800), ipv4(h, {})}));
  EXPECT_FALSE(f.has_l4);
  EXPECT_EQ(f.payload_len, 0u);
}

// ---- IPv4 fragments ----

TEST(ParseIpv4Frag, FirstFragmentParsesL4) {
  V4 h;
  h.mf = true;
  h.id = 0xbeef;
  h.proto = kProtoUdp;
  // UDP length announces the whole datagram (8 + 3000), only 800 bytes here.
  const Bytes b = cat({eth(0x0800), ipv4(h, udp(5000, 53, data(792), 3008))});
  const ParsedFrame f = parse(b);
  EXPECT_TRUE(f.is_fragment);
  EXPECT_TRUE(f.more_fragments);
  EXPECT_EQ(f.frag_id, 0xbeefu);
  EXPECT_EQ(f.frag_offset, 0u);
  EXPECT_EQ(f.frag_data_len, 800);
  EXPECT_TRUE(f.has_l4);
  EXPECT_EQ(f.sport, 5000);
  EXPECT_EQ(f.dport, 53);
  EXPECT_EQ(f.payload_len, 792u);
}

TEST(ParseIpv4Frag, FirstFragmentTcp) {
  V4 h;
  h.mf = true;
  const ParsedFrame f = parse(cat({eth(0x0800), ipv4(h, tcp({}, data(500)))}));
  EXPECT_TRUE(f.is_fragment);
  EXPECT_TRUE(f.is_tcp());
  EXPECT_EQ(f.payload_len, 500u);
  EXPECT_EQ(f.frag_data_len, 520);
}

TEST(ParseIpv4Frag, FirstFragmentTooShortForL4) {
  V4 h;
  h.mf = true;
  const ParsedFrame f = parse(cat({eth(0x0800), ipv4(h, data(8))}));
  EXPECT_TRUE(f.is_fragment);
  EXPECT_FALSE(f.has_l4);
  EXPECT_EQ(f.frag_data_len, 8);
}

TEST(ParseIpv4Frag, LaterFragmentsHaveNoL4) {
  for (bool mf : {true, false}) {
    V4 h;
    h.mf = mf;
    h.frag_offset = 1480;
    h.id = 7;
    const Bytes b = cat({eth(0x0800), ipv4(h, data(600))});
    const ParsedFrame f = parse(b);
    EXPECT_TRUE(f.is_fragment);
    EXPECT_EQ(f.more_fragments, mf);
    EXPECT_EQ(f.frag_offset, 1480u);
    EXPECT_EQ(f.frag_id, 7u);
    EXPECT_EQ(f.frag_data_len, 600);
    EXPECT_EQ(f.l4_off, 34);
    EXPECT_FALSE(f.has_l4);
    EXPECT_EQ(f.sport, 0);
    EXPECT_EQ(f.dport, 0);
    EXPECT_EQ(f.payload_len, 0u);
  }
}

TEST(ParseIpv4Frag, DfIsNotFragment) {
  Bytes b = cat({eth(0x0800), ipv4({}, tcp({}, {}))});
  b[14 + 6] = 0x40;  // DF
  const ParsedFrame f = parse(b);
  EXPECT_FALSE(f.is_fragment);
  EXPECT_EQ(f.frag_id, 0u);
}

// ---- IPv6 ----

TEST(ParseIpv6, TcpFields) {
  V6 h;
  h.hop_limit = 17;
  const Bytes b = cat({eth(0x86dd), ipv6(h, tcp({}, data(33)))});
  const ParsedFrame f = parse(b);
  EXPECT_EQ(f.l3, L3Kind::ipv6);
  EXPECT_EQ(f.ttl, 17);
  EXPECT_FALSE(f.src.is_v4());
  EXPECT_EQ(f.src.b, v6addr(1));
  EXPECT_EQ(f.dst.b, v6addr(2));
  EXPECT_EQ(f.l4_off, 54);
  EXPECT_EQ(f.ip4_checksum_off, 0);
  EXPECT_EQ(f.l3_end, b.size());
  EXPECT_TRUE(f.is_tcp());
  EXPECT_EQ(f.payload_off, 74);
  EXPECT_EQ(f.payload_len, 33u);
}

TEST(ParseIpv6, ExtensionChain) {
  // hop-by-hop (8) -> routing (16) -> AH (24) -> destination options (8) -> UDP
  V6 h;
  h.next = 0;
  const Bytes chain =
      cat({ext6(43, 0), ext6(51, 1), ah6(60, 4), ext6(kProtoUdp, 0), udp(9, 10, data(5))});
  const ParsedFrame f = parse(cat({eth(0x86dd), ipv6(h, chain)}));
  EXPECT_EQ(f.l4_proto, kProtoUdp);
  EXPECT_EQ(f.l4_off, 54 + 8 + 16 + 24 + 8);
  EXPECT_TRUE(f.is_udp());
  EXPECT_EQ(f.sport, 9);
  EXPECT_EQ(f.payload_len, 5u);
}

TEST(ParseIpv6, ChainTooLong) {
  Bytes chain;
  for (int i = 0; i < 9; ++i) chain = cat({chain, ext6(60, 0)});
  chain = cat({chain, tcp({}, {})});
  V6 h;
  h.next = 60;
  parse(cat({eth(0x86dd), ipv6(h, chain)}), ParseStatus::bad_ip_ext_header);

  // Eight is allowed.
  Bytes ok;
  for (int i = 0; i < 7; ++i) ok = cat({ok, ext6(60, 0)});
  ok = cat({ok, ext6(kProtoTcp, 0), tcp({}, {})});
  const ParsedFrame f = parse(cat({eth(0x86dd), ipv6(h, ok)}));
  EXPECT_TRUE(f.is_tcp());
  EXPECT_EQ(f.l4_off, 54 + 64);
}

TEST(ParseIpv6, ExtHeaderPastDatagram) {
  V6 h;
  h.next = 0;
  parse(cat({eth(0x86dd), ipv6(h, Bytes{6, 2, 0, 0, 0, 0, 0, 0})}),
        ParseStatus::bad_ip_ext_header);  // claims 24 bytes, 8 present
  parse(cat({eth(0x86dd), ipv6(h, Bytes{6, 0, 0})}), ParseStatus::bad_ip_ext_header);
  // Present in the frame but beyond the payload length: still past the datagram.
  Bytes b = cat({eth(0x86dd), ipv6(h, cat({ext6(kProtoTcp, 1), tcp({}, {})}))});
  b[14 + 5] = 12;  // payload length 12 < 16-byte extension header
  parse(b, ParseStatus::bad_ip_ext_header);
}

TEST(ParseIpv6, JumboAndBadPayloadLength) {
  V6 h;
  h.plen_override = 0;
  parse(cat({eth(0x86dd), ipv6(h, tcp({}, {}))}), ParseStatus::bad_ip_total_len);
  h.plen_override = 21;
  parse(cat({eth(0x86dd), ipv6(h, tcp({}, {}))}), ParseStatus::bad_ip_total_len);
}

TEST(ParseIpv6, PaddingTrimmed) {
  Bytes b = cat({eth(0x86dd), ipv6({.next = kProtoUdp}, udp(1, 2, {}))});
  b.resize(b.size() + 6, 0);
  const ParsedFrame f = parse(b);
  EXPECT_EQ(f.l3_end, 14u + 40 + 8);
  EXPECT_EQ(f.payload_len, 0u);
}

TEST(ParseIpv6, NoNextHeader) {
  V6 h;
  h.next = 59;
  const ParsedFrame f = parse(cat({eth(0x86dd), ipv6(h, data(4))}));
  EXPECT_FALSE(f.has_l4);
  EXPECT_EQ(f.l4_proto, 59);
  EXPECT_EQ(f.payload_len, 4u);
}

TEST(ParseIpv6, TruncatedL3) {
  const Bytes b = cat({eth(0x86dd), ipv6({}, tcp({}, {}))});
  for (size_t n = 14; n < 54; ++n) {
    ParsedFrame f;
    EXPECT_EQ(parse_frame(b.data(), static_cast<uint32_t>(n), f), ParseStatus::truncated_l3);
  }
}

TEST(ParseIpv6Frag, FirstFragment) {
  V6 h;
  h.next = 44;
  const Bytes b =
      cat({eth(0x86dd), ipv6(h, cat({frag6(kProtoTcp, 0, true, 0xdeadbeef), tcp({}, data(64))}))});
  const ParsedFrame f = parse(b);
  EXPECT_TRUE(f.is_fragment);
  EXPECT_TRUE(f.more_fragments);
  EXPECT_EQ(f.frag_offset, 0u);
  EXPECT_EQ(f.frag_id, 0xdeadbeefu);
  EXPECT_EQ(f.l4_off, 62);
  EXPECT_EQ(f.frag_data_len, 84);
  EXPECT_TRUE(f.is_tcp());
  EXPECT_EQ(f.payload_len, 64u);
}

TEST(ParseIpv6Frag, FirstFragmentWithHeadersAfterFragmentHeader) {
  // Destination options after the fragment header belong to the fragmentable part: the
  // chain stops at the fragment header so that every fragment of the datagram has the
  // same next header and its data starts right after the fragment header.
  V6 h;
  h.next = 44;
  const Bytes b = cat({eth(0x86dd),
                       ipv6(h, cat({frag6(60, 0, true, 5), ext6(kProtoTcp, 0), tcp({}, data(8))}))});
  const ParsedFrame f = parse(b);
  EXPECT_TRUE(f.is_fragment);
  EXPECT_EQ(f.l4_proto, 60);
  EXPECT_EQ(f.l4_off, 62);
  EXPECT_EQ(f.frag_data_len, 8 + 20 + 8);
  EXPECT_FALSE(f.has_l4);
}

TEST(ParseIpv6Frag, LaterFragment) {
  V6 h;
  h.next = 0;
  // Hop-by-hop, then the fragment header; what follows is data even if it looks like a
  // header.
  const Bytes b = cat({eth(0x86dd), ipv6(h, cat({ext6(44, 0), frag6(kProtoTcp, 1232, false, 9),
                                                  ext6(kProtoTcp, 0), data(16)}))});
  const ParsedFrame f = parse(b);
  EXPECT_TRUE(f.is_fragment);
  EXPECT_FALSE(f.more_fragments);
  EXPECT_EQ(f.frag_offset, 1232u);
  EXPECT_EQ(f.frag_id, 9u);
  EXPECT_EQ(f.l4_off, 54 + 16);
  EXPECT_EQ(f.frag_data_len, 24);
  EXPECT_EQ(f.l4_proto, kProtoTcp);
  EXPECT_FALSE(f.has_l4);
}

TEST(ParseIpv6Frag, AtomicFragmentIsWhole) {
  V6 h;
  h.next = 44;
  const ParsedFrame f =
      parse(cat({eth(0x86dd), ipv6(h, cat({frag6(kProtoUdp, 0, false, 1), udp(1, 2, data(3))}))}));
  EXPECT_FALSE(f.is_fragment);
  EXPECT_TRUE(f.is_udp());
  EXPECT_EQ(f.payload_len, 3u);
}

TEST(ParseIpv6Frag, TruncatedFragmentHeader) {
  V6 h;
  h.next = 44;
  parse(cat({eth(0x86dd), ipv6(h, Bytes{6, 0, 0, 1, 0})}), ParseStatus::bad_ip_ext_header);
}

// ---- TCP ----

Bytes syn_options() {
  // MSS 1460, SACK permitted, timestamps, NOP, window scale 7 (Linux SYN layout).
  return {2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7};
}

TEST(ParseTcp, SynOptions) {
  Tcp t;
  t.flags = kTcpSyn;
  t.options = syn_options();
  const Bytes b = cat({eth(0x0800), ipv4({}, tcp(t, {}))});
  const ParsedFrame f = parse(b);
  EXPECT_EQ(f.tcp_flags, kTcpSyn);
  EXPECT_EQ(f.wscale, 7);
  EXPECT_TRUE(f.has_timestamp);
  EXPECT_EQ(f.ts_off, 34 + 20 + 8);
  EXPECT_EQ(f.tsval, 1u);
  EXPECT_EQ(f.tsecr, 0u);
  EXPECT_EQ(f.sack_count, 0);
  EXPECT_EQ(f.payload_off, 34 + 40);
  EXPECT_EQ(f.payload_len, 0u);
}

TEST(ParseTcp, TimestampsAndSackBlocks) {
  Tcp t;
  // NOP NOP TS(10) NOP NOP SACK with 3 blocks (26) = 40 bytes.
  t.options = {1, 1, 8, 10, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 1, 1, 5, 26};
  for (uint8_t i = 0; i < 24; ++i) t.options.push_back(i);
  ASSERT_EQ(t.options.size(), 40u);
  const Bytes b = cat({eth(0x86dd), ipv6({}, tcp(t, data(9)))});
  const ParsedFrame f = parse(b);
  const uint16_t opt = 54 + 20;
  EXPECT_TRUE(f.has_timestamp);
  EXPECT_EQ(f.ts_off, opt + 4);
  EXPECT_EQ(f.tsval, 0x11223344u);
  EXPECT_EQ(f.tsecr, 0x55667788u);
  ASSERT_EQ(f.sack_count, 3);
  EXPECT_EQ(f.sack_off[0], opt + 16);
  EXPECT_EQ(f.sack_off[1], opt + 24);
  EXPECT_EQ(f.sack_off[2], opt + 32);
  EXPECT_EQ(f.sack_off[3], 0);
  EXPECT_EQ(load_be32(b.data() + f.sack_off[1]), 0x08090a0bu);
  EXPECT_EQ(f.payload_len, 9u);
}

TEST(ParseTcp, FourSackBlocks) {
  Tcp t;
  t.options = {1, 1, 5, 34};
  for (uint8_t i = 0; i < 32; ++i) t.options.push_back(i);
  const Bytes b = cat({eth(0x0800), ipv4({}, tcp(t, {}))});
  const ParsedFrame f = parse(b);
  ASSERT_EQ(f.sack_count, 4);
  for (unsigned k = 0; k < 4; ++k) EXPECT_EQ(f.sack_off[k], 34 + 20 + 4 + 8 * k);
}

TEST(ParseTcp, UnknownOptionSkippedAndEol) {
  Tcp t;
  // Unknown kind 30 (MPTCP) of 6 bytes, then EOL; the bytes after EOL are ignored even
  // though they would be a malformed option.
  t.options = {30, 6, 1, 2, 3, 4, 0, 8, 99, 0, 0, 0};
  const ParsedFrame f = parse(cat({eth(0x0800), ipv4({}, tcp(t, {}))}));
  EXPECT_FALSE(f.has_timestamp);
  EXPECT_EQ(f.wscale, 0xff);
}

TEST(ParseTcp, WscaleClamped) {
  Tcp t;
  t.options = {3, 3, 200, 0};
  const ParsedFrame f = parse(cat({eth(0x0800), ipv4({}, tcp(t, {}))}));
  EXPECT_EQ(f.wscale, 14);
}

TEST(ParseTcp, BadOptions) {
  const std::vector<Bytes> bad = {
      {1, 1, 2, 4},                           // option runs past the header
      {30, 0, 0, 0},                          // length 0
      {30, 1, 0, 0},                          // length 1
      {1, 1, 1, 30},                          // kind without a length byte
      {2, 3, 0, 0},                           // MSS of wrong length
      {3, 4, 0, 0},                           // window scale of wrong length
      {4, 3, 0, 0},                           // SACK-permitted of wrong length
      {8, 8, 0, 0, 0, 0, 0, 0},               // timestamps of wrong length
      {5, 2, 0, 0},                           // SACK with no block
      {5, 9, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1},   // SACK not a multiple of 8
  };
  for (const Bytes& o : bad) {
    ASSERT_EQ(o.size() % 4, 0u);
    Tcp t;
    t.options = o;
    parse(cat({eth(0x0800), ipv4({}, tcp(t, {}))}), ParseStatus::bad_tcp_option);
  }
}

TEST(ParseTcp, BadOffset) {
  for (int doff : {0, 4}) {
    Tcp t;
    t.doff_override = doff;
    parse(cat({eth(0x0800), ipv4({}, tcp(t, data(40)))}), ParseStatus::bad_tcp_offset);
  }
  Tcp t;
  t.doff_override = 15;  // 60 bytes, 20 + 10 present
  parse(cat({eth(0x0800), ipv4({}, tcp(t, data(10)))}), ParseStatus::bad_tcp_offset);
}

TEST(ParseTcp, TruncatedL4) {
  Bytes seg = tcp({}, {});
  seg.resize(19);
  parse(cat({eth(0x0800), ipv4({}, seg)}), ParseStatus::truncated_l4);
  parse(cat({eth(0x0800), ipv4({.proto = kProtoUdp}, data(7))}), ParseStatus::truncated_l4);
  parse(cat({eth(0x0800), ipv4({.proto = kProtoIcmp}, data(7))}), ParseStatus::truncated_l4);
  parse(cat({eth(0x86dd), ipv6({.next = kProtoIcmpv6}, data(4))}), ParseStatus::truncated_l4);
}

TEST(ParseTcp, IpLengthBoundsTheSegment) {
  // The TCP header claims options that lie in L2 padding, beyond the IP datagram.
  Tcp t;
  t.doff_override = 6;
  Bytes b = cat({eth(0x0800), ipv4({}, tcp(t, {}))});
  b.resize(b.size() + 4, 1);
  parse(b, ParseStatus::bad_tcp_offset);
}

// ---- UDP ----

TEST(ParseUdp, Fields) {
  const Bytes b = cat({eth(0x0800), ipv4({.proto = kProtoUdp}, udp(5353, 53, data(20)))});
  const ParsedFrame f = parse(b);
  EXPECT_TRUE(f.is_udp());
  EXPECT_EQ(f.sport, 5353);
  EXPECT_EQ(f.dport, 53);
  EXPECT_EQ(f.l4_checksum_off, 34 + 6);
  EXPECT_EQ(f.payload_off, 42);
  EXPECT_EQ(f.payload_len, 20u);
}

TEST(ParseUdp, LengthShorterThanIp) {
  const ParsedFrame f =
      parse(cat({eth(0x0800), ipv4({.proto = kProtoUdp}, udp(1, 2, data(20), 18))}));
  EXPECT_EQ(f.payload_len, 10u);
}

TEST(ParseUdp, BadLength) {
  for (int l : {0, 7, 29}) {
    parse(cat({eth(0x0800), ipv4({.proto = kProtoUdp}, udp(1, 2, data(20), l))}),
          ParseStatus::bad_udp_len);
  }
  parse(cat({eth(0x86dd), ipv6({.next = kProtoUdp}, udp(1, 2, data(4), 13))}),
        ParseStatus::bad_udp_len);
}

// ---- ICMP ----

TEST(ParseIcmp, EchoUsesIdentifierAsPorts) {
  for (uint8_t type : {uint8_t{8}, uint8_t{0}}) {
    const Bytes b =
        cat({eth(0x0800), ipv4({.proto = kProtoIcmp}, icmp(type, 0, 0x4242, 7, data(56)))});
    const ParsedFrame f = parse(b);
    EXPECT_TRUE(f.has_l4);
    EXPECT_EQ(f.icmp_type, type);
    EXPECT_EQ(f.icmp_code, 0);
    EXPECT_EQ(f.sport, 0x4242);
    EXPECT_EQ(f.dport, 0x4242);
    EXPECT_EQ(f.l4_checksum_off, 36);
    EXPECT_EQ(f.payload_off, 42);
    EXPECT_EQ(f.payload_len, 56u);
  }
}

TEST(ParseIcmp, NonEchoHasNoPorts) {
  const ParsedFrame f =
      parse(cat({eth(0x0800), ipv4({.proto = kProtoIcmp}, icmp(3, 3, 0x1111, 0x2222, data(28)))}));
  EXPECT_EQ(f.icmp_type, 3);
  EXPECT_EQ(f.icmp_code, 3);
  EXPECT_EQ(f.sport, 0);
  EXPECT_EQ(f.dport, 0);
  EXPECT_EQ(f.payload_len, 28u);
}

TEST(ParseIcmp, Icmpv6Echo) {
  for (uint8_t type : {uint8_t{128}, uint8_t{129}}) {
    const ParsedFrame f =
        parse(cat({eth(0x86dd), ipv6({.next = kProtoIcmpv6}, icmp(type, 0, 77, 1, data(8)))}));
    EXPECT_EQ(f.l4_proto, kProtoIcmpv6);
    EXPECT_EQ(f.icmp_type, type);
    EXPECT_EQ(f.sport, 77);
    EXPECT_EQ(f.dport, 77);
    EXPECT_EQ(f.l4_checksum_off, 56);
    EXPECT_EQ(f.payload_len, 8u);
  }
  // Neighbour solicitation: no identifier.
  const ParsedFrame ns =
      parse(cat({eth(0x86dd), ipv6({.next = kProtoIcmpv6}, icmp(135, 0, 1, 2, data(16)))}));
  EXPECT_EQ(ns.sport, 0);
  // ICMPv4 echo type numbers mean nothing under ICMPv6.
  const ParsedFrame v6_8 =
      parse(cat({eth(0x86dd), ipv6({.next = kProtoIcmpv6}, icmp(8, 0, 1, 2, {}))}));
  EXPECT_EQ(v6_8.sport, 0);
}

// ---- robustness ----

// Every prefix of a valid frame parses to some status without reading past the prefix
// (ASan/valgrind catch an overread: the prefix is copied into an exact-size buffer).
void every_prefix(const Bytes& full) {
  const ParsedFrame whole = parse(full);
  for (size_t n = 0; n <= full.size(); ++n) {
    const Bytes prefix(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    ParsedFrame f;
    const ParseStatus s = parse_frame(prefix.data(), static_cast<uint32_t>(n), f);
    EXPECT_EQ(s, f.status);
    if (n < 14) {
      EXPECT_EQ(s, ParseStatus::truncated_l2) << n;
    } else if (n < whole.l3_off) {
      EXPECT_EQ(s, ParseStatus::truncated_l2) << n;
    } else if (n < whole.l3_end) {
      // The IP header is cut, or the datagram is longer than what is left.
      EXPECT_TRUE(s == ParseStatus::truncated_l3 || s == ParseStatus::bad_ip_total_len ||
                  s == ParseStatus::bad_ip_header_len)
          << n << " " << to_string(s);
    } else {
      EXPECT_EQ(s, ParseStatus::ok) << n;
      EXPECT_EQ(f.payload_len, whole.payload_len);
    }
    EXPECT_LE(f.l3_end, n);
  }
}

TEST(ParseRobust, EveryPrefixTcpIpv6) {
  Tcp t;
  t.options = {1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 1, 1, 5, 10, 0, 0, 0, 5, 0, 0, 0, 9};
  V6 h;
  h.next = 0;
  every_prefix(cat({eth(0x86dd, {{0x88a8, 3}, {0x8100, 4}}),
                    ipv6(h, cat({ext6(44, 0), frag6(kProtoTcp, 0, true, 3), tcp(t, data(30))}))}));
  every_prefix(cat({eth(0x86dd), ipv6({}, tcp(t, data(30)))}));
}

TEST(ParseRobust, EveryPrefixTcpIpv4) {
  Tcp t;
  t.options = syn_options();
  V4 h;
  h.options = {1, 1, 1, 0};
  every_prefix(cat({eth(0x0800, {{0x8100, 9}}), ipv4(h, tcp(t, data(12)))}));
}

TEST(ParseRobust, EveryPrefixUdpIcmp) {
  every_prefix(cat({eth(0x0800), ipv4({.proto = kProtoUdp}, udp(1, 2, data(12)))}));
  every_prefix(cat({eth(0x0800), ipv4({.proto = kProtoIcmp}, icmp(8, 0, 1, 1, data(12)))}));
}

TEST(ParseRobust, TcpHeaderCutInsideDatagram) {
  // IP length consistent with a shorter segment: every cut of the TCP header inside a
  // consistent datagram gives truncated_l4 or bad_tcp_offset, never ok.
  Tcp t;
  t.options = syn_options();
  const Bytes seg = tcp(t, {});
  for (size_t cut = 0; cut < seg.size(); ++cut) {
    const Bytes b = cat({eth(0x0800), ipv4({}, Bytes(seg.begin(), seg.begin() +
                                                                       static_cast<std::ptrdiff_t>(cut)))});
    ParsedFrame f;
    const ParseStatus s = parse_frame(b.data(), static_cast<uint32_t>(b.size()), f);
    if (cut < 20) {
      EXPECT_EQ(s, ParseStatus::truncated_l4) << cut;
    } else {
      EXPECT_EQ(s, ParseStatus::bad_tcp_offset) << cut;
    }
    EXPECT_FALSE(f.has_l4);
  }
}

TEST(ParseRobust, ReparseResetsFields) {
  Tcp t;
  t.options = syn_options();
  const Bytes a = cat({eth(0x0800, {{0x8100, 1}}), ipv4({}, tcp(t, data(5)))});
  const Bytes b = cat({eth(0x0806), data(28)});
  ParsedFrame f;
  ASSERT_EQ(parse_frame(a.data(), static_cast<uint32_t>(a.size()), f), ParseStatus::ok);
  ASSERT_EQ(parse_frame(b.data(), static_cast<uint32_t>(b.size()), f), ParseStatus::non_ip);
  EXPECT_EQ(f.vlan_count, 0);
  EXPECT_FALSE(f.has_l4);
  EXPECT_FALSE(f.has_timestamp);
  EXPECT_EQ(f.wscale, 0xff);
  EXPECT_EQ(f.l3, L3Kind::none);
}

TEST(ParseStatusNames, AllNamed) {
  EXPECT_EQ(to_string(ParseStatus::ok), "ok");
  EXPECT_EQ(to_string(ParseStatus::bad_udp_len), "bad_udp_len");
  for (unsigned i = 0; i < kParseStatusCount; ++i) {
    const std::string_view n = to_string(static_cast<ParseStatus>(i));
    EXPECT_FALSE(n.empty());
    EXPECT_NE(n, "unknown");
  }
}

TEST(IpAddrTest, V4Mapped) {
  const IpAddr a = IpAddr::v4(0xc0a80101u);
  EXPECT_TRUE(a.is_v4());
  EXPECT_EQ(a.v4_host_order(), 0xc0a80101u);
  EXPECT_EQ(a.b[10], 0xff);
  EXPECT_EQ(a.b[12], 0xc0);
  IpAddr b;
  EXPECT_FALSE(b.is_v4());
  b.b = v6addr(1);
  EXPECT_FALSE(b.is_v4());
  EXPECT_LT(IpAddr::v4(1), IpAddr::v4(2));
}

// ---- cross-check against the shared builder's independent decoder ----

TEST(ParseCrossCheck, AgreesWithBuilderDecoder) {
  std::vector<test::FrameSpec> specs;
  test::FrameSpec t;
  t.src = test::ip4(192, 0, 2, 1);
  t.dst = test::ip4(198, 51, 100, 2);
  t.sport = 40000;
  t.dport = 80;
  t.seq = 0xfffffff0u;
  t.ack = 77;
  t.flags = kTcpAck | kTcpPsh;
  t.tcp.timestamp = std::make_pair(11u, 22u);
  t.tcp.sack = {{100, 200}, {300, 400}};
  t.payload.assign(33, 0x42);
  specs.push_back(t);
  t.vlans = {5, 6};
  t.ip_options = {0x94, 4, 0, 0};
  t.pad_to_min = true;
  t.payload.clear();
  specs.push_back(t);
  test::FrameSpec v6 = t;
  v6.src = test::ip6_doc(1);
  v6.dst = test::ip6_doc(2);
  v6.ip_options.clear();
  v6.ip6_hop_by_hop = true;
  v6.payload.assign(5, 1);
  specs.push_back(v6);
  test::FrameSpec u = v6;
  u.proto = kProtoUdp;
  u.vlans = {};
  specs.push_back(u);

  for (const test::FrameSpec& spec : specs) {
    const Bytes b = test::build_frame(spec);
    const test::Decoded d = test::decode(b);
    ASSERT_TRUE(d.ok);
    const ParsedFrame f = parse(b);
    EXPECT_EQ(f.l3 == L3Kind::ipv6, d.ipv6);
    EXPECT_EQ(f.l3_off, d.l3_off);
    EXPECT_EQ(f.l4_off, d.l4_off);
    EXPECT_EQ(f.l3_end, d.l3_end);
    EXPECT_EQ(f.l4_proto, d.proto);
    EXPECT_EQ(f.payload_off, d.payload_off);
    EXPECT_EQ(f.payload_len, d.payload_len);
    if (f.is_tcp()) {
      EXPECT_EQ(f.seq, d.seq);
      EXPECT_EQ(f.ack, d.ack);
      EXPECT_EQ(f.tcp_flags, d.flags);
      EXPECT_EQ(f.window, d.window);
      ASSERT_TRUE(d.timestamp.has_value());
      EXPECT_EQ(f.tsval, d.timestamp->first);
      EXPECT_EQ(f.tsecr, d.timestamp->second);
      ASSERT_EQ(f.sack_count, d.sack.size());
      for (unsigned k = 0; k < f.sack_count; ++k) {
        EXPECT_EQ(load_be32(b.data() + f.sack_off[k]), d.sack[k].first);
        EXPECT_EQ(load_be32(b.data() + f.sack_off[k] + 4), d.sack[k].second);
      }
    }
  }
}

TEST(ParseCrossCheck, BuilderFragments) {
  for (bool v6 : {false, true}) {
    test::FrameSpec s;
    s.src = v6 ? test::ip6_doc(1) : test::ip4(10, 0, 0, 1);
    s.dst = v6 ? test::ip6_doc(2) : test::ip4(10, 0, 0, 2);
    s.proto = kProtoUdp;
    s.sport = 1;
    s.dport = 2;
    s.ip_id = 99;
    s.payload.assign(2000, 3);
    const std::vector<Bytes> frags = test::fragment_frame(test::build_frame(s), 800);
    ASSERT_EQ(frags.size(), 3u);
    uint32_t expect_off = 0;
    for (size_t i = 0; i < frags.size(); ++i) {
      const ParsedFrame f = parse(frags[i]);
      EXPECT_TRUE(f.is_fragment);
      EXPECT_EQ(f.more_fragments, i + 1 < frags.size());
      EXPECT_EQ(f.frag_offset, expect_off);
      EXPECT_EQ(f.has_l4, i == 0);
      EXPECT_EQ(f.frag_data_len, f.l3_end - f.l4_off);
      if (v6) {
        EXPECT_EQ(f.frag_id, 0x12345678u);
      } else {
        EXPECT_EQ(f.frag_id, 99u);
      }
      expect_off += f.frag_data_len;
    }
    EXPECT_EQ(expect_off, 2008u);
  }
}

}  // namespace
}  // namespace lockstep
