// Human-readable rendering of ctrl replies: objects as indented "key: value" lines,
// arrays of objects as aligned tables, the metrics text as is.
#pragma once

#include <string>

#include "ctrl/json_limits.h"

namespace lockstep::ctl {

std::string render_human(const std::string& command, const ctrl::Json& result);

}  // namespace lockstep::ctl
