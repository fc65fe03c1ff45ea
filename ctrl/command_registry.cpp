#include "ctrl/command_registry.h"

#include <exception>

namespace lockstep::ctrl {

CommandRegistry::CommandRegistry() {
  add({"help", "[command...]", "list the commands, or show one command's usage and help", 0, -1,
       false, [this](const CommandContext&, const Args& a) {
         if (a.empty()) return CommandResult::success(list_json());
         std::string name;
         for (const auto& w : a) name += (name.empty() ? "" : " ") + w;
         Json h = help_json(name);
         if (h.is_null()) return CommandResult::failure("unknown command '" + name + "'");
         return CommandResult::success(h);
       }});
  add({"list-commands", "", "the names of every command", 0, 0, false,
       [this](const CommandContext&, const Args&) {
         Json a = Json::array();
         for (const auto& [n, s] : commands_) a.push_back(n);
         return CommandResult::success(a);
       }});
}

bool CommandRegistry::add(CommandSpec spec) {
  if (spec.name.empty() || !spec.handler || commands_.count(spec.name) != 0) return false;
  std::string name = spec.name;
  commands_.emplace(std::move(name), std::move(spec));
  return true;
}

const CommandSpec* CommandRegistry::find(const std::string& name) const {
  auto it = commands_.find(name);
  return it == commands_.end() ? nullptr : &it->second;
}

const CommandSpec* CommandRegistry::resolve(const std::vector<std::string>& words,
                                            size_t& consumed) const {
  const CommandSpec* best = nullptr;
  std::string name;
  for (size_t i = 0; i < words.size() && i < 4; ++i) {
    name += (i ? " " : "") + words[i];
    if (const CommandSpec* s = find(name)) {
      best = s;
      consumed = i + 1;
    }
  }
  return best;
}

CommandResult CommandRegistry::execute(const CommandContext& ctx,
                                       const std::vector<std::string>& words,
                                       const CommandSpec** resolved, size_t* nargs) const {
  std::vector<std::string> rest;
  std::string guest;
  bool named = false;
  for (size_t i = 0; i < words.size(); ++i) {
    if ((words[i] == "-g" || words[i] == "--guest") && i + 1 < words.size()) {
      guest = words[++i];
      named = true;
    } else if (words[i].starts_with("--guest=")) {
      guest = words[i].substr(8);
      named = true;
    } else if (words[i] == "-g" || words[i] == "--guest") {
      return CommandResult::failure(words[i] + ": a guest's name must follow");
    } else {
      rest.push_back(words[i]);
    }
  }
  if (!named) return run(ctx, words, resolved, nargs);
  if (guest.empty()) return CommandResult::failure("--guest: empty name");
  if (!guest_selector_)
    return CommandResult::failure("-g/--guest: this daemon does not serve several guests");
  std::string error;
  if (!guest_selector_(guest, error)) return CommandResult::failure(error);
  CommandResult r = run(ctx, rest, resolved, nargs);
  guest_selector_("", error);
  return r;
}

CommandResult CommandRegistry::run(const CommandContext& ctx, const std::vector<std::string>& words,
                                   const CommandSpec** resolved, size_t* nargs) const {
  size_t consumed = 0;
  const CommandSpec* spec = resolve(words, consumed);
  if (resolved != nullptr) *resolved = spec;
  if (spec == nullptr) {
    return CommandResult::failure(
        words.empty() ? "no command given (try 'help')"
                      : "unknown command '" + words.front() + "' (try 'help')");
  }
  Args args(words.begin() + static_cast<std::ptrdiff_t>(consumed), words.end());
  if (nargs != nullptr) *nargs = args.size();
  int n = static_cast<int>(args.size());
  if (n < spec->min_args || (spec->max_args >= 0 && n > spec->max_args)) {
    return CommandResult::failure("usage: " + spec->name +
                                  (spec->usage.empty() ? "" : " " + spec->usage));
  }
  if (spec->changes_state(args.size()) && ctx.read_only) {
    std::string what = spec->name;
    for (const auto& a : args) what += " " + a;
    return CommandResult::failure("'" + what + "' changes state: not allowed on the read-only socket");
  }
  try {
    return spec->handler(ctx, args);
  } catch (const std::exception& e) {
    return CommandResult::failure("internal error in '" + spec->name + "': " + e.what());
  }
}

Json CommandRegistry::list_json() const {
  Json a = Json::array();
  for (const auto& [n, s] : commands_) {
    a.push_back({{"command", n}, {"usage", s.usage}, {"help", s.help},
                 {"mutating", s.mutating}});
  }
  return a;
}

Json CommandRegistry::help_json(const std::string& name) const {
  const CommandSpec* s = find(name);
  if (s == nullptr) return nullptr;
  Json j{{"command", s->name}, {"usage", s->name + (s->usage.empty() ? "" : " " + s->usage)},
         {"help", s->help}, {"mutating", s->mutating},
         {"mutating_with_args", s->mutating_with_args}, {"min_args", s->min_args},
         {"max_args", s->max_args}};
  return j;
}

}  // namespace lockstep::ctrl
