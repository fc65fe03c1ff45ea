// --config FILE with yaml-cpp: engine settings as top-level keys, or under `engine:`
// when the file is a whole daemon configuration (its other sections are not ours).
#include <yaml-cpp/yaml.h>

#include "tools/replay/options.h"

namespace lockstep::replay {

bool load_config_pairs(const std::string& path,
                       std::vector<std::pair<std::string, std::string>>& out,
                       std::string& error) {
  out.clear();
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    error = path + ": cannot open";
    return false;
  } catch (const YAML::Exception& e) {
    error = path + ": not valid YAML: " + e.what();
    return false;
  }
  if (root.IsNull()) return true;  // an empty file sets nothing
  if (!root.IsMap()) {
    error = path + ": expected a map of settings at the top level";
    return false;
  }
  YAML::Node table = root;
  if (const YAML::Node engine = root["engine"]; engine) {
    if (engine.IsNull()) return true;
    if (!engine.IsMap()) {
      error = path + ": 'engine' must be a map of settings";
      return false;
    }
    table = engine;
  }
  for (const auto& kv : table) {
    if (!kv.first.IsScalar()) {
      error = path + ": a settings key is not a plain name";
      return false;
    }
    const std::string key = kv.first.Scalar();
    if (!kv.second.IsScalar()) {
      error = path + ": " + key + ": expected a single value";
      return false;
    }
    out.emplace_back(key, kv.second.Scalar());
  }
  return true;
}

}  // namespace lockstep::replay
