#include "tools/replay/options.h"

#include <charconv>
#include <string_view>

namespace lockstep::replay {

namespace {

bool parse_u64(std::string_view s, uint64_t& v) {
  if (s.empty()) return false;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace

std::string usage() {
  return "usage: lockstep-replay --primary PVM.pcap --secondary SVM.pcap [--ingress CLIENT.pcap]\n"
         "                       [--config FILE] [--set KEY=VALUE]... [--checkpoint-latency-us N]\n"
         "                       --released OUT.pcap [--svm-ingress OUT.pcap] [--events EVENTS.jsonl]\n"
         "       lockstep-replay --list-settings\n"
         "       lockstep-replay --help\n"
         "\n"
         "Replays captures of a PVM, an SVM and (optionally) their client through the compare\n"
         "engine, in virtual time. Inputs are pcap or pcapng, Ethernet.\n"
         "\n"
         "  --primary FILE              frames the PVM sent (compared, released toward the client)\n"
         "  --secondary FILE            frames the SVM sent (compared, never released)\n"
         "  --ingress FILE              client frames (mirrored to both VMs; the SVM copy is\n"
         "                              ack-translated)\n"
         "  --config FILE               YAML: engine settings as top-level keys or under 'engine:'\n"
         "  --set KEY=VALUE             one engine setting (see --list-settings); repeatable,\n"
         "                              applied after --config, in order\n"
         "  --checkpoint-latency-us N   virtual time from a checkpoint request to its completion\n"
         "                              (default 1000, at most 3600000000)\n"
         "  --released FILE             PVM frames released toward the client, in release order,\n"
         "                              stamped with the release time (pcap, nanosecond stamps)\n"
         "  --svm-ingress FILE          client frames as sent to the SVM (pcap, nanosecond stamps)\n"
         "  --events FILE               JSON lines: checkpoints, releases, drops, final summary\n"
         "  --list-settings             print the engine's settings table and exit\n"
         "  --help                      print this help and exit\n"
         "\n"
         "Exit status: 0 success, 2 bad usage or input, 3 the conservation law failed.\n";
}

bool parse_args(int argc, const char* const* argv, Options& out, std::string& error) {
  out = Options{};
  for (int i = 0; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      out.help = true;
      continue;
    }
    if (arg == "--list-settings") {
      out.list_settings = true;
      continue;
    }
    if (arg.substr(0, 2) != "--") {
      error = "unexpected argument '" + std::string(arg) + "' (options start with --; see --help)";
      return false;
    }
    std::string_view name = arg;
    std::string value;
    bool inline_value = false;
    if (const auto eq = arg.find('='); eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      value = std::string(arg.substr(eq + 1));
      inline_value = true;
    }
    std::string* target = nullptr;
    if (name == "--primary") target = &out.primary;
    else if (name == "--secondary") target = &out.secondary;
    else if (name == "--ingress") target = &out.ingress;
    else if (name == "--config") target = &out.config;
    else if (name == "--released") target = &out.released;
    else if (name == "--svm-ingress") target = &out.svm_ingress;
    else if (name == "--events") target = &out.events;
    else if (name != "--set" && name != "--checkpoint-latency-us") {
      error = "unknown option '" + std::string(name) + "' (see --help)";
      return false;
    }
    if (!inline_value) {
      if (i + 1 >= argc) {
        error = "option " + std::string(name) + " needs a value";
        return false;
      }
      value = argv[++i];
    }
    if (target != nullptr) {
      if (value.empty()) {
        error = "option " + std::string(name) + " needs a non-empty file name";
        return false;
      }
      *target = value;
    } else if (name == "--set") {
      const auto eq = value.find('=');
      if (eq == std::string::npos || eq == 0) {
        error = "--set '" + value + "': expected KEY=VALUE";
        return false;
      }
      out.sets.emplace_back(value.substr(0, eq), value.substr(eq + 1));
    } else {  // --checkpoint-latency-us
      uint64_t us = 0;
      if (!parse_u64(value, us) || us > kMaxCheckpointLatencyUs) {
        error = "--checkpoint-latency-us '" + value + "': expected an integer in [0, " +
                std::to_string(kMaxCheckpointLatencyUs) + "]";
        return false;
      }
      out.checkpoint_latency_ns = us * 1000;
    }
  }
  if (out.help || out.list_settings) return true;
  if (out.primary.empty()) {
    error = "missing --primary FILE (see --help)";
    return false;
  }
  if (out.secondary.empty()) {
    error = "missing --secondary FILE (see --help)";
    return false;
  }
  if (out.released.empty()) {
    error = "missing --released FILE (see --help)";
    return false;
  }
  const std::string* outs[] = {&out.released, &out.svm_ingress, &out.events};
  const std::string* ins[] = {&out.primary, &out.secondary, &out.ingress, &out.config};
  for (const std::string* o : outs) {
    if (o->empty()) continue;
    for (const std::string* in : ins) {
      if (*o == *in) {
        error = "output file " + *o + " is also an input";
        return false;
      }
    }
    for (const std::string* o2 : outs) {
      if (o2 != o && *o2 == *o) {
        error = "output file " + *o + " is named twice";
        return false;
      }
    }
  }
  return true;
}

bool build_settings(const Options& o, Settings& out, std::string& error) {
  Settings s = Settings::defaults();
  if (!o.config.empty()) {
    std::vector<std::pair<std::string, std::string>> pairs;
    if (!load_config_pairs(o.config, pairs, error)) return false;
    for (const auto& [k, v] : pairs) {
      Settings next;
      std::string e;
      if (!s.with(k, v, next, e)) {
        error = o.config + ": " + e;
        return false;
      }
      s = std::move(next);
    }
  }
  for (const auto& [k, v] : o.sets) {
    Settings next;
    std::string e;
    if (!s.with(k, v, next, e)) {
      error = "--set " + k + "=" + v + ": " + e;
      return false;
    }
    s = std::move(next);
  }
  out = std::move(s);
  return true;
}

std::string settings_listing() {
  std::string out = "engine settings (--set KEY=VALUE, or KEY: VALUE in the --config file)\n";
  for (const SettingInfo& info : settings_table()) {
    out += "\n";
    out += info.name;
    out += "  default: ";
    out += info.default_value.empty() ? std::string_view("\"\"") : info.default_value;
    out += "  accepts: ";
    switch (info.kind) {
      case SettingKind::u64:
        out += "integer in [" + std::to_string(info.min) + ", " + std::to_string(info.max) + "]";
        break;
      case SettingKind::boolean: out += "true|false"; break;
      case SettingKind::choice: out += info.choices; break;
      case SettingKind::text: out += "text"; break;
    }
    out += "\n    ";
    out += info.help;
    out += "\n";
  }
  return out;
}

}  // namespace lockstep::replay
