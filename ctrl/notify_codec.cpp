#include "ctrl/notify_codec.h"

namespace lockstep::ctrl {

namespace {
constexpr std::string_view kTexts[] = {
    "COLO_USERSPACE_PROXY_INIT",
    "COLO_COMPARE_GET_XEN_INIT",
    "DO_CHECKPOINT",
    "COLO_CHECKPOINT",
};
}  // namespace

std::string_view notify_text(NotifyMessage m) { return kTexts[static_cast<unsigned>(m)]; }

std::string encode_notify(NotifyMessage m, bool vnet_hdr) {
  std::string_view text = notify_text(m);
  std::string out;
  out.reserve(8 + text.size());
  append_be32(out, static_cast<uint32_t>(text.size()));
  if (vnet_hdr) append_be32(out, 0);
  out.append(text);
  return out;
}

NotifyStatus NotifyDecoder::next(NotifyMessage& out) {
  std::string_view payload;
  switch (reader_.next(payload)) {
    case FrameStatus::need_more: return NotifyStatus::need_more;
    case FrameStatus::oversize: return NotifyStatus::oversize;
    case FrameStatus::frame: break;
  }
  last_ = payload;
  for (unsigned i = 0; i < std::size(kTexts); ++i) {
    if (payload == kTexts[i]) {
      out = static_cast<NotifyMessage>(i);
      return NotifyStatus::message;
    }
  }
  return NotifyStatus::unknown;
}

}  // namespace lockstep::ctrl
