#include "tools/replay/options.h"

#include <string_view>

#include "common/cli.h"

namespace lockstep::replay {

namespace {

constexpr int kExitUsage = 2;

CLI::Validator non_empty_file() {
  return CLI::Validator(
      [](std::string& v) { return v.empty() ? std::string("needs a non-empty file name") : ""; },
      "", "non-empty");
}

}  // namespace

int parse_args(int argc, const char* const* argv, Options& out) {
  out = Options{};
  CLI::App app{"Replays captures of a PVM, an SVM and (optionally) their client through the "
               "compare\nengine, in virtual time. Inputs are pcap or pcapng, Ethernet.",
               "lockstep-replay"};
  cli::setup(app,
             {"--primary PVM.pcap --secondary SVM.pcap [--ingress CLIENT.pcap]\n"
              "                       [--config FILE] [--set KEY=VALUE]... "
              "[--checkpoint-latency-us N]\n"
              "                       --released OUT.pcap [--svm-ingress OUT.pcap] "
              "[--events EVENTS.jsonl]",
              "--list-settings"},
             "Exit status: 0 success, 2 bad usage or input, 3 the conservation law failed.");
  app.add_option("--primary", out.primary,
                 "frames the PVM sent (compared, released toward the client)")
      ->type_name("FILE")->check(non_empty_file());
  app.add_option("--secondary", out.secondary, "frames the SVM sent (compared, never released)")
      ->type_name("FILE")->check(non_empty_file());
  app.add_option("--ingress", out.ingress,
                 "client frames (mirrored to both VMs; the SVM copy is ack-translated)")
      ->type_name("FILE")->check(non_empty_file());
  app.add_option("--config", out.config,
                 "YAML: engine settings as top-level keys or under 'engine:'")
      ->type_name("FILE")->check(non_empty_file());
  std::vector<std::string> sets;
  app.add_option("--set", sets,
                 "one engine setting (see --list-settings); repeatable, applied after\n"
                 "--config, in order")
      ->option_text("KEY=VALUE")
      ->allow_extra_args(false)
      ->check([](const std::string& v) {
        auto eq = v.find('=');
        return eq == std::string::npos || eq == 0 ? "'" + v + "': expected KEY=VALUE"
                                                  : std::string();
      });
  uint64_t latency_us = out.checkpoint_latency_ns / 1000;
  app.add_option("--checkpoint-latency-us", latency_us,
                 "virtual time from a checkpoint request to its completion\n"
                 "(default 1000, at most 3600000000)")
      ->type_name("N")
      ->check(CLI::Range(uint64_t{0}, kMaxCheckpointLatencyUs));
  app.add_option("--released", out.released,
                 "PVM frames released toward the client, in release order, stamped\n"
                 "with the release time (pcap, nanosecond stamps)")
      ->type_name("FILE")->check(non_empty_file());
  app.add_option("--svm-ingress", out.svm_ingress,
                 "client frames as sent to the SVM (pcap, nanosecond stamps)")
      ->type_name("FILE")->check(non_empty_file());
  app.add_option("--events", out.events,
                 "JSON lines: checkpoints, releases, drops, final summary")
      ->type_name("FILE")->check(non_empty_file());
  app.add_flag("--list-settings", out.list_settings,
               "print the engine's settings table and exit");
  if (int rc = cli::parse(app, argc, argv, kExitUsage); rc >= 0) return rc;
  out.checkpoint_latency_ns = latency_us * 1000;
  for (const std::string& v : sets) {
    const auto eq = v.find('=');
    out.sets.emplace_back(v.substr(0, eq), v.substr(eq + 1));
  }
  if (out.list_settings) return -1;
  if (out.primary.empty()) return cli::usage_error(app, "missing --primary FILE", kExitUsage);
  if (out.secondary.empty()) return cli::usage_error(app, "missing --secondary FILE", kExitUsage);
  if (out.released.empty()) return cli::usage_error(app, "missing --released FILE", kExitUsage);
  const std::string* outs[] = {&out.released, &out.svm_ingress, &out.events};
  const std::string* ins[] = {&out.primary, &out.secondary, &out.ingress, &out.config};
  for (const std::string* o : outs) {
    if (o->empty()) continue;
    for (const std::string* in : ins) {
      if (*o == *in) {
        return cli::usage_error(app, "output file " + *o + " is also an input", kExitUsage);
      }
    }
    for (const std::string* o2 : outs) {
      if (o2 != o && *o2 == *o) {
        return cli::usage_error(app, "output file " + *o + " is named twice", kExitUsage);
      }
    }
  }
  return -1;
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
