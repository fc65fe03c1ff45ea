// libFuzzer target for the control-plane codecs: the native checkpointer protocol, the
// QEMU notify_dev dialect (with and without the vnet_hdr_len word), QMP lines fed through
// the qmp link's session, and the bounded JSON parser of the ctrl socket. Bytes are fed split at a point taken from the input, so
// incremental decoding is exercised; every decoder must stay within its bound and
// never crash. Build with -Dfuzz=true (clang): see tests/fuzz/meson.build.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "ctrl/json_limits.h"
#include "ctrl/native_codec.h"
#include "ctrl/notify_codec.h"
#include "ctrl/qmp_codec.h"
#include "ctrl/qmp_session.h"

using namespace lockstep::ctrl;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  size_t cut = data[0] % (size + 1);
  const uint8_t* body = data + 1;
  size_t n = size - 1;
  cut = cut > n ? n : cut;

  NativeDecoder native(4096);
  NotifyDecoder notify(false, 4096), notify_vnet(true, 4096);
  native.push(body, cut);
  notify.push(body, cut);
  notify_vnet.push(body, cut);
  NativeMessage m;
  NotifyMessage q;
  for (int i = 0; i < 64 && native.next(m) != NativeStatus::need_more && !native.dead(); ++i) {
  }
  for (int i = 0; i < 64 && notify.next(q) != NotifyStatus::need_more && !notify.dead(); ++i) {
  }
  native.push(body + cut, n - cut);
  notify.push(body + cut, n - cut);
  notify_vnet.push(body, n);
  for (int i = 0; i < 1024 && native.next(m) != NativeStatus::need_more && !native.dead(); ++i) {
    if (m.type == NativeType::checkpoint_done) (void)encode_native(m);
  }
  for (int i = 0; i < 1024 && notify.next(q) != NotifyStatus::need_more && !notify.dead(); ++i) {
  }
  for (int i = 0; i < 1024 && notify_vnet.next(q) != NotifyStatus::need_more && !notify_vnet.dead();
       ++i) {
  }

  // QMP: lines in two pieces, each message through a session (as QEMU's would be).
  QmpDecoder qmp(4096);
  QmpSession session(1000, 10);
  std::vector<QmpSession::Output> outs;
  session.reset(0);
  qmp.push(body, cut);
  QmpMessage qm;
  uint64_t t = 0;
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 1024; ++i) {
      QmpStatus st = qmp.next(qm);
      if (st == QmpStatus::need_more || st == QmpStatus::oversize) break;
      if (st == QmpStatus::message) session.on_message(qm, ++t, outs);
      if (i % 7 == 0) session.request_checkpoint(t, outs);
      session.tick(t, outs);
      outs.clear();
    }
    qmp.push(body + cut, n - cut);
  }
  (void)session.status_json().dump();

  // The whole input as one payload and as one ctrl request line.
  std::string_view text(reinterpret_cast<const char*>(body), n);
  std::string error;
  if (decode_native_payload(text, m, error)) {
    // Re-encoding whatever was accepted must work (invalid UTF-8 is replaced, not thrown).
    NativeMessage back;
    std::string again;
    (void)decode_native_payload(native_json(m), back, again);
  }
  Json j;
  (void)parse_json_bounded(text, 32, j, error);
  return 0;
}
