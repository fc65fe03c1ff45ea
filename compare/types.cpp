#include <cstdio>
#include "compare/types.h"

namespace lockstep {

namespace {
template <size_t N>
std::string_view name_at(const std::string_view (&names)[N], unsigned i) {
  return i < N ? names[i] : std::string_view("unknown");
}
}  // namespace

std::string_view to_string(Side s) {
  switch (s) {
    case Side::ingress: return "ingress";
    case Side::pvm: return "pvm";
    case Side::svm: return "svm";
  }
  return "unknown";
}

std::string_view to_string(Mode m) {
  static constexpr std::string_view names[] = {
#define LOCKSTEP_X(name, help) #name,
      LOCKSTEP_MODES(LOCKSTEP_X)
#undef LOCKSTEP_X
  };
  return name_at(names, static_cast<unsigned>(m));
}

bool mode_from_string(std::string_view s, Mode& out) {
#define LOCKSTEP_X(name, help) \
  if (s == #name) {            \
    out = Mode::name;          \
    return true;               \
  }
  LOCKSTEP_MODES(LOCKSTEP_X)
#undef LOCKSTEP_X
  return false;
}

std::string_view to_string(DropReason r) {
  static constexpr std::string_view names[] = {
#define LOCKSTEP_X(name, help) #name,
      LOCKSTEP_DROP_REASONS(LOCKSTEP_X)
#undef LOCKSTEP_X
  };
  return name_at(names, static_cast<unsigned>(r));
}

std::string_view to_string(ReleaseReason r) {
  static constexpr std::string_view names[] = {
#define LOCKSTEP_X(name, help) #name,
      LOCKSTEP_RELEASE_REASONS(LOCKSTEP_X)
#undef LOCKSTEP_X
  };
  return name_at(names, static_cast<unsigned>(r));
}

std::string_view to_string(CheckpointReason r) {
  static constexpr std::string_view names[] = {
#define LOCKSTEP_X(name, help) #name,
      LOCKSTEP_CHECKPOINT_REASONS(LOCKSTEP_X)
#undef LOCKSTEP_X
  };
  return name_at(names, static_cast<unsigned>(r));
}

std::string to_hex(const uint8_t* p, size_t n) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * n);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(digits[p[i] >> 4]);
    out.push_back(digits[p[i] & 15]);
  }
  return out;
}

std::string to_printable(const uint8_t* p, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    const uint8_t c = p[i];
    if (c == '\r') {
      out += "\\r";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\\') {
      out += "\\\\";
    } else if (c >= 0x20 && c < 0x7f) {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}

}  // namespace lockstep
