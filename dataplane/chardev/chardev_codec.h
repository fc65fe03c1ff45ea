// QEMU's packet chardev framing, as filter-mirror, filter-redirector and colo-compare
// write and read it (QEMU net/net.c net_fill_rstate, colo-compare _compare_chr_send):
//
//   [be32 len][be32 vnet_hdr_len, only with vnet_hdr_support=on][len bytes]
//
// `len` counts everything after the header words: the virtio-net header (vnet_hdr_len
// bytes) and then the Ethernet frame. QEMU's reader accepts len <= NET_BUFSIZE
// (4096 + 65536 = 69,632); a longer frame ends that connection.
//
// ChardevParser is incremental and writes each frame body straight into a buffer the
// caller supplies (one copy from the socket's staging buffer, none in between); bytes
// may arrive split anywhere. Pure: no I/O, no clock, no allocation.
#pragma once

#include <cstddef>
#include <cstdint>

namespace lockstep::chardev {

// QEMU's NET_BUFSIZE: the largest `len` a chardev frame may carry.
inline constexpr uint32_t kMaxFrameLen = 4096 + 65536;
// The header words in front of a frame.
inline constexpr size_t kMaxHeaderLen = 8;

inline size_t header_len(bool vnet_hdr) { return vnet_hdr ? 8 : 4; }

// Writes the header for a frame of `len` bytes (vnet header included) into out;
// returns its length (4, or 8 with vnet_hdr).
size_t encode_header(uint8_t* out, uint32_t len, bool vnet_hdr, uint32_t vnet_hdr_len);

enum class ParseStatus : uint8_t {
  frame,         // a whole frame is in the buffer given by set_buffer()
  need_more,     // every input byte consumed; wait for more
  need_buffer,   // a header was read: call set_buffer() with body_len() bytes of room
  empty,         // a frame with len 0 (nothing to compare or send): skipped, count it
  oversize,      // len > the bound: the reader is dead, close the connection
  bad_vnet_len,  // vnet_hdr_len > len: the framing is inconsistent, close the connection
};

class ChardevParser {
 public:
  explicit ChardevParser(bool vnet_hdr, uint32_t max_len = kMaxFrameLen)
      : vnet_(vnet_hdr), max_(max_len) {}

  // Consumes bytes from [p, end), advancing p, until a frame completes, a buffer is
  // needed, the input runs out or an error kills the reader.
  ParseStatus step(const uint8_t*& p, const uint8_t* end);

  // Valid after need_buffer until the frame completes.
  uint32_t body_len() const { return len_; }
  uint32_t vnet_hdr_len() const { return vnet_len_; }
  void set_buffer(uint8_t* buf) { buf_ = buf; }
  // The buffer being filled (null between frames): its owner frees it on reset.
  uint8_t* buffer() const { return buf_; }
  // True between need_buffer and frame: part of a body may sit in buffer().
  bool in_body() const { return state_ == State::body; }
  bool dead() const { return state_ == State::dead; }
  // A fresh connection: forget any partial frame (the caller frees buffer() first).
  void reset();

 private:
  enum class State : uint8_t { header, wait_buffer, body, dead };
  bool vnet_;
  uint32_t max_;
  State state_ = State::header;
  uint8_t hdr_[kMaxHeaderLen]{};
  uint32_t hdr_have_ = 0;
  uint32_t len_ = 0, vnet_len_ = 0, have_ = 0;
  uint8_t* buf_ = nullptr;
};

}  // namespace lockstep::chardev
