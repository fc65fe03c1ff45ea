// Capture files in and out. Reading uses libpcap (pcap and pcapng, nanosecond
// timestamps) and loads every frame into one byte arena, so a frame's bytes stay valid
// and in place for as long as the engine holds its handle. Writing produces classic
// pcap with nanosecond timestamps (magic 0xa1b23c4d), Ethernet link type, through an
// OutputFile so that a failed run leaves no complete-looking file behind.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tools/replay/output_file.h"

namespace lockstep::replay {

struct Frame {
  uint64_t ts_ns = 0;   // capture timestamp, nanoseconds since the Unix epoch
  uint64_t offset = 0;  // into Capture::bytes
  uint32_t caplen = 0;  // bytes present in the file
  uint32_t wirelen = 0; // length on the wire (>= caplen when the capture was snapped)
};

struct Capture {
  std::string path;
  std::vector<Frame> frames;
  std::vector<uint8_t> bytes;

  uint8_t* data(size_t i) { return bytes.data() + frames[i].offset; }
  const uint8_t* data(size_t i) const { return bytes.data() + frames[i].offset; }
};

// Loads `path` into `out`. Ethernet (DLT_EN10MB) only. On failure returns false with a
// one-line `error` that names the file and the problem (missing, unreadable, not a
// capture, truncated, wrong link type).
bool read_capture(const std::string& path, Capture& out, std::string& error);

class PcapWriter {
 public:
  static constexpr uint32_t kMagicNs = 0xa1b23c4d;
  static constexpr uint32_t kSnaplen = 262144;
  static constexpr uint32_t kLinkEthernet = 1;

  bool open(const std::string& path, std::string& error);
  bool is_open() const { return out_.is_open(); }
  void write(uint64_t ts_ns, const uint8_t* data, uint32_t caplen, uint32_t wirelen);
  bool commit(std::string& error) { return out_.commit(error); }
  void discard() { out_.discard(); }
  uint64_t frames_written() const { return frames_; }

 private:
  OutputFile out_;
  uint64_t frames_ = 0;
};

}  // namespace lockstep::replay
