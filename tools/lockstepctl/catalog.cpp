#include "catalog.h"

#include <algorithm>
#include <map>
#include <vector>

#include "ctrl/command_registry.h"
#include "ctrl/commands.h"
#include "dataplane/qos/qos_commands.h"

namespace lockstep::ctl {

using ctrl::Json;

namespace {

// Registration needs a QoS backend; only the command specs are read here.
class NoQos : public ctrl::QosControl {
 public:
  std::vector<std::string> ports() override { return {}; }
  bool apply(const std::string&, const std::string&, Json&, std::string& error) override {
    error = "no daemon";
    return false;
  }
  bool show(const std::string&, bool, Json&, std::string& error) override {
    error = "no daemon";
    return false;
  }
};

const ctrl::CommandRegistry& registry() {
  static const ctrl::CommandRegistry* reg = [] {
    static ctrl::ControlPlane cp;
    static ctrl::EventLog log;  // so that `events` and `explain` are listed
    cp.log = &log;
    static NoQos qos;
    auto* r = new ctrl::CommandRegistry;
    ctrl::register_standard_commands(*r, cp);
    ctrl::register_qos_commands(*r, qos);
    return r;
  }();
  return *reg;
}

// Appends `text` to `out`, broken at spaces so no line passes `columns`; continuation
// lines start with `indent` spaces.
void wrap(std::string_view text, size_t first_col, size_t indent, size_t columns,
          std::string& out) {
  size_t col = first_col;
  bool line_start = true;
  while (!text.empty()) {
    size_t sp = text.find(' ');
    std::string_view word = text.substr(0, sp);
    text = sp == std::string_view::npos ? std::string_view{} : text.substr(sp + 1);
    if (word.empty()) continue;
    if (!line_start && col + 1 + word.size() > columns) {
      out += '\n';
      out.append(indent, ' ');
      col = indent;
      line_start = true;
    }
    if (!line_start) {
      out += ' ';
      ++col;
    }
    out += word;
    col += word.size();
    line_start = false;
  }
  out += '\n';
}

std::string str(const Json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string{};
}

}  // namespace

Json builtin_commands() { return registry().list_json(); }

Json builtin_help(const std::string& name) { return registry().help_json(name); }

Json merge_command_lists(const Json& a, const Json& b) {
  std::map<std::string, Json> by_name;
  for (const Json* list : {&a, &b}) {
    if (!list->is_array()) continue;
    for (const Json& e : *list) {
      if (!e.is_object()) continue;
      std::string name = str(e, "command");
      if (!name.empty() && by_name.count(name) == 0) by_name.emplace(name, e);
    }
  }
  Json out = Json::array();
  for (auto& [n, e] : by_name) out.push_back(std::move(e));
  return out;
}

std::string render_command_list(const Json& list, size_t columns) {
  size_t width = 7;  // "COMMAND"
  for (const Json& e : list) width = std::max(width, str(e, "command").size());
  width = std::min<size_t>(width + 2, columns / 3);
  std::string out = "COMMAND" + std::string(width - 7, ' ') + "DESCRIPTION\n";
  for (const Json& e : list) {
    std::string name = str(e, "command");
    out += name;
    size_t col = name.size();
    if (col + 1 > width) {
      out += '\n';
      col = 0;
    }
    out.append(width - col, ' ');
    wrap(str(e, "help"), width, width, columns, out);
  }
  out += "\n'lockstepctl help COMMAND' or 'lockstepctl COMMAND --help' shows its arguments.\n";
  return out;
}

std::string render_command_help(const Json& help, size_t columns) {
  std::string out = "usage: ";
  std::string usage = str(help, "usage");
  wrap(usage, 7, 7 + std::min(usage.find(' '), columns / 3) + 1, columns, out);
  wrap(str(help, "help"), 0, 0, columns, out);
  if (help.value("mutating", false)) {
    out += "(changes state)\n";
  } else if (help.value("mutating_with_args", false)) {
    out += "(changes state when given arguments)\n";
  }
  return out;
}

}  // namespace lockstep::ctl
