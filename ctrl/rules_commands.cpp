// `rules list|add|del`: the normalization rules (the engine's `normalize_rules` setting)
// managed one rule at a time. Every change goes through the same path as `config set`:
// validated, compiled by the engine (a pattern Hyperscan refuses is refused here with
// its message), applied live on every worker, or not at all.
#include "ctrl/commands.h"

#include <algorithm>

namespace lockstep::ctrl {

namespace {

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return std::string(s);
}

// Items of the rule text: separated by newlines or by ';' not escaped as '\;'.
std::vector<std::string> split_items(const std::string& text) {
  std::vector<std::string> items;
  std::string cur;
  for (size_t i = 0; i < text.size(); ++i) {
    char ch = text[i];
    if (ch == '\n' || (ch == ';' && (i == 0 || text[i - 1] != '\\'))) {
      if (auto t = trim(cur); !t.empty()) items.push_back(t);
      cur.clear();
    } else {
      cur += ch;
    }
  }
  if (auto t = trim(cur); !t.empty()) items.push_back(t);
  return items;
}

std::string first_word(const std::string& item) { return item.substr(0, item.find_first_of(" \t")); }

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& it : items) out += (out.empty() ? "" : "\n") + it;
  return out;
}

CommandResult apply_rules(ControlPlane& cp, const std::vector<std::string>& items, Json result) {
  Settings next;
  std::string error;
  if (!cp.daemon->settings().with("normalize_rules", join(items), next, error) ||
      !cp.daemon->apply_settings(next, error)) {
    return CommandResult::failure(error);
  }
  result["generation"] = ++cp.config_generation;
  result["rules"] = items;
  return CommandResult::success(result);
}

}  // namespace

void register_rules_commands(CommandRegistry& reg, ControlPlane& cp) {
  reg.add({"rules list", "", "the normalization rules in force, one item per rule or set",
           0, 0, false, [&cp](const CommandContext&, const Args&) {
             return CommandResult::success(
                 {{"rules", split_items(cp.daemon->settings().normalize_rules)}});
           }});

  reg.add({"rules add", "NAME SELECTOR PATTERN | @SET [SELECTOR]",
           "add a rule (or a shipped set) at the end; refused, with the reason, if it does "
           "not parse or compile",
           1, 64, true, [&cp](const CommandContext&, const Args& a) {
             std::string item;
             for (const auto& w : a) item += (item.empty() ? "" : " ") + w;
             auto items = split_items(cp.daemon->settings().normalize_rules);
             for (const auto& it : items) {
               if (first_word(it) == first_word(item)) {
                 return CommandResult::failure("a rule named '" + first_word(item) +
                                               "' exists; 'rules del' it first");
               }
             }
             items.push_back(trim(item));
             return apply_rules(cp, items, {{"added", trim(item)}});
           }});

  reg.add({"rules del", "NAME|@SET", "remove the rule (or shipped set) with that name", 1, 1,
           true, [&cp](const CommandContext&, const Args& a) {
             auto items = split_items(cp.daemon->settings().normalize_rules);
             auto it = std::find_if(items.begin(), items.end(),
                                    [&](const std::string& s) { return first_word(s) == a[0]; });
             if (it == items.end()) return CommandResult::failure("no rule named '" + a[0] + "'");
             items.erase(it);
             return apply_rules(cp, items, {{"removed", a[0]}});
           }});
}

}  // namespace lockstep::ctrl
