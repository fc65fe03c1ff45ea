// The command line of lockstep-replay (a contract: fixtures and tests drive it so),
// and the engine settings it builds from --config and --set.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "compare/settings.h"

namespace lockstep::replay {

struct Options {
  std::string primary, secondary, ingress;
  std::string config;
  std::vector<std::pair<std::string, std::string>> sets;  // --set KEY=VALUE, in order
  uint64_t checkpoint_latency_ns = 1000 * 1000;
  std::string released, svm_ingress, events;
  bool list_settings = false;
};

inline constexpr uint64_t kMaxCheckpointLatencyUs = 3600ull * 1000 * 1000;  // one hour

// Parses the command line (argv[0] is the program). -1: go on; otherwise the exit status
// (0 after --help or --version, 2 after a usage error, its message on stderr).
// --list-settings needs no other option.
int parse_args(int argc, const char* const* argv, Options& out);

// Engine settings: the table's defaults, then the --config file, then each --set in
// order. Errors name where the value came from, the key and the accepted range.
bool build_settings(const Options& o, Settings& out, std::string& error);

// Reads a YAML config file into (key, value) pairs: the map under `engine:` when the
// file has one, else the top-level map. Defined in config_yaml.cpp (or a stub that
// reports the build has no YAML support).
bool load_config_pairs(const std::string& path,
                       std::vector<std::pair<std::string, std::string>>& out,
                       std::string& error);

std::string settings_listing();

}  // namespace lockstep::replay
