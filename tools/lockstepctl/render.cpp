#include "render.h"

#include <algorithm>
#include <vector>

namespace lockstep::ctl {

using ctrl::Json;

namespace {

std::string scalar(const Json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "-";
  return v.dump(-1, ' ', false, Json::error_handler_t::replace);
}

bool is_table(const Json& a) {
  if (!a.is_array() || a.empty()) return false;
  return std::all_of(a.begin(), a.end(), [](const Json& e) { return e.is_object(); });
}

void table(const Json& a, const std::string& indent, std::string& out) {
  std::vector<std::string> cols;
  for (const auto& row : a) {
    for (auto it = row.begin(); it != row.end(); ++it) {
      if (std::find(cols.begin(), cols.end(), it.key()) == cols.end()) cols.push_back(it.key());
    }
  }
  // Identity columns first (nlohmann objects iterate keys in sorted order).
  static const char* const kFirst[] = {"command", "usage", "flow", "peer", "event", "state"};
  std::stable_sort(cols.begin(), cols.end(), [](const std::string& x, const std::string& y) {
    auto rank = [](const std::string& c) {
      for (size_t i = 0; i < std::size(kFirst); ++i) {
        if (c == kFirst[i]) return i;
      }
      return std::size(kFirst);
    };
    return rank(x) < rank(y);
  });
  std::vector<std::vector<std::string>> cells;
  std::vector<size_t> width;
  for (const auto& c : cols) width.push_back(c.size());
  for (const auto& row : a) {
    std::vector<std::string> r;
    for (size_t i = 0; i < cols.size(); ++i) {
      auto it = row.find(cols[i]);
      std::string s = it == row.end() ? "" : scalar(*it);
      if (s.size() > 60) s = s.substr(0, 57) + "...";
      width[i] = std::max(width[i], s.size());
      r.push_back(std::move(s));
    }
    cells.push_back(std::move(r));
  }
  auto line = [&](const std::vector<std::string>& r, bool upper) {
    out += indent;
    for (size_t i = 0; i < r.size(); ++i) {
      std::string s = r[i];
      if (upper) std::transform(s.begin(), s.end(), s.begin(), ::toupper);
      out += s;
      if (i + 1 < r.size()) out += std::string(width[i] - r[i].size() + 2, ' ');
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    out += '\n';
  };
  line(cols, true);
  for (const auto& r : cells) line(r, false);
}

void render(const Json& v, const std::string& indent, std::string& out) {
  if (v.is_object()) {
    for (auto it = v.begin(); it != v.end(); ++it) {
      const Json& x = it.value();
      if (x.is_object() && !x.empty()) {
        out += indent + it.key() + ":\n";
        render(x, indent + "  ", out);
      } else if (is_table(x)) {
        out += indent + it.key() + ":\n";
        table(x, indent + "  ", out);
      } else if (x.is_array()) {
        std::string items;
        for (const auto& e : x) items += (items.empty() ? "" : ", ") + scalar(e);
        out += indent + it.key() + ": " + (x.empty() ? "-" : items) + "\n";
      } else {
        out += indent + it.key() + ": " + scalar(x) + "\n";
      }
    }
  } else if (is_table(v)) {
    table(v, indent, out);
  } else if (v.is_array()) {
    for (const auto& e : v) out += indent + scalar(e) + "\n";
  } else {
    out += indent + scalar(v) + "\n";
  }
}

}  // namespace

std::string render_human(const std::string& command, const Json& result) {
  // Commands whose answer carries ready-made text (Prometheus, `tc -s`-style QoS).
  if ((command == "metrics" || command == "qos show" || command == "events" ||
       command == "explain") &&
      result.is_object() &&
      result.contains("text") && result["text"].is_string()) {
    return result["text"].get<std::string>();
  }
  if (command == "help" && result.is_object() && result.contains("usage")) {
    return "usage: " + scalar(result["usage"]) + "\n" + scalar(result["help"]) + "\n" +
           (result.value("mutating", false) ? "(changes state)\n" : "");
  }
  std::string out;
  if (result.is_object() && result.empty()) return "ok\n";
  render(result, "", out);
  return out;
}

}  // namespace lockstep::ctl
