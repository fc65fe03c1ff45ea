#include "compare/settings.h"

#include <charconv>

namespace lockstep {

namespace {

bool in_choices(std::string_view choices, std::string_view v) {
  size_t pos = 0;
  while (pos <= choices.size()) {
    size_t bar = choices.find('|', pos);
    if (bar == std::string_view::npos) bar = choices.size();
    if (choices.substr(pos, bar - pos) == v) return true;
    pos = bar + 1;
  }
  return false;
}

bool parse_bool(std::string_view v, bool& out) {
  if (v == "true" || v == "1" || v == "yes" || v == "on") {
    out = true;
    return true;
  }
  if (v == "false" || v == "0" || v == "no" || v == "off") {
    out = false;
    return true;
  }
  return false;
}

bool parse_u64(std::string_view v, uint64_t& out) {
  if (v.empty()) return false;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  return ec == std::errc() && p == v.data() + v.size();
}

std::string range_text(const SettingInfo& info) {
  switch (info.kind) {
    case SettingKind::u64:
      return "an integer in [" + std::to_string(info.min) + ", " + std::to_string(info.max) + "]";
    case SettingKind::boolean: return "true or false";
    case SettingKind::choice: return "one of " + std::string(info.choices);
    case SettingKind::text: return "text";
  }
  return "";
}

// Assigns a validated textual value to the field of `s` named `name`.
void assign(Settings& s, std::string_view name, std::string_view value) {
#define LOCKSTEP_ASSIGN_u64(field, v) parse_u64(v, s.field)
#define LOCKSTEP_ASSIGN_bool(field, v) parse_bool(v, s.field)
#define LOCKSTEP_ASSIGN_choice(field, v) (s.field = std::string(v), true)
#define LOCKSTEP_ASSIGN_text(field, v) (s.field = std::string(v), true)
#define LOCKSTEP_X(field, kind, mn, mx, def, choices, help) \
  if (name == #field) {                                     \
    (void)LOCKSTEP_ASSIGN_##kind(field, value);             \
    return;                                                 \
  }
  LOCKSTEP_SETTINGS(LOCKSTEP_X)
#undef LOCKSTEP_X
}

std::string to_text(uint64_t v) { return std::to_string(v); }
std::string to_text(bool v) { return v ? "true" : "false"; }
std::string to_text(const std::string& v) { return v; }

}  // namespace

const std::vector<SettingInfo>& settings_table() {
  static const std::vector<SettingInfo> table = {
#define LOCKSTEP_KIND_u64 SettingKind::u64
#define LOCKSTEP_KIND_bool SettingKind::boolean
#define LOCKSTEP_KIND_choice SettingKind::choice
#define LOCKSTEP_KIND_text SettingKind::text
#define LOCKSTEP_X(field, kind, mn, mx, def, choices, help) \
  {#field, LOCKSTEP_KIND_##kind, mn, mx, def, choices, help},
      LOCKSTEP_SETTINGS(LOCKSTEP_X)
#undef LOCKSTEP_X
  };
  return table;
}

const SettingInfo* find_setting(std::string_view name) {
  for (const auto& info : settings_table()) {
    if (info.name == name) return &info;
  }
  return nullptr;
}

Settings Settings::defaults() {
  Settings s;
  for (const auto& info : settings_table()) assign(s, info.name, info.default_value);
  return s;
}

bool Settings::with(std::string_view name, std::string_view value, Settings& out,
                    std::string& error) const {
  const SettingInfo* info = find_setting(name);
  if (!info) {
    error = "unknown setting '" + std::string(name) + "'";
    return false;
  }
  bool ok = true;
  switch (info->kind) {
    case SettingKind::u64: {
      uint64_t v = 0;
      ok = parse_u64(value, v) && v >= info->min && v <= info->max;
      break;
    }
    case SettingKind::boolean: {
      bool v = false;
      ok = parse_bool(value, v);
      break;
    }
    case SettingKind::choice: ok = in_choices(info->choices, value); break;
    case SettingKind::text: ok = value.size() <= 4096; break;
  }
  if (!ok) {
    error = "setting '" + std::string(name) + "': invalid value '" + std::string(value) +
            "', expected " + range_text(*info);
    return false;
  }
  out = *this;
  assign(out, name, value);
  return true;
}

bool Settings::with_all(const std::map<std::string, std::string>& kv, Settings& out,
                        std::string& error) const {
  Settings cur = *this;
  for (const auto& [k, v] : kv) {
    Settings next;
    if (!cur.with(k, v, next, error)) return false;
    cur = std::move(next);
  }
  out = std::move(cur);
  return true;
}

std::string Settings::get(std::string_view name) const {
#define LOCKSTEP_X(field, kind, mn, mx, def, choices, help) \
  if (name == #field) return to_text(field);
  LOCKSTEP_SETTINGS(LOCKSTEP_X)
#undef LOCKSTEP_X
  return "";
}

}  // namespace lockstep
