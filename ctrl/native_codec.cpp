#include "ctrl/native_codec.h"

#include "compare/flow_key.h"
#include "ctrl/json_limits.h"

namespace lockstep::ctrl {

namespace {

constexpr std::string_view kTypeNames[] = {
    "hello", "checkpoint_request", "checkpoint_begin", "checkpoint_done",
    "heartbeat", "failover", "error",
};

bool type_from_string(std::string_view s, NativeType& out) {
  for (unsigned i = 0; i < std::size(kTypeNames); ++i) {
    if (s == kTypeNames[i]) {
      out = static_cast<NativeType>(i);
      return true;
    }
  }
  return false;
}

// Reads an unsigned integer field; absent or wrong type is an error.
bool get_u64(const Json& j, const char* key, uint64_t& out, std::string& error) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_unsigned()) {
    error = std::string("field '") + key + "' missing or not an unsigned integer";
    return false;
  }
  out = it->get<uint64_t>();
  return true;
}

bool get_str(const Json& j, const char* key, std::string& out, std::string& error,
             bool required, size_t max_len = 1024) {
  auto it = j.find(key);
  if (it == j.end()) {
    if (!required) return true;
    error = std::string("field '") + key + "' missing";
    return false;
  }
  if (!it->is_string() || it->get_ref<const std::string&>().size() > max_len) {
    error = std::string("field '") + key + "' not a string of at most " +
            std::to_string(max_len) + " bytes";
    return false;
  }
  out = it->get<std::string>();
  return true;
}

}  // namespace

std::string_view to_string(NativeType t) { return kTypeNames[static_cast<unsigned>(t)]; }

std::string_view to_string_survivor(Survivor s) {
  return s == Survivor::primary ? "primary" : "secondary";
}

bool survivor_from_string(std::string_view s, Survivor& out) {
  if (s == "primary" || s == "pvm") {
    out = Survivor::primary;
    return true;
  }
  if (s == "secondary" || s == "svm") {
    out = Survivor::secondary;
    return true;
  }
  return false;
}

NativeMessage NativeMessage::hello(std::string role, std::string name,
                                   std::vector<std::string> capabilities) {
  NativeMessage m;
  m.type = NativeType::hello;
  m.role = std::move(role);
  m.name = std::move(name);
  m.capabilities = std::move(capabilities);
  return m;
}

NativeMessage NativeMessage::request(const CheckpointRequest& r, uint32_t attempt) {
  NativeMessage m;
  m.type = NativeType::checkpoint_request;
  m.epoch = r.epoch;
  m.reason = std::string(to_string(r.reason));
  if (r.has_flow) m.flow = to_string(r.flow);
  m.attempt = attempt;
  return m;
}

NativeMessage NativeMessage::begin(uint64_t epoch) {
  NativeMessage m;
  m.type = NativeType::checkpoint_begin;
  m.epoch = epoch;
  return m;
}

NativeMessage NativeMessage::done(uint64_t epoch) {
  NativeMessage m;
  m.type = NativeType::checkpoint_done;
  m.epoch = epoch;
  return m;
}

NativeMessage NativeMessage::heartbeat(uint64_t seq, uint64_t time_ns) {
  NativeMessage m;
  m.type = NativeType::heartbeat;
  m.seq = seq;
  m.time_ns = time_ns;
  return m;
}

NativeMessage NativeMessage::failover(Survivor s, std::string cause) {
  NativeMessage m;
  m.type = NativeType::failover;
  m.survivor = s;
  m.cause = std::move(cause);
  return m;
}

NativeMessage NativeMessage::error(std::string message) {
  NativeMessage m;
  m.type = NativeType::error;
  m.message = std::move(message);
  return m;
}

std::string native_json(const NativeMessage& m) {
  Json j;
  j["type"] = to_string(m.type);
  switch (m.type) {
    case NativeType::hello:
      j["version"] = m.version;
      j["role"] = m.role;
      j["name"] = m.name;
      j["capabilities"] = m.capabilities;
      j["epoch"] = m.epoch;
      break;
    case NativeType::checkpoint_request:
      j["epoch"] = m.epoch;
      j["reason"] = m.reason;
      if (!m.flow.empty()) j["flow"] = m.flow;
      j["attempt"] = m.attempt;
      break;
    case NativeType::checkpoint_begin:
    case NativeType::checkpoint_done:
      j["epoch"] = m.epoch;
      break;
    case NativeType::heartbeat:
      j["seq"] = m.seq;
      j["time_ns"] = m.time_ns;
      if (!m.name.empty()) j["name"] = m.name;  // peer heartbeats over UDP name the sender
      break;
    case NativeType::failover:
      j["survivor"] = to_string_survivor(m.survivor);
      j["cause"] = m.cause;
      break;
    case NativeType::error:
      j["message"] = m.message;
      break;
  }
  // Invalid UTF-8 in a name is replaced, never thrown on.
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string encode_native(const NativeMessage& m) {
  std::string body = native_json(m);
  std::string out;
  out.reserve(4 + body.size());
  append_be32(out, static_cast<uint32_t>(body.size()));
  out += body;
  return out;
}

bool decode_native_payload(std::string_view payload, NativeMessage& out, std::string& error) {
  Json j;
  if (!parse_json_bounded(payload, kNativeMaxDepth, j, error)) return false;
  if (!j.is_object()) {
    error = "message is not a JSON object";
    return false;
  }
  std::string type;
  if (!get_str(j, "type", type, error, true, 64)) return false;
  out = NativeMessage{};
  if (!type_from_string(type, out.type)) {
    error = "unknown message type '" + type + "'";
    return false;
  }
  switch (out.type) {
    case NativeType::hello: {
      uint64_t v = 0;
      if (!get_u64(j, "version", v, error)) return false;
      if (v > UINT32_MAX) {
        error = "field 'version' out of range";
        return false;
      }
      out.version = static_cast<uint32_t>(v);
      if (j.contains("epoch") && !get_u64(j, "epoch", out.epoch, error)) return false;
      if (!get_str(j, "role", out.role, error, false, 64)) return false;
      if (!get_str(j, "name", out.name, error, false, 256)) return false;
      auto caps = j.find("capabilities");
      if (caps != j.end()) {
        if (!caps->is_array() || caps->size() > 64) {
          error = "field 'capabilities' not an array of at most 64 strings";
          return false;
        }
        for (const auto& c : *caps) {
          if (!c.is_string() || c.get_ref<const std::string&>().size() > 64) {
            error = "field 'capabilities' holds a non-string or a string over 64 bytes";
            return false;
          }
          out.capabilities.push_back(c.get<std::string>());
        }
      }
      return true;
    }
    case NativeType::checkpoint_request: {
      if (!get_u64(j, "epoch", out.epoch, error)) return false;
      if (!get_str(j, "reason", out.reason, error, true, 64)) return false;
      if (!get_str(j, "flow", out.flow, error, false, 256)) return false;
      uint64_t attempt = 1;
      if (j.contains("attempt") && !get_u64(j, "attempt", attempt, error)) return false;
      out.attempt = attempt > UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(attempt);
      return true;
    }
    case NativeType::checkpoint_begin:
    case NativeType::checkpoint_done:
      return get_u64(j, "epoch", out.epoch, error);
    case NativeType::heartbeat:
      if (!get_u64(j, "seq", out.seq, error)) return false;
      if (j.contains("time_ns") && !get_u64(j, "time_ns", out.time_ns, error)) return false;
      return get_str(j, "name", out.name, error, false, 256);
    case NativeType::failover: {
      std::string s;
      if (!get_str(j, "survivor", s, error, true, 16)) return false;
      if (!survivor_from_string(s, out.survivor)) {
        error = "field 'survivor' must be primary or secondary";
        return false;
      }
      return get_str(j, "cause", out.cause, error, false, 256);
    }
    case NativeType::error:
      return get_str(j, "message", out.message, error, false, 1024);
  }
  return false;
}

NativeStatus NativeDecoder::next(NativeMessage& out) {
  std::string_view payload;
  switch (reader_.next(payload)) {
    case FrameStatus::need_more: return NativeStatus::need_more;
    case FrameStatus::oversize:
      error_ = "frame longer than the bound";
      return NativeStatus::oversize;
    case FrameStatus::frame: break;
  }
  if (!decode_native_payload(payload, out, error_)) return NativeStatus::invalid;
  return NativeStatus::message;
}

}  // namespace lockstep::ctrl
