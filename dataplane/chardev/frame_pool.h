// Fixed pool of frame buffers for the chardev runner, sized once at start: `small`
// buffers for ordinary frames and `jumbo` buffers for frames up to QEMU's 69,632-byte
// bound (GSO/GRO frames). A frame lives in one buffer from the socket read until the
// engine names its handle and, for a release, until the frame is written to outdev.
// An empty class is a counted wait (the reader stops reading), never a drop or a
// reallocation. Pure; owned by one thread.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "dataplane/chardev/chardev_codec.h"

namespace lockstep::chardev {

inline constexpr uint32_t kNoFrame = UINT32_MAX;

class FramePool {
 public:
  static constexpr uint32_t kSmallSize = 2048;
  static constexpr uint32_t kJumboSize = kMaxFrameLen;
  // Buffers sit one cache line further apart than their size: at a stride of 2 KiB
  // every frame's first line would fall in one of two sets of a 4 KiB-way L1 cache
  // (and a few of L2), and the frames in flight would evict each other's headers.
  static constexpr uint32_t kSmallStride = kSmallSize + 64;
  static constexpr uint32_t kJumboStride = kJumboSize + 64;

  FramePool(uint32_t small_count, uint32_t jumbo_count);

  // A buffer with room for `len` bytes, or kNoFrame when its class is empty.
  uint32_t alloc(uint32_t len);
  void free(uint32_t h);

  uint8_t* data(uint32_t h) { return h < small_count_ ? small_.get() + size_t{h} * kSmallStride
                                                      : jumbo_.get() + size_t{h - small_count_} * kJumboStride; }
  // Frame metadata kept beside the buffer: bytes stored and the vnet header in front.
  uint32_t& len(uint32_t h) { return len_[h]; }
  uint32_t& vnet_len(uint32_t h) { return vnet_len_[h]; }

  uint32_t capacity() const { return small_count_ + jumbo_count_; }
  uint32_t in_use() const { return capacity() - static_cast<uint32_t>(free_small_.size() + free_jumbo_.size()); }
  bool can_alloc(uint32_t len) const { return len <= kSmallSize ? !free_small_.empty() || !free_jumbo_.empty() : !free_jumbo_.empty(); }
  uint64_t waits() const { return waits_; }
  uint64_t jumbo_allocs() const { return jumbo_allocs_; }

 private:
  uint32_t small_count_, jumbo_count_;
  std::unique_ptr<uint8_t[]> small_, jumbo_;
  std::vector<uint32_t> len_, vnet_len_;
  std::vector<uint32_t> free_small_, free_jumbo_;  // stacks of free handles
  uint64_t waits_ = 0, jumbo_allocs_ = 0;
};

// FIFO of handles with a fixed capacity (the pool's: a handle is in it at most once).
class HandleRing {
 public:
  explicit HandleRing(uint32_t capacity);
  bool push(uint32_t h);
  uint32_t front() const { return slots_[head_ & mask_]; }
  uint32_t at(uint32_t i) const { return slots_[(head_ + i) & mask_]; }
  void pop() { ++head_; }
  uint32_t size() const { return tail_ - head_; }
  bool empty() const { return head_ == tail_; }

 private:
  std::vector<uint32_t> slots_;
  uint32_t mask_;
  uint32_t head_ = 0, tail_ = 0;
};

}  // namespace lockstep::chardev
