// The commands lockstepctl knows without a daemon: the standard registry of ctrl/
// (built here with the same registration code lockstepd runs, its handlers never called),
// so `lockstepctl help` works when no daemon is reachable. A daemon's own list extends it.
#pragma once

#include <string>

#include "ctrl/json_limits.h"

namespace lockstep::ctl {

// The registry's `help` list: [{"command", "usage", "help", "mutating"}...].
ctrl::Json builtin_commands();
// One command's `help` answer, or null when the name is unknown.
ctrl::Json builtin_help(const std::string& name);

// `a` extended with the entries of `b` whose command `a` lacks, sorted by name.
ctrl::Json merge_command_lists(const ctrl::Json& a, const ctrl::Json& b);

// The command table of `lockstepctl help`, wrapped to `columns`.
std::string render_command_list(const ctrl::Json& list, size_t columns);
// One command's help (a `help COMMAND` answer), wrapped to `columns`.
std::string render_command_help(const ctrl::Json& help, size_t columns);

}  // namespace lockstep::ctl
