#include "dataplane/chardev/chardev_codec.h"

#include <algorithm>
#include <cstring>

#include "common/byte_order.h"

namespace lockstep::chardev {

size_t encode_header(uint8_t* out, uint32_t len, bool vnet_hdr, uint32_t vnet_hdr_len) {
  store_be32(out, len);
  if (!vnet_hdr) return 4;
  store_be32(out + 4, vnet_hdr_len);
  return 8;
}

void ChardevParser::reset() {
  state_ = State::header;
  hdr_have_ = 0;
  len_ = vnet_len_ = have_ = 0;
  buf_ = nullptr;
}

ParseStatus ChardevParser::step(const uint8_t*& p, const uint8_t* end) {
  for (;;) {
    switch (state_) {
      case State::dead:
        p = end;
        return ParseStatus::oversize;
      case State::header: {
        const uint32_t want = static_cast<uint32_t>(header_len(vnet_));
        if (hdr_have_ == 0 && static_cast<size_t>(end - p) >= want) {
          std::memcpy(hdr_, p, want);  // the common case: the whole header is here
          p += want;
          hdr_have_ = want;
        } else {
          const uint32_t n = static_cast<uint32_t>(
              std::min<size_t>(want - hdr_have_, static_cast<size_t>(end - p)));
          std::memcpy(hdr_ + hdr_have_, p, n);
          p += n;
          hdr_have_ += n;
          if (hdr_have_ < want) return ParseStatus::need_more;
        }
        hdr_have_ = 0;
        len_ = load_be32(hdr_);
        vnet_len_ = vnet_ ? load_be32(hdr_ + 4) : 0;
        if (len_ > max_) {
          state_ = State::dead;
          p = end;
          return ParseStatus::oversize;
        }
        if (vnet_len_ > len_) {
          state_ = State::dead;
          p = end;
          return ParseStatus::bad_vnet_len;
        }
        if (len_ == 0) return ParseStatus::empty;
        have_ = 0;
        state_ = State::wait_buffer;
        return ParseStatus::need_buffer;
      }
      case State::wait_buffer:
        if (buf_ == nullptr) return ParseStatus::need_buffer;
        state_ = State::body;
        [[fallthrough]];
      case State::body: {
        const uint32_t n =
            static_cast<uint32_t>(std::min<size_t>(len_ - have_, static_cast<size_t>(end - p)));
        std::memcpy(buf_ + have_, p, n);
        p += n;
        have_ += n;
        if (have_ < len_) return ParseStatus::need_more;
        state_ = State::header;
        buf_ = nullptr;
        return ParseStatus::frame;
      }
    }
  }
}

}  // namespace lockstep::chardev
