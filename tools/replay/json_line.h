// One JSON object on one line, built field by field in the order given, so the event
// file is byte for byte the same on every run. Numbers are integers, or microsecond
// times written exactly from nanoseconds ("12.345" for 12345 ns, "12" for 12000 ns).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace lockstep::replay {

class JsonLine {
 public:
  JsonLine() { s_.push_back('{'); }

  JsonLine& num(std::string_view key, uint64_t v);
  JsonLine& time_us(std::string_view key, uint64_t ns);
  JsonLine& str(std::string_view key, std::string_view v);
  // Raw JSON value (an object built by another JsonLine, via object()).
  JsonLine& raw(std::string_view key, std::string_view json);

  // The object without a newline, for nesting.
  std::string object() const { return s_ + "}"; }
  // The object and a newline, for a .jsonl file.
  std::string line() const { return s_ + "}\n"; }

 private:
  void key(std::string_view k);
  std::string s_;
};

void append_json_string(std::string& out, std::string_view v);
std::string format_us(uint64_t ns);

}  // namespace lockstep::replay
