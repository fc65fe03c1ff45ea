// --config in a build without yaml-cpp: a clear error instead of a missing option.
#include "tools/replay/options.h"

namespace lockstep::replay {

bool load_config_pairs(const std::string& path,
                       std::vector<std::pair<std::string, std::string>>&,
                       std::string& error) {
  error = path + ": --config needs YAML support, and this build has none (yaml-cpp was not "
          "found when it was configured); use --set KEY=VALUE";
  return false;
}

}  // namespace lockstep::replay
