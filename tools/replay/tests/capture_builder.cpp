#include "tools/replay/tests/capture_builder.h"

#include <fstream>
#include <iterator>
#include <sstream>

namespace lockstep::replay::test {

namespace {

void be16(std::vector<uint8_t>& v, uint16_t x) {
  v.push_back(static_cast<uint8_t>(x >> 8));
  v.push_back(static_cast<uint8_t>(x));
}
void be32(std::vector<uint8_t>& v, uint32_t x) {
  be16(v, static_cast<uint16_t>(x >> 16));
  be16(v, static_cast<uint16_t>(x));
}
void le16(std::string& s, uint16_t x) {
  s.push_back(static_cast<char>(x & 0xff));
  s.push_back(static_cast<char>(x >> 8));
}
void le32(std::string& s, uint32_t x) {
  le16(s, static_cast<uint16_t>(x));
  le16(s, static_cast<uint16_t>(x >> 16));
}

uint16_t fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

uint32_t sum16(const uint8_t* p, size_t n, uint32_t sum = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) sum += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
  if (n % 2 != 0) sum += static_cast<uint32_t>(p[n - 1] << 8);
  return sum;
}

std::vector<uint8_t> ip_frame(const Endpoint& src, const Endpoint& dst, uint8_t proto,
                              const std::vector<uint8_t>& l4) {
  std::vector<uint8_t> f;
  for (int i = 0; i < 5; ++i) f.push_back(0x02);
  f.push_back(dst.mac_last);
  for (int i = 0; i < 5; ++i) f.push_back(0x02);
  f.push_back(src.mac_last);
  be16(f, 0x0800);
  const size_t ip = f.size();
  f.push_back(0x45);
  f.push_back(0);
  be16(f, static_cast<uint16_t>(20 + l4.size()));
  be16(f, 1);       // id
  be16(f, 0x4000);  // DF
  f.push_back(64);
  f.push_back(proto);
  be16(f, 0);
  be32(f, src.ip);
  be32(f, dst.ip);
  const uint16_t ipsum = fold(sum16(f.data() + ip, 20));
  f[ip + 10] = static_cast<uint8_t>(ipsum >> 8);
  f[ip + 11] = static_cast<uint8_t>(ipsum);
  const size_t l4_off = f.size();
  f.insert(f.end(), l4.begin(), l4.end());
  // Pseudo-header checksum over the L4 part.
  uint32_t sum = 0;
  sum += src.ip >> 16;
  sum += src.ip & 0xffff;
  sum += dst.ip >> 16;
  sum += dst.ip & 0xffff;
  sum += proto;
  sum += static_cast<uint32_t>(l4.size());
  const size_t csum_at = l4_off + (proto == 6 ? 16 : 6);
  const uint16_t c = fold(sum16(f.data() + l4_off, l4.size(), sum));
  f[csum_at] = static_cast<uint8_t>(c >> 8);
  f[csum_at + 1] = static_cast<uint8_t>(c);
  return f;
}

}  // namespace

std::vector<uint8_t> tcp_frame(const Endpoint& src, const Endpoint& dst, uint32_t seq,
                               uint32_t ack, uint8_t flags, const std::string& payload) {
  std::vector<uint8_t> t;
  be16(t, src.port);
  be16(t, dst.port);
  be32(t, seq);
  be32(t, ack);
  t.push_back(0x50);
  t.push_back(flags);
  be16(t, 65535);
  be16(t, 0);
  be16(t, 0);
  t.insert(t.end(), payload.begin(), payload.end());
  return ip_frame(src, dst, 6, t);
}

std::vector<uint8_t> udp_frame(const Endpoint& src, const Endpoint& dst,
                               const std::string& payload) {
  std::vector<uint8_t> u;
  be16(u, src.port);
  be16(u, dst.port);
  be16(u, static_cast<uint16_t>(8 + payload.size()));
  be16(u, 0);
  u.insert(u.end(), payload.begin(), payload.end());
  return ip_frame(src, dst, 17, u);
}

std::string pcap_bytes(const std::vector<TestFrame>& frames, bool nano, uint32_t linktype) {
  std::string s;
  le32(s, nano ? 0xa1b23c4d : 0xa1b2c3d4);
  le16(s, 2);
  le16(s, 4);
  le32(s, 0);
  le32(s, 0);
  le32(s, 65535);
  le32(s, linktype);
  for (const TestFrame& f : frames) {
    le32(s, static_cast<uint32_t>(f.ts_ns / 1000000000));
    le32(s, static_cast<uint32_t>(nano ? f.ts_ns % 1000000000 : f.ts_ns % 1000000000 / 1000));
    le32(s, static_cast<uint32_t>(f.bytes.size()));
    le32(s, static_cast<uint32_t>(f.bytes.size()));
    s.append(f.bytes.begin(), f.bytes.end());
  }
  return s;
}

std::string pcapng_bytes(const std::vector<TestFrame>& frames, uint32_t linktype) {
  std::string s;
  // Section header block.
  le32(s, 0x0A0D0D0A);
  le32(s, 28);
  le32(s, 0x1A2B3C4D);
  le16(s, 1);
  le16(s, 0);
  le32(s, 0xffffffff);  // section length unknown (-1)
  le32(s, 0xffffffff);
  le32(s, 28);
  // Interface description block, default resolution (microseconds).
  le32(s, 1);
  le32(s, 20);
  le16(s, static_cast<uint16_t>(linktype));
  le16(s, 0);
  le32(s, 65535);
  le32(s, 20);
  for (const TestFrame& f : frames) {
    const uint32_t pad = (4 - f.bytes.size() % 4) % 4;
    const uint32_t len = static_cast<uint32_t>(32 + f.bytes.size() + pad);
    const uint64_t us = f.ts_ns / 1000;
    le32(s, 6);
    le32(s, len);
    le32(s, 0);
    le32(s, static_cast<uint32_t>(us >> 32));
    le32(s, static_cast<uint32_t>(us));
    le32(s, static_cast<uint32_t>(f.bytes.size()));
    le32(s, static_cast<uint32_t>(f.bytes.size()));
    s.append(f.bytes.begin(), f.bytes.end());
    s.append(pad, '\0');
    le32(s, len);
  }
  return s;
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream o(path, std::ios::binary | std::ios::trunc);
  o.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string read_file(const std::string& path) {
  std::ifstream i(path, std::ios::binary);
  std::ostringstream ss;
  ss << i.rdbuf();
  return ss.str();
}

}  // namespace lockstep::replay::test
