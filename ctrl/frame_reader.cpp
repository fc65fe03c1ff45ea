#include "ctrl/frame_reader.h"

namespace lockstep::ctrl {

FrameStatus FrameReader::next(std::string_view& payload) {
  if (dead_) return FrameStatus::oversize;
  // Compact consumed bytes once they dominate the buffer (amortised O(1) per byte).
  if (pos_ > 0 && pos_ * 2 >= buf_.size()) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  size_t avail = buf_.size() - pos_;
  size_t header = extra_ ? 8 : 4;
  if (avail < 4) return FrameStatus::need_more;
  uint32_t len = load_be32(buf_.data() + pos_);
  if (len > max_) {
    dead_ = true;
    buf_.clear();
    pos_ = 0;
    return FrameStatus::oversize;
  }
  if (avail < header + len) return FrameStatus::need_more;
  extra_word_ = extra_ ? load_be32(buf_.data() + pos_ + 4) : 0;
  payload = std::string_view(buf_.data() + pos_ + header, len);
  pos_ += header + len;
  return FrameStatus::frame;
}

}  // namespace lockstep::ctrl
