#include "ctrl/json_limits.h"

namespace lockstep::ctrl {

bool json_depth_ok(std::string_view text, size_t max_depth) {
  size_t depth = 0;
  bool in_string = false, escape = false;
  for (char c : text) {
    if (in_string) {
      if (escape) {
        escape = false;
      } else if (c == '\\') {
        escape = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return false;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return true;
}

bool parse_json_bounded(std::string_view text, size_t max_depth, Json& out, std::string& error) {
  if (!json_depth_ok(text, max_depth)) {
    error = "JSON nested deeper than " + std::to_string(max_depth);
    return false;
  }
  out = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (out.is_discarded()) {
    error = "malformed JSON";
    return false;
  }
  return true;
}

}  // namespace lockstep::ctrl
