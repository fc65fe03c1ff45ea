// The native checkpointer protocol (docs/checkpointer-protocol.md): be32 length-prefixed
// JSON objects, each with a "type". Version 1 messages:
//   hello               {version, role, name, capabilities[], epoch}
//   checkpoint_request  {epoch, reason, flow?, attempt}
//   checkpoint_begin    {epoch}
//   checkpoint_done     {epoch}
//   heartbeat           {seq, time_ns, name?}
//   failover            {survivor: "primary"|"secondary", cause}
//   error               {message}
// Unknown fields are ignored (forward compatible); an unknown type is a counted error.
// Pure: no I/O, no clock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "compare/types.h"
#include "ctrl/frame_reader.h"

namespace lockstep::ctrl {

inline constexpr uint32_t kNativeVersion = 1;
inline constexpr size_t kNativeMaxPayload = 64 * 1024;
inline constexpr size_t kNativeMaxDepth = 8;

enum class NativeType : uint8_t {
  hello,
  checkpoint_request,
  checkpoint_begin,
  checkpoint_done,
  heartbeat,
  failover,
  error,
};
std::string_view to_string(NativeType t);

std::string_view to_string_survivor(Survivor s);
bool survivor_from_string(std::string_view s, Survivor& out);

struct NativeMessage {
  NativeType type = NativeType::heartbeat;
  // hello
  uint32_t version = kNativeVersion;
  std::string role;  // "lockstepd", "checkpointer", "peer"
  std::string name;
  std::vector<std::string> capabilities;
  // checkpoint_*; in hello, the sender's current epoch (lockstepd) or 0
  uint64_t epoch = 0;
  std::string reason;  // a CheckpointReason name (checkpoint_request)
  std::string flow;    // to_string(FlowKey), empty when none
  uint32_t attempt = 1;
  // heartbeat
  uint64_t seq = 0;
  uint64_t time_ns = 0;
  // failover
  Survivor survivor = Survivor::primary;
  std::string cause;
  // error
  std::string message;

  static NativeMessage hello(std::string role, std::string name,
                             std::vector<std::string> capabilities);
  static NativeMessage request(const CheckpointRequest& r, uint32_t attempt);
  static NativeMessage begin(uint64_t epoch);
  static NativeMessage done(uint64_t epoch);
  static NativeMessage heartbeat(uint64_t seq, uint64_t time_ns);
  static NativeMessage failover(Survivor s, std::string cause);
  static NativeMessage error(std::string message);
};

// The JSON text of a message (no framing), and the framed bytes.
std::string native_json(const NativeMessage& m);
std::string encode_native(const NativeMessage& m);

enum class NativeStatus : uint8_t {
  message,    // out holds a message
  need_more,  // wait for more bytes
  invalid,    // a well-framed payload that is not a valid message: count, go on
  oversize,   // frame beyond the bound: the decoder is dead, close the connection
};

class NativeDecoder {
 public:
  explicit NativeDecoder(size_t max_payload = kNativeMaxPayload) : reader_(max_payload, false) {}

  void push(const void* data, size_t len) { reader_.push(data, len); }
  NativeStatus next(NativeMessage& out);
  // Why the last `invalid` happened.
  const std::string& last_error() const { return error_; }
  bool dead() const { return reader_.dead(); }

 private:
  FrameReader reader_;
  std::string error_;
};

// Validates one payload (exposed for the fuzzer and tests).
bool decode_native_payload(std::string_view payload, NativeMessage& out, std::string& error);

}  // namespace lockstep::ctrl
