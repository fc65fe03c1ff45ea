// Incremental reader of be32 length-prefixed frames, as QEMU's net_fill_rstate reads
// them: [be32 len][be32 vnet_hdr_len, only when enabled][len bytes]. Bytes may arrive
// split anywhere; a frame longer than the bound is an error after which the reader is
// dead (the caller closes the connection). Pure: no I/O, no clock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace lockstep::ctrl {

enum class FrameStatus : uint8_t { frame, need_more, oversize };

class FrameReader {
 public:
  FrameReader(size_t max_payload, bool extra_word) : max_(max_payload), extra_(extra_word) {}

  // Appends bytes. Cheap; parsing happens in next().
  void push(const void* data, size_t len) {
    if (!dead_) buf_.append(static_cast<const char*>(data), len);
  }

  // The next complete frame's payload (valid until the next push/next call).
  FrameStatus next(std::string_view& payload);

  bool dead() const { return dead_; }
  size_t buffered() const { return buf_.size() - pos_; }
  uint32_t last_extra_word() const { return extra_word_; }

 private:
  std::string buf_;
  size_t pos_ = 0;
  size_t max_;
  bool extra_;
  bool dead_ = false;
  uint32_t extra_word_ = 0;
};

// be32 helpers.
inline void put_be32(std::string& out, uint32_t v) {
  out.push_back(static_cast<char>(v >> 24));
  out.push_back(static_cast<char>(v >> 16));
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}
inline uint32_t get_be32(const char* p) {
  auto b = [&](int i) { return static_cast<uint32_t>(static_cast<unsigned char>(p[i])); };
  return b(0) << 24 | b(1) << 16 | b(2) << 8 | b(3);
}

}  // namespace lockstep::ctrl
