// QEMU/Xen colo-compare `notify_dev` protocol, byte for byte (docs/design.md §7;
// QEMU net/colo-compare.c, Xen tools/libxl/libxl_colo_proxy.c):
//
//   checkpointer -> compare  "COLO_USERSPACE_PROXY_INIT"  hello
//   compare -> checkpointer  "COLO_COMPARE_GET_XEN_INIT"  hello reply
//   compare -> checkpointer  "DO_CHECKPOINT"              please checkpoint
//   checkpointer -> compare  "COLO_CHECKPOINT"            checkpoint done
//
// Framing: be32 length, then the ASCII payload (no NUL). Messages INTO compare carry an
// extra be32 vnet_hdr_len after the length when vnet_hdr_support is on; messages out of
// compare never do. Payloads match by exact length. Pure: no I/O, no clock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "ctrl/frame_reader.h"

namespace lockstep::ctrl {

enum class NotifyMessage : uint8_t {
  proxy_init,       // COLO_USERSPACE_PROXY_INIT
  get_xen_init,     // COLO_COMPARE_GET_XEN_INIT
  do_checkpoint,    // DO_CHECKPOINT
  colo_checkpoint,  // COLO_CHECKPOINT
};

std::string_view notify_text(NotifyMessage m);

// QEMU's NET_BUFSIZE: the largest frame its reader accepts.
inline constexpr size_t kNotifyMaxPayload = 69632;

// Encodes one message. `vnet_hdr` adds the be32 vnet_hdr_len word (value 0), which only
// messages into compare carry (proxy_init and colo_checkpoint when vnet_hdr_support=on).
std::string encode_notify(NotifyMessage m, bool vnet_hdr = false);

enum class NotifyStatus : uint8_t {
  message,    // out holds a known message
  need_more,  // wait for more bytes
  unknown,    // a well-framed payload that is no known message: count it and go on
  oversize,   // a frame beyond the bound: the reader is dead, close the connection
};

class NotifyDecoder {
 public:
  // `vnet_hdr`: the incoming frames carry the vnet_hdr_len word (compare side with
  // vnet_hdr_support=on). A checkpointer reading compare's messages passes false.
  explicit NotifyDecoder(bool vnet_hdr = false, size_t max_payload = kNotifyMaxPayload)
      : reader_(max_payload, vnet_hdr) {}

  void push(const void* data, size_t len) { reader_.push(data, len); }
  NotifyStatus next(NotifyMessage& out);
  // The payload of the last `unknown` frame, for logs (valid until the next call).
  std::string_view last_payload() const { return last_; }
  bool dead() const { return reader_.dead(); }

 private:
  FrameReader reader_;
  std::string_view last_;
};

}  // namespace lockstep::ctrl
