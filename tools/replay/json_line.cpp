#include "tools/replay/json_line.h"

namespace lockstep::replay {

void append_json_string(std::string& out, std::string_view v) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  for (const char ch : v) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += "\\u00";
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 15]);
        } else {
          out.push_back(ch);
        }
    }
  }
  out.push_back('"');
}

std::string format_us(uint64_t ns) {
  std::string s = std::to_string(ns / 1000);
  uint64_t frac = ns % 1000;
  if (frac != 0) {
    char digits[4] = {static_cast<char>('0' + frac / 100), static_cast<char>('0' + frac / 10 % 10),
                      static_cast<char>('0' + frac % 10), 0};
    std::string f(digits);
    while (f.back() == '0') f.pop_back();
    s += '.';
    s += f;
  }
  return s;
}

void JsonLine::key(std::string_view k) {
  if (s_.size() > 1) s_.push_back(',');
  append_json_string(s_, k);
  s_.push_back(':');
}

JsonLine& JsonLine::num(std::string_view k, uint64_t v) {
  key(k);
  s_ += std::to_string(v);
  return *this;
}

JsonLine& JsonLine::time_us(std::string_view k, uint64_t ns) {
  key(k);
  s_ += format_us(ns);
  return *this;
}

JsonLine& JsonLine::str(std::string_view k, std::string_view v) {
  key(k);
  append_json_string(s_, v);
  return *this;
}

JsonLine& JsonLine::raw(std::string_view k, std::string_view json) {
  key(k);
  s_ += json;
  return *this;
}

}  // namespace lockstep::replay
