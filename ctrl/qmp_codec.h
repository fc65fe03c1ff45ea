// QMP, the QEMU Machine Protocol, as lockstepd's `qmp` checkpointer link speaks it
// (docs/qemu-kvm-colo.md): one JSON object per line, in both directions.
//
//   QEMU -> client  {"QMP": {"version": {...}, "capabilities": [...]}}     greeting, once
//   client -> QEMU  {"execute": "qmp_capabilities", "id": 1}              leave negotiation
//   client -> QEMU  {"execute": NAME, "arguments": {...}, "id": N}        a command
//   QEMU -> client  {"return": VALUE, "id": N}                           its success
//   QEMU -> client  {"error": {"class": C, "desc": D}, "id": N}          its failure
//   QEMU -> client  {"event": NAME, "data": {...}, "timestamp": {...}}   asynchronous
//
// QEMU ends each line with "\r\n". Lines are bounded: a longer one kills the reader (the
// link closes the connection and reconnects). A line that is not one of the shapes above
// is `invalid`: counted, skipped, the connection stays. Pure: no I/O, no clock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "ctrl/json_limits.h"

namespace lockstep::ctrl {

inline constexpr size_t kQmpMaxLine = 64 * 1024;
inline constexpr size_t kQmpMaxDepth = 16;

enum class QmpKind : uint8_t { greeting, reply, error, event };
std::string_view to_string(QmpKind k);

struct QmpMessage {
  QmpKind kind = QmpKind::event;
  Json id;              // reply/error: the id we sent (null when QEMU could not read it)
  Json value;           // greeting: the "QMP" object; reply: "return"; event: "data"
  std::string event;    // event name
  std::string error_class, error_desc;
  uint64_t timestamp_us = 0;  // event: QEMU's wall-clock stamp
};

enum class QmpStatus : uint8_t { message, need_more, invalid, oversize };

class QmpDecoder {
 public:
  explicit QmpDecoder(size_t max_line = kQmpMaxLine) : max_(max_line) {}

  void push(const void* data, size_t len);
  // The next complete line, decoded. `invalid`: last_error() says why; go on.
  QmpStatus next(QmpMessage& out);
  const std::string& last_error() const { return error_; }
  bool dead() const { return dead_; }

 private:
  std::string buf_;
  size_t pos_ = 0;
  size_t max_;
  bool dead_ = false;
  std::string error_;
};

// Decodes one line (no newline). False with `error` when it is no QMP message.
bool decode_qmp(std::string_view line, QmpMessage& out, std::string& error);

// {"execute": NAME[, "arguments": ARGS], "id": ID}\n
std::string encode_qmp_command(std::string_view name, const Json& args, uint64_t id);

// "7.2.22 (Debian 1:7.2+dfsg-7)" from a greeting's or query-version's version object.
std::string qmp_version_text(const Json& version);

}  // namespace lockstep::ctrl
