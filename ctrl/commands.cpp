#include "ctrl/commands.h"

#include <charconv>
#include <map>

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
         {"value", s.get(info.name)},
         {"default", info.default_value},
         {"kind", kind_name(info.kind)},
         {"help", info.help}};
  if (info.kind == SettingKind::u64) {
    j["min"] = info.min;
    j["max"] = info.max;
  }
  if (info.kind == SettingKind::choice) j["choices"] = info.choices;
  return j;
}

std::string who(const CommandContext& ctx) {
  return "uid " + std::to_string(ctx.cred.uid) + " pid " + std::to_string(ctx.cred.pid);
}

}  // namespace

void register_standard_commands(CommandRegistry& reg, ControlPlane& cp) {
  register_rules_commands(reg, cp);
  if (cp.log != nullptr) register_event_commands(reg, cp);
  reg.add({"status", "", "mode, epoch, checkpoint state, failover, peers, uptime, recent events",
           0, 0, false, [&cp](const CommandContext& ctx, const Args&) {
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
           }});

  reg.add({"stats", "[--reset]", "counters summed over workers; --reset zeroes them after reading",
           0, 1, false, [&cp](const CommandContext&, const Args& a) {
             bool reset = false;
             if (!a.empty()) {
               if (a[0] != "--reset") {
                 return CommandResult::failure("unknown argument '" + a[0] +
                                               "' (usage: stats [--reset])");
               }
               reset = true;
             }
             return CommandResult::success(cp.daemon->stats(reset));
           }, true});

  reg.add({"conns", "[FILTER] [--limit N]",
           "connections whose key contains FILTER (e.g. 'tcp', '10.0.0.2', ':80 ')", 0, 3, false,
           [&cp](const CommandContext&, const Args& a) {
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
           }});

  reg.add({"config get", "[KEY]", "every setting with its value, or one with its range and help",
           0, 1, false, [&cp](const CommandContext&, const Args& a) {
             Settings s = cp.daemon->settings();
             if (a.empty()) {
               Json j = Json::object();
               for (const auto& info : settings_table()) j[std::string(info.name)] = s.get(info.name);
               return CommandResult::success(j);
             }
             const SettingInfo* info = find_setting(a[0]);
             if (info == nullptr) {
               return CommandResult::failure("unknown setting '" + a[0] + "' (see 'config get')");
             }
             return CommandResult::success(setting_json(s, *info));
           }});

  reg.add({"config set", "KEY=VALUE...",
           "validate and apply settings live (all or none); names the key and range on error",
           1, 64, true, [&cp](const CommandContext&, const Args& a) {
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
           }});

  reg.add({"checkpoint", "", "ask for a checkpoint now (reason manual)", 0, 0, true,
           [&cp](const CommandContext&, const Args&) {
             std::string error;
             if (!cp.daemon->request_checkpoint(error)) return CommandResult::failure(error);
             Json j{{"requested", true}};
             if (cp.coordinator != nullptr) j["epoch"] = cp.coordinator->epoch();
             return CommandResult::success(j);
           }});

  reg.add({"cluster status", "", "corosync membership, quorum, link watching, the cluster's decision",
           0, 0, false, [&cp](const CommandContext& ctx, const Args&) {
             if (cp.cluster == nullptr) return CommandResult::failure("no cluster configured");
             return CommandResult::success(cp.cluster->status(ctx.now_ns));
           }});

  reg.add({"cluster failover", "",
           "ask the corosync group to let this side take over (first FAILOVER delivered wins; "
           "needs quorum); pacemaker's promote",
           0, 0, true, [&cp](const CommandContext& ctx, const Args&) {
             if (cp.cluster == nullptr) return CommandResult::failure("no cluster configured");
             std::string error;
             if (!cp.cluster->request_failover("requested (" + who(ctx) + ")", error))
               return CommandResult::failure(error);
             return CommandResult::success({{"sent", "FAILOVER"}});
           }});

  reg.add({"failover", "primary|secondary",
           "fail over now: primary = the PVM survives, secondary = the SVM takes over; final", 1,
           1, true, [&cp](const CommandContext& ctx, const Args& a) {
             Survivor s;
             if (!survivor_from_string(a[0], s)) {
               return CommandResult::failure("expected primary or secondary, got '" + a[0] + "'");
             }
             std::string error;
             if (!cp.failover->decide(s, "manual (" + who(ctx) + ")", ctx.now_ns, error)) {
               return CommandResult::failure(error);
             }
             return CommandResult::success({{"survivor", to_string_survivor(s)}, {"cause", "manual"}});
           }});

  reg.add({"mode", "colo|buffer|passthrough", "switch the compare mode live", 1, 1, true,
           [&cp](const CommandContext&, const Args& a) {
             Mode m;
             if (!mode_from_string(a[0], m)) {
               return CommandResult::failure("expected colo, buffer or passthrough, got '" + a[0] + "'");
             }
             std::string error;
             if (!cp.daemon->set_mode(m, error)) return CommandResult::failure(error);
             return CommandResult::success({{"mode", to_string(m)}});
           }});

  reg.add({"capture start", "PORT [FILE] [--direction rx|tx|both] [--max-bytes N] [--snaplen N]",
           "write the frames a port receives and lockstepd sends on it to a pcapng file, "
           "bounded in size", 1, 8, true,
           [&cp](const CommandContext&, const Args& a) {
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
           }});

  reg.add({"capture stop", "[PORT]", "stop a capture (every capture without PORT)", 0, 1, true,
           [&cp](const CommandContext&, const Args& a) {
             Json result;
             std::string error;
             if (!cp.daemon->capture_stop(a.empty() ? std::string{} : a[0], result, error)) {
               return CommandResult::failure(error);
             }
             return CommandResult::success(result);
           }});

  reg.add({"checkpoint-policy", "[KEY=VALUE...]",
           "show or change the checkpoint policy live: max_epoch_ms (0 = off), timeout_ms, "
           "on_timeout=retry|alarm|failover, max_retries, failover_survivor=primary|secondary",
           0, 5, false, [&cp](const CommandContext&, const Args& a) {
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
           }, true});

  reg.add({"version", "", "version of lockstep and of its protocols", 0, 0, false,
           [&cp](const CommandContext&, const Args&) {
             Json j{{"version", lockstep_version()},
                    {"ctrl_protocol", 1},
                    {"checkpointer_protocol", kNativeVersion}};
             Json extra = cp.daemon->version();
             if (extra.is_object()) {
               for (auto it = extra.begin(); it != extra.end(); ++it) j[it.key()] = it.value();
             }
             return CommandResult::success(j);
           }});

  reg.add({"metrics", "", "every counter in the Prometheus text format", 0, 0, false,
           [&cp](const CommandContext&, const Args&) {
             return CommandResult::success({{"text", render_metrics(cp)}});
           }});
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
