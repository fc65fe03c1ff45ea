// Frames and capture files for the replay tool's tests, built byte by byte: Ethernet +
// IPv4 + TCP/UDP frames, classic pcap (microsecond or nanosecond stamps, any link type),
// pcapng (one section, one interface, enhanced packet blocks) and damaged files.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lockstep::replay::test {

struct TestFrame {
  uint64_t ts_ns = 0;
  std::vector<uint8_t> bytes;
};

struct Endpoint {
  uint32_t ip = 0;  // host order
  uint16_t port = 0;
  uint8_t mac_last = 0;
};

std::vector<uint8_t> tcp_frame(const Endpoint& src, const Endpoint& dst, uint32_t seq,
                               uint32_t ack, uint8_t flags, const std::string& payload);
std::vector<uint8_t> udp_frame(const Endpoint& src, const Endpoint& dst,
                               const std::string& payload);

// Classic pcap; nanosecond stamps when `nano`, else microseconds (ts_ns must then be a
// multiple of 1000 to survive).
std::string pcap_bytes(const std::vector<TestFrame>& frames, bool nano = false,
                       uint32_t linktype = 1);
std::string pcapng_bytes(const std::vector<TestFrame>& frames, uint32_t linktype = 1);

void write_file(const std::string& path, const std::string& bytes);
std::string read_file(const std::string& path);

}  // namespace lockstep::replay::test
