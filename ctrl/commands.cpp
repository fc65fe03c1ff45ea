#include "ctrl/commands.h"

#include <charconv>
#include <chrono>
#include <cmath>
#include <map>
#include <thread>

#include "compare/flow_key.h"
#include "ctrl/checkpointer_link.h"
#include "ctrl/ctrl_server.h"
#include "ctrl/native_codec.h"
#include "ctrl/net.h"

#ifndef LOCKSTEP_VERSION
#define LOCKSTEP_VERSION "unknown"
#endif

namespace lockstep::ctrl {

std::string_view lockstep_version() { return LOCKSTEP_VERSION; }

namespace {

bool parse_u64(std::string_view s, uint64_t& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && p == s.data() + s.size() && !s.empty();
}

const char* kind_name(SettingKind k) {
  switch (k) {
    case SettingKind::u64: return "u64";
    case SettingKind::boolean: return "bool";
    case SettingKind::choice: return "choice";
    case SettingKind::text: return "text";
  }
  return "?";
}

Json setting_json(const Settings& s, const SettingInfo& info) {
  Json j{{"key", info.name},
         {"value", setting_value_json(info, s.get(info.name))},
         {"default", setting_value_json(info, std::string(info.default_value))},
         {"kind", kind_name(info.kind)},
         {"help", info.help}};
  if (info.kind == SettingKind::u64) {
    j["min"] = info.min;
    j["max"] = info.max;
  }
  if (info.kind == SettingKind::choice) j["choices"] = info.choices;
  return j;
}

// Per-second rates of the counters between two `stats` answers taken dt seconds apart;
// gauges (held_*, *_active, *_conns, *_bytes of state) keep their latest value.
bool is_gauge_name(const std::string& k) {
  return k.starts_with("held_") || k.ends_with("_active") || k == "normalize_conns" ||
         k == "normalize_state_bytes" || k == "workers" || k == "since_s";
}

Json rates_of(const Json& a, const Json& b, double dt, const std::string& key) {
  if (b.is_object()) {
    Json out = Json::object();
    for (auto it = b.begin(); it != b.end(); ++it) {
      const Json& prev = a.is_object() && a.contains(it.key()) ? a[it.key()] : Json();
      out[it.key()] = rates_of(prev, it.value(), dt, it.key());
    }
    return out;
  }
  if (b.is_number() && a.is_number() && !is_gauge_name(key)) {
    const double d = b.get<double>() - a.get<double>();
    return d <= 0 ? 0.0 : std::round(d / dt * 10) / 10;
  }
  return b;
}

// Removes numeric zeros (and objects left empty) from a `stats` answer.
void drop_zeros(Json& j) {
  if (!j.is_object()) return;
  for (auto it = j.begin(); it != j.end();) {
    drop_zeros(it.value());
    const bool zero = (it.value().is_number() && it.value().get<double>() == 0) ||
                      (it.value().is_object() && it.value().empty());
    it = zero ? j.erase(it) : std::next(it);
  }
}

std::string who(const CommandContext& ctx) {
  return "uid " + std::to_string(ctx.cred.uid) + " pid " + std::to_string(ctx.cred.pid);
}

}  // namespace

Json setting_value_json(const SettingInfo& info, const std::string& value) {
  if (info.kind == SettingKind::u64) {
    uint64_t v = 0;
    if (parse_u64(value, v)) return v;
  } else if (info.kind == SettingKind::boolean) {
    if (value == "true") return true;
    if (value == "false") return false;
  }
  return value;
}

Json settings_change_json(const Settings& before, const Settings& after) {
  Json changed = Json::object();
  for (const auto& info : settings_table()) {
    const std::string a = before.get(info.name), b = after.get(info.name);
    if (a != b) {
      changed[std::string(info.name)] = {{"from", setting_value_json(info, a)},
                                         {"to", setting_value_json(info, b)}};
    }
  }
  return changed;
}

Json conn_json(const ConnInfo& c) {
  return {{"flow", to_string(c.key)},
          {"state", c.state},
          {"held_pvm", c.held_pvm},
          {"held_svm", c.held_svm},
          {"bytes_matched", c.bytes_matched},
          {"divergences", c.divergences},
          {"svm_seq_offset", c.svm_seq_offset}};
}

Json stats_rates(const Json& before, const Json& after, double seconds) {
  Json out = rates_of(before, after, seconds > 0 ? seconds : 1, "");
  if (out.is_object()) out["rate_over_s"] = seconds;
  return out;
}

// ---------------------------------------------------------------------------- commands
// One function per standard command, then the table that names them (name, usage, help,
// arity, whether it changes state).

namespace {

CommandResult cmd_status(ControlPlane& cp, const CommandContext& ctx, const Args&) {
  Json j;
  j["version"] = lockstep_version();
  j["uptime_s"] = (ctx.now_ns - std::min(ctx.now_ns, cp.start_ns)) / 1000000000;
  j["daemon"] = cp.daemon->status();
  j["failover"] = cp.failover->to_json(ctx.now_ns);
  if (cp.coordinator != nullptr) {
    j["checkpointer"] = cp.coordinator->status();
    j["peers"] = cp.coordinator->peers();
  } else {
    j["checkpointer"] = nullptr;
    j["peers"] = Json::array();
  }
  j["cluster"] = cp.cluster != nullptr ? cp.cluster->status(ctx.now_ns) : Json(nullptr);
  j["config_generation"] = cp.config_generation.load();
  j["events"] = cp.events->history_json();
  return CommandResult::success(j);
}

CommandResult cmd_stats(ControlPlane& cp, const CommandContext&, const Args& a) {
  std::vector<std::string> sections;
  bool reset = false, nonzero = false;
  uint64_t rate_s = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] == "--reset") {
      reset = true;
    } else if (a[i] == "--nonzero") {
      nonzero = true;
    } else if (a[i] == "--rate") {
      rate_s = 1;
      if (i + 1 < a.size() && !a[i + 1].empty() && a[i + 1][0] != '-' &&
          parse_u64(a[i + 1], rate_s)) {
        ++i;
        if (rate_s == 0 || rate_s > 10) {
          return CommandResult::failure("--rate takes 1..10 seconds");
        }
      }
    } else if (a[i].starts_with("-")) {
      return CommandResult::failure("unknown argument '" + a[i] +
                                    "' (usage: stats [SECTION...] [--nonzero] "
                                    "[--rate [SECONDS]] [--reset])");
    } else {
      sections.push_back(a[i]);
    }
  }
  if (reset && rate_s != 0) {
    return CommandResult::failure("--reset and --rate do not go together");
  }
  Json j;
  if (rate_s != 0) {
    const Json before = cp.daemon->stats(false);
    const auto t0 = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(std::chrono::seconds(rate_s));
    j = cp.daemon->stats(false);
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    j = stats_rates(before, j, dt);
  } else {
    j = cp.daemon->stats(reset);
  }
  Json out = Json::object();
  if (sections.empty()) {
    out = std::move(j);
  } else {
    for (const auto& sec : sections) {
      const auto dot = sec.find('.');
      const std::string top = sec.substr(0, dot);
      if (!j.contains(top)) {
        std::string have;
        for (auto it = j.begin(); it != j.end(); ++it) have += " " + it.key();
        return CommandResult::failure("no section '" + top + "' (sections:" + have + ")");
      }
      if (dot == std::string::npos) {
        out[top] = j[top];
        continue;
      }
      const std::string prefix = sec.substr(dot + 1);
      if (!j[top].is_object()) return CommandResult::failure("'" + top + "' has no fields");
      Json& dst = out[top];
      if (dst.is_null()) dst = Json::object();
      for (auto it = j[top].begin(); it != j[top].end(); ++it) {
        if (it.key().starts_with(prefix)) dst[it.key()] = it.value();
      }
    }
  }
  if (nonzero) drop_zeros(out);
  if (rate_s != 0) out["rate_over_s"] = j["rate_over_s"];
  return CommandResult::success(out);
}

CommandResult cmd_conns(ControlPlane& cp, const CommandContext&, const Args& a) {
  std::string filter;
  uint64_t limit = kDefaultConnsLimit;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] == "--limit") {
      if (i + 1 >= a.size() || !parse_u64(a[i + 1], limit) || limit == 0 ||
          limit > kMaxConnsLimit) {
        return CommandResult::failure("--limit takes a number in 1.." +
                                      std::to_string(kMaxConnsLimit));
      }
      ++i;
    } else if (a[i].starts_with("--")) {
      return CommandResult::failure("unknown option '" + a[i] + "'");
    } else if (filter.empty()) {
      filter = a[i];
    } else {
      return CommandResult::failure("one FILTER at most (usage: conns [FILTER] [--limit N])");
    }
  }
  return CommandResult::success(cp.daemon->conns(filter, limit));
}

CommandResult cmd_config_get(ControlPlane& cp, const CommandContext&, const Args& a) {
  Settings s = cp.daemon->settings();
  if (a.empty()) {
    Json j = Json::object();
    for (const auto& info : settings_table())
      j[std::string(info.name)] = setting_value_json(info, s.get(info.name));
    return CommandResult::success(j);
  }
  const SettingInfo* info = find_setting(a[0]);
  if (info == nullptr) {
    return CommandResult::failure("unknown setting '" + a[0] + "' (see 'config get')");
  }
  return CommandResult::success(setting_json(s, *info));
}

CommandResult cmd_config_set(ControlPlane& cp, const CommandContext&, const Args& a) {
  std::map<std::string, std::string> kv;
  for (const auto& p : a) {
    auto eq = p.find('=');
    if (eq == std::string::npos || eq == 0) {
      return CommandResult::failure("expected KEY=VALUE, got '" + p + "'");
    }
    kv[p.substr(0, eq)] = p.substr(eq + 1);
  }
  Settings cur = cp.daemon->settings();
  Settings next;
  std::string error;
  if (!cur.with_all(kv, next, error)) return CommandResult::failure(error);
  Json changed = Json::object(), unchanged = Json::array();
  for (const auto& [k, v] : kv) {
    if (next.get(k) == cur.get(k)) unchanged.push_back(k);
    else if (const SettingInfo* info = find_setting(k))
      changed[k] = setting_value_json(*info, next.get(k));
    else changed[k] = next.get(k);
  }
  // The same values again: nothing to apply, no new generation, no event.
  if (changed.empty()) {
    return CommandResult::success({{"changed", changed},
                                   {"unchanged", unchanged},
                                   {"generation", cp.config_generation.load()}});
  }
  if (!cp.daemon->apply_settings(next, error)) return CommandResult::failure(error);
  uint64_t gen = ++cp.config_generation;
  Json out{{"changed", changed}, {"generation", gen}};
  if (!unchanged.empty()) out["unchanged"] = unchanged;
  return CommandResult::success(out);
}

CommandResult cmd_checkpoint(ControlPlane& cp, const CommandContext&, const Args&) {
  std::string error;
  if (!cp.daemon->request_checkpoint(error)) return CommandResult::failure(error);
  Json j{{"requested", true}};
  if (cp.coordinator != nullptr) j["epoch"] = cp.coordinator->epoch();
  return CommandResult::success(j);
}

CommandResult cmd_cluster_status(ControlPlane& cp, const CommandContext& ctx, const Args&) {
  if (cp.cluster == nullptr) return CommandResult::failure("no cluster configured");
  return CommandResult::success(cp.cluster->status(ctx.now_ns));
}

CommandResult cmd_cluster_failover(ControlPlane& cp, const CommandContext& ctx, const Args&) {
  if (cp.cluster == nullptr) return CommandResult::failure("no cluster configured");
  std::string error;
  if (!cp.cluster->request_failover("requested (" + who(ctx) + ")", error))
    return CommandResult::failure(error);
  return CommandResult::success({{"sent", "FAILOVER"}});
}

CommandResult cmd_failover(ControlPlane& cp, const CommandContext& ctx, const Args& a) {
  Survivor s;
  if (!survivor_from_string(a[0], s)) {
    return CommandResult::failure("expected primary or secondary, got '" + a[0] + "'");
  }
  std::string error;
  if (!cp.failover->decide(s, "manual (" + who(ctx) + ")", ctx.now_ns, error)) {
    return CommandResult::failure(error);
  }
  return CommandResult::success({{"survivor", to_string_survivor(s)}, {"cause", "manual"}});
}

CommandResult cmd_mode(ControlPlane& cp, const CommandContext&, const Args& a) {
  Mode m;
  if (!mode_from_string(a[0], m)) {
    return CommandResult::failure("expected colo, buffer or passthrough, got '" + a[0] + "'");
  }
  std::string error;
  if (!cp.daemon->set_mode(m, error)) return CommandResult::failure(error);
  return CommandResult::success({{"mode", to_string(m)}});
}

CommandResult cmd_capture_start(ControlPlane& cp, const CommandContext&, const Args& a) {
  CaptureRequest r;
  r.port = a[0];
  for (size_t i = 1; i < a.size(); ++i) {
    uint64_t v = 0;
    if (a[i] == "--direction") {
      const std::string d = i + 1 < a.size() ? a[i + 1] : "";
      if (d != "rx" && d != "tx" && d != "both") {
        return CommandResult::failure("--direction takes rx, tx or both");
      }
      r.rx = d != "tx";
      r.tx = d != "rx";
      ++i;
    } else if (a[i] == "--max-bytes" || a[i] == "--snaplen") {
      if (i + 1 >= a.size() || !parse_u64(a[i + 1], v) || v == 0) {
        return CommandResult::failure(a[i] + " takes a positive number");
      }
      if (a[i] == "--snaplen") {
        if (v > 262144) return CommandResult::failure("--snaplen takes 1..262144");
        r.snaplen = static_cast<uint32_t>(v);
      } else {
        r.max_bytes = v;
      }
      ++i;
    } else if (a[i].starts_with("--")) {
      return CommandResult::failure("unknown option '" + a[i] + "'");
    } else if (r.path.empty()) {
      r.path = a[i];
    } else {
      return CommandResult::failure("one FILE at most");
    }
  }
  Json result;
  std::string error;
  if (!cp.daemon->capture_start(r, result, error)) return CommandResult::failure(error);
  return CommandResult::success(result);
}

CommandResult cmd_capture_stop(ControlPlane& cp, const CommandContext&, const Args& a) {
  Json result;
  std::string error;
  if (!cp.daemon->capture_stop(a.empty() ? std::string{} : a[0], result, error)) {
    return CommandResult::failure(error);
  }
  return CommandResult::success(result);
}

CommandResult cmd_checkpoint_policy(ControlPlane& cp, const CommandContext&, const Args& a) {
  if (cp.coordinator == nullptr) return CommandResult::failure("no checkpointer link");
  CheckpointPolicy p = cp.coordinator->policy();
  for (const auto& kv : a) {
    auto eq = kv.find('=');
    std::string k = kv.substr(0, eq), v = eq == std::string::npos ? "" : kv.substr(eq + 1);
    uint64_t n = 0;
    bool num = parse_u64(v, n);
    if (eq == std::string::npos) {
      return CommandResult::failure("expected KEY=VALUE, got '" + kv + "'");
    } else if (k == "max_epoch_ms" && num && n <= 3'600'000) {
      p.max_epoch_ns = n * 1'000'000;
    } else if (k == "timeout_ms" && num && n >= 1 && n <= 3'600'000) {
      p.done_timeout_ns = n * 1'000'000;
    } else if (k == "max_retries" && num && n <= 100) {
      p.max_retries = static_cast<uint32_t>(n);
    } else if (k == "on_timeout" && timeout_policy_from_string(v, p.on_timeout)) {
    } else if (k == "failover_survivor" && survivor_from_string(v, p.failover_survivor)) {
    } else {
      return CommandResult::failure(
          "bad '" + kv + "': max_epoch_ms 0..3600000, timeout_ms 1..3600000, "
          "max_retries 0..100, on_timeout retry|alarm|failover, "
          "failover_survivor primary|secondary");
    }
  }
  if (!a.empty()) cp.coordinator->set_policy(p);
  return CommandResult::success(
      {{"max_epoch_ms", p.max_epoch_ns / 1'000'000},
       {"timeout_ms", p.done_timeout_ns / 1'000'000},
       {"on_timeout", to_string(p.on_timeout)},
       {"max_retries", p.max_retries},
       {"failover_survivor", to_string_survivor(p.failover_survivor)}});
}

CommandResult cmd_version(ControlPlane& cp, const CommandContext&, const Args&) {
  Json j{{"version", lockstep_version()},
         {"ctrl_protocol", 1},
         {"checkpointer_protocol", kNativeVersion}};
  Json extra = cp.daemon->version();
  if (extra.is_object()) {
    for (auto it = extra.begin(); it != extra.end(); ++it) j[it.key()] = it.value();
  }
  return CommandResult::success(j);
}

CommandResult cmd_metrics(ControlPlane& cp, const CommandContext&, const Args&) {
  return CommandResult::success({{"text", render_metrics(cp)}});
}

// A standard command: what the registry shows and checks, and the function that runs it.
struct StandardCommand {
  const char* name;
  const char* usage;  // arguments only
  const char* help;   // one line
  int min_args = 0;
  int max_args = 0;  // -1: unbounded
  bool mutating = false;
  bool mutating_with_args = false;  // changes state only when given arguments
  CommandResult (*run)(ControlPlane& cp, const CommandContext& ctx, const Args& a) = nullptr;
};

const StandardCommand kStandardCommands[] = {
    {.name = "status",
     .usage = "",
     .help = "mode, epoch, checkpoint state, failover, peers, uptime, recent events",
     .run = cmd_status},
    {.name = "stats",
     .usage = "[SECTION...] [--nonzero] [--rate [SECONDS]] [--reset]",
     .help = "counters summed over workers; SECTION: engine, ports, drops, ... or engine.PREFIX; "
             "--nonzero hides zeros; --rate: per second over SECONDS (default 1, at most 10); "
             "--reset zeroes them after reading",
     .max_args = 8,
     .mutating_with_args = true,
     .run = cmd_stats},
    {.name = "conns",
     .usage = "[FILTER] [--limit N]",
     .help = "connections whose key contains FILTER (e.g. 'tcp', '10.0.0.2', ':80 ')",
     .max_args = 3,
     .run = cmd_conns},
    {.name = "config get",
     .usage = "[KEY]",
     .help = "every setting with its value, or one with its range and help",
     .max_args = 1,
     .run = cmd_config_get},
    {.name = "config set",
     .usage = "KEY=VALUE...",
     .help = "validate and apply settings live (all or none); names the key and range on error",
     .min_args = 1,
     .max_args = 64,
     .mutating = true,
     .run = cmd_config_set},
    {.name = "checkpoint",
     .usage = "",
     .help = "ask for a checkpoint now (reason manual)",
     .mutating = true,
     .run = cmd_checkpoint},
    {.name = "cluster status",
     .usage = "",
     .help = "corosync membership, quorum, link watching, the cluster's decision",
     .run = cmd_cluster_status},
    {.name = "cluster failover",
     .usage = "",
     .help = "ask the corosync group to let this side take over (first FAILOVER delivered wins; "
             "needs quorum); pacemaker's promote",
     .mutating = true,
     .run = cmd_cluster_failover},
    {.name = "failover",
     .usage = "primary|secondary",
     .help = "fail over now: primary = the PVM survives, secondary = the SVM takes over; final",
     .min_args = 1,
     .max_args = 1,
     .mutating = true,
     .run = cmd_failover},
    {.name = "mode",
     .usage = "colo|buffer|passthrough",
     .help = "switch the compare mode live",
     .min_args = 1,
     .max_args = 1,
     .mutating = true,
     .run = cmd_mode},
    {.name = "capture start",
     .usage = "PORT [FILE] [--direction rx|tx|both] [--max-bytes N] [--snaplen N]",
     .help = "write the frames a port receives and lockstepd sends on it to a pcapng file, "
             "bounded in size",
     .min_args = 1,
     .max_args = 8,
     .mutating = true,
     .run = cmd_capture_start},
    {.name = "capture stop",
     .usage = "[PORT]",
     .help = "stop a capture (every capture without PORT)",
     .max_args = 1,
     .mutating = true,
     .run = cmd_capture_stop},
    {.name = "checkpoint-policy",
     .usage = "[KEY=VALUE...]",
     .help = "show or change the checkpoint policy live: max_epoch_ms (0 = off), timeout_ms, "
             "on_timeout=retry|alarm|failover, max_retries, failover_survivor=primary|secondary",
     .max_args = 5,
     .mutating_with_args = true,
     .run = cmd_checkpoint_policy},
    {.name = "version",
     .usage = "",
     .help = "version of lockstep and of its protocols",
     .run = cmd_version},
    {.name = "metrics",
     .usage = "",
     .help = "every counter in the Prometheus text format",
     .run = cmd_metrics},
};

}  // namespace

void register_standard_commands(CommandRegistry& reg, ControlPlane& cp) {
  register_rules_commands(reg, cp);
  if (cp.log != nullptr) register_event_commands(reg, cp);
  for (const StandardCommand& c : kStandardCommands) {
    reg.add({.name = c.name,
             .usage = c.usage,
             .help = c.help,
             .min_args = c.min_args,
             .max_args = c.max_args,
             .mutating = c.mutating,
             .handler = [&cp, run = c.run](const CommandContext& ctx,
                                          const Args& a) { return run(cp, ctx, a); },
             .mutating_with_args = c.mutating_with_args});
  }
}

std::vector<MetricSample> collect_metrics(ControlPlane& cp) {
  std::vector<MetricSample> out;
  cp.daemon->metrics(out);
  if (cp.coordinator != nullptr) cp.coordinator->metrics(out);
  if (cp.server != nullptr) cp.server->metrics(out);
  auto fo = cp.failover->survivor();
  add_sample(out, "lockstep_failover_decided", "1 when a failover was decided, by survivor",
             MetricType::gauge, fo.has_value() ? 1 : 0,
             {{"survivor", fo ? std::string(to_string_survivor(*fo)) : "none"}});
  add_sample(out, "lockstep_ctrl_events_total", "control-plane events emitted",
             MetricType::counter, static_cast<double>(cp.events->total()));
  add_sample(out, "lockstep_config_generation", "settings snapshots applied by config set",
             MetricType::gauge, static_cast<double>(cp.config_generation.load()));
  add_sample(out, "lockstep_uptime_seconds", "seconds since the control plane started",
             MetricType::gauge,
             static_cast<double>(monotonic_ns() - std::min(monotonic_ns(), cp.start_ns)) / 1e9);
  for (auto& f : cp.extra_metrics) f(out);
  return out;
}

std::string render_metrics(ControlPlane& cp) { return prometheus_text(collect_metrics(cp)); }

}  // namespace lockstep::ctrl
