// Incremental reader of be32 length-prefixed frames, as QEMU's net_fill_rstate reads
// them: [be32 len][be32 vnet_hdr_len, only when enabled][len bytes]. Bytes may arrive
// split anywhere; a frame longer than the bound is an error after which the reader is
// dead (the caller closes the connection). Pure: no I/O, no clock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/byte_order.h"  // load_be32, append_be32: the length prefixes

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

}  // namespace lockstep::ctrl
