#include "dataplane/chardev/frame_pool.h"

#include <bit>

namespace lockstep::chardev {

FramePool::FramePool(uint32_t small_count, uint32_t jumbo_count)
    : small_count_(small_count),
      jumbo_count_(jumbo_count),
      small_(std::make_unique_for_overwrite<uint8_t[]>(size_t{small_count} * kSmallStride)),
      jumbo_(std::make_unique_for_overwrite<uint8_t[]>(size_t{jumbo_count} * kJumboStride)),
      len_(small_count + jumbo_count, 0),
      vnet_len_(small_count + jumbo_count, 0) {
  free_small_.reserve(small_count);
  free_jumbo_.reserve(jumbo_count);
  // Stacks: pop_back hands out the lowest handles first (warm buffers get reused).
  for (uint32_t i = small_count; i > 0; --i) free_small_.push_back(i - 1);
  for (uint32_t i = jumbo_count; i > 0; --i) free_jumbo_.push_back(small_count + i - 1);
}

uint32_t FramePool::alloc(uint32_t len) {
  if (len <= kSmallSize && !free_small_.empty()) {
    uint32_t h = free_small_.back();
    free_small_.pop_back();
    return h;
  }
  if (len <= kJumboSize && !free_jumbo_.empty()) {
    uint32_t h = free_jumbo_.back();
    free_jumbo_.pop_back();
    ++jumbo_allocs_;
    return h;
  }
  ++waits_;
  return kNoFrame;
}

void FramePool::free(uint32_t h) {
  len_[h] = 0;
  vnet_len_[h] = 0;
  if (h < small_count_) free_small_.push_back(h);
  else free_jumbo_.push_back(h);
}

HandleRing::HandleRing(uint32_t capacity)
    : slots_(std::bit_ceil(std::max<uint32_t>(capacity, 2))),
      mask_(static_cast<uint32_t>(slots_.size()) - 1) {}

bool HandleRing::push(uint32_t h) {
  if (size() == slots_.size()) return false;
  slots_[tail_++ & mask_] = h;
  return true;
}

}  // namespace lockstep::chardev
